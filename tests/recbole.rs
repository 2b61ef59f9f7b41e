//! RecBole interop on real data: the S3-Rec copy of Amazon Beauty (22,363 users), prepared
//! from the sequence file and from the same interactions as a RecBole `.inter` file, give the
//! same dataset; `export --format recbole` writes our split sample for sample, and importing the
//! export gives the same content hash again.

use std::io::{BufRead, Write};
use std::path::Path;

use crate::common::{mmsr, shared_data, stderr, stdout};

/// The content hash `prepare` prints (`content hash 16 hex digits`).
fn printed_hash(out: &str) -> String {
    let at = out
        .find("content hash ")
        .unwrap_or_else(|| panic!("no hash in {out:?}"));
    out[at + "content hash ".len()..].chars().take(16).collect()
}

fn prepare(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["--data-dir", "data", "prepare"];
    all.extend_from_slice(args);
    let out = mmsr(dir, &all);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    printed_hash(&stdout(&out))
}

/// The first `users` lines of Beauty.txt (all of them with `usize::MAX`), as a sequence file and as a RecBole `.inter` file whose
/// rows are written newest first per user with explicit timestamps (the reader must sort).
fn write_inputs(dir: &Path, users: usize) {
    let source = shared_data("CIKM2020-S3Rec/data/Beauty.txt");
    let lines: Vec<String> = std::io::BufReader::new(std::fs::File::open(source).unwrap())
        .lines()
        .take(users)
        .map(Result::unwrap)
        .collect();
    std::fs::write(dir.join("beauty.txt"), lines.join("\n") + "\n").unwrap();
    std::fs::create_dir_all(dir.join("rb")).unwrap();
    let mut inter = std::fs::File::create(dir.join("rb/beauty.inter")).unwrap();
    writeln!(
        inter,
        "user_id:token\titem_id:token\trating:float\ttimestamp:float"
    )
    .unwrap();
    for line in &lines {
        let mut tokens = line.split_whitespace();
        let user = tokens.next().unwrap();
        let items: Vec<&str> = tokens.collect();
        for (position, item) in items.iter().enumerate().rev() {
            writeln!(
                inter,
                "{user}\t{item}\t5.0\t{}",
                1_300_000_000 + 86_400 * position
            )
            .unwrap();
        }
    }
}

fn data_rows(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count() - 1
}

#[test]
fn recbole_files_round_trip_to_the_same_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_inputs(dir, usize::MAX);
    let from_sequences = prepare(dir, &["seq", "--from-sequences", "beauty.txt"]);
    let from_recbole = prepare(dir, &["rb", "--from-recbole", "rb"]);
    assert_eq!(
        from_sequences, from_recbole,
        "the same interactions, two formats"
    );

    let out = mmsr(
        dir,
        &[
            "--data-dir",
            "data",
            "export",
            "seq",
            "--format",
            "recbole",
            "--out",
            "export",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let files = dir.join("export/seq");
    let manifest = std::fs::read_to_string(dir.join("data/prepared/seq/manifest.yaml")).unwrap();
    let count = |key: &str| -> usize {
        let line = manifest
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap();
        line.split(':').nth(1).unwrap().trim().parse().unwrap()
    };
    assert_eq!(
        data_rows(&files.join("seq.train.inter")),
        count("train_samples:")
    );
    assert_eq!(
        data_rows(&files.join("seq.valid.inter")),
        count("valid_samples:")
    );
    assert_eq!(
        data_rows(&files.join("seq.test.inter")),
        count("test_samples:")
    );
    assert_eq!(data_rows(&files.join("seq.inter")), count("interactions:"));
    let config = std::fs::read_to_string(files.join("seq.yaml")).unwrap();
    assert!(
        config.contains("benchmark_filename: [train, valid, test]"),
        "{config}"
    );

    // The export read back: the same dataset (ids, histories, split) and content hash.
    let again = prepare(dir, &["back", "--from-recbole", "export/seq"]);
    assert_eq!(again, from_sequences);
}

#[test]
fn a_malformed_recbole_file_names_the_file_and_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("x.inter"),
        "user:token\titem_id:token\nu\ti\n",
    )
    .unwrap();
    let out = mmsr(
        tmp.path(),
        &[
            "--data-dir",
            "d",
            "prepare",
            "x",
            "--from-recbole",
            "x.inter",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains("x.inter") && e.contains("no field \"user_id\""),
        "{e}"
    );

    std::fs::write(
        tmp.path().join("y.inter"),
        "user_id:token\titem_id:token\ttimestamp:float\nu\ti\tlater\n",
    )
    .unwrap();
    let out = mmsr(
        tmp.path(),
        &[
            "--data-dir",
            "d",
            "prepare",
            "y",
            "--from-recbole",
            "y.inter",
        ],
    );
    let e = stderr(&out);
    assert!(
        e.contains("y.inter:2") && e.contains("timestamp \"later\" is not a number"),
        "{e}"
    );

    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    let out = mmsr(
        tmp.path(),
        &["--data-dir", "d", "prepare", "z", "--from-recbole", "empty"],
    );
    assert!(
        stderr(&out).contains("no RecBole interaction file"),
        "{}",
        stderr(&out)
    );
}
