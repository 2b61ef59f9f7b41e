//! The optional TorchScript text encoder (`prepare --text-encoder DIR`): a tiny encoder traced
//! from Rust and a word-level tokenizer.json stand in for an exported t5-base.

use mmsr_bench::prepare::features::torchscript::{Pooling, TorchScriptEncoder};
use tch::{CModule, Device, Kind, Tensor};

const TOKENIZER: &str = r#"{
  "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
  "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
  "model": {"type": "WordLevel", "vocab": {"<pad>": 0, "<unk>": 1, "red": 2, "lipstick": 3, "blue": 4, "shampoo": 5}, "unk_token": "<unk>"}
}"#;

fn encoder_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), TOKENIZER).unwrap();
    // forward(ids, mask) = table[ids] * mask: [B, L, 4] (padding positions are zero, so the
    // official pooling, which averages over them too, shrinks shorter titles).
    let table = Tensor::from_slice(&[
        9.0f32, 9.0, 9.0, 9.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0,
        0.0, 1.0, 0.0, 0.5, 0.5, 0.5, 0.5,
    ])
    .view([6, 4]);
    let example = [
        Tensor::from_slice(&[2i64, 3]).view([1, 2]),
        Tensor::from_slice(&[1i64, 1]).view([1, 2]),
    ];
    let mut forward = |inputs: &[Tensor]| {
        let hidden = Tensor::embedding(&table, &inputs[0], -1, false, false);
        vec![hidden * inputs[1].to_kind(Kind::Float).unsqueeze(-1)]
    };
    let module = CModule::create_by_tracing("Encoder", "forward", &example, &mut forward).unwrap();
    module.save(dir.path().join("encoder.pt")).unwrap();
    dir
}

#[test]
fn encodes_lowercased_titles_with_both_poolings() {
    let _rng = crate::common::torch_rng();
    let dir = encoder_dir();
    let encoder = TorchScriptEncoder::load(dir.path(), Device::Cpu).unwrap();
    let titles = vec![
        Some("Red LIPSTICK".to_string()),
        None,
        Some("blue".to_string()),
    ];
    let masked = encoder.encode(&titles, Pooling::Masked).unwrap();
    assert_eq!(masked.dim, 4);
    assert_eq!(masked.coverage(), 2);
    assert_eq!(masked.row(1).unwrap(), &[0.5, 0.5, 0.0, 0.0]); // mean of "red" and "lipstick"
    assert!(masked.row(2).is_none());
    assert_eq!(masked.row(3).unwrap(), &[0.0, 0.0, 1.0, 0.0]);
    // official: the mean includes padding positions ("blue" is padded to length 2 in its batch)
    let official = encoder.encode(&titles, Pooling::Official).unwrap();
    assert_eq!(official.row(3).unwrap(), &[0.0, 0.0, 0.5, 0.0]);
    assert_eq!(official.row(1).unwrap(), masked.row(1).unwrap());
}

#[test]
fn missing_files_are_explained() {
    let _rng = crate::common::torch_rng();
    let dir = tempfile::tempdir().unwrap();
    let message = TorchScriptEncoder::load(dir.path(), Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        message.contains("encoder.pt: not found") && message.contains("tokenizer.json"),
        "{message}"
    );
    std::fs::write(dir.path().join("encoder.pt"), b"not torchscript").unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), TOKENIZER).unwrap();
    let message = TorchScriptEncoder::load(dir.path(), Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        message.contains("encoder.pt") && message.contains("--text-encoder expects"),
        "{message}"
    );
}
