//! Terminal and Markdown tables (comfy-table). Metrics are shown ×100, as in the MMSR paper.

use comfy_table::presets::{ASCII_MARKDOWN, UTF8_FULL_CONDENSED};
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};
use serde::Serialize;
use statrs::statistics::Statistics;

use crate::config::{Protocol, RunConfig};
use crate::dataset::missing::MissingModality;
use crate::eval::{Metric, MetricSet};

use crate::record::RunResult;

/// The metrics shown in run tables, in column order.
pub const TABLE_METRICS: [Metric; 3] = [Metric::Hr, Metric::Ndcg, Metric::Mrr];

pub fn new_table(markdown: bool) -> Table {
    let mut table = Table::new();
    table
        .load_style(if markdown {
            ASCII_MARKDOWN
        } else {
            UTF8_FULL_CONDENSED
        })
        .set_content_arrangement(ContentArrangement::Disabled);
    table
}

fn right(text: String) -> Cell {
    Cell::new(text).set_alignment(CellAlignment::Right)
}

/// One row per cut-off: HR, NDCG, MRR and the official NDCG, for the `evaluate` command.
pub fn evaluator_table(metrics: &MetricSet) -> Table {
    let mut table = new_table(false);
    table.set_header(vec![
        "K",
        "HR@K (=Recall)",
        "NDCG@K",
        "MRR@K",
        "NDCG_official@K",
    ]);
    for at in &metrics.at {
        table.add_row(vec![
            right(at.k.to_string()),
            right(format!("{:.4}", at.hr)),
            right(format!("{:.4}", at.ndcg)),
            right(format!("{:.4}", at.mrr)),
            right(format!("{:.4}", at.ndcg_official)),
        ]);
    }
    table
}

fn metric_headers(ks: &[usize]) -> Vec<String> {
    ks.iter()
        .flat_map(|k| {
            TABLE_METRICS
                .iter()
                .map(move |m| format!("{}@{k}", m.label()))
        })
        .collect()
}

/// Validation and test metrics of one run (×100).
pub fn run_table(result: &RunResult) -> Table {
    let ks = result.test.ks();
    let mut table = new_table(false);
    let mut header = vec!["split (×100)".to_string(), "samples".to_string()];
    header.extend(metric_headers(&ks));
    table.set_header(header);
    let mut rows = if result.protocol == crate::config::Protocol::Official {
        // Nothing was held out or selected: the model as its last epoch left it.
        vec![("test, last epoch (protocol official)", &result.test)]
    } else {
        vec![("validation", &result.validation), ("test", &result.test)]
    };
    if let Some(official) = &result.official_best_over_epochs_on_test {
        rows.push((
            "test, best over epochs (official reporting, optimistic)",
            official,
        ));
    }
    for (label, set) in rows {
        let mut row = vec![Cell::new(label), right(set.num_samples.to_string())];
        for &k in &ks {
            for m in TABLE_METRICS {
                row.push(right(
                    set.get(m, k)
                        .map_or("–".into(), |v| format!("{:.2}", v * 100.0)),
                ));
            }
        }
        table.add_row(row);
    }
    table
}

/// Mean and sample standard deviation of one metric over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct MeanStd {
    pub mean: f64,
    /// None with a single seed.
    pub std: Option<f64>,
}

impl MeanStd {
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let std = (values.len() > 1).then(|| values.std_dev());
        Some(Self {
            mean: values.mean(),
            std,
        })
    }

    pub(crate) fn display(&self, scale: f64) -> String {
        match self.std {
            Some(s) => format!("{:.2} ± {:.2}", self.mean * scale, s * scale),
            None => format!("{:.2}", self.mean * scale),
        }
    }
}

/// One (dataset, model) line of a summary: test metrics over seeds.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryRow {
    pub dataset: String,
    pub model: String,
    pub seeds: Vec<u64>,
    pub ks: Vec<usize>,
    /// `metric@k` -> mean ± std of the test metric.
    pub test: Vec<(String, MeanStd)>,
    pub mean_train_seconds: f64,
    /// The missing-modality condition of the runs (absent on complete data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<MissingModality>,
    /// Written only when not `validation`. Under `official` the test numbers are the official
    /// reporting (per metric its best over epochs on test): optimistic, labelled in the table.
    #[serde(skip_serializing_if = "is_validation")]
    pub protocol: Protocol,
    /// The parameters that set these runs apart from other runs of the same model in the same
    /// folder (`loss=bce`); empty, and not written, when the model has one configuration here.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

fn is_validation(protocol: &Protocol) -> bool {
    *protocol == Protocol::Validation
}

/// The test numbers a summary reports for a run: under `official` the official reporting (per
/// metric its best over epochs on test), else the validation-selected test metrics.
pub fn reported_test(r: &RunResult) -> &MetricSet {
    match (
        r.config.train.protocol,
        &r.official_best_over_epochs_on_test,
    ) {
        (Protocol::Official, Some(best)) => best,
        _ => &r.test,
    }
}

/// The model cell of a summary row: the name, and under `official` what its numbers are.
fn model_label(row: &SummaryRow) -> String {
    let model = match row.variant.as_str() {
        "" => row.model.clone(),
        variant => format!("{} ({variant})", row.model),
    };
    match row.protocol {
        Protocol::Official => {
            format!("{model} (protocol official: best per metric over epochs on test, optimistic)")
        }
        _ => model,
    }
}

/// For runs of one model with several parameter sets (`params`, serialised), the parameters
/// in which each set differs from the others: `loss=bce`, or `targets default` where a set
/// leaves the parameter out (an evaluation setting at its default, `candidates`, goes unsaid);
/// all empty when there is one set.
pub(crate) fn variant_labels(params: &[&serde_json::Value]) -> Vec<String> {
    let distinct: Vec<&serde_json::Value> = params.iter().fold(Vec::new(), |mut seen, p| {
        if !seen.contains(p) {
            seen.push(*p);
        }
        seen
    });
    if distinct.len() < 2 {
        return vec![String::new(); params.len()];
    }
    let keys: std::collections::BTreeSet<&String> = distinct
        .iter()
        .filter_map(|p| p.as_object())
        .flat_map(|o| o.keys())
        .collect();
    let differing: Vec<&String> = keys
        .into_iter()
        .filter(|k| distinct.iter().any(|p| p.get(*k) != distinct[0].get(*k)))
        .collect();
    params
        .iter()
        .map(|p| {
            let said: Vec<String> = differing
                .iter()
                .filter_map(|k| match p.get(*k) {
                    Some(serde_json::Value::String(v)) => Some(format!("{k}={v}")),
                    Some(v) => Some(format!("{k}={v}")),
                    // An evaluation setting at its default goes unsaid where something else
                    // tells the row apart (most rows have it).
                    None if k.as_str() == RunConfig::CANDIDATES_KEY => None,
                    // Stored configs leave optional parameters out at their default.
                    None => Some(format!("{k} default")),
                })
                .collect();
            if said.is_empty()
                && differing
                    .iter()
                    .any(|k| k.as_str() == RunConfig::CANDIDATES_KEY)
            {
                format!("{} default", RunConfig::CANDIDATES_KEY)
            } else {
                said.join(", ")
            }
        })
        .collect()
}

/// Groups results by (dataset, model, missing-modality condition, protocol, model parameters),
/// keeping first-appearance order.
pub fn summarize(results: &[RunResult]) -> Vec<SummaryRow> {
    let mut rows: Vec<SummaryRow> = Vec::new();
    let mut groups: Vec<Vec<&RunResult>> = Vec::new();
    // Each group's row parameters, computed once (they are compared for every result).
    let mut group_params: Vec<serde_json::Value> = Vec::new();
    for r in results {
        let params = r.config.row_params();
        match rows.iter().zip(&group_params).position(|(row, group)| {
            row.dataset == r.config.dataset
                && row.model == r.config.model
                && row.missing == r.config.missing
                && row.protocol == r.config.train.protocol
                && *group == params
        }) {
            Some(i) => groups[i].push(r),
            None => {
                rows.push(SummaryRow {
                    dataset: r.config.dataset.clone(),
                    model: r.config.model.clone(),
                    seeds: Vec::new(),
                    ks: r.test.ks(),
                    test: Vec::new(),
                    mean_train_seconds: 0.0,
                    missing: r.config.missing,
                    protocol: r.config.train.protocol,
                    variant: String::new(),
                });
                groups.push(vec![r]);
                group_params.push(params);
            }
        }
    }
    // Rows of one (dataset, model, condition, protocol) with other parameters are told apart.
    for i in 0..rows.len() {
        let siblings: Vec<usize> = (0..rows.len())
            .filter(|&j| {
                rows[j].dataset == rows[i].dataset
                    && rows[j].model == rows[i].model
                    && rows[j].missing == rows[i].missing
                    && rows[j].protocol == rows[i].protocol
            })
            .collect();
        let params: Vec<&serde_json::Value> = siblings.iter().map(|&j| &group_params[j]).collect();
        let position = siblings
            .iter()
            .position(|&j| j == i)
            .expect("a row is its own sibling");
        rows[i].variant = variant_labels(&params).swap_remove(position);
    }
    for (row, group) in rows.iter_mut().zip(&groups) {
        row.seeds = group.iter().map(|r| r.config.seed).collect();
        for &k in &row.ks.clone() {
            for m in TABLE_METRICS {
                let values: Vec<f64> = group
                    .iter()
                    .filter_map(|r| reported_test(r).get(m, k))
                    .collect();
                if let Some(ms) = MeanStd::of(&values) {
                    row.test.push((format!("{}@{k}", m.label()), ms));
                }
            }
        }
        let times: Vec<f64> = group.iter().map(|r| r.timings.train_seconds).collect();
        row.mean_train_seconds = times.iter().sum::<f64>() / times.len() as f64;
    }
    rows
}

/// Test metrics as mean ± std over seeds (×100), one row per (dataset, model).
pub fn summary_table(rows: &[SummaryRow], markdown: bool) -> Table {
    let ks = rows.first().map(|r| r.ks.clone()).unwrap_or_default();
    let mut table = new_table(markdown);
    let study = rows.iter().any(|r| r.missing.is_some());
    let mut header = vec!["dataset".to_string(), "model".to_string()];
    if study {
        header.push("missing modality".to_string());
    }
    header.push("seeds".to_string());
    header.extend(
        metric_headers(&ks)
            .into_iter()
            .map(|h| format!("{h} (×100)")),
    );
    header.push("train s/run".to_string());
    table.set_header(header);
    for row in rows {
        let mut cells = vec![Cell::new(&row.dataset), Cell::new(model_label(row))];
        if study {
            cells.push(Cell::new(
                row.missing
                    .map_or("none (complete)".to_string(), |m| m.to_string()),
            ));
        }
        cells.push(right(row.seeds.len().to_string()));
        for name in metric_headers(&ks) {
            let value = row
                .test
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, ms)| ms.display(100.0));
            cells.push(right(value.unwrap_or_else(|| "–".into())));
        }
        cells.push(right(format!("{:.1}", row.mean_train_seconds)));
        table.add_row(cells);
    }
    table
}

/// Under a summary: each dataset's source as its runs recorded it, and which modalities are
/// present, stand-ins or absent, so that no number is read without them.
pub fn data_notes(results: &[RunResult]) -> String {
    let mut seen = std::collections::BTreeMap::new();
    for r in results {
        seen.entry(r.config.dataset.clone())
            .or_insert_with(|| r.dataset.source.clone());
    }
    let mut out = String::from("\nData:\n\n");
    for (dataset, source) in seen {
        let modalities = crate::record::result::modality_note(&source)
            .map_or(String::new(), |note| format!(" Modalities: {note}."));
        out.push_str(&format!("- {dataset}: {source}.{modalities}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        let ms = MeanStd::of(&[0.1, 0.2, 0.3]).unwrap();
        assert!((ms.mean - 0.2).abs() < 1e-12);
        assert!((ms.std.unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(ms.display(100.0), "20.00 ± 10.00");
        assert_eq!(MeanStd::of(&[0.5]).unwrap().display(100.0), "50.00");
        assert!(MeanStd::of(&[]).is_none());
    }

    #[test]
    fn variants_are_labelled_by_the_parameters_that_differ() {
        let bce = serde_json::json!({"dim": 128, "loss": "bce", "heads": 2});
        let ce = serde_json::json!({"dim": 128, "loss": "cross-entropy", "heads": 2});
        let wide = serde_json::json!({"dim": 256, "loss": "cross-entropy", "heads": 2});
        assert_eq!(
            variant_labels(&[&bce, &ce, &bce]),
            vec!["loss=bce", "loss=cross-entropy", "loss=bce"]
        );
        assert_eq!(
            variant_labels(&[&bce, &wide]),
            vec!["dim=128, loss=bce", "dim=256, loss=cross-entropy"]
        );
        assert_eq!(variant_labels(&[&ce, &ce]), vec!["", ""]);
        let every = serde_json::json!({"dim": 128, "loss": "bce", "heads": 2,
            "targets": "every-position"});
        assert_eq!(
            variant_labels(&[&every, &bce]),
            vec!["targets=every-position", "targets default"]
        );
        let unseen = serde_json::json!({"dim": 128, "loss": "bce", "heads": 2,
            "candidates": "not-in-input"});
        assert_eq!(
            variant_labels(&[&unseen, &bce, &ce]),
            vec![
                "candidates=not-in-input, loss=bce",
                "loss=bce",
                "loss=cross-entropy"
            ]
        );
        assert_eq!(
            variant_labels(&[&unseen, &bce]),
            vec!["candidates=not-in-input", "candidates default"]
        );
    }
}
