//! What only `download` and `prepare` use: the raw-file registry and downloader, one parser per
//! raw format, item features (text encoders), and the pipeline that
//! turns raw files or sequence files into a stored prepared dataset (`crate::dataset`; codes are
//! computed by `crate::modality::compute`).
pub mod features;
pub mod offline;
pub mod pipeline;
pub mod sequence_file;
pub mod sources;

pub use pipeline::*;
