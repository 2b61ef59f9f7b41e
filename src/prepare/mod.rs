//! What only `download` and `prepare` use: the raw-file registry and downloader, one parser per
//! raw format, item features (text encoders), modality-code computation, and the pipeline that
//! turns raw files or sequence files into a stored prepared dataset (`crate::dataset`).
pub mod codes;
pub mod features;
pub mod offline;
pub mod pipeline;
pub mod sequence_file;
pub mod sources;

pub use pipeline::*;
