//! Evaluator throughput: the pure rank rule on one score vector, and the batched rank
//! computation of the evaluation passes (the CPU kernel and the libtorch form CUDA uses), at
//! Beauty's item count (12,101).

use std::hint::black_box;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use mmsr_bench::eval::{rank_of_target, MetricAccumulator};
use mmsr_bench::train::evaluation::{target_ranks, tensor_target_ranks};
use tch::{Device, Kind, Tensor};

const ITEMS: i64 = 12_101;

fn pure_rank(c: &mut Criterion) {
    let scores: Vec<f32> = (0..ITEMS)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let mut group = c.benchmark_group("evaluator/pure");
    group.throughput(Throughput::Elements(1));
    group.bench_function("rank_of_target_12101_items", |b| {
        b.iter(|| rank_of_target(black_box(&scores), black_box(6000)))
    });
    group.bench_function("accumulate_1000_ranks", |b| {
        b.iter(|| {
            let mut acc = MetricAccumulator::new(&[5, 10, 20]);
            acc.add_ranks((1..=1000).map(black_box));
            acc.finish()
        })
    });
    group.finish();
}

fn tensor_ranks(c: &mut Criterion) {
    // As the binary does (page faults would otherwise dominate small steps).
    mmsr_bench::allocator::tune();
    mmsr_bench::vml::initialise_on_one_thread();
    tch::manual_seed(0);
    let mut group = c.benchmark_group("evaluator/tensor");
    for batch in [128i64, 512] {
        let scores = Tensor::randn([batch, ITEMS], (Kind::Float, Device::Cpu));
        let targets = Tensor::randint(ITEMS, [batch], (Kind::Int64, Device::Cpu));
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("target_ranks", batch), &batch, |b, _| {
            b.iter(|| target_ranks(&scores, &targets).int64_value(&[0]))
        });
        // The libtorch form the CPU kernel replaced (and CUDA still uses).
        group.bench_with_input(
            BenchmarkId::new("target_ranks_tensor_form", batch),
            &batch,
            |b, _| b.iter(|| tensor_target_ranks(&scores, &targets).int64_value(&[0])),
        );
    }
    group.finish();
}

criterion_group!(benches, pure_rank, tensor_ranks);
// criterion_main! with the binary's OpenMP wait policy first (libgomp reads it at load time).
fn main() {
    mmsr_bench::openmp::apply_wait_policy();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
