//! Item feature extractors: the built-in text encoder (no network, no weights) and an optional
//! user-supplied TorchScript encoder.
pub mod text;
pub mod torchscript;

pub use text::encode_titles;
