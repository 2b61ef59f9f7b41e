//! Checks across the files of a submission: one run per cell, the summary's cells and
//! aggregates recomputed from the run files, generated tables up to date, and dataset counts
//! consistent per content hash (and equal to the real dataset's where it is available here).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{abbreviate, read_top_file, Findings, UNREAD_EXPECTED};
use crate::config::Protocol;
use crate::dataset::missing::MissingModality;
use crate::dataset::DatasetCounts;
use crate::record::read::{read_input, Unread};
use crate::record::result::RunResult;
use crate::report::aggregate::build_boards;
use crate::report::published;
use crate::report::reproduction::{self, ReferenceCurve};
use crate::report::table::{summarize, MeanStd};

#[derive(Deserialize)]
struct SummaryRow {
    dataset: String,
    model: String,
    seeds: Vec<u64>,
    test: Vec<(String, MeanStd)>,
    #[serde(default)]
    missing: Option<MissingModality>,
    #[serde(default = "validation")]
    protocol: Protocol,
    #[serde(default)]
    variant: String,
}

fn validation() -> Protocol {
    Protocol::Validation
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

/// Two files for one (dataset, model and its parameters, seed, missing-modality condition)
/// cell.
pub fn duplicates(runs: &[(PathBuf, RunResult)], findings: &mut Findings) {
    let mut cells: BTreeMap<(String, String, u64, String, String), &PathBuf> = BTreeMap::new();
    for (path, r) in runs {
        // A seed under another protocol is another cell (a reproduction beside its
        // validation-protocol twin).
        let condition = r
            .config
            .missing
            .map_or(String::new(), |m| format!(" / {m}"))
            + match r.config.train.protocol {
                Protocol::Validation => "",
                Protocol::ValidationWithTestCurve => " / protocol validation-with-test-curve",
                Protocol::Official => " / protocol official",
            };
        let key = (
            r.config.dataset.clone(),
            r.config.model.clone(),
            r.config.seed,
            condition,
            // Other parameters are another experiment (a variant row), not a second copy.
            r.config.row_params().to_string(),
        );
        if let Some(first) = cells.insert(key.clone(), path) {
            findings.add(
                path,
                "(cell)",
                &format!(
                    "one result for {} / {} / seed {}{}",
                    key.0, key.1, key.2, key.3
                ),
                &format!("a second one besides {}", first.display()),
            );
        }
    }
}

/// `summary.json` against the run files: the same cells, the same means and stds.
pub fn summary(root: &Path, runs: &[(PathBuf, RunResult)], findings: &mut Findings) {
    let path = root.join("summary.json");
    let text = match read_input(&path) {
        Ok(t) => t,
        Err(Unread::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            findings.add(
                &path,
                "(file)",
                "the summary run-all or merge writes",
                "no such file",
            );
            return;
        }
        Err(why) => {
            findings.add(&path, "(file)", UNREAD_EXPECTED, &why.to_string());
            return;
        }
    };
    let rows: Vec<SummaryRow> = match serde_json::from_slice(&text) {
        Ok(rows) => rows,
        Err(e) => {
            findings.add(
                &path,
                "(document)",
                "a list of summary rows",
                &e.to_string(),
            );
            return;
        }
    };
    let results: Vec<RunResult> = runs.iter().map(|(_, r)| r.clone()).collect();
    let recomputed = summarize(&results);
    for (i, row) in rows.iter().enumerate() {
        let field = |name: &str| format!("[{i}] ({} / {}).{name}", row.dataset, row.model);
        let Some(fresh) = recomputed.iter().find(|r| {
            r.dataset == row.dataset
                && r.model == row.model
                && r.missing == row.missing
                && r.protocol == row.protocol
                && r.variant == row.variant
        }) else {
            findings.add(&path, &field("(row)"), "run files for this row", "none");
            continue;
        };
        let mut listed = row.seeds.clone();
        listed.sort_unstable();
        let mut present = fresh.seeds.clone();
        present.sort_unstable();
        for seed in listed.iter().filter(|s| !present.contains(s)) {
            findings.add(
                &path,
                &field("seeds"),
                &format!("a run file for seed {seed}"),
                "none (missing run)",
            );
        }
        for seed in present.iter().filter(|s| !listed.contains(s)) {
            findings.add(
                &path,
                &field("seeds"),
                &format!("seed {seed}, which has a run file"),
                &format!("{listed:?}"),
            );
        }
        for (name, stored) in &row.test {
            let Some((_, value)) = fresh.test.iter().find(|(n, _)| n == name) else {
                findings.add(
                    &path,
                    &field(&format!("test.{name}")),
                    "a metric of the run files",
                    "(absent there)",
                );
                continue;
            };
            let same_std = match (stored.std, value.std) {
                (Some(a), Some(b)) => close(a, b),
                (None, None) => true,
                _ => false,
            };
            if !close(stored.mean, value.mean) || !same_std {
                findings.add(
                    &path,
                    &field(&format!("test.{name}")),
                    &format!(
                        "mean {} std {:?} (recomputed from {} run files)",
                        value.mean,
                        value.std,
                        fresh.seeds.len()
                    ),
                    &format!("mean {} std {:?}", stored.mean, stored.std),
                );
            }
        }
    }
    for fresh in &recomputed {
        if !rows.iter().any(|r| {
            r.dataset == fresh.dataset
                && r.model == fresh.model
                && r.protocol == fresh.protocol
                && r.variant == fresh.variant
        }) {
            findings.add(
                &path,
                "(rows)",
                &format!(
                    "a row for {} / {}, which has run files",
                    fresh.dataset, fresh.model
                ),
                "none",
            );
        }
    }
}

/// `leaderboard.json`, when present, must be what `leaderboard` generates from these files (and
/// so must `missing-modality.json` and `index.html`).
pub fn generated_tables(root: &Path, runs: &[(PathBuf, RunResult)], findings: &mut Findings) {
    generated_page(root, runs, findings);
    generated_reproduction(root, runs, findings);
    generated_published(root, runs, findings);
    let path = root.join("leaderboard.json");
    let Some(text) = read_top_file(&path, findings) else {
        return;
    };
    let Ok(stored) = serde_json::from_slice::<serde_json::Value>(&text) else {
        findings.add(&path, "(document)", "JSON", "not JSON");
        return;
    };
    let reference = stored["reference"]
        .as_str()
        .unwrap_or("han-gnn")
        .to_string();
    let results: Vec<RunResult> = runs.iter().map(|(_, r)| r.clone()).collect();
    let fresh =
        crate::report::leaderboard::json_document(&build_boards(&results, &reference), &reference);
    if fresh != stored {
        findings.add(
            &path,
            "(document)",
            "the leaderboard generated from the run files (mmsr-bench leaderboard)",
            "other content: stale or edited",
        );
    }
    let path = root.join("missing-modality.json");
    let Some(text) = read_top_file(&path, findings) else {
        return;
    };
    let fresh =
        serde_json::to_value(crate::report::missing::build_study(&results)).expect("serialisable");
    if serde_json::from_slice::<serde_json::Value>(&text).ok() != Some(fresh) {
        findings.add(
            &path,
            "(document)",
            "the missing-modality study generated from the run files (mmsr-bench leaderboard)",
            "other content: stale or edited",
        );
    }
}

/// `reproduction.json`, when present, must be what `leaderboard` generates from the runs made
/// under `--protocol official` and the reference curve it keeps; a folder with such runs and a
/// leaderboard must have one.
fn generated_reproduction(root: &Path, runs: &[(PathBuf, RunResult)], findings: &mut Findings) {
    let results: Vec<RunResult> = runs.iter().map(|(_, r)| r.clone()).collect();
    let path = root.join("reproduction.json");
    let Some(text) = read_top_file(&path, findings) else {
        if reproduction::has_official_runs(&results) && root.join("leaderboard.json").exists() {
            findings.add(
                &path,
                "(file)",
                "the reproduction report of the runs under protocol official (mmsr-bench leaderboard)",
                "no such file",
            );
        }
        return;
    };
    let Ok(stored) = serde_json::from_slice::<serde_json::Value>(&text) else {
        findings.add(&path, "(document)", "JSON", "not JSON");
        return;
    };
    let Ok(reference) =
        serde_json::from_value::<Option<ReferenceCurve>>(stored["reference"].clone())
    else {
        findings.add(
            &path,
            "reference",
            "a reference curve or null",
            "something else",
        );
        return;
    };
    // The reference must be the log it names, where that file is reachable from here.
    if let Some(curve) = &reference {
        if let Ok(text) = std::fs::read_to_string(Path::new(&curve.source)) {
            if reproduction::parse_reference_log(&text, &curve.source).as_ref() != Ok(curve) {
                findings.add(
                    &path,
                    "reference",
                    &format!("the curve read from {}", abbreviate(&curve.source)),
                    "other values",
                );
            }
        }
    }
    let fresh =
        serde_json::to_value(reproduction::build(&results, reference)).expect("serialisable");
    if fresh != stored {
        findings.add(
            &path,
            "(document)",
            "the reproduction report generated from the run files (mmsr-bench leaderboard)",
            "other content: stale or edited",
        );
    }
}

/// `published.md`, where the folder holds a `published.yaml`, must be what `leaderboard` makes
/// of that file and the runs.
fn generated_published(root: &Path, runs: &[(PathBuf, RunResult)], findings: &mut Findings) {
    let source = root.join(published::FILE_NAME);
    let Some(text) = read_top_file(&source, findings) else {
        return;
    };
    let file = match published::parse(&text, &source) {
        Ok(file) => file,
        Err(e) => {
            findings.add(
                &source,
                "(document)",
                "published numbers as docs/results.md describes them",
                &abbreviate(&e),
            );
            return;
        }
    };
    let path = root.join("published.md");
    let results: Vec<RunResult> = runs.iter().map(|(_, r)| r.clone()).collect();
    match read_top_file(&path, findings) {
        None => findings.add(
            &path,
            "(file)",
            "the comparison with published.yaml (mmsr-bench leaderboard)",
            "no such file",
        ),
        Some(stored) if stored != published::markdown(&file, &results).as_bytes() => findings.add(
            &path,
            "(document)",
            "the comparison generated from published.yaml and the run files (mmsr-bench leaderboard)",
            "other content: stale or edited",
        ),
        Some(_) => {}
    }
}

/// `index.html`, when present, must be the page `leaderboard --html` generates from these files
/// (with the plots drawn afresh), byte for byte. The reference model is leaderboard.json's.
pub fn generated_page(root: &Path, runs: &[(PathBuf, RunResult)], findings: &mut Findings) {
    let path = root.join("index.html");
    let Some(stored) = read_top_file(&path, findings) else {
        return;
    };
    // leaderboard.json's own problems are generated_tables' findings.
    let reference = read_input(&root.join("leaderboard.json"))
        .ok()
        .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
        .and_then(|v| v["reference"].as_str().map(String::from))
        .unwrap_or_else(|| "han-gnn".to_string());
    let results: Vec<RunResult> = runs.iter().map(|(_, r)| r.clone()).collect();
    let fresh = match crate::report::html::fresh_page(&results, &reference) {
        Ok(page) => page,
        Err(e) => {
            findings.add(
                &path,
                "(document)",
                "a page that can be regenerated",
                &format!("{e:#}"),
            );
            return;
        }
    };
    if fresh.as_bytes() != stored {
        let stored = String::from_utf8_lossy(&stored);
        let line = fresh
            .lines()
            .zip(stored.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| fresh.lines().count().min(stored.lines().count()))
            + 1;
        findings.add(
            &path,
            &format!("(document, from line {line})"),
            "the page generated from the run files (mmsr-bench leaderboard --html)",
            "other content: stale or edited",
        );
    }
}

/// Runs that share a content hash must agree on the dataset's counts; where the dataset with
/// that hash is available here (`known`), they must equal its counts.
pub fn counts(
    runs: &[(PathBuf, RunResult)],
    known: &BTreeMap<String, DatasetCounts>,
    findings: &mut Findings,
    notes: &mut Vec<String>,
) {
    let mut first: BTreeMap<&str, (&PathBuf, &DatasetCounts)> = BTreeMap::new();
    for (path, r) in runs {
        let hash = r.dataset.content_hash.as_str();
        match known.get(hash) {
            Some(real) if real != &r.dataset.counts => findings.add(
                path,
                "dataset.counts",
                &format!("{real:?} (the dataset with content hash {hash}, available here)"),
                &format!("{:?}", r.dataset.counts),
            ),
            _ => {}
        }
        match first.get(hash) {
            Some((other, counts)) if *counts != &r.dataset.counts => findings.add(
                path,
                "dataset.counts",
                &format!(
                    "{counts:?} (as {} with the same content hash)",
                    other.display()
                ),
                &format!("{:?}", r.dataset.counts),
            ),
            None => {
                first.insert(hash, (path, &r.dataset.counts));
            }
            _ => {}
        }
    }
    for hash in first.keys().filter(|h| !known.contains_key(**h)) {
        notes.push(format!(
            "the dataset with content hash {} is not available here: its counts were checked for consistency between runs only",
            abbreviate(hash)
        ));
    }
}
