//! The scaling study's report: Markdown tables per factor, the fitted exponents and the
//! verdict, and log–log SVG plots of training time against |U| and against Σ|E| (one line per
//! model, its fitted exponent in the legend).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

use super::analysis::{contestants_in, medians};
use super::fit::PowerFit;
use super::measure::{Contestant, Measurement};
use super::{Factor, Study};
use crate::report::plots::{color, log_ticks, plot_error, FONT};

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("–".into(), |b| {
        format!("{:.0}", b as f64 / (1 << 20) as f64)
    })
}

fn fit_cell(fit: &Option<PowerFit>) -> String {
    fit.as_ref().map_or("–".into(), PowerFit::label)
}

/// The fitted exponents of training time, one row per model (95 % intervals).
pub fn fits_table(study: &Study) -> String {
    let mut out = String::from("| model | vs \\|U\\| | vs Σ\\|E\\| (\\|U\\|, K, C) | vs Σ\\|E\\| at fixed \\|U\\| (K, C) | vs Σn at fixed \\|U\\| (K, C, m) |\n|---|---|---|---|---|\n");
    for f in &study.analysis.fits {
        let label = Contestant {
            model: f.model.clone(),
            dense: f.dense,
        }
        .label();
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} | {} |",
            fit_cell(&f.users),
            fit_cell(&f.edges),
            fit_cell(&f.edges_per_graph),
            fit_cell(&f.nodes)
        );
    }
    out
}

pub fn markdown(study: &Study) -> String {
    let mut out = String::new();
    let env = &study.environment;
    let _ = writeln!(out, "# Scaling study: {}\n", study.dataset);
    let _ = writeln!(
        out,
        "One training epoch over the point's training graphs (after three untimed warm-up batches) and one inference pass over {} test samples, per model and point; one factor at a time, the others at the defaults (|U| share {}, K {}, C {}, m {}, L {}, D {}, B {}). {} of the dataset's {} training users (seed {}; {} training samples in all){}. Where D differs from the code centres' width, code embeddings start at random (the cost is the same). Device {}, {} ({} torch threads), commit {}, {:.0} s in all.\n",
        study.config.inference_samples,
        study.config.defaults.users,
        study.config.defaults.links,
        study.config.defaults.clusters,
        study.config.defaults.max_len,
        study.config.defaults.layers,
        study.config.defaults.dim,
        study.config.defaults.batch,
        study.base_users,
        study.dataset_users,
        study.config.seed,
        study.dataset_train_samples,
        if study.base_users < study.dataset_users {
            ": a subsample, so that the study fits the machine"
        } else {
            ""
        },
        env.device,
        env.cpu_model,
        env.torch_threads,
        env.git_commit,
        study.total_seconds
    );
    let rounds = study
        .analysis
        .spread
        .iter()
        .map(|p| p.repeats)
        .max()
        .unwrap_or(1);
    let _ = writeln!(
        out,
        "{}\n",
        if rounds > 1 {
            format!("Each point was measured {rounds} times, in rounds over the whole study (a point's repeats never back to back); fits, ratio and crossovers read each point's median, the tables give the range.")
        } else if study.config.repeats == 1 {
            "Each point was measured once (one round, as the study's config asks: `repeats: 1`), so its fits carry no run-to-run spread.".to_string()
        } else {
            "Each point was measured once (the study predates repeated rounds), so its fits carry no run-to-run spread.".to_string()
        }
    );
    let _ = writeln!(out, "## Verdict\n");
    for line in &study.analysis.verdict {
        let _ = writeln!(out, "- {line}");
    }
    let _ = write!(
        out,
        "\n## Fitted exponents of training time (95 % interval)\n\n{}",
        fits_table(study)
    );
    let points = medians(&study.measurements);
    for factor in Factor::ALL {
        let rows: Vec<&Measurement> = points.iter().filter(|m| m.factor == factor).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n## {}\n\n| value | model | users | graphs | Σ\\|E\\| | Σn | train s: median (min–max, repeats) | ms/batch | inference ms/1000 | peak MiB (start) |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            factor.label()
        );
        for m in rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.0} | {} ({}) |",
                m.value,
                m.contestant().label(),
                m.users,
                m.train_graphs,
                m.total_edges,
                m.total_nodes,
                train_spread(study, m),
                m.seconds_per_batch() * 1e3,
                m.inference_seconds_per_1000 * 1e3,
                mib(m.peak_rss_bytes),
                mib(m.start_rss_bytes)
            );
        }
    }
    if !study.skipped.is_empty() {
        let _ = writeln!(out, "\n## Not measured\n");
        for s in &study.skipped {
            let _ = writeln!(
                out,
                "- {} at {} = {}: {}",
                Contestant {
                    model: s.model.clone(),
                    dense: s.dense
                }
                .label(),
                s.factor,
                s.value,
                s.reason
            );
        }
    }
    out
}

/// `1.23 (1.20–1.31, 3)`: a point's median training seconds and the range of its repeats.
fn train_spread(study: &Study, m: &Measurement) -> String {
    match study.analysis.spread.iter().find(|p| {
        p.model == m.model && p.dense == m.dense && p.factor == m.factor && p.value == m.value
    }) {
        Some(p) if p.repeats > 1 => {
            format!("{:.2} ({:.2}–{:.2}, {})", p.median, p.min, p.max, p.repeats)
        }
        _ => format!("{:.2} (1)", m.train_seconds),
    }
}

/// An axis label without float noise: 0.3, 12, 4.5k, 1.2M.
fn short_number(v: f64) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    match v.abs() {
        a if a >= 1e6 => format!("{}M", trim(format!("{:.2}", v / 1e6))),
        a if a >= 1e3 => format!("{}k", trim(format!("{:.2}", v / 1e3))),
        a if a >= 1.0 => trim(format!("{v:.2}")),
        _ => trim(format!("{v:.4}")),
    }
}

/// Which x a plot puts its points at.
#[derive(Debug, Clone, Copy)]
pub enum Axis {
    Users,
    Edges,
}

impl Axis {
    fn factors(self) -> &'static [Factor] {
        match self {
            Axis::Users => &[Factor::Users],
            Axis::Edges => &[Factor::Users, Factor::Links, Factor::Clusters],
        }
    }

    fn x(self, m: &Measurement) -> f64 {
        match self {
            Axis::Users => m.users as f64,
            Axis::Edges => m.total_edges as f64,
        }
    }

    pub fn file_stem(self) -> &'static str {
        match self {
            Axis::Users => "time-vs-users",
            Axis::Edges => "time-vs-edges",
        }
    }
}

/// One model's legend, points and fit.
type Series = (String, Vec<(f64, f64)>, Option<PowerFit>);

/// Training seconds per epoch against |U| or Σ|E|, log–log, one line per model.
pub fn plot(study: &Study, axis: Axis, path: &Path) -> Result<()> {
    let medians = medians(&study.measurements);
    let contestants = contestants_in(&medians);
    let mut series: Vec<Series> = Vec::new();
    for c in &contestants {
        let mut points: Vec<(f64, f64)> = medians
            .iter()
            .filter(|m| m.contestant() == *c && axis.factors().contains(&m.factor))
            .map(|m| (axis.x(m), m.train_seconds))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points.dedup_by(|a, b| a.0 == b.0);
        if points.len() < 2 {
            continue;
        }
        let fit = study
            .analysis
            .fits
            .iter()
            .find(|f| f.model == c.model && f.dense == c.dense)
            .and_then(|f| match axis {
                Axis::Users => f.users,
                Axis::Edges => f.edges,
            });
        let legend = match fit {
            Some(f) => format!("{}: slope {}", c.label(), f.label()),
            None => c.label(),
        };
        series.push((legend, points, fit));
    }
    anyhow::ensure!(!series.is_empty(), "{}: nothing to plot", study.dataset);
    let all = series.iter().flat_map(|(_, p, _)| p.iter());
    let (x_lo, x_hi, y_lo, y_hi) = all.fold(
        (f64::INFINITY, 0f64, f64::INFINITY, 0f64),
        |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
    );
    let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let (title, x_desc) = match axis {
        Axis::Users => (
            "training seconds per epoch against the number of users",
            "users |U| (log scale)",
        ),
        Axis::Edges => (
            "training seconds per epoch against the epoch's edges (|U|, K and C points; lines: fits)",
            "Σ|E| over the epoch's graphs (log scale)",
        ),
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{}: {title}", study.dataset), (FONT, 17))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (x_lo / 1.2..x_hi * 1.2)
                .log_scale()
                .with_key_points(log_ticks(x_lo / 1.2, x_hi * 1.2)),
            (y_lo / 1.3..y_hi * 1.3)
                .log_scale()
                .with_key_points(log_ticks(y_lo / 1.3, y_hi * 1.3)),
        )
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("training seconds per epoch (log scale)")
        .x_label_formatter(&|v| short_number(*v))
        .y_label_formatter(&|v| short_number(*v))
        .axis_desc_style((FONT, 14))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(plot_error)?;
    for (i, (legend, points, fit)) in series.into_iter().enumerate() {
        let style = color(i);
        // Points joined in x order within one factor; across factors only the fit is drawn,
        // since neighbouring x values may come from different factors.
        let line: Vec<(f64, f64)> = match (axis, fit) {
            (Axis::Edges, Some(f)) => {
                let (lo, hi) = (points[0].0, points[points.len() - 1].0);
                (0..=20)
                    .map(|k| lo * (hi / lo).powf(k as f64 / 20.0))
                    .map(|x| (x, f.at(x)))
                    .collect()
            }
            (Axis::Edges, None) => Vec::new(),
            (Axis::Users, _) => points.clone(),
        };
        chart
            .draw_series(LineSeries::new(line, style.stroke_width(2)))
            .map_err(plot_error)?
            .label(legend)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], style.stroke_width(2))
            });
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, style.filled())))
            .map_err(plot_error)?;
    }
    chart
        // Lower right: time grows with either axis, so that corner holds no points.
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 12))
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)
}
