//! The missing-modality study's report (spec §8): test NDCG@20 against the drop rate, one line
//! per model, per dropped modality; the complete-data runs of the same configuration are the
//! rate-0 point. Pure functions over result files, like the leaderboard.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;
use serde::Serialize;

use super::aggregate::base_key;
use super::plots::{color, plot_error, FONT};
use super::table::MeanStd;
use crate::dataset::missing::DropTarget;
use crate::eval::Metric;
use crate::record::RunResult;

/// The study's metric (the selection metric of every run).
pub const METRIC: (Metric, usize) = (Metric::Ndcg, 20);
const TARGETS: [DropTarget; 3] = [DropTarget::Image, DropTarget::Text, DropTarget::Both];

/// One model's curve for one dropped modality: (rate, mean ± std over seeds, seeds).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StudyPoint {
    pub rate: f64,
    pub value: MeanStd,
    pub seeds: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StudyCurve {
    pub model: String,
    pub drop: DropTarget,
    /// Rate 0 is the complete data; ascending rates.
    pub points: Vec<StudyPoint>,
}

/// A condition whose training rate differs from its evaluation rate (e.g. trained without text
/// codes, evaluated with them), next to the same model on complete data.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MismatchRow {
    pub model: String,
    pub condition: String,
    pub complete: Option<MeanStd>,
    pub value: MeanStd,
    pub seeds: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DatasetStudy {
    pub dataset: String,
    /// Which modalities the data has, and which are stand-ins ("image stand-in, text present"):
    /// dropping a stand-in measures the stand-in, not the modality.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modalities: Option<String>,
    pub metric: String,
    pub curves: Vec<StudyCurve>,
    pub trained_differently: Vec<MismatchRow>,
}

/// Whether any result belongs to the study.
pub fn has_study_runs(results: &[RunResult]) -> bool {
    results.iter().any(|r| r.config.missing.is_some())
}

/// The curves of every dataset with study runs; complete-data runs of the same seeds join as
/// the rate-0 point of the configurations that have study runs.
pub fn build_study(results: &[RunResult]) -> Vec<DatasetStudy> {
    type Key = (String, String, String);
    // (dataset, model, base key) -> (target or None for complete, rate bits, training rate
    // bits) -> runs
    type Condition = (Option<DropTarget>, u64, Option<u64>);
    let mut groups: BTreeMap<Key, BTreeMap<Condition, Vec<&RunResult>>> = BTreeMap::new();
    for r in results {
        let key = (
            r.config.dataset.clone(),
            r.config.model.clone(),
            base_key(r),
        );
        let condition = r.config.missing.map_or((None, 0, None), |m| {
            let train = m
                .trains_differently()
                .then(|| m.train_rate.map(f64::to_bits));
            (Some(m.drop), m.rate.to_bits(), train.flatten())
        });
        groups
            .entry(key)
            .or_default()
            .entry(condition)
            .or_default()
            .push(r);
    }
    let mut studies: BTreeMap<String, DatasetStudy> = BTreeMap::new();
    let variants_of = |dataset: &str, model: &str| {
        groups
            .iter()
            .filter(|((d, m, _), c)| d == dataset && m == model && c.keys().any(|k| k.0.is_some()))
            .count()
    };
    for ((dataset, model, variant), conditions) in &groups {
        let label = match variants_of(dataset, model) {
            0 => continue,
            1 => model.clone(),
            _ => format!("{model} [{variant}]"),
        };
        let point = |rate: f64, runs: &[&RunResult]| {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.test.get(METRIC.0, METRIC.1))
                .collect();
            Some(StudyPoint {
                rate,
                value: MeanStd::of(&values)?,
                seeds: runs.iter().map(|r| r.config.seed).collect(),
            })
        };
        // The complete-data point over the seeds the compared conditions ran (a point over
        // other seeds would mix seed noise into the curve).
        let complete_runs: &[&RunResult] = conditions
            .get(&(None, 0, None))
            .map_or(&[], |runs| runs.as_slice());
        let complete_over = |seeds: &[u64]| {
            let runs: Vec<&RunResult> = complete_runs
                .iter()
                .filter(|r| seeds.contains(&r.config.seed))
                .copied()
                .collect();
            point(0.0, &runs)
        };
        let study = studies
            .entry(dataset.clone())
            .or_insert_with(|| DatasetStudy {
                dataset: dataset.clone(),
                modalities: conditions
                    .values()
                    .flatten()
                    .find_map(|r| crate::record::result::modality_note(&r.dataset.source)),
                metric: format!("{}@{}", METRIC.0.label(), METRIC.1),
                curves: Vec::new(),
                trained_differently: Vec::new(),
            });
        for ((_, _, train), runs) in conditions.iter().filter(|(k, _)| k.2.is_some()) {
            let (Some(p), Some(missing)) = (point(0.0, runs), runs[0].config.missing) else {
                continue;
            };
            debug_assert!(train.is_some());
            study.trained_differently.push(MismatchRow {
                model: label.clone(),
                condition: missing.to_string(),
                complete: complete_over(&p.seeds).map(|c| c.value),
                value: p.value,
                seeds: p.seeds,
            });
        }
        for target in TARGETS {
            let mut points: Vec<StudyPoint> = conditions
                .iter()
                .filter(|((t, _, train), _)| *t == Some(target) && train.is_none())
                .filter_map(|((_, bits, _), runs)| point(f64::from_bits(*bits), runs))
                .collect();
            if points.is_empty() {
                continue;
            }
            let mut seeds: Vec<u64> = points.iter().flat_map(|p| p.seeds.clone()).collect();
            seeds.sort_unstable();
            seeds.dedup();
            points.extend(complete_over(&seeds));
            points.sort_by(|a, b| a.rate.total_cmp(&b.rate));
            study.curves.push(StudyCurve {
                model: label.clone(),
                drop: target,
                points,
            });
        }
    }
    studies
        .into_values()
        .filter(|s| !s.curves.is_empty() || !s.trained_differently.is_empty())
        .collect()
}

/// Markdown: per dataset and dropped modality, one row per model, one column per rate (×100,
/// mean ± std over seeds), and what share of the complete-data score the highest rate keeps.
pub fn markdown(studies: &[DatasetStudy]) -> String {
    let mut out = String::from("# Missing-modality study\n\nTest NDCG@20 ×100, mean ± std over seeds, against the share of history positions whose modality is hidden (fixed pattern per seed for validation and test, an independent one for training; spec §8). Rate 0 is the complete data. \"kept\": the highest rate's score as a share of the complete-data score.\n");
    out.push_str(&sections(studies, "##"));
    out
}

/// The tables of [`markdown`] without its title, each under a `heading` (e.g. `##`) line.
pub fn sections(studies: &[DatasetStudy], heading: &str) -> String {
    let mut out = String::new();
    for study in studies {
        for target in TARGETS {
            let curves: Vec<&StudyCurve> =
                study.curves.iter().filter(|c| c.drop == target).collect();
            if curves.is_empty() {
                continue;
            }
            let mut rates: Vec<f64> = curves
                .iter()
                .flat_map(|c| c.points.iter().map(|p| p.rate))
                .collect();
            rates.sort_by(f64::total_cmp);
            rates.dedup();
            let mut seeds: Vec<u64> = curves
                .iter()
                .flat_map(|c| c.points.iter().flat_map(|p| p.seeds.clone()))
                .collect();
            seeds.sort_unstable();
            seeds.dedup();
            let _ = write!(
                out,
                "\n{heading} {}: drop {} (seeds {seeds:?}{})\n\n| model | {} | kept |\n|---|{}---:|\n",
                study.dataset,
                target.name(),
                study
                    .modalities
                    .as_ref()
                    .map_or(String::new(), |m| format!("; modalities here: {m}")),
                rates
                    .iter()
                    .map(|r| format!("{r}"))
                    .collect::<Vec<_>>()
                    .join(" | "),
                "---:|".repeat(rates.len())
            );
            for curve in curves {
                let cells: Vec<String> = rates
                    .iter()
                    .map(|&rate| {
                        curve
                            .points
                            .iter()
                            .find(|p| p.rate == rate)
                            .map_or("–".into(), |p| p.value.display(100.0))
                    })
                    .collect();
                let kept = match (curve.points.first(), curve.points.last()) {
                    (Some(first), Some(last)) if first.rate == 0.0 && last.rate > 0.0 => {
                        format!("{:.0} %", 100.0 * last.value.mean / first.value.mean)
                    }
                    _ => "–".into(),
                };
                let _ = writeln!(out, "| {} | {} | {kept} |", curve.model, cells.join(" | "));
            }
        }
        if !study.trained_differently.is_empty() {
            let _ = write!(
                out,
                "\n{heading} {}: trained on one rate, evaluated on another\n\n| model | condition | complete data | this condition | difference |\n|---|---|---:|---:|---:|\n",
                study.dataset
            );
            for row in &study.trained_differently {
                let (complete, difference) = match &row.complete {
                    Some(c) => (
                        c.display(100.0),
                        format!("{:+.2}", (row.value.mean - c.mean) * 100.0),
                    ),
                    None => ("–".into(), "–".into()),
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {complete} | {} | {difference} |",
                    row.model,
                    row.condition,
                    row.value.display(100.0)
                );
            }
        }
    }
    out
}

/// One SVG per dataset: a panel per dropped modality, metric against rate, a line per model
/// with ± std bars.
pub fn plot(study: &DatasetStudy, path: &Path) -> Result<()> {
    let models: Vec<&str> = {
        let mut m: Vec<&str> = study.curves.iter().map(|c| c.model.as_str()).collect();
        m.sort_unstable();
        m.dedup();
        m
    };
    let values = study.curves.iter().flat_map(|c| c.points.iter());
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
        let std = p.value.std.unwrap_or(0.0);
        (lo.min(p.value.mean - std), hi.max(p.value.mean + std))
    });
    anyhow::ensure!(lo.is_finite(), "{}: nothing to plot", study.dataset);
    let pad = ((hi - lo) * 100.0 * 0.08).max(0.2);
    let (y_lo, y_hi) = (lo * 100.0 - pad, hi * 100.0 + pad);
    let root = SVGBackend::new(path, (1440, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let root = root
        .titled(
            &format!(
                "{}: test NDCG@20 ×100 against the share of history positions with the modality hidden",
                study.dataset
            ),
            (FONT, 18),
        )
        .map_err(plot_error)?;
    let panels = root.split_evenly((1, TARGETS.len()));
    for (panel, target) in panels.iter().zip(TARGETS) {
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("drop {}", target.name()), (FONT, 15))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(-0.03f64..1.0f64, y_lo..y_hi)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("drop rate")
            .y_desc("NDCG@20 ×100")
            .axis_desc_style((FONT, 13))
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(plot_error)?;
        let curves: Vec<&StudyCurve> = study.curves.iter().filter(|c| c.drop == target).collect();
        if curves.is_empty() {
            chart
                .draw_series([Text::new(
                    "no runs of this condition",
                    (0.3, (y_lo + y_hi) / 2.0),
                    (FONT, 14),
                )])
                .map_err(plot_error)?;
            continue;
        }
        for curve in curves {
            let i = models.iter().position(|m| *m == curve.model).unwrap_or(0);
            let style = color(i);
            let line: Vec<(f64, f64)> = curve
                .points
                .iter()
                .map(|p| (p.rate, p.value.mean * 100.0))
                .collect();
            chart
                .draw_series(LineSeries::new(line.clone(), style.stroke_width(2)))
                .map_err(plot_error)?
                .label(curve.model.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], style.stroke_width(2))
                });
            chart
                .draw_series(
                    line.iter()
                        .map(|&(x, y)| Circle::new((x, y), 3, style.filled())),
                )
                .map_err(plot_error)?;
            chart
                .draw_series(curve.points.iter().filter_map(|p| {
                    let std = p.value.std? * 100.0;
                    let mean = p.value.mean * 100.0;
                    Some(PathElement::new(
                        vec![(p.rate, mean - std), (p.rate, mean + std)],
                        style,
                    ))
                }))
                .map_err(plot_error)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::MiddleRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font((FONT, 12))
            .draw()
            .map_err(plot_error)?;
    }
    root.present().map_err(plot_error)
}
