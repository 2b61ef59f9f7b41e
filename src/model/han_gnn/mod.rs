//! MMSR's HAN-GNN (spec §4): the shared input layer, one heterogeneity-aware asynchronous layer
//! (applied `layers` times with tied weights, as officially), outer dropout and masking, `last`
//! pooling, and dot-product scores over all items. Registered three times: `han-gnn` (compat),
//! `han-gnn-fixed` (the quirks of §4.7 repaired) and `items-only` (no code nodes: the
//! no-modality reference).

pub mod layer;

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use super::input::{InputConfig, InputLayer, POSITION_ROWS};
use super::ops::dropout;
use super::{
    count_parameters, parse_params, Batch, BatchInput, InputKind, ModelContext, ModelEntry,
    ModelError, Recommender,
};
use crate::graph::GraphLayout;
use layer::{Graph, HanLayer, HanMode};

pub const ENTRY: ModelEntry = ModelEntry {
    name: "han-gnn",
    summary:
        "MMSR's HAN-GNN, compat mode: the official computation with its quirks (spec §4.3, §4.7)",
    build: |context, params| build(context, params, "han-gnn", HanMode::Compat, true),
};

pub const FIXED_ENTRY: ModelEntry = ModelEntry {
    name: "han-gnn-fixed",
    summary:
        "HAN-GNN, fixed mode: separate W_K/W_V, a homo-first branch that uses phase 1 (spec §4.7)",
    build: |context, params| build(context, params, "han-gnn-fixed", HanMode::Fixed, true),
};

pub const ITEMS_ONLY_ENTRY: ModelEntry = ModelEntry {
    name: "items-only",
    summary: "HAN-GNN on the item sub-graph, no code nodes: the no-modality reference",
    build: |context, params| build(context, params, "items-only", HanMode::Compat, false),
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HanGnnConfig {
    pub mode: HanMode,
    /// Dense (padded N × N) or sparse (edge lists) execution; same numbers, different cost.
    pub layout: GraphLayout,
    pub dim: i64,
    /// Applications of the (weight-tied) layer.
    pub layers: usize,
    /// Dropout on the layer output (`dropout_local`).
    pub dropout: f64,
    /// Dropout on attention weights (`dropout_atten`).
    pub attention_dropout: f64,
    pub leaky_slope: f64,
    pub node_type_embedding: bool,
    pub position_embedding: bool,
    /// Initialise code embeddings from the k-means centres (spec §2.6).
    pub init_codes_from_centres: bool,
}

impl Default for HanGnnConfig {
    fn default() -> Self {
        Self {
            mode: HanMode::Compat,
            layout: GraphLayout::Sparse,
            dim: 128,
            layers: 1,
            dropout: 0.4,
            attention_dropout: 0.2,
            leaky_slope: 0.1,
            node_type_embedding: true,
            position_embedding: true,
            init_codes_from_centres: true,
        }
    }
}

pub struct HanGnn {
    name: &'static str,
    config: HanGnnConfig,
    with_codes: bool,
    vs: nn::VarStore,
    input: InputLayer,
    layer: HanLayer,
    num_items: i64,
}

fn build(
    context: &ModelContext,
    params: &serde_json::Map<String, serde_json::Value>,
    name: &'static str,
    default_mode: HanMode,
    with_codes: bool,
) -> Result<Box<dyn Recommender>, ModelError> {
    let mut params = params.clone();
    params
        .entry("mode")
        .or_insert(serde_json::to_value(default_mode).expect("serialisable"));
    let config: HanGnnConfig = parse_params(name, &params)?;
    Ok(Box::new(HanGnn::new(context, name, config, with_codes)?))
}

impl HanGnn {
    pub fn new(
        context: &ModelContext,
        name: &'static str,
        config: HanGnnConfig,
        with_codes: bool,
    ) -> Result<Self, ModelError> {
        let dataset = context.dataset;
        let unsupported = |reason: String| ModelError::Unsupported {
            model: name.to_string(),
            dataset: dataset.name.clone(),
            reason,
        };
        if dataset.split_config.max_len as i64 > POSITION_ROWS {
            return Err(unsupported(format!(
                "inputs of up to {} items exceed the {POSITION_ROWS}-row position table",
                dataset.split_config.max_len
            )));
        }
        if config.dim < 1 || config.layers < 1 {
            return Err(unsupported("dim and layers must be at least 1".into()));
        }
        let num_items = dataset.num_items();
        let codes = match (&dataset.codes, with_codes) {
            (Some(codes), true) => Some(codes),
            (None, true) => {
                return Err(unsupported(
                    "the dataset has no modality codes (no item features were prepared); items-only runs without them".into(),
                ))
            }
            (_, false) => None,
        };
        let layout = codes.map(|c| c.layout(num_items));
        let table_rows = layout.map_or(num_items + 1, |l| l.table_rows()) as i64;

        let vs = nn::VarStore::new(context.device);
        let root = vs.root();
        let input_config = InputConfig {
            node_type_embedding: config.node_type_embedding,
            position_embedding: config.position_embedding,
        };
        let mut input = InputLayer::new(&(&root / "input"), table_rows, config.dim, input_config);
        let layer = HanLayer::new(
            &(&root / "layer"),
            config.dim,
            config.mode,
            config.leaky_slope,
            config.attention_dropout,
        );
        if let (Some(codes), Some(layout), true) = (codes, layout, config.init_codes_from_centres) {
            let offsets = [layout.image_offset(), layout.text_offset()];
            for (book, offset) in [codes.image.as_ref(), codes.text.as_ref()]
                .into_iter()
                .zip(offsets)
            {
                let Some(book) = book.filter(|b| b.centre_dim > 0) else {
                    continue;
                };
                if book.centre_dim as i64 != config.dim {
                    return Err(unsupported(format!(
                        "code centres are {}-d but the embedding is {}-d; set init_codes_from_centres: false or dim: {}",
                        book.centre_dim, config.dim, book.centre_dim
                    )));
                }
                let centres =
                    Tensor::from_slice(&book.centres).view([book.num_codes as i64, config.dim]);
                input.init_code_rows(offset as i64, &centres);
            }
        }
        Ok(Self {
            name,
            config,
            with_codes,
            vs,
            input,
            layer,
            num_items: num_items as i64,
        })
    }

    /// Final node states pooled to the most recent item: [B, D]. Every layer is followed by
    /// dropout and the padding mask; after the last layer only the pooled rows are used, so that
    /// dropout is applied after pooling (elementwise and independent: the same distribution, a
    /// fraction of the work).
    pub fn user_representations(&self, batch: &Batch, train: bool) -> Tensor {
        let p = self.config.dropout;
        let layers = self.config.layers;
        let pooled = match &batch.input {
            BatchInput::Dense(b) => {
                let real = b.real.unsqueeze(-1);
                let mut h = self.input.dense(b);
                for l in 0..layers {
                    h = self.layer.forward(&h, Graph::Dense(b), train);
                    if l + 1 < layers {
                        h = dropout(&h, p, train) * &real;
                    }
                }
                let index = b
                    .last
                    .view([-1, 1, 1])
                    .expand([-1, 1, self.config.dim], false);
                h.gather(1, &index, false).squeeze_dim(1)
            }
            BatchInput::Sparse(b) => {
                let mut h = self.input.sparse(b);
                for l in 0..layers {
                    h = self.layer.forward(&h, Graph::Sparse(b), train);
                    if l + 1 < layers {
                        h = dropout(&h, p, train);
                    }
                }
                h.index_select(0, &b.last)
            }
            BatchInput::None => panic!("{} needs graph batches", self.name),
        };
        dropout(&pooled, p, train)
    }
}

impl Recommender for HanGnn {
    fn name(&self) -> &'static str {
        self.name
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).expect("serialisable")
    }

    fn num_parameters(&self) -> usize {
        count_parameters(&self.vs)
    }

    fn input_kind(&self) -> InputKind {
        InputKind::Graph {
            layout: self.config.layout,
            with_codes: self.with_codes,
        }
    }

    fn var_store(&self) -> Option<&nn::VarStore> {
        Some(&self.vs)
    }

    fn scores(&self, batch: &Batch, train: bool) -> Tensor {
        let users = self.user_representations(batch, train);
        users
            .matmul(&self.input.item_table(self.num_items).transpose(0, 1))
            .to_kind(Kind::Float)
    }
}
