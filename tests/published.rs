//! `leaderboard` sets published numbers beside ours: a folder's `published.yaml` becomes
//! `published.md` with each matching group of our runs (model and listed parameters), its mean
//! over seeds and where it falls against the published range; runs of another variant are
//! not mixed in (a row matching two configurations says so), `check` re-derives it, and a bad
//! file is refused by name.

use crate::common;

use std::fs;

use common::{mmsr, stderr};
use mmsr_bench::eval::metrics::Metric;
use mmsr_bench::record::read::load_results;

const EXPERIMENT: &str = "models:\n  - {name: sasrec, dim: 16, inner_dim: 32, loss: bce}\n  - {name: sasrec, dim: 16, inner_dim: 32}\ndatasets: [synthetic]\nseeds: [1, 2]\ndevice: cpu\ntrain:\n  max_epochs: 2\n";

#[test]
fn published_numbers_are_set_beside_the_matching_runs() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("experiment.yaml"), EXPERIMENT).unwrap();
    let out = mmsr(
        dir.path(),
        &[
            "-q",
            "--results-dir",
            "sub",
            "run-all",
            "--config",
            "experiment.yaml",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // The BCE runs' mean HR@10, computed here from the result files.
    let bce: Vec<f64> = load_results(&dir.path().join("sub"))
        .unwrap()
        .into_iter()
        .filter(|(_, r)| r.config.model_params["loss"] == "bce")
        .map(|(_, r)| r.test.get(Metric::Hr, 10).unwrap())
        .collect();
    assert_eq!(bce.len(), 2);
    let mean = (bce[0] + bce[1]) / 2.0;
    assert!(
        mean > 0.0,
        "synthetic sasrec should hit something in 2 epochs"
    );
    // Published: twice and four times our mean, so ours is 50 % below the range.
    let published = format!(
        "dataset: synthetic\nprotocol: a test\nmodels:\n  - name: SASRec\n    sources:\n      - {{citation: A, settings: s, metrics: {{HR@10: {:.6}}}}}\n      - {{citation: B, settings: s, metrics: {{HR@10: {:.6}}}}}\n    ours:\n      - {{label: bce runs, model: sasrec, params: {{loss: bce}}}}\n      - {{label: ce runs, model: sasrec, params: {{loss: cross-entropy}}}}\n      - {{label: none, model: gru4rec}}\n      - {{label: every sasrec, model: sasrec}}\n      - {{label: bce two epochs, model: sasrec, params: {{loss: bce}}, train: {{max_epochs: 2}}}}\n      - {{label: bce three epochs, model: sasrec, params: {{loss: bce}}, train: {{max_epochs: 3}}}}\n",
        2.0 * mean,
        4.0 * mean
    );
    fs::write(dir.path().join("sub/published.yaml"), &published).unwrap();
    let out = mmsr(
        dir.path(),
        &["leaderboard", "--results", "sub", "--out", "sub"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The two losses are two rows everywhere, named by the parameter that differs.
    for table in ["summary.md", "leaderboard.md"] {
        let text = fs::read_to_string(dir.path().join("sub").join(table)).unwrap();
        for row in ["| sasrec (loss=bce) ", "| sasrec (loss=cross-entropy) "] {
            assert!(text.contains(row), "{table} lacks {row:?}:\n{text}");
        }
    }
    let md = fs::read_to_string(dir.path().join("sub/published.md")).unwrap();
    let row = |label: &str| {
        md.lines()
            .find(|l| l.contains(&format!("**ours**: {label} |")))
            .unwrap_or_else(|| panic!("no row {label} in\n{md}"))
            .to_string()
    };
    let bce_row = row("bce runs");
    assert!(bce_row.contains("2 seeds, 2 epochs"), "{bce_row}");
    let spread = (bce[0] - bce[1]).abs() / 2f64.sqrt();
    assert!(
        bce_row.contains(&format!("{mean:.4} ± {spread:.4} (below, -50 %)")),
        "{bce_row}"
    );
    assert!(row("ce runs").contains("2 seeds"), "{md}");
    assert!(row("none").contains("no runs here yet"), "{md}");
    // A row that matches two configurations says so rather than averaging them; `train`
    // settings pick runs as `params` do.
    assert!(
        row("every sasrec").contains("matches runs of 2 different configurations"),
        "{md}"
    );
    assert_eq!(
        row("bce two epochs").replace("bce two epochs", ""),
        bce_row.replace("bce runs", "")
    );
    assert!(row("bce three epochs").contains("no runs here yet"), "{md}");
    assert!(md.contains("| published range | |"), "{md}");

    // `check` re-derives the comparison: the honest folder passes, an edited one does not.
    let out = mmsr(dir.path(), &["check", "sub"]);
    assert!(
        out.status.success(),
        "{}{}",
        common::stdout(&out),
        stderr(&out)
    );
    fs::write(
        dir.path().join("sub/published.md"),
        md.replace("below, -50 %", "within"),
    )
    .unwrap();
    let out = mmsr(dir.path(), &["check", "sub"]);
    assert!(!out.status.success());
    let report = format!("{}{}", common::stdout(&out), stderr(&out));
    assert!(
        report.contains("published.md") && report.contains("stale or edited"),
        "{report}"
    );

    // A percentage where a fraction belongs is refused, naming the file.
    fs::write(
        dir.path().join("sub/published.yaml"),
        published.replace(&format!("{:.6}", 2.0 * mean), "6.05"),
    )
    .unwrap();
    let out = mmsr(
        dir.path(),
        &["leaderboard", "--results", "sub", "--out", "sub"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("published.yaml") && stderr(&out).contains("divided by 100"),
        "{}",
        stderr(&out)
    );
}

/// A study folder made with two configs (here a third seed of one model, with other training
/// settings, as the leave-one-out study gives SASRec-BCE longer patience): the last `run-all`
/// summarises every run in the folder, so `check` finds a row for each cell.
#[test]
fn a_folder_made_with_two_configs_is_summarised_whole() {
    let dir = tempfile::tempdir().unwrap();
    let first = "models: [pop, {name: sasrec, dim: 16, inner_dim: 32}]\ndatasets: [synthetic]\nseeds: [1]\ndevice: cpu\ntrain:\n  max_epochs: 1\n";
    let second = "models: [{name: sasrec, dim: 16, inner_dim: 32, loss: bce}]\ndatasets: [synthetic]\nseeds: [1]\ndevice: cpu\ntrain:\n  max_epochs: 2\n  patience: 9\n";
    for (name, text) in [("first.yaml", first), ("second.yaml", second)] {
        fs::write(dir.path().join(name), text).unwrap();
        let out = mmsr(
            dir.path(),
            &["-q", "--results-dir", "sub", "run-all", "--config", name],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let summary = fs::read_to_string(dir.path().join("sub/summary.md")).unwrap();
    for row in [
        "| pop ",
        "| sasrec (loss=bce) ",
        "| sasrec (loss=cross-entropy) ",
    ] {
        assert!(summary.contains(row), "summary lacks {row:?}:\n{summary}");
    }
    let out = mmsr(dir.path(), &["check", "sub"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // `merge` after a job array of the first config: its leaderboard, like its summary, covers
    // the whole folder, so `check` (which regenerates leaderboard.json) still passes.
    let out = mmsr(
        dir.path(),
        &[
            "--results-dir",
            "sub",
            "plan",
            "--config",
            "first.yaml",
            "--out",
            "plan.jsonl",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = mmsr(
        dir.path(),
        &[
            "-q",
            "--results-dir",
            "sub",
            "merge",
            "--plan",
            "plan.jsonl",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let board = fs::read_to_string(dir.path().join("sub/leaderboard.md")).unwrap();
    assert!(
        board.contains("sasrec (loss=bce)"),
        "merge's leaderboard lacks the second config's run:\n{board}"
    );
    let out = mmsr(dir.path(), &["check", "sub"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
