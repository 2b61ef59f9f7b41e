//! The same seed on the CPU gives identical numbers; another seed gives other numbers.

use mmsr_bench::config::{ExperimentConfig, ModelSpec};
use mmsr_bench::dataset::synthetic::SyntheticConfig;
use mmsr_bench::device::DeviceChoice;
use mmsr_bench::experiment::{expand, run_one, DatasetCache, Workspace};
use mmsr_bench::modality::codes::CodeConfig;
use mmsr_bench::record::RunResult;

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

/// The binary tunes glibc's allocator at start (`src/allocator.rs`); this test process does not.
/// Where tensors live must not change a number: the same run made in both is identical.
#[test]
fn the_binarys_allocator_settings_change_no_number() {
    let _rng = crate::common::torch_rng();
    let config = small_experiment("han-gnn", "sparse");
    let here = run(&config, 5);
    let dir = tempfile::tempdir().unwrap();
    // JSON is YAML: the experiment file the binary reads.
    let file = dir.path().join("experiment.yaml");
    std::fs::write(&file, serde_json::to_string(&config).unwrap()).unwrap();
    let threads = tch::get_num_threads().to_string();
    let out = crate::common::mmsr_command(
        dir.path(),
        &[
            "-q",
            "--results-dir",
            "results",
            "run",
            "--config",
            "experiment.yaml",
            "--seed",
            "5",
            "--device",
            "cpu",
        ],
    )
    .env("OMP_NUM_THREADS", &threads)
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    let runs = dir.path().join("results/runs/synthetic/han-gnn");
    let path = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let binary = RunResult::load(&path).unwrap();
    assert_eq!(binary.run_id, here.run_id);
    assert_eq!(
        binary.environment.torch_threads,
        here.environment.torch_threads
    );
    assert_eq!(binary.test, here.test);
    assert_eq!(binary.validation, here.validation);
    let curve = |r: &RunResult| {
        r.learning_curve
            .iter()
            .map(|e| (e.train_loss, e.validation.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(curve(&binary), curve(&here));
}
