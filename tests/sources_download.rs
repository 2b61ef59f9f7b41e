//! The downloader against a local HTTP server on 127.0.0.1 (never the internet): resume after a
//! dropped connection, servers that ignore Range, wrong bytes, verification of files already
//! present, bounded retries.

use crate::common::http_server;

use std::path::Path;
use std::time::Duration;

use http_server::{Behavior, Logged, TestServer};
use mmsr_bench::prepare::sources::download::{
    Action, DownloadError, DownloadOptions, Downloader, Target, Verified,
};
use sha2::{Digest, Sha256};

fn body(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + i / 977) as u8) ^ salt)
        .collect()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn downloader(retries: u32) -> Downloader {
    Downloader::new(DownloadOptions {
        retries,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(10),
        progress: false,
        verbose: false,
        system_proxy: false,
    })
    .unwrap()
}

struct Case {
    _dir: tempfile::TempDir,
    dest: std::path::PathBuf,
    url: String,
}

fn case(server: &TestServer, file: &str) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("raw").join("beauty").join(file);
    Case {
        url: format!("{}{file}", server.url()),
        _dir: dir,
        dest,
    }
}

fn target<'a>(c: &'a Case, sha256: Option<&'a str>, size: Option<u64>) -> Target<'a> {
    Target {
        url: &c.url,
        dest: &c.dest,
        size,
        sha256,
        want_sha256: false,
    }
}

fn part(dest: &Path) -> std::path::PathBuf {
    let mut name = dest.file_name().unwrap().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

#[test]
fn fresh_download_is_verified_renamed_and_then_reused_without_network() {
    let data = body(300_000, 1);
    let sum = sha(&data);
    let server = TestServer::start(vec![(
        "/meta_Beauty.json.gz",
        data.clone(),
        Behavior::Normal,
    )]);
    let c = case(&server, "meta_Beauty.json.gz");
    let d = downloader(3);
    let report = d.fetch(&target(&c, Some(&sum), Some(300_000))).unwrap();
    assert_eq!(report.action, Action::Fetched { resumed_from: 0 });
    assert_eq!(report.verified, Verified::Sha256);
    assert_eq!(report.sha256.as_deref(), Some(sum.as_str()));
    assert_eq!(std::fs::read(&c.dest).unwrap(), data);
    assert!(!part(&c.dest).exists());
    assert_eq!(server.requests().len(), 1);

    let again = d.fetch(&target(&c, Some(&sum), Some(300_000))).unwrap();
    assert_eq!(again.action, Action::Present);
    assert_eq!(
        server.requests().len(),
        1,
        "a verified file needs no network"
    );
}

#[test]
fn dropped_connections_are_resumed_with_range_until_complete() {
    let data = body(1_000_000, 2);
    let sum = sha(&data);
    let server = TestServer::start(vec![(
        "/image_features_Beauty.b",
        data.clone(),
        Behavior::DropAfter {
            bytes: 300_000,
            times: 3,
        },
    )]);
    let c = case(&server, "image_features_Beauty.b");
    // Without a known size or checksum, the announced length is what detects the truncation.
    let report = downloader(2).fetch(&target(&c, None, None)).unwrap();
    assert_eq!(std::fs::read(&c.dest).unwrap(), data);
    assert_eq!(report.sha256.as_deref(), Some(sum.as_str()));
    let ranges: Vec<Option<String>> = server.requests().into_iter().map(|l| l.range).collect();
    assert_eq!(
        ranges,
        [
            None,
            Some("bytes=300000-".into()),
            Some("bytes=600000-".into()),
            Some("bytes=900000-".into())
        ]
    );
    assert!(!part(&c.dest).exists());
}

#[test]
fn a_partial_file_from_an_earlier_run_is_resumed() {
    let data = body(200_000, 3);
    let sum = sha(&data);
    let server = TestServer::start(vec![(
        "/ratings_Beauty.csv",
        data.clone(),
        Behavior::Normal,
    )]);
    let c = case(&server, "ratings_Beauty.csv");
    std::fs::create_dir_all(c.dest.parent().unwrap()).unwrap();
    std::fs::write(part(&c.dest), &data[..123_456]).unwrap();
    let report = downloader(1).fetch(&target(&c, Some(&sum), None)).unwrap();
    assert_eq!(
        report.action,
        Action::Fetched {
            resumed_from: 123_456
        }
    );
    assert_eq!(std::fs::read(&c.dest).unwrap(), data);
    assert_eq!(
        server.requests(),
        [Logged {
            path: "/ratings_Beauty.csv".into(),
            range: Some("bytes=123456-".into())
        }]
    );
}

#[test]
fn a_server_that_ignores_range_restarts_the_file() {
    let data = body(50_000, 4);
    let sum = sha(&data);
    let server = TestServer::start(vec![("/f.csv", data.clone(), Behavior::IgnoreRange)]);
    let c = case(&server, "f.csv");
    std::fs::create_dir_all(c.dest.parent().unwrap()).unwrap();
    std::fs::write(part(&c.dest), b"stale bytes that are not a prefix").unwrap();
    downloader(1).fetch(&target(&c, Some(&sum), None)).unwrap();
    assert_eq!(std::fs::read(&c.dest).unwrap(), data);
}

#[test]
fn a_stale_partial_file_that_does_not_verify_is_fetched_once_more_from_scratch() {
    let data = body(80_000, 5);
    let sum = sha(&data);
    let server = TestServer::start(vec![("/f.csv", data.clone(), Behavior::Normal)]);
    let c = case(&server, "f.csv");
    std::fs::create_dir_all(c.dest.parent().unwrap()).unwrap();
    std::fs::write(part(&c.dest), vec![0u8; 40_000]).unwrap();
    downloader(1).fetch(&target(&c, Some(&sum), None)).unwrap();
    assert_eq!(std::fs::read(&c.dest).unwrap(), data);
    let ranges: Vec<Option<String>> = server.requests().into_iter().map(|l| l.range).collect();
    assert_eq!(ranges, [Some("bytes=40000-".into()), None]);
}

#[test]
fn wrong_bytes_fail_with_a_checksum_error_naming_the_file() {
    let good = body(60_000, 6);
    let served = body(60_000, 7);
    let server = TestServer::start(vec![("/meta_Beauty.json.gz", served, Behavior::Normal)]);
    let c = case(&server, "meta_Beauty.json.gz");
    let err = downloader(3)
        .fetch(&target(&c, Some(&sha(&good)), Some(60_000)))
        .unwrap_err();
    assert!(matches!(err, DownloadError::Checksum { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("meta_Beauty.json.gz: sha256 mismatch: expected"),
        "{text}"
    );
    assert!(!c.dest.exists() && !part(&c.dest).exists(), "never kept");
    assert_eq!(
        server.requests().len(),
        1,
        "a clean download is not retried"
    );
}

#[test]
fn a_size_mismatch_is_reported_before_downloading() {
    let server = TestServer::start(vec![("/f.b", body(1000, 8), Behavior::Normal)]);
    let c = case(&server, "f.b");
    let err = downloader(3)
        .fetch(&target(&c, None, Some(999)))
        .unwrap_err();
    assert!(
        matches!(
            err,
            DownloadError::Size {
                expected: 999,
                actual: 1000,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!c.dest.exists());
}

#[test]
fn files_placed_by_hand_are_verified_and_accepted_without_network() {
    let data = body(10_000, 9);
    let sum = sha(&data);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("meta_Beauty.json.gz");
    std::fs::write(&dest, &data).unwrap();
    // Port 9 on loopback: nothing listens, so any network use would fail.
    let t = Target {
        url: "http://127.0.0.1:9/meta_Beauty.json.gz",
        dest: &dest,
        size: Some(10_000),
        sha256: Some(&sum),
        want_sha256: false,
    };
    let report = downloader(0).fetch(&t).unwrap();
    assert_eq!(
        (report.action, report.verified),
        (Action::Present, Verified::Sha256)
    );
}

#[test]
fn a_corrupt_or_truncated_present_file_is_moved_aside_and_fetched_again() {
    let data = body(20_000, 10);
    let sum = sha(&data);
    let server = TestServer::start(vec![("/f.csv", data.clone(), Behavior::Normal)]);
    let c = case(&server, "f.csv");
    std::fs::create_dir_all(c.dest.parent().unwrap()).unwrap();
    for (bad, why) in [
        (&data[..15_000], "bytes, expected 20000"),
        (&body(20_000, 11)[..], "sha256"),
    ] {
        std::fs::write(&c.dest, bad).unwrap();
        let report = downloader(1)
            .fetch(&target(&c, Some(&sum), Some(20_000)))
            .unwrap();
        match &report.action {
            Action::Replaced { reason, .. } => assert!(reason.contains(why), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read(&c.dest).unwrap(), data);
        assert_eq!(
            std::fs::read(c.dest.with_file_name("f.csv.bad")).unwrap(),
            bad
        );
    }
}

#[test]
fn without_checksums_present_files_get_structural_checks() {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for i in 0..5000 {
        writeln!(gz, "{{'asin': 'B{i:09}'}}").unwrap();
    }
    let gz = gz.finish().unwrap();
    let record = 10 + 4096 * 4;
    let b_file: Vec<u8> = (0..2 * record)
        .map(|i| if i % record < 10 { b'A' } else { 0 })
        .collect();
    let server = TestServer::start(vec![
        ("/meta_X.json.gz", gz.clone(), Behavior::Normal),
        ("/image_features_X.b", b_file.clone(), Behavior::Normal),
    ]);
    for (file, good) in [("meta_X.json.gz", &gz), ("image_features_X.b", &b_file)] {
        let c = case(&server, file);
        std::fs::create_dir_all(c.dest.parent().unwrap()).unwrap();
        std::fs::write(&c.dest, good).unwrap();
        let report = downloader(1).fetch(&target(&c, None, None)).unwrap();
        assert!(
            matches!(report.verified, Verified::Structure(_)),
            "{file}: {report:?}"
        );
        assert_eq!(report.action, Action::Present);
        std::fs::write(&c.dest, &good[..good.len() - 100]).unwrap();
        let report = downloader(1).fetch(&target(&c, None, None)).unwrap();
        assert!(
            matches!(report.action, Action::Replaced { .. }),
            "{file}: {report:?}"
        );
        assert_eq!(&std::fs::read(&c.dest).unwrap(), good);
    }
}

#[test]
fn not_found_fails_at_once_and_server_errors_are_retried_a_bounded_number_of_times() {
    let server = TestServer::start(vec![(
        "/busy.csv",
        body(100, 12),
        Behavior::Status {
            code: 503,
            times: usize::MAX,
        },
    )]);
    let c = case(&server, "missing.csv");
    let err = downloader(3).fetch(&target(&c, None, None)).unwrap_err();
    assert!(
        matches!(err, DownloadError::Http { status: 404, .. }),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 1);

    let c = case(&server, "busy.csv");
    let err = downloader(3).fetch(&target(&c, None, None)).unwrap_err();
    assert!(
        matches!(err, DownloadError::Network { attempts: 4, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("busy.csv") && text.contains("HTTP 503"),
        "{text}"
    );
    assert_eq!(server.requests().len(), 1 + 4);
}

#[test]
fn transient_server_errors_recover() {
    let data = body(5000, 13);
    let server = TestServer::start(vec![(
        "/f.csv",
        data.clone(),
        Behavior::Status {
            code: 503,
            times: 2,
        },
    )]);
    let c = case(&server, "f.csv");
    downloader(3)
        .fetch(&target(&c, Some(&sha(&data)), None))
        .unwrap();
    assert_eq!(std::fs::read(&c.dest).unwrap(), data);
}
