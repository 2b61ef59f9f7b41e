//! Item feature extractors that run in-process (no network, no model weights).
pub mod text;

pub use text::encode_titles;
