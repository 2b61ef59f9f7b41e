//! Checks of one result file against itself: format and version, run id, location, metric
//! invariants, sample counts, and the selection recomputed from its learning curve under its
//! stated protocol.

use std::path::Path;

use serde_json::Value;

use super::Findings;
use crate::config::Protocol;
use crate::eval::metrics::ideal_dcg_all_relevant;
use crate::eval::{Metric, MetricSet};
use crate::record::read::name_problems;
use crate::record::result::{result_path, run_id, RunResult, NAME_RULE, SCHEMA, SCHEMA_VERSION};
use crate::train::early_stopping::{AnyMetricStopping, EarlyStopping};

/// Parses a result file; every problem is a finding and `None` ends the file's checks.
pub fn parse(path: &Path, text: &str, findings: &mut Findings) -> Option<RunResult> {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            findings.add(path, "(file)", "a JSON result document", &e.to_string());
            return None;
        }
    };
    let schema = value
        .get("schema")
        .and_then(Value::as_str)
        .unwrap_or("(missing)");
    let version = value.get("schema_version").and_then(Value::as_u64);
    if schema != SCHEMA || version != Some(u64::from(SCHEMA_VERSION)) {
        findings.add(
            path,
            "schema, schema_version",
            &format!("{SCHEMA} version {SCHEMA_VERSION}"),
            &format!(
                "{schema} version {}",
                version.map_or("(missing)".into(), |v| v.to_string())
            ),
        );
        return None;
    }
    match serde_json::from_value(value) {
        Ok(r) => Some(r),
        Err(e) => {
            findings.add(
                path,
                "(document)",
                "the result format of schema version 2",
                &e.to_string(),
            );
            None
        }
    }
}

/// The names that become file names (`config.dataset`, `config.model`, `dataset.name`) must
/// each be safe as a file-name component; each one that is not is a finding, and `false` ends
/// the file's checks (nothing, not even a path to compare, is made from it).
pub fn names(path: &Path, r: &RunResult, findings: &mut Findings) -> bool {
    let problems = name_problems(r);
    for (field, found) in &problems {
        findings.add(path, field, NAME_RULE, found);
    }
    problems.is_empty()
}

/// Everything one file can be checked against on its own.
pub fn check_run(root: &Path, path: &Path, r: &RunResult, findings: &mut Findings) {
    let id = run_id(&r.dataset.content_hash, &r.config);
    if id != r.run_id {
        findings.add(
            path,
            "run_id",
            &format!("{id} (recomputed from dataset.content_hash and config)"),
            &r.run_id,
        );
    }
    let expected = result_path(root, &r.config, &r.run_id);
    if expected != path {
        findings.add(
            path,
            "(location)",
            &expected.display().to_string(),
            &path.display().to_string(),
        );
    }
    if let Some(threads) = r.config.cpu_threads {
        if threads != r.environment.torch_threads {
            findings.add(
                path,
                "config.cpu_threads",
                &format!(
                    "{} (environment.torch_threads)",
                    r.environment.torch_threads
                ),
                &threads.to_string(),
            );
        }
    }
    let counts = &r.dataset.counts;
    if r.test.num_samples != counts.test_samples {
        findings.add(
            path,
            "test.num_samples",
            &format!("{} (dataset.counts.test_samples)", counts.test_samples),
            &r.test.num_samples.to_string(),
        );
    }
    // Under `official` the validation samples are trained on; `official_stopping` checks that
    // nothing was evaluated on them.
    let valid_samples = if r.config.train.protocol.trains_on_validation() {
        0
    } else {
        counts.valid_samples
    };
    if r.validation.num_samples != valid_samples {
        findings.add(
            path,
            "validation.num_samples",
            &format!("{valid_samples} (dataset.counts.valid_samples, 0 under protocol official)"),
            &r.validation.num_samples.to_string(),
        );
    }
    invariants(path, "validation", &r.validation, findings);
    invariants(path, "test", &r.test, findings);
    for e in &r.learning_curve {
        invariants(
            path,
            &format!("learning_curve[{}].validation", e.epoch),
            &e.validation,
            findings,
        );
        if e.validation.num_samples != valid_samples {
            findings.add(
                path,
                &format!("learning_curve[{}].validation.num_samples", e.epoch),
                &valid_samples.to_string(),
                &e.validation.num_samples.to_string(),
            );
        }
        if let Some(t) = &e.test {
            invariants(
                path,
                &format!("learning_curve[{}].test", e.epoch),
                t,
                findings,
            );
        }
    }
    if let Some(best) = &r.official_best_over_epochs_on_test {
        invariants(path, "official_best_over_epochs_on_test", best, findings);
    }
    selection(path, r, findings);
    protocol(path, r, findings);
}

const SLACK: f64 = 1e-9;

/// 0 <= MRR <= NDCG <= HR <= 1 at every cut-off, each non-decreasing in K, HR a whole number of
/// hits, and the official NDCG the correct one over its normaliser.
fn invariants(path: &Path, field: &str, set: &MetricSet, findings: &mut Findings) {
    let mut previous: Option<&crate::eval::MetricsAtK> = None;
    let mut ats: Vec<_> = set.at.iter().collect();
    ats.sort_by_key(|a| a.k);
    for at in ats {
        let f = |name: &str| format!("{field}.at[k={}].{name}", at.k);
        if !(0.0 - SLACK <= at.mrr
            && at.mrr <= at.ndcg + SLACK
            && at.ndcg <= at.hr + SLACK
            && at.hr <= 1.0 + SLACK)
        {
            findings.add(
                path,
                &f("hr, ndcg, mrr"),
                "0 <= MRR <= NDCG <= HR <= 1",
                &format!("HR {}, NDCG {}, MRR {}", at.hr, at.ndcg, at.mrr),
            );
        }
        let hits = at.hr * set.num_samples as f64;
        if (hits - hits.round()).abs() > 1e-6 {
            findings.add(
                path,
                &f("hr"),
                &format!("a multiple of 1/{} (a count of hits)", set.num_samples),
                &at.hr.to_string(),
            );
        }
        let official = at.ndcg / ideal_dcg_all_relevant(at.k);
        if (official - at.ndcg_official).abs() > 1e-9 {
            findings.add(
                path,
                &f("ndcg_official"),
                &official.to_string(),
                &at.ndcg_official.to_string(),
            );
        }
        if let Some(p) = previous {
            for (name, now, before) in [
                ("hr", at.hr, p.hr),
                ("ndcg", at.ndcg, p.ndcg),
                ("mrr", at.mrr, p.mrr),
            ] {
                if now + SLACK < before {
                    findings.add(
                        path,
                        &f(name),
                        &format!(">= {before} (its value at k={})", p.k),
                        &now.to_string(),
                    );
                }
            }
        }
        previous = Some(at);
    }
}

/// The selected epoch, the stopping point and the learning rates, recomputed from the curve.
fn selection(path: &Path, r: &RunResult, findings: &mut Findings) {
    let curve = &r.learning_curve;
    if curve.len() != r.epochs_run {
        findings.add(
            path,
            "epochs_run",
            &format!("{} (entries of learning_curve)", curve.len()),
            &r.epochs_run.to_string(),
        );
    }
    for (i, e) in curve.iter().enumerate() {
        if e.epoch != i {
            findings.add(
                path,
                &format!("learning_curve[{i}].epoch"),
                &i.to_string(),
                &e.epoch.to_string(),
            );
        }
        let t = &r.config.train;
        let lr = t.learning_rate * t.lr_gamma.powi((i / t.lr_step.max(1)) as i32);
        if (lr - e.learning_rate).abs() > 1e-12 * lr.abs().max(1e-300) {
            findings.add(
                path,
                &format!("learning_curve[{i}].learning_rate"),
                &lr.to_string(),
                &e.learning_rate.to_string(),
            );
        }
    }
    if r.config.train.protocol == Protocol::Official {
        official_stopping(path, r, findings);
        return;
    }
    let Some(selected) = r.selected_epoch else {
        if r.epochs_run != 0 || !curve.is_empty() {
            findings.add(path, "selected_epoch", "an epoch (the run trained)", "null");
        }
        return;
    };
    if selected >= r.epochs_run {
        findings.add(
            path,
            "selected_epoch",
            &format!("< {} (epochs_run)", r.epochs_run),
            &selected.to_string(),
        );
        return;
    }
    let t = &r.config.train;
    let mut stopping = EarlyStopping::new(t.patience);
    let mut stopped_at = None;
    for e in curve {
        let Some(value) = e.validation.get(t.selection_metric, t.selection_k) else {
            findings.add(
                path,
                &format!("learning_curve[{}].validation", e.epoch),
                &format!("{}@{}", t.selection_metric.label(), t.selection_k),
                "(missing)",
            );
            return;
        };
        if stopping.step(e.epoch, value).stop && stopped_at.is_none() {
            stopped_at = Some(e.epoch);
        }
    }
    let Some(best) = stopping.best_epoch() else {
        return; // an empty curve is reported by the length check
    };
    let selected_entry = curve.iter().find(|e| e.epoch == selected);
    if best != selected {
        findings.add(
            path,
            "selected_epoch",
            &format!(
                "{best} (the first best validation {}@{} of the curve)",
                t.selection_metric.label(),
                t.selection_k
            ),
            &selected.to_string(),
        );
    } else if selected_entry.is_none_or(|e| e.validation != r.validation) {
        findings.add(
            path,
            "validation",
            &format!("the validation metrics of learning_curve[{selected}]"),
            "other values",
        );
    }
    let last = r.epochs_run.saturating_sub(1);
    let expected_end = stopped_at.unwrap_or(t.max_epochs.saturating_sub(1));
    if r.epochs_run > 0 && expected_end != last {
        findings.add(
            path,
            "epochs_run",
            &format!(
                "{} (patience {} applied to the curve, max_epochs {})",
                expected_end + 1,
                t.patience,
                t.max_epochs
            ),
            &r.epochs_run.to_string(),
        );
    }
}

/// Under `official` nothing is selected or held out: no selected epoch, no validation, a test
/// evaluation every epoch, `test` the last epoch's, and the run ends where the any-of-six rule
/// (spec §6.3) replayed over the curve's test metrics ends it.
fn official_stopping(path: &Path, r: &RunResult, findings: &mut Findings) {
    if let Some(selected) = r.selected_epoch {
        findings.add(
            path,
            "selected_epoch",
            "null (protocol official selects no epoch)",
            &selected.to_string(),
        );
    }
    let empty = MetricSet::empty();
    let validated = std::iter::once(&r.validation)
        .chain(r.learning_curve.iter().map(|e| &e.validation))
        .any(|v| *v != empty);
    if validated {
        findings.add(
            path,
            "validation",
            "no validation metrics (protocol official trains on the validation samples)",
            "validation metrics",
        );
    }
    let t = &r.config.train;
    let mut stopping = AnyMetricStopping::new(t.patience);
    let mut stopped_at = None;
    for e in &r.learning_curve {
        let Some(test) = &e.test else {
            findings.add(
                path,
                &format!("learning_curve[{}].test", e.epoch),
                "test metrics (protocol official evaluates test after every epoch)",
                "null",
            );
            return;
        };
        let Some(step) = stopping.step(e.epoch, test) else {
            findings.add(
                path,
                &format!("learning_curve[{}].test", e.epoch),
                "HR, MRR and NDCG at 5 and 20 (the official stopping rule watches them)",
                "other cut-offs",
            );
            return;
        };
        if step.stop && stopped_at.is_none() {
            stopped_at = Some(e.epoch);
        }
    }
    let Some(last) = r.learning_curve.last() else {
        if r.epochs_run > 0 {
            findings.add(path, "learning_curve", "one entry per epoch", "none");
        }
        return;
    };
    let expected_end = stopped_at.unwrap_or(t.max_epochs.saturating_sub(1));
    if expected_end != last.epoch {
        findings.add(
            path,
            "epochs_run",
            &format!(
                "{} (the official rule, patience {}, replayed on the test curve; max_epochs {})",
                expected_end + 1,
                t.patience,
                t.max_epochs
            ),
            &r.learning_curve.len().to_string(),
        );
    }
    if last.test.as_ref() != Some(&r.test) {
        findings.add(
            path,
            "test",
            &format!(
                "the test metrics of learning_curve[{}] (the last epoch)",
                last.epoch
            ),
            "other values",
        );
    }
}

/// Under `validation` no test number may exist before the selection; under `official` the
/// best-over-epochs numbers must be the per-metric maxima of the curve's test metrics.
fn protocol(path: &Path, r: &RunResult, findings: &mut Findings) {
    match r.config.train.protocol {
        Protocol::Validation => {
            for e in &r.learning_curve {
                if e.test.is_some() {
                    findings.add(
                        path,
                        &format!("learning_curve[{}].test", e.epoch),
                        "null (protocol validation evaluates test once, after selection)",
                        "test metrics",
                    );
                }
            }
            if r.official_best_over_epochs_on_test.is_some() {
                findings.add(
                    path,
                    "official_best_over_epochs_on_test",
                    "null under protocol validation",
                    "test-selected numbers",
                );
            }
        }
        Protocol::ValidationWithTestCurve | Protocol::Official => {
            let Some(best) = &r.official_best_over_epochs_on_test else {
                if r.epochs_run > 0 {
                    findings.add(
                        path,
                        "official_best_over_epochs_on_test",
                        "the per-metric best test values of the curve",
                        "null",
                    );
                }
                return;
            };
            for at in &best.at {
                for metric in [Metric::Hr, Metric::Ndcg, Metric::Mrr] {
                    let max = r
                        .learning_curve
                        .iter()
                        .filter_map(|e| e.test.as_ref()?.get(metric, at.k))
                        .fold(f64::NEG_INFINITY, f64::max);
                    if (max - at.get(metric)).abs() > 1e-12 {
                        findings.add(
                            path,
                            &format!(
                                "official_best_over_epochs_on_test.at[k={}].{}",
                                at.k,
                                metric.label()
                            ),
                            &max.to_string(),
                            &at.get(metric).to_string(),
                        );
                    }
                }
            }
        }
    }
}
