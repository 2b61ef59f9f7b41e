//! Command-line interface: one file per subcommand; each turns raw flags into resolved settings
//! and calls the library. No modelling logic lives here.

mod check;
mod docs;
mod download;
mod evaluate;
mod export;
mod leaderboard;
mod list;
mod merge;
mod parity;
mod plan;
mod prepare;
mod run;
mod run_all;
mod run_cell;
mod scaling;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::config::{apply_override, ExperimentConfig, Protocol};
use crate::dataset::missing::{DropTarget, MissingModality, MissingModalitySweep};
use crate::device::DeviceChoice;
use crate::experiment::Workspace;

#[derive(Debug, Parser)]
#[command(
    name = "mmsr-bench",
    version,
    about = "Benchmark harness for graph-based multimodal sequential recommendation (MMSR / HAN-GNN and baselines)"
)]
pub struct Cli {
    /// Directory of raw downloads and prepared datasets.
    #[arg(long, global = true, env = "MMSR_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Directory where result files and summaries are written.
    #[arg(
        long,
        global = true,
        env = "MMSR_RESULTS_DIR",
        default_value = "results"
    )]
    pub results_dir: PathBuf,
    /// No progress bars or per-epoch lines.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Let a binary built from uncommitted changes write results into a committed leaderboard
    /// folder (the results then carry its `-dirty` commit label, and `check` warns).
    #[arg(long, global = true)]
    pub allow_dirty: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train and evaluate one model on one dataset with one seed.
    Run(run::RunArgs),
    /// Run a matrix of models × datasets × seeds and print mean ± std over seeds.
    RunAll(run_all::RunAllArgs),
    /// Compute HR/NDCG/MRR@K from a file of scores or ranks (the evaluator contract).
    Evaluate(evaluate::EvaluateArgs),
    /// Prepare a dataset (filter, ids, split) and store it under <data-dir>/prepared/<name>.
    Prepare(prepare::PrepareArgs),
    /// Write a dataset and its split in another library's format (RecBole atomic files).
    Export(export::ExportArgs),
    /// Fetch and verify the raw Amazon-2014 files of a dataset into <data-dir>/raw/<name>.
    Download(download::DownloadArgs),
    /// Write a matrix as a plan for Slurm job arrays (one cell per line).
    Plan(plan::PlanArgs),
    /// Run one cell of a plan (an array task: --index defaults to $SLURM_ARRAY_TASK_ID).
    RunCell(run_cell::RunCellArgs),
    /// Summarise a plan's results as run-all does, plus the leaderboard.
    Merge(merge::MergeArgs),
    /// Tables (terminal, Markdown, CSV, JSON) and SVG plots from result files.
    Leaderboard(leaderboard::LeaderboardArgs),
    /// Audit a submitted results directory (exit 0 clean, 1 findings, 2 unusable input).
    Check(check::CheckArgs),
    /// The scaling study of the O(2L|U||E|) claim: time per epoch and per 1,000 inferences
    /// against |U|, K, C, m, L, D and B, with log-log fits (spec §9).
    Scaling(scaling::ScalingArgs),
    /// HAN-GNN (compat) against the official model on the golden fixture (outputs, loss, every
    /// gradient), on any device; exit 1 when a comparison is out of tolerance.
    Parity(parity::ParityArgs),
    /// List the datasets and whether they are prepared.
    Datasets,
    /// List the models (`--params`: with every parameter and its default; `--markdown`: as the
    /// README's tables).
    Models(list::ModelsArgs),
    /// Regenerate the generated tables of README.md, docs/ and leaderboard/ (`--check`: verify).
    Docs(docs::DocsArgs),
}

/// Flags shared by `run` and `run-all`.
#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// YAML experiment file (models, datasets, seeds, train, eval, synthetic sections).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N (auto = CUDA when available).
    #[arg(long)]
    pub device: Option<String>,
    /// Upper bound on training epochs (early stopping may end sooner).
    #[arg(long)]
    pub max_epochs: Option<usize>,
    /// `validation` (select on validation, test once), `validation-with-test-curve` (the same,
    /// plus the original code's best-over-epochs-on-test numbers, labelled as optimistic) or
    /// `official` (the original code's protocol, to reproduce its numbers: validation samples
    /// trained on, test every epoch, its stopping rule; optimistic, never a leaderboard row).
    #[arg(long, value_enum)]
    pub protocol: Option<Protocol>,
    /// Override any setting: KEY=VALUE with a dotted key, e.g. train.batch_size=64 or model.dropout=0.3.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Missing-modality study (spec §8): hide this modality's inputs at a random --drop-rate
    /// of history positions (a fixed pattern per seed for validation and test, an independent
    /// one for training). Replaces the config's `missing_modality` sweep.
    #[arg(long, value_enum, requires = "drop_rate")]
    pub drop_modality: Option<DropTarget>,
    /// Share of history positions whose --drop-modality is hidden, in [0, 1].
    #[arg(long, requires = "drop_modality")]
    pub drop_rate: Option<f64>,
    /// Run again even if a result with the same run id exists.
    #[arg(long)]
    pub force: bool,
}

impl ExperimentArgs {
    /// Base config (file or `fallback`) with the flags applied, `--set` last.
    fn resolve(
        &self,
        fallback: ExperimentConfig,
        apply: impl FnOnce(&mut ExperimentConfig),
    ) -> Result<(ExperimentConfig, DeviceChoice)> {
        let mut config = match &self.config {
            Some(path) => ExperimentConfig::from_file(path)?,
            None => fallback,
        };
        apply(&mut config);
        if let Some(epochs) = self.max_epochs {
            config.train.max_epochs = epochs;
        }
        if let Some(protocol) = self.protocol {
            config.train.protocol = protocol;
        }
        if let Some(device) = &self.device {
            config.device = Some(device.clone());
        }
        if let (Some(drop), Some(rate)) = (self.drop_modality, self.drop_rate) {
            config.missing_modality = Some(MissingModalitySweep::single(MissingModality::new(
                drop, rate,
            )));
        }
        for assignment in &self.overrides {
            config = apply_override(&config, assignment)?;
        }
        let device: DeviceChoice = config.device.as_deref().unwrap_or("auto").parse()?;
        Ok((config, device))
    }

    fn workspace(&self, cli: &Cli) -> Workspace {
        Workspace {
            data_dir: cli.data_dir.clone(),
            results_dir: cli.results_dir.clone(),
            verbose: !cli.quiet,
            force: self.force,
        }
    }
}

impl Cli {
    /// Results written under `leaderboard/` come from committed code (see
    /// [`crate::record::env::refuse_dirty_results`]).
    fn refuse_dirty_results(&self) -> Result<()> {
        crate::record::env::refuse_dirty_results(
            &self.results_dir,
            crate::record::env::build_commit(),
            self.allow_dirty,
        )
        .map_err(anyhow::Error::msg)
    }
}

/// Runs the parsed command; `Ok(code)` for normal ends (including failed checks).
pub fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Run(args) => run::execute(&cli, args),
        Command::RunAll(args) => run_all::execute(&cli, args),
        Command::Evaluate(args) => evaluate::execute(args),
        Command::Prepare(args) => prepare::execute(&cli, args),
        Command::Download(args) => download::execute(&cli, args),
        Command::Export(args) => export::execute(&cli, args),
        Command::Plan(args) => plan::execute(&cli, args),
        Command::RunCell(args) => run_cell::execute(&cli, args),
        Command::Merge(args) => merge::execute(&cli, args),
        Command::Leaderboard(args) => leaderboard::execute(args),
        Command::Check(args) => check::execute(&cli, args),
        Command::Scaling(args) => scaling::execute(&cli, args),
        Command::Parity(args) => parity::execute(args),
        Command::Datasets => list::datasets(&cli),
        Command::Models(args) => list::models(args),
        Command::Docs(args) => docs::execute(args),
    }
}
