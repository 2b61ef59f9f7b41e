//! The on-disk prepared format: round trip, atomic replacement, and corruption detection.

use std::fs;

use mmsr_bench::dataset::store::{self, StoreError};
use mmsr_bench::dataset::synthetic::{generate, SyntheticConfig};
use mmsr_bench::dataset::SplitConfig;

fn small() -> mmsr_bench::dataset::PreparedDataset {
    let config = SyntheticConfig {
        users: 300,
        items: 120,
        topics: 6,
        ..SyntheticConfig::default()
    };
    generate(&config, &SplitConfig::default())
}

#[test]
fn round_trip_preserves_everything_including_features_and_titles() {
    let mut data = small();
    data.side.titles[0] = Some("a title with\ttab, \"quotes\" and\nnewline".into());
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("prepared").join("small");
    let manifest = store::save(&data, &target).unwrap();
    assert_eq!(manifest.format_version, store::FORMAT_VERSION);
    assert_eq!(manifest.counts, data.counts());
    let loaded = store::load(&target).unwrap();
    assert_eq!(loaded, data);
    assert_eq!(manifest.content_hash, store::content_hash(&data).unwrap());
    // Saving again replaces the directory atomically and leaves no staging directories behind.
    store::save(&loaded, &target).unwrap();
    let leftovers: Vec<_> = fs::read_dir(target.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(leftovers, vec!["small".to_string()]);
}

#[test]
fn a_modified_table_is_rejected_with_the_file_name() {
    let data = small();
    let dir = tempfile::tempdir().unwrap();
    store::save(&data, dir.path()).unwrap();
    let train = dir.path().join("train.tsv");
    let mut text = fs::read_to_string(&train).unwrap();
    text.push_str("1\t2\t3\n");
    fs::write(&train, text).unwrap();
    let error = store::load(dir.path()).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }));
    let message = error.to_string();
    assert!(
        message.contains("train.tsv") && message.contains("re-run `mmsr-bench prepare`"),
        "{message}"
    );
}

#[test]
fn missing_manifest_and_future_versions_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let message = store::load(dir.path()).unwrap_err().to_string();
    assert!(
        message.contains("is not a prepared dataset (no manifest.yaml)"),
        "{message}"
    );

    store::save(&small(), dir.path()).unwrap();
    let manifest = dir.path().join("manifest.yaml");
    let text = fs::read_to_string(&manifest)
        .unwrap()
        .replace("format_version: 1", "format_version: 9");
    fs::write(&manifest, text).unwrap();
    let message = store::load(dir.path()).unwrap_err().to_string();
    assert!(
        message.contains("version 9 is not readable by this build"),
        "{message}"
    );

    fs::write(&manifest, "format: [unclosed").unwrap();
    let message = store::load(dir.path()).unwrap_err().to_string();
    assert!(
        message.contains("manifest.yaml: invalid manifest"),
        "{message}"
    );
}

/// Pins the generator: the default `synthetic` dataset must stay byte-identical across
/// platforms and releases. If the generator changes on purpose, bump GENERATOR_VERSION and
/// update this hash together.
#[test]
fn default_synthetic_dataset_is_pinned() {
    let data = generate(&SyntheticConfig::default(), &SplitConfig::default());
    let hash = store::content_hash(&data).unwrap();
    assert_eq!(
        hash,
        "1e400ece9576f0c2bfa47d1d71ddca3df976ed6cbf9e8173078fcc13cc9cc8fb",
        "counts {:?}",
        data.counts()
    );
}

/// `prepare --split leave-one-out` on the real S3-Rec copy of Amazon Beauty: one test and one
/// validation sample per user, every earlier item a training target (the literature's 22,363
/// users, 12,101 items, 198,502 interactions), recorded in the manifest and read back; the
/// default split's manifest does not name a scheme (its format is unchanged).
#[test]
fn leave_one_out_split_on_real_beauty() {
    let tmp = tempfile::tempdir().unwrap();
    let beauty = crate::common::shared_data("CIKM2020-S3Rec/data/Beauty.txt");
    let beauty = beauty.to_str().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "--data-dir",
            "d",
            "prepare",
            name,
            "--from-sequences",
            beauty,
        ];
        args.extend_from_slice(extra);
        let out = crate::common::mmsr(tmp.path(), &args);
        assert!(out.status.success(), "{}", crate::common::stderr(&out));
        crate::common::stdout(&out)
    };
    let loo = run("loo", &["--split", "leave-one-out"]);
    assert!(
        loo.contains("22363 users, 12101 items, 198502 interactions; 131413 train / 22363 validation / 22363 test samples"),
        "{loo}"
    );
    let data = store::load(&tmp.path().join("d/prepared/loo")).unwrap();
    assert_eq!(
        data.split_config.scheme,
        mmsr_bench::dataset::split::SplitScheme::LeaveOneOut
    );
    // Every user's test target is the last item of the history, its validation target the one
    // before; inputs are the history before them (capped at 50).
    for (u, history) in data.interactions.sequences.iter().enumerate() {
        let n = history.len();
        assert_eq!(data.splits.test.targets[u], history[n - 1]);
        assert_eq!(data.splits.valid.targets[u], history[n - 2]);
        assert_eq!(
            data.splits.test.input(u),
            &history[n.saturating_sub(51)..n - 1]
        );
    }
    let ratio = run("ratio", &[]);
    assert!(
        ratio.contains("119834 train / 22363 validation / 33942 test samples"),
        "{ratio}"
    );
    let manifest = fs::read_to_string(tmp.path().join("d/prepared/ratio/manifest.yaml")).unwrap();
    assert!(!manifest.contains("scheme"), "{manifest}");
}
