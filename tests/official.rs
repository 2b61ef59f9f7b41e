//! The importer for the authors' processed pickles, on the shipped sample (spec §1.4.3).

use crate::common;

use std::fs;
use std::path::PathBuf;

use mmsr_bench::dataset::official::{
    import, read_numpy_matrix, read_sample_lists, BundleOrder, OfficialConfig,
};
use mmsr_bench::graph::GraphSet;

fn sample_dir() -> PathBuf {
    common::shared_data("mmsr-sample/train_c2_k2.txt")
        .parent()
        .unwrap()
        .to_path_buf()
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/official")
        .join(name)
}

#[test]
fn reads_the_shipped_train_pickle_as_the_spec_describes() {
    let lists = read_sample_lists(&sample_dir().join("train_c2_k2.txt")).unwrap();
    assert_eq!(lists.inputs.len(), 1205);
    assert_eq!(lists.inputs[0], vec![1, 2]);
    assert_eq!(lists.first[0], vec![vec![311, 311], vec![312, 312]]);
    assert_eq!(lists.second[0], vec![vec![621, 621], vec![622, 622]]);
    assert_eq!(lists.targets[0], 3);
    assert_eq!(
        (lists.inputs[6].clone(), lists.targets[6]),
        (vec![10, 11, 11], 11)
    );
    assert_eq!(lists.inputs[17], vec![22, 22, 23, 23, 23, 22, 23]);
    assert_eq!(lists.targets[17], 23);
    assert_eq!(lists.inputs.iter().map(Vec::len).max(), Some(16));
    let test = read_sample_lists(&sample_dir().join("test_c2_k2.txt")).unwrap();
    assert_eq!(test.inputs.len(), 99);
    assert_eq!(
        (test.inputs[0].clone(), test.first[0].clone()),
        (vec![282], vec![vec![282, 282]])
    );
}

#[test]
fn imports_the_sample_with_layout_fix_up_and_graphs() {
    let config = OfficialConfig {
        dir: sample_dir(),
        bundle_order: BundleOrder::ImageText,
        validation_share: 0.1,
        seed: 1,
    };
    let (data, notes) = import(&config).unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("added 310 to list [1] and 620 to list [2]")),
        "{notes:?}"
    );
    assert_eq!(data.num_items(), 309);
    let codes = data.codes.as_ref().unwrap();
    let layout = codes.layout(309);
    assert_eq!(
        (
            layout.image_offset(),
            layout.text_offset(),
            layout.table_rows()
        ),
        (310, 620, 930)
    );
    let bundles = codes.item_bundles(309);
    assert_eq!(bundles.image[282], vec![592, 592]);
    assert_eq!(bundles.text[282], vec![902, 902]);
    assert_eq!(data.splits.train.len() + data.splits.valid.len(), 1205);
    assert_eq!(data.splits.valid.len(), 121);
    assert_eq!(data.splits.test.len(), 99);

    // The graph of training sample 17 is the worked example of spec §3.4.
    let graphs = GraphSet::build(&data.splits.train, Some(&bundles));
    let index = (0..data.splits.train.len())
        .find(|&s| data.splits.train.input(s) == [22, 22, 23, 23, 23, 22, 23])
        .expect("sample 17 is in the training part");
    assert_eq!(graphs.graph(index).nodes, &[22, 23, 332, 333, 642, 643]);
    // Test graphs use the fixed-up ids, i.e. real code nodes rather than collisions with items.
    let test_graphs = GraphSet::build(&data.splits.test, Some(&bundles));
    assert_eq!(test_graphs.graph(0).nodes, &[282, 592, 902]);
}

#[test]
fn a_wrong_bundle_order_is_explained() {
    let config = OfficialConfig {
        dir: sample_dir(),
        bundle_order: BundleOrder::TextImage,
        validation_share: 0.1,
        seed: 1,
    };
    let message = import(&config).unwrap_err().to_string();
    assert!(
        message.contains("try --bundle-order image-text"),
        "{message}"
    );
}

#[test]
fn decodes_pickled_numpy_centres_without_executing_anything() {
    let (values, rows, cols) =
        read_numpy_matrix(&fixture("image_cluster3_feature4.pickle")).unwrap();
    assert_eq!((rows, cols), (3, 4));
    assert_eq!(&values[4..8], &[1.5, -1.0, 2.0, 0.5]);
    let (values32, ..) = read_numpy_matrix(&fixture("text_cluster3_feature4.pickle")).unwrap();
    assert_eq!(&values32[4..8], &[3.0, -2.0, 4.0, 1.0]);
    let not_an_array = read_numpy_matrix(&sample_dir().join("train_c2_k2.txt"))
        .unwrap_err()
        .to_string();
    assert!(
        not_an_array.contains("not a pickled 2-d numpy float array"),
        "{not_an_array}"
    );
}

#[test]
fn broken_pickles_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(sample_dir().join("train_c2_k2.txt")).unwrap();
    for cut in [0usize, 3, 100, bytes.len() / 2, bytes.len() - 1] {
        let path = dir.path().join(format!("cut{cut}.txt"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let message = read_sample_lists(&path).unwrap_err().to_string();
        assert!(
            message.contains("not a readable pickle"),
            "{cut}: {message}"
        );
    }
}

/// The shipped sample with one test target moved to the first code id of its training file:
/// the error names the test file (it blamed the training file's bundle ids before).
#[test]
fn an_item_id_beyond_the_codes_in_the_test_file_names_the_test_file() {
    use crate::hostile_pickles::{pickle, Py};
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        sample_dir().join("train_c2_k2.txt"),
        dir.path().join("train.txt"),
    )
    .unwrap();
    let test = read_sample_lists(&sample_dir().join("test_c2_k2.txt")).unwrap();
    let ids = |v: &[u32]| Py::List(v.iter().map(|&i| Py::Int(i.into())).collect());
    let bundles = |b: &[Vec<Vec<u32>>]| {
        Py::List(
            b.iter()
                .map(|p| Py::List(p.iter().map(|c| ids(c)).collect()))
                .collect(),
        )
    };
    let mut targets = test.targets.clone();
    targets[5] = 311;
    let lists = Py::List(vec![
        Py::List(test.inputs.iter().map(|i| ids(i)).collect()),
        bundles(&test.first),
        bundles(&test.second),
        ids(&targets),
    ]);
    std::fs::write(dir.path().join("test.txt"), pickle(&lists)).unwrap();
    let config = OfficialConfig {
        dir: dir.path().to_path_buf(),
        bundle_order: BundleOrder::ImageText,
        validation_share: 0.1,
        seed: 1,
    };
    let message = import(&config).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "{}: sample 5: item id 311 is beyond the item ids 1..=310 (items come before the codes, and the code ids of {} start at 311)",
            dir.path().join("test.txt").display(),
            dir.path().join("train.txt").display()
        )),
        "{message}"
    );
}

#[test]
fn han_gnn_runs_on_the_official_sample_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let sample = sample_dir();
    let out = common::mmsr(
        dir.path(),
        &[
            "-q",
            "run",
            "--model",
            "han-gnn",
            "--official-dir",
            sample.to_str().unwrap(),
            "--bundle-order",
            "image-text",
            "--max-epochs",
            "2",
            "--device",
            "cpu",
        ],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(common::stdout(&out).contains("han-gnn on official"));
    assert!(common::stderr(&out).contains("code ids were not offset"));
}

/// With the user ids of `official-beauty` (all_train_seq.txt), validation is each user's last
/// training target, the split of spec §1.3: the counts of `beauty-offline`, and no user's
/// samples on both sides; the histories are filled in (popularity reads them).
#[test]
fn the_official_beauty_folder_is_split_by_user() {
    let config = OfficialConfig {
        dir: common::shared_data("official-beauty"),
        bundle_order: BundleOrder::TextImage,
        validation_share: 0.1,
        seed: mmsr_bench::DEFAULT_SEED,
    };
    let (data, notes) = import(&config).unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("validation = each user's last training target (22363 users")),
        "{notes:?}"
    );
    let counts = data.counts();
    assert_eq!(
        (
            counts.users,
            counts.interactions,
            counts.train_samples,
            counts.valid_samples,
            counts.test_samples
        ),
        (22_363, 198_502, 119_834, 22_363, 33_942)
    );
    // Every validation sample is the longest prefix of a distinct history: its input plus its
    // target is a user's whole train part.
    let histories: std::collections::HashSet<Vec<u32>> = data
        .training_histories()
        .zip(&data.interactions.sequences)
        .map(|(visible, whole)| whole[..visible.len() + 1].to_vec())
        .collect();
    let valid = &data.splits.valid;
    for s in 0..valid.len() {
        let mut whole = valid.input(s).to_vec();
        whole.push(valid.targets[s]);
        assert!(
            histories.contains(&whole) || whole.len() > 50,
            "validation sample {s}"
        );
    }
    // Popularity counts the train parts without the validation targets.
    let pop_counts: usize = data.training_histories().map(<[u32]>::len).sum();
    assert_eq!(
        pop_counts,
        198_502 - 33_942 - 22_363,
        "train interactions without validation targets"
    );
}

/// `check --rerun` re-imports the official folder a run used when given `--official-dir` (with
/// the run's bundle order: the content hash must match); without it the run is skipped with a
/// note that says which flag is missing.
#[test]
fn check_reruns_an_official_run_from_the_folder_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let sample = sample_dir();
    let sample = sample.to_str().unwrap();
    // run-all, which writes the summary `check` expects.
    let config = format!(
        "models: [items-only]\ndatasets: [official]\nofficial:\n  dir: {sample:?}\n  bundle_order: image-text\n  validation_share: 0.1\n  seed: 2023\nseeds: [2023]\ndevice: cpu\ntrain:\n  max_epochs: 2\n"
    );
    fs::write(dir.path().join("official.yaml"), config).unwrap();
    let out = common::mmsr(
        dir.path(),
        &[
            "-q",
            "--results-dir",
            "sub",
            "run-all",
            "--config",
            "official.yaml",
        ],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let check = |extra: &[&str]| {
        let mut args = vec!["check", "sub", "--rerun", "1"];
        args.extend_from_slice(extra);
        let out = common::mmsr(dir.path(), &args);
        let text = format!("{}{}", common::stdout(&out), common::stderr(&out));
        (out.status.code(), text)
    };
    let (code, text) = check(&[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("0 of 1 drawn cells re-run") && text.contains("--official-dir"),
        "{text}"
    );
    let (code, text) = check(&["--official-dir", sample, "--bundle-order", "image-text"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("1 of 1 drawn cells re-run"), "{text}");
    let (code, text) = check(&["--official-dir", sample, "--bundle-order", "text-image"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("0 of 1 drawn cells re-run") && text.contains("content hash"),
        "{text}"
    );
}
