//! Models behind one trait. A model is one file: a typed config (serde, unknown fields rejected,
//! defaults), `new(path, config, context)` over an `nn::Path` of a `VarStore` the harness owns,
//! `scores(batch, train)`, and optionally its own loss. Graph models are one
//! [`GraphLayer`](graph::GraphLayer) each inside the shared [`GraphRecommender`](graph::GraphRecommender);
//! the [`registry`] names them and their presets (variants and ablations).

pub mod fusion;
pub mod graph;
pub mod layers;
pub mod pop;
pub mod registry;
pub mod sequence;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tch::{nn, Device, Tensor};
use thiserror::Error;

use crate::dataset::PreparedDataset;
use crate::graph::{EdgeLists, GraphBatch, GraphLayout};

pub use sequence::SequenceBatch;

pub use registry::{
    build, find, model_names, resolve, BuiltModel, ModelEntry, ResolvedModel, REGISTRY,
};

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

/// What a graph model needs from each batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GraphInput {
    pub layout: GraphLayout,
    /// Code nodes in the graphs (false: the item sub-graph only).
    pub codes: bool,
    /// Shortest-path distances and degrees (Graphormer's encodings), dense layout only.
    pub structure: bool,
    /// The edge lists of sparse batches the layer reads.
    pub edge_lists: EdgeLists,
    /// How far from the pooled node a node's aggregation still reaches the output (message-
    /// passing steps − 1, + 1 where neighbours' degrees are read); `None`: some layer reads the
    /// whole graph. Evaluation cuts each graph to that receptive field (`graph::receptive`).
    pub receptive_reach: Option<usize>,
    /// Training batches are cut to the receptive field too (`train_on_receptive_fields`).
    pub receptive_training: bool,
}

impl GraphInput {
    /// The reach evaluation graphs are cut to (`graph::receptive`); never for models that read
    /// structure encodings, which belong to the whole graphs.
    pub fn evaluation_reach(&self) -> Option<usize> {
        self.receptive_reach.filter(|_| !self.structure)
    }

    /// The reach training graphs are cut to, when the model trains on receptive fields.
    pub fn training_reach(&self) -> Option<usize> {
        self.evaluation_reach().filter(|_| self.receptive_training)
    }
}

/// What a model needs from each batch besides the targets; the trainer builds exactly that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputKind {
    /// Nothing but the batch size (e.g. popularity).
    None,
    Graph(GraphInput),
    /// The input item ids of each sample (sequence models).
    Sequence,
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
    Graph(GraphBatch),
    Sequence(SequenceBatch),
}

impl Batch {
    /// The graphs of a graph batch. The trainer builds exactly the input kind a model declared,
    /// so a graph model never receives anything else.
    pub fn graph(&self) -> &GraphBatch {
        match &self.input {
            BatchInput::Graph(g) => g,
            _ => unreachable!("graph models declare a graph input kind"),
        }
    }

    /// The item sequences of a sequence batch (the trainer builds what the model declared).
    pub fn sequence(&self) -> &SequenceBatch {
        match &self.input {
            BatchInput::Sequence(s) => s,
            _ => unreachable!("sequence models declare the sequence input kind"),
        }
    }
}

/// What a model may look at when it is built: the training data and the device (never test).
pub struct ModelContext<'a> {
    pub dataset: &'a PreparedDataset,
    pub device: Device,
}

/// A built model, as the trainer and evaluator see it.
pub trait Recommender {
    /// Scores over all items, shape [B, num_items]; column j belongs to item id j + 1.
    fn scores(&self, batch: &Batch, train: bool) -> Tensor;

    /// The training loss of one batch; by default the full-softmax cross-entropy every model of
    /// the benchmark is trained with.
    fn loss(&self, batch: &Batch) -> Tensor {
        self.scores(batch, true)
            .cross_entropy_for_logits(&batch.targets)
    }

    /// Which training samples an epoch visits.
    fn epoch_samples(&self) -> EpochSamples {
        EpochSamples::All
    }
}

/// The training samples of an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochSamples {
    /// Every training sample, each trained at its target.
    All,
    /// Each user's sample with the longest input only
    /// ([`SampleSet::longest_input_per_user`](crate::dataset::SampleSet::longest_input_per_user)),
    /// for a model whose loss trains every position of that input at the item after it.
    LongestPerUser,
}

/// A model type: its typed config and how it is built. The registry turns this into the
/// name-based entry points (resolve without weights, input kind, build).
pub trait Model: Recommender + Sized + 'static {
    /// Every parameter with its default; serialises to the flat parameter map stored in results.
    type Config: Serialize + DeserializeOwned + Default + Clone;
    /// Implementation version, part of every run id: bump it whenever the model's numbers
    /// change (`tests/model_versions.rs` fails when outputs change without a bump).
    const VERSION: u32;
    /// Parameters serialised only when set (left out at their default, so adding one kept the
    /// run ids of existing results); accepted like the others.
    const OPTIONAL_PARAMETERS: &'static [&'static str] = &[];

    fn input_kind(config: &Self::Config) -> InputKind;

    /// Range checks that need no data (run before anything is built).
    fn validate(_config: &Self::Config) -> Result<(), String> {
        Ok(())
    }

    /// Creates the parameters under `path`; `Err` says why the model cannot run on this data.
    fn new(path: &nn::Path, config: &Self::Config, context: &ModelContext) -> Result<Self, String>;
}

/// Number of trainable scalars in a var store.
pub fn count_parameters(vs: &nn::VarStore) -> usize {
    vs.trainable_variables().iter().map(Tensor::numel).sum()
}

/// Checks a dropout-like probability: `[0, 1)`.
pub fn check_probability(field: &str, value: f64) -> Result<(), String> {
    check_range(field, value, 0.0, 1.0, false)
}

/// The widest embedding, hidden or feed-forward layer a model may ask for: the item table alone
/// is items × width floats, so a slip of the finger must not ask for terabytes.
pub const MAX_WIDTH: i64 = 4096;
/// The widest feed-forward layer (4 × the widest embedding, SASRec's and Graphormer's ratio).
pub const MAX_INNER_WIDTH: i64 = 4 * MAX_WIDTH;
/// The most layers, blocks or recurrent layers of one model.
pub const MAX_DEPTH: i64 = 16;
/// The most learned position rows (inputs longer than the table share its last row).
pub const MAX_POSITIONS: i64 = 1024;

/// Checks a width or count that sizes parameters or loops: `1..=max`, naming the field.
pub fn check_size(field: &str, value: i64, max: i64) -> Result<(), String> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{field} = {value} is out of range: between 1 and {max}"
        ))
    }
}

/// [`check_size`] for a `usize` count.
pub fn check_count(field: &str, value: usize, max: i64) -> Result<(), String> {
    check_size(field, i64::try_from(value).unwrap_or(i64::MAX), max)
}

/// Checks that attention heads split the node width evenly.
pub fn check_heads(heads: i64, dim: i64) -> Result<(), String> {
    if heads < 1 || dim % heads != 0 {
        return Err(format!(
            "heads = {heads} must be at least 1 and divide dim = {dim}"
        ));
    }
    Ok(())
}

/// Checks that `value` lies in `[lo, hi)` (or `[lo, hi]` with `inclusive`), naming the field.
pub fn check_range(
    field: &str,
    value: f64,
    lo: f64,
    hi: f64,
    inclusive: bool,
) -> Result<(), String> {
    let inside = value >= lo && if inclusive { value <= hi } else { value < hi };
    if inside {
        Ok(())
    } else {
        let close = if inclusive { ']' } else { ')' };
        Err(format!("{field} = {value} is outside [{lo}, {hi}{close}"))
    }
}
