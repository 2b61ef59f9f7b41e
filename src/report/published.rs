//! Published numbers beside ours: a study folder's `published.yaml` cites other papers'
//! test metrics for the same data and protocol, and `leaderboard` sets our runs' mean ± std
//! beside them in `published.md`, with the published range and where our mean falls against
//! it (a gap wider than the papers' own spread is a finding, not a footnote).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{Protocol, RunConfig};
use crate::eval::metrics::Metric;
use crate::record::result::RunResult;
use crate::report::aggregate::variant_key;
use crate::report::table::MeanStd;

/// The file a study folder may hold.
pub const FILE_NAME: &str = "published.yaml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedFile {
    /// Our dataset the citations describe.
    pub dataset: String,
    /// What every source shares (data copy, split, ranking), printed above the tables.
    pub protocol: String,
    pub models: Vec<PublishedModel>,
}

/// One model as the literature reports it, and our runs of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedModel {
    pub name: String,
    pub sources: Vec<Source>,
    pub ours: Vec<Ours>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Authors, title, venue, table.
    pub citation: String,
    /// Loss, sequence length, dimensions, as the source states them.
    pub settings: String,
    /// `HR@10: 0.0605`, fractions as published.
    pub metrics: BTreeMap<String, f64>,
}

/// Which of our runs a row summarises: the model, and the model parameters and training
/// settings that must hold. The runs a row matches must be seeds of one configuration; a row
/// that matches several says so instead of averaging them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ours {
    pub label: String,
    pub model: String,
    /// Model parameters (`loss: bce`), and `candidates: not-in-input` for runs that rank
    /// without the input items (see `RunConfig::row_params`).
    #[serde(default)]
    pub params: Map<String, Value>,
    /// Training settings (`learning_rate: 0.001`), as the result files' `config.train` has them.
    #[serde(default)]
    pub train: Map<String, Value>,
}

/// Reads and checks `path`; every error names the file.
pub fn load(path: &Path) -> Result<PublishedFile, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text, path)
}

/// Parses and checks the contents of `path`.
pub fn parse(text: &[u8], path: &Path) -> Result<PublishedFile, String> {
    let name = path.display();
    let text = std::str::from_utf8(text).map_err(|e| format!("{name}: not UTF-8: {e}"))?;
    let file: PublishedFile = serde_norway::from_str(text).map_err(|e| format!("{name}: {e}"))?;
    for model in &file.models {
        for source in &model.sources {
            for (column, value) in &source.metrics {
                parse_column(column).map_err(|e| format!("{name}: {}: {e}", model.name))?;
                if !(0.0..=1.0).contains(value) {
                    return Err(format!(
                        "{name}: {}: {column} = {value} is not a fraction in [0, 1] (published percentages must be divided by 100)",
                        model.name
                    ));
                }
            }
        }
    }
    Ok(file)
}

/// `HR@10` -> (HR, 10).
fn parse_column(column: &str) -> Result<(Metric, usize), String> {
    let refuse = || format!("unknown metric {column:?} (HR@K, NDCG@K or MRR@K)");
    let (name, k) = column.split_once('@').ok_or_else(refuse)?;
    let metric = [Metric::Hr, Metric::Ndcg, Metric::Mrr]
        .into_iter()
        .find(|m| m.label() == name)
        .ok_or_else(refuse)?;
    let k = k.parse().ok().filter(|&k| k > 0).ok_or_else(refuse)?;
    Ok((metric, k))
}

/// Our runs of `ours` on `dataset`: headline protocol only, every listed parameter equal, and
/// the candidates of the ranking as listed (`candidates: not-in-input`; unlisted: all items).
fn matching<'a>(results: &'a [RunResult], dataset: &str, ours: &Ours) -> Vec<&'a RunResult> {
    results
        .iter()
        .filter(|r| {
            let params = r.config.row_params();
            r.config.dataset == dataset
                && r.config.model == ours.model
                && r.protocol == Protocol::Validation
                && r.config.missing.is_none()
                && ours.params.iter().all(|(k, v)| params.get(k) == Some(v))
                && ours.params.get(RunConfig::CANDIDATES_KEY)
                    == params.get(RunConfig::CANDIDATES_KEY)
                && train_matches(r, &ours.train)
        })
        .collect()
}

/// Whether every listed training setting equals the run's.
fn train_matches(r: &RunResult, wanted: &Map<String, Value>) -> bool {
    let train = serde_json::to_value(&r.config.train).unwrap_or(Value::Null);
    wanted.iter().all(|(k, v)| train.get(k) == Some(v))
}

/// How many different configurations (`aggregate::variant_key`) `runs` hold.
fn configurations(runs: &[&RunResult]) -> usize {
    let keys: std::collections::BTreeSet<String> = runs.iter().map(|r| variant_key(r)).collect();
    keys.len()
}

/// "1 seed", "3 seeds".
fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Where `value` falls against the published `[lo, hi]`.
pub fn position(value: f64, lo: f64, hi: f64) -> String {
    if value > hi {
        format!("above, +{}", percent(100.0 * (value / hi - 1.0)))
    } else if value < lo {
        format!("below, -{}", percent(100.0 * (1.0 - value / lo)))
    } else {
        "within".into()
    }
}

/// A positive gap in per cent: whole numbers, one decimal under 1 % (so a gap never reads
/// "0 %").
fn percent(gap: f64) -> String {
    if gap < 0.95 {
        format!("{gap:.1} %")
    } else {
        format!("{gap:.0} %")
    }
}

fn range(sources: &[Source], column: &str) -> Option<(f64, f64)> {
    let values: Vec<f64> = sources
        .iter()
        .filter_map(|s| s.metrics.get(column).copied())
        .collect();
    let lo = values.iter().copied().reduce(f64::min)?;
    let hi = values.iter().copied().reduce(f64::max)?;
    Some((lo, hi))
}

fn fraction(v: &MeanStd) -> String {
    match v.std {
        Some(s) => format!("{:.4} ± {:.4}", v.mean, s),
        None => format!("{:.4}", v.mean),
    }
}

/// One model's table: the sources, their range, our rows.
fn model_table(
    model: &PublishedModel,
    results: &[RunResult],
    dataset: &str,
    heading: &str,
) -> String {
    let mut columns: Vec<&String> = Vec::new();
    for source in &model.sources {
        for column in source.metrics.keys() {
            if !columns.contains(&column) {
                columns.push(column);
            }
        }
    }
    // Cut-off first, then HR, NDCG, MRR: the papers' own order.
    columns.sort_by_key(|c| parse_column(c).map(|(m, k)| (k, m as u8)).unwrap_or((0, 0)));
    let mut out = format!("{heading} {}\n\n| | settings |", model.name);
    for column in &columns {
        out.push_str(&format!(" {column} |"));
    }
    out.push_str(&format!("\n|---|---|{}\n", "---:|".repeat(columns.len())));
    for source in &model.sources {
        out.push_str(&format!("| {} | {} |", source.citation, source.settings));
        for column in &columns {
            match source.metrics.get(*column) {
                Some(v) => out.push_str(&format!(" {v:.4} |")),
                None => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
    if model.sources.len() > 1 {
        out.push_str("| published range | |");
        for column in &columns {
            match range(&model.sources, column) {
                Some((lo, hi)) => out.push_str(&format!(" {lo:.4}–{hi:.4} |")),
                None => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
    for ours in &model.ours {
        let runs = matching(results, dataset, ours);
        let mixed = configurations(&runs);
        if mixed > 1 {
            out.push_str(&format!(
                "| **ours**: {} | matches runs of {mixed} different configurations: add `params` or `train` to this row to pick one |{}\n",
                ours.label,
                " – |".repeat(columns.len())
            ));
            continue;
        }
        let epochs: Vec<usize> = runs.iter().map(|r| r.epochs_run).collect();
        let seeds = counted(runs.len(), "seed");
        let settings = match (epochs.iter().min(), epochs.iter().max()) {
            (Some(lo), Some(hi)) if lo == hi => format!("{seeds}, {}", counted(*lo, "epoch")),
            (Some(lo), Some(hi)) => format!("{seeds}, {lo}–{hi} epochs"),
            _ => "no runs here yet".into(),
        };
        out.push_str(&format!("| **ours**: {} | {settings} |", ours.label));
        for column in &columns {
            let (metric, k) = parse_column(column).expect("checked on load");
            let values: Vec<f64> = runs.iter().filter_map(|r| r.test.get(metric, k)).collect();
            match (MeanStd::of(&values), range(&model.sources, column)) {
                (Some(v), Some((lo, hi))) => out.push_str(&format!(
                    " {} ({}) |",
                    fraction(&v),
                    position(v.mean, lo, hi)
                )),
                (Some(v), None) => out.push_str(&format!(" {} |", fraction(&v))),
                (None, _) => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
    out
}

/// One table per model, each under a `heading` (`##`, `####`) with the model's name.
pub fn tables(file: &PublishedFile, results: &[RunResult], heading: &str) -> String {
    let mut out = String::new();
    for model in &file.models {
        out.push_str(&model_table(model, results, &file.dataset, heading));
        out.push('\n');
    }
    out
}

/// What the numbers are, under the tables.
pub fn legend() -> &'static str {
    "Test metrics as fractions, as the papers print them (not ×100). Ours: mean ± std over seeds (one seed: the value), each run's model selected on validation, never on test. In brackets: where our mean falls against the lowest and highest published value."
}

/// `published.md`: the protocol, then one table per model.
pub fn markdown(file: &PublishedFile, results: &[RunResult]) -> String {
    format!(
        "# Published numbers beside ours: `{}`\n\n{}\n\n{} Made by `mmsr-bench leaderboard` from this folder's result files and `{FILE_NAME}`.\n\n{}",
        file.dataset,
        file.protocol.trim(),
        legend(),
        tables(file, results, "##")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_parse_and_unknown_ones_are_refused() {
        assert_eq!(parse_column("NDCG@10").unwrap(), (Metric::Ndcg, 10));
        assert_eq!(parse_column("HR@5").unwrap(), (Metric::Hr, 5));
        for bad in ["Recall@10", "HR", "HR@0", "HR@x", "NDCG_official@5"] {
            assert!(parse_column(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn position_is_relative_to_the_nearest_end() {
        assert_eq!(position(0.05, 0.04, 0.06), "within");
        assert_eq!(position(0.09, 0.0605, 0.0627), "above, +44 %");
        assert_eq!(position(0.03, 0.04, 0.05), "below, -25 %");
        assert_eq!(position(0.0817, 0.0821, 0.083), "below, -0.5 %");
        assert_eq!(position(0.0831, 0.0821, 0.083), "above, +0.1 %");
    }

    #[test]
    fn counts_are_singular_or_plural() {
        assert_eq!(counted(1, "seed"), "1 seed");
        assert_eq!(counted(3, "epoch"), "3 epochs");
    }

    #[test]
    fn a_file_with_percentages_or_unknown_fields_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let good = "dataset: d\nprotocol: p\nmodels:\n  - name: SASRec\n    sources:\n      - citation: c\n        settings: s\n        metrics: {HR@10: 0.0605}\n    ours:\n      - {label: l, model: sasrec, params: {loss: bce}}\n";
        std::fs::write(&path, good).unwrap();
        let file = load(&path).unwrap();
        assert_eq!(file.models[0].ours[0].params["loss"], "bce");
        std::fs::write(&path, good.replace("0.0605", "6.05")).unwrap();
        let e = load(&path).unwrap_err();
        assert!(
            e.contains("published.yaml") && e.contains("divided by 100"),
            "{e}"
        );
        std::fs::write(&path, good.replace("settings: s", "setings: s")).unwrap();
        assert!(load(&path).unwrap_err().contains("published.yaml"));
        std::fs::write(&path, good.replace("HR@10", "Recall@10")).unwrap();
        assert!(load(&path).unwrap_err().contains("Recall@10"));
    }
}
