//! `mmsr-bench check`: audits a submitted results directory from its own files. Every run file
//! is checked against itself (format, run id, location, metric invariants, counts, selection
//! under its protocol), the files against each other and against `summary.json` (cells,
//! aggregates, generated tables, dataset counts), optionally against a reference submission
//! (regression bands) and by re-running drawn cells. Each finding names the file, the field,
//! what was expected and what was found.

pub mod reference;
pub mod rerun;
pub mod runs;
pub mod summary;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::dataset::DatasetCounts;
use crate::record::result::RunResult;
use crate::report::aggregate::{collect_json, load_results};

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
            self.file.display(),
            self.field,
            self.expected,
            self.found
        )
    }
}

#[derive(Debug, Default)]
pub struct Findings(pub Vec<Finding>);

impl Findings {
    pub fn add(&mut self, file: &Path, field: &str, expected: &str, found: &str) {
        self.0.push(Finding {
            file: file.to_path_buf(),
            field: field.to_string(),
            expected: expected.to_string(),
            found: found.to_string(),
        });
    }
}

/// What to check beyond the submission's own files.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    pub reference: Option<PathBuf>,
    /// Regression band floor δ (metrics are fractions: 0.005 = half a point ×100).
    pub delta: f64,
    pub rerun: usize,
    pub rerun_seed: u64,
    /// Where prepared datasets live (for counts and re-runs).
    pub data_dir: PathBuf,
    /// Datasets available here, by content hash (e.g. the default `synthetic`).
    pub known_counts: BTreeMap<String, DatasetCounts>,
}

#[derive(Debug, Default)]
pub struct CheckReport {
    pub files: usize,
    pub findings: Vec<Finding>,
    pub notes: Vec<String>,
}

/// Unusable input (exit 2): the directory is not a submission at all.
pub fn check(root: &Path, options: &CheckOptions) -> Result<CheckReport> {
    let runs_dir = root.join("runs");
    anyhow::ensure!(
        runs_dir.is_dir(),
        "{} is not a results directory: it has no runs/ folder (run-all and merge write <results>/runs/<dataset>/<model>/seed<S>-<id>.json)",
        root.display()
    );
    let mut paths = Vec::new();
    collect_json(&runs_dir, &mut paths)?;
    paths.sort();
    anyhow::ensure!(
        !paths.is_empty(),
        "{} holds no result files",
        runs_dir.display()
    );

    let mut findings = Findings::default();
    let mut notes = Vec::new();
    let mut runs: Vec<(PathBuf, RunResult)> = Vec::new();
    for path in &paths {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        if let Some(r) = runs::parse(path, &text, &mut findings) {
            runs::check_run(root, path, &r, &mut findings);
            runs.push((path.clone(), r));
        }
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
    if options.rerun > 0 {
        rerun::rerun(
            &runs,
            options.rerun,
            options.rerun_seed,
            &options.data_dir,
            &mut findings,
            &mut notes,
        )?;
    }
    Ok(CheckReport {
        files: paths.len(),
        findings: findings.0,
        notes,
    })
}
