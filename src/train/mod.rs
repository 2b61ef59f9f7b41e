//! Training and evaluation passes: batching, the trainer loop, early stopping, and the tensor
//! side of evaluation (scores -> ranks), which feeds the pure metrics of `eval`.
pub mod batching;
pub mod early_stopping;
pub mod evaluation;
pub mod trainer;

pub use batching::{BatchSource, SplitInputs};
pub use trainer::{
    seed_torch, shuffle_rng, train_and_evaluate, SplitSources, TrainOptions, TrainOutcome,
};
