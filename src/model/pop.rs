//! Popularity: every user gets the same ranking, by how often each item occurs in the training
//! interactions (validation and test targets are not counted). Ties go to the lower item id.
//! No trainable parameters: fitted when built.

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use super::{Batch, InputKind, Model, ModelContext, Recommender};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopConfig {}

pub struct Popularity {
    /// Training frequency per item, [num_items], on the model's device.
    counts: Tensor,
}

/// Occurrences of every item (index = id - 1) in the training histories; for data without
/// histories (an official folder without user ids), in the training samples' targets, which
/// are every training interaction but each user's first.
pub fn training_counts(context: &ModelContext) -> Vec<f32> {
    let dataset = context.dataset;
    let mut counts = vec![0f32; dataset.num_items()];
    for history in dataset.training_histories() {
        for &item in history {
            counts[item as usize - 1] += 1.0;
        }
    }
    if counts.iter().all(|&c| c == 0.0) {
        for &target in &dataset.splits.train.targets {
            counts[target as usize - 1] += 1.0;
        }
    }
    counts
}

impl Model for Popularity {
    type Config = PopConfig;
    const VERSION: u32 = 1;

    fn input_kind(_config: &PopConfig) -> InputKind {
        InputKind::None
    }

    fn new(_path: &nn::Path, _config: &PopConfig, context: &ModelContext) -> Result<Self, String> {
        let counts = Tensor::from_slice(&training_counts(context)).to_device(context.device);
        Ok(Self { counts })
    }
}

impl Recommender for Popularity {
    fn scores(&self, batch: &Batch, _train: bool) -> Tensor {
        let n = self.counts.size()[0];
        self.counts
            .to_kind(Kind::Float)
            .unsqueeze(0)
            .expand([batch.size as i64, n], false)
    }
}
