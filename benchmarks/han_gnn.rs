//! HAN-GNN training and inference steps, dense vs sparse, on batches of the embedded `synthetic`
//! dataset (batch 128, D = 128, C = 30, K = 3), and graph-batch assembly.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mmsr_bench::dataset::synthetic::{generate, SyntheticConfig};
use mmsr_bench::dataset::SplitConfig;
use mmsr_bench::graph::{GraphLayout, GraphSet};
use mmsr_bench::model::han_gnn::layer::HanMode;
use mmsr_bench::model::han_gnn::{HanGnn, HanGnnConfig};
use mmsr_bench::model::{ModelContext, Recommender};
use mmsr_bench::train::BatchSource;
use tch::nn::OptimizerConfig;
use tch::{nn, Device};

fn steps(c: &mut Criterion) {
    let data = generate(&SyntheticConfig::default(), &SplitConfig::default());
    let bundles = data
        .codes
        .as_ref()
        .expect("synthetic has codes")
        .item_bundles(data.num_items());
    let graphs = GraphSet::build(&data.splits.train, Some(&bundles));
    let indices: Vec<usize> = (0..128)
        .map(|i| (i * 97) % data.splits.train.len())
        .collect();
    let mut group = c.benchmark_group("han_gnn/synthetic_b128");
    group.sample_size(10);
    for mode in [HanMode::Compat, HanMode::Fixed] {
        for layout in [GraphLayout::Dense, GraphLayout::Sparse] {
            let config = HanGnnConfig {
                mode,
                layout,
                ..HanGnnConfig::default()
            };
            let context = ModelContext {
                dataset: &data,
                device: Device::Cpu,
            };
            let model = HanGnn::new(&context, "han-gnn", config, true).expect("model");
            let source = BatchSource::new(
                &data.splits.train,
                Some(&graphs),
                model.input_kind(),
                Device::Cpu,
            );
            let mut adam = nn::Adam::default()
                .build(model.var_store().unwrap(), 1e-3)
                .unwrap();
            let label = format!("{mode:?}/{layout:?}").to_lowercase();
            group.bench_function(BenchmarkId::new("train_step", &label), |b| {
                b.iter(|| {
                    let batch = source.batch(&indices);
                    let loss = model
                        .scores(&batch, true)
                        .cross_entropy_for_logits(&batch.targets);
                    adam.backward_step(&loss);
                    loss.double_value(&[])
                })
            });
            group.bench_function(BenchmarkId::new("inference", &label), |b| {
                b.iter(|| {
                    tch::no_grad(|| {
                        model
                            .scores(&source.batch(&indices), false)
                            .double_value(&[0, 0])
                    })
                })
            });
            group.bench_function(BenchmarkId::new("assemble_batch", &label), |b| {
                b.iter(|| black_box(source.batch(&indices)).size)
            });
        }
    }
    group.finish();
}

criterion_group!(benches, steps);
criterion_main!(benches);
