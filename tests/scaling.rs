//! `mmsr-bench scaling` end to end on a small generated dataset: every (model, factor, value)
//! is measured or said to be skipped, the realised graph sizes are those of the graphs the
//! library builds for the same users, shares are nested, the default point is measured once,
//! and the report, fits and plots are written. Bad study files are errors naming the field.

use crate::common;

use std::collections::HashSet;

use common::{mmsr, stderr};
use mmsr_bench::dataset::synthetic::{generate, SyntheticConfig};
use mmsr_bench::dataset::SplitConfig;
use mmsr_bench::graph::GraphSet;
use mmsr_bench::scaling::variant::{select, user_order, users_for_share};
use mmsr_bench::scaling::{Factor, Study};

const STUDY: &str = "\
dataset: synthetic
base_users: 150
seed: 7
models: [han-gnn, kv-attention]
dense: [han-gnn]
detail_models: [han-gnn]
inference_samples: 64
kmeans_iterations: 5
repeats: 2
defaults: {users: 1.0, links: 3, clusters: 30, max_len: 50, layers: 1, tied: true, dim: 16, batch: 64}
factors:
  users: [0.25, 0.5, 1.0]
  links: [1, 3]
  clusters: [10, 30]
  max_len: [5, 50]
  layers: [1, 2]
  untied_layers: [2]
  dim: [16]
  batch: [32]
synthetic: {users: 300, items: 200, topics: 10}
";

fn synthetic() -> SyntheticConfig {
    SyntheticConfig {
        users: 300,
        items: 200,
        topics: 10,
        ..SyntheticConfig::default()
    }
}

#[test]
fn a_small_study_measures_every_point_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("study.yaml"), STUDY).unwrap();
    let out = mmsr(
        dir.path(),
        &[
            "-q",
            "scaling",
            "--config",
            "study.yaml",
            "--out",
            "study",
            "--device",
            "cpu",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let study: Study =
        serde_json::from_slice(&std::fs::read(dir.path().join("study/scaling.json")).unwrap())
            .unwrap();
    assert_eq!(study.base_users, 150);
    assert!(study.skipped.is_empty(), "{:?}", study.skipped);

    // Every contestant at every value of its factors.
    let expect = |factor: Factor, values: &[f64], labels: &[&str]| {
        for &v in values {
            for label in labels {
                assert!(
                    study.measurements.iter().any(|m| m.factor == factor
                        && m.value == v
                        && m.contestant().label() == *label),
                    "{label} at {factor} = {v}"
                );
            }
        }
    };
    let all = ["han-gnn", "han-gnn (dense)", "kv-attention"];
    let detail = ["han-gnn", "han-gnn (dense)"];
    expect(Factor::Users, &[0.25, 0.5, 1.0], &all);
    expect(Factor::Links, &[1.0, 3.0], &all);
    expect(Factor::Clusters, &[10.0, 30.0], &detail);
    expect(Factor::MaxLen, &[5.0, 50.0], &detail);
    expect(Factor::Layers, &[1.0, 2.0], &detail);
    expect(Factor::UntiedLayers, &[2.0], &detail);
    assert!(!study
        .measurements
        .iter()
        .any(|m| m.model == "kv-attention" && !m.factor.runs_every_model()));
    for m in &study.measurements {
        assert!(
            m.train_seconds > 0.0 && m.inference_seconds_per_1000 > 0.0,
            "{m:?}"
        );
        assert_eq!(m.inference_samples, 64);
    }

    // Two rounds: every point twice, the second round after the whole first one (a point's
    // repeats never back to back); within a round the default point is measured once and
    // reported under each factor.
    let rounds: Vec<usize> = study.measurements.iter().map(|m| m.repeat).collect();
    let first_of_second = rounds.iter().position(|&r| r == 1).unwrap();
    assert!(rounds[..first_of_second].iter().all(|&r| r == 0));
    assert!(rounds[first_of_second..].iter().all(|&r| r == 1));
    assert_eq!(2 * first_of_second, rounds.len());
    for repeat in 0..2 {
        let default_runs: Vec<_> = study
            .measurements
            .iter()
            .filter(|m| {
                m.model == "han-gnn"
                    && !m.dense
                    && m.point == study.config.defaults
                    && m.repeat == repeat
            })
            .collect();
        assert!(default_runs.len() >= 5, "{}", default_runs.len());
        assert!(default_runs
            .iter()
            .all(|m| m.train_seconds == default_runs[0].train_seconds));
    }
    // The fits read each point's median; the spread holds both repeats.
    assert_eq!(2 * study.analysis.spread.len(), study.measurements.len());
    for p in &study.analysis.spread {
        assert_eq!(p.repeats, 2);
        assert!((p.median - (p.min + p.max) / 2.0).abs() < 1e-12, "{p:?}");
    }

    // Realised sizes: the graphs the library builds for the same users and codes.
    let data = generate(&synthetic(), &SplitConfig::default());
    let order = user_order(&data.splits.train, Some(150), 7);
    let edges_at = |share: f64| {
        let users: HashSet<u32> = order[..users_for_share(150, share)]
            .iter()
            .copied()
            .collect();
        let train = select(&data.splits.train, Some(&users), 50);
        let bundles = data.codes.as_ref().unwrap().item_bundles(data.num_items());
        (
            train.len(),
            GraphSet::build(&train, Some(&bundles)).stats().total_edges,
        )
    };
    for share in [0.25, 0.5, 1.0] {
        let m = study
            .measurements
            .iter()
            .find(|m| m.factor == Factor::Users && m.value == share && !m.dense)
            .unwrap();
        assert_eq!(
            (m.train_graphs, m.total_edges),
            edges_at(share),
            "share {share}"
        );
        assert_eq!(m.users, users_for_share(150, share));
    }
    let edges = |factor: Factor, value: f64| {
        study
            .measurements
            .iter()
            .find(|m| m.factor == factor && m.value == value)
            .unwrap()
            .total_edges
    };
    assert!(edges(Factor::Links, 1.0) < edges(Factor::Links, 3.0));
    assert!(edges(Factor::Users, 0.25) < edges(Factor::Users, 1.0));
    let nodes = |value: f64| {
        study
            .measurements
            .iter()
            .find(|m| m.factor == Factor::MaxLen && m.value == value)
            .unwrap()
            .total_nodes
    };
    assert!(nodes(5.0) < nodes(50.0));

    // Fits, verdict, report and plots.
    let fits = study
        .analysis
        .fits
        .iter()
        .find(|f| f.model == "han-gnn" && !f.dense)
        .unwrap();
    assert_eq!(fits.users.unwrap().points, 3);
    assert!(fits.users.unwrap().interval.is_some());
    assert_eq!(fits.edges.unwrap().points, 5);
    // The points both models run: the three |U| shares (one of them the default) and K = 1.
    let ratio = study.analysis.ratio.as_ref().unwrap();
    assert_eq!(ratio.points, 4);
    assert!(study
        .analysis
        .crossovers
        .iter()
        .any(|c| c.model == "han-gnn"));
    let markdown = std::fs::read_to_string(dir.path().join("study/scaling.md")).unwrap();
    assert!(markdown.contains("## Verdict") && markdown.contains("han-gnn (dense)"));
    for plot in ["time-vs-users", "time-vs-edges"] {
        let svg =
            std::fs::read_to_string(dir.path().join(format!("study/plots/{plot}.svg"))).unwrap();
        assert!(
            svg.contains("kv-attention") && svg.contains("slope"),
            "{plot}"
        );
    }

    // Re-analysed from its JSON without measuring: the same report, and an analysis stripped
    // from the file comes back.
    let mut stripped = study.clone();
    stripped.analysis.fits.clear();
    std::fs::create_dir_all(dir.path().join("again")).unwrap();
    std::fs::write(
        dir.path().join("again/scaling.json"),
        serde_json::to_vec(&stripped).unwrap(),
    )
    .unwrap();
    let out = mmsr(dir.path(), &["-q", "scaling", "--report-from", "again"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let again = std::fs::read_to_string(dir.path().join("again/scaling.md")).unwrap();
    assert_eq!(again, markdown);
    let reread: Study =
        serde_json::from_slice(&std::fs::read(dir.path().join("again/scaling.json")).unwrap())
            .unwrap();
    assert_eq!(reread.analysis, study.analysis);
    assert!(dir.path().join("again/plots/time-vs-edges.svg").exists());
    assert!(markdown.contains("Each point was measured 2 times"));

    // One round of measurements: the report says why from the config, not a fixed story.
    let once_text = |repeats: usize| {
        let mut once = study.clone();
        once.measurements.retain(|m| m.repeat == 0);
        once.config.repeats = repeats;
        let folder = format!("once-{repeats}");
        std::fs::create_dir_all(dir.path().join(&folder)).unwrap();
        std::fs::write(
            dir.path().join(format!("{folder}/scaling.json")),
            serde_json::to_vec(&once).unwrap(),
        )
        .unwrap();
        let out = mmsr(dir.path(), &["-q", "scaling", "--report-from", &folder]);
        assert!(out.status.success(), "{}", stderr(&out));
        std::fs::read_to_string(dir.path().join(format!("{folder}/scaling.md"))).unwrap()
    };
    assert!(once_text(1).contains("one round, as the study's config asks: `repeats: 1`"));
    assert!(once_text(3).contains("the study predates repeated rounds"));
}

#[test]
fn bad_study_files_are_errors_that_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    for (text, needle) in [
        ("dataset: synthetic\nbogus: 1\n", "bogus"),
        ("factors: {users: [0.0]}\n", "factors.users"),
        ("factors: {links: [0]}\n", "factors.links"),
        ("factors: {max_len: [200]}\n", "150"),
        ("models: [han-gnn]\ndense: [gat]\n", "dense"),
        ("factors: {dim: [100000000]}\n", "factors.dim"),
        ("factors: {clusters: [30, 999999999]}\n", "factors.clusters"),
        ("repeats: 0\n", "repeats"),
        ("inference_samples: 999999999999\n", "inference_samples"),
        (
            "models: [sasrec]\ndense: []\ndetail_models: []\n",
            "not a graph model",
        ),
    ] {
        std::fs::write(dir.path().join("bad.yaml"), text).unwrap();
        let out = mmsr(
            dir.path(),
            &["-q", "scaling", "--config", "bad.yaml", "--device", "cpu"],
        );
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(stderr(&out).contains(needle), "{text}: {}", stderr(&out));
    }
}

/// `check` audits a committed scaling study by re-deriving its analysis and report from its
/// measurements: the committed study is clean, an edited exponent or an edited report line is
/// a finding naming the file.
#[test]
fn check_re_derives_a_committed_study() {
    let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("leaderboard/scaling-synthetic-cpu-2core");
    let tmp = tempfile::tempdir().unwrap();
    let study = tmp.path().join("study");
    std::fs::create_dir(&study).unwrap();
    for file in ["scaling.json", "scaling.md"] {
        std::fs::copy(committed.join(file), study.join(file)).unwrap();
    }
    let run = || mmsr(tmp.path(), &["check", "study"]);
    let clean = run();
    assert!(clean.status.success(), "{}", common::stdout(&clean));

    // An exponent moved in the JSON: the recomputed fits disagree.
    let json = std::fs::read_to_string(study.join("scaling.json")).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let slope = &mut value["analysis"]["fits"][0]["users"]["slope"];
    *slope = serde_json::json!(slope.as_f64().unwrap() * 0.5);
    std::fs::write(
        study.join("scaling.json"),
        serde_json::to_vec_pretty(&value).unwrap(),
    )
    .unwrap();
    let edited = run();
    assert_eq!(edited.status.code(), Some(1));
    assert!(
        common::stdout(&edited).contains("scaling.json: analysis.fits"),
        "{}",
        common::stdout(&edited)
    );

    // The JSON restored, a number in the report edited.
    std::fs::write(study.join("scaling.json"), &json).unwrap();
    let report = std::fs::read_to_string(study.join("scaling.md")).unwrap();
    std::fs::write(study.join("scaling.md"), report.replacen("0.", "9.", 1)).unwrap();
    let stale = run();
    assert_eq!(stale.status.code(), Some(1));
    assert!(
        common::stdout(&stale).contains("scaling.md: (document, from line"),
        "{}",
        common::stdout(&stale)
    );
}
