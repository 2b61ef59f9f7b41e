//! `mmsr-bench leaderboard`: tables and plots from result files only.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use crate::record::read::{abbreviate, load_results};
use crate::record::result::{file_name_component, write_atomically, RunResult, NAME_RULE};
use crate::report::aggregate::build_boards;
use crate::report::reproduction::{self, ReferenceCurve};
use crate::report::{html, leaderboard, missing, plots, published};

#[derive(Debug, Args)]
pub struct LeaderboardArgs {
    /// Results directories to tabulate (each with runs/...); a run id found twice counts once.
    #[arg(long, required = true, num_args = 1..)]
    pub results: Vec<PathBuf>,
    /// Where leaderboard.{md,csv,json} and plots/ are written.
    #[arg(long)]
    pub out: PathBuf,
    /// The model every other is tested against (paired t-test over matched seeds).
    #[arg(long, default_value = "han-gnn")]
    pub reference: String,
    /// Also write OUT/index.html: one self-contained page (sortable tables, provenance, the
    /// plots inline, Holm-adjusted p-values) that needs no network to view.
    #[arg(long)]
    pub html: bool,
    /// A logged per-epoch test curve (Markdown table, the layout of
    /// ../shared/data/official-beauty/LOG.md) to set runs made under `--protocol official`
    /// beside in OUT/reproduction.{md,json}; without it, the one stored in OUT/reproduction.json
    /// is kept.
    #[arg(long, value_name = "FILE")]
    pub reference_log: Option<PathBuf>,
}

/// Loads every result of `dirs`, each run id once.
pub fn load_all(dirs: &[PathBuf]) -> Result<Vec<RunResult>> {
    let mut seen = BTreeSet::new();
    let mut results = Vec::new();
    for dir in dirs {
        for (_, r) in load_results(dir)? {
            if seen.insert(r.run_id.clone()) {
                results.push(r);
            }
        }
    }
    anyhow::ensure!(!results.is_empty(), "no result files under {dirs:?}");
    Ok(results)
}

pub fn execute(args: &LeaderboardArgs) -> Result<ExitCode> {
    let results = load_all(&args.results)?;
    write_leaderboard(&results, &args.out, &args.reference, true)?;
    write_missing_modality_study(&results, &args.out, true)?;
    write_reproduction(&results, &args.out, args.reference_log.as_deref())?;
    write_published(&results, &args.out)?;
    if args.html {
        write_page(&results, &args.out, &args.reference)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `out/index.html` from `results` and the plots under `out/plots/` (written before).
pub fn write_page(results: &[RunResult], out: &Path, reference: &str) -> Result<()> {
    let boards = build_boards(results, reference);
    let studies = if missing::has_study_runs(results) {
        missing::build_study(results)
    } else {
        Vec::new()
    };
    let svgs = html::read_plots(&out.join("plots"), html::datasets(&boards, &studies))?;
    let path = out.join("index.html");
    write_atomically(
        &path,
        html::page(&boards, &studies, reference, &svgs).as_bytes(),
    )?;
    println!("page written to {}", path.display());
    Ok(())
}

/// Writes leaderboard.{md,csv,json} and the plots into `out` (and prints the tables).
pub fn write_leaderboard(
    results: &[RunResult],
    out: &Path,
    reference: &str,
    print: bool,
) -> Result<()> {
    // The missing-modality study's runs are not rows (write_missing_modality_study).
    let boards = build_boards(results, reference);
    // Every plot's path is made, and checked, and the plot folder too, before anything else is
    // written.
    let plot_dir = out.join("plots");
    let plot_paths = boards
        .iter()
        .map(|board| {
            Ok([
                plot_path(&plot_dir, &board.dataset, "accuracy-vs-time")?,
                plot_path(&plot_dir, &board.dataset, "learning-curves")?,
            ])
        })
        .collect::<Result<Vec<_>>>()?;
    create_plot_dir(&plot_dir)?;
    if print {
        print!("{}", leaderboard::terminal(&boards, reference));
    }
    write_atomically(
        &out.join("leaderboard.md"),
        leaderboard::markdown(&boards, reference).as_bytes(),
    )?;
    write_atomically(
        &out.join("leaderboard.csv"),
        leaderboard::csv(&boards).as_bytes(),
    )?;
    let json = leaderboard::json_document(&boards, reference);
    let mut bytes = serde_json::to_vec_pretty(&json)?;
    bytes.push(b'\n');
    write_atomically(&out.join("leaderboard.json"), &bytes)?;
    for (board, [accuracy, curves]) in boards.iter().zip(&plot_paths) {
        // Drawn to a temporary name and renamed, like every other output.
        draw_atomically(accuracy, |tmp| plots::accuracy_vs_time(board, tmp))?;
        draw_atomically(curves, |tmp| plots::learning_curves(board, results, tmp))?;
    }
    println!(
        "leaderboard written to {}",
        out.join("leaderboard.{md,csv,json}").display()
    );
    Ok(())
}

/// `plot_dir/<dataset>-<kind>.svg`, refused unless `dataset` is safe as a file-name component
/// and the path stays a direct child of `plot_dir` (the results' names were checked when they
/// were loaded; this is the second line of defence, where the path is made).
pub(crate) fn plot_path(plot_dir: &Path, dataset: &str, kind: &str) -> Result<PathBuf> {
    file_name_component(dataset).map_err(|why| {
        anyhow::anyhow!(
            "no plot for dataset {}: {why}; expected {NAME_RULE}",
            abbreviate(&format!("{dataset:?}"))
        )
    })?;
    let path = plot_dir.join(format!("{dataset}-{kind}.svg"));
    anyhow::ensure!(
        path.parent() == Some(plot_dir)
            && path
                .file_name()
                .is_some_and(|n| n.to_string_lossy() == format!("{dataset}-{kind}.svg")),
        "no plot for dataset {dataset:?}: its path {} leaves {}",
        path.display(),
        plot_dir.display()
    );
    Ok(path)
}

/// Creates `OUT/plots`, which must be a folder of its own: a symbolic link there (say in a
/// submitted folder used as OUT) would send the plots elsewhere.
fn create_plot_dir(plot_dir: &Path) -> Result<()> {
    anyhow::ensure!(
        !plot_dir.is_symlink(),
        "{} is a symbolic link: plots are only written into a folder of the output itself",
        plot_dir.display()
    );
    std::fs::create_dir_all(plot_dir).with_context(|| format!("creating {}", plot_dir.display()))
}

/// Draws a plot to a hidden temporary name and renames it into place, like every other
/// output; a plot that cannot be drawn is a note, not an error.
pub(crate) fn draw_atomically(path: &Path, draw: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    // A leftover (or planted) file or link of that name goes first: the plot is drawn into a
    // new file, never through a link.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", tmp.display()))
        }
        _ => {}
    }
    match draw(&tmp) {
        Ok(()) => {
            std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            eprintln!("note: {e:#}");
            Ok(())
        }
    }
}

/// Writes missing-modality.{md,json} and plots/<dataset>-missing-modality.svg when `results`
/// hold runs of the study.
pub fn write_missing_modality_study(results: &[RunResult], out: &Path, print: bool) -> Result<()> {
    if !missing::has_study_runs(results) {
        return Ok(());
    }
    let studies = missing::build_study(results);
    // Every plot's path is made, and checked, and the plot folder too, before anything else is
    // written.
    let plot_dir = out.join("plots");
    let plot_paths = studies
        .iter()
        .filter(|s| !s.curves.is_empty())
        .map(|study| {
            Ok((
                study,
                plot_path(&plot_dir, &study.dataset, "missing-modality")?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    create_plot_dir(&plot_dir)?;
    let markdown = missing::markdown(&studies);
    if print {
        print!("{markdown}");
    }
    write_atomically(&out.join("missing-modality.md"), markdown.as_bytes())?;
    let mut bytes = serde_json::to_vec_pretty(&studies)?;
    bytes.push(b'\n');
    write_atomically(&out.join("missing-modality.json"), &bytes)?;
    for (study, path) in plot_paths {
        draw_atomically(&path, |tmp| missing::plot(study, tmp))?;
    }
    println!(
        "missing-modality study written to {}",
        out.join("missing-modality.{md,json}").display()
    );
    Ok(())
}

/// Writes `out/published.md` when `out` holds a `published.yaml` (numbers from the literature
/// to set our runs beside).
pub fn write_published(results: &[RunResult], out: &Path) -> Result<()> {
    let path = out.join(published::FILE_NAME);
    if !path.is_file() {
        return Ok(());
    }
    let file = published::load(&path).map_err(|e| anyhow::anyhow!(e))?;
    let target = out.join("published.md");
    write_atomically(&target, published::markdown(&file, results).as_bytes())?;
    println!("published numbers beside ours: {}", target.display());
    Ok(())
}

/// The reference curve of a reproduction report: parsed from `log` when given, else the one
/// kept in `out/reproduction.json` (so regenerating a committed folder keeps it).
fn reference_curve(log: Option<&Path>, out: &Path) -> Result<Option<ReferenceCurve>> {
    if let Some(log) = log {
        let text = std::fs::read(log).with_context(|| format!("reading {}", log.display()))?;
        // The path as given (relative in committed folders), not resolved against this machine.
        let source = log.display().to_string();
        let curve = reproduction::parse_reference_log(&String::from_utf8_lossy(&text), &source)
            .map_err(|e| anyhow::anyhow!("{}: {e}", log.display()))?;
        return Ok(Some(curve));
    }
    let stored = out.join("reproduction.json");
    if !stored.is_file() {
        return Ok(None);
    }
    reproduction::stored_reference(&stored)
}

/// Writes reproduction.{md,json} and plots/<dataset>-reproduction-<model>.svg when `results`
/// hold runs under `--protocol official`.
pub fn write_reproduction(results: &[RunResult], out: &Path, log: Option<&Path>) -> Result<()> {
    if !reproduction::has_official_runs(results) {
        anyhow::ensure!(
            log.is_none(),
            "--reference-log: no result was made under --protocol official, so there is nothing to set beside it"
        );
        return Ok(());
    }
    let report = reproduction::build(results, reference_curve(log, out)?);
    let plot_dir = out.join("plots");
    let plot_paths = report
        .studies
        .iter()
        .map(|study| {
            file_name_component(&study.model).map_err(|why| {
                anyhow::anyhow!(
                    "no plot for model {}: {why}; expected {NAME_RULE}",
                    abbreviate(&format!("{:?}", study.model))
                )
            })?;
            plot_path(
                &plot_dir,
                &study.dataset,
                &format!("reproduction-{}", study.model),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    create_plot_dir(&plot_dir)?;
    write_atomically(
        &out.join("reproduction.md"),
        reproduction::markdown(&report).as_bytes(),
    )?;
    let mut bytes = serde_json::to_vec_pretty(&report)?;
    bytes.push(b'\n');
    write_atomically(&out.join("reproduction.json"), &bytes)?;
    // Untrained models (pop) have no curve to draw.
    let drawn = report.studies.iter().zip(&plot_paths);
    for (study, path) in drawn.filter(|(s, _)| !s.epochs.is_empty()) {
        draw_atomically(path, |tmp| {
            reproduction::plot(study, report.reference.as_ref(), tmp)
        })?;
    }
    println!(
        "{} configuration(s) under protocol official (optimistic, not leaderboard rows) written to {}",
        report.studies.len(),
        out.join("reproduction.{md,json}").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_paths_never_leave_the_plot_folder() {
        let dir = Path::new("out/plots");
        assert_eq!(
            plot_path(dir, "beauty-offline@500x500", "learning-curves").unwrap(),
            dir.join("beauty-offline@500x500-learning-curves.svg")
        );
        for dataset in ["../../x", "/etc/x", "a/b", "..", "a\0b", "a\nb", ""] {
            let e = plot_path(dir, dataset, "accuracy-vs-time").unwrap_err();
            assert!(e.to_string().starts_with("no plot for dataset"), "{e}");
        }
        let huge = "x/".repeat(1 << 20);
        let e = plot_path(dir, &huge, "accuracy-vs-time").unwrap_err();
        assert!(e.to_string().len() < 800, "{} bytes", e.to_string().len());
    }
}
