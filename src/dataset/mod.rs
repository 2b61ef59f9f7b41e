//! What runs read: interaction datasets, k-core and deterministic ids, the fixed splits, the
//! versioned on-disk prepared format, dataset names, the embedded `synthetic` generator, the
//! official-pickle importer. Feature tables and modality codes are `crate::modality`; building a
//! prepared dataset from raw files (sources, features, codes) is `crate::prepare`.
pub mod log;
pub mod missing;
pub mod official;
pub mod prepared;
pub mod recbole;
pub mod registry;
pub mod split;
pub mod store;
pub mod subsample;
pub mod synthetic;

pub use log::{InteractionDataset, RawLog};
pub use prepared::{DatasetCounts, PreparedDataset, Provenance};
pub use split::{SampleSet, SplitConfig, Splits};
