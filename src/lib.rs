//! mmsr-bench: a benchmark and reproducibility harness for graph-based multimodal sequential
//! recommendation (MMSR's HAN-GNN and baselines) on libtorch.
//!
//! The modules follow the pipeline a batch walks through:
//! `data` (raw logs, splits, prepared datasets) -> `model` (one trait, a registry) -> `train`
//! (batching, trainer, evaluation passes) -> `eval` (pure metrics, evaluator contract) ->
//! `report` (result files, tables). `experiment` wires one run; `cli` is the thin front end.
/// The seed of every default (the official code's): runs, codes, text features, the synthetic
/// generator, subsamples and the scaling study's data.
pub const DEFAULT_SEED: u64 = 2023;

pub mod allocator;
pub mod check;
pub mod cli;
pub mod config;
pub mod dataset;
pub mod device;
pub mod eval;
pub mod experiment;
pub mod faults;
pub mod graph;
pub mod guard;
pub mod modality;
pub mod model;
pub mod native;
pub mod openmp;
pub mod optim;
pub mod plan;
pub mod pool;
pub mod prepare;
pub mod record;
pub mod report;
pub mod scaling;
pub mod text;
pub mod train;
pub mod vml;
