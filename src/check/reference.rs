//! Comparison with a reference submission: a regression is a mean outside the reference mean ±
//! max(3·std/√n, δ), per headline metric, for every (dataset, model) both have on the same data.

use std::path::{Path, PathBuf};

use super::{abbreviate, Findings};
use crate::record::result::RunResult;
use crate::report::aggregate::{build_boards, HEADLINE};

pub fn compare(
    runs: &[(PathBuf, RunResult)],
    reference: &[(PathBuf, RunResult)],
    reference_dir: &Path,
    delta: f64,
    findings: &mut Findings,
    notes: &mut Vec<String>,
) {
    let ours: Vec<RunResult> = runs.iter().map(|(_, r)| r.clone()).collect();
    let theirs: Vec<RunResult> = reference.iter().map(|(_, r)| r.clone()).collect();
    let (ours, theirs) = (build_boards(&ours, "-"), build_boards(&theirs, "-"));
    let mut compared = 0;
    for board in &ours {
        let Some(other) = theirs
            .iter()
            .find(|b| b.dataset == board.dataset && b.content_hash == board.content_hash)
        else {
            notes.push(format!(
                "{}: the reference has no results on the same data (content hash {}); not compared",
                board.dataset,
                abbreviate(&board.content_hash)
            ));
            continue;
        };
        for row in &board.rows {
            let Some(base) = other.rows.iter().find(|r| r.model == row.model) else {
                continue;
            };
            compared += 1;
            for &(metric, k) in &HEADLINE {
                let name = crate::report::aggregate::column_name(metric, k);
                let (Some(a), Some(b)) = (
                    row.metrics.iter().find(|m| m.name == name),
                    base.metrics.iter().find(|m| m.name == name),
                ) else {
                    continue;
                };
                let band = (3.0 * b.value.std.unwrap_or(0.0) / (b.n as f64).sqrt()).max(delta);
                let gap = a.value.mean - b.value.mean;
                if gap.abs() > band {
                    let direction = if gap < 0.0 { "below" } else { "above" };
                    findings.add(
                        &PathBuf::from(format!("{} / {}", row.dataset, row.model)),
                        &format!("test {name} mean"),
                        &format!(
                            "{:.5} ± {band:.5} (reference {} mean over {} seeds; band max(3·std/√n, δ = {delta}))",
                            b.value.mean,
                            reference_dir.display(),
                            b.n
                        ),
                        &format!("{:.5}, {:.5} {direction} (a regression or an unexplained change)", a.value.mean, gap.abs()),
                    );
                }
            }
        }
    }
    notes.push(format!(
        "{compared} (dataset, model) cells compared with {}",
        reference_dir.display()
    ));
}
