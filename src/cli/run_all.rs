//! `mmsr-bench run-all`: a matrix of runs with resume, then mean ± std over seeds.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use crate::config::{ExperimentConfig, ModelSpec};
use crate::experiment::{self, DatasetCache, RunStatus};
use std::path::Path;

use crate::report::result::{write_atomically, RunResult};
use crate::report::table;

use super::{Cli, ExperimentArgs};

/// The main job when no --config is given (also in baselines/default-experiment.yaml).
const DEFAULT_EXPERIMENT: &str = include_str!("../../baselines/default-experiment.yaml");

#[derive(Debug, Args)]
pub struct RunAllArgs {
    /// Comma-separated model names (replaces the config's list).
    #[arg(long, value_delimiter = ',')]
    pub models: Vec<String>,
    /// Comma-separated dataset names.
    #[arg(long, value_delimiter = ',')]
    pub datasets: Vec<String>,
    /// Comma-separated seeds.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Vec<u64>,
    #[command(flatten)]
    pub experiment: ExperimentArgs,
}

pub fn default_experiment() -> ExperimentConfig {
    ExperimentConfig::from_yaml(
        DEFAULT_EXPERIMENT,
        "baselines/default-experiment.yaml".as_ref(),
    )
    .expect("the embedded default experiment is valid")
}

/// `--models`, `--datasets` and `--seeds` replace the config's lists.
pub fn apply_matrix_flags(c: &mut ExperimentConfig, args: &RunAllArgs) {
    if !args.models.is_empty() {
        c.models = args.models.iter().map(|m| ModelSpec::named(m)).collect();
    }
    if !args.datasets.is_empty() {
        c.datasets = args.datasets.clone();
    }
    if !args.seeds.is_empty() {
        c.seeds = args.seeds.clone();
    }
}

pub fn execute(cli: &Cli, args: &RunAllArgs) -> Result<ExitCode> {
    let (config, device) = args
        .experiment
        .resolve(default_experiment(), |c| apply_matrix_flags(c, args))?;
    let workspace = args.experiment.workspace(cli);
    experiment::check_names(&config, &workspace)?;
    let requests = experiment::expand(&config, device)?;
    let mut cache = DatasetCache::default();
    let mut results = Vec::with_capacity(requests.len());
    let mut reused_from: std::collections::BTreeMap<String, usize> = Default::default();
    for (i, request) in requests.iter().enumerate() {
        let label = format!(
            "[{}/{}] {} on {}, seed {}",
            i + 1,
            requests.len(),
            request.model.entry.name,
            request.dataset,
            request.seed
        );
        if workspace.verbose {
            eprintln!("{label} ...");
        }
        let status = experiment::run_one(request, &config, &workspace, &mut cache)
            .with_context(|| label.clone())?;
        let selection = (config.train.selection_metric, config.train.selection_k);
        let test = status
            .result()
            .test
            .get(selection.0, selection.1)
            .unwrap_or(f64::NAN);
        let how = match &status {
            RunStatus::Completed(..) => "done",
            RunStatus::Reused(stored, _) => {
                *reused_from
                    .entry(stored.environment.git_commit.clone())
                    .or_default() += 1;
                "reused stored result"
            }
        };
        eprintln!(
            "{label}: {how}, test {}@{} = {:.4} ({})",
            selection.0.label(),
            selection.1,
            test,
            status.path().display()
        );
        results.push(status.result().clone());
    }
    if !reused_from.is_empty() {
        let total: usize = reused_from.values().sum();
        let commits: Vec<String> = reused_from
            .iter()
            .map(|(commit, n)| format!("{n} from {commit}"))
            .collect();
        eprintln!(
            "reused {total} of {} stored results (same run id: same data, model version, parameters, seed and hardware kind): {}",
            requests.len(),
            commits.join(", ")
        );
    }
    write_summary(&results, &config, &workspace.results_dir)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the mean ± std table and writes `summary.md` and `summary.json` (also used by `merge`,
/// so a Slurm array gives the same table as `run-all`).
pub fn write_summary(
    results: &[RunResult],
    config: &ExperimentConfig,
    results_dir: &Path,
) -> Result<()> {
    let rows = table::summarize(results);
    println!(
        "Test metrics, mean ± std over seeds (model selection on validation {}@{}):",
        config.train.selection_metric.label(),
        config.train.selection_k
    );
    println!("{}", table::summary_table(&rows, false));
    let markdown = format!("{}\n", table::summary_table(&rows, true));
    write_atomically(&results_dir.join("summary.md"), markdown.as_bytes())?;
    let json = serde_json::to_vec_pretty(&rows)?;
    write_atomically(&results_dir.join("summary.json"), &json)?;
    println!(
        "summary written to {}",
        results_dir.join("summary.{md,json}").display()
    );
    Ok(())
}
