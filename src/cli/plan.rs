//! `mmsr-bench plan`: an experiment matrix as a plan file for Slurm job arrays, one cell per
//! line with its run id.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::device;
use crate::experiment::{self, run_config, DatasetCache};
use crate::plan::{cell_experiment, write_plan, PlanCell};
use crate::record::result::run_id;

use super::run_all::{apply_matrix_flags, default_experiment, MatrixArgs};
use super::Cli;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The plan file to write (JSON Lines, one cell per line).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub matrix: MatrixArgs,
}

pub fn execute(cli: &Cli, args: &PlanArgs) -> Result<ExitCode> {
    let (config, choice) = args.matrix.experiment.resolve(default_experiment(), |c| {
        apply_matrix_flags(c, &args.matrix)
    })?;
    let workspace = args.matrix.experiment.workspace(cli);
    experiment::check_names(&config, &workspace)?;
    let requests = experiment::expand(&config, choice)?;
    // Run ids for the planning machine's hardware; a GPU plan written on a CPU login node
    // leaves them to the nodes.
    let here = choice.resolve().ok();
    let mut cache = DatasetCache::default();
    let mut cells = Vec::with_capacity(requests.len());
    for (index, request) in requests.iter().enumerate() {
        let single = cell_experiment(&config, request);
        let (id, kind) = match here {
            Some(device) => {
                let hash = cache.content_hash(&request.dataset, &workspace, &config)?;
                (
                    run_id(&hash, &run_config(request, device)),
                    device::kind(device),
                )
            }
            None => (
                String::new(),
                format!("(decided on the node: device {:?})", config.device),
            ),
        };
        cells.push(PlanCell {
            index,
            run_id: id,
            planned_device_kind: kind,
            experiment: single,
        });
    }
    write_plan(&args.out, &cells)?;
    println!(
        "{} cells written to {}\nsubmit: MMSR_PLAN={} sbatch --array=0-{} ci/slurm/run-all.sbatch   (or run-all-gpu.sbatch)\nthen:   mmsr-bench --results-dir {} merge --plan {}",
        cells.len(),
        args.out.display(),
        args.out.display(),
        cells.len() - 1,
        cli.results_dir.display(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
