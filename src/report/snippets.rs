//! Generated blocks in Markdown documents, so that no number in the docs is copied by hand.
//! A block is
//!
//! ```text
//! <!-- snippet: SPEC -->
//! ...generated text...
//! <!-- /snippet -->
//! ```
//!
//! and `mmsr-bench docs` rewrites (or, with `--check`, verifies) the text between the markers
//! from committed files. This module parses the blocks and renders the specs that read result
//! files; `cli::docs` adds the ones that read the model registry and scaling studies.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::aggregate::build_boards;
use super::leaderboard::{label, p_text};
use super::missing;
use super::published;
use super::reproduction;
use crate::record::read::load_results;
use crate::record::result::modality_note;
use crate::record::RunResult;

pub const START: &str = "<!-- snippet: ";
pub const END: &str = "<!-- /snippet -->";

/// What a block shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// The registered models (`mmsr-bench models --markdown`).
    Models,
    /// The HAN-GNN ablation presets.
    Ablations,
    /// One dataset's leaderboard of a committed folder.
    Board { folder: String, dataset: String },
    /// Models × datasets of one metric.
    Grid { folder: String, metric: String },
    /// One dataset's missing-modality study.
    Missing { folder: String, dataset: String },
    /// A scaling study's fitted exponents.
    Scaling { folder: String },
    /// The per-epoch reproduction tables of a folder's `--protocol official` runs.
    Reproduction { folder: String },
    /// A folder's runs beside the published numbers of its `published.yaml`.
    Published { folder: String },
}

impl Spec {
    pub fn parse(text: &str) -> Result<Spec> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let spec = match words.as_slice() {
            ["models"] => Spec::Models,
            ["ablations"] => Spec::Ablations,
            ["board", folder, dataset] => Spec::Board {
                folder: folder.to_string(),
                dataset: dataset.to_string(),
            },
            ["grid", folder, metric] => Spec::Grid {
                folder: folder.to_string(),
                metric: metric.to_string(),
            },
            ["missing", folder, dataset] => Spec::Missing {
                folder: folder.to_string(),
                dataset: dataset.to_string(),
            },
            ["scaling", folder] => Spec::Scaling {
                folder: folder.to_string(),
            },
            ["reproduction", folder] => Spec::Reproduction {
                folder: folder.to_string(),
            },
            ["published", folder] => Spec::Published {
                folder: folder.to_string(),
            },
            _ => bail!(
                "unknown snippet {text:?}; known: models, ablations, board FOLDER DATASET, grid FOLDER METRIC, missing FOLDER DATASET, scaling FOLDER, reproduction FOLDER, published FOLDER"
            ),
        };
        Ok(spec)
    }
}

/// One block of a document: its spec text and the line its start marker is on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub spec: String,
    pub line: usize,
}

/// The blocks of `text`, in order. An unterminated or nested block is an error naming its line.
pub fn blocks(text: &str) -> Result<Vec<Block>> {
    let mut found = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix(START) {
            if let Some(block) = &open {
                bail!(
                    "line {}: a snippet starts inside the block opened on line {}",
                    i + 1,
                    block.line
                );
            }
            let spec = rest.strip_suffix("-->").with_context(|| {
                format!("line {}: the snippet marker does not end with -->", i + 1)
            })?;
            open = Some(Block {
                spec: spec.trim().to_string(),
                line: i + 1,
            });
        } else if trimmed == END {
            match open.take() {
                Some(block) => found.push(block),
                None => bail!("line {}: {END} without a block to close", i + 1),
            }
        }
    }
    if let Some(block) = open {
        bail!(
            "line {}: the snippet block is never closed with {END}",
            block.line
        );
    }
    Ok(found)
}

/// `text` with every block's body replaced by `render(spec)` (which should end with a newline).
pub fn fill(text: &str, mut render: impl FnMut(&str) -> Result<String>) -> Result<String> {
    blocks(text)?; // reports malformed markers before anything is rendered
    let mut out = String::with_capacity(text.len());
    let mut inside = false;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix(START) {
            out.push_str(line);
            if !line.ends_with('\n') {
                out.push('\n');
            }
            let spec = rest.strip_suffix("-->").unwrap_or(rest).trim();
            let body = render(spec).with_context(|| format!("line {}: snippet {spec:?}", i + 1))?;
            out.push_str(&body);
            if !body.is_empty() && !body.ends_with('\n') {
                out.push('\n');
            }
            inside = true;
        } else if trimmed == END {
            inside = false;
            out.push_str(line);
        } else if !inside {
            out.push_str(line);
        }
    }
    Ok(out)
}

/// The first line where `a` and `b` differ (1-based), for a readable `--check` failure.
pub fn first_difference(a: &str, b: &str) -> Option<(usize, String, String)> {
    let (mut la, mut lb) = (a.lines(), b.lines());
    let mut n = 0;
    loop {
        n += 1;
        match (la.next(), lb.next()) {
            (None, None) => return None,
            (x, y) if x == y => continue,
            (x, y) => return Some((n, x.unwrap_or("").to_string(), y.unwrap_or("").to_string())),
        }
    }
}

fn load_folder(root: &Path, folder: &str) -> Result<Vec<RunResult>> {
    Ok(load_results(&root.join(folder))?
        .into_iter()
        .map(|(_, r)| r)
        .collect())
}

/// `board FOLDER DATASET`: every headline metric ×100 (mean ± std), the p-value of NDCG@20
/// against the reference, training seconds per epoch and epochs.
pub fn board(root: &Path, folder: &str, dataset: &str, reference: &str) -> Result<String> {
    let results = load_folder(root, folder)?;
    let boards = build_boards(&results, reference);
    let Some(board) = boards.iter().find(|b| b.dataset == dataset) else {
        bail!(
            "{folder} has no runs on dataset {dataset:?}; it has: {}",
            boards
                .iter()
                .map(|b| b.dataset.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let names: Vec<String> = board
        .rows
        .first()
        .map(|r| r.metrics.iter().map(|m| m.name.clone()).collect())
        .unwrap_or_default();
    let mut out = format!(
        "| model | {} | p NDCG@20 vs {reference} | Holm p | train s/epoch | epochs |\n|---|{}---:|---:|---:|---:|\n",
        names.join(" | "),
        "---:|".repeat(names.len())
    );
    for row in &board.rows {
        let cells: Vec<String> = names
            .iter()
            .map(|n| {
                row.metrics
                    .iter()
                    .find(|m| &m.name == n)
                    .map_or("–".into(), |m| m.value.display(100.0))
            })
            .collect();
        let test = row
            .metrics
            .iter()
            .find(|m| m.name == "NDCG@20")
            .and_then(|m| m.vs_reference.as_ref());
        let p = test.and_then(|t| t.p_value).map_or("–".into(), p_text);
        let holm = test.and_then(|t| t.p_holm).map_or("–".into(), p_text);
        let epoch = row
            .train_seconds_per_epoch
            .as_ref()
            .map_or("–".into(), |s| format!("{:.1}", s.mean));
        let _ = writeln!(
            out,
            "| {} | {} | {p} | {holm} | {epoch} | {:.1} |",
            label(row, board),
            cells.join(" | "),
            row.epochs_run.mean
        );
    }
    let seeds: std::collections::BTreeSet<u64> = board
        .rows
        .iter()
        .flat_map(|r| r.seeds.iter().copied())
        .collect();
    let seeds: Vec<String> = seeds.iter().map(u64::to_string).collect();
    let _ = writeln!(
        out,
        "\n{dataset}, {} test samples{}, seeds {}: test metrics ×100, mean ± std over seeds, epoch selected on validation; p: paired two-sided t-test against `{reference}` over matched seeds; Holm p: adjusted by Holm's method over the {} comparisons against `{reference}`. Generated from [`{folder}`]({}) by `mmsr-bench docs`.",
        board.test_samples,
        modality_note(&board.source).map_or(String::new(), |m| format!(" ({m})")),
        seeds.join(", "),
        board
            .rows
            .iter()
            .flat_map(|r| &r.metrics)
            .filter_map(|m| m.vs_reference.as_ref())
            .map(|t| t.comparisons)
            .max()
            .unwrap_or(0),
        link(folder)
    );
    Ok(out)
}

/// `grid FOLDER METRIC`: one row per model, one column per dataset, rows by their mean over
/// datasets (best first).
pub fn grid(root: &Path, folder: &str, metric: &str, reference: &str) -> Result<String> {
    let results = load_folder(root, folder)?;
    let boards = build_boards(&results, reference);
    let mut models: Vec<(String, Vec<Option<String>>, f64)> = Vec::new();
    let mut seen = false;
    for board in &boards {
        for row in &board.rows {
            let Some(m) = row.metrics.iter().find(|m| m.name == metric) else {
                continue;
            };
            seen = true;
            let name = label(row, board);
            let at = match models.iter().position(|(n, _, _)| *n == name) {
                Some(at) => at,
                None => {
                    models.push((name, vec![None; boards.len()], 0.0));
                    models.len() - 1
                }
            };
            let column = boards
                .iter()
                .position(|b| b.dataset == board.dataset)
                .unwrap();
            models[at].1[column] = Some(m.value.display(100.0));
            models[at].2 += m.value.mean;
        }
    }
    if !seen {
        bail!("{folder} has no metric {metric:?} (headline metrics look like NDCG@20)");
    }
    models.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    let mut out = format!(
        "| model | {} |\n|---|{}\n",
        boards
            .iter()
            .map(|b| b.dataset.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
        "---:|".repeat(boards.len())
    );
    for (name, cells, _) in &models {
        let cells: Vec<String> = cells
            .iter()
            .map(|c| c.clone().unwrap_or("–".into()))
            .collect();
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    }
    let modalities: Vec<String> = boards
        .iter()
        .filter_map(|b| Some(format!("{}: {}", b.dataset, modality_note(&b.source)?)))
        .collect();
    let modalities = if modalities.is_empty() {
        String::new()
    } else {
        format!(" Modalities: {}.", modalities.join("; "))
    };
    let _ = writeln!(
        out,
        "\nTest {metric} ×100, mean ± std over seeds, epoch selected on validation; rows by their sum over datasets.{modalities} Generated from [`{folder}`]({}) by `mmsr-bench docs`.",
        link(folder)
    );
    Ok(out)
}

/// `reproduction FOLDER`: the tables of the folder's runs under `--protocol official` beside
/// the reference curve its reproduction.json keeps.
pub fn reproduction_tables(root: &Path, folder: &str) -> Result<String> {
    let results = load_folder(root, folder)?;
    let reference = reproduction::stored_reference(&root.join(folder).join("reproduction.json"))?;
    let report = reproduction::build(&results, reference);
    if report.studies.is_empty() {
        bail!("{folder} has no runs under --protocol official");
    }
    let mut out = reproduction::sections(&report, "####");
    let _ = writeln!(
        out,
        "\nTest metrics ×100 under `--protocol official` (optimistic: selected on test), reference {}. Generated from [`{folder}`]({}) by `mmsr-bench docs`.",
        report
            .reference
            .as_ref()
            .map_or("none".to_string(), |r| format!("`{}`", r.source)),
        link(folder)
    );
    Ok(out.trim_start().to_string())
}

/// `published FOLDER`: the folder's runs beside its `published.yaml`.
pub fn published_tables(root: &Path, folder: &str) -> Result<String> {
    let results = load_folder(root, folder)?;
    let file = published::load(&root.join(folder).join(published::FILE_NAME))
        .map_err(|e| anyhow::anyhow!(e))?;
    let mut out = published::tables(&file, &results, "####");
    let _ = writeln!(
        out,
        "{} Generated from [`{folder}`]({}) by `mmsr-bench docs`.",
        published::legend(),
        link(folder)
    );
    Ok(out)
}

/// `missing FOLDER DATASET`: the study's tables of one dataset.
pub fn missing_study(root: &Path, folder: &str, dataset: &str) -> Result<String> {
    let results = load_folder(root, folder)?;
    let studies: Vec<missing::DatasetStudy> = missing::build_study(&results)
        .into_iter()
        .filter(|s| s.dataset == dataset)
        .collect();
    if studies.is_empty() {
        bail!("{folder} has no missing-modality runs on dataset {dataset:?}");
    }
    let mut out = missing::sections(&studies, "####");
    let _ = writeln!(
        out,
        "\nTest NDCG@20 ×100, mean ± std over seeds; rate 0 = complete data; \"kept\": the highest rate's share of the complete-data score. Generated from [`{folder}`]({}) by `mmsr-bench docs`.",
        link(folder)
    );
    Ok(out.trim_start().to_string())
}

/// Folders are named relative to the repository root; documents live at the root, in `docs/`
/// and in `leaderboard/`, so links are written root-relative and fixed up per document.
fn link(folder: &str) -> String {
    format!("{{root}}{folder}")
}

/// Replaces the `{root}` placeholder of links with the path from `document` back to the root.
pub fn relative_links(body: &str, document: &Path, root: &Path) -> String {
    let depth = document
        .strip_prefix(root)
        .map(|rel| rel.components().count().saturating_sub(1))
        .unwrap_or(0);
    body.replace("{root}", &"../".repeat(depth))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_found_and_filled() {
        let text = "# Title\n<!-- snippet: models -->\nold\nlines\n<!-- /snippet -->\ntail\n<!-- snippet: grid a NDCG@20 -->\n<!-- /snippet -->\n";
        let found = blocks(text).unwrap();
        assert_eq!(
            found,
            [
                Block {
                    spec: "models".into(),
                    line: 2
                },
                Block {
                    spec: "grid a NDCG@20".into(),
                    line: 7
                }
            ]
        );
        let filled = fill(text, |spec| Ok(format!("[{spec}]\n"))).unwrap();
        assert_eq!(
            filled,
            "# Title\n<!-- snippet: models -->\n[models]\n<!-- /snippet -->\ntail\n<!-- snippet: grid a NDCG@20 -->\n[grid a NDCG@20]\n<!-- /snippet -->\n"
        );
        // Filling is idempotent, and a hand edit inside a block is undone.
        assert_eq!(
            fill(&filled, |spec| Ok(format!("[{spec}]\n"))).unwrap(),
            filled
        );
        let edited = filled.replace("[models]", "[mod3ls]");
        let (line, ours, fresh) = first_difference(&edited, &filled).unwrap();
        assert_eq!(
            (line, ours.as_str(), fresh.as_str()),
            (3, "[mod3ls]", "[models]")
        );
    }

    #[test]
    fn malformed_blocks_name_their_line() {
        let open = blocks("a\n<!-- snippet: models -->\nb\n")
            .unwrap_err()
            .to_string();
        assert!(
            open.contains("line 2") && open.contains("never closed"),
            "{open}"
        );
        let stray = blocks("<!-- /snippet -->\n").unwrap_err().to_string();
        assert!(stray.contains("line 1"), "{stray}");
        let nested = blocks("<!-- snippet: a -->\n<!-- snippet: b -->\n<!-- /snippet -->\n")
            .unwrap_err()
            .to_string();
        assert!(nested.contains("line 2"), "{nested}");
    }

    #[test]
    fn specs_parse_and_unknown_ones_list_the_known() {
        assert_eq!(Spec::parse("models").unwrap(), Spec::Models);
        assert_eq!(
            Spec::parse("board leaderboard/x synthetic").unwrap(),
            Spec::Board {
                folder: "leaderboard/x".into(),
                dataset: "synthetic".into()
            }
        );
        let err = Spec::parse("boards x").unwrap_err().to_string();
        assert!(err.contains("grid FOLDER METRIC"), "{err}");
    }

    #[test]
    fn links_climb_back_to_the_root() {
        let root = Path::new("/repo");
        assert_eq!(
            relative_links("[a]({root}x)", Path::new("/repo/README.md"), root),
            "[a](x)"
        );
        assert_eq!(
            relative_links("[a]({root}x)", Path::new("/repo/docs/p.md"), root),
            "[a](../x)"
        );
    }
}
