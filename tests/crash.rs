//! Crash safety: `run-all`, `prepare` and `download` killed with SIGKILL at their crash points
//! (`src/faults.rs`: while a result or the summary is half written, written but not renamed,
//! between training batches, between staged dataset files, between download chunks) and at timed
//! moments from outside, then resumed. A killed command never leaves a partial file that is read
//! back, the resumed outcome equals an uninterrupted one, and nothing outside the command's output
//! is touched.

use crate::common;
use crate::common::http_server;
use crate::common::raw_beauty;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use http_server::{Behavior, TestServer};
use mmsr_bench::dataset::store::{self, StoreError};
use mmsr_bench::record::result::RunResult;
use serde_json::Value;

fn command(work: &Path, args: &[&str], kill_at: Option<usize>) -> Command {
    let tmp = work.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut command = crate::common::mmsr_command(work, args);
    command.env("TMPDIR", &tmp).env(
        "MMSR_KILL_AT",
        kill_at.map(|n| n.to_string()).unwrap_or_default(),
    );
    command
}

fn run(work: &Path, args: &[&str], kill_at: Option<usize>) -> Output {
    command(work, args, kill_at).output().unwrap()
}

/// The crash points a complete run of `args` passes, in order.
fn crash_points(work: &Path, args: &[&str]) -> Vec<String> {
    let out = command(work, args, None)
        .env("MMSR_KILL_AT", "list")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    common::stderr(&out)
        .lines()
        .filter_map(|l| l.strip_prefix("crash point "))
        .map(|l| l.split_once(": ").unwrap().1.to_string())
        .collect()
}

fn assert_killed(out: &Output, what: &str) {
    assert_eq!(
        out.status.signal(),
        Some(9),
        "{what}: expected SIGKILL\n{}",
        common::stderr(out)
    );
}

/// Every file under `dir` except `skip`, with its size and modification time.
fn snapshot(dir: &Path, skip: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.starts_with(skip) {
                continue;
            }
            let meta = std::fs::metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
            }
            files.insert(path, (meta.len(), meta.modified().unwrap()));
        }
    }
    files
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

// --- run-all ---------------------------------------------------------------------------------

/// `common::SMALL_GRAPH_MATRIX` into `sub`: 58 crash points, 0.7 s. By default the runs go side
/// by side in child processes (`run-all --jobs`).
fn run_all() -> Vec<&'static str> {
    [
        &["-q", "--results-dir", "sub", "run-all"],
        common::SMALL_GRAPH_MATRIX,
    ]
    .concat()
}

/// `run_all()` in one process: crash points are counted per process, so the numbered kills use
/// it (and the resume after each kill runs the default, side by side).
fn run_all_in_one_process() -> Vec<&'static str> {
    [&run_all()[..], &["--jobs", "1"]].concat()
}

/// A work directory with a file of the user's that no command may touch.
fn fresh_work() -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("notes.txt"), "the user's file\n").unwrap();
    std::fs::create_dir_all(work.path().join("tmp")).unwrap();
    work
}

/// The summary's test metrics (wall times differ between runs, metrics must not).
fn summary_metrics(results: &Path) -> Value {
    let text = std::fs::read_to_string(results.join("summary.json")).unwrap();
    let mut rows: Value = serde_json::from_str(&text).unwrap();
    for row in rows.as_array_mut().unwrap() {
        row.as_object_mut().unwrap().remove("mean_train_seconds");
    }
    rows
}

/// Every JSON file a killed run-all left is complete (results load, the summary parses); returns
/// how many unfinished temporary files it left (the proof a kill landed mid-write).
fn assert_no_partial_results(results: &Path, what: &str) -> usize {
    let mut temporaries = 0;
    for path in files_under(results) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with(".tmp") {
            temporaries += 1;
        } else if path.components().any(|c| c.as_os_str() == "runs") {
            RunResult::load(&path).unwrap_or_else(|e| panic!("{what}: {e:#}"));
        } else if name.ends_with(".json") {
            let text = std::fs::read_to_string(&path).unwrap();
            serde_json::from_str::<Value>(&text)
                .unwrap_or_else(|e| panic!("{what}: {} is partial: {e}", path.display()));
        }
    }
    temporaries
}

/// Resumes a killed run-all and checks the outcome against the uninterrupted one.
fn resume_and_compare(work: &Path, reference: &Value, what: &str) {
    let results = work.join("sub");
    let before = snapshot(work, &results);
    let out = run(work, &run_all(), None);
    assert!(out.status.success(), "{what}: {}", common::stderr(&out));
    assert_eq!(&summary_metrics(&results), reference, "{what}");
    let check = common::mmsr(work, &["check", "sub"]);
    assert!(
        check.status.success() && common::stdout(&check).contains("no findings"),
        "{what}: {}{}",
        common::stdout(&check),
        common::stderr(&check)
    );
    assert_eq!(
        snapshot(work, &results),
        before,
        "{what}: touched files outside the results"
    );
    assert!(
        files_under(&work.join("tmp")).is_empty(),
        "{what}: files left in TMPDIR"
    );
}

#[test]
fn run_all_killed_at_every_kind_of_point_resumes_to_the_same_summary() {
    let reference_work = fresh_work();
    let in_one_process = run_all_in_one_process();
    let points = crash_points(reference_work.path(), &in_one_process);
    let reference = summary_metrics(&reference_work.path().join("sub"));
    assert!(points.len() > 40, "{points:?}");
    // Every write point; every 8th training batch (each batch is the same kind of point).
    let chosen: Vec<usize> = (1..=points.len())
        .filter(|&n| !points[n - 1].contains("batch") || n % 8 == 0)
        .collect();
    let (mut temporaries, mut kinds) = (0, std::collections::BTreeSet::new());
    for &n in &chosen {
        let what = format!("killed at crash point {n} ({})", points[n - 1]);
        let work = fresh_work();
        let outside = snapshot(work.path(), &work.path().join("sub"));
        let out = run(work.path(), &in_one_process, Some(n));
        assert_killed(&out, &what);
        temporaries += assert_no_partial_results(&work.path().join("sub"), &what);
        let kind = points[n - 1].rsplit(": ").next().unwrap();
        kinds.insert(kind.replace(|c: char| c.is_ascii_digit(), "#"));
        assert_eq!(
            snapshot(work.path(), &work.path().join("sub")),
            outside,
            "{what}: touched files outside the results"
        );
        resume_and_compare(work.path(), &reference, &what);
    }
    eprintln!(
        "run-all: {} of {} crash points killed and resumed ({} kinds: {kinds:?}); {temporaries} unfinished temporary files left by kills mid-write, none read back",
        chosen.len(),
        points.len(),
        kinds.len()
    );
    assert!(
        temporaries >= 2 * 5,
        "kills mid-write leave temporaries: {temporaries}"
    );
}

#[test]
fn run_all_killed_from_outside_twice_resumes_to_the_same_summary() {
    let reference_work = fresh_work();
    let out = run(reference_work.path(), &run_all(), None);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let reference = summary_metrics(&reference_work.path().join("sub"));
    let mut unfinished = 0;
    for delay_ms in [120u64, 260, 400, 540] {
        let what = format!("killed after {delay_ms} ms, then again {delay_ms} ms into the resume");
        let work = fresh_work();
        for _ in 0..2 {
            let mut child = command(work.path(), &run_all(), None)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(delay_ms));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            assert_no_process_left_in(work.path(), &what);
            assert_no_partial_results(&work.path().join("sub"), &what);
            unfinished += usize::from(!work.path().join("sub/summary.json").exists());
        }
        resume_and_compare(work.path(), &reference, &what);
    }
    assert!(
        unfinished >= 4,
        "only {unfinished} of 8 kills landed before the end"
    );
}

/// No process works in `dir` any more: the runs a killed `run-all` had started in child
/// processes die with it (they would otherwise go on writing results). Allows them a second.
fn assert_no_process_left_in(dir: &Path, what: &str) {
    let dir = dir.canonicalize().unwrap();
    let working_here = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| {
                let e = e.ok()?;
                let cwd = std::fs::read_link(e.path().join("cwd")).ok()?;
                (cwd == dir).then(|| e.file_name().to_string_lossy().into_owned())
            })
            .collect()
    };
    let mut left = working_here();
    for _ in 0..20 {
        if left.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
        left = working_here();
    }
    panic!("{what}: processes {left:?} still run in {}", dir.display());
}

// --- prepare ---------------------------------------------------------------------------------

fn prepare_args(clusters: &'static str) -> Vec<&'static str> {
    vec![
        "prepare",
        "beauty",
        "--registry",
        "reg",
        "--data-dir",
        "data",
        "--ae-max-epochs",
        "2",
        "--clusters",
        clusters,
        "--links",
        "1",
        "--device",
        "cpu",
    ]
}

fn raw_work() -> tempfile::TempDir {
    let work = fresh_work();
    let mut ratings = String::new();
    for u in 0..8 {
        for i in 0..6 {
            ratings.push_str(&format!("U{u},B00000000{i},5.0,{}\n", 100 + u * 10 + i));
        }
    }
    let asins: Vec<String> = (0..6).map(|i| format!("B00000000{i}")).collect();
    let asins: Vec<&str> = asins.iter().map(String::as_str).collect();
    raw_beauty::raw_files(work.path(), &ratings, &asins);
    work
}

fn prepared(work: &Path) -> PathBuf {
    work.join("data/prepared/beauty")
}

/// The content hash of the prepared dataset, after loading it whole (files checked).
fn prepared_hash(work: &Path, what: &str) -> String {
    store::load(&prepared(work)).unwrap_or_else(|e| panic!("{what}: {e}"));
    store::read_manifest(&prepared(work)).unwrap().content_hash
}

#[test]
fn prepare_killed_at_every_point_never_leaves_a_dataset_that_loads_partially() {
    let reference = raw_work();
    let points = crash_points(reference.path(), &prepare_args("2"));
    let hash_two = prepared_hash(reference.path(), "reference");
    let replacing = crash_points(reference.path(), &prepare_args("3"));
    let hash_three = prepared_hash(reference.path(), "reference, 3 clusters");
    assert_ne!(hash_two, hash_three);
    assert!(points.len() >= 5, "{points:?}");

    // A first prepare killed anywhere leaves no dataset; a second one completes it.
    for n in 1..=points.len() {
        let what = format!("first prepare killed at {n} ({})", points[n - 1]);
        let work = raw_work();
        let out = run(work.path(), &prepare_args("2"), Some(n));
        assert_killed(&out, &what);
        match store::load(&prepared(work.path())) {
            Err(StoreError::NotPrepared { .. }) => {}
            other => panic!("{what}: {:?}", other.map(|_| "a dataset loaded")),
        }
        let out = run(work.path(), &prepare_args("2"), None);
        assert!(out.status.success(), "{what}: {}", common::stderr(&out));
        assert_eq!(prepared_hash(work.path(), &what), hash_two, "{what}");
        let names = mmsr_bench::dataset::registry::known_names(&work.path().join("data"));
        assert!(
            !names.iter().any(|n| n.starts_with('.')),
            "{what}: {names:?}"
        );
    }

    // A prepare replacing a dataset, killed anywhere, leaves the old or the new one, whole.
    let (mut old, mut new) = (0, 0);
    for n in 1..=replacing.len() {
        let what = format!("replacing prepare killed at {n} ({})", replacing[n - 1]);
        let work = raw_work();
        assert!(run(work.path(), &prepare_args("2"), None).status.success());
        let out = run(work.path(), &prepare_args("3"), Some(n));
        assert_killed(&out, &what);
        let hash = prepared_hash(work.path(), &what);
        if hash == hash_two {
            old += 1;
        } else {
            assert_eq!(hash, hash_three, "{what}");
            new += 1;
        }
        let out = run(work.path(), &prepare_args("3"), None);
        assert!(out.status.success(), "{what}: {}", common::stderr(&out));
        assert_eq!(prepared_hash(work.path(), &what), hash_three, "{what}");
    }
    eprintln!(
        "prepare: {} crash points of a first prepare (each left nothing that loads), {} of a replacing one ({old} left the old dataset whole, {new} the new one)",
        points.len(),
        replacing.len()
    );
    assert!(old > 0 && new > 0);
}

// --- download --------------------------------------------------------------------------------

#[test]
fn download_killed_between_chunks_resumes_to_the_same_bytes() {
    // 3 MB of ratings so the body arrives in several chunks.
    let ratings: Vec<u8> = (0..120_000)
        .flat_map(|i| format!("U{i},B{:09},5.0,{}\n", i % 977, 1000 + i).into_bytes())
        .collect();
    let server = TestServer::start(vec![(
        "/categoryFiles/ratings_Beauty.csv",
        ratings.clone(),
        Behavior::Normal,
    )]);
    let mirror = server.url();
    let args = [
        "download",
        "beauty",
        "--mirror",
        &mirror,
        "--registry",
        "reg",
        "--data-dir",
        "data",
        "--files",
        "ratings",
    ];
    let setup = |work: &Path| {
        std::fs::create_dir_all(work.join("reg")).unwrap();
        common::blank_registry(&work.join("reg"));
    };
    let reference = fresh_work();
    setup(reference.path());
    let points = crash_points(reference.path(), &args);
    assert!(points.len() >= 3, "{points:?}");
    let dest = |work: &Path| work.join("data/raw/beauty/ratings_Beauty.csv");
    let mut resumed_with_range = 0;
    for n in 1..=points.len() {
        let what = format!("download killed at {n} ({})", points[n - 1]);
        let work = fresh_work();
        setup(work.path());
        let served = server.requests().len();
        let out = run(work.path(), &args, Some(n));
        if out.status.signal() == Some(9) {
            // The file is absent or whole, never a prefix under the final name.
            if let Ok(bytes) = std::fs::read(dest(work.path())) {
                assert!(
                    bytes == ratings,
                    "{what}: a partial file under the final name"
                );
            }
        } else {
            // Chunk boundaries depend on the network: this run passed fewer points.
            assert!(out.status.success(), "{what}: {}", common::stderr(&out));
        }
        let out = run(work.path(), &args, None);
        assert!(out.status.success(), "{what}: {}", common::stderr(&out));
        assert!(
            std::fs::read(dest(work.path())).unwrap() == ratings,
            "{what}: different bytes"
        );
        resumed_with_range += server.requests()[served..]
            .iter()
            .filter(|r| r.range.is_some())
            .count();
    }
    eprintln!(
        "download: {} crash points, {resumed_with_range} resumed with a Range request",
        points.len()
    );
    assert!(resumed_with_range > 0);
}
