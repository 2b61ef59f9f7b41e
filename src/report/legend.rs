//! Where a line plot's legend goes: in a corner of the plotting area that no line crosses, or,
//! when every corner is crossed, in a column beside the plot (never over a line).

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::plots::{plot_error, FONT};

/// The legend's font size in pixels.
pub const FONT_SIZE: u32 = 12;

/// A corner of the plotting area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corner {
    LowerRight,
    UpperRight,
    UpperLeft,
    LowerLeft,
}

impl Corner {
    /// In the order tried: lower right first, where the legend always was.
    const ALL: [Corner; 4] = [
        Corner::LowerRight,
        Corner::UpperRight,
        Corner::UpperLeft,
        Corner::LowerLeft,
    ];

    pub fn position(self) -> SeriesLabelPosition {
        match self {
            Corner::LowerRight => SeriesLabelPosition::LowerRight,
            Corner::UpperRight => SeriesLabelPosition::UpperRight,
            Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
            Corner::LowerLeft => SeriesLabelPosition::LowerLeft,
        }
    }

    /// Whether `(x, y)`, as fractions of the plotting area from its lower left, lies under a
    /// legend of `size` (fractions) in this corner.
    fn covers(self, (x, y): (f64, f64), (w, h): (f64, f64)) -> bool {
        let right = x >= 1.0 - w;
        let top = y >= 1.0 - h;
        match self {
            Corner::LowerRight => right && y <= h,
            Corner::UpperRight => right && top,
            Corner::UpperLeft => x <= w && top,
            Corner::LowerLeft => x <= w && y <= h,
        }
    }
}

/// Where the legend goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Inside(Corner),
    /// In a column right of the plot.
    Beside,
}

/// The plotting area of a 960 × 640 plot in pixels (less margins, caption and axis label areas),
/// and the legend's rows and characters as plotters draws them at [`FONT_SIZE`].
const PLOT_AREA_PX: (f64, f64) = (860.0, 525.0);
const ROW_PX: f64 = 16.7;
const CHAR_PX: f64 = 5.7;
/// The marker, padding and distance from the corner.
const EXTRA_PX: (f64, f64) = (55.0, 20.0);

/// A legend's size as fractions of the plotting area (more than 1 when it cannot fit).
pub fn size_in_plot(rows: usize, longest_label: usize) -> (f64, f64) {
    let w = CHAR_PX * longest_label as f64 + EXTRA_PX.0;
    let h = ROW_PX * rows as f64 + EXTRA_PX.1;
    (w / PLOT_AREA_PX.0, h / PLOT_AREA_PX.1)
}

/// The width in pixels of the column a legend beside the plot needs.
pub fn width_beside(longest_label: usize) -> u32 {
    (CHAR_PX * longest_label as f64 + EXTRA_PX.0).ceil() as u32
}

/// The first corner (in [`Corner::ALL`]'s order) whose legend box no line crosses (each segment
/// sampled at 20 points, so a line that passes through a box between two points counts), else
/// beside the plot.
pub fn place(
    lines: &[&[(f64, f64)]],
    (x_lo, x_hi): (f64, f64),
    (y_lo, y_hi): (f64, f64),
    size: (f64, f64),
) -> Placement {
    if size.0 >= 1.0 || size.1 >= 1.0 {
        return Placement::Beside;
    }
    let span = |lo: f64, hi: f64| (hi - lo).max(f64::MIN_POSITIVE);
    let (x_span, y_span) = (span(x_lo, x_hi), span(y_lo, y_hi));
    let samples: Vec<(f64, f64)> = lines
        .iter()
        .flat_map(|line| segments(line))
        .flat_map(|(a, b)| {
            (0..=20).map(move |k| {
                let t = f64::from(k) / 20.0;
                (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t)
            })
        })
        .map(|(x, y)| ((x - x_lo) / x_span, (y - y_lo) / y_span))
        .collect();
    Corner::ALL
        .into_iter()
        .find(|corner| !samples.iter().any(|&p| corner.covers(p, size)))
        .map_or(Placement::Beside, Placement::Inside)
}

/// A line's segments; a single point is a segment from itself to itself.
fn segments(line: &[(f64, f64)]) -> Vec<((f64, f64), (f64, f64))> {
    match line {
        [] => Vec::new(),
        [point] => vec![(*point, *point)],
        _ => line.windows(2).map(|w| (w[0], w[1])).collect(),
    }
}

/// Draws the legend, one row per entry (a short line in its colour and its label), at the top of
/// `area`, the column beside the plot.
pub fn draw_beside(
    area: &DrawingArea<SVGBackend, Shift>,
    entries: &[(String, RGBAColor)],
) -> Result<()> {
    let row = ROW_PX.round() as i32;
    let top = 60;
    for (i, (label, color)) in entries.iter().enumerate() {
        let y = top + i as i32 * row;
        area.draw(&PathElement::new(
            vec![(0, y), (20, y)],
            color.stroke_width(2),
        ))
        .map_err(plot_error)?;
        area.draw(&Text::new(
            label.clone(),
            (28, y - FONT_SIZE as i32 / 2),
            (FONT, FONT_SIZE).into_font(),
        ))
        .map_err(plot_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{place, Corner, Placement};

    #[test]
    fn the_legend_goes_to_a_corner_no_line_crosses_or_beside_the_plot() {
        let (x, y, size) = ((0.0, 100.0), (0.0, 10.0), (0.5, 0.3));
        // Nothing near the lower right: the legend stays where it always was.
        let rising: &[(f64, f64)] = &[(0.0, 1.0), (40.0, 9.0)];
        assert_eq!(
            place(&[rising], x, y, size),
            Placement::Inside(Corner::LowerRight)
        );
        // A line along the bottom: the lower right is taken, the upper right is free.
        let low: &[(f64, f64)] = &[(0.0, 1.0), (100.0, 2.0)];
        assert_eq!(
            place(&[low], x, y, size),
            Placement::Inside(Corner::UpperRight)
        );
        // Ends outside the lower right's box, middle inside it: segments are sampled.
        let diagonal: &[(f64, f64)] = &[(40.0, 0.0), (100.0, 5.0)];
        assert_eq!(
            place(&[diagonal], x, y, size),
            Placement::Inside(Corner::UpperRight)
        );
        // A line across the top and one across the bottom: every corner is crossed.
        let top: &[(f64, f64)] = &[(0.0, 9.0), (100.0, 9.0)];
        let bottom: &[(f64, f64)] = &[(0.0, 1.0), (100.0, 1.0)];
        assert_eq!(place(&[top, bottom], x, y, size), Placement::Beside);
        // A single point counts; a legend taller than the plot goes beside it.
        let point: &[(f64, f64)] = &[(90.0, 1.0)];
        assert_eq!(
            place(&[point], x, y, size),
            Placement::Inside(Corner::UpperRight)
        );
        assert_eq!(place(&[], x, y, (0.5, 1.2)), Placement::Beside);
    }
}
