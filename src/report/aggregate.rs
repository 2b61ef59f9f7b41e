//! From result files to leaderboard rows: runs grouped by (dataset, model, configuration),
//! mean ± std over seeds of the headline test metrics, a paired two-sided t-test over matched
//! seeds against a reference model, and speed figures. Pure functions over [`RunResult`]s.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::{Digest, Sha256};
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::table::MeanStd;
use crate::config::RunConfig;
use crate::dataset::missing::MissingModality;
use crate::eval::Metric;
use crate::record::RunResult;

/// The headline columns: HR, NDCG and MRR at 5 and 20 (the paper's cut-offs).
pub const HEADLINE: [(Metric, usize); 6] = [
    (Metric::Hr, 5),
    (Metric::Ndcg, 5),
    (Metric::Mrr, 5),
    (Metric::Hr, 20),
    (Metric::Ndcg, 20),
    (Metric::Mrr, 20),
];

pub fn column_name(metric: Metric, k: usize) -> String {
    format!("{}@{k}", metric.label())
}

/// What must be equal for runs to be seeds of one experiment: the data, the model version and
/// parameters, and the training and evaluation settings (not the seed, not the hardware).
pub fn variant_key(r: &RunResult) -> String {
    configuration_key(r, r.config.missing.as_ref())
}

/// The variant key without the missing-modality condition: what the points of one study
/// curve share.
pub fn base_key(r: &RunResult) -> String {
    configuration_key(r, None)
}

fn configuration_key(r: &RunResult, missing: Option<&MissingModality>) -> String {
    let c = &r.config;
    let base = (
        &r.dataset.content_hash,
        c.model_version,
        &c.model_params,
        &c.train,
        &c.eval,
    );
    // The condition joins the key only when there is one, so complete-data keys stay as they
    // were before the missing-modality study existed.
    let text = match missing {
        None => serde_json::to_string(&base),
        Some(missing) => serde_json::to_string(&(base, missing)),
    }
    .expect("serialisable");
    hex::encode(&Sha256::digest(text.as_bytes())[..4])
}

/// A paired two-sided t-test of one metric against the reference model over matched seeds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PairedTest {
    pub reference: String,
    /// Seeds present for both models.
    pub n: usize,
    /// Mean of (this model - reference) over matched seeds.
    pub mean_difference: f64,
    pub t: Option<f64>,
    /// None below two matched seeds.
    pub p_value: Option<f64>,
    /// `p_value` adjusted by Holm's step-down method over the `comparisons` tests of this metric
    /// against the reference on this dataset (one per other row with a p-value).
    pub p_holm: Option<f64>,
    pub comparisons: usize,
}

/// Paired t-test of `x` against `reference` (same length, matched by position).
pub fn paired_t_test(x: &[f64], reference: &[f64], name: &str) -> PairedTest {
    let d: Vec<f64> = x.iter().zip(reference).map(|(a, b)| a - b).collect();
    let n = d.len();
    let mean = if n > 0 {
        d.iter().sum::<f64>() / n as f64
    } else {
        0.0
    };
    let (t, p) = if n < 2 {
        (None, None)
    } else {
        let var = d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        if var == 0.0 {
            // Constant differences: identical runs (p = 1) or an exact, noiseless shift (p = 0).
            if mean == 0.0 {
                (Some(0.0), Some(1.0))
            } else {
                (Some(mean.signum() * f64::INFINITY), Some(0.0))
            }
        } else {
            let t = mean / (var.sqrt() / (n as f64).sqrt());
            match StudentsT::new(0.0, 1.0, (n - 1) as f64) {
                // Differences that overflow (impossible metrics, which `check` reports) have no test.
                Ok(dist) if t.is_finite() => (Some(t), Some(2.0 * (1.0 - dist.cdf(t.abs())))),
                _ => (None, None),
            }
        }
    };
    PairedTest {
        reference: name.to_string(),
        n,
        mean_difference: mean,
        t,
        p_value: p,
        p_holm: None,
        comparisons: 0,
    }
}

/// Holm's step-down adjustment of the p-values of `m = p.len()` comparisons (family-wise error
/// rate): sorted ascending, the i-th smallest (0-based) is multiplied by `m - i`, a running
/// maximum keeps the order, and values are capped at 1. Returned in the input's order.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (i, &j) in order.iter().enumerate() {
        running = running.max(((m - i) as f64 * p[j]).min(1.0));
        adjusted[j] = running;
    }
    adjusted
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricColumn {
    /// `HR@20` etc.
    pub name: String,
    pub value: MeanStd,
    pub n: usize,
    /// The best mean of this column within the dataset.
    pub best: bool,
    pub vs_reference: Option<PairedTest>,
}

/// One leaderboard row: a model's runs on a dataset with one configuration.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRow {
    pub dataset: String,
    pub model: String,
    /// The configuration key (see [`variant_key`]); shown only when a model has several.
    pub variant: String,
    pub seeds: Vec<u64>,
    pub metrics: Vec<MetricColumn>,
    pub train_seconds_per_epoch: Option<MeanStd>,
    pub test_pass_seconds: MeanStd,
    pub epochs_run: MeanStd,
    pub parameters: usize,
    pub peak_rss_bytes: Option<u64>,
    pub device_kinds: Vec<String>,
    pub model_version: u32,
    pub commits: Vec<String>,
    /// The runs' model parameters, to name this row apart from other variants of its model.
    #[serde(skip)]
    pub params: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatasetBoard {
    pub dataset: String,
    pub content_hash: String,
    pub test_samples: usize,
    /// Where the data comes from and its modalities (stand-ins, absences), as the runs recorded.
    pub source: String,
    pub rows: Vec<ModelRow>,
}

fn mean_std(values: &[f64]) -> MeanStd {
    MeanStd::of(values).unwrap_or(MeanStd {
        mean: f64::NAN,
        std: None,
    })
}

/// Groups runs into leaderboard rows per dataset (datasets and models sorted by name), with
/// p-values against `reference` where that model has matched seeds. Runs of the
/// missing-modality study are not leaderboard rows (they have their own report), nor are runs
/// under `--protocol official`, whose test-selected numbers never enter a headline column
/// (`report::reproduction`).
pub fn build_boards(results: &[RunResult], reference: &str) -> Vec<DatasetBoard> {
    let mut groups: BTreeMap<(String, String, String), Vec<&RunResult>> = BTreeMap::new();
    let rows = results.iter().filter(|r| {
        r.config.missing.is_none() && r.config.train.protocol != crate::config::Protocol::Official
    });
    for r in rows {
        let key = (
            r.config.dataset.clone(),
            r.config.model.clone(),
            variant_key(r),
        );
        groups.entry(key).or_default().push(r);
    }
    let mut boards: BTreeMap<String, DatasetBoard> = BTreeMap::new();
    for ((dataset, model, variant), mut runs) in groups {
        runs.sort_by_key(|r| r.config.seed);
        let board = boards
            .entry(dataset.clone())
            .or_insert_with(|| DatasetBoard {
                dataset: dataset.clone(),
                content_hash: runs[0].dataset.content_hash.clone(),
                test_samples: runs[0].test.num_samples,
                source: runs[0].dataset.source.clone(),
                rows: Vec::new(),
            });
        let epoch_seconds: Vec<f64> = runs
            .iter()
            .filter(|r| r.epochs_run > 0)
            .map(|r| r.timings.train_seconds / r.epochs_run as f64)
            .collect();
        let set = |f: fn(&RunResult) -> String| -> Vec<String> {
            runs.iter()
                .map(|r| f(r))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        board.rows.push(ModelRow {
            params: runs[0].config.row_params(),
            dataset,
            model,
            variant,
            seeds: runs.iter().map(|r| r.config.seed).collect(),
            metrics: HEADLINE
                .iter()
                .filter_map(|&(metric, k)| {
                    let values: Vec<f64> =
                        runs.iter().filter_map(|r| r.test.get(metric, k)).collect();
                    (values.len() == runs.len()).then(|| MetricColumn {
                        name: column_name(metric, k),
                        value: mean_std(&values),
                        n: values.len(),
                        best: false,
                        vs_reference: None,
                    })
                })
                .collect(),
            train_seconds_per_epoch: (!epoch_seconds.is_empty()).then(|| mean_std(&epoch_seconds)),
            test_pass_seconds: mean_std(
                &runs
                    .iter()
                    .map(|r| r.timings.test_seconds)
                    .collect::<Vec<_>>(),
            ),
            epochs_run: mean_std(&runs.iter().map(|r| r.epochs_run as f64).collect::<Vec<_>>()),
            parameters: runs[0].num_parameters,
            peak_rss_bytes: runs.iter().filter_map(|r| r.peak_rss_bytes).max(),
            device_kinds: set(|r| r.config.device_kind.clone()),
            model_version: runs[0].config.model_version,
            commits: set(|r| r.environment.git_commit.clone()),
        });
    }
    let mut boards: Vec<DatasetBoard> = boards.into_values().collect();
    for board in &mut boards {
        // Best first by the selection metric; ties (and rows without it) by name.
        let key = |r: &ModelRow| {
            r.metrics
                .iter()
                .find(|m| m.name == "NDCG@20")
                .map_or(f64::NEG_INFINITY, |m| m.value.mean)
        };
        board.rows.sort_by(|a, b| {
            key(b)
                .total_cmp(&key(a))
                .then_with(|| a.model.cmp(&b.model))
        });
        mark_best(board);
        add_tests(board, results, reference);
    }
    boards
}

fn mark_best(board: &mut DatasetBoard) {
    for &(metric, k) in &HEADLINE {
        let name = column_name(metric, k);
        let best = board
            .rows
            .iter()
            .filter_map(|r| r.metrics.iter().find(|m| m.name == name))
            .map(|m| m.value.mean)
            .fold(f64::NEG_INFINITY, f64::max);
        for row in &mut board.rows {
            for m in row.metrics.iter_mut().filter(|m| m.name == name) {
                m.best = m.value.mean == best;
            }
        }
    }
}

/// Per metric, the paired test of every row against the reference model's row with the same
/// dataset (its only configuration, or the one with the most seeds).
fn add_tests(board: &mut DatasetBoard, results: &[RunResult], reference: &str) {
    let Some(reference_row) = board
        .rows
        .iter()
        .filter(|r| r.model == reference)
        .max_by_key(|r| r.seeds.len())
        .cloned()
    else {
        return;
    };
    let runs_of = |row: &ModelRow| -> BTreeMap<u64, &RunResult> {
        results
            .iter()
            .filter(|r| {
                r.config.dataset == row.dataset
                    && r.config.model == row.model
                    && variant_key(r) == row.variant
            })
            .map(|r| (r.config.seed, r))
            .collect()
    };
    let reference_runs = runs_of(&reference_row);
    for row in &mut board.rows {
        if row.model == reference_row.model && row.variant == reference_row.variant {
            continue;
        }
        // Ranks among other candidates are another metric: no test across them.
        let key = RunConfig::CANDIDATES_KEY;
        if row.params.get(key) != reference_row.params.get(key) {
            continue;
        }
        let runs = runs_of(row);
        let seeds: Vec<u64> = runs
            .keys()
            .filter(|s| reference_runs.contains_key(s))
            .copied()
            .collect();
        for column in &mut row.metrics {
            let Some(&(metric, k)) = HEADLINE
                .iter()
                .find(|(m, k)| column_name(*m, *k) == column.name)
            else {
                continue;
            };
            let (x, y): (Vec<f64>, Vec<f64>) = seeds
                .iter()
                .filter_map(|s| {
                    Some((
                        runs[s].test.get(metric, k)?,
                        reference_runs[s].test.get(metric, k)?,
                    ))
                })
                .unzip();
            if !x.is_empty() {
                column.vs_reference = Some(paired_t_test(&x, &y, reference));
            }
        }
    }
    adjust_for_multiple_comparisons(board);
}

/// Holm over each metric's tests on one board: the family is every row with a p-value.
fn adjust_for_multiple_comparisons(board: &mut DatasetBoard) {
    for &(metric, k) in &HEADLINE {
        let name = column_name(metric, k);
        let tests: Vec<&mut PairedTest> = board
            .rows
            .iter_mut()
            .filter_map(|r| r.metrics.iter_mut().find(|m| m.name == name))
            .filter_map(|m| m.vs_reference.as_mut())
            .filter(|t| t.p_value.is_some())
            .collect();
        let raw: Vec<f64> = tests.iter().filter_map(|t| t.p_value).collect();
        let adjusted = holm(&raw);
        let comparisons = raw.len();
        for (test, p) in tests.into_iter().zip(adjusted) {
            test.p_holm = Some(p);
            test.comparisons = comparisons;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflowing_differences_have_no_test_instead_of_a_panic() {
        let t = paired_t_test(&[1.7e308, 1.6e308], &[-1.7e308, -1.6e308], "x");
        assert!(t.t.is_none() && t.p_value.is_none());
    }

    #[test]
    fn holm_against_a_hand_computed_case() {
        // Sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06
        // (running maximum); back in the input's order.
        let adjusted = holm(&[0.01, 0.04, 0.03, 0.005]);
        let expected = [0.03, 0.06, 0.06, 0.02];
        assert_eq!(adjusted.len(), 4);
        for (a, e) in adjusted.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{adjusted:?}");
        }
        // Capped at 1; one comparison is left as it is; none is none.
        assert_eq!(holm(&[0.6, 0.7]), vec![1.0, 1.0]);
        assert_eq!(holm(&[0.2]), vec![0.2]);
        assert!(holm(&[]).is_empty());
    }

    #[test]
    fn paired_t_test_against_a_hand_computed_case() {
        // d = [0.1, 0.2, 0.3]: mean 0.2, sd 0.1, t = 0.2 / (0.1 / sqrt 3) = 3.4641, df 2,
        // two-sided p = 0.07418 (t-table).
        let test = paired_t_test(&[1.1, 2.2, 3.3], &[1.0, 2.0, 3.0], "ref");
        assert_eq!(test.n, 3);
        assert!((test.mean_difference - 0.2).abs() < 1e-12);
        assert!((test.t.unwrap() - 3.464_101_6).abs() < 1e-6);
        assert!((test.p_value.unwrap() - 0.074_180).abs() < 1e-5, "{test:?}");
        let same = paired_t_test(&[0.5, 0.6], &[0.5, 0.6], "ref");
        assert_eq!(same.p_value, Some(1.0));
        let one = paired_t_test(&[0.5], &[0.4], "ref");
        assert_eq!((one.t, one.p_value), (None, None));
    }
}
