//! One training step and one inference pass of every registered model on a fixed Beauty-like
//! batch: 128 training samples of the embedded `synthetic` dataset (D = 128, C = 30, K = 3),
//! each model in its default layout. `MMSR_BENCH_MODELS=gcn,gat` limits the set.
//! `optimiser/`: one Adam step over parameters of a Beauty HAN-GNN's shapes (1.6 M values),
//! libtorch's (tch's `nn::Adam`) against the one-pass step the trainer runs (`optim`).

use std::hint::black_box;

use criterion::{criterion_group, BenchmarkId, Criterion};
use mmsr_bench::config::ModelSpec;
use mmsr_bench::dataset::synthetic::{generate, SyntheticConfig};
use mmsr_bench::dataset::SplitConfig;
use mmsr_bench::graph::{GraphSet, StructureSet};
use mmsr_bench::model::{self, InputKind, ModelContext, REGISTRY};
use mmsr_bench::optim::Adam;
use mmsr_bench::train::{BatchSource, SplitInputs};
use tch::nn::OptimizerConfig;
use tch::{nn, Device, Kind, Tensor};

fn selected() -> Vec<&'static str> {
    let only = std::env::var("MMSR_BENCH_MODELS").ok();
    REGISTRY
        .iter()
        .map(|e| e.name)
        .filter(|name| {
            only.as_ref()
                .is_none_or(|list| list.split(',').any(|n| n.trim() == *name))
        })
        .collect()
}

fn steps(c: &mut Criterion) {
    // As the binary does (page faults would otherwise dominate small steps).
    mmsr_bench::allocator::tune();
    mmsr_bench::vml::initialise_on_one_thread();
    let data = generate(&SyntheticConfig::default(), &SplitConfig::default());
    let bundles = data
        .codes
        .as_ref()
        .expect("synthetic has codes")
        .item_bundles(data.num_items());
    let with_codes = GraphSet::build(&data.splits.train, Some(&bundles));
    let items_only = GraphSet::build(&data.splits.train, None);
    let structure = StructureSet::build(&with_codes);
    let indices: Vec<usize> = (0..128)
        .map(|i| (i * 97) % data.splits.train.len())
        .collect();
    let mut group = c.benchmark_group("models/synthetic_b128");
    group.sample_size(10);
    for name in selected() {
        let resolved = model::resolve(&ModelSpec::named(name)).expect("registered");
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let context = ModelContext {
            dataset: &data,
            device: Device::Cpu,
        };
        let built = model::build(&resolved, &vs, &context).expect("builds");
        let inputs = match resolved.kind {
            InputKind::Graph(input) => Some(SplitInputs {
                graphs: if input.codes {
                    &with_codes
                } else {
                    &items_only
                },
                structure: input.structure.then_some(&structure),
            }),
            InputKind::None | InputKind::Sequence => None,
        };
        let source = BatchSource::new(&data.splits.train, inputs, resolved.kind, Device::Cpu);
        if !vs.trainable_variables().is_empty() {
            // Learning rate 0: every timed step does the same work on the same parameters
            // (repeated updates on one batch drive its gradients into slow denormal floats;
            // benchmarks/scaling.rs).
            let mut adam = Adam::new(&vs, 0.0, 0.0);
            group.bench_function(BenchmarkId::new("train_step", name), |b| {
                b.iter(|| {
                    let batch = source.batch(&indices);
                    let loss = built.model.loss(&batch);
                    adam.backward_step(&loss);
                    loss.double_value(&[])
                })
            });
        }
        group.bench_function(BenchmarkId::new("inference", name), |b| {
            b.iter(|| {
                tch::no_grad(|| {
                    built
                        .model
                        .scores(&source.batch(&indices), false)
                        .double_value(&[0, 0])
                })
            })
        });
        if name == "han-gnn" {
            group.bench_function(BenchmarkId::new("assemble_batch", name), |b| {
                b.iter(|| black_box(source.batch(&indices)).size)
            });
        }
    }
    group.finish();
}

/// Parameters of a Beauty HAN-GNN's shapes (item and code table, input projection, typed
/// projections, position table, bias), each with a fixed random gradient.
fn beauty_shaped_parameters() -> nn::VarStore {
    let vs = nn::VarStore::new(Device::Cpu);
    let shapes: [&[i64]; 5] = [
        &[12_162, 128],
        &[384, 128],
        &[3, 128, 128],
        &[51, 128],
        &[128],
    ];
    let loss = shapes
        .iter()
        .enumerate()
        .map(|(i, shape)| {
            let param = vs.root().randn(&format!("p{i}"), shape, 0.0, 0.1);
            (&param * Tensor::randn(*shape, (Kind::Float, Device::Cpu))).sum(Kind::Float)
        })
        .fold(Tensor::zeros([], (Kind::Float, Device::Cpu)), |sum, t| {
            sum + t
        });
    loss.backward();
    vs
}

fn optimiser(c: &mut Criterion) {
    mmsr_bench::allocator::tune();
    mmsr_bench::vml::initialise_on_one_thread();
    tch::manual_seed(1);
    let mut group = c.benchmark_group("optimiser/adam_beauty_shapes");
    group.sample_size(20);
    // Learning rate 0: the same work on the same values at every repetition.
    let theirs = beauty_shaped_parameters();
    let mut libtorch = nn::Adam::default().build(&theirs, 0.0).expect("Adam");
    group.bench_function("libtorch", |b| b.iter(|| libtorch.step()));
    let ours = beauty_shaped_parameters();
    let mut one_pass = Adam::new(&ours, 0.0, 0.0);
    group.bench_function("one_pass", |b| b.iter(|| one_pass.step()));
    group.finish();
}

criterion_group!(benches, steps, optimiser);
// criterion_main! with the binary's OpenMP wait policy first (libgomp reads it at load time).
fn main() {
    mmsr_bench::openmp::apply_wait_policy();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
