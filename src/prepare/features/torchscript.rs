//! An optional pretrained text encoder (e.g. t5-base, spec §2.2) that a user exported to
//! TorchScript: `prepare --text-encoder DIR` with `DIR/encoder.pt` (forward(input_ids,
//! attention_mask), both int64 [B, L], returning the last hidden states [B, L, D] or a tuple
//! whose first element they are) and `DIR/tokenizer.json` (a Hugging Face fast tokenizer).
//! Everything is read from disk; nothing is fetched.
//!
//! Titles are lowercased and encoded in batches of 512 in item order, padded to the longest in
//! the batch and truncated at 512 tokens, as officially. Pooling `official` averages over all
//! positions including padding (the official quirk: a vector then depends on its batch);
//! `masked` averages over real tokens only.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{CModule, Device, IValue, Kind, Tensor};
use thiserror::Error;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::modality::FeatureTable;

pub const BATCH: usize = 512;
pub const MAX_TOKENS: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Mean over all positions, padding included (the official computation).
    Official,
    /// Mean over real tokens.
    Masked,
}

#[derive(Debug, Error)]
pub enum TorchScriptEncoderError {
    #[error("{path}: {problem}; --text-encoder expects a directory with encoder.pt (TorchScript: forward(input_ids, attention_mask) -> hidden states [B, L, D]) and tokenizer.json (see docs/datasets.md)")]
    Load { path: PathBuf, problem: String },
    #[error("{path}: encoding batch {batch} failed: {problem}")]
    Encode {
        path: PathBuf,
        batch: usize,
        problem: String,
    },
}

pub struct TorchScriptEncoder {
    dir: PathBuf,
    module: CModule,
    tokenizer: Tokenizer,
    device: Device,
}

impl TorchScriptEncoder {
    pub fn load(dir: &Path, device: Device) -> Result<Self, TorchScriptEncoderError> {
        let load_error =
            |path: PathBuf, problem: String| TorchScriptEncoderError::Load { path, problem };
        let (module_path, tokenizer_path) = (dir.join("encoder.pt"), dir.join("tokenizer.json"));
        for path in [&module_path, &tokenizer_path] {
            if !path.is_file() {
                return Err(load_error(path.clone(), "not found".into()));
            }
        }
        let mut module = CModule::load_on_device(&module_path, device)
            .map_err(|e| load_error(module_path.clone(), first_line(&e.to_string())))?;
        module.set_eval();
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| load_error(tokenizer_path.clone(), e.to_string()))?;
        let pad_id = tokenizer.get_padding().map_or(0, |p| p.pad_id);
        let pad_token = tokenizer
            .get_padding()
            .map_or_else(|| "<pad>".to_string(), |p| p.pad_token.clone());
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id,
            pad_token,
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| load_error(tokenizer_path.clone(), e.to_string()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            module,
            tokenizer,
            device,
        })
    }

    /// Encodes `texts[i - 1]` of item `i`; items without text get no vector.
    pub fn encode(
        &self,
        texts: &[Option<String>],
        pooling: Pooling,
    ) -> Result<FeatureTable, TorchScriptEncoderError> {
        let present: Vec<(usize, String)> = texts
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.as_ref().map(|t| (i + 1, t.to_lowercase())))
            .collect();
        let mut table: Option<FeatureTable> = None;
        for (batch_index, chunk) in present.chunks(BATCH).enumerate() {
            let fail = |problem: String| TorchScriptEncoderError::Encode {
                path: self.dir.join("encoder.pt"),
                batch: batch_index,
                problem,
            };
            let inputs: Vec<&str> = chunk.iter().map(|(_, t)| t.as_str()).collect();
            let encodings = self
                .tokenizer
                .encode_batch(inputs, true)
                .map_err(|e| fail(e.to_string()))?;
            let length = encodings
                .iter()
                .map(|e| e.get_ids().len())
                .max()
                .unwrap_or(0);
            if length == 0 || encodings.iter().any(|e| e.get_ids().len() != length) {
                return Err(fail(format!(
                    "the tokenizer gave {} token ids for this batch of titles (lengths {:?}); it must pad every title to one length of at least 1 (set padding in tokenizer.json)",
                    if length == 0 { "no" } else { "unequal numbers of" },
                    encodings.iter().map(|e| e.get_ids().len()).take(5).collect::<Vec<_>>()
                )));
            }
            let flat = |f: &dyn Fn(&tokenizers::Encoding) -> Vec<i64>| -> Tensor {
                let values: Vec<i64> = encodings.iter().flat_map(f).collect();
                Tensor::from_slice(&values)
                    .view([chunk.len() as i64, length as i64])
                    .to_device(self.device)
            };
            let ids = flat(&|e| e.get_ids().iter().map(|&x| i64::from(x)).collect());
            let mask = flat(&|e| {
                e.get_attention_mask()
                    .iter()
                    .map(|&x| i64::from(x))
                    .collect()
            });
            let output = tch::no_grad(|| {
                self.module
                    .forward_is(&[IValue::Tensor(ids), IValue::Tensor(mask.shallow_clone())])
            })
            .map_err(|e| fail(first_line(&e.to_string())))?;
            let hidden = match output {
                IValue::Tensor(t) => t,
                IValue::Tuple(mut items) | IValue::GenericList(mut items) if !items.is_empty() => {
                    match items.remove(0) {
                        IValue::Tensor(t) => t,
                        _ => return Err(fail("the first output is not a tensor".into())),
                    }
                }
                _ => {
                    return Err(fail(
                        "the output is neither a tensor nor a tuple of tensors".into(),
                    ))
                }
            };
            let size = hidden.size();
            if size.len() != 3
                || size[0] != chunk.len() as i64
                || size[1] != length as i64
                || size[2] < 1
                || table.as_ref().is_some_and(|t| t.dim as i64 != size[2])
            {
                return Err(fail(format!(
                    "expected hidden states [{}, {length}, D], got {size:?}",
                    chunk.len()
                )));
            }
            let hidden = hidden.to_kind(Kind::Float).to_device(self.device);
            let pooled = match pooling {
                Pooling::Official => hidden.mean_dim(1, false, Kind::Float),
                Pooling::Masked => {
                    let m = mask.to_kind(Kind::Float).unsqueeze(-1);
                    (hidden * &m).sum_dim_intlist(1, false, Kind::Float)
                        / m.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0)
                }
            };
            let pooled = pooled.to_device(Device::Cpu).contiguous();
            let dim = size[2] as usize;
            let table = table.get_or_insert_with(|| {
                let source = format!(
                    "TorchScript text encoder {} ({pooling:?} pooling, {dim}-d)",
                    self.dir.display()
                );
                FeatureTable::empty(texts.len(), dim, source)
            });
            let values =
                Vec::<f32>::try_from(pooled.view([-1])).map_err(|e| fail(e.to_string()))?;
            for ((item, _), vector) in chunk.iter().zip(values.chunks(dim)) {
                table.set(*item, vector);
            }
        }
        Ok(table.unwrap_or_else(|| {
            FeatureTable::empty(texts.len(), 1, "TorchScript text encoder (no texts)")
        }))
    }
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_string()
}
