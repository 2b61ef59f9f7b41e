//! `mmsr-bench run-cell`: one cell of a plan (a Slurm array task), written atomically and skipped
//! when its result exists.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use crate::experiment::{self, DatasetCache, RunStatus, Workspace};
use crate::plan::read_plan;

use super::Cli;

#[derive(Debug, Args)]
pub struct RunCellArgs {
    /// The plan file (`-`: read it from standard input).
    #[arg(long)]
    pub plan: PathBuf,
    /// The cell to run (Slurm sets SLURM_ARRAY_TASK_ID for each array task).
    #[arg(long, env = "SLURM_ARRAY_TASK_ID")]
    pub index: usize,
    /// Run again even if a result with the same run id exists.
    #[arg(long)]
    pub force: bool,
}

pub fn execute(cli: &Cli, args: &RunCellArgs) -> Result<ExitCode> {
    cli.refuse_dirty_results()?;
    let cells = read_plan(&args.plan)?;
    let plan_name = if args.plan.as_os_str() == "-" {
        "the plan on standard input".to_string()
    } else {
        args.plan.display().to_string()
    };
    let cell = cells.get(args.index).with_context(|| {
        format!(
            "{plan_name}: no cell {} (the plan has {}: indices 0..={})",
            args.index,
            cells.len(),
            cells.len() - 1
        )
    })?;
    let config = &cell.experiment;
    let workspace = Workspace {
        data_dir: cli.data_dir.clone(),
        results_dir: cli.results_dir.clone(),
        verbose: !cli.quiet,
        force: args.force,
    };
    let choice = config.device.as_deref().unwrap_or("auto").parse()?;
    let request = experiment::expand(config, choice)?.remove(0);
    let status = experiment::run_one(&request, config, &workspace, &mut DatasetCache::default())
        .with_context(|| format!("cell {} of {plan_name}", args.index))?;
    let r = status.result();
    let how = match status {
        RunStatus::Completed(..) => "done",
        RunStatus::Reused(..) => "already computed",
    };
    println!(
        "cell {}: {} on {}, seed {}: {how} ({})",
        args.index,
        r.config.model,
        r.config.dataset,
        r.config.seed,
        status.path().display()
    );
    if !cell.run_id.is_empty() && cell.run_id != r.run_id {
        println!(
            "note: this node is {:?}; the plan was made on {:?}, so the run id is {} instead of the planned {}",
            r.config.device_kind, cell.planned_device_kind, r.run_id, cell.run_id
        );
    }
    Ok(ExitCode::SUCCESS)
}
