//! The commands as a user runs them: outputs, result files, exit codes and error messages.

use crate::common;

use std::fs;

use common::{mmsr, mmsr_command, stderr, stdout};
use serde_json::Value;

#[test]
fn evaluate_prints_metrics_and_json() {
    let dir = tempfile::tempdir().unwrap();
    // Ranks 1 and 3 (target 3 has two higher scores), K = 1, 5.
    fs::write(
        dir.path().join("s.jsonl"),
        "{\"target\": 2, \"scores\": [0.1, 0.9, 0.3]}\n{\"target\": 1, \"scores\": [0.1, 0.9, 0.3]}\n",
    )
    .unwrap();
    let out = mmsr(
        dir.path(),
        &[
            "evaluate", "--input", "s.jsonl", "--ks", "1,5", "--json", "--output", "m.json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["num_samples"], 2);
    assert_eq!(json["at"][0]["k"], 1);
    assert_eq!(json["at"][0]["hr"], 0.5);
    assert_eq!(json["at"][1]["mrr"], (1.0 + 1.0 / 3.0) / 2.0);
    assert_eq!(json["at"][1]["ndcg"], (1.0 + 0.5) / 2.0); // 1/log2(4) = 0.5
    let written: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("m.json")).unwrap()).unwrap();
    assert_eq!(written, json);

    let table = mmsr(dir.path(), &["evaluate", "--input", "s.jsonl"]);
    assert!(table.status.success());
    assert!(
        stdout(&table).contains("NDCG_official@K"),
        "{}",
        stdout(&table)
    );
}

#[test]
fn evaluate_rejects_bad_input_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "nan.csv",
            "target,a,b\n1,0.5,0.2\n2,NaN,0.1\n",
            "nan.csv:3: score at position 0 is NaN",
        ),
        (
            "range.jsonl",
            "{\"target\": 4, \"scores\": [1, 2, 3]}\n",
            "range.jsonl:1: target 4 is out of range",
        ),
        (
            "ragged.jsonl",
            "{\"target\": 1, \"scores\": [1, 2]}\n{\"target\": 1, \"scores\": [1, 2, 3]}\n",
            "ragged.jsonl:2: ragged score vectors",
        ),
        (
            "missing.jsonl",
            "{\"target\": 1}\n",
            "missing.jsonl:1: missing field",
        ),
        ("empty.jsonl", "", "empty.jsonl: no samples"),
    ];
    for (name, text, expected) in cases {
        fs::write(dir.path().join(name), text).unwrap();
        let out = mmsr(dir.path(), &["evaluate", "--input", name]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(stderr(&out).contains(expected), "{name}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{name}");
    }
    let out = mmsr(dir.path(), &["evaluate", "--input", "absent.jsonl"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("absent.jsonl: cannot read"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn run_pop_writes_a_complete_result_and_reuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = mmsr(
        dir.path(),
        &[
            "-q",
            "run",
            "--model",
            "pop",
            "--dataset",
            "synthetic",
            "--seed",
            "7",
            "--device",
            "cpu",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("validation") && text.contains("NDCG@20"),
        "{text}"
    );
    let runs = dir.path().join("results/runs/synthetic/pop");
    let files: Vec<_> = fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let result: Value = serde_json::from_str(&fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert_eq!(result["schema"], "mmsr-bench-result");
    assert_eq!(result["config"]["seed"], 7);
    assert_eq!(result["config"]["device"], "cpu");
    assert_eq!(
        result["dataset"]["counts"]["valid_samples"],
        result["validation"]["num_samples"]
    );
    assert_eq!(result["run_id"].as_str().unwrap().len(), 16);
    assert_eq!(
        result["dataset"]["content_hash"].as_str().unwrap().len(),
        64
    );
    for key in [
        "crate_version",
        "git_commit",
        "libtorch_version",
        "device",
        "cpu_model",
    ] {
        assert!(result["environment"][key].is_string(), "environment.{key}");
    }
    assert!(result["environment"]["libtorch_version"]
        .as_str()
        .unwrap()
        .starts_with("2.11"));
    let hr20 = result["test"]["at"][2]["hr"].as_f64().unwrap();
    assert!(hr20 > 0.0 && hr20 < 1.0);

    let again = mmsr(
        dir.path(),
        &[
            "-q", "run", "--model", "pop", "--seed", "7", "--device", "cpu",
        ],
    );
    assert!(again.status.success());
    assert!(
        stdout(&again).contains("already computed"),
        "{}",
        stdout(&again)
    );
}

/// libgomp reads its wait policy only when libtorch loads, so the binary re-executes itself
/// with `GOMP_SPINCOUNT=1000` when the user set no policy, keeps a policy the user set, and
/// records the one in effect; the recorded value is read from the process libgomp started in.
#[test]
fn the_openmp_wait_policy_is_chosen_once_and_recorded() {
    let policy_of = |set: Option<(&str, &str)>| {
        let dir = tempfile::tempdir().unwrap();
        let mut command = mmsr_command(
            dir.path(),
            &["-q", "run", "--model", "pop", "--dataset", "synthetic"],
        );
        command
            .env_remove("OMP_WAIT_POLICY")
            .env_remove("GOMP_SPINCOUNT");
        if let Some((name, value)) = set {
            command.env(name, value);
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let runs = dir.path().join("results/runs/synthetic/pop");
        let file = fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
        let result: Value = serde_json::from_str(&fs::read_to_string(file).unwrap()).unwrap();
        result["environment"]["wait_policy"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(policy_of(None), "GOMP_SPINCOUNT=1000");
    assert_eq!(
        policy_of(Some(("GOMP_SPINCOUNT", "300000"))),
        "GOMP_SPINCOUNT=300000"
    );
    assert_eq!(
        policy_of(Some(("OMP_WAIT_POLICY", "ACTIVE"))),
        "OMP_WAIT_POLICY=ACTIVE"
    );
}

#[test]
fn run_all_resumes_and_summarises_over_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let first = mmsr(
        dir.path(),
        &[
            "-q", "run-all", "--models", "pop", "--seeds", "1,2", "--device", "cpu",
        ],
    );
    assert!(first.status.success(), "{}", stderr(&first));
    // A later, larger matrix reuses the two finished runs (as after an interruption).
    let second = mmsr(
        dir.path(),
        &[
            "-q", "run-all", "--models", "pop", "--seeds", "1,2,3", "--device", "cpu",
        ],
    );
    assert!(second.status.success(), "{}", stderr(&second));
    let log = stderr(&second);
    assert_eq!(log.matches("reused stored result").count(), 2, "{log}");
    assert_eq!(log.matches(": done").count(), 1, "{log}");
    let summary: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("results/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary[0]["seeds"], serde_json::json!([1, 2, 3]));
    assert!(fs::read_to_string(dir.path().join("results/summary.md"))
        .unwrap()
        .contains("| synthetic"));
    assert!(stdout(&second).contains("mean ± std over seeds"));
}

/// `run-all` of `common::SMALL_GRAPH_MATRIX` with `extra` flags.
fn small_graph_run_all(extra: &[&'static str]) -> Vec<&'static str> {
    [&["-q", "run-all"], crate::common::SMALL_GRAPH_MATRIX, extra].concat()
}

/// Every result file under `dir/results/runs`, keyed by path, without its timings and
/// provenance (which differ between any two runs).
fn results_without_timings(dir: &std::path::Path) -> std::collections::BTreeMap<String, Value> {
    let mut out = std::collections::BTreeMap::new();
    let runs = dir.join("results/runs/synthetic");
    for model in fs::read_dir(&runs).unwrap() {
        for file in fs::read_dir(model.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let mut r: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
            for key in ["timings", "peak_rss_bytes", "environment", "created_at"] {
                r.as_object_mut().unwrap().remove(key);
            }
            for epoch in r["learning_curve"].as_array_mut().unwrap() {
                let epoch = epoch.as_object_mut().unwrap();
                epoch.remove("train_seconds");
                epoch.remove("validation_seconds");
            }
            out.insert(path.strip_prefix(dir).unwrap().display().to_string(), r);
        }
    }
    out
}

#[test]
fn run_all_side_by_side_gives_the_runs_of_one_process() {
    let (apart, together) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let side_by_side = mmsr(apart.path(), &small_graph_run_all(&["--jobs", "2"]));
    assert!(side_by_side.status.success(), "{}", stderr(&side_by_side));
    let log = stderr(&side_by_side);
    assert!(
        log.contains("running 4 of 4 runs, 2 at a time with 1 libtorch thread(s) each"),
        "{log}"
    );
    assert_eq!(log.matches(": done").count(), 4, "{log}");
    // The test process gives libtorch one thread, as each child gets here.
    let one_process = mmsr(together.path(), &small_graph_run_all(&["--jobs", "1"]));
    assert!(one_process.status.success(), "{}", stderr(&one_process));
    let log = stderr(&one_process);
    assert!(
        log.contains("(1 at a time, 1 libtorch thread(s) each)"),
        "{log}"
    );
    let (a, b) = (
        results_without_timings(apart.path()),
        results_without_timings(together.path()),
    );
    assert_eq!(a.len(), 4);
    assert_eq!(a, b);
    let summary = |dir: &std::path::Path| {
        let mut rows: Value =
            serde_json::from_str(&fs::read_to_string(dir.join("results/summary.json")).unwrap())
                .unwrap();
        for row in rows.as_array_mut().unwrap() {
            row.as_object_mut().unwrap().remove("mean_train_seconds");
        }
        rows
    };
    assert_eq!(summary(apart.path()), summary(together.path()));
    // The summary keeps the matrix's order although the cells ran last-listed first.
    assert_eq!(summary(apart.path())[0]["model"], "pop");
    // Everything stored: a second side-by-side run-all starts no child.
    let again = mmsr(apart.path(), &small_graph_run_all(&["--jobs", "2"]));
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stderr(&again).matches("reused stored result").count(), 4);
    assert!(!stderr(&again).contains("running"));
}

#[test]
fn a_failing_child_run_is_reported_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    // Code rows initialised from the codes' centres cannot fit a 16-d embedding: the model
    // build fails inside each child.
    let args: Vec<&str> = small_graph_run_all(&["--jobs", "2"])
        .iter()
        .map(|a| match *a {
            "model.han-gnn.init_codes_from_centres=false" => {
                "model.han-gnn.init_codes_from_centres=true"
            }
            other => other,
        })
        .collect();
    let out = mmsr(dir.path(), &args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains("han-gnn on synthetic, seed"), "{log}");
    assert!(log.contains("failed (exit status: 2)"), "{log}");
    assert!(log.contains("code centres are"), "{log}");
    assert!(log.contains("run-all again resumes from there"), "{log}");
}

#[test]
fn user_errors_are_explained_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let expect_error = |args: &[&str], needles: &[&str]| {
        let out = mmsr(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let message = stderr(&out);
        assert!(
            !message.contains("panicked"),
            "{args:?}: a panic, not an error: {message}"
        );
        for needle in needles {
            assert!(message.contains(needle), "{args:?}: {message}");
        }
    };
    expect_error(
        &["run", "--model", "han", "--dataset", "synthetic"],
        &["unknown model \"han\"; valid names: pop"],
    );
    expect_error(
        &["run", "--model", "pop", "--dataset", "beuaty"],
        &["unknown dataset \"beuaty\"; valid names: synthetic, beauty"],
    );
    expect_error(
        &["run", "--model", "pop", "--dataset", "beauty"],
        &["is not prepared"],
    );
    fs::write(
        dir.path().join("bad.yaml"),
        "models: [pop]\ntrain:\n  max_epoch: 3\n",
    )
    .unwrap();
    expect_error(
        &["run-all", "--config", "bad.yaml"],
        &["bad.yaml: train: unknown field `max_epoch`", "line 3"],
    );
    expect_error(
        &["run", "--model", "pop", "--device", "tpu"],
        &["use auto, cpu, cuda or cuda:N"],
    );
    expect_error(
        &["run", "--model", "pop", "--set", "model.alpha=1"],
        &["model \"pop\": has no parameter `alpha`; it has no parameters"],
    );
    expect_error(
        &["run", "--model", "gat", "--set", "model.gat.head=2"],
        &["model \"gat\": has no parameter `head`", "heads"],
    );
    expect_error(
        &["run-all", "--models", "gcn,gat", "--set", "model.heads=2"],
        &["scope the parameter: model.<name>.heads"],
    );
    expect_error(
        &["run", "--model", "gat", "--set", "model.gat.heads=3"],
        &["heads = 3 must be at least 1 and divide dim = 128"],
    );
    expect_error(
        &[
            "run",
            "--model",
            "graphormer",
            "--set",
            "model.layout=sparse",
        ],
        &["model \"graphormer\": layout sparse is not implemented; available: dense"],
    );
    // Counts that size parameters, loops or processes are bounded above as well as below,
    // before anything is allocated.
    for (args, needle) in [
        (
            vec!["run", "--model", "gcn", "--set", "model.gcn.dim=1000000000"],
            "dim = 1000000000 is out of range: between 1 and 4096",
        ),
        (
            vec![
                "run",
                "--model",
                "han-gnn",
                "--set",
                "model.han-gnn.layers=100000",
            ],
            "layers = 100000 is out of range: between 1 and 16",
        ),
        (
            vec![
                "run",
                "--model",
                "sasrec",
                "--set",
                "model.sasrec.inner_dim=99999999",
            ],
            "inner_dim = 99999999 is out of range",
        ),
        (
            vec![
                "run",
                "--model",
                "gru4rec",
                "--set",
                "model.gru4rec.gru_layers=0",
            ],
            "gru_layers = 0 is out of range: between 1 and 16",
        ),
        (
            vec!["prepare", "synthetic", "--clusters", "100000000"],
            "--clusters",
        ),
        (
            vec!["prepare", "synthetic", "--text-dim", "0"],
            "--text-dim",
        ),
        (
            vec!["run-all", "--jobs", "100000"],
            "--jobs 100000 is out of range: between 1 and 256",
        ),
    ] {
        expect_error(&args, &[needle]);
    }
}

#[test]
fn models_lists_presets_and_every_parameter_with_its_default() {
    let dir = tempfile::tempdir().unwrap();
    let out = mmsr(dir.path(), &["models"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for name in [
        "han-gnn-no-homo",
        "graphormer",
        "kv-attention-fixed",
        "rgat",
    ] {
        assert!(text.contains(name), "{text}");
    }
    let out = mmsr(dir.path(), &["models", "--params"]);
    let text = stdout(&out);
    assert!(out.status.success());
    assert!(
        text.contains("attention_dropout") && text.contains("ffn_multiplier"),
        "{text}"
    );
    assert!(text.contains("fixed by this preset of han-gnn"), "{text}");
}

#[test]
fn prepare_from_sequences_then_run_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for u in 0..40 {
        text.push_str(&format!("user{u}"));
        for j in 0..8 {
            text.push_str(&format!(" item{}", (u + j) % 12));
        }
        text.push('\n');
    }
    fs::write(dir.path().join("seq.txt"), text).unwrap();
    let out = mmsr(
        dir.path(),
        &["prepare", "toyseq", "--from-sequences", "seq.txt"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("prepared toyseq: 40 users, 12 items, 320 interactions"),
        "{}",
        stdout(&out)
    );
    let listing = mmsr(dir.path(), &["datasets"]);
    assert!(stdout(&listing).contains("toyseq"));
    let run = mmsr(
        dir.path(),
        &[
            "-q",
            "run",
            "--model",
            "pop",
            "--dataset",
            "toyseq",
            "--device",
            "cpu",
        ],
    );
    assert!(run.status.success(), "{}", stderr(&run));
}

/// Hand-edited inputs that used to panic (found by the reliability sweep): each is an error
/// that names the file or field and the allowed range, exit 2.
#[test]
fn hand_edited_inputs_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let expect_error = |args: &[&str], needles: &[&str]| {
        let out = mmsr(dir.path(), args);
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {message}");
        assert!(!message.contains("panicked"), "{args:?}: {message}");
        for needle in needles {
            assert!(message.contains(needle), "{args:?}: {message}");
        }
    };
    // A cut-off whose official normaliser would take forever.
    expect_error(
        &[
            "run",
            "--model",
            "pop",
            "--set",
            "eval.ks=[5, 20, 1000000000000000]",
        ],
        &[
            "eval.ks = [5, 20, 1000000000000000] is out of range",
            "between 1 and 1000000",
        ],
    );
    fs::write(
        dir.path().join("s.jsonl"),
        "{\"target\": 1, \"scores\": [0.5, 0.1]}\n",
    )
    .unwrap();
    expect_error(
        &[
            "evaluate",
            "--input",
            "s.jsonl",
            "--ks",
            "18446744073709551615",
        ],
        &["--ks must be cut-offs between 1 and 1000000"],
    );
    // A validation share written as a percentage.
    let official = common::shared_data("mmsr-sample/train_c2_k2.txt");
    let official = official.parent().unwrap().to_str().unwrap();
    expect_error(
        &[
            "run",
            "--model",
            "pop",
            "--official-dir",
            official,
            "--set",
            "official.validation_share=10",
        ],
        &["official.validation_share = 10 is out of range", "[0, 1)"],
    );
    // Plan cells edited by hand: emptied, or with settings the generator cannot use.
    let out = mmsr(
        dir.path(),
        &[
            "plan",
            "--out",
            "plan.jsonl",
            "--models",
            "pop",
            "--seeds",
            "1",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let plan = fs::read_to_string(dir.path().join("plan.jsonl")).unwrap();
    fs::write(
        dir.path().join("topics.jsonl"),
        plan.replace("\"topics\":25", "\"topics\":0"),
    )
    .unwrap();
    expect_error(
        &["run-cell", "--plan", "topics.jsonl", "--index", "0"],
        &["topics.jsonl:1: synthetic.topics = 0 is out of range"],
    );
    fs::write(
        dir.path().join("empty.jsonl"),
        "{\"index\":0,\"run_id\":\"\",\"planned_device_kind\":\"\",\"experiment\":{}}\n",
    )
    .unwrap();
    expect_error(
        &["run-cell", "--plan", "empty.jsonl", "--index", "0"],
        &["empty.jsonl:1: a plan cell holds one model, one dataset and one seed"],
    );
    expect_error(
        &["merge", "--plan", "empty.jsonl"],
        &["empty.jsonl:1: a plan cell holds one model, one dataset and one seed"],
    );
}

#[test]
fn ranking_without_input_items_is_its_own_row_and_check_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let args = [
            &["-q", "run-all", "--models", "pop", "--device", "cpu"][..],
            extra,
        ]
        .concat();
        let out = mmsr(dir.path(), &args);
        assert!(out.status.success(), "{}", stderr(&out));
    };
    run(&["--seeds", "1,2,3"]);
    run(&["--seeds", "1,2", "--set", "eval.candidates=not-in-input"]);
    let summary: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("results/summary.json")).unwrap())
            .unwrap();
    let rows = summary.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{summary:#}");
    let row = |variant: &str| {
        rows.iter()
            .find(|r| r["variant"] == variant)
            .unwrap_or_else(|| panic!("no {variant:?} row in {summary:#}"))
    };
    let hr20 = |r: &Value| {
        let test = r["test"].as_array().unwrap();
        let cell = test.iter().find(|c| c[0] == "HR@20").unwrap();
        cell[1]["mean"].as_f64().unwrap()
    };
    let (all, unseen) = (row("candidates default"), row("candidates=not-in-input"));
    assert_eq!(unseen["seeds"], serde_json::json!([1, 2]));
    // Popular items the user already has no longer stand before the target.
    assert!(hr20(unseen) > hr20(all), "{summary:#}");
    let check = mmsr(dir.path(), &["check", "results"]);
    let text = stdout(&check) + &stderr(&check);
    assert!(check.status.success(), "{text}");
    assert!(
        text.contains("5 result files checked, no findings"),
        "{text}"
    );
    // Against the reference (pop ranked among all items), the other ranking gets no test.
    let board = mmsr(
        dir.path(),
        &[
            "leaderboard",
            "--results",
            "results",
            "--out",
            "board",
            "--reference",
            "pop",
        ],
    );
    assert!(board.status.success(), "{}", stderr(&board));
    let boards: Value = serde_json::from_str(
        &fs::read_to_string(dir.path().join("board/leaderboard.json")).unwrap(),
    )
    .unwrap();
    let rows = boards["datasets"][0]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{boards:#}");
    for row in rows {
        let tested = row["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| !m["vs_reference"].is_null());
        assert!(!tested, "{row:#}");
    }
}
