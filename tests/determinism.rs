//! The same seed on the CPU gives identical numbers; another seed gives other numbers.

use mmsr_bench::config::{ExperimentConfig, ModelSpec};
use mmsr_bench::dataset::codes::CodeConfig;
use mmsr_bench::dataset::synthetic::SyntheticConfig;
use mmsr_bench::device::DeviceChoice;
use mmsr_bench::experiment::{expand, run_one, DatasetCache, Workspace};
use mmsr_bench::report::RunResult;

fn small_experiment(model: &str, layout: &str) -> ExperimentConfig {
    let mut model = ModelSpec::named(model);
    model
        .params
        .insert("layout".into(), serde_json::json!(layout));
    model.params.insert("dim".into(), serde_json::json!(32));
    let mut config = ExperimentConfig {
        models: vec![model],
        datasets: vec!["synthetic".into()],
        seeds: vec![5],
        synthetic: SyntheticConfig {
            users: 300,
            items: 150,
            topics: 6,
            codes: CodeConfig {
                clusters: 8,
                links: 2,
                reduced_dim: 32,
                autoencoder_max_epochs: 20,
                ..CodeConfig::default()
            },
            ..SyntheticConfig::default()
        },
        ..ExperimentConfig::default()
    };
    config.train.max_epochs = 3;
    config.train.batch_size = 64;
    config
}

fn run(config: &ExperimentConfig, seed: u64) -> RunResult {
    let dir = tempfile::tempdir().unwrap();
    let workspace = Workspace {
        data_dir: dir.path().join("data"),
        results_dir: dir.path().join("results"),
        verbose: false,
        force: true,
    };
    let mut request = expand(config, DeviceChoice::Cpu).unwrap().remove(0);
    request.seed = seed;
    run_one(&request, config, &workspace, &mut DatasetCache::default())
        .unwrap()
        .result()
        .clone()
}

#[test]
fn same_seed_same_numbers_on_the_cpu() {
    let _rng = crate::common::torch_rng();
    for (model, layout) in [
        ("han-gnn", "sparse"),
        ("han-gnn-fixed", "dense"),
        ("items-only", "sparse"),
    ] {
        let config = small_experiment(model, layout);
        let (a, b) = (run(&config, 5), run(&config, 5));
        assert_eq!(a.run_id, b.run_id);
        assert_eq!(a.test, b.test, "{model}");
        assert_eq!(a.validation, b.validation, "{model}");
        let losses = |r: &RunResult| {
            r.learning_curve
                .iter()
                .map(|e| e.train_loss)
                .collect::<Vec<_>>()
        };
        assert_eq!(losses(&a), losses(&b), "{model}: identical learning curves");
        assert_eq!(a.learning_curve.len(), 3);
        let c = run(&config, 6);
        assert_ne!(
            losses(&a),
            losses(&c),
            "{model}: another seed must change the run"
        );
    }
}
