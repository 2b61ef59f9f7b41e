//! The missing-modality study (spec §8): one drop pattern per (seed, split), the same for every
//! model (graphs lose exactly the dropped bundles, item-vector models see their missing vector
//! exactly there), rate 0 is the complete data, items-only models are unaffected, and the
//! study's runs get their own table and plot instead of leaderboard rows.

use crate::common;
use crate::common::zoo;

use std::collections::BTreeSet;
use std::rc::Rc;

use mmsr_bench::dataset::missing::{DropPattern, DropTarget, MissingModality, Stream};
use mmsr_bench::graph::{GraphSet, NodeType, SplitGraphs};
use mmsr_bench::modality::Modality;
use mmsr_bench::model::{Batch, BatchInput, SequenceBatch};
use mmsr_bench::record::RunResult;
use serde_json::json;
use tch::Device;
use zoo::{build, random_dataset, source};

fn condition(drop: DropTarget, rate: f64) -> MissingModality {
    MissingModality::new(drop, rate)
}

/// (position, modality) pairs whose code nodes sit at that position of graph `g`.
fn coded_positions(graphs: &GraphSet, g: usize) -> BTreeSet<(u16, Modality)> {
    let v = graphs.graph(g);
    v.position_nodes
        .iter()
        .zip(v.position_indices)
        .filter_map(|(&node, &position)| match v.types[node as usize] {
            t if t == NodeType::Image as u8 => Some((position, Modality::Image)),
            t if t == NodeType::Text as u8 => Some((position, Modality::Text)),
            _ => None,
        })
        .collect()
}

#[test]
fn graphs_and_sequence_batches_hide_exactly_the_pattern() {
    let _rng = crate::common::torch_rng();
    let data = Rc::new(random_dataset(6));
    let c = condition(DropTarget::Both, 0.5);
    let graphs_of = |missing| SplitGraphs::new(Rc::clone(&data), true, missing);
    let graphs = graphs_of(Some((c, 9)));
    let again = graphs_of(Some((c, 9)));
    let complete = graphs_of(None);
    let other_seed = graphs_of(Some((c, 10)));
    assert!(
        graphs.whole(Stream::Test) == again.whole(Stream::Test)
            && graphs.whole(Stream::Train) == again.whole(Stream::Train)
    );
    assert!(graphs.whole(Stream::Test) != other_seed.whole(Stream::Test));
    let codes = data.codes.as_ref().unwrap();
    let has = |item: u32, m: Modality| !codes.book(m).unwrap().links[item as usize].is_empty();
    let (mut kept, mut hidden) = (0, 0);
    for (samples, set, stream) in [
        (&data.splits.test, graphs.whole(Stream::Test), Stream::Test),
        (
            &data.splits.train,
            graphs.whole(Stream::Train),
            Stream::Train,
        ),
    ] {
        let pattern = DropPattern::new(c, 9, stream);
        let indices: Vec<usize> = (0..samples.len()).collect();
        let batch = SequenceBatch::assemble_missing(samples, &indices, Some(&pattern), Device::Cpu);
        for s in 0..samples.len() {
            let found = coded_positions(set, s);
            for (p, &item) in samples.input(s).iter().enumerate() {
                for (mi, m) in Modality::ALL.into_iter().enumerate() {
                    let dropped = pattern.dropped(s, p, m);
                    let mask =
                        batch.dropped.as_ref().unwrap()[mi].int64_value(&[s as i64, p as i64]);
                    assert_eq!(mask != 0, dropped, "sample {s}, position {p}, {m:?}");
                    let present = found.contains(&(p as u16, m));
                    assert_eq!(
                        present,
                        has(item, m) && !dropped,
                        "sample {s}, position {p}"
                    );
                    kept += usize::from(present);
                    hidden += usize::from(dropped && has(item, m));
                }
            }
        }
    }
    assert!(kept > 100 && hidden > 100, "{kept} kept, {hidden} hidden");
    // The complete graphs are what rate 0 builds.
    let zero = graphs_of(Some((condition(DropTarget::Both, 0.0), 9)));
    assert!(
        zero.whole(Stream::Test) == complete.whole(Stream::Test)
            && zero.whole(Stream::Train) == complete.whole(Stream::Train)
    );
    // Image only: every text bundle stays.
    let image = graphs_of(Some((condition(DropTarget::Image, 1.0), 9)));
    let all_text = |set: &GraphSet, s| {
        coded_positions(set, s)
            .into_iter()
            .filter(|(_, m)| *m == Modality::Text)
            .count()
    };
    for s in 0..data.splits.test.len() {
        assert_eq!(
            all_text(image.whole(Stream::Test), s),
            all_text(complete.whole(Stream::Test), s)
        );
        assert!(coded_positions(image.whole(Stream::Test), s)
            .iter()
            .all(|(_, m)| *m == Modality::Text));
    }
}

fn with_masks(
    batch: Batch,
    pattern: &DropPattern,
    samples: &mmsr_bench::dataset::SampleSet,
    indices: &[usize],
) -> Batch {
    Batch {
        input: BatchInput::Sequence(SequenceBatch::assemble_missing(
            samples,
            indices,
            Some(pattern),
            Device::Cpu,
        )),
        ..batch
    }
}

/// Early and late fusion read the learned missing vector at hidden positions only: moving it
/// moves the scores of items that have the modality once a history position hides it, and not
/// when nothing in the history is hidden (rate 0) or when only the other modality is.
#[test]
fn fusion_reads_the_missing_vector_exactly_where_the_pattern_hides_a_modality() {
    let _rng = crate::common::torch_rng();
    let data = random_dataset(6);
    let image = data.codes.as_ref().unwrap().image.as_ref().unwrap();
    let text = data.codes.as_ref().unwrap().text.as_ref().unwrap();
    let complete = |i: usize| !image.links[i].is_empty() && !text.links[i].is_empty();
    let samples = &data.splits.test;
    let sample = (0..samples.len())
        .find(|&s| {
            samples.input(s).len() >= 2 && samples.input(s).iter().all(|&i| complete(i as usize))
        })
        .expect("a history of complete items");
    let with_image = (1..=data.num_items())
        .find(|&i| !image.links[i].is_empty())
        .unwrap() as i64;
    for name in ["sasrec-early", "sasrec-late"] {
        for (c, moves) in [
            (condition(DropTarget::Image, 1.0), true),
            (condition(DropTarget::Both, 1.0), true),
            (condition(DropTarget::Image, 0.0), false),
            (condition(DropTarget::Text, 1.0), false),
        ] {
            let built = build(name, json!({"dim": 16}), &data, 2);
            let pattern = DropPattern::new(c, 4, Stream::Test);
            let src = source(samples, None, built.resolved.kind);
            let batch = with_masks(src.batch(&[sample]), &pattern, samples, &[sample]);
            let before = tch::no_grad(|| built.model.model.scores(&batch, false));
            let mut vars = built.vs.variables();
            let key = vars
                .keys()
                .find(|k| k.ends_with("missing_image"))
                .unwrap()
                .clone();
            tch::no_grad(|| {
                let _ = vars.get_mut(&key).unwrap().g_add_scalar_(1.0);
            });
            let after = tch::no_grad(|| built.model.model.scores(&batch, false));
            let change = (after - before).abs().double_value(&[0, with_image - 1]);
            assert_eq!(change > 1e-6, moves, "{name}, {c}: {change}");
        }
    }
}

/// Under a pattern, a sample's scores are the same alone and inside a batch (padding and
/// neighbours never leak, masks follow the sample).
#[test]
fn hidden_positions_follow_the_sample_not_the_batch() {
    let _rng = crate::common::torch_rng();
    let data = random_dataset(4);
    let test = &data.splits.test;
    let all: Vec<usize> = (0..test.len().min(40)).collect();
    let pattern = DropPattern::new(condition(DropTarget::Both, 0.5), 3, Stream::Test);
    for name in ["sasrec-early", "sasrec-late"] {
        let built = build(name, json!({"dim": 16}), &data, 5);
        let src = source(test, None, built.resolved.kind);
        let together = tch::no_grad(|| {
            built
                .model
                .model
                .scores(&with_masks(src.batch(&all), &pattern, test, &all), false)
        });
        for &i in all.iter().step_by(3) {
            let alone = tch::no_grad(|| {
                built
                    .model
                    .model
                    .scores(&with_masks(src.batch(&[i]), &pattern, test, &[i]), false)
            });
            let diff = (together.get(i as i64) - alone.get(0))
                .abs()
                .max()
                .double_value(&[]);
            assert!(diff < 1e-5, "{name}, sample {i}: {diff}");
        }
    }
}

const STUDY: &str = "models:\n  - {name: han-gnn, dim: 32}\n  - {name: items-only, dim: 32}\n  - {name: sasrec-early, dim: 32}\ndatasets: [synthetic]\nseeds: [1, 2]\ntrain:\n  max_epochs: 2\n  batch_size: 64\nsynthetic:\n  users: 240\n  items: 120\n  topics: 6\n  codes: {clusters: 8, links: 2, reduced_dim: 32}\nmissing_modality:\n  drop: [image, both]\n  rates: [0.0, 1.0]\n";

fn load(dir: &std::path::Path) -> Vec<RunResult> {
    mmsr_bench::record::read::load_results(dir)
        .unwrap()
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

#[test]
fn the_study_runs_every_condition_and_reports_it_apart() {
    let _rng = crate::common::torch_rng();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("study.yaml"), STUDY).unwrap();
    let out = common::mmsr(
        dir.path(),
        &["--quiet", "run-all", "--config", "study.yaml"],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let table = common::stdout(&out);
    assert!(
        table.contains("missing modality") && table.contains("drop both 1"),
        "{table}"
    );
    let results = load(&dir.path().join("results"));
    // 3 models × 2 seeds × (complete + 2 targets × 2 rates)
    assert_eq!(results.len(), 30);
    let find = |model: &str, seed: u64, missing: Option<MissingModality>| {
        results
            .iter()
            .find(|r| {
                r.config.model == model && r.config.seed == seed && r.config.missing == missing
            })
            .unwrap_or_else(|| panic!("{model} {seed} {missing:?}"))
    };
    for seed in [1, 2] {
        for model in ["han-gnn", "items-only", "sasrec-early"] {
            let complete = find(model, seed, None);
            // Rate 0 hides nothing: the complete-data numbers, under another run id.
            for drop in [DropTarget::Image, DropTarget::Both] {
                let zero = find(model, seed, Some(condition(drop, 0.0)));
                assert_eq!(zero.test, complete.test, "{model} {drop:?}");
                assert_ne!(zero.run_id, complete.run_id);
            }
        }
        // Items-only reads no modality: every condition gives its complete numbers.
        let items = find("items-only", seed, None);
        let hidden = find("items-only", seed, Some(condition(DropTarget::Both, 1.0)));
        assert_eq!(hidden.test, items.test);
        // Everything hidden: han-gnn's graphs are item-only graphs.
        let han = find("han-gnn", seed, Some(condition(DropTarget::Both, 1.0)));
        assert_eq!(han.graph_stats, items.graph_stats);
        assert_ne!(han.test, find("han-gnn", seed, None).test);
        let image_only = find("han-gnn", seed, Some(condition(DropTarget::Image, 1.0)));
        assert_ne!(image_only.graph_stats, han.graph_stats);
    }
    // A second run reuses every result.
    let out = common::mmsr(
        dir.path(),
        &["--quiet", "run-all", "--config", "study.yaml"],
    );
    assert!(
        common::stderr(&out).contains("reused 30 of 30"),
        "{}",
        common::stderr(&out)
    );

    let board = dir.path().join("board");
    let out = common::mmsr(
        dir.path(),
        &["leaderboard", "--results", "results", "--out", "board"],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let leaderboard = std::fs::read_to_string(board.join("leaderboard.json")).unwrap();
    let rows: serde_json::Value = serde_json::from_str(&leaderboard).unwrap();
    let text = rows.to_string();
    assert_eq!(text.matches("\"model\":\"han-gnn\"").count(), 1, "{text}");
    let study = std::fs::read_to_string(board.join("missing-modality.md")).unwrap();
    assert!(
        study.contains(
            "## synthetic: drop image (seeds [1, 2]; modalities here: image present, text "
        ) && study.contains("## synthetic: drop both"),
        "the tables say which modalities the data has: {study}"
    );
    assert!(!study.contains("drop text"), "{study}");
    let han_row = study
        .lines()
        .find(|l| l.starts_with("| han-gnn |"))
        .unwrap();
    assert_eq!(han_row.matches(" | ").count(), 3, "{han_row}");
    let svg = std::fs::read_to_string(board.join("plots/synthetic-missing-modality.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("drop both") && svg.contains("sasrec-early"));
}

#[test]
fn bad_conditions_are_errors_that_name_the_setting() {
    let _rng = crate::common::torch_rng();
    let dir = tempfile::tempdir().unwrap();
    let out = common::mmsr(
        dir.path(),
        &[
            "run",
            "--model",
            "pop",
            "--drop-modality",
            "image",
            "--drop-rate",
            "1.5",
        ],
    );
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains("missing_modality.rates") && err.contains("[0, 1]"),
        "{err}"
    );
    let out = common::mmsr(dir.path(), &["run", "--model", "pop", "--drop-rate", "0.5"]);
    assert!(!out.status.success());
    assert!(common::stderr(&out).contains("--drop-modality"));
    let out = common::mmsr(
        dir.path(),
        &[
            "run",
            "--model",
            "pop",
            "--drop-modality",
            "audio",
            "--drop-rate",
            "0.5",
        ],
    );
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("image, text, both"),
        "{}",
        common::stderr(&out)
    );
}

const UNSEEN: &str = "models:\n  - {name: hgt, dim: 32}\ndatasets: [synthetic]\nseeds: [1]\ntrain:\n  max_epochs: 1\n  batch_size: 64\nsynthetic:\n  users: 240\n  items: 120\n  topics: 6\n  codes: {clusters: 8, links: 2, reduced_dim: 32}\nmissing_modality:\n  drop: [text]\n  rates: [0.0]\n  train_rate: 1.0\n";

/// `train_rate` trains on one rate and evaluates on another (the unseen-relation experiment):
/// training sees exactly the graphs of rate 1 (same training stream), evaluation the complete
/// ones; the report puts it next to the complete-data run.
#[test]
fn a_training_rate_trains_without_and_evaluates_with_the_modality() {
    let _rng = crate::common::torch_rng();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("unseen.yaml"), UNSEEN).unwrap();
    let out = common::mmsr(
        dir.path(),
        &["--quiet", "run-all", "--config", "unseen.yaml"],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let out = common::mmsr(
        dir.path(),
        &[
            "--quiet",
            "run-all",
            "--config",
            "unseen.yaml",
            "--drop-modality",
            "text",
            "--drop-rate",
            "1",
        ],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let results = load(&dir.path().join("results"));
    assert_eq!(results.len(), 3);
    let with = |m: Option<MissingModality>| results.iter().find(|r| r.config.missing == m).unwrap();
    let unseen = with(Some(MissingModality {
        train_rate: Some(1.0),
        ..condition(DropTarget::Text, 0.0)
    }));
    let never = with(Some(condition(DropTarget::Text, 1.0)));
    let complete = with(None);
    // Same training graphs (the recorded stats are the training split's), other test graphs.
    assert_eq!(unseen.graph_stats, never.graph_stats);
    assert_ne!(unseen.graph_stats, complete.graph_stats);
    assert_eq!(
        unseen.learning_curve[0].train_loss,
        never.learning_curve[0].train_loss
    );
    assert_ne!(unseen.test, never.test);
    let out = common::mmsr(
        dir.path(),
        &["leaderboard", "--results", "results", "--out", "board"],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let study = std::fs::read_to_string(dir.path().join("board/missing-modality.md")).unwrap();
    let row = study
        .lines()
        .find(|l| l.contains("drop text 0 (train 1)"))
        .unwrap_or_else(|| panic!("{study}"));
    assert!(
        row.starts_with("| hgt |") && row.matches(" | ").count() == 4,
        "{row}"
    );
}
