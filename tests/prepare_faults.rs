//! `prepare` on hand-made raw Amazon files that go wrong: nothing survives the 5-core filter
//! (a clear error naming the file and the counts, and no prepared dataset), and an image file
//! whose ASINs match no item (the modality is dropped with a loud warning and recorded).

use crate::common;
use crate::common::raw_beauty;

use std::path::Path;

use mmsr_bench::dataset::store;
use mmsr_bench::modality::Modality;

use raw_beauty::raw_files;

fn prepare(work: &Path) -> std::process::Output {
    common::mmsr(
        work,
        &[
            "prepare",
            "beauty",
            "--registry",
            "reg",
            "--data-dir",
            "data",
            "--ae-max-epochs",
            "2",
            "--clusters",
            "2",
            "--links",
            "1",
            "--device",
            "cpu",
        ],
    )
}

#[test]
fn nothing_surviving_the_k_core_is_an_error_naming_the_file_and_the_counts() {
    let work = tempfile::tempdir().unwrap();
    raw_files(
        work.path(),
        "U1,B000000001,5.0,100\nU2,B000000002,4.0,200\n",
        &["B000000001"],
    );
    let out = prepare(work.path());
    assert_eq!(out.status.code(), Some(2));
    let message = common::stderr(&out);
    assert!(
        message.contains("ratings_Beauty.csv: no user survives the 5-core filter (2 interactions of 2 users on 2 items before it"),
        "{message}"
    );
    assert!(
        message.contains("lower --k-core") && !message.contains("panicked"),
        "{message}"
    );
    assert!(
        !work.path().join("data/prepared/beauty").exists(),
        "no prepared dataset is left"
    );
}

#[test]
fn an_image_file_matching_no_item_drops_the_modality_loudly() {
    let work = tempfile::tempdir().unwrap();
    let mut ratings = String::new();
    for u in 0..6 {
        for i in 0..6 {
            ratings.push_str(&format!("U{u},B00000000{i},5.0,{}\n", 100 + u * 10 + i));
        }
    }
    raw_files(work.path(), &ratings, &["ZZZZZZZZZZ"]);
    let out = prepare(work.path());
    let (stdout, stderr) = (common::stdout(&out), common::stderr(&out));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("WARNING: no item has the image modality (0 of 6 items covered): it is dropped, with no image codes"),
        "{stderr}"
    );
    assert!(stdout.contains("image: 0 of 6 items"), "{stdout}");
    let dir = work.path().join("data/prepared/beauty");
    let manifest = store::read_manifest(&dir).unwrap();
    assert_eq!(manifest.modalities[&Modality::Image].items_with, 0);
    let codes = manifest.codes.unwrap();
    assert!(
        !codes.books.contains_key(&Modality::Image) && codes.books.contains_key(&Modality::Text)
    );
    let data = store::load(&dir).unwrap();
    assert!(data.codes.unwrap().image.is_none());
}
