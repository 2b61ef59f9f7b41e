//! The split and the prepared format on the real Amazon Beauty 5-core sequences.

use crate::common;

use mmsr_bench::dataset::split::split_sequences;
use mmsr_bench::dataset::{store, PreparedDataset, Provenance, SplitConfig};
use mmsr_bench::modality::ItemSideInfo;
use mmsr_bench::prepare::sequence_file::read_sequence_file;

/// Spec §1.1/§1.3: 22,363 users, 12,101 items, 198,502 interactions; 142,197 training and 33,942
/// test samples before the validation carve-out, which moves one sample per user to validation.
#[test]
fn beauty_counts_and_split_match_the_spec() {
    let path = common::shared_data("CIKM2020-S3Rec/data/Beauty.txt");
    let mut log = read_sequence_file(&path).unwrap();
    log.k_core(5); // already 5-core: must remove nothing
    let data = log.into_dataset();
    assert_eq!(
        (data.num_users(), data.num_items(), data.num_interactions()),
        (22_363, 12_101, 198_502)
    );

    let official = split_sequences(
        &data.sequences,
        &SplitConfig {
            validation: false,
            ..SplitConfig::default()
        },
    );
    assert_eq!(official.train.len(), 142_197);
    assert_eq!(official.test.len(), 33_942);
    assert!(official.valid.is_empty());
    assert_eq!(official.train.len().div_ceil(128), 1_111);
    assert_eq!(official.test.len() % 128, 22);

    let ours = split_sequences(&data.sequences, &SplitConfig::default());
    assert_eq!(ours.valid.len(), 22_363);
    assert_eq!(ours.train.len(), 142_197 - 22_363);
    assert_eq!(ours.test, official.test);
    assert!(ours.train.max_input_len() <= 50 && ours.test.max_input_len() == 50);
}

/// The ASIN copy of the same data gets ids by ascending ASIN and yields the same counts.
#[test]
fn beauty_asin_sequences_give_the_same_counts() {
    let path = common::shared_data("OpenP5/data/Beauty/user_sequence.txt");
    let data = read_sequence_file(&path).unwrap().into_dataset();
    assert_eq!(
        (data.num_users(), data.num_items(), data.num_interactions()),
        (22_363, 12_101, 198_502)
    );
    let mut sorted = data.item_keys.clone();
    sorted.sort();
    assert_eq!(sorted, data.item_keys, "item ids follow ascending ASIN");
    let split = split_sequences(&data.sequences, &SplitConfig::default());
    assert_eq!(
        (split.train.len() + split.valid.len(), split.test.len()),
        (142_197, 33_942)
    );
}

#[test]
fn beauty_prepared_round_trip() {
    let path = common::shared_data("CIKM2020-S3Rec/data/Beauty.txt");
    let data = read_sequence_file(&path).unwrap().into_dataset();
    let side = ItemSideInfo {
        titles: vec![None; data.num_items()],
        ..ItemSideInfo::default()
    };
    let provenance = Provenance {
        source: "S3-Rec Beauty.txt".into(),
        k_core: None,
        min_rating: None,
    };
    let prepared = PreparedDataset::new(
        "beauty-s3rec",
        provenance,
        data,
        SplitConfig::default(),
        side,
    );
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("beauty-s3rec");
    let manifest = store::save(&prepared, &target).unwrap();
    assert_eq!(manifest.counts.test_samples, 33_942);
    let loaded = store::load(&target).unwrap();
    assert_eq!(loaded, prepared);
    assert_eq!(store::content_hash(&loaded).unwrap(), manifest.content_hash);
}
