//! `mmsr-bench run-all`: a matrix of runs with resume (in this process, or side by side in
//! child processes), then mean ± std over seeds.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use crate::config::{ExperimentConfig, ModelSpec};
use crate::device::DeviceChoice;
use crate::experiment::{self, DatasetCache, RunRequest, RunStatus, Workspace};
use crate::plan::{cell_experiment, PlanCell};
use crate::pool::{run_tasks, Parallelism, Task};
use crate::record::result::{write_atomically, RunResult};
use crate::report::table;

use super::{Cli, ExperimentArgs};

/// The main job when no --config is given (also in baselines/default-experiment.yaml).
const DEFAULT_EXPERIMENT: &str = include_str!("../../baselines/default-experiment.yaml");

/// The matrix flags `run-all` and `plan` share.
#[derive(Debug, Args)]
pub struct MatrixArgs {
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

#[derive(Debug, Args)]
pub struct RunAllArgs {
    #[command(flatten)]
    pub matrix: MatrixArgs,
    /// Runs at once, each in its own process with an equal share of the cores as libtorch
    /// threads. Default on the CPU: one run per core (up to 8), one thread each; on CUDA, one
    /// run at a time. `--jobs 1` runs everything in this process with all cores.
    #[arg(long)]
    pub jobs: Option<usize>,
}

pub fn default_experiment() -> ExperimentConfig {
    ExperimentConfig::from_yaml(
        DEFAULT_EXPERIMENT,
        "baselines/default-experiment.yaml".as_ref(),
    )
    .expect("the embedded default experiment is valid")
}

/// `--models`, `--datasets` and `--seeds` replace the config's lists.
pub fn apply_matrix_flags(c: &mut ExperimentConfig, args: &MatrixArgs) {
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

/// The most runs side by side (each a process with its own libtorch).
const MAX_JOBS: usize = 256;

/// `--jobs`, or the default for the device the runs resolve to.
fn parallelism(jobs: Option<usize>, device: DeviceChoice) -> Result<Parallelism> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parallelism = match jobs {
        Some(jobs) if !(1..=MAX_JOBS).contains(&jobs) => {
            anyhow::bail!(
                "--jobs {jobs} is out of range: between 1 and {MAX_JOBS} runs side by side"
            )
        }
        Some(jobs) => Parallelism::sharing(cores, jobs),
        None if device.resolve()?.is_cuda() => Parallelism::sharing(cores, 1),
        None => Parallelism::auto_cpu(cores),
    };
    Ok(in_process_threads(parallelism))
}

/// One job at a time runs in this process, with the threads libtorch has here
/// (`OMP_NUM_THREADS`, else every core), not a share of the cores.
fn in_process_threads(parallelism: Parallelism) -> Parallelism {
    match parallelism.jobs {
        1 => Parallelism {
            jobs: 1,
            threads_per_job: usize::try_from(tch::get_num_threads()).map_or(1, |t| t.max(1)),
        },
        _ => parallelism,
    }
}

/// `[i/n] model on dataset, seed s`.
fn cell_label(i: usize, total: usize, request: &RunRequest) -> String {
    format!(
        "[{}/{}] {} on {}, seed {}",
        i + 1,
        total,
        request.model.entry.name,
        request.dataset,
        request.seed
    )
}

/// The runs of a matrix in its order, each completed here (or by a child) or reused.
struct Outcomes<'a> {
    config: &'a ExperimentConfig,
    statuses: Vec<Option<RunStatus>>,
}

impl Outcomes<'_> {
    /// Records a run's status and prints its line.
    fn record(&mut self, index: usize, label: &str, status: RunStatus) {
        let selection = (
            self.config.train.selection_metric,
            self.config.train.selection_k,
        );
        let test = status
            .result()
            .test
            .get(selection.0, selection.1)
            .unwrap_or(f64::NAN);
        let how = match &status {
            RunStatus::Completed(..) => "done",
            RunStatus::Reused(..) => "reused stored result",
        };
        eprintln!(
            "{label}: {how}, test {}@{} = {:.4} ({})",
            selection.0.label(),
            selection.1,
            test,
            status.path().display()
        );
        self.statuses[index] = Some(status);
    }

    fn finish(self, results_dir: &Path, started: Instant, parallelism: Parallelism) -> Result<()> {
        let statuses: Vec<RunStatus> = self.statuses.into_iter().flatten().collect();
        let mut reused_from: BTreeMap<String, usize> = BTreeMap::new();
        for status in &statuses {
            if let RunStatus::Reused(stored, _) = status {
                *reused_from
                    .entry(stored.environment.git_commit.clone())
                    .or_default() += 1;
            }
        }
        if !reused_from.is_empty() {
            let total: usize = reused_from.values().sum();
            let commits: Vec<String> = reused_from
                .iter()
                .map(|(commit, n)| format!("{n} from {commit}"))
                .collect();
            eprintln!(
                "reused {total} of {} stored results (same run id: same data, model version, parameters, seed and hardware kind): {}",
                statuses.len(),
                commits.join(", ")
            );
        }
        eprintln!(
            "{} runs in {:.1} s ({} at a time, {} libtorch thread(s) each)",
            statuses.len(),
            started.elapsed().as_secs_f64(),
            parallelism.jobs,
            parallelism.threads_per_job
        );
        let results: Vec<RunResult> = statuses.iter().map(|s| s.result().clone()).collect();
        write_summary(
            &folder_results(results, results_dir)?,
            self.config,
            results_dir,
        )
    }
}

pub fn execute(cli: &Cli, args: &RunAllArgs) -> Result<ExitCode> {
    cli.refuse_dirty_results()?;
    let started = Instant::now();
    let matrix = &args.matrix;
    let (config, device) = matrix
        .experiment
        .resolve(default_experiment(), |c| apply_matrix_flags(c, matrix))?;
    let workspace = matrix.experiment.workspace(cli);
    experiment::check_names(&config, &workspace)?;
    let requests = experiment::expand(&config, device)?;
    let parallelism = parallelism(args.jobs, device)?;
    let mut outcomes = Outcomes {
        config: &config,
        statuses: requests.iter().map(|_| None).collect(),
    };
    let mut cache = DatasetCache::default();
    let total = requests.len();
    if parallelism.jobs == 1 {
        for (i, request) in requests.iter().enumerate() {
            let label = cell_label(i, total, request);
            if workspace.verbose {
                eprintln!("{label} ...");
            }
            let status = experiment::run_one(request, &config, &workspace, &mut cache)
                .with_context(|| label.clone())?;
            outcomes.record(i, &label, status);
        }
    } else {
        run_in_children(
            cli,
            &config,
            &requests,
            &workspace,
            parallelism,
            &mut cache,
            &mut outcomes,
        )?;
    }
    outcomes.finish(&workspace.results_dir, started, parallelism)?;
    Ok(ExitCode::SUCCESS)
}

/// Reuses what is stored, then runs the rest as `run-cell` children, each handed its one-cell
/// plan on standard input, `parallelism.jobs` at a time. Cells start last-listed first:
/// matrices list the cheap baselines first, so the long runs start early and the short ones
/// fill the cores at the end.
fn run_in_children(
    cli: &Cli,
    config: &ExperimentConfig,
    requests: &[RunRequest],
    workspace: &Workspace,
    parallelism: Parallelism,
    cache: &mut DatasetCache,
    outcomes: &mut Outcomes,
) -> Result<()> {
    let total = requests.len();
    // The children's thread count is part of their runs' identity.
    let threads = i32::try_from(parallelism.threads_per_job).context("thread count")?;
    let mut pending = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        let label = cell_label(i, total, request);
        let (path, stored) = experiment::locate(request, config, workspace, cache, threads)
            .with_context(|| label.clone())?;
        match stored {
            Some(stored) => outcomes.record(i, &label, RunStatus::Reused(stored, path)),
            None => pending.push((i, path)),
        }
    }
    if pending.is_empty() {
        return Ok(());
    }
    eprintln!(
        "running {} of {total} runs, {} at a time with {} libtorch thread(s) each",
        pending.len(),
        parallelism.jobs,
        parallelism.threads_per_job
    );
    let tasks = pending
        .iter()
        .enumerate()
        .rev()
        .map(|(k, &(i, _))| {
            let cell = PlanCell {
                index: 0,
                run_id: String::new(),
                planned_device_kind: String::new(),
                experiment: cell_experiment(config, &requests[i]),
            };
            Ok(Task {
                id: k,
                args: cell_arguments(cli, workspace.force),
                stdin: serde_json::to_vec(&cell)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let program = std::env::current_exe().context("locating the mmsr-bench binary")?;
    let mut unreadable = Vec::new();
    let failures = run_tasks(&program, tasks, parallelism, |k, outcome| {
        let (i, path) = &pending[k];
        let label = cell_label(*i, total, &requests[*i]);
        if outcome.is_err() {
            eprintln!("{label}: failed");
            return;
        }
        match RunResult::load(path) {
            Ok(result) => outcomes.record(*i, &label, RunStatus::Completed(result, path.clone())),
            Err(e) => unreadable.push(format!("{label}: {e:#}")),
        }
    });
    if failures.is_empty() && unreadable.is_empty() {
        return Ok(());
    }
    let mut message = Vec::new();
    for (k, failure) in &failures {
        let i = pending[*k].0;
        message.push(format!(
            "{} failed ({}):\n{}",
            cell_label(i, total, &requests[i]),
            failure.status,
            failure.stderr_tail
        ));
    }
    message.extend(unreadable);
    let done = outcomes.statuses.iter().flatten().count();
    anyhow::bail!(
        "{}\n{done} of {total} runs are stored; run-all again resumes from there",
        message.join("\n")
    )
}

/// `mmsr-bench run-cell` on the one-cell plan it reads from standard input, in this run's
/// data and results folders.
fn cell_arguments(cli: &Cli, force: bool) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "--data-dir".into(),
        cli.data_dir.clone().into(),
        "--results-dir".into(),
        cli.results_dir.clone().into(),
        "--quiet".into(),
    ];
    if cli.allow_dirty {
        args.push("--allow-dirty".into());
    }
    args.extend([
        "run-cell".into(),
        "--plan".into(),
        "-".into(),
        "--index".into(),
        "0".into(),
    ]);
    if force {
        args.push("--force".into());
    }
    args
}

/// The runs a folder's summary covers: this run's, and every other result already stored in
/// the folder (a study made with several configs, e.g. one model with longer patience, or more
/// seeds of a few models), since `check` expects a row for every cell that has run files.
pub(crate) fn folder_results(
    mut results: Vec<RunResult>,
    results_dir: &Path,
) -> Result<Vec<RunResult>> {
    let stored = crate::record::read::load_results(results_dir)?;
    for (_, result) in stored {
        if !results.iter().any(|r| r.run_id == result.run_id) {
            results.push(result);
        }
    }
    Ok(results)
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
    let markdown = format!(
        "{}\n{}",
        table::summary_table(&rows, true),
        table::data_notes(results)
    );
    write_atomically(&results_dir.join("summary.md"), markdown.as_bytes())?;
    let json = serde_json::to_vec_pretty(&rows)?;
    write_atomically(&results_dir.join("summary.json"), &json)?;
    println!(
        "summary written to {}",
        results_dir.join("summary.{md,json}").display()
    );
    Ok(())
}
