//! The built-in all-MiniLM-L6-v2 (`mmsr_bench::text::minilm`) against sentence-transformers'
//! own embeddings of the same installed files (`tests/fixtures/minilm/reference.json`), and
//! `prepare --text-encoder minilm` on real Amazon Beauty titles.
//!
//! These tests need the model that `./ci/setup-minilm.sh` installs into `.models/`; without it
//! they fail (they are not skipped), saying so.

use crate::common;

use std::path::Path;

use mmsr_bench::dataset::registry::prepared_dir;
use mmsr_bench::dataset::store;
use mmsr_bench::modality::Modality;
use mmsr_bench::text::minilm::{self, MiniLm, DIM};
use tch::{Device, Kind, Tensor};

fn model() -> MiniLm {
    let dir = minilm::default_dir();
    MiniLm::load(&dir, Device::Cpu).unwrap_or_else(|e| {
        panic!(
            "these tests need all-MiniLM-L6-v2 in {}: run ./ci/setup-minilm.sh first ({e})",
            dir.display()
        )
    })
}

fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    assert_eq!(t.kind(), Kind::Float);
    assert_eq!(t.device(), Device::Cpu);
    let n = t.size()[0];
    (0..n)
        .map(|i| Vec::<f32>::try_from(t.get(i)).unwrap())
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

struct Reference {
    sentences: Vec<String>,
    embeddings: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm/reference.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let sentences = json["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let embeddings = json["embeddings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    Reference {
        sentences,
        embeddings,
    }
}

#[test]
fn matches_sentence_transformers() {
    let _rng = crate::common::torch_rng();
    let model = model();
    let reference = reference();
    assert!(reference.sentences.len() >= 10);
    assert!(reference.sentences.iter().any(String::is_empty));
    let texts: Vec<&str> = reference.sentences.iter().map(String::as_str).collect();
    let ours = model.encode(&texts).unwrap();
    assert_eq!(ours.size(), [texts.len() as i64, DIM as i64]);
    let mut worst = 0.0f32;
    for ((text, got), want) in texts.iter().zip(rows(&ours)).zip(&reference.embeddings) {
        assert_eq!(want.len(), DIM);
        let diff = max_abs_diff(&got, want);
        assert!(diff < 2e-5, "{text:?}: max |Δ| = {diff:e}");
        worst = worst.max(diff);
    }
    eprintln!("max |Δ| against sentence-transformers: {worst:e}");
    // One at a time as well (other batches, other padding).
    for (text, want) in texts.iter().zip(&reference.embeddings) {
        let got = rows(&model.encode(&[text]).unwrap()).remove(0);
        assert!(max_abs_diff(&got, want) < 2e-5, "{text:?} alone");
    }
}

#[test]
fn a_vector_does_not_depend_on_its_batch() {
    let _rng = crate::common::torch_rng();
    let model = model();
    let short = "the next item the user bought";
    let alone = rows(&model.encode(&[short]).unwrap()).remove(0);
    let long = "a very long product description with many words, ".repeat(40);
    let medium = "Maybelline New York Great Lash Washable Mascara, Blackest Black, 0.43 fl. oz.";
    // Padded to 256 tokens next to a truncated text.
    let batch = [long.as_str(), short, medium, ""];
    let together = rows(&model.encode(&batch).unwrap());
    assert!(max_abs_diff(&together[1], &alone) < 1e-6);
    // 70 texts: two batches of 64 in order of length, the first padded to 256 tokens.
    let many: Vec<&str> = (0..70)
        .map(|i| match i % 3 {
            0 => long.as_str(),
            1 => medium,
            _ => short,
        })
        .collect();
    let encoded = rows(&model.encode(&many).unwrap());
    for (i, v) in encoded.iter().enumerate() {
        let want = &together[[0, 2, 1][i % 3]];
        assert!(max_abs_diff(v, want) < 1e-6, "text {i}");
    }
}

#[test]
fn vectors_have_unit_norm_and_edge_cases_work() {
    let _rng = crate::common::torch_rng();
    let model = model();
    let texts = ["", "   ", "a", "SPF 50+ 資生堂 🌞", "x y z"];
    let vectors = model.encode(&texts).unwrap();
    for (text, v) in texts.iter().zip(rows(&vectors)) {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{text:?}: norm {norm}");
    }
    // Whitespace is stripped, as in sentence-transformers: "   " is the empty string.
    let v = rows(&vectors);
    assert!(max_abs_diff(&v[0], &v[1]) < 1e-6);
    let none = model.encode(&[]).unwrap();
    assert_eq!(none.size(), [0, DIM as i64]);
    assert_eq!(none.kind(), Kind::Float);
}

#[test]
fn missing_or_corrupt_files_are_explained() {
    let _rng = crate::common::torch_rng();
    let missing = Path::new("/nonexistent/all-minilm-l6-v2");
    let message = MiniLm::load(missing, Device::Cpu).unwrap_err().to_string();
    assert!(
        message.contains("/nonexistent/all-minilm-l6-v2")
            && message.contains("./ci/setup-minilm.sh"),
        "{message}"
    );
    // A directory with the configs but truncated weights: the error names the weights file.
    let installed = minilm::default_dir();
    let dir = tempfile::tempdir().unwrap();
    let message = MiniLm::load(dir.path(), Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("model.safetensors: not found")
            && message.contains("./ci/setup-minilm.sh"),
        "{message}"
    );
    for file in ["tokenizer.json", "config.json"] {
        std::fs::copy(installed.join(file), dir.path().join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}; run ./ci/setup-minilm.sh first"));
    }
    let weights = std::fs::read(installed.join("model.safetensors")).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), &weights[..1000]).unwrap();
    let message = MiniLm::load(dir.path(), Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("model.safetensors") && message.contains("sha256"),
        "{message}"
    );
    // Another architecture in config.json.
    std::fs::write(dir.path().join("model.safetensors"), &weights).unwrap();
    let config = std::fs::read_to_string(installed.join("config.json")).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        config.replace("\"num_hidden_layers\": 6", "\"num_hidden_layers\": 12"),
    )
    .unwrap();
    let message = MiniLm::load(dir.path(), Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("config.json") && message.contains("num_hidden_layers"),
        "{message}"
    );
}

/// `prepare --text-encoder minilm` on the first users of the real Amazon Beauty sequences with
/// their real titles: the stored text features are MiniLM's vectors of the lowercased titles,
/// and the manifest says where they came from.
#[test]
fn prepare_with_minilm_stores_its_vectors_of_the_titles() {
    let _rng = crate::common::torch_rng();
    let model = model();
    let dir = tempfile::tempdir().unwrap();
    let sequences =
        std::fs::read_to_string(common::shared_data("OpenP5/data/Beauty/user_sequence.txt"))
            .unwrap();
    let head: String = sequences
        .lines()
        .take(60)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("seq.txt"), head).unwrap();
    let item_file = common::shared_data("RecBole_SAE/dataset/Amazon_Beauty/Amazon_Beauty.item");
    let out = common::mmsr(
        dir.path(),
        &[
            "prepare",
            "beauty60",
            "--from-sequences",
            "seq.txt",
            "--item-file",
            item_file.to_str().unwrap(),
            "--k-core",
            "0",
            "--clusters",
            "4",
            "--links",
            "2",
            "--ae-max-epochs",
            "2",
            "--device",
            "cpu",
            "--text-encoder",
            "minilm",
        ],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let stored = prepared_dir(&dir.path().join("data"), "beauty60");
    let manifest = store::read_manifest(&stored).unwrap();
    let text_source = &manifest.modalities[&Modality::Text].source;
    assert!(
        text_source.contains("all-MiniLM-L6-v2") && text_source.contains("384-d"),
        "{text_source}"
    );
    let dataset = store::load(&stored).unwrap();
    let text = dataset.side.text.as_ref().unwrap();
    assert_eq!(text.dim, DIM);
    let titled: Vec<(usize, String)> = dataset
        .side
        .titles
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.clone().map(|t| (i + 1, t)))
        .collect();
    assert!(titled.len() > 100, "{} titled items", titled.len());
    assert_eq!(text.coverage(), titled.len());
    for (item, title) in [
        &titled[0],
        &titled[titled.len() / 2],
        &titled[titled.len() - 1],
    ] {
        let want = rows(&model.encode(&[&title.to_lowercase()]).unwrap()).remove(0);
        let got = text.row(*item).unwrap();
        assert!(max_abs_diff(got, &want) < 1e-6, "item {item} {title:?}");
        // The tokenizer lowercases anyway: the title as written gives the same vector.
        let as_written = rows(&model.encode(&[title]).unwrap()).remove(0);
        assert!(
            max_abs_diff(got, &as_written) < 1e-6,
            "item {item} {title:?}"
        );
    }
}

#[test]
fn prepare_rejects_text_pooling_with_minilm() {
    let _rng = crate::common::torch_rng();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("seq.txt"), "u1 a b c\nu2 a b c\n").unwrap();
    let out = common::mmsr(
        dir.path(),
        &[
            "prepare",
            "tiny",
            "--from-sequences",
            "seq.txt",
            "--text-encoder",
            "minilm",
            "--text-pooling",
            "masked",
        ],
    );
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("--text-pooling applies to a TorchScript"),
        "{}",
        common::stderr(&out)
    );
}
