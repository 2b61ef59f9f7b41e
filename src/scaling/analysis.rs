//! From measurements to findings: per model the fitted exponents of training time against
//! |U|, Σ|E| and Σn, HAN-GNN's cost against a single-phase attention GNN on the same graphs,
//! where the dense and sparse layouts cross over, and the verdict in words.

use serde::{Deserialize, Serialize};

use super::config::Factor;
use super::fit::{geometric_mean, power_law, PowerFit};
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub fits: Vec<ModelFits>,
    pub ratio: Option<CostRatio>,
    pub crossovers: Vec<Crossover>,
    pub verdict: Vec<String>,
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
    let xy: Vec<(f64, f64)> = points.iter().map(|m| (x(m), m.train_seconds)).collect();
    power_law(&xy)
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

/// What does not grow with |U|: batches are proportional to it, so only costs per epoch or
/// per model (allocation after the trim, warm-up) can bend the exponent below 1.
const FIXED_PER_EPOCH: &str = "costs per epoch that do not grow with the batches";
/// What does not grow with the edges: per-node work and the scores over all items.
const FIXED_PER_BATCH: &str = "per-node work and the scores over all items";

/// How a fitted exponent reads against linear growth; `fixed` names what would not grow.
fn against_linear(fit: &PowerFit, fixed: &str) -> String {
    match fit.interval {
        None => "too few points for an interval".into(),
        Some(_) if fit.admits(1.0) && fit.admits(0.0) => {
            "too noisy to tell: the interval admits both no growth and linear growth".into()
        }
        Some(_) if fit.admits(1.0) => "consistent with linear growth".into(),
        Some((_, hi)) if hi < 1.0 => {
            format!("sub-linear: part of the cost does not grow with it ({fixed})")
        }
        Some(_) => "super-linear".into(),
    }
}

fn values(list: &[f64]) -> String {
    list.iter()
        .map(|v| format!("{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn verdict(analysis: &Analysis) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(f) = analysis
        .fits
        .iter()
        .find(|f| f.model == CLAIMED && !f.dense)
    {
        if let Some(u) = &f.users {
            lines.push(format!(
                "Sparse {CLAIMED}: training time ∝ |U|^{} — {}.",
                u.label(),
                against_linear(u, FIXED_PER_EPOCH)
            ));
        }
        if let Some(e) = &f.edges_per_graph {
            lines.push(format!(
                "Sparse {CLAIMED}: training time ∝ (Σ|E|)^{} at fixed |U| (K and C points) — {}.",
                e.label(),
                against_linear(e, FIXED_PER_BATCH)
            ));
        }
        if let Some(e) = &f.edges {
            lines.push(format!(
                "Sparse {CLAIMED}: training time ∝ (Σ|E|)^{} over all graph points (|U|, K, C) — {}.",
                e.label(),
                against_linear(e, FIXED_PER_BATCH)
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
                lines.push(format!(
                    "graphormer{}: training time ∝ (Σn)^{} at fixed |U| (K, C and m points, which change the nodes per graph).",
                    if f.dense { " (dense)" } else { "" },
                    n.label()
                ));
            }
        }
    }
    lines
}

pub fn analyse(measurements: &[Measurement]) -> Analysis {
    let mut analysis = Analysis {
        fits: contestants_in(measurements)
            .iter()
            .map(|c| fits_of(measurements, c))
            .collect(),
        ratio: ratio(measurements, CLAIMED, SINGLE_PHASE),
        crossovers: crossovers(measurements),
        verdict: Vec::new(),
    };
    analysis.verdict = verdict(&analysis);
    analysis
}
