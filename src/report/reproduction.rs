//! The reproduction report: runs made under `--protocol official` (test after every epoch),
//! epoch by epoch as mean ± std over seeds, beside a reference curve such as the authors' logged
//! run (`leaderboard --reference-log`). These numbers are test-selected and optimistic; they
//! live here, never in a leaderboard row.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::aggregate::variant_key;
use super::plots::{color, plot_error, FONT};
use super::table::MeanStd;
use crate::config::Protocol;
use crate::eval::Metric;
use crate::record::RunResult;

/// What the official code logs each epoch (NDCG the correct one here), in the log's order.
pub const CURVE_METRICS: [(Metric, usize); 6] = [
    (Metric::Hr, 5),
    (Metric::Mrr, 5),
    (Metric::Ndcg, 5),
    (Metric::Hr, 20),
    (Metric::Mrr, 20),
    (Metric::Ndcg, 20),
];

/// The metrics of the per-epoch Markdown table (all six are in the JSON).
const TABLE_METRICS: [&str; 4] = ["HR@5", "NDCG@5", "HR@20", "NDCG@20"];

fn name(metric: Metric, k: usize) -> String {
    format!("{}@{k}", metric.label())
}

/// A curve to compare with: per epoch, metric name (`HR@20`, ...) -> value as a fraction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceCurve {
    /// Where it came from, as given (a file name or a citation).
    pub source: String,
    pub epochs: Vec<ReferenceEpoch>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceEpoch {
    pub epoch: usize,
    pub metrics: BTreeMap<String, f64>,
    /// The epoch's training loss summed over its batches, as the official code logs it (the
    /// log's optional `summed train loss` column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_loss_sum: Option<f64>,
}

impl ReferenceCurve {
    fn at(&self, epoch: usize, metric: &str) -> Option<f64> {
        let e = self.epochs.iter().find(|e| e.epoch == epoch)?;
        e.metrics.get(metric).copied()
    }

    fn train_loss_sum(&self, epoch: usize) -> Option<f64> {
        self.epochs
            .iter()
            .find(|e| e.epoch == epoch)?
            .train_loss_sum
    }

    /// Per metric, its best value over the reference's epochs (the official reporting).
    fn best(&self, metric: &str) -> Option<f64> {
        self.epochs
            .iter()
            .filter_map(|e| e.metrics.get(metric).copied())
            .reduce(f64::max)
    }
}

/// The reference curve kept in a folder's `reproduction.json` (`None` when it keeps none); read
/// through `record::read`'s bounds, like every file of a results folder.
pub fn stored_reference(path: &Path) -> Result<Option<ReferenceCurve>> {
    let bytes = crate::record::read::read_input(path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", path.display()))?;
    serde_json::from_value(value["reference"].clone())
        .map_err(|e| anyhow::anyhow!("{}: the reference curve: {e}", path.display()))
}

/// Reads the per-epoch table of a log transcribed as Markdown (the layout of
/// `official-beauty/LOG.md`): a header row with `epoch` and, for each metric, a column named
/// `HR@5`, `MRR@5`, `HR@20`, `MRR@20` and `NDCG@5 corrected`, `NDCG@20 corrected` (the correct
/// NDCG; the logged one uses the wrong normaliser), values ×100; optionally `summed train loss`.
pub fn parse_reference_log(text: &str, source: &str) -> Result<ReferenceCurve, String> {
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let mut lines = text
        .lines()
        .map(str::trim)
        .skip_while(|l| !(l.starts_with('|') && cells(l).first().is_some_and(|c| c == "epoch")));
    let header = cells(lines.next().ok_or("no table with an `epoch` column")?);
    let column = |wanted: &str| {
        header
            .iter()
            .position(|h| h == wanted)
            .ok_or_else(|| format!("the table has no column {wanted:?}"))
    };
    let mut columns = Vec::new();
    for (metric, k) in CURVE_METRICS {
        let metric_name = name(metric, k);
        let header_name = match metric {
            Metric::Ndcg => format!("{metric_name} corrected"),
            _ => metric_name.clone(),
        };
        columns.push((metric_name, column(&header_name)?));
    }
    let loss_column = column("summed train loss").ok();
    let mut epochs = Vec::new();
    for line in lines.skip(1).take_while(|l| l.starts_with('|')) {
        let row = cells(line);
        let number = |i: usize| -> Result<f64, String> {
            row.get(i)
                .and_then(|c| c.parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("row {line:?}: column {} is not a number", i + 1))
        };
        let epoch = number(0)?;
        if epoch < 0.0 || epoch.fract() != 0.0 {
            return Err(format!("row {line:?}: epoch {epoch} is not a whole number"));
        }
        let mut metrics = BTreeMap::new();
        for (metric, i) in &columns {
            metrics.insert(metric.clone(), number(*i)? / 100.0);
        }
        epochs.push(ReferenceEpoch {
            epoch: epoch as usize,
            metrics,
            train_loss_sum: loss_column.map(number).transpose()?,
        });
    }
    if epochs.is_empty() {
        return Err("the table has no rows".into());
    }
    Ok(ReferenceCurve {
        source: source.to_string(),
        epochs,
    })
}

/// One epoch of a configuration's curve over its seeds.
#[derive(Debug, Clone, Serialize)]
pub struct EpochPoint {
    pub epoch: usize,
    /// Seeds that trained this far (the official rule ends seeds at different epochs).
    pub seeds: usize,
    pub metrics: Vec<(String, MeanStd)>,
    /// Mean cross-entropy per training batch, over the seeds.
    pub train_loss: Option<MeanStd>,
}

/// One (dataset, model, configuration) under `official`.
#[derive(Debug, Clone, Serialize)]
pub struct CurveStudy {
    pub dataset: String,
    pub model: String,
    pub variant: String,
    pub seeds: Vec<u64>,
    pub epochs_run: Vec<usize>,
    /// Training batches per epoch (all training samples, the validation ones included, as the
    /// official protocol trains); a logged summed loss divided by it compares with ours.
    pub batches_per_epoch: usize,
    pub epochs: Vec<EpochPoint>,
    /// Per metric, the mean ± std over seeds of each seed's best over epochs.
    pub best: Vec<(String, MeanStd)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReproductionReport {
    pub studies: Vec<CurveStudy>,
    pub reference: Option<ReferenceCurve>,
}

pub fn has_official_runs(results: &[RunResult]) -> bool {
    results
        .iter()
        .any(|r| r.config.train.protocol == Protocol::Official)
}

/// The curves of every configuration run under `official` (missing-modality runs excluded),
/// sorted by dataset and model.
pub fn build(results: &[RunResult], reference: Option<ReferenceCurve>) -> ReproductionReport {
    let mut groups: BTreeMap<(String, String, String), Vec<&RunResult>> = BTreeMap::new();
    for r in results
        .iter()
        .filter(|r| r.config.train.protocol == Protocol::Official && r.config.missing.is_none())
    {
        let key = (
            r.config.dataset.clone(),
            r.config.model.clone(),
            variant_key(r),
        );
        groups.entry(key).or_default().push(r);
    }
    let studies = groups
        .into_iter()
        .map(|((dataset, model, variant), mut runs)| {
            runs.sort_by_key(|r| r.config.seed);
            let last = runs
                .iter()
                .map(|r| r.learning_curve.len())
                .max()
                .unwrap_or(0);
            let epochs = (0..last)
                .map(|epoch| {
                    let tests: Vec<_> = runs
                        .iter()
                        .filter_map(|r| r.learning_curve.get(epoch)?.test.as_ref())
                        .collect();
                    let losses: Vec<f64> = runs
                        .iter()
                        .filter_map(|r| Some(r.learning_curve.get(epoch)?.train_loss))
                        .collect();
                    EpochPoint {
                        epoch,
                        seeds: tests.len(),
                        train_loss: MeanStd::of(&losses),
                        metrics: CURVE_METRICS
                            .iter()
                            .filter_map(|&(m, k)| {
                                let values: Vec<f64> =
                                    tests.iter().filter_map(|t| t.get(m, k)).collect();
                                Some((name(m, k), MeanStd::of(&values)?))
                            })
                            .collect(),
                    }
                })
                .collect();
            let best = CURVE_METRICS
                .iter()
                .filter_map(|&(m, k)| {
                    let values: Vec<f64> = runs
                        .iter()
                        .filter_map(|r| r.official_best_over_epochs_on_test.as_ref()?.get(m, k))
                        .collect();
                    Some((name(m, k), MeanStd::of(&values)?))
                })
                .collect();
            CurveStudy {
                dataset,
                model,
                variant,
                seeds: runs.iter().map(|r| r.config.seed).collect(),
                epochs_run: runs.iter().map(|r| r.epochs_run).collect(),
                batches_per_epoch: official_batches(runs[0]),
                epochs,
                best,
            }
        })
        .collect();
    ReproductionReport { studies, reference }
}

/// Batches per training epoch under the official protocol: the training and validation
/// samples together, in batches of `batch_size` (the last one partial).
fn official_batches(run: &RunResult) -> usize {
    let counts = &run.dataset.counts;
    (counts.train_samples + counts.valid_samples).div_ceil(run.config.train.batch_size.max(1))
}

fn value_of<'a>(metrics: &'a [(String, MeanStd)], metric: &str) -> Option<&'a MeanStd> {
    metrics.iter().find(|(n, _)| n == metric).map(|(_, v)| v)
}

/// `a` against the reference `b`, both fractions: "−2.64 (81 %)" in points ×100.
fn versus(a: f64, b: Option<f64>) -> String {
    match b {
        Some(b) if b > 0.0 => format!("{:+.2} ({:.0} %)", (a - b) * 100.0, a / b * 100.0),
        _ => "–".into(),
    }
}

fn reference_cell(value: Option<f64>) -> String {
    value.map_or("–".into(), |v| format!("{:.2}", v * 100.0))
}

pub fn markdown(report: &ReproductionReport) -> String {
    let mut out = String::from(
        "# Reproduction runs (protocol official)\n\nGenerated by `mmsr-bench leaderboard` from the result files; do not edit.\n\n\
         Runs under `--protocol official` train the way the official code does: the validation samples \
         join training, test is evaluated after every epoch, training stops when none of HR, MRR and the \
         official NDCG at 5 and 20 improved for `patience` epochs, and each metric is reported as its best \
         value over epochs **on test**. Those numbers are selected on test and optimistic by construction: \
         they are never a leaderboard row. Metrics ×100; NDCG is the correct single-target NDCG.\n",
    );
    if let Some(reference) = &report.reference {
        let _ = writeln!(
            out,
            "\nReference curve: {} ({} epochs). Δ = ours − reference in points ×100, with ours as a share of it.",
            reference.source,
            reference.epochs.len()
        );
    }
    out.push_str(&sections(report, "##"));
    out
}

/// The tables of [`markdown`] without its title, each study under a `heading` line.
pub fn sections(report: &ReproductionReport, heading: &str) -> String {
    let mut out = String::new();
    let reference = report.reference.as_ref();
    for study in &report.studies {
        let _ = writeln!(
            out,
            "\n{heading} {} / {}\n\nSeeds {:?}, epochs run {:?} (configuration {}).\n",
            study.dataset, study.model, study.seeds, study.epochs_run, study.variant
        );
        out.push_str(
            "Best over epochs per metric (the official reporting):\n\n| metric | ours (mean ± std) | reference | Δ (share) |\n|---|---|---|---|\n",
        );
        for (metric, value) in &study.best {
            let r = reference.and_then(|c| c.best(metric));
            let _ = writeln!(
                out,
                "| {metric} | {} | {} | {} |",
                value.display(100.0),
                reference_cell(r),
                versus(value.mean, r)
            );
        }
        out.push_str(
            "\nPer epoch (mean ± std over the seeds that reached it):\n\n| epoch | seeds |",
        );
        for metric in TABLE_METRICS {
            let _ = write!(out, " {metric} ours | {metric} reference | Δ |");
        }
        out.push_str("\n|---|---|");
        out.push_str(&"---|---|---|".repeat(TABLE_METRICS.len()));
        out.push('\n');
        for point in &study.epochs {
            let _ = write!(out, "| {} | {} |", point.epoch, point.seeds);
            for metric in TABLE_METRICS {
                let ours = value_of(&point.metrics, metric);
                let r = reference.and_then(|c| c.at(point.epoch, metric));
                let _ = write!(
                    out,
                    " {} | {} | {} |",
                    ours.map_or("–".into(), |v| v.display(100.0)),
                    reference_cell(r),
                    ours.map_or("–".into(), |v| versus(v.mean, r))
                );
            }
            out.push('\n');
        }
        loss_table(&mut out, study, reference);
    }
    out
}

/// Training loss per epoch, ours against the reference's summed loss per batch: the same
/// quantity (mean cross-entropy per batch) when both trained on the same samples.
fn loss_table(out: &mut String, study: &CurveStudy, reference: Option<&ReferenceCurve>) {
    let batches = study.batches_per_epoch;
    let _ = write!(
        out,
        "\nTraining loss per epoch (mean cross-entropy per batch over {batches} batches; the \
         reference's summed loss divided by {batches}):\n\n| epoch | ours | reference | Δ |\n|---|---|---|---|\n"
    );
    for point in &study.epochs {
        let Some(ours) = &point.train_loss else {
            continue;
        };
        let theirs = reference
            .and_then(|c| c.train_loss_sum(point.epoch))
            .filter(|_| batches > 0)
            .map(|sum| sum / batches as f64);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            point.epoch,
            match ours.std {
                Some(std) => format!("{:.4} ± {std:.4}", ours.mean),
                None => format!("{:.4}", ours.mean),
            },
            theirs.map_or("–".into(), |t| format!("{t:.4}")),
            theirs.map_or("–".into(), |t| format!(
                "{:+.4} ({:+.2} %)",
                ours.mean - t,
                (ours.mean / t - 1.0) * 100.0
            ))
        );
    }
}

/// HR@20 and NDCG@20 per epoch, side by side: our mean with a ± std band over seeds, and the
/// reference as a dashed line.
pub fn plot(study: &CurveStudy, reference: Option<&ReferenceCurve>, path: &Path) -> Result<()> {
    anyhow::ensure!(
        !study.epochs.is_empty(),
        "{}: no epochs to plot",
        study.model
    );
    let root = SVGBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let (title, panels) = root.split_vertically(40);
    title
        .draw_text(
            &format!(
                "{} / {}: test per epoch under protocol official, ours (mean ± std, seeds {:?}) against the reference",
                study.dataset, study.model, study.seeds
            ),
            &(FONT, 16).into_text_style(&title),
            (20, 12),
        )
        .map_err(plot_error)?;
    let (left, right) = panels.split_horizontally(600);
    for (area, metric) in [(left, "HR@20"), (right, "NDCG@20")] {
        let ours: Vec<(f64, f64, f64)> = study
            .epochs
            .iter()
            .filter_map(|p| {
                let v = value_of(&p.metrics, metric)?;
                let std = v.std.unwrap_or(0.0);
                Some((p.epoch as f64, v.mean * 100.0, std * 100.0))
            })
            .collect();
        let theirs: Vec<(f64, f64)> = reference
            .map(|c| {
                c.epochs
                    .iter()
                    .filter_map(|e| Some((e.epoch as f64, e.metrics.get(metric)? * 100.0)))
                    .collect()
            })
            .unwrap_or_default();
        let x_hi = ours
            .iter()
            .map(|p| p.0)
            .chain(theirs.iter().map(|p| p.0))
            .fold(1.0, f64::max);
        let y_hi = ours
            .iter()
            .map(|p| p.1 + p.2)
            .chain(theirs.iter().map(|p| p.1))
            .fold(0.0, f64::max);
        let mut chart = ChartBuilder::on(&area)
            .caption(format!("test {metric} ×100"), (FONT, 15))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..x_hi, 0f64..y_hi * 1.1)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .axis_desc_style((FONT, 13))
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(plot_error)?;
        let ours_color = color(0);
        let band: Vec<(f64, f64)> = ours
            .iter()
            .map(|p| (p.0, p.1 + p.2))
            .chain(ours.iter().rev().map(|p| (p.0, p.1 - p.2)))
            .collect();
        chart
            .draw_series([Polygon::new(band, ours_color.mix(0.25).filled())])
            .map_err(plot_error)?;
        chart
            .draw_series(LineSeries::new(
                ours.iter().map(|p| (p.0, p.1)),
                ours_color.stroke_width(2),
            ))
            .map_err(plot_error)?
            .label("ours (mean ± std)")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], ours_color.stroke_width(2))
            });
        if !theirs.is_empty() {
            let their_color = color(3);
            chart
                .draw_series(DashedLineSeries::new(
                    theirs.clone(),
                    6,
                    4,
                    their_color.stroke_width(2),
                ))
                .map_err(plot_error)?
                .label("reference")
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], their_color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 12))
            .draw()
            .map_err(plot_error)?;
    }
    root.present().map_err(plot_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "intro\n\n| epoch | train s | HR@5 | MRR@5 | NDCG@5 (as logged) | HR@20 | MRR@20 | NDCG@20 (as logged) | NDCG@5 corrected | NDCG@20 corrected |\n|---|---|---|---|---|---|---|---|---|---|\n| 0 | 129 | 2.2627 | 1.0878 | 0.4671 | 5.9512 | 1.4179 | 0.3371 | 1.377 | 2.373 |\n| 1 | 140 | 3.7829 | 2.0237 | 0.8335 | 8.9298 | 2.4957 | 0.5493 | 2.458 | 3.867 |\n\nafter\n";

    #[test]
    fn reads_the_corrected_columns_of_a_logged_table() {
        let curve = parse_reference_log(LOG, "LOG.md").unwrap();
        assert_eq!(curve.epochs.len(), 2);
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        close(curve.at(0, "HR@20").unwrap(), 0.059512);
        close(curve.at(1, "NDCG@5").unwrap(), 0.02458); // corrected, not 0.8335
        close(curve.at(1, "MRR@20").unwrap(), 0.024957);
        close(curve.best("NDCG@20").unwrap(), 0.03867);
        assert_eq!(curve.at(2, "HR@20"), None);
    }

    #[test]
    fn reads_the_optional_summed_loss_column() {
        assert_eq!(
            parse_reference_log(LOG, "LOG.md")
                .unwrap()
                .train_loss_sum(0),
            None
        );
        let text = LOG
            .replace("| train s |", "| train s | summed train loss |")
            .replace("|---|---|", "|---|---|---|")
            .replace("| 0 | 129 |", "| 0 | 129 | 9609.607 |")
            .replace("| 1 | 140 |", "| 1 | 140 | 9024.154 |");
        let curve = parse_reference_log(&text, "LOG.md").unwrap();
        assert_eq!(curve.train_loss_sum(1), Some(9024.154));
        close_to(curve.at(1, "HR@20").unwrap(), 0.089298);
        let text = text.replace("9024.154", "nan?");
        assert!(parse_reference_log(&text, "LOG.md")
            .unwrap_err()
            .contains("not a number"));
    }

    fn close_to(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn a_table_without_the_columns_is_refused_by_name() {
        let text = LOG.replace("NDCG@20 corrected", "NDCG@20 fixed");
        let e = parse_reference_log(&text, "LOG.md").unwrap_err();
        assert!(e.contains("NDCG@20 corrected"), "{e}");
        let text = LOG.replace("| 1 | 140 | 3.7829", "| 1 | 140 | x");
        assert!(parse_reference_log(&text, "LOG.md")
            .unwrap_err()
            .contains("not a number"));
        assert!(parse_reference_log("no table", "x").is_err());
    }

    #[test]
    fn versus_is_points_and_share() {
        assert_eq!(versus(0.1154, Some(0.1418)), "-2.64 (81 %)");
        assert_eq!(versus(0.1, None), "–");
    }
}
