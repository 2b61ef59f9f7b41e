//! SVG plots of a leaderboard (plotters, SVG backend: text stays text, no fonts needed):
//! accuracy against training time per dataset, and validation learning curves per model.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::aggregate::{variant_key, DatasetBoard};
use super::leaderboard::label;
use super::legend::{self, Placement};
use crate::eval::Metric;
use crate::record::RunResult;

const SIZE: (u32, u32) = (960, 640);
pub(crate) const FONT: &str = "sans-serif";

/// Twenty distinguishable colours (the tab10 set and a darker twin of each), so that pale
/// palette entries never carry a model.
const COLORS: [(u8, u8, u8); 20] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (17, 70, 110),
    (170, 85, 0),
    (20, 100, 20),
    (140, 20, 20),
    (90, 60, 130),
    (90, 50, 40),
    (160, 60, 130),
    (50, 50, 50),
    (120, 120, 10),
    (10, 120, 130),
];

pub(crate) fn color(i: usize) -> RGBAColor {
    let (r, g, b) = COLORS[i % COLORS.len()];
    RGBColor(r, g, b).to_rgba()
}

pub(crate) fn plot_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing a plot: {e}")
}

/// Test NDCG@20 (mean ± std over seeds) against training seconds per epoch, one labelled point
/// per model; untrained models (no epochs) are listed in the caption instead.
pub fn accuracy_vs_time(board: &DatasetBoard, path: &Path) -> Result<()> {
    let mut points = Vec::new();
    let mut untrained = Vec::new();
    for row in &board.rows {
        let Some(ndcg) = row.metrics.iter().find(|m| m.name == "NDCG@20") else {
            continue;
        };
        match &row.train_seconds_per_epoch {
            Some(time) if time.mean > 0.0 => points.push((
                label(row, board),
                time.mean,
                ndcg.value.mean * 100.0,
                ndcg.value.std.unwrap_or(0.0) * 100.0,
            )),
            _ => untrained.push(format!(
                "{} {:.2}",
                label(row, board),
                ndcg.value.mean * 100.0
            )),
        }
    }
    anyhow::ensure!(
        !points.is_empty(),
        "{}: no trained model to plot",
        board.dataset
    );
    let (x_lo, x_hi) = points.iter().fold((f64::INFINITY, 0f64), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let (y_lo, y_hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.2 - p.3), hi.max(p.2 + p.3))
        });
    let pad = ((y_hi - y_lo) * 0.1).max(0.5);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut caption = format!("{}: test NDCG@20 against training time", board.dataset);
    if !untrained.is_empty() {
        caption.push_str(&format!(" (not trained: {})", untrained.join(", ")));
    }
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, (FONT, 18))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (x_lo / 1.5..x_hi * 1.5)
                .log_scale()
                .with_key_points(log_ticks(x_lo / 1.5, x_hi * 1.5)),
            (y_lo - pad)..(y_hi + pad),
        )
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("training seconds per epoch (log scale)")
        .y_desc("test NDCG@20 ×100 (mean ± std over seeds)")
        .axis_desc_style((FONT, 14))
        .light_line_style(TRANSPARENT)
        .x_labels(8)
        .draw()
        .map_err(plot_error)?;
    for (i, (_, x, y, std)) in points.iter().enumerate() {
        let color = color(i);
        chart
            .draw_series([PathElement::new(vec![(*x, y - std), (*x, y + std)], color)])
            .map_err(plot_error)?;
        chart
            .draw_series([Circle::new((*x, *y), 4, color.filled())])
            .map_err(plot_error)?;
    }
    // Labels go right of their points (left where the plot's edge would cut them), moved apart
    // vertically where two would overlap (models of similar speed and accuracy), with a leader
    // line back to a moved label's point.
    let right_edge = root.dim_in_pixel().0 as i32 - 10;
    let centres: Vec<(i32, i32)> = points
        .iter()
        .map(|(_, x, y, _)| chart.backend_coord(&(*x, *y)))
        .collect();
    let anchors: Vec<LabelBox> = points
        .iter()
        .zip(&centres)
        .map(|((model, ..), &(px, py))| {
            let width = label_width(model);
            LabelBox {
                x: if px + 8 + width > right_edge {
                    px - 8 - width
                } else {
                    px + 8
                },
                y: py - LABEL_HEIGHT / 2,
                width,
            }
        })
        .collect();
    let markers: Vec<LabelBox> = centres
        .iter()
        .map(|&(px, py)| LabelBox {
            x: px - 5,
            y: py - 5,
            width: 10,
        })
        .collect();
    let placed = place_labels(&anchors, &markers, LABEL_HEIGHT);
    for ((((model, ..), anchor), &(px, py)), top) in
        points.iter().zip(&anchors).zip(&centres).zip(placed)
    {
        if top != anchor.y {
            let (near, far) = if anchor.x > px {
                (px + 2, anchor.x - 1)
            } else {
                (px - 2, anchor.x + anchor.width + 1)
            };
            root.draw(&PathElement::new(
                vec![(near, py), (far, top + LABEL_HEIGHT / 2)],
                BLACK.mix(0.4),
            ))
            .map_err(plot_error)?;
        }
        // A label left of its point ends at the point (its box width is only an estimate).
        let style = TextStyle::from((FONT, 12).into_font());
        let (x, style) = if anchor.x > px {
            (anchor.x, style)
        } else {
            (px - 8, style.pos(Pos::new(HPos::Right, VPos::Top)))
        };
        root.draw(&Text::new(model.clone(), (x, top), style))
            .map_err(plot_error)?;
    }
    root.present().map_err(plot_error)
}

/// Height of a 12-pixel label's box, with a little air.
const LABEL_HEIGHT: i32 = 15;

/// A label's box in pixels: its left edge, top and (estimated) width.
#[derive(Debug, Clone, Copy)]
struct LabelBox {
    x: i32,
    y: i32,
    width: i32,
}

/// Width of a 12-pixel sans-serif label, estimated generously (SVG text has no metrics here).
fn label_width(text: &str) -> i32 {
    7 * text.chars().count() as i32
}

/// Tops for labels that want to sit at `wanted` without overlapping each other or the
/// `markers` (boxes of `height` rows or less, e.g. the points): each label, top to bottom,
/// takes the free slot nearest its wanted top (searching down and up by one pixel steps), so
/// labels with room never move.
fn place_labels(wanted: &[LabelBox], markers: &[LabelBox], height: i32) -> Vec<i32> {
    let mut order: Vec<usize> = (0..wanted.len()).collect();
    order.sort_by_key(|&i| (wanted[i].y, wanted[i].x));
    let mut placed: Vec<LabelBox> = Vec::new();
    let mut tops = vec![0; wanted.len()];
    for i in order {
        let want = wanted[i];
        let overlaps = |top: i32| {
            placed.iter().chain(markers).any(|p| {
                top < p.y + height
                    && p.y < top + height
                    && want.x < p.x + p.width
                    && p.x < want.x + want.width
            })
        };
        let top = (0..)
            .flat_map(|shift| [want.y + shift, want.y - shift])
            .find(|&top| !overlaps(top))
            .expect("a free slot exists");
        tops[i] = top;
        placed.push(LabelBox { y: top, ..want });
    }
    tops
}

/// Validation NDCG@20 per epoch, averaged over each model's seeds, up to the last epoch every
/// seed reached (early stopping ends seeds at different epochs); the selection metric.
pub fn learning_curves(board: &DatasetBoard, results: &[RunResult], path: &Path) -> Result<()> {
    let mut curves: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for row in &board.rows {
        let mut per_epoch: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        let runs: Vec<&RunResult> = results
            .iter()
            .filter(|r| {
                r.config.dataset == row.dataset
                    && r.config.model == row.model
                    && variant_key(r) == row.variant
            })
            .collect();
        let common = runs
            .iter()
            .map(|r| r.learning_curve.len())
            .min()
            .unwrap_or(0);
        for r in &runs {
            for e in &r.learning_curve[..common] {
                if let Some(v) = e.validation.get(Metric::Ndcg, 20) {
                    per_epoch.entry(e.epoch).or_default().push(v * 100.0);
                }
            }
        }
        if !per_epoch.is_empty() {
            let points = per_epoch
                .into_iter()
                .map(|(e, v)| (e as f64, v.iter().sum::<f64>() / v.len() as f64))
                .collect();
            curves.push((label(row, board), points));
        }
    }
    anyhow::ensure!(
        !curves.is_empty(),
        "{}: no learning curves to plot",
        board.dataset
    );
    let all = curves.iter().flat_map(|(_, p)| p.iter());
    let (x_hi, y_lo, y_hi) = all.fold(
        (1f64, f64::INFINITY, f64::NEG_INFINITY),
        |(x, lo, hi), p| (x.max(p.0), lo.min(p.1), hi.max(p.1)),
    );
    let pad = ((y_hi - y_lo) * 0.05).max(0.5);
    let longest = curves
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let lines: Vec<&[(f64, f64)]> = curves.iter().map(|(_, p)| p.as_slice()).collect();
    let placement = legend::place(
        &lines,
        (0.0, x_hi),
        (y_lo - pad, y_hi + pad),
        legend::size_in_plot(curves.len(), longest),
    );
    let beside = legend::width_beside(longest);
    let size = match placement {
        Placement::Inside(_) => SIZE,
        Placement::Beside => (SIZE.0 + beside, SIZE.1),
    };
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let (plot_area, legend_area) = root.split_horizontally(SIZE.0);
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(
            format!(
                "{}: validation NDCG@20 per epoch (mean over seeds, up to the shortest run)",
                board.dataset
            ),
            (FONT, 18),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_hi, (y_lo - pad)..(y_hi + pad))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("validation NDCG@20 ×100")
        .axis_desc_style((FONT, 14))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(plot_error)?;
    let mut entries = Vec::new();
    for (i, (model, points)) in curves.into_iter().enumerate() {
        let color = color(i);
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(plot_error)?
            .label(model.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        entries.push((model, color));
    }
    match placement {
        Placement::Inside(corner) => chart
            .configure_series_labels()
            .position(corner.position())
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, legend::FONT_SIZE))
            .draw()
            .map_err(plot_error)?,
        Placement::Beside => legend::draw_beside(&legend_area, &entries)?,
    }
    root.present().map_err(plot_error)
}

/// Ticks at 1, 2 and 5 times the powers of ten inside `lo..hi`: a log axis over less than a
/// decade otherwise shows a single label.
pub(crate) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powi(lo.log10().floor() as i32);
    while decade <= hi {
        ticks.extend(
            [1.0, 2.0, 5.0]
                .iter()
                .map(|m| m * decade)
                .filter(|t| (lo..=hi).contains(t)),
        );
        decade *= 10.0;
    }
    ticks
}

#[cfg(test)]
mod tests {
    use super::{log_ticks, place_labels, LabelBox};

    #[test]
    fn labels_that_would_overlap_are_moved_apart_and_others_stay() {
        let at = |x, y| LabelBox { x, y, width: 100 };
        // Two labels 4 px apart (the loo study's sasrec and han-gnn), one far away.
        let wanted = [at(500, 300), at(520, 304), at(100, 302)];
        let tops = place_labels(&wanted, &[], 15);
        assert_eq!(tops[0], 300, "the first keeps its place");
        assert!((tops[1] - tops[0]).abs() >= 15, "{tops:?}");
        assert!(
            (tops[1] - 304).abs() <= 15,
            "moved no further than needed: {tops:?}"
        );
        assert_eq!(tops[2], 302, "no neighbour, no move");
        // A marker under a label pushes it off.
        let marker = LabelBox {
            x: 540,
            y: 305,
            width: 10,
        };
        let top = place_labels(&[at(500, 300)], &[marker], 15)[0];
        assert!(top + 15 <= 305 || top >= 305 + 15, "{top}");
        // Many labels on one spot end up stacked without overlap.
        let stacked = place_labels(&[at(10, 50); 5], &[], 15);
        let mut sorted = stacked.clone();
        sorted.sort();
        assert!(sorted.windows(2).all(|w| w[1] - w[0] >= 15), "{stacked:?}");
    }

    #[test]
    fn log_ticks_label_every_one_two_five_inside_the_range() {
        let close = |got: Vec<f64>, want: &[f64]| {
            assert_eq!(got.len(), want.len(), "{got:?}");
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-9 * w, "{got:?}");
            }
        };
        close(log_ticks(100.0, 1200.0), &[100.0, 200.0, 500.0, 1000.0]);
        close(log_ticks(0.45, 31.0), &[0.5, 1.0, 2.0, 5.0, 10.0, 20.0]);
        close(log_ticks(3.0e5, 4.0e6), &[5.0e5, 1.0e6, 2.0e6]);
    }
}
