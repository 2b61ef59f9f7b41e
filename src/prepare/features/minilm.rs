//! Item text features from the built-in all-MiniLM-L6-v2 (`prepare --text-encoder minilm`, see
//! [`crate::text::minilm`]): 384-d, L2-normalised sentence vectors of the item texts.
//!
//! As on the TorchScript path, texts are lowercased first (the model's tokenizer lowercases
//! anyway, so this changes no vector) and items without text get no vector.

use std::path::Path;

use tch::Device;

use crate::modality::FeatureTable;
use crate::text::minilm::{MiniLm, MiniLmError, DIM, MAX_TOKENS, MODEL_NAME, WEIGHTS_SHA256};

/// What the manifest records as the source of these features.
pub fn source() -> String {
    format!(
        "{MODEL_NAME} (built-in tch implementation; weights sha256 {}; lowercased, first {MAX_TOKENS} tokens, mean of token states, L2-normalised, {DIM}-d)",
        &WEIGHTS_SHA256[..16]
    )
}

/// Encodes `texts[i - 1]` of item `i` with the model in `dir`; items without text get no vector.
pub fn encode_items(
    texts: &[Option<String>],
    dir: &Path,
    device: Device,
) -> Result<FeatureTable, MiniLmError> {
    let present: Vec<(usize, String)> = texts
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.as_ref().map(|t| (i + 1, t.to_lowercase())))
        .collect();
    let model = MiniLm::load(dir, device)?;
    let mut table = FeatureTable::empty(texts.len(), DIM, source());
    let inputs: Vec<&str> = present.iter().map(|(_, t)| t.as_str()).collect();
    let vectors = model.encode(&inputs)?;
    let values =
        Vec::<f32>::try_from(vectors.view([-1])).map_err(|e| MiniLmError::Encode(e.to_string()))?;
    for ((item, _), vector) in present.iter().zip(values.chunks(DIM)) {
        table.set(*item, vector);
    }
    Ok(table)
}
