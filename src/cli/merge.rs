//! `mmsr-bench merge`: after a job array, the plan's results as `run-all` would summarise them
//! (summary.md, summary.json) plus the leaderboard.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::plan::read_plan;
use crate::record::read::load_results;

use super::leaderboard::{write_leaderboard, write_missing_modality_study};
use super::run_all::{folder_results, write_summary};
use super::Cli;

#[derive(Debug, Args)]
pub struct MergeArgs {
    #[arg(long)]
    pub plan: PathBuf,
    /// The model the leaderboard tests every other against.
    #[arg(long, default_value = "han-gnn")]
    pub reference: String,
}

pub fn execute(cli: &Cli, args: &MergeArgs) -> Result<ExitCode> {
    cli.refuse_dirty_results()?;
    let cells = read_plan(&args.plan)?;
    let stored = load_results(&cli.results_dir)?;
    let mut results = Vec::with_capacity(cells.len());
    let mut missing = Vec::new();
    for cell in &cells {
        let found: Vec<_> = stored.iter().filter(|(_, r)| cell.matches(r)).collect();
        match found.as_slice() {
            [] => missing.push(cell.index),
            [(_, r)] => results.push(r.clone()),
            several => anyhow::bail!(
                "cell {} has {} results (computed on different hardware?): {}",
                cell.index,
                several.len(),
                several
                    .iter()
                    .map(|(p, _)| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    anyhow::ensure!(
        missing.is_empty(),
        "{} of {} cells have no result in {}: {:?}; run them (sbatch --array={} ..., or mmsr-bench run-cell --plan {} --index N)",
        missing.len(),
        cells.len(),
        cli.results_dir.display(),
        missing,
        missing.iter().map(usize::to_string).collect::<Vec<_>>().join(","),
        args.plan.display()
    );
    // The tables cover every run stored in the folder (a study made with several plans or
    // configs), as `leaderboard` regenerates them and `check` compares.
    let plan_runs = results.len();
    let results = folder_results(results, &cli.results_dir)?;
    write_summary(&results, &cells[0].experiment, &cli.results_dir)?;
    write_leaderboard(&results, &cli.results_dir, &args.reference, false)?;
    write_missing_modality_study(&results, &cli.results_dir, false)?;
    println!(
        "merged {} cells ({} runs in the folder); leaderboard in {}",
        plan_runs,
        results.len(),
        cli.results_dir.join("leaderboard.md").display()
    );
    Ok(ExitCode::SUCCESS)
}
