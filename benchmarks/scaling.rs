//! The figures of the scaling study and of the speed targets as criterion benches
//! (`cargo bench --bench scaling`), so that a change to a hot path is measured the same way
//! every time:
//! - `floor`: the machine's matrix-product rate, in FLOP/s (criterion's elements/s): a 1024³
//!   product, and the item-score product of one Beauty batch, [128, 128] × [128, 12,101]. They
//!   are the denominators of the FLOP floors in docs/performance.md.
//! - `edges`: one training step of HAN-GNN (sparse, sparse with the fused edge kernels, dense)
//!   and `kv-attention` (sparse, fused) on the same 128 synthetic samples with K = 1, 3, 5 codes per item and
//!   modality (the study's K factor).
//! - `beauty`: one training step on 128 real Beauty samples and one inference pass (scores and
//!   ranks) over its first 1,000 test samples, for those graph models and for the sequence and
//!   fusion models (`sasrec`, `sasrec-early`, `sasrec-late`, `gru4rec`), when `beauty-offline`
//!   is prepared under `MMSR_DATA_DIR` (default `data/`); skipped with a message otherwise.
//!   `MMSR_BENCH_MODELS=sasrec,han-gnn (dense)` limits the set.
//!
//! `MMSR_BENCH_DEVICE=cuda` runs them on a GPU; every timing waits for CUDA before the clock is
//! read.

mod common;

use common::{device, load_beauty, set_up_as_a_run, timed};
use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use mmsr_bench::config::ModelSpec;
use mmsr_bench::dataset::synthetic::{generate, SyntheticConfig};
use mmsr_bench::dataset::{PreparedDataset, SampleSet, SplitConfig};
use mmsr_bench::graph::GraphSet;
use mmsr_bench::model::{self, BuiltModel, InputKind, ModelContext, ResolvedModel};
use mmsr_bench::optim::Adam;
use mmsr_bench::scaling::measure;
use mmsr_bench::scaling::variant::{codes_for, first_samples};
use mmsr_bench::train::evaluation::evaluate;
use mmsr_bench::train::{BatchSource, SplitInputs};
use tch::{nn, Device, Kind, Tensor};

/// Training steps are timed at the initial parameters: a learning rate of 0 keeps Adam's whole
/// computation but not its updates. With a real rate, the hundreds of steps criterion repeats
/// on one fixed batch overfit it until gradients underflow into denormal floats, which made the
/// input layer's backward products 20-30x slower (`MKL_VERBOSE=1`: 1 ms -> 25-37 ms a call),
/// a cost no real epoch of distinct batches pays.
const TIMED_LEARNING_RATE: f64 = 0.0;

/// How a graph model is run: its default sparse layout, the dense layout, or the sparse layout
/// with the fused edge kernels (`edge_kernels: fused`).
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Sparse,
    Dense,
    Fused,
}

const CONTESTANTS: [(&str, Variant); 5] = [
    ("han-gnn", Variant::Sparse),
    ("han-gnn", Variant::Fused),
    ("han-gnn", Variant::Dense),
    ("kv-attention", Variant::Sparse),
    ("kv-attention", Variant::Fused),
];

/// Sequence and fusion models, measured on Beauty only (the `edges` factor does not apply).
const SEQUENCE_CONTESTANTS: [&str; 4] = ["sasrec", "sasrec-early", "sasrec-late", "gru4rec"];

/// The study's label for a model in a layout ("han-gnn (dense)"), or "han-gnn (fused)".
fn label(name: &str, variant: Variant) -> String {
    if variant == Variant::Fused {
        return format!("{name} (fused)");
    }
    measure::Contestant {
        model: name.to_string(),
        dense: variant == Variant::Dense,
    }
    .label()
}

fn floor(c: &mut Criterion) {
    set_up_as_a_run();
    let device = device();
    let mut group = c.benchmark_group("floor");
    group.sample_size(20);
    for (name, (m, k, n)) in [
        ("sgemm_1024", (1024, 1024, 1024)),
        ("item_scores_b128_beauty", (128, 128, 12_101)),
    ] {
        let a = Tensor::randn([m, k], (Kind::Float, device));
        let b = Tensor::randn([k, n], (Kind::Float, device));
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        group.bench_function(name, |bench| {
            bench.iter_custom(|iters| {
                timed(device, iters, || {
                    let _ = a.matmul(&b);
                })
            })
        });
    }
    scoring_step(&mut group, device);
    group.finish();
}

/// What every model's training step pays besides its encoder: 128 user vectors scored against
/// Beauty's 12,101 items, the cross-entropy, its backward and Adam on the item table.
fn scoring_step(
    group: &mut criterion::BenchmarkGroup<criterion::measurement::WallTime>,
    device: Device,
) {
    let vs = nn::VarStore::new(device);
    let users = vs.root().randn("users", &[128, 128], 0.0, 0.1);
    let table = vs.root().randn("items", &[12_101, 128], 0.0, 0.1);
    let targets = Tensor::randint(12_101, [128], (Kind::Int64, device));
    let mut adam = Adam::new(&vs, 1e-3, 0.0);
    group.throughput(Throughput::Elements(3 * 2 * 128 * 128 * 12_101));
    group.bench_function("scoring_step_b128_beauty", |bench| {
        bench.iter_custom(|iters| {
            timed(device, iters, || {
                let scores = users.matmul(&table.tr());
                adam.backward_step(&scores.cross_entropy_for_logits(&targets));
            })
        })
    });
}

struct Contestant {
    resolved: ResolvedModel,
    vs: nn::VarStore,
    built: BuiltModel,
}

fn build(name: &str, variant: Variant, data: &PreparedDataset, device: Device) -> Contestant {
    let mut spec = ModelSpec::named(name);
    match variant {
        Variant::Sparse => {}
        Variant::Dense => {
            spec.params
                .insert("layout".into(), serde_json::json!("dense"));
        }
        Variant::Fused => {
            spec.params
                .insert("edge_kernels".into(), serde_json::json!("fused"));
        }
    }
    let resolved = model::resolve(&spec).expect("registered");
    tch::manual_seed(1);
    let vs = nn::VarStore::new(device);
    let context = ModelContext {
        dataset: data,
        device,
    };
    let built = model::build(&resolved, &vs, &context).expect("builds");
    Contestant {
        resolved,
        vs,
        built,
    }
}

/// Benchmarks one training step of `contestant` on a fixed spread of 128 samples of `graphs`.
fn train_step(
    group: &mut criterion::BenchmarkGroup<criterion::measurement::WallTime>,
    id: BenchmarkId,
    contestant: &Contestant,
    samples: &SampleSet,
    graphs: &GraphSet,
    device: Device,
) {
    let source = BatchSource::new(
        samples,
        Some(SplitInputs {
            graphs,
            structure: None,
        }),
        contestant.resolved.kind,
        device,
    );
    let indices: Vec<usize> = (0..128).map(|i| (i * 97) % source.len()).collect();
    let mut adam = Adam::new(&contestant.vs, TIMED_LEARNING_RATE, 0.0);
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            timed(device, iters, || {
                let batch = source.batch(&indices);
                adam.backward_step(&contestant.built.model.loss(&batch));
            })
        })
    });
}

fn edges(c: &mut Criterion) {
    set_up_as_a_run();
    let device = device();
    let data = generate(&SyntheticConfig::default(), &SplitConfig::default());
    let mut group = c.benchmark_group("edges");
    group.sample_size(10);
    for links in [1, 3, 5] {
        let codes = codes_for(&data, 30, links, 25)
            .expect("synthetic has reduced features")
            .expect("synthetic has codes");
        let bundles = codes.item_bundles(data.num_items());
        let graphs = GraphSet::build(&data.splits.train, Some(&bundles));
        for (name, variant) in CONTESTANTS {
            let contestant = build(name, variant, &data, device);
            let id = BenchmarkId::new(format!("train_step/{}", label(name, variant)), links);
            train_step(
                &mut group,
                id,
                &contestant,
                &data.splits.train,
                &graphs,
                device,
            );
        }
    }
    group.finish();
}

/// The Beauty benches' contestants: the graph models of the study and the sequence and fusion
/// models, limited by `MMSR_BENCH_MODELS=sasrec,gru4rec` (names, `(dense)` for the dense layout, `(fused)` for the fused edge kernels).
fn beauty_contestants() -> Vec<(&'static str, Variant)> {
    let only = std::env::var("MMSR_BENCH_MODELS").ok();
    CONTESTANTS
        .into_iter()
        .chain(SEQUENCE_CONTESTANTS.map(|name| (name, Variant::Sparse)))
        .filter(|&(name, variant)| {
            only.as_ref().is_none_or(|list| {
                list.split(',')
                    .any(|wanted| wanted.trim() == label(name, variant))
            })
        })
        .collect()
}

fn beauty(c: &mut Criterion) {
    set_up_as_a_run();
    let data = match load_beauty() {
        Ok(data) => data,
        Err(e) => {
            eprintln!("beauty benches skipped: {e}");
            return;
        }
    };
    let device = device();
    let bundles = data
        .codes
        .as_ref()
        .expect("beauty-offline has codes")
        .item_bundles(data.num_items());
    let train_graphs = GraphSet::build(&data.splits.train, Some(&bundles));
    let test = first_samples(&data.splits.test, 1000, 50);
    let test_graphs = GraphSet::build(&test, Some(&bundles));
    let mut group = c.benchmark_group("beauty");
    group.sample_size(10);
    for (name, variant) in beauty_contestants() {
        let contestant = build(name, variant, &data, device);
        train_step(
            &mut group,
            BenchmarkId::new("train_step_b128", label(name, variant)),
            &contestant,
            &data.splits.train,
            &train_graphs,
            device,
        );
        // As in a run: inference reads the receptive fields.
        let pruned = match contestant.resolved.kind {
            InputKind::Graph(input) => input
                .evaluation_reach()
                .map(|reach| test_graphs.receptive_field(reach)),
            InputKind::Sequence | InputKind::None => None,
        };
        let source = BatchSource::new(
            &test,
            Some(
                SplitInputs {
                    graphs: &test_graphs,
                    structure: None,
                }
                .or_pruned(pruned.as_ref()),
            ),
            contestant.resolved.kind,
            device,
        );
        group.bench_function(
            BenchmarkId::new("inference_1000", label(name, variant)),
            |b| {
                b.iter_custom(|iters| {
                    timed(device, iters, || {
                        evaluate(contestant.built.model.as_ref(), &source, &[20], 64).unwrap();
                    })
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, floor, edges, beauty);
// criterion_main! with the binary's OpenMP wait policy first (libgomp reads it at load time).
fn main() {
    mmsr_bench::openmp::apply_wait_policy();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
