//! Log–log least-squares fits: the exponent `b` of `y ≈ a·x^b`, with a 95 % confidence interval
//! from Student's t on `n − 2` degrees of freedom (statrs).

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PowerFit {
    /// The fitted exponent (slope of ln y against ln x).
    pub slope: f64,
    /// 95 % confidence interval of the slope; `None` with two points (no residual freedom).
    pub interval: Option<(f64, f64)>,
    /// Points the fit used.
    pub points: usize,
    /// Coefficient of determination on the log scale.
    pub r_squared: f64,
    /// `ln a` of `y ≈ a·x^b`.
    pub intercept: f64,
}

impl PowerFit {
    /// The fitted `y` at `x`.
    pub fn at(&self, x: f64) -> f64 {
        (self.intercept + self.slope * x.ln()).exp()
    }

    /// Whether `value` lies inside the interval (false without one).
    pub fn admits(&self, value: f64) -> bool {
        self.interval
            .is_some_and(|(lo, hi)| lo <= value && value <= hi)
    }

    /// `1.02 [0.95, 1.09]`, or `1.02 (2 points)`.
    pub fn label(&self) -> String {
        match self.interval {
            Some((lo, hi)) => format!("{:.2} [{lo:.2}, {hi:.2}]", self.slope),
            None => format!("{:.2} ({} points)", self.slope, self.points),
        }
    }
}

/// Fits `ln y = c + b ln x` over the points with positive, finite coordinates. `None` with
/// fewer than two distinct `x`.
pub fn power_law(points: &[(f64, f64)]) -> Option<PowerFit> {
    let logs: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite() && *x > 0.0 && *y > 0.0)
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    let n = logs.len();
    if n < 2 {
        return None;
    }
    let mean_x = logs.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let mean_y = logs.iter().map(|p| p.1).sum::<f64>() / n as f64;
    let sxx: f64 = logs.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx <= f64::EPSILON {
        return None;
    }
    let sxy: f64 = logs.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let syy: f64 = logs.iter().map(|p| (p.1 - mean_y).powi(2)).sum();
    let slope = sxy / sxx;
    let residual: f64 = logs
        .iter()
        .map(|p| (p.1 - mean_y - slope * (p.0 - mean_x)).powi(2))
        .sum();
    let r_squared = if syy > 0.0 { 1.0 - residual / syy } else { 1.0 };
    let interval = (n > 2)
        .then(|| StudentsT::new(0.0, 1.0, (n - 2) as f64).ok())
        .flatten()
        .map(|t| {
            let half = t.inverse_cdf(0.975) * (residual / (n - 2) as f64 / sxx).sqrt();
            (slope - half, slope + half)
        });
    Some(PowerFit {
        slope,
        interval,
        points: n,
        r_squared,
        intercept: mean_y - slope * mean_x,
    })
}

/// Least squares `y = a + b·x` on the linear scale: `(a, b)`, or `None` with fewer than two
/// distinct `x`. Its intercept `a` is the part of `y` that does not grow with `x`.
pub fn straight_line(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx <= f64::EPSILON * mean_x.abs().max(1.0) {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let b = sxy / sxx;
    Some((mean_y - b * mean_x, b))
}

/// Geometric mean of positive ratios (how many times one cost is another's across points).
pub fn geometric_mean(values: &[f64]) -> Option<f64> {
    let logs: Vec<f64> = values
        .iter()
        .filter(|v| v.is_finite() && **v > 0.0)
        .map(|v| v.ln())
        .collect();
    (!logs.is_empty()).then(|| (logs.iter().sum::<f64>() / logs.len() as f64).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_power_law_gives_its_exponent_and_a_tight_interval() {
        let points: Vec<(f64, f64)> = [1.0, 2.0, 4.0, 8.0]
            .iter()
            .map(|&x| (x, 3.0 * f64::powf(x, 1.5)))
            .collect();
        let fit = power_law(&points).unwrap();
        assert!((fit.slope - 1.5).abs() < 1e-12, "{fit:?}");
        let (lo, hi) = fit.interval.unwrap();
        assert!(hi - lo < 1e-9 && fit.admits(1.5) && !fit.admits(1.0));
        assert!((fit.r_squared - 1.0).abs() < 1e-12);
        assert!((fit.at(3.0) - 3.0 * 3f64.powf(1.5)).abs() < 1e-9);
    }

    #[test]
    fn the_interval_matches_a_hand_computed_case() {
        // ln x = 0, 1, 2; ln y = 0, 1.1, 1.9: slope 0.95, residuals -0.05, 0.1, -0.05, SSE 0.015,
        // se = sqrt(0.015 / 1 / 2) = 0.0866, t(0.975, 1) = 12.706.
        let points = [
            (1.0, 1.0),
            (1f64.exp(), 1.1f64.exp()),
            (2f64.exp(), 1.9f64.exp()),
        ];
        let fit = power_law(&points).unwrap();
        assert!((fit.slope - 0.95).abs() < 1e-12);
        let (lo, hi) = fit.interval.unwrap();
        let half = 12.706_204_736 * (0.015f64 / 2.0).sqrt();
        assert!((hi - 0.95 - half).abs() < 1e-6, "{hi} vs {}", 0.95 + half);
        assert!((0.95 - lo - half).abs() < 1e-6);
    }

    #[test]
    fn degenerate_inputs_give_no_fit_or_no_interval() {
        assert!(power_law(&[(1.0, 2.0)]).is_none());
        assert!(power_law(&[(2.0, 1.0), (2.0, 3.0)]).is_none());
        assert!(power_law(&[(0.0, 1.0), (-1.0, 2.0), (3.0, f64::NAN)]).is_none());
        let two = power_law(&[(1.0, 1.0), (2.0, 4.0)]).unwrap();
        assert!((two.slope - 2.0).abs() < 1e-12 && two.interval.is_none());
        assert_eq!(geometric_mean(&[2.0, 8.0]), Some(4.0));
        assert_eq!(geometric_mean(&[]), None);
    }

    #[test]
    fn a_straight_line_gives_its_intercept() {
        // y = 2 + 3x exactly; then a one-point and a constant-x input.
        let (a, b) = straight_line(&[(1.0, 5.0), (2.0, 8.0), (4.0, 14.0)]).unwrap();
        assert!((a - 2.0).abs() < 1e-12 && (b - 3.0).abs() < 1e-12);
        assert!(straight_line(&[(1.0, 5.0)]).is_none());
        assert!(straight_line(&[(2.0, 5.0), (2.0, 7.0)]).is_none());
    }
}
