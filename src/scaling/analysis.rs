//! From measurements to findings: per model the fitted exponents of training time against
//! |U|, Σ|E| and Σn, HAN-GNN's cost against a single-phase attention GNN on the same graphs,
//! where the dense and sparse layouts cross over, and the verdict in words.

use serde::{Deserialize, Serialize};

use super::config::Factor;
use super::fit::{geometric_mean, power_law, straight_line, PowerFit};
use super::measure::{Contestant, Measurement};

/// The model whose claim is tested, and the single-phase reference it is compared with.
pub const CLAIMED: &str = "han-gnn";
pub const SINGLE_PHASE: &str = "kv-attention";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFits {
    pub model: String,
    pub dense: bool,
    /// Time against the number of users (the |U| factor).
    pub users: Option<PowerFit>,
    /// Time against Σ|E| over every point that changes the graphs (|U|, K, C).
    pub edges: Option<PowerFit>,
    /// Time against Σ|E| at fixed |U| (the K and C points): edges per graph only.
    pub edges_per_graph: Option<PowerFit>,
    /// Time against Σn at fixed |U|: the K, C and m points, which change the nodes per graph.
    pub nodes: Option<PowerFit>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostRatio {
    pub model: String,
    pub reference: String,
    /// Geometric mean over the shared points of time(model) / time(reference), and its range.
    pub geometric_mean: f64,
    pub min: f64,
    pub max: f64,
    pub points: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crossover {
    pub model: String,
    pub factor: Factor,
    /// Factor values where the sparse layout trained faster, and where the dense one did.
    pub sparse_faster: Vec<f64>,
    pub dense_faster: Vec<f64>,
}

/// A point's repeated training times: the fits use the median.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointSpread {
    pub model: String,
    pub dense: bool,
    pub factor: Factor,
    pub value: f64,
    pub repeats: usize,
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub fits: Vec<ModelFits>,
    pub ratio: Option<CostRatio>,
    pub crossovers: Vec<Crossover>,
    pub verdict: Vec<String>,
    /// Per point, the spread of its repeated measurements (absent in studies made before
    /// points were repeated).
    #[serde(default)]
    pub spread: Vec<PointSpread>,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The measurements of one (model, layout, factor, value), in first-seen order.
fn groups(measurements: &[Measurement]) -> Vec<Vec<&Measurement>> {
    let mut out: Vec<Vec<&Measurement>> = Vec::new();
    for m in measurements {
        match out.iter_mut().find(|g| {
            let first = g[0];
            first.contestant() == m.contestant()
                && first.factor == m.factor
                && first.value == m.value
        }) {
            Some(group) => group.push(m),
            None => out.push(vec![m]),
        }
    }
    out
}

/// One measurement per point: the first repeat's counts with the median training and inference
/// times over its repeats (and the largest peak memory). Everything the study derives reads
/// these.
pub fn medians(measurements: &[Measurement]) -> Vec<Measurement> {
    groups(measurements)
        .into_iter()
        .map(|group| {
            let mut train: Vec<f64> = group.iter().map(|m| m.train_seconds).collect();
            let mut inference: Vec<f64> =
                group.iter().map(|m| m.inference_seconds_per_1000).collect();
            Measurement {
                train_seconds: median(&mut train),
                inference_seconds_per_1000: median(&mut inference),
                peak_rss_bytes: group.iter().filter_map(|m| m.peak_rss_bytes).max(),
                ..group[0].clone()
            }
        })
        .collect()
}

fn spread(measurements: &[Measurement]) -> Vec<PointSpread> {
    groups(measurements)
        .into_iter()
        .map(|group| {
            let mut train: Vec<f64> = group.iter().map(|m| m.train_seconds).collect();
            let first = group[0];
            PointSpread {
                model: first.model.clone(),
                dense: first.dense,
                factor: first.factor,
                value: first.value,
                repeats: group.len(),
                min: train.iter().copied().fold(f64::INFINITY, f64::min),
                max: train.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                median: median(&mut train),
            }
        })
        .collect()
}

/// Each (model, point) once, from the given factors (the default point recurs in every factor).
fn unique<'a>(
    measurements: &'a [Measurement],
    contestant: &Contestant,
    factors: &[Factor],
) -> Vec<&'a Measurement> {
    let mut out: Vec<&Measurement> = Vec::new();
    for m in measurements {
        if m.contestant() == *contestant
            && factors.contains(&m.factor)
            && !out.iter().any(|o| o.point == m.point)
        {
            out.push(m);
        }
    }
    out
}

fn fit(points: &[&Measurement], x: impl Fn(&Measurement) -> f64) -> Option<PowerFit> {
    power_law(&xy(points, x))
}

fn xy(points: &[&Measurement], x: impl Fn(&Measurement) -> f64) -> Vec<(f64, f64)> {
    points.iter().map(|m| (x(m), m.train_seconds)).collect()
}

pub fn contestants_in(measurements: &[Measurement]) -> Vec<Contestant> {
    let mut out: Vec<Contestant> = Vec::new();
    for m in measurements {
        if !out.contains(&m.contestant()) {
            out.push(m.contestant());
        }
    }
    out
}

fn fits_of(measurements: &[Measurement], c: &Contestant) -> ModelFits {
    let graph_factors = [Factor::Users, Factor::Links, Factor::Clusters];
    ModelFits {
        model: c.model.clone(),
        dense: c.dense,
        users: fit(&unique(measurements, c, &[Factor::Users]), |m| {
            m.users as f64
        }),
        edges: fit(&unique(measurements, c, &graph_factors), |m| {
            m.total_edges as f64
        }),
        edges_per_graph: fit(
            &unique(measurements, c, &[Factor::Links, Factor::Clusters]),
            |m| m.total_edges as f64,
        ),
        nodes: fit(
            &unique(
                measurements,
                c,
                &[Factor::Links, Factor::Clusters, Factor::MaxLen],
            ),
            |m| m.total_nodes as f64,
        ),
    }
}

fn ratio(measurements: &[Measurement], model: &str, reference: &str) -> Option<CostRatio> {
    let sparse = |name: &str| Contestant {
        model: name.to_string(),
        dense: false,
    };
    let factors = [Factor::Users, Factor::Links, Factor::Clusters];
    let ours = unique(measurements, &sparse(model), &factors);
    let theirs = unique(measurements, &sparse(reference), &factors);
    let ratios: Vec<f64> = ours
        .iter()
        .filter_map(|m| {
            let r = theirs.iter().find(|t| t.point == m.point)?;
            Some(m.train_seconds / r.train_seconds)
        })
        .collect();
    Some(CostRatio {
        model: model.to_string(),
        reference: reference.to_string(),
        geometric_mean: geometric_mean(&ratios)?,
        min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
        max: ratios.iter().copied().fold(0.0, f64::max),
        points: ratios.len(),
    })
}

fn crossovers(measurements: &[Measurement]) -> Vec<Crossover> {
    let mut out = Vec::new();
    for c in contestants_in(measurements).into_iter().filter(|c| c.dense) {
        for factor in Factor::ALL {
            let dense = measurements
                .iter()
                .filter(|m| m.contestant() == c && m.factor == factor);
            let (mut sparse_faster, mut dense_faster) = (Vec::new(), Vec::new());
            for d in dense {
                let Some(s) = measurements.iter().find(|m| {
                    m.model == c.model && !m.dense && m.factor == factor && m.value == d.value
                }) else {
                    continue;
                };
                if s.train_seconds <= d.train_seconds {
                    sparse_faster.push(d.value);
                } else {
                    dense_faster.push(d.value);
                }
            }
            if !sparse_faster.is_empty() || !dense_faster.is_empty() {
                out.push(Crossover {
                    model: c.model.clone(),
                    factor,
                    sparse_faster,
                    dense_faster,
                });
            }
        }
    }
    out
}

/// The one rule that turns a fitted exponent's 95 % interval into words, for every fit of
/// every study: "consistent with linear" exactly when the interval contains 1, "below linear"
/// when it lies below 1, "above linear" when it lies above; two points give no interval. A
/// bend is explained by what was measured: the intercept of a straight-line fit of the same
/// points (time = a + b·x), the part of the time that does not grow with x.
fn against_linear(fit: &PowerFit, points: &[(f64, f64)]) -> String {
    let Some((lo, hi)) = fit.interval else {
        return "too few points for an interval".into();
    };
    let fixed_part = || match straight_line(points) {
        Some((a, _)) => {
            let largest = points
                .iter()
                .max_by(|p, q| p.0.total_cmp(&q.0))
                .map_or(f64::NAN, |p| p.1);
            format!(
                "a straight-line fit puts {a:.3} s ({:.0} % of the largest point's time) in a part that does not grow with it",
                100.0 * a / largest
            )
        }
        None => "no straight-line fit".into(),
    };
    if fit.admits(1.0) {
        let also_flat = if lo <= 0.0 {
            " (the interval also admits no growth: too noisy to say more)"
        } else {
            ""
        };
        format!("consistent with linear growth{also_flat}")
    } else if hi < 1.0 {
        format!("below linear: {}", fixed_part())
    } else {
        format!("above linear: {}", fixed_part())
    }
}

fn values(list: &[f64]) -> String {
    list.iter()
        .map(|v| format!("{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn verdict(analysis: &Analysis, measurements: &[Measurement]) -> Vec<String> {
    let mut lines = Vec::new();
    let claimed = Contestant {
        model: CLAIMED.to_string(),
        dense: false,
    };
    let points = |factors: &[Factor], x: fn(&Measurement) -> f64| {
        xy(&unique(measurements, &claimed, factors), x)
    };
    let users = |m: &Measurement| m.users as f64;
    let edges = |m: &Measurement| m.total_edges as f64;
    if let Some(f) = analysis
        .fits
        .iter()
        .find(|f| f.model == CLAIMED && !f.dense)
    {
        if let Some(u) = &f.users {
            lines.push(format!(
                "Sparse {CLAIMED}: training time ∝ |U|^{} — {}.",
                u.label(),
                against_linear(u, &points(&[Factor::Users], users))
            ));
        }
        if let Some(e) = &f.edges_per_graph {
            lines.push(format!(
                "Sparse {CLAIMED}: training time ∝ (Σ|E|)^{} at fixed |U| (K and C points) — {}.",
                e.label(),
                against_linear(e, &points(&[Factor::Links, Factor::Clusters], edges))
            ));
        }
        if let Some(e) = &f.edges {
            lines.push(format!(
                "Sparse {CLAIMED}: training time ∝ (Σ|E|)^{} over all graph points (|U|, K, C) — {}.",
                e.label(),
                against_linear(
                    e,
                    &points(&[Factor::Users, Factor::Links, Factor::Clusters], edges)
                )
            ));
        }
    }
    if let Some(r) = &analysis.ratio {
        lines.push(format!(
            "{} costs {:.2}× {} on the same graphs (geometric mean over {} points, range {:.2}–{:.2}); the two-phase claim puts it near 2.",
            r.model, r.geometric_mean, r.reference, r.points, r.min, r.max
        ));
    }
    for c in &analysis.crossovers {
        let line = match (c.sparse_faster.is_empty(), c.dense_faster.is_empty()) {
            (false, true) => format!(
                "sparse faster at every point ({})",
                values(&c.sparse_faster)
            ),
            (true, false) => format!("dense faster at every point ({})", values(&c.dense_faster)),
            _ => format!(
                "sparse faster at {}; dense faster at {}",
                values(&c.sparse_faster),
                values(&c.dense_faster)
            ),
        };
        lines.push(format!(
            "{} dense vs sparse, {}: {line}.",
            c.model,
            c.factor.label()
        ));
    }
    for f in &analysis.fits {
        if f.model == "graphormer" {
            if let Some(n) = &f.nodes {
                let graphormer = Contestant {
                    model: f.model.clone(),
                    dense: f.dense,
                };
                let nodes = xy(
                    &unique(
                        measurements,
                        &graphormer,
                        &[Factor::Links, Factor::Clusters, Factor::MaxLen],
                    ),
                    |m| m.total_nodes as f64,
                );
                lines.push(format!(
                    "graphormer{}: training time ∝ (Σn)^{} at fixed |U| (K, C and m points, which change the nodes per graph) — {}.",
                    if f.dense { " (dense)" } else { "" },
                    n.label(),
                    against_linear(n, &nodes)
                ));
            }
        }
    }
    lines
}

/// The analysis of a study's measurements: every fit, ratio and crossover reads the median of
/// each point's repeats.
pub fn analyse(measurements: &[Measurement]) -> Analysis {
    let points = medians(measurements);
    let mut analysis = Analysis {
        fits: contestants_in(&points)
            .iter()
            .map(|c| fits_of(&points, c))
            .collect(),
        ratio: ratio(&points, CLAIMED, SINGLE_PHASE),
        crossovers: crossovers(&points),
        verdict: Vec::new(),
        spread: spread(measurements),
    };
    analysis.verdict = verdict(&analysis, &points);
    analysis
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit_with(interval: Option<(f64, f64)>) -> PowerFit {
        PowerFit {
            slope: interval.map_or(1.0, |(lo, hi)| (lo + hi) / 2.0),
            interval,
            points: 4,
            r_squared: 0.99,
            intercept: 0.0,
        }
    }

    #[test]
    fn one_rule_turns_an_interval_into_a_verdict() {
        // y = 2 + 1·x: a fixed part of 2 s, 2 / 10 = 20 % of the largest point's time.
        let points = [(1.0, 3.0), (2.0, 4.0), (4.0, 6.0), (8.0, 10.0)];
        let read = |interval| against_linear(&fit_with(interval), &points);
        assert_eq!(read(Some((0.9, 1.1))), "consistent with linear growth");
        assert!(read(Some((-0.2, 1.4))).contains("also admits no growth"));
        assert_eq!(
            read(Some((0.5, 0.8))),
            "below linear: a straight-line fit puts 2.000 s (20 % of the largest point's time) in a part that does not grow with it"
        );
        assert!(read(Some((1.2, 1.5))).starts_with("above linear: "));
        assert_eq!(read(None), "too few points for an interval");
        // The boundaries belong to "consistent".
        assert_eq!(read(Some((1.0, 1.3))), "consistent with linear growth");
    }

    fn measurement(value: f64, repeat: usize, seconds: f64) -> Measurement {
        let json = serde_json::json!({
            "model": "han-gnn", "dense": false, "factor": "users", "value": value,
            "repeat": repeat,
            "point": {"users": value, "links": 3, "clusters": 30, "max_len": 50, "layers": 1,
                      "tied": true, "dim": 128, "batch": 128},
            "users": 10, "train_graphs": 10, "total_edges": 100, "total_nodes": 50,
            "batches": 1, "train_seconds": seconds, "inference_samples": 10,
            "inference_seconds_per_1000": seconds, "peak_rss_bytes": null,
            "start_rss_bytes": null
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn points_are_read_at_the_median_of_their_repeats() {
        let ms = [
            measurement(0.5, 0, 3.0),
            measurement(1.0, 0, 9.0),
            measurement(0.5, 1, 1.0),
            measurement(1.0, 1, 5.0),
            measurement(0.5, 2, 2.0),
            measurement(1.0, 2, 4.0),
        ];
        let points = medians(&ms);
        assert_eq!(points.len(), 2);
        assert_eq!(
            (points[0].train_seconds, points[1].train_seconds),
            (2.0, 5.0)
        );
        let spread = spread(&ms);
        assert_eq!(
            (
                spread[1].repeats,
                spread[1].min,
                spread[1].median,
                spread[1].max
            ),
            (3, 4.0, 5.0, 9.0)
        );
        assert_eq!(median(&mut [4.0, 1.0]), 2.5);
    }
}
