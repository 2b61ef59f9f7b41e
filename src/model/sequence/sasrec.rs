//! SASRec (Kang & McAuley 2018) as RecBole implements it (the official repository's
//! `base_model.py` is RecBole-style): item + learned position embeddings, LayerNorm, dropout,
//! then `blocks` post-LN transformer blocks with causal multi-head self-attention and a GELU
//! feed-forward network; the state at the last item is scored against the (tied) item table.
//!
//! `architecture: original` gives Kang & McAuley's own form instead (pre-LN blocks, scaled
//! embeddings, a final LayerNorm).
//!
//! Positions count back from the last item (0 = the newest), as in the original's end-aligned
//! window, so a sample's positions do not depend on its batch; inputs longer than
//! `max_positions` share the last position row.

use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Kind, Tensor};

use super::{every_position_loss, ItemTable, SequenceBatch, SequenceLoss};
use crate::model::layers::ops::{dropout, NEG};
use crate::model::{
    check_count, check_heads, check_probability, check_size, Batch, EpochSamples, InputKind, Model,
    ModelContext, Recommender, MAX_DEPTH, MAX_INNER_WIDTH, MAX_POSITIONS, MAX_WIDTH,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SasRecConfig {
    /// Embedding width (128, as every graph model of the benchmark).
    pub dim: i64,
    pub blocks: usize,
    pub heads: i64,
    /// Width of the feed-forward network (4 × dim, RecBole's ratio).
    pub inner_dim: i64,
    /// Dropout on embeddings and block outputs (RecBole: 0.5).
    pub dropout: f64,
    /// Dropout on attention weights (RecBole: 0.5).
    pub attention_dropout: f64,
    pub max_positions: i64,
    pub loss: SequenceLoss,
    /// Where the LayerNorms sit (RecBole's post-LN by default; absent from a stored config
    /// when it is the default, so earlier run ids stand).
    #[serde(skip_serializing_if = "Architecture::is_recbole")]
    pub architecture: Architecture,
    /// Where a training sample is trained (the last item by default; absent from a stored
    /// config then).
    #[serde(skip_serializing_if = "TrainingTargets::is_last_item")]
    pub targets: TrainingTargets,
}

/// Where SASRec learns from a training sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrainingTargets {
    /// Each prefix sample at its target, every prefix a sample of the epoch (this benchmark's
    /// form, the same for every model).
    #[default]
    LastItem,
    /// Kang & McAuley's form: an epoch visits each user once, with the longest training input,
    /// and trains every position at the item after it (the last at the sample's target). The
    /// positions count back from the end of that input, as in the original's end-aligned
    /// window, so a training position sees other position rows than the same prefix does
    /// when it is evaluated alone.
    EveryPosition,
}

impl TrainingTargets {
    fn is_last_item(&self) -> bool {
        *self == TrainingTargets::LastItem
    }
}

/// The two published forms of the SASRec block stack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// RecBole's (and the MMSR repository's): LayerNorm on the input, then post-LN blocks,
    /// `norm(x + sublayer(x))`.
    #[default]
    Recbole,
    /// Kang & McAuley's original: item embeddings scaled by sqrt(dim), no input LayerNorm,
    /// each block normalises its queries first (`q = norm(x)`, `x = q + attention(q, x)`,
    /// `x = y + ffn(y)` with `y = norm(x)`), and one LayerNorm after the last block.
    Original,
}

impl Architecture {
    fn is_recbole(&self) -> bool {
        *self == Architecture::Recbole
    }
}

impl Default for SasRecConfig {
    fn default() -> Self {
        Self {
            dim: 128,
            blocks: 2,
            heads: 2,
            inner_dim: 512,
            dropout: 0.5,
            attention_dropout: 0.5,
            max_positions: 150,
            loss: SequenceLoss::CrossEntropy,
            architecture: Architecture::Recbole,
            targets: TrainingTargets::LastItem,
        }
    }
}

const LAYER_NORM_EPS: f64 = 1e-12;

fn linear(path: nn::Path, input: i64, output: i64) -> nn::Linear {
    let config = nn::LinearConfig {
        ws_init: nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        },
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    nn::linear(path, input, output, config)
}

fn layer_norm(path: nn::Path, dim: i64) -> nn::LayerNorm {
    let config = nn::LayerNormConfig {
        eps: LAYER_NORM_EPS,
        ..Default::default()
    };
    nn::layer_norm(path, vec![dim], config)
}

struct Block {
    query: nn::Linear,
    key: nn::Linear,
    value: nn::Linear,
    output: nn::Linear,
    attention_norm: nn::LayerNorm,
    inner: nn::Linear,
    outer: nn::Linear,
    ffn_norm: nn::LayerNorm,
}

impl Block {
    fn new(path: &nn::Path, c: &SasRecConfig) -> Self {
        Self {
            query: linear(path / "query", c.dim, c.dim),
            key: linear(path / "key", c.dim, c.dim),
            value: linear(path / "value", c.dim, c.dim),
            output: linear(path / "output", c.dim, c.dim),
            attention_norm: layer_norm(path / "attention_norm", c.dim),
            inner: linear(path / "inner", c.dim, c.inner_dim),
            outer: linear(path / "outer", c.inner_dim, c.dim),
            ffn_norm: layer_norm(path / "ffn_norm", c.dim),
        }
    }

    /// The block for queries at `queries` [B, Q, D] over the keys and values of every
    /// position of `h` [B, L, D]; `allowed` [B or 1, 1, Q, L] is true where a query may attend
    /// to a key. Returns [B, Q, D]. Queries at every position (`queries` = `h`) is the usual
    /// block; one query at each sample's last item is all the model reads after its last block.
    fn attend(
        &self,
        queries: &Tensor,
        h: &Tensor,
        allowed: &Tensor,
        c: &SasRecConfig,
        train: bool,
    ) -> Tensor {
        let (b, l, d) = h.size3().expect("[B, L, D]");
        let q_len = queries.size()[1];
        let head_dim = d / c.heads;
        let split = |x: Tensor, len: i64| x.view([b, len, c.heads, head_dim]).transpose(1, 2);
        let (q, k, v) = (
            split(self.query.forward(queries), q_len),
            split(self.key.forward(h), l),
            split(self.value.forward(h), l),
        );
        let logits = q.matmul(&k.transpose(-1, -2)) / (head_dim as f64).sqrt();
        let weights = logits
            .masked_fill(&allowed.logical_not(), NEG)
            .softmax(-1, Kind::Float);
        let weights = dropout(&weights, c.attention_dropout, train);
        let context = weights
            .matmul(&v)
            .transpose(1, 2)
            .contiguous()
            .view([b, q_len, d]);
        let attended = dropout(&self.output.forward(&context), c.dropout, train);
        match c.architecture {
            Architecture::Recbole => {
                let h = self.attention_norm.forward(&(attended + queries));
                self.ffn_norm
                    .forward(&(self.feed_forward(&h, c, train) + h))
            }
            Architecture::Original => {
                // `queries` arrive normalised (see `normalised_queries`).
                let h = self.ffn_norm.forward(&(attended + queries));
                self.feed_forward(&h, c, train) + h
            }
        }
    }

    fn feed_forward(&self, h: &Tensor, c: &SasRecConfig, train: bool) -> Tensor {
        let inner = self.inner.forward(h).gelu("none");
        dropout(&self.outer.forward(&inner), c.dropout, train)
    }

    /// The queries a block attends with: the states themselves (RecBole) or their LayerNorm
    /// (the original, whose keys and values stay unnormalised).
    fn normalised_queries(&self, queries: Tensor, c: &SasRecConfig) -> Tensor {
        match c.architecture {
            Architecture::Recbole => queries,
            Architecture::Original => self.attention_norm.forward(&queries),
        }
    }

    /// The block at every position; `allowed` [1, 1, L, L] is the causal mask.
    fn forward(&self, h: &Tensor, allowed: &Tensor, c: &SasRecConfig, train: bool) -> Tensor {
        let queries = self.normalised_queries(h.shallow_clone(), c);
        self.attend(&queries, h, allowed, c, train)
    }

    /// The block at each sample's last item only: [B, D]. Keys and values still cover every
    /// position, but queries, the output map, the norms and the feed-forward network run for
    /// one position a sample.
    fn forward_at_last(
        &self,
        h: &Tensor,
        input: &SequenceBatch,
        c: &SasRecConfig,
        train: bool,
    ) -> Tensor {
        let (b, l, _) = h.size3().expect("[B, L, D]");
        // The causal row of the last item: every position before the right padding.
        let allowed = Tensor::arange(l, (Kind::Int64, h.device()))
            .unsqueeze(0)
            .lt_tensor(&input.lengths.unsqueeze(1))
            .view([b, 1, 1, l]);
        let queries = self.normalised_queries(input.last(h).unsqueeze(1), c);
        self.attend(&queries, h, &allowed, c, train).squeeze_dim(1)
    }
}

/// The SASRec sequence encoder over given input embeddings: positions, LayerNorm, dropout,
/// causal blocks, the state at each sample's last item. Shared by `sasrec` and the fusion
/// references.
pub struct SasRecEncoder {
    config: SasRecConfig,
    positions: Tensor,
    /// RecBole's LayerNorm on the input (the original has none).
    input_norm: Option<nn::LayerNorm>,
    blocks: Vec<Block>,
    /// The original architecture's LayerNorm after the last block.
    final_norm: Option<nn::LayerNorm>,
}

impl SasRecEncoder {
    pub fn new(path: &nn::Path, c: &SasRecConfig) -> Self {
        Self {
            config: c.clone(),
            positions: path.var(
                "position_embedding",
                &[c.max_positions, c.dim],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
            ),
            input_norm: (c.architecture == Architecture::Recbole)
                .then(|| layer_norm(path / "input_norm", c.dim)),
            blocks: (0..c.blocks)
                .map(|i| Block::new(&(path / format!("block{i}")), c))
                .collect(),
            // Created last, so the default architecture draws its initial values as before.
            final_norm: (c.architecture == Architecture::Original)
                .then(|| layer_norm(path / "final_norm", c.dim)),
        }
    }

    /// `embedded` [B, L, D]: the input vectors of `input`'s items (zero rows on the padding).
    pub fn states(&self, embedded: &Tensor, input: &SequenceBatch, train: bool) -> Tensor {
        let (h, allowed) = self.embedded_input(embedded, input, train);
        let (last, earlier) = self.blocks.split_last().expect("at least one block");
        let h = earlier.iter().fold(h, |h, block| {
            block.forward(&h, &allowed, &self.config, train)
        });
        self.finished(last.forward_at_last(&h, input, &self.config, train))
    }

    /// The states at every position, [B, L, D] (rows beyond a sample's length are padding).
    pub fn states_at_every_position(
        &self,
        embedded: &Tensor,
        input: &SequenceBatch,
        train: bool,
    ) -> Tensor {
        let (h, allowed) = self.embedded_input(embedded, input, train);
        let h = self.blocks.iter().fold(h, |h, block| {
            block.forward(&h, &allowed, &self.config, train)
        });
        self.finished(h)
    }

    fn finished(&self, states: Tensor) -> Tensor {
        match &self.final_norm {
            Some(norm) => norm.forward(&states),
            None => states,
        }
    }

    /// The first block's input (positions added, normalised, dropped out) and the causal mask.
    fn embedded_input(
        &self,
        embedded: &Tensor,
        input: &SequenceBatch,
        train: bool,
    ) -> (Tensor, Tensor) {
        let c = &self.config;
        let position_rows = input.positions_from_last().clamp(0, c.max_positions - 1);
        let positions = Tensor::embedding(&self.positions, &position_rows, -1, false, false);
        let h = match &self.input_norm {
            Some(norm) => norm.forward(&(embedded + positions)),
            None => embedded * (c.dim as f64).sqrt() + positions,
        };
        let h = dropout(&h, c.dropout, train);
        // Causal: a query attends to itself and earlier positions, which are all real items
        // (right padding), so padded keys never reach a real query.
        let width = input.width();
        let allowed = Tensor::ones([width, width], (Kind::Bool, h.device()))
            .tril(0)
            .view([1, 1, width, width]);
        (h, allowed)
    }
}

/// Parameters a stored config leaves out at their default (see [`Model::OPTIONAL_PARAMETERS`]),
/// shared by every SASRec-based model.
pub const OPTIONAL_PARAMETERS: &[&str] = &["architecture", "targets"];

/// Range checks shared by every SASRec-based model.
pub fn validate_config(c: &SasRecConfig) -> Result<(), String> {
    check_size("dim", c.dim, MAX_WIDTH)?;
    check_count("blocks", c.blocks, MAX_DEPTH)?;
    check_size("inner_dim", c.inner_dim, MAX_INNER_WIDTH)?;
    check_size("max_positions", c.max_positions, MAX_POSITIONS)?;
    check_heads(c.heads, c.dim)?;
    check_probability("dropout", c.dropout)?;
    check_probability("attention_dropout", c.attention_dropout)
}

pub struct SasRec {
    config: SasRecConfig,
    items: ItemTable,
    encoder: SasRecEncoder,
}

impl SasRec {
    /// Sequence representations [B, D] at each sample's last item.
    fn states(&self, input: &SequenceBatch, train: bool) -> Tensor {
        input.encode_by_length(|part| {
            self.encoder
                .states(&self.items.embed(&part.items), part, train)
        })
    }
}

impl Model for SasRec {
    type Config = SasRecConfig;
    /// 2: length buckets and the last block at the last item only (the same function of a
    /// sample's input; other dropout draws and rounding, so other numbers).
    const VERSION: u32 = 2;
    const OPTIONAL_PARAMETERS: &'static [&'static str] = OPTIONAL_PARAMETERS;

    fn input_kind(_config: &SasRecConfig) -> InputKind {
        InputKind::Sequence
    }

    fn validate(c: &SasRecConfig) -> Result<(), String> {
        validate_config(c)
    }

    fn new(path: &nn::Path, c: &SasRecConfig, context: &ModelContext) -> Result<Self, String> {
        let num_items = context.dataset.num_items() as i64;
        Ok(Self {
            config: c.clone(),
            items: ItemTable::new(path, num_items, c.dim),
            encoder: SasRecEncoder::new(path, c),
        })
    }
}

impl Recommender for SasRec {
    fn scores(&self, batch: &Batch, train: bool) -> Tensor {
        self.items.scores(&self.states(batch.sequence(), train))
    }

    fn loss(&self, batch: &Batch) -> Tensor {
        let input = batch.sequence();
        match self.config.targets {
            TrainingTargets::LastItem => {
                let states = self.states(input, true);
                self.items.loss(&states, &batch.targets, self.config.loss)
            }
            TrainingTargets::EveryPosition => every_position_loss(
                input,
                &batch.targets,
                self.items.table(),
                self.config.loss,
                |part| {
                    self.encoder.states_at_every_position(
                        &self.items.embed(&part.items),
                        part,
                        true,
                    )
                },
            ),
        }
    }

    fn epoch_samples(&self) -> EpochSamples {
        match self.config.targets {
            TrainingTargets::LastItem => EpochSamples::All,
            TrainingTargets::EveryPosition => EpochSamples::LongestPerUser,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Configs stored before the option existed resolve to the same JSON (and run id) as
    /// the default today; the original form is spelled out.
    #[test]
    fn the_default_architecture_is_left_out_of_stored_configs() {
        let default = serde_json::to_value(SasRecConfig::default()).unwrap();
        assert!(default.get("architecture").is_none());
        let original = SasRecConfig {
            architecture: Architecture::Original,
            ..Default::default()
        };
        let value = serde_json::to_value(&original).unwrap();
        assert_eq!(value["architecture"], "original");
        let back: SasRecConfig = serde_json::from_value(default).unwrap();
        assert_eq!(back, SasRecConfig::default());
    }
}
