//! `mmsr-bench plan`: an experiment matrix as a plan file for Slurm job arrays, one cell per
//! line with its run id.

use std::path::{Path, PathBuf};
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
    /// The libtorch threads each task will run with (part of a CPU run's identity): the
    /// `--cpus-per-task` of ci/slurm/run-all.sbatch, which sets OMP_NUM_THREADS to it.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(1..=1024))]
    pub threads: i32,
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
                    run_id(&hash, &run_config(request, device, args.threads)),
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
    let bin = std::env::current_exe().unwrap_or_else(|_| "mmsr-bench".into());
    let lines = ClusterLines {
        plan: absolute(&args.out),
        results_dir: absolute(&cli.results_dir),
        data_dir: absolute(&cli.data_dir),
        bin,
        script: sbatch_script(),
        cells: cells.len(),
    };
    println!(
        "{} cells written to {}
{}",
        cells.len(),
        args.out.display(),
        lines.text()
    );
    Ok(ExitCode::SUCCESS)
}

/// What a user runs after `plan`: the submit line and the merge line, with absolute paths so
/// that both work from any directory and the array writes where `merge` reads.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterLines {
    pub plan: PathBuf,
    pub results_dir: PathBuf,
    pub data_dir: PathBuf,
    pub bin: PathBuf,
    pub script: PathBuf,
    pub cells: usize,
}

impl ClusterLines {
    pub fn text(&self) -> String {
        let q = |p: &Path| shell_quote(&p.display().to_string());
        format!(
            "submit: MMSR_PLAN={} MMSR_RESULTS_DIR={} MMSR_DATA_DIR={} MMSR_BIN={} sbatch --array=0-{} {}   (run-all-gpu.sbatch beside it for GPUs)\nthen:   {} --results-dir {} merge --plan {}",
            q(&self.plan),
            q(&self.results_dir),
            q(&self.data_dir),
            q(&self.bin),
            self.cells.saturating_sub(1),
            q(&self.script),
            q(&self.bin),
            q(&self.results_dir),
            q(&self.plan)
        )
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The CPU array script of this checkout (where the binary was built), else the relative path.
fn sbatch_script() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/slurm/run-all.sbatch");
    if built.is_file() {
        built
    } else {
        PathBuf::from("ci/slurm/run-all.sbatch")
    }
}

/// Single-quotes `text` for a POSIX shell when it holds anything but safe characters.
fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@=,".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_lines_agree_on_every_path() {
        let lines = ClusterLines {
            plan: "/w/plan.jsonl".into(),
            results_dir: "/w/my results".into(),
            data_dir: "/w/data".into(),
            bin: "/r/target/release/mmsr-bench".into(),
            script: "/r/ci/slurm/run-all.sbatch".into(),
            cells: 12,
        };
        let text = lines.text();
        let (submit, merge) = text.split_once('\n').unwrap();
        assert!(submit.starts_with(
            "submit: MMSR_PLAN=/w/plan.jsonl MMSR_RESULTS_DIR='/w/my results' MMSR_DATA_DIR=/w/data MMSR_BIN=/r/target/release/mmsr-bench sbatch --array=0-11 /r/ci/slurm/run-all.sbatch"
        ), "{submit}");
        assert_eq!(
            merge,
            "then:   /r/target/release/mmsr-bench --results-dir '/w/my results' merge --plan /w/plan.jsonl"
        );
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
