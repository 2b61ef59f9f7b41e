//! `mmsr-bench download` end to end against a local mirror on 127.0.0.1: fetch, record checksums
//! into a registry copy, reuse verified files, unknown names, --verify-only.

use crate::common;
use crate::common::http_server;

use std::io::Write;

use http_server::{Behavior, TestServer};
use mmsr_bench::prepare::sources::image_features::write_record;
use mmsr_bench::prepare::sources::registry::{self, FileRole};

fn fixtures() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let ratings = b"A1,B000000001,5.0,100\nA2,B000000001,4.0,200\n".to_vec();
    let mut meta = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    writeln!(meta, "{{'asin': 'B000000001', 'title': 'Red lipstick'}}").unwrap();
    let meta = meta.finish().unwrap();
    let mut b = Vec::new();
    write_record(&mut b, "B000000001", &[1.0, 2.0]).unwrap();
    (ratings, meta, b)
}

#[test]
fn download_records_checksums_then_reuses_verified_files() {
    let (ratings, meta, b) = fixtures();
    let server = TestServer::start(vec![
        (
            "/categoryFiles/ratings_Beauty.csv",
            ratings.clone(),
            Behavior::Normal,
        ),
        (
            "/categoryFiles/meta_Beauty.json.gz",
            meta.clone(),
            Behavior::Normal,
        ),
        (
            "/image_features/categoryFiles/image_features_Beauty.b",
            b.clone(),
            Behavior::DropAfter {
                bytes: 5000,
                times: 1,
            },
        ),
    ]);
    let work = tempfile::tempdir().unwrap();
    let reg = work.path().join("registry");
    std::fs::create_dir(&reg).unwrap();
    common::blank_registry(&reg);
    let mirror = server.url();
    let args = [
        "download",
        "beauty",
        "--mirror",
        &mirror,
        "--registry",
        "registry",
        "--data-dir",
        "data",
        "--retries",
        "2",
    ];
    let mut first = args.to_vec();
    first.push("--record-checksums");
    let out = common::mmsr(work.path(), &first);
    let stdout = common::stdout(&out);
    assert!(out.status.success(), "{}\n{}", stdout, common::stderr(&out));
    assert_eq!(stdout.matches("downloaded").count(), 3, "{stdout}");
    let raw = work.path().join("data/raw/beauty");
    assert_eq!(
        std::fs::read(raw.join("ratings_Beauty.csv")).unwrap(),
        ratings
    );
    assert_eq!(
        std::fs::read(raw.join("meta_Beauty.json.gz")).unwrap(),
        meta
    );
    assert_eq!(
        std::fs::read(raw.join("image_features_Beauty.b")).unwrap(),
        b
    );
    // The optional 5-core reviews are not fetched by default.
    assert!(!raw.join("reviews_Beauty_5.json.gz").exists());

    let (entry, _) = registry::load("beauty", Some(&reg)).unwrap();
    let file = entry.file(FileRole::ImageFeatures).unwrap();
    assert_eq!(file.size, Some(b.len() as u64));
    assert_eq!(
        file.sha256.as_deref(),
        Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&b)).as_str())
    );
    assert!(entry.file(FileRole::Reviews).unwrap().sha256.is_none());
    let served = server.requests().len();
    assert_eq!(served, 4, "three files, one resumed once");

    let out = common::mmsr(work.path(), &args);
    let stdout = common::stdout(&out);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(
        stdout.matches("present, sha256 verified").count(),
        3,
        "{stdout}"
    );
    assert_eq!(
        server.requests().len(),
        served,
        "no network for verified files"
    );

    // A file damaged on disk is detected and fetched again.
    std::fs::write(raw.join("ratings_Beauty.csv"), b"A1,B0").unwrap();
    let out = common::mmsr(work.path(), &args);
    assert!(
        common::stdout(&out).contains("re-downloaded"),
        "{}",
        common::stdout(&out)
    );
    assert_eq!(
        std::fs::read(raw.join("ratings_Beauty.csv")).unwrap(),
        ratings
    );

    let out = common::mmsr(
        work.path(),
        &[
            "download",
            "beauty",
            "--registry",
            "registry",
            "--data-dir",
            "data",
            "--verify-only",
            "--files",
            "reviews,meta",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = common::stderr(&out);
    assert!(
        stderr.contains("reviews_Beauty_5.json.gz: missing"),
        "{stderr}"
    );
    assert!(common::stdout(&out).contains("meta_Beauty.json.gz"));
}

#[test]
fn unknown_names_and_roles_list_the_valid_ones() {
    let work = tempfile::tempdir().unwrap();
    let out = common::mmsr(work.path(), &["download", "beuaty"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains(
            "unknown dataset \"beuaty\"; valid names: beauty, clothing, sport, toy, kitchen, phone, all"
        ),
        "{}",
        common::stderr(&out)
    );
    let out = common::mmsr(
        work.path(),
        &["download", "toy", "--files", "pictures", "--verify-only"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("unknown file role \"pictures\""));
    let out = common::mmsr(
        work.path(),
        &["download", "toy", "--record-checksums", "--verify-only"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("--record-checksums writes into the registry file"));
}
