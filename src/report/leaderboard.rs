//! Leaderboard tables from [`DatasetBoard`]s: terminal, Markdown, CSV and JSON. Metrics are
//! shown ×100 as mean ± std (n seeds); the best mean per column is marked; p-values are the
//! paired two-sided t-tests against the reference model over matched seeds.

use std::fmt::Write as _;

use comfy_table::{Cell, CellAlignment, Table};

use super::aggregate::{DatasetBoard, MetricColumn, ModelRow};
use super::table::{new_table, MeanStd};

/// The columns whose p-values the tables show (all are in the JSON and CSV).
pub const P_COLUMNS: [&str; 2] = ["NDCG@20", "HR@20"];

fn pct(ms: &MeanStd) -> String {
    match ms.std {
        Some(s) => format!("{:.2} ± {:.2}", ms.mean * 100.0, s * 100.0),
        None => format!("{:.2}", ms.mean * 100.0),
    }
}

fn seconds(ms: &MeanStd) -> String {
    if ms.mean.is_nan() {
        "–".into()
    } else {
        format!("{:.1}", ms.mean)
    }
}

fn p_value(column: Option<&MetricColumn>) -> String {
    match column.and_then(|c| c.vs_reference.as_ref()) {
        Some(test) => match (test.p_value, test.p_holm) {
            (Some(p), Some(holm)) => format!(
                "{} ({:+.2}); Holm {}",
                p_text(p),
                test.mean_difference * 100.0,
                p_text(holm)
            ),
            (Some(p), None) => format!("{} ({:+.2})", p_text(p), test.mean_difference * 100.0),
            (None, _) => format!("n={}", test.n),
        },
        None => "–".into(),
    }
}

fn megabytes(bytes: Option<u64>) -> String {
    bytes.map_or("–".into(), |b| format!("{:.0}", b as f64 / 1e6))
}

/// A p-value as every table shows it: three decimals, or `<0.001`.
pub fn p_text(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// A row's name in tables: the model, plus its variant key where the board has several.
pub fn label(row: &ModelRow, board: &DatasetBoard) -> String {
    let siblings: Vec<&ModelRow> = board.rows.iter().filter(|r| r.model == row.model).collect();
    if siblings.len() < 2 {
        return row.model.clone();
    }
    // Named by the parameters that differ (`sasrec (loss=bce)`), as in the summary; by the
    // configuration key when only training or data settings differ.
    let params: Vec<&serde_json::Value> = siblings.iter().map(|r| &r.params).collect();
    let position = siblings
        .iter()
        .position(|r| r.variant == row.variant)
        .expect("a row is its own sibling");
    match crate::report::table::variant_labels(&params).swap_remove(position) {
        differing if !differing.is_empty() => format!("{} ({differing})", row.model),
        _ => format!("{} #{}", row.model, row.variant),
    }
}

fn headers(board: &DatasetBoard, reference: &str) -> Vec<String> {
    let mut h = vec!["model".to_string(), "seeds".to_string()];
    if let Some(row) = board.rows.first() {
        h.extend(row.metrics.iter().map(|m| format!("{} ×100", m.name)));
    }
    h.extend(
        P_COLUMNS
            .iter()
            .map(|c| format!("p {c} vs {reference} (Δ); Holm")),
    );
    h.extend(
        [
            "train s/epoch",
            "test pass s",
            "epochs",
            "parameters",
            "peak RSS MB",
            "device",
        ]
        .map(String::from),
    );
    h
}

/// The cells of one row; `best` wraps the best values (bold in Markdown, `*` in the terminal).
fn row_cells(row: &ModelRow, board: &DatasetBoard, best: fn(String) -> String) -> Vec<String> {
    let mut cells = vec![label(row, board), row.seeds.len().to_string()];
    for m in &row.metrics {
        let text = pct(&m.value);
        cells.push(if m.best { best(text) } else { text });
    }
    for name in P_COLUMNS {
        cells.push(p_value(row.metrics.iter().find(|m| m.name == name)));
    }
    cells.push(
        row.train_seconds_per_epoch
            .as_ref()
            .map_or("–".into(), seconds),
    );
    cells.push(seconds(&row.test_pass_seconds));
    cells.push(format!("{:.1}", row.epochs_run.mean));
    cells.push(row.parameters.to_string());
    cells.push(megabytes(row.peak_rss_bytes));
    cells.push(row.device_kinds.join("; "));
    cells
}

/// How many tests against the reference a board's Holm adjustment covers (per metric; the
/// same for every headline metric unless a row lacks one).
fn comparisons(board: &DatasetBoard) -> usize {
    board
        .rows
        .iter()
        .flat_map(|r| &r.metrics)
        .filter_map(|m| m.vs_reference.as_ref())
        .map(|t| t.comparisons)
        .max()
        .unwrap_or(0)
}

fn caption(board: &DatasetBoard, reference: &str) -> String {
    format!(
        "{}: {} test samples (content {}); test metrics ×100, mean ± std over seeds, selected on validation; best per column marked; p: paired two-sided t-test against {reference} over matched seeds (Δ = mean difference ×100); Holm: adjusted by Holm's step-down method over the {} comparisons of that metric against {reference} on this dataset",
        board.dataset,
        board.test_samples,
        board.content_hash.chars().take(12).collect::<String>(),
        comparisons(board)
    )
}

/// One terminal table per dataset (best values marked with `*`).
pub fn terminal(boards: &[DatasetBoard], reference: &str) -> String {
    let mut out = String::new();
    for board in boards {
        let mut table = new_table(false);
        table.set_header(headers(board, reference));
        for row in &board.rows {
            let cells = row_cells(row, board, |t| format!("{t} *"));
            table.add_row(cells.into_iter().enumerate().map(|(i, c)| {
                Cell::new(c).set_alignment(if i == 0 {
                    CellAlignment::Left
                } else {
                    CellAlignment::Right
                })
            }));
        }
        let _ = writeln!(out, "{}\n{table}\n", caption(board, reference));
    }
    out
}

/// The Markdown leaderboard (best values in bold).
pub fn markdown(boards: &[DatasetBoard], reference: &str) -> String {
    let mut out = String::from("# Leaderboard\n\nGenerated by `mmsr-bench leaderboard` from the result files; do not edit.\n\n");
    if boards.is_empty() {
        out.push_str("No leaderboard rows: every run here is either part of the missing-modality study (missing-modality.md) or made under `--protocol official` (reproduction.md), whose numbers are not headline numbers.\n");
    }
    for board in boards {
        let mut table: Table = new_table(true);
        table.set_header(headers(board, reference));
        for row in &board.rows {
            table.add_row(row_cells(row, board, |t| format!("**{t}**")));
        }
        let modalities = crate::record::result::modality_note(&board.source)
            .map_or(String::new(), |note| format!("\n\nModalities: {note}."));
        let _ = writeln!(
            out,
            "## {}\n\n{}\n\nData: {}{modalities}\n\n{table}\n",
            board.dataset,
            caption(board, reference),
            board.source
        );
        let kinds: std::collections::BTreeSet<&String> =
            board.rows.iter().flat_map(|r| &r.device_kinds).collect();
        let commits: std::collections::BTreeSet<&String> =
            board.rows.iter().flat_map(|r| &r.commits).collect();
        let _ = writeln!(
            out,
            "Hardware: {}. Commits: {}.\n",
            kinds.into_iter().cloned().collect::<Vec<_>>().join("; "),
            commits.into_iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    out
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// One line per (dataset, model): raw fractions, not ×100; every metric's p-value.
pub fn csv(boards: &[DatasetBoard]) -> String {
    let names: Vec<String> = boards
        .iter()
        .flat_map(|b| b.rows.iter())
        .next()
        .map(|r| r.metrics.iter().map(|m| m.name.clone()).collect())
        .unwrap_or_default();
    let mut header = vec!["dataset", "model", "variant", "seeds"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    for n in &names {
        header.extend([
            format!("{n}_mean"),
            format!("{n}_std"),
            format!("{n}_best"),
            format!("{n}_p"),
            format!("{n}_p_holm"),
        ]);
    }
    header.extend(
        [
            "train_seconds_per_epoch",
            "test_pass_seconds",
            "epochs_run",
            "parameters",
            "peak_rss_bytes",
            "device_kinds",
            "model_version",
        ]
        .map(String::from),
    );
    let mut out = header.join(",") + "\n";
    for board in boards {
        for row in &board.rows {
            let mut cells = vec![
                csv_field(&row.dataset),
                csv_field(&row.model),
                row.variant.clone(),
                row.seeds
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            ];
            for n in &names {
                match row.metrics.iter().find(|m| &m.name == n) {
                    Some(m) => cells.extend([
                        m.value.mean.to_string(),
                        m.value.std.map_or(String::new(), |s| s.to_string()),
                        m.best.to_string(),
                        m.vs_reference
                            .as_ref()
                            .and_then(|t| t.p_value)
                            .map_or(String::new(), |p| p.to_string()),
                        m.vs_reference
                            .as_ref()
                            .and_then(|t| t.p_holm)
                            .map_or(String::new(), |p| p.to_string()),
                    ]),
                    None => cells.extend(std::iter::repeat_n(String::new(), 5)),
                }
            }
            cells.extend([
                row.train_seconds_per_epoch
                    .as_ref()
                    .map_or(String::new(), |s| s.mean.to_string()),
                row.test_pass_seconds.mean.to_string(),
                row.epochs_run.mean.to_string(),
                row.parameters.to_string(),
                row.peak_rss_bytes.map_or(String::new(), |b| b.to_string()),
                csv_field(&row.device_kinds.join("; ")),
                row.model_version.to_string(),
            ]);
            out.push_str(&cells.join(","));
            out.push('\n');
        }
    }
    out
}

/// The JSON leaderboard (every figure, raw fractions), as written to `leaderboard.json`.
pub fn json_document(boards: &[DatasetBoard], reference: &str) -> serde_json::Value {
    serde_json::json!({
        "schema": "mmsr-bench-leaderboard",
        "schema_version": 1,
        "reference": reference,
        "datasets": boards,
    })
}
