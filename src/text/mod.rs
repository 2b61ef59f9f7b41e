//! Pretrained sentence encoders implemented in `tch`, read from local files only (nothing is
//! fetched at run time), shared by `prepare` (item text features) and by models that embed
//! descriptions.
//!
//! - [`minilm`]: sentence-transformers' all-MiniLM-L6-v2 (384-d), installed by
//!   `./ci/setup-minilm.sh`.
pub mod minilm;

pub use minilm::{MiniLm, MiniLmError};
