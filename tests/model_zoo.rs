//! Every registered model, the same way: a few epochs on a tiny `synthetic` dataset through the
//! real harness (`run_one`): the loss is finite and falls, the metrics are sane, and the same seed
//! gives the same numbers on the CPU.

use mmsr_bench::config::{ExperimentConfig, ModelSpec};
use mmsr_bench::dataset::synthetic::SyntheticConfig;
use mmsr_bench::device::DeviceChoice;
use mmsr_bench::eval::Metric;
use mmsr_bench::experiment::{expand, run_one, DatasetCache, Workspace};
use mmsr_bench::modality::codes::{CodeConfig, Reduction};
use mmsr_bench::model::REGISTRY;
use mmsr_bench::record::RunResult;

fn tiny_experiment(model: &str) -> ExperimentConfig {
    let mut spec = ModelSpec::named(model);
    if model != "pop" {
        spec.params.insert("dim".into(), serde_json::json!(32));
    }
    let mut config = ExperimentConfig {
        models: vec![spec],
        datasets: vec!["synthetic".into()],
        seeds: vec![3],
        synthetic: SyntheticConfig {
            users: 240,
            items: 120,
            topics: 6,
            codes: CodeConfig {
                clusters: 8,
                links: 2,
                reduced_dim: 32,
                reduction: Reduction::Projection,
                ..CodeConfig::default()
            },
            ..SyntheticConfig::default()
        },
        ..ExperimentConfig::default()
    };
    config.train.max_epochs = 4;
    config.train.batch_size = 64;
    config
}

fn run(config: &ExperimentConfig, cache: &mut DatasetCache) -> RunResult {
    let dir = tempfile::tempdir().unwrap();
    let workspace = Workspace {
        data_dir: dir.path().join("data"),
        results_dir: dir.path().join("results"),
        verbose: false,
        force: true,
    };
    let request = expand(config, DeviceChoice::Cpu).unwrap().remove(0);
    run_one(&request, config, &workspace, cache)
        .unwrap_or_else(|e| panic!("{}: {e:#}", config.models[0].name))
        .result()
        .clone()
}

#[test]
fn every_registered_model_trains_and_is_deterministic() {
    let _rng = crate::common::torch_rng();
    let mut cache = DatasetCache::default();
    for entry in REGISTRY {
        let name = entry.name;
        let config = tiny_experiment(name);
        let (a, b) = (run(&config, &mut cache), run(&config, &mut cache));
        assert_eq!(a.test, b.test, "{name}: same seed, same test metrics");
        assert_eq!(a.validation, b.validation, "{name}");
        let hr = a.test.get(Metric::Hr, 20).unwrap();
        let ndcg = a.test.get(Metric::Ndcg, 20).unwrap();
        assert!(
            hr.is_finite() && (0.0..=1.0).contains(&hr),
            "{name}: HR@20 {hr}"
        );
        assert!(ndcg <= hr, "{name}");
        if name == "pop" {
            assert_eq!(a.epochs_run, 0, "pop is fitted when built");
            continue;
        }
        assert!(a.num_parameters > 0, "{name}");
        let losses: Vec<f64> = a.learning_curve.iter().map(|e| e.train_loss).collect();
        assert_eq!(losses.len(), 4, "{name}");
        assert!(losses.iter().all(|l| l.is_finite()), "{name}: {losses:?}");
        assert!(
            losses[3] < losses[0],
            "{name}: the training loss must fall: {losses:?}"
        );
        let b_losses: Vec<f64> = b.learning_curve.iter().map(|e| e.train_loss).collect();
        assert_eq!(losses, b_losses, "{name}: identical learning curves");
    }
}
