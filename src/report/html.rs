//! The leaderboard as one self-contained static page (`leaderboard --html` writes `index.html`):
//! per dataset a table sortable by any column, the data's source with its stand-in and absent
//! modalities, provenance, the folder's SVG plots inline, the paired t-tests against the
//! reference with Holm-adjusted p-values, and the missing-modality study. Inline CSS and a small
//! vanilla script; nothing is fetched when the page is viewed. Rows are rendered here; every
//! numeric cell keeps its raw figure (as in leaderboard.json) in `data-sort`, which the script
//! sorts on. Every text that comes from result files is escaped; an SVG is embedded only when
//! it holds nothing but inert drawing elements.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use super::aggregate::{build_boards, DatasetBoard, PairedTest};
use super::leaderboard::{label, p_text, P_COLUMNS};
use super::missing::{self, DatasetStudy};
use super::plots;
use super::table::MeanStd;
use crate::dataset::missing::DropTarget;
use crate::record::RunResult;

/// The plots of one dataset, as `leaderboard` names them (`<dataset>-<kind>.svg`).
pub const PLOT_KINDS: [&str; 3] = ["accuracy-vs-time", "learning-curves", "missing-modality"];

/// Text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The Holm-adjusted p-values of one metric's column (None where a row has no p-value) and the
/// number of comparisons they were adjusted over.
pub fn holm_column(board: &DatasetBoard, metric: &str) -> (Vec<Option<f64>>, usize) {
    let tests: Vec<Option<&PairedTest>> = board
        .rows
        .iter()
        .map(|r| {
            let column = r.metrics.iter().find(|m| m.name == metric)?;
            column.vs_reference.as_ref()
        })
        .collect();
    let comparisons = tests
        .iter()
        .flatten()
        .map(|t| t.comparisons)
        .max()
        .unwrap_or(0);
    (
        tests.iter().map(|t| t.and_then(|t| t.p_holm)).collect(),
        comparisons,
    )
}

/// The SVG markup of the plots of `datasets` found in `dir` (file name -> markup).
pub fn read_plots<'a>(
    dir: &Path,
    datasets: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeMap<String, String>> {
    let mut plots = BTreeMap::new();
    for dataset in datasets {
        for kind in PLOT_KINDS {
            let name = format!("{dataset}-{kind}.svg");
            let path = dir.join(&name);
            if path.is_file() {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                plots.insert(name, text);
            }
        }
    }
    Ok(plots)
}

/// The datasets of the boards and the studies, each once.
pub fn datasets<'a>(boards: &'a [DatasetBoard], studies: &'a [DatasetStudy]) -> Vec<&'a str> {
    let names: BTreeSet<&str> = boards
        .iter()
        .map(|b| b.dataset.as_str())
        .chain(studies.iter().map(|s| s.dataset.as_str()))
        .collect();
    names.into_iter().collect()
}

/// The page `leaderboard --results ... --html` writes for `results`, with its plots drawn afresh
/// (in a temporary folder) rather than read from a folder: what `check` compares a committed
/// index.html with. A plot that cannot be drawn is left out, as `leaderboard` leaves it out.
pub fn fresh_page(results: &[RunResult], reference: &str) -> Result<String> {
    let boards = build_boards(results, reference);
    let studies = if missing::has_study_runs(results) {
        missing::build_study(results)
    } else {
        Vec::new()
    };
    let dir = tempfile::tempdir().context("creating a temporary folder for the plots")?;
    let at = |dataset: &str, kind: &str| dir.path().join(format!("{dataset}-{kind}.svg"));
    for board in &boards {
        let _ = plots::accuracy_vs_time(board, &at(&board.dataset, PLOT_KINDS[0]));
        let _ = plots::learning_curves(board, results, &at(&board.dataset, PLOT_KINDS[1]));
    }
    for study in studies.iter().filter(|s| !s.curves.is_empty()) {
        let _ = missing::plot(study, &at(&study.dataset, PLOT_KINDS[2]));
    }
    let svgs = read_plots(dir.path(), datasets(&boards, &studies))?;
    Ok(page(&boards, &studies, reference, &svgs))
}

/// Inert SVG drawing elements: what plotters writes, and nothing that runs or fetches.
const SVG_TAGS: [&str; 13] = [
    "svg", "g", "rect", "line", "polyline", "polygon", "path", "circle", "ellipse", "text",
    "tspan", "title", "desc",
];

/// The markup of an SVG file ready to be inlined (its XML declaration dropped), or None when it
/// holds anything beyond inert drawing elements (scripts, links, event handlers, comments,
/// foreign content): a file in a folder is not trusted merely for being there.
pub fn inline_svg(text: &str) -> Option<String> {
    let mut body = text.trim();
    if body.starts_with("<?xml") {
        body = body[body.find("?>")? + 2..].trim_start();
    }
    if !body.starts_with("<svg") {
        return None;
    }
    let mut rest = body;
    while let Some(start) = rest.find('<') {
        let end = start + rest[start..].find('>')?;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        let tag = tag.strip_prefix('/').unwrap_or(tag);
        let tag = tag.strip_suffix('/').unwrap_or(tag);
        let name_end = tag.find(|c: char| c.is_whitespace()).unwrap_or(tag.len());
        if !SVG_TAGS.contains(&&tag[..name_end]) || !inert_attributes(&tag[name_end..]) {
            return None;
        }
    }
    Some(body.to_string())
}

/// Attributes `name="value"` with plain names, no event handler, no link, no stylesheet.
fn inert_attributes(mut text: &str) -> bool {
    loop {
        text = text.trim_start();
        if text.is_empty() {
            return true;
        }
        let Some(eq) = text.find('=') else {
            return false;
        };
        let name = text[..eq].trim().to_ascii_lowercase();
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-:_".contains(c));
        if !plain || name.starts_with("on") || name.contains("href") || name == "style" {
            return false;
        }
        let value = text[eq + 1..].trim_start();
        let Some(quote) = value.chars().next().filter(|q| *q == '"' || *q == '\'') else {
            return false;
        };
        let Some(close) = value[1..].find(quote) else {
            return false;
        };
        if value[1..1 + close].to_ascii_lowercase().contains("url(") {
            return false;
        }
        text = &value[close + 2..];
    }
}

pub use crate::record::result::modality_labels;

/// A raw figure for `data-sort` (empty for a missing or non-finite one: sorted last).
fn raw(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite())
        .map_or(String::new(), |v| v.to_string())
}

fn pct(ms: &MeanStd) -> String {
    if !ms.mean.is_finite() {
        return "–".into();
    }
    ms.display(100.0)
}

fn fixed(x: Option<f64>, decimals: usize) -> String {
    x.filter(|v| v.is_finite())
        .map_or("–".into(), |v| format!("{v:.decimals$}"))
}

/// One `<td>`: its column key, raw sort value, extra attributes and (unescaped) text.
fn td(out: &mut String, key: &str, sort: &str, extra: &str, class: &str, text: &str) {
    let _ = write!(
        out,
        "<td data-key=\"{}\" data-sort=\"{}\"{extra} class=\"{class}\">{}</td>",
        escape(key),
        escape(sort),
        escape(text)
    );
}

/// A numeric `<td>` whose raw figure is `value`.
fn number(out: &mut String, key: &str, value: Option<f64>, text: &str) {
    td(out, key, &raw(value), "", "num", text);
}

fn th(out: &mut String, key: &str, title: &str, numeric: bool) {
    let _ = write!(
        out,
        "<th scope=\"col\" data-key=\"{}\" data-type=\"{}\" tabindex=\"0\" title=\"sort\">{}</th>",
        escape(key),
        if numeric { "number" } else { "text" },
        escape(title)
    );
}

fn board_table(out: &mut String, board: &DatasetBoard, reference: &str) {
    let names: Vec<&str> = board.rows.first().map_or(Vec::new(), |r| {
        r.metrics.iter().map(|m| m.name.as_str()).collect()
    });
    let holms: Vec<(Vec<Option<f64>>, usize)> =
        P_COLUMNS.iter().map(|c| holm_column(board, c)).collect();
    let _ = write!(
        out,
        "<table class=\"board sortable\" data-dataset=\"{}\"><caption>Test metrics ×100, mean ± std over seeds, selected on validation; the best mean per column in bold. Click a header to sort.</caption><thead><tr>",
        escape(&board.dataset)
    );
    let mut columns = vec![("model".to_string(), "model".to_string(), false)];
    columns.push(("seeds".into(), "seeds".into(), true));
    columns.extend(
        names
            .iter()
            .map(|n| (format!("metric:{n}"), format!("{n} ×100"), true)),
    );
    for (name, (_, m)) in P_COLUMNS.iter().zip(&holms) {
        columns.push((
            format!("p:{name}"),
            format!("p {name} vs {reference} (Δ)"),
            true,
        ));
        columns.push((
            format!("holm:{name}"),
            format!("Holm p {name} (m = {m})"),
            true,
        ));
    }
    for (key, title) in [
        ("train_seconds_per_epoch", "train s/epoch"),
        ("test_pass_seconds", "test pass s"),
        ("epochs_run", "epochs"),
        ("parameters", "parameters"),
        ("peak_rss_bytes", "peak RSS MB"),
    ] {
        columns.push((key.into(), title.into(), true));
    }
    columns.push(("device_kinds".into(), "device".into(), false));
    for (key, title, numeric) in &columns {
        th(out, key, title, *numeric);
    }
    out.push_str("</tr></thead><tbody>");
    for (index, row) in board.rows.iter().enumerate() {
        let _ = write!(
            out,
            "<tr data-index=\"{index}\" data-model=\"{}\" data-variant=\"{}\">",
            escape(&row.model),
            escape(&row.variant)
        );
        let name = label(row, board);
        let reference_row = row.model == reference;
        let class = if reference_row {
            "text reference"
        } else {
            "text"
        };
        td(out, "model", &name, "", class, &name);
        let seeds = row.seeds.len().to_string();
        td(out, "seeds", &seeds, "", "num", &seeds);
        for name in &names {
            let key = format!("metric:{name}");
            let Some(m) = row.metrics.iter().find(|m| m.name == *name) else {
                td(out, &key, "", "", "num", "–");
                continue;
            };
            let std = m
                .value
                .std
                .map_or(String::new(), |s| format!(" data-std=\"{}\"", raw(Some(s))));
            let class = if m.best { "num best" } else { "num" };
            td(
                out,
                &key,
                &raw(Some(m.value.mean)),
                &std,
                class,
                &pct(&m.value),
            );
        }
        for (name, (adjusted, _)) in P_COLUMNS.iter().zip(&holms) {
            let column = row.metrics.iter().find(|m| m.name == *name);
            let (p, text, extra) = match column.and_then(|m| m.vs_reference.as_ref()) {
                Some(t) => {
                    let delta = t.mean_difference;
                    let text = t.p_value.map_or(format!("n={}", t.n), |p| {
                        format!("{} ({:+.2})", p_text(p), delta * 100.0)
                    });
                    let extra = format!(" data-n=\"{}\" data-delta=\"{}\"", t.n, raw(Some(delta)));
                    (t.p_value, text, extra)
                }
                None => (None, "–".into(), String::new()),
            };
            td(out, &format!("p:{name}"), &raw(p), &extra, "num", &text);
            let h = adjusted[index];
            number(
                out,
                &format!("holm:{name}"),
                h,
                &h.map_or("–".into(), p_text),
            );
        }
        let per_epoch = row.train_seconds_per_epoch.as_ref().map(|t| t.mean);
        number(
            out,
            "train_seconds_per_epoch",
            per_epoch,
            &fixed(per_epoch, 1),
        );
        let test_pass = Some(row.test_pass_seconds.mean);
        number(out, "test_pass_seconds", test_pass, &fixed(test_pass, 1));
        let epochs = Some(row.epochs_run.mean);
        number(out, "epochs_run", epochs, &fixed(epochs, 1));
        let parameters = row.parameters.to_string();
        td(out, "parameters", &parameters, "", "num", &parameters);
        let rss = row.peak_rss_bytes.map(|b| b as f64 / 1e6);
        let rss_raw = row.peak_rss_bytes.map_or(String::new(), |b| b.to_string());
        td(out, "peak_rss_bytes", &rss_raw, "", "num", &fixed(rss, 0));
        let devices = row.device_kinds.join("; ");
        td(out, "device_kinds", &devices, "", "text", &devices);
        out.push_str("</tr>");
    }
    // The table scrolls on its own (table-wrap); the note stays in view under it.
    out.push_str("</tbody></table></div>");
    let counts: Vec<String> = P_COLUMNS
        .iter()
        .zip(&holms)
        .map(|(name, (_, m))| format!("{name}: m = {m}"))
        .collect();
    let _ = write!(
        out,
        "<p class=\"note\">p: paired two-sided t-test against {} over matched seeds (Δ = mean difference ×100; n=… where fewer than two seeds match). Holm p: the same p-values adjusted by Holm's step-down method over the m comparisons against {} on this dataset for that metric ({}); “–”: no test.</p>",
        escape(reference),
        escape(reference),
        escape(&counts.join("; "))
    );
}

fn provenance(out: &mut String, board: &DatasetBoard) {
    let kinds: BTreeSet<&String> = board.rows.iter().flat_map(|r| &r.device_kinds).collect();
    let commits: BTreeSet<&String> = board.rows.iter().flat_map(|r| &r.commits).collect();
    let seeds: BTreeSet<u64> = board
        .rows
        .iter()
        .flat_map(|r| r.seeds.iter().copied())
        .collect();
    let list = |items: Vec<String>| {
        items
            .iter()
            .map(|i| format!("<li>{}</li>", escape(i)))
            .collect::<String>()
    };
    let _ = write!(
        out,
        "<aside class=\"provenance\"><h3>Provenance</h3><dl><div><dt>Hardware</dt><dd><ul>{}</ul></dd></div><div><dt>Commits</dt><dd><ul class=\"mono\">{}</ul></dd></div><div><dt>Seeds</dt><dd>{}</dd></div><div><dt>Test samples</dt><dd>{}</dd></div><div><dt>Content hash</dt><dd class=\"mono\">{}</dd></div></dl></aside>",
        list(kinds.into_iter().cloned().collect()),
        list(commits.into_iter().cloned().collect()),
        escape(&seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
        board.test_samples,
        escape(&board.content_hash)
    );
}

fn figures(out: &mut String, dataset: &str, kinds: &[&str], svgs: &BTreeMap<String, String>) {
    for kind in kinds {
        let name = format!("{dataset}-{kind}.svg");
        let Some(text) = svgs.get(&name) else {
            continue;
        };
        let body = inline_svg(text).unwrap_or_else(|| {
            "<p class=\"note\">(not embedded: the file holds more than drawing elements)</p>".into()
        });
        let _ = write!(
            out,
            "<figure class=\"plot\">{body}<figcaption>plots/{}</figcaption></figure>",
            escape(&name)
        );
    }
}

fn study_tables(out: &mut String, study: &DatasetStudy) {
    for (target, hidden) in [
        (DropTarget::Image, "the image modality"),
        (DropTarget::Text, "the text modality"),
        (DropTarget::Both, "each modality (independently)"),
    ] {
        let curves: Vec<_> = study.curves.iter().filter(|c| c.drop == target).collect();
        if curves.is_empty() {
            continue;
        }
        let mut rates: Vec<f64> = curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.rate))
            .collect();
        rates.sort_by(f64::total_cmp);
        rates.dedup();
        let _ = write!(
            out,
            "<h4>Drop {}</h4><p class=\"note\">Test {} ×100, mean ± std over seeds, against the rate: the share of history positions with {hidden} hidden; rate 0 is the complete data; kept: the highest rate's score as a share of the complete-data score.</p><table class=\"study sortable\"><thead><tr>",
            target.name(),
            escape(&study.metric),
        );
        th(out, "model", "model", false);
        for rate in &rates {
            th(out, &format!("rate:{rate}"), &format!("rate {rate}"), true);
        }
        th(out, "kept", "kept", true);
        out.push_str("</tr></thead><tbody>");
        for (index, curve) in curves.iter().enumerate() {
            let _ = write!(out, "<tr data-index=\"{index}\">");
            td(out, "model", &curve.model, "", "text", &curve.model);
            for rate in &rates {
                let point = curve.points.iter().find(|p| p.rate == *rate);
                let text = point.map_or("–".into(), |p| pct(&p.value));
                number(
                    out,
                    &format!("rate:{rate}"),
                    point.map(|p| p.value.mean),
                    &text,
                );
            }
            let kept = match (curve.points.first(), curve.points.last()) {
                (Some(a), Some(b)) if a.rate == 0.0 && b.rate > 0.0 => {
                    Some(100.0 * b.value.mean / a.value.mean)
                }
                _ => None,
            };
            let text = kept
                .filter(|k| k.is_finite())
                .map_or("–".into(), |k| format!("{k:.0} %"));
            number(out, "kept", kept, &text);
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
    }
    if !study.trained_differently.is_empty() {
        out.push_str("<h4>Trained on one rate, evaluated on another</h4><table class=\"study sortable\"><thead><tr>");
        for (key, title, numeric) in [
            ("model", "model", false),
            ("condition", "condition", false),
            ("complete", "complete data", true),
            ("value", "this condition", true),
            ("difference", "difference", true),
        ] {
            th(out, key, title, numeric);
        }
        out.push_str("</tr></thead><tbody>");
        for (index, row) in study.trained_differently.iter().enumerate() {
            let _ = write!(out, "<tr data-index=\"{index}\">");
            td(out, "model", &row.model, "", "text", &row.model);
            td(out, "condition", &row.condition, "", "text", &row.condition);
            let complete = row.complete.as_ref().map(|c| c.mean);
            let text = row.complete.as_ref().map_or("–".into(), pct);
            number(out, "complete", complete, &text);
            number(out, "value", Some(row.value.mean), &pct(&row.value));
            let difference = complete.map(|c| (row.value.mean - c) * 100.0);
            let text = difference.map_or("–".into(), |d| format!("{d:+.2}"));
            number(out, "difference", difference, &text);
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
    }
}

const ERROR_SCRIPT: &str = "window.__pageErrors = [];
window.onerror = function (message, source, line, column) {
  window.__pageErrors.push(String(message) + ' (' + source + ':' + line + ':' + column + ')');
};
window.addEventListener('unhandledrejection', function (event) {
  window.__pageErrors.push('unhandled rejection: ' + String(event.reason));
});";

const SORT_SCRIPT: &str = include_str!("page.js");

const STYLE: &str = include_str!("page.css");

/// The page: per dataset its board (and study), then the studies of datasets without a board.
/// `svgs` maps plot file names (`<dataset>-<kind>.svg`) to their markup.
pub fn page(
    boards: &[DatasetBoard],
    studies: &[DatasetStudy],
    reference: &str,
    svgs: &BTreeMap<String, String>,
) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>mmsr-bench leaderboard</title>\n<script>\n{ERROR_SCRIPT}\n</script>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n<header><h1>Leaderboard</h1><p class=\"note\">Generated by <code>mmsr-bench leaderboard --html</code> from the result files; do not edit. Reference model of the tests: <strong>{}</strong>. The same figures are in leaderboard.json.</p><nav>",
        escape(reference)
    );
    let orphans: Vec<&DatasetStudy> = studies
        .iter()
        .filter(|s| !boards.iter().any(|b| b.dataset == s.dataset))
        .collect();
    let sections = boards
        .iter()
        .map(|b| &b.dataset)
        .chain(orphans.iter().map(|s| &s.dataset));
    for (i, dataset) in sections.enumerate() {
        let _ = write!(out, "<a href=\"#dataset-{i}\">{}</a>", escape(dataset));
    }
    out.push_str("</nav></header>\n");
    for (i, board) in boards.iter().enumerate() {
        let _ = write!(
            out,
            "<section class=\"dataset\" id=\"dataset-{i}\"><h2>{}</h2><p class=\"source\"><strong>Data:</strong> {}</p><p class=\"labels\">",
            escape(&board.dataset),
            escape(&board.source)
        );
        let labels = modality_labels(&board.source);
        if labels.is_empty() {
            out.push_str("<span class=\"unknown\">modalities not recorded in the source</span>");
        }
        for (modality, state) in labels {
            let _ = write!(out, "<span class=\"{state}\">{modality}: {state}</span>");
        }
        out.push_str(
            "</p><div class=\"board-body\"><div class=\"board-main\"><div class=\"table-wrap\">",
        );
        board_table(&mut out, board, reference);
        out.push_str("</div>");
        provenance(&mut out, board);
        out.push_str("</div><div class=\"plots\">");
        figures(&mut out, &board.dataset, &PLOT_KINDS[..2], svgs);
        out.push_str("</div>");
        if let Some(study) = studies.iter().find(|s| s.dataset == board.dataset) {
            study_section(&mut out, study, svgs);
        }
        out.push_str("</section>\n");
    }
    for (i, study) in orphans.into_iter().enumerate() {
        let _ = write!(
            out,
            "<section class=\"dataset\" id=\"dataset-{}\"><h2>{}</h2>",
            boards.len() + i,
            escape(&study.dataset)
        );
        study_section(&mut out, study, svgs);
        out.push_str("</section>\n");
    }
    let _ = write!(
        out,
        "<script>\n{SORT_SCRIPT}\n</script>\n</body>\n</html>\n"
    );
    out
}

fn study_section(out: &mut String, study: &DatasetStudy, svgs: &BTreeMap<String, String>) {
    out.push_str("<div class=\"study-section\"><h3>Missing-modality study</h3>");
    study_tables(out, study);
    out.push_str("<div class=\"plots\">");
    figures(out, &study.dataset, &PLOT_KINDS[2..], svgs);
    out.push_str("</div></div>");
}
