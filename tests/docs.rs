//! Tables in the docs are generated (`mmsr-bench docs`), never copied by hand: the committed
//! documents equal their fresh generation, and a number edited by hand fails the check.

use std::path::Path;

use crate::common::{mmsr, stderr, stdout};

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// How many generated blocks `docs` reported.
fn blocks_reported(out: &str) -> usize {
    out.lines()
        .find_map(|l| l.strip_suffix(" generated block(s) up to date"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no block count in {out:?}"))
}

#[test]
fn the_committed_documents_equal_their_generation() {
    let root = repository().to_str().unwrap();
    let out = mmsr(repository(), &["docs", "--check", "--root", root]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // The check read real blocks: the README's model tables and the results tables.
    assert!(blocks_reported(&stdout(&out)) >= 4, "{}", stdout(&out));
    let readme = std::fs::read_to_string(repository().join("README.md")).unwrap();
    assert!(readme.contains("<!-- snippet: models -->"));
    assert!(readme.contains("<!-- snippet: ablations -->"));
}

#[test]
fn the_readme_model_table_is_the_registrys() {
    let out = mmsr(repository(), &["models", "--markdown"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tables = stdout(&out);
    for entry in mmsr_bench::model::REGISTRY {
        assert!(
            tables.contains(&format!("| `{}` |", entry.name)),
            "{} missing",
            entry.name
        );
    }
    let readme = std::fs::read_to_string(repository().join("README.md")).unwrap();
    let (models, ablations) = tables.split_once("\n\n").unwrap();
    assert!(
        readme.contains(models),
        "README's models table differs from `models --markdown`"
    );
    assert!(
        readme.contains(ablations.trim_end()),
        "README's ablations table differs"
    );
}

#[test]
fn a_hand_edited_number_fails_the_check() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = "leaderboard/main-cpu-2core";
    copy_dir(
        &repository().join(folder).join("runs"),
        &tmp.path().join(folder).join("runs"),
    );
    std::fs::write(
        tmp.path().join("README.md"),
        format!("# Doc\n\n<!-- snippet: board {folder} synthetic -->\n<!-- /snippet -->\n\ntext after\n"),
    )
    .unwrap();
    let root = tmp.path().to_str().unwrap();
    let write = mmsr(tmp.path(), &["docs", "--root", root]);
    assert!(write.status.success(), "{}", stderr(&write));
    let generated = std::fs::read_to_string(tmp.path().join("README.md")).unwrap();
    assert!(
        generated.contains("| han-gnn |")
            && generated.ends_with("<!-- /snippet -->\n\ntext after\n")
    );
    let check = mmsr(tmp.path(), &["docs", "--check", "--root", root]);
    assert!(check.status.success(), "{}", stderr(&check));
    assert_eq!(blocks_reported(&stdout(&check)), 1);

    // Change the last digit of the first mean ± std cell: the check fails and names the line.
    let at = generated.find(" ± ").expect("a mean ± std cell");
    let digit = generated[..at].chars().last().unwrap();
    let edited_digit = if digit == '9' {
        '0'
    } else {
        char::from(digit as u8 + 1)
    };
    let edited = format!("{}{edited_digit}{}", &generated[..at - 1], &generated[at..]);
    std::fs::write(tmp.path().join("README.md"), &edited).unwrap();
    let stale = mmsr(tmp.path(), &["docs", "--check", "--root", root]);
    assert_eq!(stale.status.code(), Some(1), "{}", stdout(&stale));
    let line = edited[..at].lines().count();
    assert!(
        stderr(&stale).contains(&format!("README.md:{line}: differs")),
        "{}",
        stderr(&stale)
    );
    // Writing restores the generated text.
    assert!(mmsr(tmp.path(), &["docs", "--root", root]).status.success());
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("README.md")).unwrap(),
        generated
    );
}
