//! Popularity: every user gets the same ranking, by how often each item occurs in the training
//! interactions (validation and test targets are not counted). Ties go to the lower item id.

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use super::{parse_params, Batch, InputKind, ModelContext, ModelEntry, ModelError, Recommender};

pub const ENTRY: ModelEntry = ModelEntry {
    name: "pop",
    summary: "item popularity in the training interactions (non-personalised reference)",
    build,
};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopConfig {}

pub struct Popularity {
    config: PopConfig,
    /// Training frequency per item, [num_items], on the model's device.
    counts: Tensor,
}

/// Occurrences of every item (index = id - 1) in the training histories.
pub fn training_counts(context: &ModelContext) -> Vec<f32> {
    let mut counts = vec![0f32; context.dataset.num_items()];
    for history in context.dataset.training_histories() {
        for &item in history {
            counts[item as usize - 1] += 1.0;
        }
    }
    counts
}

fn build(
    context: &ModelContext,
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<Box<dyn Recommender>, ModelError> {
    let config: PopConfig = parse_params(ENTRY.name, params)?;
    let counts = Tensor::from_slice(&training_counts(context)).to_device(context.device);
    Ok(Box::new(Popularity { config, counts }))
}

impl Recommender for Popularity {
    fn name(&self) -> &'static str {
        ENTRY.name
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).expect("serialisable")
    }

    fn num_parameters(&self) -> usize {
        0
    }

    fn input_kind(&self) -> InputKind {
        InputKind::None
    }

    fn var_store(&self) -> Option<&nn::VarStore> {
        None
    }

    fn scores(&self, batch: &Batch, _train: bool) -> Tensor {
        let n = self.counts.size()[0];
        self.counts
            .to_kind(Kind::Float)
            .unsqueeze(0)
            .expand([batch.size as i64, n], false)
    }
}
