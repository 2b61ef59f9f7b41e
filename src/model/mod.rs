//! Models behind one trait, and the registry that builds them by name. A new baseline is one file
//! implementing [`Recommender`] plus one line in [`REGISTRY`].

pub mod han_gnn;
pub mod input;
pub mod ops;
pub mod pop;

use serde::de::DeserializeOwned;
use tch::{nn, Device, Tensor};
use thiserror::Error;

use crate::config::ModelSpec;
use crate::dataset::PreparedDataset;
use crate::graph::{DenseGraphBatch, GraphLayout, SparseGraphBatch};

#[derive(Debug, Error)]
pub enum ModelError {
    #[error("unknown model {name:?}; valid names: {}", valid.join(", "))]
    Unknown { name: String, valid: Vec<String> },
    #[error("model {model:?}: {message}")]
    Params { model: String, message: String },
    #[error("model {model:?} cannot run on dataset {dataset:?}: {reason}")]
    Unsupported {
        model: String,
        dataset: String,
        reason: String,
    },
}

/// What a model needs from each batch besides the targets; the trainer builds exactly that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// Nothing but the batch size (e.g. popularity).
    None,
    /// Per-sample graphs in the given layout, with or without code nodes.
    Graph {
        layout: GraphLayout,
        with_codes: bool,
    },
}

/// One mini-batch, already on the model's device.
pub struct Batch {
    pub size: usize,
    /// Target items as 0-based score columns (item id - 1), int64, shape [B].
    pub targets: Tensor,
    pub input: BatchInput,
}

pub enum BatchInput {
    None,
    Dense(DenseGraphBatch),
    Sparse(SparseGraphBatch),
}

/// What a model may look at when it is built: the training data and the device.
pub struct ModelContext<'a> {
    pub dataset: &'a PreparedDataset,
    pub device: Device,
}

pub trait Recommender {
    fn name(&self) -> &'static str;
    /// Resolved parameters (every default filled in), stored in results and hashed into run ids.
    fn config(&self) -> serde_json::Value;
    fn num_parameters(&self) -> usize;
    fn input_kind(&self) -> InputKind;
    /// Trainable parameters; `None` for models fitted completely when built.
    fn var_store(&self) -> Option<&nn::VarStore>;
    /// Scores over all items, shape [B, num_items]; column j belongs to item id j + 1.
    fn scores(&self, batch: &Batch, train: bool) -> Tensor;
}

pub type BuildFn = fn(
    &ModelContext,
    &serde_json::Map<String, serde_json::Value>,
) -> Result<Box<dyn Recommender>, ModelError>;

pub struct ModelEntry {
    pub name: &'static str,
    pub summary: &'static str,
    pub build: BuildFn,
}

/// Every model the harness can run.
pub const REGISTRY: &[ModelEntry] = &[
    pop::ENTRY,
    han_gnn::ENTRY,
    han_gnn::FIXED_ENTRY,
    han_gnn::ITEMS_ONLY_ENTRY,
];

pub fn model_names() -> Vec<String> {
    REGISTRY.iter().map(|e| e.name.to_string()).collect()
}

pub fn find(name: &str) -> Result<&'static ModelEntry, ModelError> {
    REGISTRY
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| ModelError::Unknown {
            name: name.to_string(),
            valid: model_names(),
        })
}

pub fn build(spec: &ModelSpec, context: &ModelContext) -> Result<Box<dyn Recommender>, ModelError> {
    (find(&spec.name)?.build)(context, &spec.params)
}

/// Parses a model's parameter map into its typed config (which should deny unknown fields).
pub fn parse_params<T: DeserializeOwned>(
    model: &str,
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<T, ModelError> {
    serde_json::from_value(serde_json::Value::Object(params.clone())).map_err(|e| {
        ModelError::Params {
            model: model.to_string(),
            message: e.to_string(),
        }
    })
}

/// Number of scalars in a var store.
pub fn count_parameters(vs: &nn::VarStore) -> usize {
    vs.trainable_variables().iter().map(Tensor::numel).sum()
}
