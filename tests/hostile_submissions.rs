//! `check` and `leaderboard` on hostile submissions (issue 24): names that would make paths
//! outside the output folder, symbolic links (loops, to `/`, to files outside), special files,
//! oversized files and huge values. Each case ends fast, with its exact outcome, and no message
//! repeats more than a few hundred bytes of the input. The base submission is a copy of the
//! committed `leaderboard/main-cpu-2core` (18 result files; checks clean); each case adds to it.

use crate::common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{mmsr, stderr, stdout};
use serde_json::{json, Value};

/// Every command here must end well within this.
const BOUND: Duration = Duration::from_secs(10);
/// No output of a refused hostile case may be longer (bytes).
const MAX_OUTPUT: usize = 4096;

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            fs::copy(&path, &target).unwrap();
        }
    }
}

/// A fresh copy of the committed main-cpu-2core submission at `<tmp>/sub`.
fn submission() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("leaderboard/main-cpu-2core"),
        &dir.path().join("sub"),
    );
    dir
}

fn pop_dir(dir: &Path) -> PathBuf {
    dir.join("sub/runs/synthetic/pop")
}

/// A committed pop result, as JSON.
fn pop_result(dir: &Path) -> Value {
    let path = pop_dir(dir).join("seed2023-fd37172b848dfc9f.json");
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// Adds a result file (relative to `sub/runs/synthetic/pop`) made by editing a copy of a
/// committed one; returns its path as the binary prints it (relative to `dir`).
fn add_result(dir: &Path, name: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut value = pop_result(dir);
    edit(&mut value);
    fs::write(
        pop_dir(dir).join(name),
        serde_json::to_string(&value).unwrap(),
    )
    .unwrap();
    format!("sub/runs/synthetic/pop/{name}")
}

struct Outcome {
    code: Option<i32>,
    text: String,
    seconds: f64,
}

impl Outcome {
    fn findings(&self) -> Vec<&str> {
        self.text
            .lines()
            .filter(|l| l.starts_with("FINDING "))
            .collect()
    }
}

fn run(dir: &Path, args: &[&str]) -> Outcome {
    let start = Instant::now();
    let out = mmsr(dir, args);
    let elapsed = start.elapsed();
    let outcome = Outcome {
        code: out.status.code(),
        text: stdout(&out) + &stderr(&out),
        seconds: elapsed.as_secs_f64(),
    };
    assert!(
        elapsed < BOUND,
        "{args:?} took {:.1} s: {}",
        outcome.seconds,
        outcome.text
    );
    // A refusal is short (a success prints the tables).
    assert!(
        outcome.code == Some(0) || outcome.text.len() <= MAX_OUTPUT,
        "{args:?} printed {} bytes: {}",
        outcome.text.len(),
        outcome.text.chars().take(2000).collect::<String>()
    );
    outcome
}

fn check(dir: &Path) -> Outcome {
    run(dir, &["check", "sub"])
}

/// `leaderboard --results sub --out out`.
fn leaderboard(dir: &Path) -> Outcome {
    run(dir, &["leaderboard", "--results", "sub", "--out", "out"])
}

/// `check` finds exactly `expected` (each a list of fragments of one finding line, in order of
/// the lines) and exits 1; `leaderboard` exits 2 with an error holding every fragment of
/// `error`, writing nothing.
fn refused(dir: &Path, expected: &[&[&str]], error: &[&str]) -> (Outcome, Outcome) {
    let checked = check(dir);
    assert_eq!(checked.code, Some(1), "{}", checked.text);
    let findings = checked.findings();
    assert_eq!(findings.len(), expected.len(), "{}", checked.text);
    for (line, fragments) in findings.iter().zip(expected) {
        for fragment in *fragments {
            assert!(
                line.contains(fragment),
                "expected {fragment:?} in {line:?}:\n{}",
                checked.text
            );
        }
    }
    assert!(
        checked.text.contains("18 result files checked")
            || checked.text.contains("19 result files checked")
            || checked.text.contains("20 result files checked"),
        "{}",
        checked.text
    );
    assert!(
        !checked.text.contains("ermission denied"),
        "{}",
        checked.text
    );
    let board = leaderboard(dir);
    assert_eq!(board.code, Some(2), "{}", board.text);
    assert!(board.text.starts_with("error: "), "{}", board.text);
    for fragment in error {
        assert!(
            board.text.contains(fragment),
            "expected {fragment:?} in {}",
            board.text
        );
    }
    assert!(
        !dir.join("out").exists(),
        "leaderboard wrote before refusing"
    );
    eprintln!(
        "check {:.2} s, leaderboard {:.2} s",
        checked.seconds, board.seconds
    );
    (checked, board)
}

#[test]
fn the_base_submission_checks_clean() {
    let dir = submission();
    let checked = check(dir.path());
    assert_eq!(checked.code, Some(0), "{}", checked.text);
    assert!(
        checked
            .text
            .contains("18 result files checked, no findings"),
        "{}",
        checked.text
    );
}

#[test]
fn a_dataset_name_that_climbs_out_is_refused_and_nothing_is_written_outside() {
    let dir = submission();
    let file = add_result(dir.path(), "seed2023-0000000000000001.json", |v| {
        v["config"]["dataset"] = json!("../../victim");
    });
    refused(
        dir.path(),
        &[&[
            &format!(
                "FINDING {file}: config.dataset: expected a name safe as a file-name component"
            ),
            "found \"../../victim\" (it holds a path separator '/')",
        ]],
        &[
            &file,
            "config.dataset: expected a name safe as a file-name component",
            "\"../../victim\"",
        ],
    );
    // OUT/plots/../../victim-*.svg would be <tmp>/victim-*.svg.
    for kind in ["accuracy-vs-time", "learning-curves"] {
        let target = dir.path().join(format!("victim-{kind}.svg"));
        assert!(!target.exists(), "{} was written", target.display());
    }
    let walked: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(walked.len(), 1, "only sub/ is in {}", dir.path().display());
}

#[test]
fn a_nul_or_a_slash_in_a_model_name_is_refused() {
    let dir = submission();
    let nul = add_result(dir.path(), "seed2023-0000000000000002.json", |v| {
        v["config"]["model"] = json!("pop\u{0}x");
    });
    let slash = add_result(dir.path(), "seed2023-0000000000000003.json", |v| {
        v["config"]["model"] = json!("pop/../../x");
        v["dataset"]["name"] = json!("a\\b");
    });
    refused(
        dir.path(),
        &[
            &[
                &format!("FINDING {nul}: config.model: expected a name safe"),
                "found \"pop\\0x\" (it holds a NUL)",
            ],
            &[
                &format!("FINDING {slash}: config.model: expected"),
                "found \"pop/../../x\" (it holds a path separator '/')",
            ],
            &[
                &format!("FINDING {slash}: dataset.name: expected"),
                "found \"a\\\\b\" (it holds a path separator '\\\\')",
            ],
        ],
        &[&nul, "config.model", "(it holds a NUL)"],
    );
}

#[test]
fn two_links_to_each_other_are_reported_not_walked() {
    let dir = submission();
    let runs = dir.path().join("sub/runs");
    symlink("loop-b", runs.join("loop-a")).unwrap();
    symlink("loop-a", runs.join("loop-b")).unwrap();
    // And a link to its own folder, which a walk that follows links would descend forever.
    symlink(".", runs.join("synthetic/self")).unwrap();
    let (checked, board) = refused(
        dir.path(),
        &[
            &[
                "FINDING sub/runs/loop-a: (file): expected a regular file or folder",
                "found a symbolic link (to loop-b), not followed",
            ],
            &[
                "FINDING sub/runs/loop-b: (file)",
                "a symbolic link (to loop-a), not followed",
            ],
            &[
                "FINDING sub/runs/synthetic/self: (file)",
                "a symbolic link (to .), not followed",
            ],
        ],
        &[
            "sub/runs/loop-a: a symbolic link (to loop-b), not followed",
            "(and 2 more such entries under sub/runs)",
        ],
    );
    assert!(checked.seconds < 5.0 && board.seconds < 5.0);
}

#[test]
fn a_link_to_the_root_is_reported_without_a_permission_error() {
    let dir = submission();
    symlink("/", dir.path().join("sub/runs/synthetic/everything")).unwrap();
    refused(
        dir.path(),
        &[&[
            "FINDING sub/runs/synthetic/everything: (file)",
            "found a symbolic link (to /), not followed",
        ]],
        &["sub/runs/synthetic/everything: a symbolic link (to /), not followed"],
    );
}

#[test]
fn a_link_to_a_valid_result_outside_is_not_followed() {
    let dir = submission();
    // A genuine result file, outside the submission, under a name of its folder.
    let outside = dir.path().join("elsewhere.json");
    fs::copy(
        pop_dir(dir.path()).join("seed2023-fd37172b848dfc9f.json"),
        &outside,
    )
    .unwrap();
    let link = pop_dir(dir.path()).join("seed2023-fd37172b848dfc9e.json");
    symlink(&outside, &link).unwrap();
    let (checked, _) = refused(
        dir.path(),
        &[&[
            "FINDING sub/runs/synthetic/pop/seed2023-fd37172b848dfc9e.json: (file)",
            &format!(
                "found a symbolic link (to {}), not followed",
                outside.display()
            ),
        ]],
        &[
            "sub/runs/synthetic/pop/seed2023-fd37172b848dfc9e.json: a symbolic link",
            "not followed",
        ],
    );
    // Not parsed: no duplicate-cell finding for the linked copy.
    assert!(checked.text.contains("18 result files checked"));
    assert!(!checked.text.contains("(cell)"), "{}", checked.text);
}

#[test]
fn a_linked_runs_folder_and_a_summary_linked_to_an_endless_file_are_refused() {
    let dir = submission();
    // summary.json -> /dev/zero: a reader that follows it never ends.
    let summary = dir.path().join("sub/summary.json");
    fs::remove_file(&summary).unwrap();
    symlink("/dev/zero", &summary).unwrap();
    let checked = check(dir.path());
    assert_eq!(checked.code, Some(1), "{}", checked.text);
    assert_eq!(
        checked.findings(),
        ["FINDING sub/summary.json: (file): expected a regular file or folder of at most 16 MiB (symbolic links are not followed); found a symbolic link (to /dev/zero), not followed: a results folder holds its files itself"],
        "{}",
        checked.text
    );

    // runs/ itself a link to a genuine runs folder elsewhere.
    let dir = submission();
    let runs = dir.path().join("sub/runs");
    fs::rename(&runs, dir.path().join("real-runs")).unwrap();
    symlink(dir.path().join("real-runs"), &runs).unwrap();
    let checked = check(dir.path());
    assert_eq!(checked.code, Some(1), "{}", checked.text);
    let findings = checked.findings();
    assert!(
        findings[0].starts_with("FINDING sub/runs: (file)")
            && findings[0].contains("a symbolic link"),
        "{}",
        checked.text
    );
    let board = leaderboard(dir.path());
    assert_eq!(board.code, Some(2), "{}", board.text);
    assert!(
        board.text.contains("sub/runs: a symbolic link"),
        "{}",
        board.text
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn a_fifo_is_reported_not_read() {
    let dir = submission();
    let fifo = pop_dir(dir.path()).join("seed2023-0000000000000004.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    refused(
        dir.path(),
        &[&[
            "FINDING sub/runs/synthetic/pop/seed2023-0000000000000004.json: (file)",
            "found not a regular file (a FIFO, socket or device), not read",
        ]],
        &["seed2023-0000000000000004.json: not a regular file"],
    );
}

#[test]
fn an_oversized_result_file_is_a_finding_not_a_parse() {
    let dir = submission();
    // Sparse: 20 MiB long, no byte of it written (it would not even parse).
    let big = pop_dir(dir.path()).join("seed2023-0000000000000005.json");
    fs::File::create(&big).unwrap().set_len(20 << 20).unwrap();
    refused(
        dir.path(),
        &[&[
            "FINDING sub/runs/synthetic/pop/seed2023-0000000000000005.json: (file): expected a regular file or folder of at most 16 MiB",
            "found 20971520 bytes, above the limit of 16777216 bytes (16 MiB) for one file of a results folder; not read",
        ]],
        &["seed2023-0000000000000005.json: 20971520 bytes, above the limit"],
    );
}

#[test]
fn a_50_mb_dataset_name_is_never_printed_back() {
    let dir = submission();
    let file = add_result(dir.path(), "seed2023-0000000000000006.json", |v| {
        v["config"]["dataset"] = json!("d".repeat(50_000_000));
    });
    let size = fs::metadata(dir.path().join(&file)).unwrap().len();
    assert!(size > 50_000_000);
    // Above the size limit: refused from its metadata (run() bounds every output).
    refused(
        dir.path(),
        &[&[
            &format!("FINDING {file}: (file)"),
            &format!("found {size} bytes, above the limit"),
        ]],
        &[&file, &format!("{size} bytes, above the limit")],
    );
}

#[test]
fn a_1_mb_name_or_value_under_the_size_limit_is_quoted_in_a_few_hundred_bytes() {
    let dir = submission();
    let name = add_result(dir.path(), "seed2023-0000000000000007.json", |v| {
        v["config"]["dataset"] = json!("d".repeat(1_000_000));
    });
    let (checked, board) = refused(
        dir.path(),
        &[&[
            &format!("FINDING {name}: config.dataset: expected"),
            "found \"dddd",
            "bytes in all]…",
            "ddd\" (it has 1000000 bytes (at most 128))",
        ]],
        &[
            &name,
            "config.dataset",
            "bytes in all]…",
            "(it has 1000000 bytes (at most 128)); not read",
        ],
    );
    assert!(checked.text.len() < 1500, "{}", checked.text);
    assert!(board.text.len() < 1000, "{}", board.text);

    // A huge string where a number belongs: the parser's message quotes it, cut.
    let dir = submission();
    let value = add_result(dir.path(), "seed2023-0000000000000008.json", |v| {
        v["num_parameters"] = json!(format!("\u{1b}[2J{}", "n".repeat(1_000_000)));
    });
    let (checked, board) = refused(
        dir.path(),
        &[&[
            &format!("FINDING {value}: (document): expected the result format"),
            "found invalid type: string \"\\u{1b}[2Jnnnn",
            "bytes in all]…",
        ]],
        &[&value, "invalid type: string", "bytes in all]…"],
    );
    for text in [&checked.text, &board.text] {
        assert!(!text.contains('\u{1b}'), "an escape reached the output");
        assert!(text.len() < 1500, "{text}");
    }
}

#[test]
fn links_planted_in_a_submission_used_as_out_are_never_written_through() {
    // The committed folders are regenerated in place (`--out` = the results folder): a link
    // there must not carry a plot elsewhere.
    let dir = submission();
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let plots = dir.path().join("sub/plots");
    fs::remove_dir_all(&plots).unwrap();
    symlink(&elsewhere, &plots).unwrap();
    let board = run(
        dir.path(),
        &["leaderboard", "--results", "sub", "--out", "sub"],
    );
    assert_eq!(board.code, Some(2), "{}", board.text);
    assert!(
        board
            .text
            .contains("sub/plots is a symbolic link: plots are only written into a folder"),
        "{}",
        board.text
    );
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);

    // A link at the plot's temporary name is removed, not written through.
    let dir = submission();
    let victim = dir.path().join("victim.txt");
    fs::write(&victim, "untouched").unwrap();
    symlink(
        &victim,
        dir.path()
            .join("sub/plots/.synthetic-accuracy-vs-time.svg.tmp"),
    )
    .unwrap();
    let board = run(
        dir.path(),
        &["leaderboard", "--results", "sub", "--out", "sub"],
    );
    assert_eq!(board.code, Some(0), "{}", board.text);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched");
    let svg = dir.path().join("sub/plots/synthetic-accuracy-vs-time.svg");
    assert!(!svg.is_symlink() && svg.is_file());
    // And the regenerated folder is the committed one, byte for byte.
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("leaderboard/main-cpu-2core");
    for name in [
        "leaderboard.md",
        "leaderboard.json",
        "plots/synthetic-accuracy-vs-time.svg",
    ] {
        assert_eq!(
            fs::read(dir.path().join("sub").join(name)).unwrap(),
            fs::read(committed.join(name)).unwrap(),
            "{name}"
        );
    }
}
