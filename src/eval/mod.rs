//! Evaluation: pure metric functions and the evaluator's input contract. No tch here: the tensor
//! side (scores -> ranks) lives in `train::evaluation` and feeds the same accumulator.
pub mod contract;
pub mod metrics;

pub use contract::{evaluate_file, EvalInputError, EvaluatorOptions, InputFormat};
pub use metrics::{rank_of_target, Metric, MetricAccumulator, MetricSet, MetricsAtK, DEFAULT_KS};
