//! Every model's FLOP floor on Beauty and how far its measured step and inference sit above it
//! (`cargo bench --bench floors`; `MMSR_BENCH_MODELS=han-gnn,gcn (fused)` limits the set).
//!
//! A floor is the floating-point work of the matrix products a model really dispatches
//! (counted by `mmsr_bench::scaling::products`, forward and backward) divided by this machine's
//! peak product rate (the fastest of 15 1024³ products, measured before and after the models,
//! the better of the two). Per model, on `beauty-offline`
//! (prepared under `MMSR_DATA_DIR`, default `data/`):
//! - a training step: 128 fixed training samples, loss, backward, Adam at learning rate 0
//!   (the whole computation, no update: see the `scaling` bench), whole graphs as in a run;
//! - inference: scores and ranks of the first 1,000 test samples, batches of 64, graphs cut
//!   to the model's receptive field as in a run.
//!
//! Each is counted once (the counter slows operators down), then timed: the median of
//! 15 steps (`MMSR_FLOORS_STEPS`) after `WARM_UP` steps, the median of `PASSES` inference passes after one.
//! The table (Markdown, stdout) gives the floor, the median, their ratio, and the time the
//! products themselves took in the counted step (the rest is element-wise work, indexing,
//! softmax, dropout, the optimiser and the framework's overhead). `MMSR_FLOORS_PROFILE=N`
//! adds, per model, the N longest operators of that step and inference pass (outermost
//! operators and autograd's backward nodes, `scaling::products::profile`).

mod common;

use std::sync::OnceLock;
use std::time::Instant;

use common::{device, load_beauty, set_up_as_a_run, timed};
use mmsr_bench::config::ModelSpec;
use mmsr_bench::dataset::{PreparedDataset, SampleSet};
use mmsr_bench::graph::{GraphSet, StructureSet};
use mmsr_bench::model::{self, GraphInput, InputKind, ModelContext, REGISTRY};
use mmsr_bench::optim::Adam;
use mmsr_bench::scaling::products::{self, OperatorTime, Products};
use mmsr_bench::scaling::variant::first_samples;
use mmsr_bench::train::evaluation::evaluate;
use mmsr_bench::train::{BatchSource, SplitInputs};
use tch::{nn, Device, Kind, Tensor};

const WARM_UP: usize = 3;
/// Timed steps per model; `MMSR_FLOORS_STEPS` sets another count (more for a steadier median
/// on a busy host, or to profile the step with an outside profiler).
fn steps() -> usize {
    std::env::var("MMSR_FLOORS_STEPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(15)
}
const PASSES: usize = 3;
const BATCH: usize = 128;
const TEST_SAMPLES: usize = 1000;

/// Graph models measured a second time with `edge_kernels: fused`.
const FUSED: [&str; 8] = [
    "han-gnn",
    "kv-attention",
    "gcn",
    "graphsage",
    "gat",
    "rgat",
    "hgt",
    "hgt-lang",
];

struct Contestant {
    name: &'static str,
    fused: bool,
}

impl Contestant {
    fn label(&self) -> String {
        if self.fused {
            format!("{} (fused)", self.name)
        } else {
            self.name.to_string()
        }
    }
}

fn contestants() -> Vec<Contestant> {
    let only = std::env::var("MMSR_BENCH_MODELS").ok();
    REGISTRY
        .iter()
        .filter(|entry| entry.name != "pop")
        .flat_map(|entry| {
            let fused = FUSED.contains(&entry.name).then_some(true);
            [Some(false), fused]
                .into_iter()
                .flatten()
                .map(|fused| Contestant {
                    name: entry.name,
                    fused,
                })
        })
        .filter(|c| {
            only.as_ref()
                .is_none_or(|list| list.split(',').any(|wanted| wanted.trim() == c.label()))
        })
        .collect()
}

/// The median of `samples` (sorted in place).
fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Seconds of the fastest of 15 calls of `f` after 2 (a floor takes the best rate the machine
/// reaches).
fn fastest_seconds(device: Device, mut f: impl FnMut()) -> f64 {
    (0..17)
        .map(|_| timed(device, 1, &mut f).as_secs_f64())
        .skip(2)
        .fold(f64::INFINITY, f64::min)
}

/// Operations per second of an [m, k] × [k, n] product.
fn product_rate(device: Device, (m, k, n): (i64, i64, i64)) -> f64 {
    let a = Tensor::randn([m, k], (Kind::Float, device));
    let b = Tensor::randn([k, n], (Kind::Float, device));
    (2 * m * k * n) as f64
        / fastest_seconds(device, || {
            let _ = a.matmul(&b);
        })
}

/// Bytes per second the machine moves through memory: a copy between two 64 MB float arrays
/// (read and write counted). Element-wise passes over tensors larger than the caches cannot
/// run faster than this.
fn memory_rate(device: Device) -> f64 {
    let elements: i64 = 16 << 20;
    let source = Tensor::ones([elements], (Kind::Float, device));
    let mut target = Tensor::zeros([elements], (Kind::Float, device));
    (2 * 4 * elements) as f64 / fastest_seconds(device, || target.copy_(&source))
}

/// A split's graphs in the forms the models read: with codes, items only, and the
/// structure encodings of the graphs with codes (computed when a model first reads them:
/// only Graphormer does, and they are most of the set-up's time).
struct SplitGraphs {
    with_codes: GraphSet,
    items_only: GraphSet,
    structure: OnceLock<StructureSet>,
}

impl SplitGraphs {
    fn build(samples: &SampleSet, data: &PreparedDataset) -> Self {
        let bundles = data
            .codes
            .as_ref()
            .expect("beauty-offline has codes")
            .item_bundles(data.num_items());
        let with_codes = GraphSet::build(samples, Some(&bundles));
        Self {
            items_only: GraphSet::build(samples, None),
            with_codes,
            structure: OnceLock::new(),
        }
    }
}

/// The graphs a model reads: with codes or items only.
fn graphs_for(input: GraphInput, graphs: &SplitGraphs) -> &GraphSet {
    if input.codes {
        &graphs.with_codes
    } else {
        &graphs.items_only
    }
}

/// The graphs cut to the model's reach for training or evaluation, where it has one.
fn receptive_fields(kind: InputKind, graphs: &SplitGraphs, training: bool) -> Option<GraphSet> {
    let InputKind::Graph(input) = kind else {
        return None;
    };
    let reach = if training {
        input.training_reach()
    } else {
        input.evaluation_reach()
    };
    reach.map(|reach| graphs_for(input, graphs).receptive_field(reach))
}

/// What a batch source of a split reads for `kind`: `cut` where there is one.
fn split_inputs<'a>(
    kind: InputKind,
    graphs: &'a SplitGraphs,
    cut: Option<&'a GraphSet>,
) -> Option<SplitInputs<'a>> {
    let InputKind::Graph(input) = kind else {
        return None;
    };
    Some(
        SplitInputs {
            graphs: graphs_for(input, graphs),
            structure: input.structure.then(|| {
                graphs
                    .structure
                    .get_or_init(|| StructureSet::build(&graphs.with_codes))
            }),
        }
        .or_pruned(cut),
    )
}

/// The outermost operators of a counted stretch of work, longest first, and its wall time
/// (observers included).
struct Profile {
    operators: Vec<OperatorTime>,
    seconds: f64,
}

/// Counts and profiles one run of `work`.
fn profiled(work: impl FnOnce()) -> (Products, Profile) {
    let start = Instant::now();
    let ((), counted, operators) = products::profile(work);
    let seconds = start.elapsed().as_secs_f64();
    (counted, Profile { operators, seconds })
}

struct Row {
    label: String,
    step: Products,
    /// The counted step's and inference pass's profiles.
    step_profile: Profile,
    inference_profile: Profile,
    step_seconds: f64,
    inference: Products,
    inference_seconds: f64,
}

/// Counts and times one contestant; `None` (with the reason on stderr) where it does not build.
fn measure(
    contestant: &Contestant,
    data: &PreparedDataset,
    (train, test): (&SampleSet, &SampleSet),
    (train_graphs, test_graphs): (&SplitGraphs, &SplitGraphs),
    device: Device,
) -> Option<Row> {
    let mut spec = ModelSpec::named(contestant.name);
    if contestant.fused {
        spec.params
            .insert("edge_kernels".into(), serde_json::json!("fused"));
    }
    let built = model::resolve(&spec)
        .map_err(|e| e.to_string())
        .and_then(|resolved| {
            tch::manual_seed(1);
            let vs = nn::VarStore::new(device);
            let context = ModelContext {
                dataset: data,
                device,
            };
            let built = model::build(&resolved, &vs, &context).map_err(|e| e.to_string())?;
            Ok((resolved, vs, built))
        });
    let (resolved, vs, built) = match built {
        Ok(built) => built,
        Err(e) => {
            eprintln!("{}: skipped: {e}", contestant.label());
            return None;
        }
    };
    // As in a run: training on whole graphs unless the model trains on receptive fields,
    // inference on receptive fields where the model has one.
    let (pruned_train, pruned_test) = (
        receptive_fields(resolved.kind, train_graphs, true),
        receptive_fields(resolved.kind, test_graphs, false),
    );
    let train_source = BatchSource::new(
        train,
        split_inputs(resolved.kind, train_graphs, pruned_train.as_ref()),
        resolved.kind,
        device,
    );
    let test_source = BatchSource::new(
        test,
        split_inputs(resolved.kind, test_graphs, pruned_test.as_ref()),
        resolved.kind,
        device,
    );

    let indices: Vec<usize> = (0..BATCH).map(|i| (i * 97) % train_source.len()).collect();
    let mut adam = Adam::new(&vs, 0.0, 0.0);
    let mut step = || {
        let batch = train_source.batch(&indices);
        adam.backward_step(&built.model.loss(&batch));
    };
    for _ in 0..WARM_UP {
        step();
    }
    let (step_products, step_profile) = profiled(&mut step);
    let mut step_times: Vec<f64> = (0..steps())
        .map(|_| timed(device, 1, &mut step).as_secs_f64())
        .collect();

    let infer = || {
        evaluate(built.model.as_ref(), &test_source, &[20], 64).expect("inference");
    };
    infer();
    let (inference_products, inference_profile) = profiled(infer);
    let mut inference_times: Vec<f64> = (0..PASSES)
        .map(|_| timed(device, 1, infer).as_secs_f64())
        .collect();
    let per_1000 = TEST_SAMPLES as f64 / test_source.len() as f64;
    Some(Row {
        label: contestant.label(),
        step: step_products,
        step_profile,
        inference_profile,
        step_seconds: median(&mut step_times),
        inference: inference_products,
        inference_seconds: median(&mut inference_times) * per_1000,
    })
}

fn print_table(rows: &[Row], peak: f64) {
    println!(
        "| model | step GFLOP | floor | step | ratio | its products (÷ floor) | inference GFLOP | floor | \
         inference | ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let ms = |seconds: f64| seconds * 1e3;
        let step_floor = row.step.floor_seconds(peak);
        let inference_floor = row.inference.floor_seconds(peak);
        println!(
            "| `{}` | {:.2} | {:.1} ms | {:.1} ms | {:.1}× | {:.1} ms ({:.1}×) at {:.0} GFLOP/s | {:.1} | \
             {:.1} ms | {:.0} ms | {:.1}× |",
            row.label,
            row.step.flops as f64 * 1e-9,
            ms(step_floor),
            ms(row.step_seconds),
            row.step_seconds / step_floor,
            ms(row.step.seconds),
            row.step.seconds / step_floor,
            row.step.rate() * 1e-9,
            row.inference.flops as f64 * 1e-9,
            ms(inference_floor),
            ms(row.inference_seconds),
            row.inference_seconds / inference_floor,
        );
        for (what, counted) in [("step", row.step), ("inference", row.inference)] {
            if counted.unreadable > 0 {
                eprintln!(
                    "{}: {} of the {what}'s {} products had unreadable shapes (not in its GFLOP)",
                    row.label, counted.unreadable, counted.calls
                );
            }
        }
    }
}

/// The `top` longest operators of each model's profiled step and inference pass.
fn print_profiles(rows: &[Row], top: usize) {
    for row in rows {
        for (what, profile) in [
            ("step", &row.step_profile),
            ("inference of 1,000 samples", &row.inference_profile),
        ] {
            println!(
                "\n`{}`, {what}: {:.1} ms profiled (observers included); the longest operators:\n",
                row.label,
                profile.seconds * 1e3
            );
            println!("| operator | calls | ms |");
            println!("|---|---:|---:|");
            for operator in profile.operators.iter().take(top) {
                println!(
                    "| `{}` | {} | {:.2} |",
                    operator.name,
                    operator.calls,
                    operator.seconds * 1e3
                );
            }
            let listed: f64 = profile.operators.iter().map(|o| o.seconds).sum();
            println!(
                "| all {} operators | {} | {:.2} |",
                profile.operators.len(),
                profile.operators.iter().map(|o| o.calls).sum::<u64>(),
                listed * 1e3
            );
        }
    }
}

fn main() {
    mmsr_bench::openmp::apply_wait_policy();
    set_up_as_a_run();
    let device = device();
    let data = match load_beauty() {
        Ok(data) => data,
        Err(e) => {
            eprintln!("floors skipped: {e}");
            return;
        }
    };
    let started = Instant::now();
    let peak_before = product_rate(device, (1024, 1024, 1024));
    let item_scores = product_rate(device, (128, 128, data.num_items() as i64));
    let memory = memory_rate(device);
    let test = first_samples(&data.splits.test, TEST_SAMPLES, 50);
    let train_graphs = SplitGraphs::build(&data.splits.train, &data);
    let test_graphs = SplitGraphs::build(&test, &data);
    let rows: Vec<Row> = contestants()
        .iter()
        .filter_map(|contestant| {
            let row = measure(
                contestant,
                &data,
                (&data.splits.train, &test),
                (&train_graphs, &test_graphs),
                device,
            );
            eprintln!(
                "{} measured ({:.0} s)",
                contestant.label(),
                started.elapsed().as_secs_f64()
            );
            row
        })
        .collect();
    // Measured again at the end: on a shared host the rate moves, and a floor takes the best.
    let peak_after = product_rate(device, (1024, 1024, 1024));
    let peak = peak_before.max(peak_after);
    println!(
        "Peak product rate (1024³): {:.0} GFLOP/s (before the models {:.0}, after {:.0}); the \
         item-score product [128, 128] × [128, {}]: {:.0} GFLOP/s; memory (a 64 MB copy): {:.0} \
         GB/s; {} torch threads; {device:?}.\n",
        peak * 1e-9,
        peak_before * 1e-9,
        peak_after * 1e-9,
        data.num_items(),
        item_scores * 1e-9,
        memory * 1e-9,
        tch::get_num_threads(),
    );
    print_table(&rows, peak);
    if let Some(top) = std::env::var("MMSR_FLOORS_PROFILE")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        print_profiles(&rows, top);
    }
}
