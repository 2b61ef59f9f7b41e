//! The result format has a versioned JSON Schema in the repository
//! (`leaderboard/schema/mmsr-bench-result.v<N>.json`): every committed result file and a freshly
//! written one validate against it, and it rejects what readers reject.

use crate::common;

use std::path::{Path, PathBuf};

use mmsr_bench::record::read::collect_json;
use mmsr_bench::record::result::SCHEMA_VERSION;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn validator() -> jsonschema::Validator {
    let path = root().join(format!(
        "leaderboard/schema/mmsr-bench-result.v{SCHEMA_VERSION}.json"
    ));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{}: the schema of result version {SCHEMA_VERSION} must be committed beside the older ones",
            path.display()
        )
    }))
    .unwrap();
    assert_eq!(
        schema["properties"]["schema_version"]["const"],
        SCHEMA_VERSION
    );
    jsonschema::validator_for(&schema).unwrap()
}

fn errors(validator: &jsonschema::Validator, path: &Path) -> Vec<String> {
    let value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    validator
        .iter_errors(&value)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

#[test]
fn committed_results_validate_against_the_schema() {
    let validator = validator();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root().join("leaderboard")).unwrap() {
        let runs = entry.unwrap().path().join("runs");
        if runs.is_dir() {
            collect_json(&runs, &mut files).unwrap();
        }
    }
    assert!(!files.is_empty(), "the leaderboard holds result files");
    for file in files {
        let errors = errors(&validator, &file);
        assert!(errors.is_empty(), "{}: {errors:?}", file.display());
    }
}

#[test]
fn a_fresh_result_validates_and_a_broken_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::mmsr(
        dir.path(),
        &["-q", "run", "--model", "pop", "--device", "cpu"],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let mut files = Vec::new();
    collect_json(&dir.path().join("results/runs"), &mut files).unwrap();
    let validator = validator();
    assert_eq!(errors(&validator, &files[0]), Vec::<String>::new());

    let mut broken: Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    broken["test"]["at"][0]["hr"] = Value::from(1.5);
    broken["config"]["surprise"] = Value::from(1);
    let messages: Vec<String> = validator
        .iter_errors(&broken)
        .map(|e| e.to_string())
        .collect();
    assert!(messages.iter().any(|m| m.contains("1.5")), "{messages:?}");
    assert!(
        messages.iter().any(|m| m.contains("surprise")),
        "{messages:?}"
    );
}
