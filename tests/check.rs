//! `mmsr-bench check` on a real submission made by `run-all` + `leaderboard`: the honest one
//! passes; a catalogue of tampered copies is each rejected, with its reason; consistent
//! tampering that only a re-run can see is caught by `--rerun`; a reference band flags a
//! regression; unusable input exits 2.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{mmsr, stdout};
use mmsr_bench::record::read::{collect_json, load_results};
use mmsr_bench::report::table::summarize;
use serde_json::{json, Value};

/// The honest submission, made once: pop and a small han-gnn, two seeds, default synthetic.
fn honest() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = mmsr(
            dir.path(),
            &[
                "-q",
                "--results-dir",
                "sub",
                "run-all",
                "--models",
                "pop,han-gnn",
                "--seeds",
                "1,2",
                "--device",
                "cpu",
                "--set",
                "model.han-gnn.dim=16",
                "--set",
                "model.han-gnn.init_codes_from_centres=false",
                "--set",
                "train.max_epochs=3",
            ],
        );
        assert!(out.status.success(), "{}", common::stderr(&out));
        let out = mmsr(
            dir.path(),
            &["leaderboard", "--results", "sub", "--out", "sub"],
        );
        assert!(out.status.success(), "{}", common::stderr(&out));
        dir
    })
    .path()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            fs::copy(&path, &target).unwrap();
        }
    }
}

/// A fresh copy of the honest submission (at `<tmp>/sub`).
fn copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&honest().join("sub"), &dir.path().join("sub"));
    dir
}

fn run_files(dir: &Path, model: &str) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    collect_json(&dir.join("sub/runs/synthetic").join(model), &mut paths).unwrap();
    paths.sort();
    paths
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut value: Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut value);
    fs::write(path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
}

/// Index of cut-off `k` in a metric set's `at` list.
fn at(set: &Value, k: u64) -> usize {
    set["at"]
        .as_array()
        .unwrap()
        .iter()
        .position(|a| a["k"] == k)
        .unwrap()
}

fn check(dir: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["check", "sub"];
    args.extend_from_slice(extra);
    let out = mmsr(dir, &args);
    (out.status.code(), stdout(&out) + &common::stderr(&out))
}

fn expect_rejected(dir: &Path, needles: &[&str]) {
    let (code, text) = check(dir, &[]);
    assert_eq!(code, Some(1), "{text}");
    for needle in needles {
        assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
    }
}

#[test]
fn the_honest_submission_passes() {
    let dir = copy();
    let (code, text) = check(dir.path(), &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("4 result files checked, no findings"),
        "{text}"
    );
}

#[test]
fn an_edited_metric_is_rejected() {
    let dir = copy();
    edit_json(&run_files(dir.path(), "han-gnn")[0], |v| {
        let i = at(&v["test"], 20);
        let hr = v["test"]["at"][i]["hr"].as_f64().unwrap();
        v["test"]["at"][i]["hr"] = json!(hr + 0.0123);
    });
    expect_rejected(
        dir.path(),
        &[
            "summary.json",
            "test.HR@20",
            "a count of hits",
            "leaderboard.json",
        ],
    );
}

#[test]
fn an_edited_summary_is_rejected() {
    let dir = copy();
    edit_json(&dir.path().join("sub/summary.json"), |v| {
        let row = v
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|r| r["model"] == "han-gnn")
            .unwrap();
        row["test"][0][1]["mean"] = json!(0.5);
    });
    expect_rejected(
        dir.path(),
        &[
            "summary.json",
            "(synthetic / han-gnn).test.HR@5",
            "recomputed from 2 run files",
        ],
    );
}

#[test]
fn a_seed_changed_under_the_same_id_is_rejected() {
    let dir = copy();
    edit_json(&run_files(dir.path(), "han-gnn")[0], |v| {
        v["config"]["seed"] = json!(7)
    });
    expect_rejected(
        dir.path(),
        &[
            "run_id: expected",
            "recomputed from dataset.content_hash and config",
            "(location)",
        ],
    );
}

#[test]
fn an_edited_parameter_is_rejected() {
    let dir = copy();
    edit_json(&run_files(dir.path(), "han-gnn")[1], |v| {
        v["config"]["model_params"]["dim"] = json!(128)
    });
    expect_rejected(dir.path(), &["run_id: expected"]);
}

#[test]
fn a_duplicated_run_is_rejected() {
    let dir = copy();
    let original = &run_files(dir.path(), "pop")[0];
    let twin = original.with_file_name("seed1-0123456789abcdef.json");
    fs::copy(original, &twin).unwrap();
    expect_rejected(
        dir.path(),
        &[
            "(cell): expected one result for synthetic / pop / seed 1",
            "a second one besides",
            "seed1-0123456789abcdef.json",
        ],
    );
}

#[test]
fn a_missing_run_is_rejected() {
    let dir = copy();
    fs::remove_file(&run_files(dir.path(), "han-gnn")[1]).unwrap();
    expect_rejected(dir.path(), &["(synthetic / han-gnn).seeds", "missing run"]);
}

#[test]
fn a_selected_epoch_beyond_the_run_is_rejected() {
    let dir = copy();
    edit_json(&run_files(dir.path(), "han-gnn")[0], |v| {
        v["selected_epoch"] = json!(7)
    });
    expect_rejected(
        dir.path(),
        &["selected_epoch: expected < 3 (epochs_run); found 7"],
    );
}

#[test]
fn an_emptied_or_trimmed_learning_curve_is_rejected_not_a_panic() {
    let dir = copy();
    let files = run_files(dir.path(), "han-gnn");
    edit_json(&files[0], |v| {
        v["learning_curve"] = json!([]);
        v["selected_epoch"] = json!(0);
        v["epochs_run"] = json!(1);
    });
    // The curve's first entries deleted: what is left starts at epoch 1.
    edit_json(&files[1], |v| {
        let curve = v["learning_curve"].as_array_mut().unwrap();
        curve.remove(0);
        let last = curve.last().unwrap()["epoch"].clone();
        v["selected_epoch"] = last;
    });
    let (code, text) = check(dir.path(), &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(text.contains("learning_curve"), "{text}");
}

#[test]
fn a_selection_the_curve_does_not_support_is_rejected() {
    let dir = copy();
    edit_json(&run_files(dir.path(), "han-gnn")[0], |v| {
        let selected = v["selected_epoch"].as_u64().unwrap() as usize;
        let other = if selected == 0 { 1 } else { 0 };
        let i = at(&v["learning_curve"][other]["validation"], 20);
        v["learning_curve"][other]["validation"]["at"][i]["ndcg"] = json!(0.99);
    });
    expect_rejected(
        dir.path(),
        &[
            "selected_epoch: expected",
            "the first best validation NDCG@20 of the curve",
        ],
    );
}

#[test]
fn a_wrong_sample_count_is_rejected() {
    let dir = copy();
    edit_json(&run_files(dir.path(), "pop")[1], |v| {
        v["test"]["num_samples"] = json!(1000);
        v["dataset"]["counts"]["test_samples"] = json!(1000);
    });
    expect_rejected(
        dir.path(),
        &["dataset.counts", "available here", "test_samples: 2278"],
    );
}

#[test]
fn broken_metric_invariants_are_rejected() {
    let dir = copy();
    edit_json(&run_files(dir.path(), "pop")[0], |v| {
        let i = at(&v["test"], 5);
        v["test"]["at"][i]["ndcg"] = json!(0.9);
    });
    expect_rejected(
        dir.path(),
        &["test.at[k=5].hr, ndcg, mrr: expected 0 <= MRR <= NDCG <= HR <= 1"],
    );
}

#[test]
fn test_numbers_before_selection_are_rejected() {
    let dir = copy();
    edit_json(&run_files(dir.path(), "han-gnn")[0], |v| {
        let test = v["test"].clone();
        v["learning_curve"][0]["test"] = test;
    });
    expect_rejected(dir.path(), &["learning_curve[0].test: expected null (protocol validation evaluates test once, after selection)"]);
}

#[test]
fn an_unknown_schema_version_is_rejected_clearly() {
    let dir = copy();
    edit_json(&run_files(dir.path(), "pop")[0], |v| {
        v["schema_version"] = json!(9)
    });
    expect_rejected(dir.path(), &["schema, schema_version: expected mmsr-bench-result version 2; found mmsr-bench-result version 9"]);
}

/// One more hit on one run, with summary.json and the leaderboard regenerated to match: every
/// file agrees, so only re-running the cell can tell.
#[test]
fn consistent_tampering_is_caught_only_by_a_rerun() {
    let dir = copy();
    let sub = dir.path().join("sub");
    edit_json(&run_files(dir.path(), "han-gnn")[1], |v| {
        let n = v["test"]["num_samples"].as_f64().unwrap();
        let i = at(&v["test"], 20);
        let hr = v["test"]["at"][i]["hr"].as_f64().unwrap();
        v["test"]["at"][i]["hr"] = json!(hr + 1.0 / n);
    });
    let results: Vec<_> = load_results(&sub)
        .unwrap()
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    // run-all's order: models in matrix order, then seeds.
    let mut ordered = results.clone();
    ordered.sort_by_key(|r| (r.config.model != "pop", r.config.seed));
    fs::write(
        sub.join("summary.json"),
        serde_json::to_vec_pretty(&summarize(&ordered)).unwrap(),
    )
    .unwrap();
    let out = mmsr(
        dir.path(),
        &["leaderboard", "--results", "sub", "--out", "sub"],
    );
    assert!(out.status.success());

    let (code, text) = check(dir.path(), &[]);
    assert_eq!(code, Some(0), "the files agree with each other: {text}");
    let (code, text) = check(dir.path(), &["--rerun", "4"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("test: expected the re-run's values (max |Δ| <= 0)"),
        "{text}"
    );
    assert!(text.contains("4 of 4 drawn cells re-run"), "{text}");
    let tampered = &run_files(dir.path(), "han-gnn")[1];
    let name = tampered.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        text.contains(&format!("han-gnn/{name}: test")),
        "names the file: {text}"
    );
}

#[test]
fn an_honest_rerun_reproduces_the_numbers() {
    let dir = copy();
    let (code, text) = check(dir.path(), &["--rerun", "2", "--rerun-seed", "5"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("2 of 2 drawn cells re-run"), "{text}");
}

/// `--rerun-max-minutes` draws only among the runs recorded as quicker than the limit: with both
/// han-gnn runs marked as two-hour runs, a draw of four under a one-hour limit re-runs the two
/// pop cells and says that the limit left the other two out; a limit of zero is refused.
#[test]
fn a_rerun_time_limit_draws_only_among_quicker_runs() {
    let dir = copy();
    for path in run_files(dir.path(), "han-gnn") {
        edit_json(&path, |v| v["timings"]["total_seconds"] = json!(7200.0));
    }
    let (code, text) = check(dir.path(), &["--rerun", "4", "--rerun-max-minutes", "60"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(
            "re-run draw limited to the 2 of 4 cells whose recorded run took at most 3600 s"
        ),
        "{text}"
    );
    assert!(text.contains("2 of 2 drawn cells re-run"), "{text}");
    let (code, text) = check(dir.path(), &["--rerun", "4", "--rerun-max-minutes", "180"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("4 of 4 drawn cells re-run"), "{text}");
    let (code, text) = check(dir.path(), &["--rerun", "1", "--rerun-max-minutes", "0"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("not a number of minutes above zero"),
        "{text}"
    );
}

/// Cells this machine cannot reproduce (here: both han-gnn runs marked as made on another CPU)
/// are passed over and the draw goes on: whatever the draw seed, `--rerun 2` re-runs the two
/// pop cells and says why the others were not.
#[test]
fn a_rerun_passes_over_cells_from_other_hardware_and_draws_on() {
    let dir = copy();
    for path in run_files(dir.path(), "han-gnn") {
        edit_json(&path, |v| {
            v["config"]["device_kind"] = json!("cpu: Another CPU (family 1 model 1)")
        });
    }
    for seed in ["1", "2", "3", "4"] {
        let (_, text) = check(dir.path(), &["--rerun", "2", "--rerun-seed", seed]);
        assert!(
            text.contains("2 of 2 drawn cells re-run"),
            "seed {seed}: {text}"
        );
        assert!(!text.contains("the re-run's values"), "seed {seed}: {text}");
    }
    let (_, text) = check(dir.path(), &["--rerun", "4"]);
    assert!(text.contains("2 of 4 drawn cells re-run"), "{text}");
    assert_eq!(text.matches("not re-run: ").count(), 2, "{text}");
    assert!(text.contains("it ran on"), "{text}");
}

#[test]
fn a_regression_against_a_reference_is_flagged() {
    let dir = copy();
    // The same submission as its own reference: no findings.
    let (code, text) = check(
        dir.path(),
        &["--reference", &honest().join("sub").display().to_string()],
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("2 (dataset, model) cells compared"), "{text}");
    // A reference whose han-gnn was 5 points better on NDCG@20: ours is a regression.
    let reference = copy();
    for path in run_files(reference.path(), "han-gnn") {
        edit_json(&path, |v| {
            let i = at(&v["test"], 20);
            let ndcg = v["test"]["at"][i]["ndcg"].as_f64().unwrap();
            v["test"]["at"][i]["ndcg"] = json!(ndcg + 0.05);
        });
    }
    let (code, text) = check(
        dir.path(),
        &[
            "--reference",
            &reference.path().join("sub").display().to_string(),
        ],
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("synthetic / han-gnn: test NDCG@20 mean"),
        "{text}"
    );
    assert!(text.contains("below (a regression"), "{text}");
}

#[test]
fn unusable_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("sub")).unwrap();
    let (code, text) = check(dir.path(), &[]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("is not a results directory: it has no runs/ folder"),
        "{text}"
    );
}

/// SASRec's sums depend on libtorch's thread count (its first epoch's loss at width 32:
/// 6.8336437960 with one thread, 6.8336437335 with two): a run made with two threads and checked
/// in a process started with one reproduces only because `check --rerun` re-runs with the
/// recorded count.
#[test]
fn a_rerun_uses_the_thread_count_the_run_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::mmsr_command(
        dir.path(),
        &[
            "-q",
            "--results-dir",
            "sub",
            "run-all",
            "--jobs",
            "1",
            "--models",
            "sasrec",
            "--seeds",
            "1",
            "--set",
            "train.max_epochs=1",
            "--set",
            "model.sasrec.dim=32",
        ],
    )
    // In one process (`--jobs 1`), which takes libtorch's thread count from here.
    .env("OMP_NUM_THREADS", "2")
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let runs = run_files(dir.path(), "sasrec");
    let stored: Value = serde_json::from_str(&fs::read_to_string(&runs[0]).unwrap()).unwrap();
    assert_eq!(stored["environment"]["torch_threads"], 2);
    // `check` runs with OMP_NUM_THREADS=1 (common::mmsr).
    let (code, text) = check(dir.path(), &["--rerun", "1"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("1 of 1 drawn cells re-run"), "{text}");
}

/// Runs made from a dirty working tree: a warning with their number, a finding per run under
/// `--strict`. Three runs of a clean copy of the committed one-epoch Beauty folder are marked
/// dirty (its tables that name commits removed, so only the runs speak).
#[test]
fn dirty_tree_runs_are_a_warning_and_strict_findings() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("beauty");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("leaderboard/beauty-offline-cpu-2core-1epoch"),
        &folder,
    );
    let clean = mmsr(tmp.path(), &["check", "--strict", "beauty"]);
    assert!(clean.status.success(), "{}", stdout(&clean));
    assert!(!stdout(&clean).contains("dirty"), "{}", stdout(&clean));
    for name in [
        "leaderboard.json",
        "leaderboard.md",
        "leaderboard.csv",
        "index.html",
    ] {
        fs::remove_file(folder.join(name)).unwrap();
    }
    let mut runs = Vec::new();
    collect_json(&folder.join("runs"), &mut runs).unwrap();
    runs.sort();
    assert_eq!(runs.len(), 14);
    for run in &runs[..3] {
        edit_json(run, |v| {
            let commit = v["environment"]["git_commit"].as_str().unwrap().to_string();
            v["environment"]["git_commit"] = json!(format!("{commit}-dirty"));
        });
    }
    let plain = mmsr(tmp.path(), &["check", "beauty"]);
    assert!(plain.status.success(), "{}", stdout(&plain));
    assert!(
        stdout(&plain).contains("warning: 3 of 14 runs were made from a dirty working tree"),
        "{}",
        stdout(&plain)
    );
    let strict = mmsr(tmp.path(), &["check", "--strict", "beauty"]);
    assert_eq!(strict.status.code(), Some(1));
    let out = stdout(&strict);
    assert_eq!(
        out.matches(": environment.git_commit: expected a commit")
            .count(),
        3,
        "{out}"
    );
}
