//! HAN-GNN's two execution paths agree (forward and gradients, both modes) on random graphs,
//! and training is deterministic for a seed on the CPU.

use mmsr_bench::dataset::codes::{CodeBook, CodeConfig, ModalityCodes};
use mmsr_bench::dataset::{
    InteractionDataset, ItemSideInfo, PreparedDataset, Provenance, SplitConfig,
};
use mmsr_bench::eval::Metric;
use mmsr_bench::graph::{GraphLayout, GraphSet};
use mmsr_bench::model::han_gnn::layer::HanMode;
use mmsr_bench::model::han_gnn::{HanGnn, HanGnnConfig};
use mmsr_bench::model::{ModelContext, Recommender};
use mmsr_bench::train::evaluation::evaluate;
use mmsr_bench::train::BatchSource;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// Random histories over `items` items and random code links (some items miss a modality).
fn random_dataset(seed: u64) -> PreparedDataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let items = 40usize;
    let sequences: Vec<Vec<u32>> = (0..60)
        .map(|_| {
            let len = rng.random_range(5..14);
            (0..len)
                .map(|_| rng.random_range(1..=items as u32))
                .collect()
        })
        .collect();
    let interactions = InteractionDataset {
        user_keys: (0..60).map(|u| format!("u{u}")).collect(),
        item_keys: (1..=items).map(|i| format!("i{i}")).collect(),
        sequences,
    };
    let provenance = Provenance {
        source: "random".into(),
        k_core: None,
        min_rating: None,
    };
    let side = ItemSideInfo {
        titles: vec![None; items],
        ..ItemSideInfo::default()
    };
    let mut data = PreparedDataset::new(
        "random",
        provenance,
        interactions,
        SplitConfig::default(),
        side,
    );
    let mut book = |codes: u32, missing: f64| CodeBook {
        num_codes: codes as usize,
        centres: Vec::new(),
        centre_dim: 0,
        links: (0..=items)
            .map(|i| {
                if i == 0 || rng.random_bool(missing) {
                    vec![]
                } else {
                    let first = rng.random_range(0..codes);
                    vec![first, (first + 1 + rng.random_range(0..codes - 1)) % codes]
                }
            })
            .collect(),
    };
    let image = book(7, 0.15);
    let text = book(5, 0.25);
    data.codes = Some(ModalityCodes {
        config: CodeConfig::default(),
        image: Some(image),
        text: Some(text),
    });
    data
}

fn model(
    data: &PreparedDataset,
    mode: HanMode,
    layout: GraphLayout,
    dropout: f64,
    layers: usize,
) -> HanGnn {
    // Same initial weights for both layouts. The seed is process-global and the tests run in
    // parallel, so seeding and initialisation must not interleave with another test's.
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    tch::manual_seed(11);
    let config = HanGnnConfig {
        mode,
        layout,
        dim: 16,
        layers,
        dropout,
        attention_dropout: dropout,
        ..HanGnnConfig::default()
    };
    let context = ModelContext {
        dataset: data,
        device: Device::Cpu,
    };
    HanGnn::new(&context, "han-gnn", config, true).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

fn gradients(m: &HanGnn) -> Vec<(String, Tensor)> {
    let mut grads: Vec<(String, Tensor)> = m
        .var_store()
        .unwrap()
        .variables()
        .into_iter()
        .map(|(name, t)| (name, t.grad().copy()))
        .collect();
    grads.sort_by(|a, b| a.0.cmp(&b.0));
    grads
}

#[test]
fn dense_and_sparse_agree_in_forward_and_gradients() {
    let data = random_dataset(3);
    let bundles = data.codes.as_ref().unwrap().item_bundles(data.num_items());
    let graphs = GraphSet::build(&data.splits.train, Some(&bundles));
    let indices: Vec<usize> = (0..data.splits.train.len()).step_by(3).take(48).collect();
    for mode in [HanMode::Compat, HanMode::Fixed] {
        for layers in [1, 2] {
            let dense = model(&data, mode, GraphLayout::Dense, 0.0, layers);
            let sparse = model(&data, mode, GraphLayout::Sparse, 0.0, layers);
            let dense_batch = BatchSource::new(
                &data.splits.train,
                Some(&graphs),
                dense.input_kind(),
                Device::Cpu,
            )
            .batch(&indices);
            let sparse_batch = BatchSource::new(
                &data.splits.train,
                Some(&graphs),
                sparse.input_kind(),
                Device::Cpu,
            )
            .batch(&indices);
            // train mode (dropout 0) so that gradients flow
            let dense_scores = dense.scores(&dense_batch, true);
            let sparse_scores = sparse.scores(&sparse_batch, true);
            assert_eq!(dense_scores.size(), vec![48, 40]);
            let diff = max_abs_diff(&dense_scores, &sparse_scores);
            assert!(
                diff < 1e-5,
                "{mode:?}, {layers} layer(s): forward differs by {diff}"
            );
            assert!(
                dense_scores.abs().max().double_value(&[]) > 1e-3,
                "scores are not trivially zero"
            );

            dense_scores
                .cross_entropy_for_logits(&dense_batch.targets)
                .backward();
            sparse_scores
                .cross_entropy_for_logits(&sparse_batch.targets)
                .backward();
            let (gd, gs) = (gradients(&dense), gradients(&sparse));
            assert_eq!(gd.len(), gs.len());
            for ((name, a), (_, b)) in gd.iter().zip(&gs) {
                let diff = max_abs_diff(a, b);
                assert!(
                    diff < 1e-5,
                    "{mode:?}, {layers} layer(s): gradient of {name} differs by {diff}"
                );
            }
            let total: f64 = gd
                .iter()
                .map(|(_, g)| g.abs().sum(Kind::Double).double_value(&[]))
                .sum();
            assert!(total > 0.0, "gradients flow");
        }
    }
}

#[test]
fn dense_and_sparse_agree_in_eval_mode_with_dropout_configured() {
    let data = random_dataset(5);
    let bundles = data.codes.as_ref().unwrap().item_bundles(data.num_items());
    let graphs = GraphSet::build(&data.splits.test, Some(&bundles));
    let indices: Vec<usize> = (0..data.splits.test.len()).collect();
    for mode in [HanMode::Compat, HanMode::Fixed] {
        let dense = model(&data, mode, GraphLayout::Dense, 0.4, 1);
        let sparse = model(&data, mode, GraphLayout::Sparse, 0.4, 1);
        let a = tch::no_grad(|| {
            dense.scores(
                &BatchSource::new(
                    &data.splits.test,
                    Some(&graphs),
                    dense.input_kind(),
                    Device::Cpu,
                )
                .batch(&indices),
                false,
            )
        });
        let b = tch::no_grad(|| {
            sparse.scores(
                &BatchSource::new(
                    &data.splits.test,
                    Some(&graphs),
                    sparse.input_kind(),
                    Device::Cpu,
                )
                .batch(&indices),
                false,
            )
        });
        let diff = max_abs_diff(&a, &b);
        assert!(diff < 1e-5, "{mode:?}: eval forward differs by {diff}");
    }
}

#[test]
fn compat_and_fixed_differ() {
    let data = random_dataset(7);
    let bundles = data.codes.as_ref().unwrap().item_bundles(data.num_items());
    let graphs = GraphSet::build(&data.splits.train, Some(&bundles));
    let compat = model(&data, HanMode::Compat, GraphLayout::Sparse, 0.0, 1);
    let fixed = model(&data, HanMode::Fixed, GraphLayout::Sparse, 0.0, 1);
    let indices: Vec<usize> = (0..16).collect();
    let batch = BatchSource::new(
        &data.splits.train,
        Some(&graphs),
        compat.input_kind(),
        Device::Cpu,
    )
    .batch(&indices);
    let diff = max_abs_diff(&compat.scores(&batch, false), &fixed.scores(&batch, false));
    assert!(
        diff > 1e-4,
        "fixed mode must compute something else ({diff})"
    );
    assert!(
        fixed.num_parameters() > compat.num_parameters(),
        "fixed has W_K and W_V"
    );
}

/// Dense evaluation visits graphs in size order, sparse in input order; a pass over a split must
/// still give the same metrics, and the dense order must be a permutation sorted by node count.
#[test]
fn evaluation_passes_agree_across_layouts_and_orders() {
    let data = random_dataset(9);
    let bundles = data.codes.as_ref().unwrap().item_bundles(data.num_items());
    let graphs = GraphSet::build(&data.splits.test, Some(&bundles));
    let dense = model(&data, HanMode::Compat, GraphLayout::Dense, 0.3, 1);
    let sparse = model(&data, HanMode::Compat, GraphLayout::Sparse, 0.3, 1);
    let source = |m: &HanGnn| {
        BatchSource::new(
            &data.splits.test,
            Some(&graphs),
            m.input_kind(),
            Device::Cpu,
        )
    };
    let order = source(&dense).evaluation_order();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..data.splits.test.len()).collect::<Vec<_>>());
    assert!(order
        .windows(2)
        .all(|w| graphs.graph(w[0]).num_nodes() <= graphs.graph(w[1]).num_nodes()));
    assert_eq!(
        source(&sparse).evaluation_order(),
        (0..data.splits.test.len()).collect::<Vec<_>>()
    );
    let ks = [1, 5, 20];
    let a = evaluate(&dense, &source(&dense), &ks, 7).unwrap();
    let b = evaluate(&sparse, &source(&sparse), &ks, 7).unwrap();
    for k in ks {
        for metric in [Metric::Hr, Metric::Ndcg, Metric::Mrr] {
            let (x, y) = (a.get(metric, k).unwrap(), b.get(metric, k).unwrap());
            assert!((x - y).abs() < 1e-9, "{metric:?}@{k}: {x} vs {y}");
        }
    }
}
