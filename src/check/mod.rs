//! `mmsr-bench check`: audits a submitted results directory from its own files. Every run file
//! is checked against itself (format, run id, location, metric invariants, counts, selection
//! under its protocol), the files against each other and against `summary.json` (cells,
//! aggregates, generated tables, dataset counts), optionally against a reference submission
//! (regression bands) and by re-running drawn cells. A scaling study's folder is audited by
//! re-deriving its analysis and report ([`scaling`]). Each finding names the file, the field,
//! what was expected and what was found.

pub mod reference;
pub mod rerun;
pub mod runs;
pub mod scaling;
pub mod summary;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::dataset::DatasetCounts;
pub use crate::record::read::abbreviate;
use crate::record::read::{load_results, read_input, walk_json, Unread};
use crate::record::result::RunResult;

/// One problem: the file, the field, what was expected, what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: PathBuf,
    pub field: String,
    pub expected: String,
    pub found: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: expected {}; found {}",
            // A file name from a submission may hold control characters too.
            abbreviate(&self.file.display().to_string()),
            self.field,
            self.expected,
            self.found
        )
    }
}

#[derive(Debug, Default)]
pub struct Findings(pub Vec<Finding>);

impl Findings {
    /// Records a finding; the field and both values pass through [`abbreviate`], so no finding
    /// repeats more than a few hundred bytes of a submitted value.
    pub fn add(&mut self, file: &Path, field: &str, expected: &str, found: &str) {
        self.0.push(Finding {
            file: file.to_path_buf(),
            field: abbreviate(field),
            expected: abbreviate(expected),
            found: abbreviate(found),
        });
    }
}

/// What to check beyond the submission's own files.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    pub reference: Option<PathBuf>,
    /// Regression band floor δ (metrics are fractions: 0.005 = half a point ×100).
    pub delta: f64,
    /// Cells re-run (count 0: none).
    pub rerun: rerun::RerunDraw,
    /// Where prepared datasets live (for counts and re-runs).
    pub data_dir: PathBuf,
    /// Datasets available here, by content hash (e.g. the default `synthetic`).
    pub known_counts: BTreeMap<String, DatasetCounts>,
    /// Runs made from a dirty working tree are findings, not a note.
    pub strict: bool,
    /// The authors' processed folder, for re-running runs on dataset `official`.
    pub official: Option<crate::dataset::official::OfficialConfig>,
}

#[derive(Debug, Default)]
pub struct CheckReport {
    pub files: usize,
    pub findings: Vec<Finding>,
    pub notes: Vec<String>,
}

/// Runs whose binary was built from a working tree with uncommitted changes (`git_commit`
/// ending in `-dirty`) cannot be traced to code anyone can check out: a note with their number,
/// or under `--strict` a finding per run.
fn provenance(
    runs: &[(PathBuf, RunResult)],
    strict: bool,
    findings: &mut Findings,
    notes: &mut Vec<String>,
) {
    let dirty: Vec<&(PathBuf, RunResult)> = runs
        .iter()
        .filter(|(_, r)| r.environment.git_commit.ends_with("-dirty"))
        .collect();
    if dirty.is_empty() {
        return;
    }
    if strict {
        for (path, r) in dirty {
            findings.add(
                path,
                "environment.git_commit",
                "a commit (results made from committed code; --strict)",
                &r.environment.git_commit,
            );
        }
    } else {
        notes.push(format!(
            "warning: {} of {} runs were made from a dirty working tree (git_commit ends in -dirty): the code behind them cannot be checked out; regenerate them at a clean commit (`check --strict` makes this a finding)",
            dirty.len(),
            runs.len()
        ));
    }
}

/// Unusable input (exit 2): the directory is not a submission at all. Symbolic links under
/// `runs/` (or `runs/` itself as one) are findings and never followed; so are special files,
/// files above [`crate::record::read::MAX_INPUT_BYTES`] (judged before reading) and
/// results whose dataset or model names are not safe as file names (such a file's checks end
/// there).
pub fn check(root: &Path, options: &CheckOptions) -> Result<CheckReport> {
    if scaling::is_study(root) {
        return scaling::check_study(root);
    }
    let runs_dir = root.join("runs");
    anyhow::ensure!(
        runs_dir.is_dir() || runs_dir.is_symlink(),
        "{} is not a results directory: it has no runs/ folder (run-all and merge write <results>/runs/<dataset>/<model>/seed<S>-<id>.json)",
        root.display()
    );
    let walk = walk_json(&runs_dir)?;
    anyhow::ensure!(
        !walk.files.is_empty() || !walk.unread.is_empty(),
        "{} holds no result files",
        runs_dir.display()
    );

    let mut findings = Findings::default();
    let mut notes = Vec::new();
    for (path, why) in &walk.unread {
        findings.add(path, "(file)", UNREAD_EXPECTED, &why.to_string());
    }
    let mut runs: Vec<(PathBuf, RunResult)> = Vec::new();
    for path in &walk.files {
        let text = match read_input(path) {
            Ok(bytes) => String::from_utf8(bytes),
            Err(why) => {
                findings.add(path, "(file)", UNREAD_EXPECTED, &why.to_string());
                continue;
            }
        };
        let Ok(text) = text else {
            findings.add(path, "(file)", "a JSON result document", "not UTF-8 text");
            continue;
        };
        let Some(r) = runs::parse(path, &text, &mut findings) else {
            continue;
        };
        if runs::names(path, &r, &mut findings) {
            runs::check_run(root, path, &r, &mut findings);
            runs.push((path.clone(), r));
        }
    }
    provenance(&runs, options.strict, &mut findings, &mut notes);
    let official = runs
        .iter()
        .filter(|(_, r)| r.config.train.protocol == crate::config::Protocol::Official)
        .count();
    if official > 0 {
        notes.push(format!(
            "{official} of {} runs are under protocol official: their numbers are selected on test (optimistic), checked as such, and never leaderboard rows",
            runs.len()
        ));
    }
    summary::duplicates(&runs, &mut findings);
    summary::summary(root, &runs, &mut findings);
    summary::generated_tables(root, &runs, &mut findings);
    summary::counts(&runs, &options.known_counts, &mut findings, &mut notes);
    if let Some(dir) = &options.reference {
        let reference = load_results(dir)
            .with_context(|| format!("reading the reference {}", dir.display()))?;
        reference::compare(
            &runs,
            &reference,
            dir,
            options.delta,
            &mut findings,
            &mut notes,
        );
    }
    if options.rerun.count > 0 {
        rerun::rerun(
            &runs,
            options.rerun,
            &options.data_dir,
            options.official.as_ref(),
            &mut findings,
            &mut notes,
        )?;
    }
    Ok(CheckReport {
        files: walk.files.len(),
        findings: findings.0,
        notes,
    })
}

/// What a finding about a file that was not read expected.
pub const UNREAD_EXPECTED: &str =
    "a regular file or folder of at most 16 MiB (symbolic links are not followed)";

/// The bytes of a file at the top of a submission (`summary.json`, `index.html`, ...): `None`
/// when there is no such file; any other reason it is not read is a finding.
pub fn read_top_file(path: &Path, findings: &mut Findings) -> Option<Vec<u8>> {
    match read_input(path) {
        Ok(bytes) => Some(bytes),
        Err(Unread::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(why) => {
            findings.add(path, "(file)", UNREAD_EXPECTED, &why.to_string());
            None
        }
    }
}
