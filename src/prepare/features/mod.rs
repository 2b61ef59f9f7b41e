//! Item feature extractors: the built-in text encoder (no network, no weights), the built-in
//! all-MiniLM-L6-v2 (local weights installed by ./ci/setup-minilm.sh) and an optional
//! user-supplied TorchScript encoder.
pub mod minilm;
pub mod text;
pub mod torchscript;

pub use text::encode_titles;
