//! The six offline datasets (`datasets/offline/*.yaml`) prepared from the real shared data as a
//! user runs it, and the reduced views (`NAME@NxK`) the quick protocol runs on.

use crate::common::{mmsr, shared_data, stderr, stdout};

fn shared_root() -> String {
    shared_data("README.md")
        .parent()
        .unwrap()
        .display()
        .to_string()
}

/// Sports: real 5-core sequences, IDGenRec text and the S3-Rec attribute bag as the labelled image
/// stand-in (mapped to ASINs through RDRec's datamaps), counts as spec §1.1.
#[test]
fn sport_offline_has_both_side_sources_and_the_spec_counts() {
    let dir = tempfile::tempdir().unwrap();
    let shared = shared_root();
    let out = mmsr(
        dir.path(),
        &[
            "prepare",
            "sport-offline",
            "--shared-data",
            &shared,
            "--ae-max-epochs",
            "1",
            "--device",
            "cpu",
        ],
    );
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{o}\n{e}");
    assert!(!e.contains("WARNING"), "{e}");
    assert!(
        o.contains("prepared sport-offline: 35598 users, 18357 items, 296337 interactions"),
        "{o}"
    );
    assert!(e.contains("counts checked against the sport 5-core"), "{e}");
    assert!(
        e.contains(
            "text (item text of item_generative_indexing_phase_0.txt): 18357 of 18357 items"
        ),
        "{e}"
    );
    assert!(e.contains("image stand-in (S3-Rec attribute ids of Sports_and_Outdoors_item2attributes.json): 18357 of 18357 items"), "{e}");
    let manifest =
        std::fs::read_to_string(dir.path().join("data/prepared/sport-offline/manifest.yaml"))
            .unwrap();
    assert!(
        manifest.contains("STAND-IN for image features"),
        "{manifest}"
    );
    assert!(
        manifest.contains("offline recipe sport-offline: Sports 5-core"),
        "{manifest}"
    );
}

/// Phone: no modality and no time order; both are said in what every result records, and every
/// graph model runs on the item sub-graph of the reduced view.
#[test]
fn phone_offline_is_labelled_and_graph_models_run_on_its_item_graph() {
    let _rng = crate::common::torch_rng();
    let dir = tempfile::tempdir().unwrap();
    let shared = shared_root();
    let out = mmsr(
        dir.path(),
        &["prepare", "phone-offline", "--shared-data", &shared],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("27879 users, 10429 items, 194439 interactions"));
    for model in ["gcn", "sasrec-early"] {
        let out = mmsr(
            dir.path(),
            &[
                "-q",
                "run",
                "--model",
                model,
                "--dataset",
                "phone-offline@100x200",
                "--max-epochs",
                "1",
                "--device",
                "cpu",
            ],
        );
        assert!(out.status.success(), "{model}: {}", stderr(&out));
    }
    let runs = dir.path().join("results/runs/phone-offline@100x200/gcn");
    let file = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let source = result["dataset"]["source"].as_str().unwrap();
    for needed in [
        "histories cut to the 200 most frequent items, then 5+ items: 100 users of phone-offline drawn (seed 2023)",
        "NOT time-ordered",
        "modalities: none (graph models run on the item sub-graph)",
    ] {
        assert!(source.contains(needed), "{needed:?} not in {source:?}");
    }
    assert_eq!(result["dataset"]["counts"]["users"], 100);
    assert!(result["dataset"]["counts"]["items"].as_u64().unwrap() <= 200);

    // Asking for more users than qualify is an error that says how many do.
    let out = mmsr(
        dir.path(),
        &[
            "-q",
            "run",
            "--model",
            "pop",
            "--dataset",
            "phone-offline@99999x200",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("\"phone-offline@99999x200\" draws 99999 users, but \"phone-offline\" has"),
        "{}",
        stderr(&out)
    );
}

/// A recipe whose files are not where it says gives an error naming the file and the fix; the
/// recipes are listed, with how to prepare them, before anything is prepared.
#[test]
fn a_missing_shared_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let listing = stdout(&mmsr(dir.path(), &["datasets"]));
    assert!(
        listing.contains("not prepared (offline recipe: mmsr-bench prepare toy-offline)"),
        "{listing}"
    );
    let out = mmsr(
        dir.path(),
        &[
            "prepare",
            "kitchen-offline",
            "--shared-data",
            "/nonexistent/shared",
        ],
    );
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains("/nonexistent/shared/DLFS-Rec/data/Home_and_Kitchen/Home_and_Kitchen.txt")
            && e.contains("--shared-data"),
        "{e}"
    );
}

/// The paper protocol runs every registered model on the six real datasets with 5 seeds; the
/// quick protocol every registered model on the six offline datasets, reduced.
#[test]
fn the_paper_and_quick_protocols_cover_every_model_and_dataset() {
    use mmsr_bench::config::ExperimentConfig;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let load = |file: &str| {
        let path = root.join("baselines").join(file);
        ExperimentConfig::from_yaml(&std::fs::read_to_string(&path).unwrap(), &path).unwrap()
    };
    let names =
        |c: &ExperimentConfig| -> Vec<String> { c.models.iter().map(|m| m.name.clone()).collect() };
    let every = mmsr_bench::model::registry::model_names();
    let paper = load("paper.yaml");
    let mut got = names(&paper);
    got.sort();
    let mut want = every.clone();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        paper.datasets,
        ["beauty", "clothing", "sport", "toy", "kitchen", "phone"]
    );
    assert_eq!(paper.seeds.len(), 5);
    assert_eq!((paper.train.max_epochs, paper.train.patience), (100, 8));

    let quick = load("quick.yaml");
    let mut quick_models = names(&quick);
    quick_models.sort();
    assert_eq!(quick_models, want);
    let bases: Vec<&str> = quick
        .datasets
        .iter()
        .map(|d| d.split('@').next().unwrap())
        .collect();
    assert_eq!(
        bases,
        mmsr_bench::prepare::offline::names()
            .into_iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
    );
    for d in &quick.datasets {
        assert!(
            mmsr_bench::dataset::subsample::UserSample::parse(d)
                .unwrap()
                .is_ok(),
            "{d}"
        );
    }
    assert_eq!(
        quick.seeds.len(),
        5,
        "the quick protocol has the spec's 5 seeds"
    );
}
