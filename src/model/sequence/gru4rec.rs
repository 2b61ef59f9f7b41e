//! GRU4Rec (Hidasi et al. 2016) as RecBole implements it: item embeddings, dropout, one GRU
//! layer, a linear map back to the embedding width, the state at the last item scored against
//! the (tied) item table.

use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, nn::RNN, Tensor};

use super::{ItemTable, SequenceLoss};
use crate::model::layers::ops::dropout;
use crate::model::{
    check_probability, check_size, Batch, InputKind, Model, ModelContext, Recommender, MAX_DEPTH,
    MAX_WIDTH,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gru4RecConfig {
    /// Embedding width (128, as every graph model of the benchmark).
    pub dim: i64,
    /// GRU state width.
    pub hidden_dim: i64,
    pub gru_layers: i64,
    /// Dropout on the input embeddings (RecBole: 0.3).
    pub dropout: f64,
    pub loss: SequenceLoss,
}

impl Default for Gru4RecConfig {
    fn default() -> Self {
        Self {
            dim: 128,
            hidden_dim: 128,
            gru_layers: 1,
            dropout: 0.3,
            loss: SequenceLoss::CrossEntropy,
        }
    }
}

pub struct Gru4Rec {
    config: Gru4RecConfig,
    items: ItemTable,
    gru: nn::GRU,
    output: nn::Linear,
}

impl Gru4Rec {
    fn states(&self, batch: &Batch, train: bool) -> Tensor {
        batch.sequence().encode_by_length(|input| {
            let embedded = dropout(&self.items.embed(&input.items), self.config.dropout, train);
            // The GRU runs over the right padding of its length bucket too, but only the state
            // at the last item is read.
            let (outputs, _) = self.gru.seq(&embedded);
            self.output.forward(&input.last(&outputs))
        })
    }
}

impl Model for Gru4Rec {
    type Config = Gru4RecConfig;
    /// 2: length buckets and the output map at the last item only (the same function of a
    /// sample's input; other dropout draws and rounding, so other numbers).
    const VERSION: u32 = 2;

    fn input_kind(_config: &Gru4RecConfig) -> InputKind {
        InputKind::Sequence
    }

    fn validate(c: &Gru4RecConfig) -> Result<(), String> {
        check_size("dim", c.dim, MAX_WIDTH)?;
        check_size("hidden_dim", c.hidden_dim, MAX_WIDTH)?;
        check_size("gru_layers", c.gru_layers, MAX_DEPTH)?;
        check_probability("dropout", c.dropout)
    }

    fn new(path: &nn::Path, c: &Gru4RecConfig, context: &ModelContext) -> Result<Self, String> {
        let num_items = context.dataset.num_items() as i64;
        let gru_config = nn::RNNConfig {
            num_layers: c.gru_layers,
            batch_first: true,
            ..Default::default()
        };
        Ok(Self {
            config: c.clone(),
            items: ItemTable::new(path, num_items, c.dim),
            gru: nn::gru(path / "gru", c.dim, c.hidden_dim, gru_config),
            output: nn::linear(path / "output", c.hidden_dim, c.dim, Default::default()),
        })
    }
}

impl Recommender for Gru4Rec {
    fn scores(&self, batch: &Batch, train: bool) -> Tensor {
        self.items.scores(&self.states(batch, train))
    }

    fn loss(&self, batch: &Batch) -> Tensor {
        let states = self.states(batch, true);
        self.items.loss(&states, &batch.targets, self.config.loss)
    }
}
