//! Run ids hash each model type's implementation version, so a stored result is reused only
//! while the model computes the same numbers. This test pins every registry entry's scores on a
//! fixed batch (fixed data, seed and width) together with its version, in
//! `tests/fixtures/model_fingerprints.json`: if a model's output changes while its version does
//! not, it fails and says to bump the version. After a deliberate change, bump the version
//! (`Model::VERSION`, `GraphLayer::VERSION` or `graph::WRAPPER_VERSION`) and regenerate with
//! `MMSR_UPDATE_FINGERPRINTS=1 cargo test --release --test model_versions`.

use crate::common::zoo;

use std::collections::BTreeMap;
use std::path::PathBuf;

use mmsr_bench::model::REGISTRY;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Fingerprint {
    version: u32,
    /// Scores of a few fixed (sample, item) cells, then the sum and the absolute sum.
    values: Vec<f64>,
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/model_fingerprints.json")
}

fn fingerprint(name: &str) -> Fingerprint {
    let data = zoo::random_dataset(1);
    let params = if name == "pop" {
        json!({})
    } else {
        json!({"dim": 16})
    };
    let built = zoo::build(name, params, &data, 7);
    let kind = built.resolved.kind;
    let inputs = zoo::inputs(&data, &data.splits.train, kind);
    let batch =
        zoo::source(&data.splits.train, inputs.as_ref(), kind).batch(&(0..24).collect::<Vec<_>>());
    let scores =
        tch::no_grad(|| built.model.model.scores(&batch, false)).to_kind(tch::Kind::Double);
    let mut values: Vec<f64> = [(0, 0), (3, 7), (11, 19), (17, 33), (23, 39)]
        .iter()
        .map(|&(s, i)| scores.double_value(&[s, i]))
        .collect();
    values.push(scores.sum(tch::Kind::Double).double_value(&[]));
    values.push(scores.abs().sum(tch::Kind::Double).double_value(&[]));
    Fingerprint {
        version: built.resolved.version,
        values,
    }
}

#[test]
fn outputs_change_only_with_a_version_bump() {
    let _rng = crate::common::torch_rng();
    let current: BTreeMap<String, Fingerprint> = REGISTRY
        .iter()
        .map(|e| (e.name.to_string(), fingerprint(e.name)))
        .collect();
    if std::env::var_os("MMSR_UPDATE_FINGERPRINTS").is_some() {
        let text = serde_json::to_string_pretty(&current).unwrap() + "\n";
        std::fs::write(fixture(), text).unwrap();
        return;
    }
    let stored: BTreeMap<String, Fingerprint> =
        serde_json::from_str(&std::fs::read_to_string(fixture()).unwrap()).unwrap();
    let regenerate =
        "regenerate with MMSR_UPDATE_FINGERPRINTS=1 cargo test --release --test model_versions";
    for (name, now) in &current {
        let Some(pinned) = stored.get(name) else {
            panic!("{name} has no pinned fingerprint; {regenerate}");
        };
        // Kernels differ between CPUs in the last bits; a real change is orders larger.
        let scale = pinned.values.iter().fold(0f64, |m, v| m.max(v.abs()));
        let changed = now
            .values
            .iter()
            .zip(&pinned.values)
            .any(|(a, b)| (a - b).abs() > 1e-4 * scale + 1e-7);
        if changed {
            assert_ne!(
                now.version, pinned.version,
                "{name}: its outputs changed but its version is still {}: bump the model type's version so stored results are not reused, then {regenerate}\n pinned {:?}\n now    {:?}",
                now.version, pinned.values, now.values
            );
            panic!(
                "{name}: version bumped to {} with new outputs; {regenerate}",
                now.version
            );
        }
        assert_eq!(
            now.version, pinned.version,
            "{name}: version changed without a change in outputs is allowed, but the fixture must say so; {regenerate}"
        );
    }
    assert_eq!(
        stored.len(),
        current.len(),
        "entries were removed; {regenerate}"
    );
}
