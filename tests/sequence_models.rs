//! The sequence models (`sasrec`, `gru4rec`): a sample's scores never depend on its batch,
//! SASRec matches a position-by-position re-computation from its own weights (causal
//! attention, positions from the last item, RecBole's post-LN blocks and the original's
//! pre-LN form), the `bce` loss trains, and evaluating by input length keeps the metrics.

use crate::common::zoo;

use std::collections::HashMap;

use mmsr_bench::dataset::SampleSet;
use mmsr_bench::model::REGISTRY;
use serde_json::json;
use tch::{Kind, Tensor};
use zoo::{build, random_dataset, source};

fn sequence_entries() -> Vec<&'static str> {
    REGISTRY
        .iter()
        .filter(|e| {
            let resolved =
                mmsr_bench::model::resolve(&mmsr_bench::config::ModelSpec::named(e.name)).unwrap();
            resolved.kind == mmsr_bench::model::InputKind::Sequence
        })
        .map(|e| e.name)
        .collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn padding_and_batch_neighbours_never_influence_scores() {
    let _rng = crate::common::torch_rng();
    let names = sequence_entries();
    assert!(names.contains(&"sasrec") && names.contains(&"gru4rec"));
    let data = random_dataset(4);
    let test = &data.splits.test;
    let all: Vec<usize> = (0..test.len().min(40)).collect();
    for name in names {
        let built = build(name, json!({"dim": 16}), &data, 5);
        let src = source(test, None, built.resolved.kind);
        let together = tch::no_grad(|| built.model.model.scores(&src.batch(&all), false));
        for &i in all.iter().step_by(5) {
            let alone = tch::no_grad(|| built.model.model.scores(&src.batch(&[i]), false));
            let diff = max_abs_diff(&together.get(i as i64), &alone.get(0));
            assert!(diff < 1e-5, "{name}, sample {i}: {diff}");
        }
    }
}

/// SASRec recomputed one query position at a time from the var store: each position sees
/// only the inputs up to itself (slices, no mask), positions count back from the last item.
/// `original`: Kang & McAuley's form (scaled embeddings, queries normalised first, a final
/// LayerNorm) instead of RecBole's post-LN blocks.
fn sasrec_reference(
    vars: &HashMap<String, Tensor>,
    input: &[u32],
    heads: i64,
    original: bool,
) -> Tensor {
    let v = |name: &str| vars[name].shallow_clone();
    let linear = |x: &Tensor, name: &str| {
        x.matmul(&v(&format!("{name}.weight")).tr()) + v(&format!("{name}.bias"))
    };
    let norm = |x: &Tensor, name: &str| {
        let mean = x.mean_dim(-1, true, Kind::Float);
        let var = (x - &mean).square().mean_dim(-1, true, Kind::Float);
        (x - mean) / (var + 1e-12).sqrt() * v(&format!("{name}.weight"))
            + v(&format!("{name}.bias"))
    };
    let n = input.len() as i64;
    let ids = Tensor::from_slice(&input.iter().map(|&i| i64::from(i)).collect::<Vec<_>>());
    let back = Tensor::from_slice(&(0..n).rev().collect::<Vec<i64>>());
    let items = v("item_embedding").index_select(0, &ids);
    let d = items.size()[1];
    let positions = v("position_embedding").index_select(0, &back);
    let mut h = if original {
        items * (d as f64).sqrt() + positions
    } else {
        norm(&(items + positions), "input_norm")
    };
    let hd = d / heads;
    for b in 0..2 {
        let p = |s: &str| format!("block{b}.{s}");
        let queries = if original {
            norm(&h, &p("attention_norm"))
        } else {
            h.shallow_clone()
        };
        let (q, k, val) = (
            linear(&queries, &p("query")),
            linear(&h, &p("key")),
            linear(&h, &p("value")),
        );
        let mut rows = Vec::new();
        for t in 0..n {
            let mut ctx = Vec::new();
            for head in 0..heads {
                let cols = |x: &Tensor| x.narrow(1, head * hd, hd);
                let qt = cols(&q).get(t);
                let kt = cols(&k).narrow(0, 0, t + 1);
                let vt = cols(&val).narrow(0, 0, t + 1);
                let w = (kt.matmul(&qt) / (hd as f64).sqrt()).softmax(0, Kind::Float);
                ctx.push(w.matmul(&vt));
            }
            rows.push(Tensor::cat(&ctx, 0));
        }
        let attended = linear(&Tensor::stack(&rows, 0), &p("output")) + queries;
        let ffn = |x: &Tensor| linear(&linear(x, &p("inner")).gelu("none"), &p("outer"));
        h = if original {
            let h1 = norm(&attended, &p("ffn_norm"));
            ffn(&h1) + h1
        } else {
            let h1 = norm(&attended, &p("attention_norm"));
            norm(&(ffn(&h1) + h1), &p("ffn_norm"))
        };
    }
    let mut state = h.get(n - 1);
    if original {
        state = norm(&state, "final_norm");
    }
    let items = v("item_embedding").narrow(0, 1, vars["item_embedding"].size()[0] - 1);
    items.matmul(&state)
}

#[test]
fn sasrec_matches_a_position_by_position_recomputation() {
    let _rng = crate::common::torch_rng();
    let data = random_dataset(9);
    for architecture in ["recbole", "original"] {
        let built = build(
            "sasrec",
            json!({"dim": 16, "heads": 2, "inner_dim": 24, "architecture": architecture}),
            &data,
            3,
        );
        let vars = built.vs.variables();
        let original = architecture == "original";
        assert_eq!(vars.contains_key("final_norm.weight"), original);
        assert_eq!(vars.contains_key("input_norm.weight"), !original);
        let samples = &data.splits.test;
        let indices: Vec<usize> = (0..samples.len().min(12)).collect();
        let batch = source(samples, None, built.resolved.kind).batch(&indices);
        let scores = tch::no_grad(|| built.model.model.scores(&batch, false));
        for (row, &s) in indices.iter().enumerate() {
            let reference =
                sasrec_reference(&vars, samples.input(s), 2, architecture == "original");
            let expected = tch::no_grad(|| reference);
            let diff = max_abs_diff(&scores.get(row as i64), &expected);
            assert!(
                diff < 1e-5,
                "{architecture}, sample {s} (input {:?}): {diff}",
                samples.input(s)
            );
        }
    }
}

#[test]
fn the_bce_option_trains_both_models() {
    let _rng = crate::common::torch_rng();
    let data = random_dataset(2);
    let train = &data.splits.train;
    let indices: Vec<usize> = (0..train.len().min(64)).collect();
    for name in ["sasrec", "gru4rec"] {
        let built = build(
            name,
            json!({"dim": 16, "loss": "bce", "dropout": 0.0}),
            &data,
            1,
        );
        let batch = source(train, None, built.resolved.kind).batch(&indices);
        let mut adam =
            tch::nn::OptimizerConfig::build(tch::nn::Adam::default(), &built.vs, 1e-2).unwrap();
        // One sampled negative per target makes a single loss value noisy (and the test
        // threads share torch's stream), so compare means over many draws.
        let mean_loss = |draws: usize| {
            let _guard = tch::no_grad_guard();
            (0..draws)
                .map(|_| built.model.model.loss(&batch).double_value(&[]))
                .sum::<f64>()
                / draws as f64
        };
        tch::manual_seed(4);
        let first = mean_loss(32);
        for _ in 0..100 {
            let loss = built.model.model.loss(&batch);
            adam.backward_step(&loss);
        }
        let last = mean_loss(32);
        // Two BCE terms of an untrained model: about 2 ln 2.
        assert!((first - 2.0 * 2f64.ln()).abs() < 0.1, "{name}: {first}");
        assert!(last < 0.6 * first, "{name}: {first} -> {last}");
    }
}

/// `targets: every-position` trains each user's longest input at every position. With one
/// shared position row (`max_positions: 1`) and no dropout, the state at a position is the
/// state of the prefix ending there, so its loss is exactly the last-item loss of all those
/// prefixes as separate samples; inputs of 3, 7 and 20 items span the three length buckets.
#[test]
fn sasrec_trained_at_every_position_is_its_prefixes_trained_at_their_last_item() {
    let _rng = crate::common::torch_rng();
    let data = random_dataset(5);
    let build_with = |targets: &str, max_positions: i64| {
        let params = json!({"dim": 16, "heads": 2, "inner_dim": 24, "dropout": 0.0,
            "attention_dropout": 0.0, "max_positions": max_positions, "targets": targets});
        build("sasrec", params, &data, 8)
    };
    let (mut whole, mut prefixes) = (SampleSet::new(), SampleSet::new());
    for (user, len) in [(1u32, 3u32), (2, 7), (3, 20)] {
        let input: Vec<u32> = (0..len).map(|i| 1 + (i * 7 + user) % 40).collect();
        let target = 1 + (len * 3 + user) % 40;
        whole.push(user, &input, target);
        for k in 1..input.len() {
            prefixes.push(user, &input[..k], input[k]);
        }
        prefixes.push(user, &input, target);
    }
    let batch = |set: &SampleSet| {
        let all: Vec<usize> = (0..set.len()).collect();
        source(set, None, mmsr_bench::model::InputKind::Sequence).batch(&all)
    };
    let losses = |max_positions: i64| {
        let every = build_with("every-position", max_positions);
        let last = build_with("last-item", max_positions);
        assert_eq!(
            every.model.model.epoch_samples(),
            mmsr_bench::model::EpochSamples::LongestPerUser
        );
        assert_eq!(
            last.model.model.epoch_samples(),
            mmsr_bench::model::EpochSamples::All
        );
        (
            every.model.model.loss(&batch(&whole)).double_value(&[]),
            last.model.model.loss(&batch(&prefixes)).double_value(&[]),
        )
    };
    let (at_every, at_last) = losses(1);
    assert!(
        (at_every - at_last).abs() < 1e-5,
        "every position {at_every}, prefixes {at_last}"
    );
    // With a row per position the two differ: a trained position's rows count back from the
    // end of the whole input, as in the original's end-aligned window, not from its own prefix.
    let (at_every, at_last) = losses(150);
    assert!((at_every - at_last).abs() > 1e-4, "{at_every} vs {at_last}");
}

#[test]
fn only_sasrec_trains_at_every_position() {
    for name in ["sasrec-early", "sasrec-late"] {
        let mut spec = mmsr_bench::config::ModelSpec::named(name);
        spec.params
            .insert("targets".into(), json!("every-position"));
        let error = mmsr_bench::model::resolve(&spec).err().unwrap().to_string();
        assert!(
            error.contains("implemented for sasrec only"),
            "{name}: {error}"
        );
    }
}

/// Early fusion fills a missing modality with its learned vector: moving that vector changes
/// the scores of exactly the items that lack the modality (and of no item that has it), for a
/// history of items that all have both modalities.
#[test]
fn early_fusion_uses_a_learned_missing_vector_only_where_a_modality_is_missing() {
    let _rng = crate::common::torch_rng();
    let data = random_dataset(6);
    let image = data.codes.as_ref().unwrap().image.as_ref().unwrap();
    let text = data.codes.as_ref().unwrap().text.as_ref().unwrap();
    let complete = |i: usize| !image.links[i].is_empty() && !text.links[i].is_empty();
    let samples = &data.splits.test;
    let sample = (0..samples.len())
        .find(|&s| samples.input(s).iter().all(|&i| complete(i as usize)))
        .expect("a history of complete items");
    let built = build("sasrec-early", json!({"dim": 16}), &data, 2);
    let batch = source(samples, None, built.resolved.kind).batch(&[sample]);
    let before = tch::no_grad(|| built.model.model.scores(&batch, false));
    let mut vars = built.vs.variables();
    tch::no_grad(|| {
        let missing = vars.get_mut("missing_image").unwrap();
        let _ = missing.g_add_scalar_(1.0);
    });
    let after = tch::no_grad(|| built.model.model.scores(&batch, false));
    let moved = (after - before).abs().get(0);
    for item in 1..=data.num_items() {
        let change = moved.double_value(&[item as i64 - 1]);
        if image.links[item].is_empty() {
            assert!(
                change > 1e-6,
                "item {item} lacks the image but did not move"
            );
        } else {
            assert!(
                change < 1e-7,
                "item {item} has its image but moved by {change}"
            );
        }
    }
}

/// A dataset without stored reduced vectors (official pickles, older prepared datasets) is a
/// clear error for the fusion references, not zeros.
#[test]
fn fusion_without_reduced_vectors_is_an_error_that_says_what_to_do() {
    let _rng = crate::common::torch_rng();
    let mut data = random_dataset(6);
    let codes = data.codes.as_mut().unwrap();
    for book in [codes.image.as_mut(), codes.text.as_mut()] {
        let book = book.unwrap();
        book.reduced.clear();
        book.reduced_dim = 0;
    }
    for name in ["sasrec-early", "sasrec-late"] {
        let mut spec = mmsr_bench::config::ModelSpec::named(name);
        spec.params.insert("dim".into(), json!(16));
        let resolved = mmsr_bench::model::resolve(&spec).unwrap();
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let context = mmsr_bench::model::ModelContext {
            dataset: &data,
            device: tch::Device::Cpu,
        };
        let error = mmsr_bench::model::build(&resolved, &vs, &context)
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("stores no reduced modality vectors")
                && error.contains("re-run `mmsr-bench prepare`"),
            "{name}: {error}"
        );
    }
}

#[test]
fn evaluation_by_length_visits_short_inputs_first_and_keeps_the_metrics() {
    use mmsr_bench::config::EvaluationOrder;
    use mmsr_bench::train::evaluation::evaluate;
    let _rng = crate::common::torch_rng();
    let data = random_dataset(6);
    let test = &data.splits.test;
    for name in sequence_entries() {
        let built = build(name, json!({"dim": 16}), &data, 3);
        let kind = built.resolved.kind;
        let input = source(test, None, kind);
        assert_eq!(
            input.evaluation_order(),
            (0..test.len()).collect::<Vec<_>>()
        );
        let by_length = source(test, None, kind).with_order(EvaluationOrder::ByLength);
        let order = by_length.evaluation_order();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (0..test.len()).collect::<Vec<_>>(),
            "{name}: a permutation"
        );
        let lengths: Vec<usize> = order.iter().map(|&s| test.input(s).len()).collect();
        assert!(
            lengths.windows(2).all(|w| w[0] <= w[1]),
            "{name}: {lengths:?}"
        );
        assert!(
            lengths[0] < lengths[lengths.len() - 1],
            "{name}: lengths vary"
        );
        let ks = [1, 5, 10];
        let a = evaluate(built.model.model.as_ref(), &input, &ks, 7).unwrap();
        let b = evaluate(built.model.model.as_ref(), &by_length, &ks, 7).unwrap();
        // The same ranks (no near-tie here), summed in the split's order: bit for bit.
        assert_eq!(a, b, "{name}");
    }
}

#[test]
fn ranking_without_the_input_items_only_moves_targets_up() {
    use mmsr_bench::config::Candidates;
    use mmsr_bench::eval::metrics::Metric;
    use mmsr_bench::train::evaluation::evaluate;
    let _rng = crate::common::torch_rng();
    let data = random_dataset(8);
    let test = &data.splits.test;
    let built = build("gru4rec", json!({"dim": 16}), &data, 3);
    let kind = built.resolved.kind;
    let all = source(test, None, kind);
    assert!(all.left_out_items(&[0, 1]).is_none());
    let unseen = source(test, None, kind).with_candidates(Candidates::NotInInput);
    // Row r leaves out the distinct input items of sample r other than its target, as 0-based
    // ids (random histories over 40 items repeat items: each is left out once).
    assert!(
        (0..test.len()).any(|s| {
            let mut input = test.input(s).to_vec();
            input.sort_unstable();
            input.windows(2).any(|w| w[0] == w[1])
        }),
        "the test needs an input with a repeated item"
    );
    let (rows, items) = unseen.left_out_items(&[0, 1]).unwrap();
    let (rows, items) = (
        Vec::<i64>::try_from(rows).unwrap(),
        Vec::<i64>::try_from(items).unwrap(),
    );
    let expected: Vec<(i64, i64)> = [0usize, 1]
        .iter()
        .enumerate()
        .flat_map(|(row, &s)| {
            let distinct: std::collections::BTreeSet<u32> = test.input(s).iter().copied().collect();
            distinct
                .into_iter()
                .filter(move |&i| i != test.targets[s])
                .map(move |i| (row as i64, i64::from(i) - 1))
        })
        .collect();
    assert_eq!(rows.into_iter().zip(items).collect::<Vec<_>>(), expected);
    let ks = [1, 5, 10, 40];
    let a = evaluate(built.model.model.as_ref(), &all, &ks, 7).unwrap();
    let b = evaluate(built.model.model.as_ref(), &unseen, &ks, 7).unwrap();
    for (x, y) in a.at.iter().zip(&b.at) {
        assert!(y.get(Metric::Hr) >= x.get(Metric::Hr), "HR@{}", x.k);
        assert!(y.get(Metric::Mrr) >= x.get(Metric::Mrr), "MRR@{}", x.k);
    }
    // 40 items, inputs of 4 to 12 of them: leaving them out moves many targets up.
    assert!(b.at[2].get(Metric::Hr) > a.at[2].get(Metric::Hr));

    // Exactly the pure rule over the items that remain (one batch: the same scores).
    let every: Vec<usize> = (0..test.len()).collect();
    let scores = tch::no_grad(|| built.model.model.scores(&unseen.batch(&every), false));
    let mut expected = mmsr_bench::eval::MetricAccumulator::new(&ks);
    for s in every.iter().copied() {
        let row = Vec::<f32>::try_from(scores.get(s as i64)).unwrap();
        let target = test.targets[s] as usize - 1;
        let kept: Vec<usize> = (0..row.len())
            .filter(|&j| j == target || !test.input(s).contains(&(j as u32 + 1)))
            .collect();
        let kept_scores: Vec<f32> = kept.iter().map(|&j| row[j]).collect();
        let at = kept.iter().position(|&j| j == target).unwrap();
        expected.add_rank(mmsr_bench::eval::rank_of_target(&kept_scores, at));
    }
    let whole = evaluate(built.model.model.as_ref(), &unseen, &ks, test.len()).unwrap();
    assert_eq!(whole, expected.finish());
}
