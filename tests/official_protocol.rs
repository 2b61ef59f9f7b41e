//! `--protocol official` (issue 22 item 1): the official code's training and reporting as a
//! labelled reproduction mode. Runs on the embedded synthetic data: nothing selected or held out,
//! test after every epoch, the any-of-six stopping rule, per-metric best over epochs; never a
//! leaderboard row; `check` replays the rule and rejects tampered files.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{mmsr, stdout};
use mmsr_bench::record::read::collect_json;
use serde_json::{json, Value};

const SMALL: [&str; 8] = [
    "--set",
    "model.han-gnn.dim=16",
    "--set",
    "model.han-gnn.init_codes_from_centres=false",
    "--set",
    "train.max_epochs=6",
    "--set",
    "train.patience=1",
];

/// pop and han-gnn under `official` (seeds 1, 2) in `sub`, han-gnn under `validation` (seed 1)
/// in `val`, and the leaderboard of both in `board`, made once.
fn submission() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let run_all = |folder: &str, models: &str, seeds: &str, protocol: &str| {
            let mut args = vec![
                "-q",
                "--results-dir",
                folder,
                "run-all",
                "--models",
                models,
                "--seeds",
                seeds,
                "--device",
                "cpu",
                "--protocol",
                protocol,
            ];
            args.extend_from_slice(&SMALL);
            let out = mmsr(dir.path(), &args);
            assert!(out.status.success(), "{}", common::stderr(&out));
        };
        run_all("val", "han-gnn", "1", "validation");
        run_all("sub", "pop,han-gnn", "1,2", "official");
        let out = mmsr(
            dir.path(),
            &["leaderboard", "--results", "sub", "val", "--out", "board"],
        );
        assert!(out.status.success(), "{}", common::stderr(&out));
        let log = common::shared_data("official-beauty/LOG.md");
        let out = mmsr(
            dir.path(),
            &[
                "leaderboard",
                "--results",
                "sub",
                "--out",
                "sub",
                "--reference-log",
                log.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{}", common::stderr(&out));
        dir
    })
    .path()
}

fn runs(root: &Path, model: &str) -> Vec<(PathBuf, Value)> {
    let mut paths = Vec::new();
    for folder in ["sub", "val"] {
        let dir = root.join(folder).join("runs/synthetic").join(model);
        if dir.exists() {
            collect_json(&dir, &mut paths).unwrap();
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let v = serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
            (p, v)
        })
        .collect()
}

fn official_runs(root: &Path, model: &str) -> Vec<(PathBuf, Value)> {
    runs(root, model)
        .into_iter()
        .filter(|(_, v)| v["protocol"] == "official")
        .collect()
}

fn metric(set: &Value, k: u64, name: &str) -> f64 {
    set["at"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["k"] == k)
        .unwrap()[name]
        .as_f64()
        .unwrap()
}

#[test]
fn official_runs_train_on_everything_test_every_epoch_and_report_the_best() {
    let root = submission();
    let official = official_runs(root, "han-gnn");
    assert_eq!(official.len(), 2);
    for (path, r) in &official {
        let at = path.display();
        assert_eq!(r["selected_epoch"], Value::Null, "{at}");
        assert_eq!(r["validation"], json!({"num_samples": 0, "at": []}), "{at}");
        let valid = r["dataset"]["counts"]["valid_samples"].as_u64().unwrap();
        assert!(valid > 0, "the counts are the dataset's own");
        let source = r["dataset"]["source"].as_str().unwrap();
        assert!(
            source.contains(&format!("its {valid} validation samples trained on")),
            "{source}"
        );
        let curve = r["learning_curve"].as_array().unwrap();
        assert_eq!(curve.len() as u64, r["epochs_run"].as_u64().unwrap());
        assert!(curve.iter().all(|e| e["test"].is_object()), "{at}");
        assert_eq!(
            r["test"],
            curve.last().unwrap()["test"],
            "test = last epoch"
        );
        let best = &r["official_best_over_epochs_on_test"];
        for k in [5, 10, 20] {
            for name in ["hr", "ndcg", "mrr", "ndcg_official"] {
                let max = curve
                    .iter()
                    .map(|e| metric(&e["test"], k, name))
                    .fold(f64::NEG_INFINITY, f64::max);
                assert_eq!(metric(best, k, name), max, "{at} {name}@{k}");
            }
        }
    }
    // The protocol is part of the identity: seed 1 has two han-gnn files, with other ids.
    let ids: Vec<String> = runs(root, "han-gnn")
        .iter()
        .filter(|(_, v)| v["config"]["seed"] == 1)
        .map(|(_, v)| v["run_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn official_runs_are_never_leaderboard_rows_and_are_labelled_in_the_summary() {
    let root = submission();
    let board: Value =
        serde_json::from_str(&fs::read_to_string(root.join("board/leaderboard.json")).unwrap())
            .unwrap();
    let rows: Vec<(String, Vec<u64>)> = board["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["rows"].as_array().unwrap().clone())
        .map(|r| {
            let seeds = r["seeds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_u64().unwrap())
                .collect();
            (r["model"].as_str().unwrap().to_string(), seeds)
        })
        .collect();
    // Only the validation-protocol han-gnn run (seed 1) is a row.
    assert_eq!(rows, vec![("han-gnn".to_string(), vec![1])], "{board}");
    let summary = fs::read_to_string(root.join("sub/summary.md")).unwrap();
    assert!(
        summary.contains(
            "han-gnn (protocol official: best per metric over epochs on test, optimistic)"
        ),
        "{summary}"
    );
}

fn copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(submission().join("sub"))
        .arg(dir.path().join("sub"))
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn check(dir: &Path) -> (Option<i32>, String) {
    let out = mmsr(dir, &["check", "sub"]);
    (out.status.code(), stdout(&out) + &common::stderr(&out))
}

fn edit(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn check_passes_official_runs_and_replays_their_rule() {
    let (code, text) = check(submission());
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("4 of 4 runs are under protocol official: their numbers are selected on test (optimistic)"),
        "check labels them: {text}"
    );

    // A curve cut short: the rule, replayed, would have gone on (or the cap not reached).
    let dir = copy();
    let (path, r) = &official_runs(dir.path(), "han-gnn")[0];
    let epochs = r["epochs_run"].as_u64().unwrap();
    assert!(epochs >= 2, "the fixture trains at least two epochs");
    edit(path, |v| {
        v["learning_curve"].as_array_mut().unwrap().pop();
        v["epochs_run"] = json!(epochs - 1);
        let last = v["learning_curve"].as_array().unwrap().last().unwrap()["test"].clone();
        v["test"] = last;
    });
    let (code, text) = check(dir.path());
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("the official rule, patience 1, replayed"),
        "{text}"
    );
}

#[test]
fn check_rejects_a_selected_epoch_validation_or_a_raised_best_under_official() {
    let dir = copy();
    let (path, _) = &official_runs(dir.path(), "han-gnn")[1];
    edit(path, |v| {
        v["selected_epoch"] = json!(0);
        let i = v["official_best_over_epochs_on_test"]["at"]
            .as_array()
            .unwrap()
            .iter()
            .position(|a| a["k"] == 20)
            .unwrap();
        v["official_best_over_epochs_on_test"]["at"][i]["hr"] = json!(0.99);
    });
    let (code, text) = check(dir.path());
    assert_eq!(code, Some(1), "{text}");
    for needle in [
        "selected_epoch: expected null (protocol official selects no epoch)",
        "official_best_over_epochs_on_test.at[k=20].HR",
    ] {
        assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
    }

    let dir = copy();
    let (path, _) = &official_runs(dir.path(), "pop")[0];
    let validation = runs(submission(), "han-gnn")
        .into_iter()
        .find(|(_, v)| v["protocol"] == "validation")
        .unwrap()
        .1["validation"]
        .clone();
    edit(path, |v| v["validation"] = validation);
    let (code, text) = check(dir.path());
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("no validation metrics (protocol official trains on the validation samples)"),
        "{text}"
    );
}

/// The authors' log as the reference curve: read from the real LOG.md (its corrected NDCG
/// columns), kept in reproduction.json, re-derived by `check`, and kept when the leaderboard is
/// regenerated without `--reference-log`.
#[test]
fn the_reproduction_report_sets_official_runs_beside_the_authors_log() {
    let root = submission();
    let report: Value =
        serde_json::from_str(&fs::read_to_string(root.join("sub/reproduction.json")).unwrap())
            .unwrap();
    let epochs = report["reference"]["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 19, "the log's epochs 0-18");
    let at = |epoch: usize, m: &str| epochs[epoch]["metrics"][m].as_f64().unwrap();
    assert!((at(9, "HR@20") - 0.141754).abs() < 1e-12);
    assert!(
        (at(9, "NDCG@20") - 0.07319).abs() < 1e-12,
        "the corrected column"
    );
    assert!((at(0, "MRR@5") - 0.010878).abs() < 1e-12);
    assert_eq!(
        epochs[0]["train_loss_sum"],
        json!(9609.607),
        "the summed loss"
    );
    let studies = report["studies"].as_array().unwrap();
    let han = studies.iter().find(|s| s["model"] == "han-gnn").unwrap();
    assert_eq!(han["seeds"], json!([1, 2]));
    // Our loss per epoch beside the log's sum divided by our batch count.
    let batches = han["batches_per_epoch"].as_u64().unwrap();
    assert!(batches > 0);
    let ours = han["epochs"][0]["train_loss"]["mean"].as_f64().unwrap();
    let md = fs::read_to_string(root.join("sub/reproduction.md")).unwrap();
    assert!(md.contains("| HR@20 |") && md.contains("| 14.18 |"), "{md}");
    let theirs = 9609.607 / batches as f64;
    let row = format!("| 0 | {ours:.4} ± ");
    assert!(
        md.contains(&format!("summed loss divided by {batches})"))
            && md.lines().any(|l| l.starts_with(&row)
                && l.contains(&format!("| {theirs:.4} | {:+.4} (", ours - theirs))),
        "{md}"
    );
    assert!(root
        .join("sub/plots/synthetic-reproduction-han-gnn.svg")
        .is_file());

    let dir = copy();
    let out = mmsr(
        dir.path(),
        &["leaderboard", "--results", "sub", "--out", "sub"],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let again = fs::read_to_string(dir.path().join("sub/reproduction.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&again).unwrap(),
        report,
        "regenerating keeps the reference"
    );
    edit(&dir.path().join("sub/reproduction.json"), |v| {
        v["reference"]["epochs"][9]["metrics"]["HR@20"] = json!(0.15);
    });
    let (code, text) = check(dir.path());
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("reproduction.json: reference: expected the curve read from"),
        "{text}"
    );
    let dir = copy();
    edit(&dir.path().join("sub/reproduction.json"), |v| {
        v["studies"][0]["best"][0][1]["mean"] = json!(0.5);
    });
    let (code, text) = check(dir.path());
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("reproduction.json: (document)"), "{text}");
}
