//! Auditing a committed scaling study (a folder with `scaling.json` and no `runs/`): its fits,
//! ratio, crossovers and verdict are recomputed from its own measurements with this binary's
//! analysis and compared with what the file says, and `scaling.md` must be the report of that
//! study. Timings cannot be re-measured here; everything derived from them is re-derived.

use std::path::Path;

use anyhow::{Context, Result};

use super::{CheckReport, Findings};
use crate::record::read::{read_input, walk_json};
use crate::scaling::analysis::analyse;
use crate::scaling::report::markdown;
use crate::scaling::Study;

/// Whether `dir` is a scaling study's folder rather than a results folder.
pub fn is_study(dir: &Path) -> bool {
    dir.join("scaling.json").is_file() && !dir.join("runs").exists()
}

fn first_difference(a: &str, b: &str) -> (usize, String, String) {
    let mut n = 0;
    let (mut la, mut lb) = (a.lines(), b.lines());
    loop {
        n += 1;
        match (la.next(), lb.next()) {
            (x, y) if x == y && x.is_some() => continue,
            (x, y) => return (n, x.unwrap_or("").into(), y.unwrap_or("").into()),
        }
    }
}

pub fn check_study(dir: &Path) -> Result<CheckReport> {
    let mut findings = Findings::default();
    let json = dir.join("scaling.json");
    // The same reading rules as result files: no links followed, bounded size.
    let walk = walk_json(dir)?;
    for (path, why) in &walk.unread {
        findings.add(
            path,
            "(file)",
            "a regular file (symbolic links are not followed)",
            &why.to_string(),
        );
    }
    let bytes = read_input(&json).map_err(|why| anyhow::anyhow!("{}: {why}", json.display()))?;
    let study: Study = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a scaling study written by this version",
            json.display()
        )
    })?;
    let measured = study.measurements.len();
    let recomputed = analyse(&study.measurements);
    let (stored, fresh) = (
        serde_json::to_value(&study.analysis)?,
        serde_json::to_value(&recomputed)?,
    );
    for key in ["fits", "ratio", "crossovers", "verdict", "spread"] {
        if stored[key] != fresh[key] {
            findings.add(
                &json,
                &format!("analysis.{key}"),
                "the analysis recomputed from the study's measurements",
                "other values (edited, or analysed by other code: `mmsr-bench scaling --report-from` re-derives it)",
            );
        }
    }
    let report_path = dir.join("scaling.md");
    match read_input(&report_path) {
        Ok(bytes) => {
            let committed = String::from_utf8_lossy(&bytes);
            let expected = markdown(&Study {
                analysis: recomputed,
                ..study
            });
            if committed != expected {
                let (line, _, _) = first_difference(&committed, &expected);
                findings.add(
                    &report_path,
                    &format!("(document, from line {line})"),
                    "the report generated from scaling.json",
                    "other content: stale or edited",
                );
            }
        }
        Err(why) => findings.add(
            &report_path,
            "(file)",
            "the study's report",
            &why.to_string(),
        ),
    }
    Ok(CheckReport {
        files: 1,
        findings: findings.0,
        notes: vec![format!(
            "{}: a scaling study; its analysis and report were re-derived from its {} measurements",
            dir.display(),
            measured
        )],
    })
}
