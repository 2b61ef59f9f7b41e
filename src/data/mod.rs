//! Interaction data: raw logs, k-core, deterministic ids, the fixed splits, the embedded
//! `synthetic` generator, and the versioned on-disk prepared format.
pub mod codes;
pub mod features;
pub mod log;
pub mod official;
pub mod prepare;
pub mod prepared;
pub mod registry;
pub mod sequence_file;
pub mod sources;
pub mod split;
pub mod store;
pub mod synthetic;

pub use log::{InteractionDataset, RawLog};
pub use prepared::{
    DatasetCounts, FeatureTable, ItemSideInfo, Modality, PreparedDataset, Provenance,
};
pub use split::{SampleSet, SplitConfig, Splits};
