//! `mmsr-bench scaling`: the scaling study of spec §9 (`baselines/scaling.yaml`), written as
//! scaling.{json,md} and plots/time-vs-{users,edges}.svg.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use super::leaderboard::draw_atomically;
use super::Cli;
use crate::config::MAX_BATCH_SIZE;
use crate::dataset::registry;
use crate::device::DeviceChoice;
use crate::record::result::write_atomically;
use crate::scaling::analysis::analyse;
use crate::scaling::report::{self as scaling_report, Axis};
use crate::scaling::{run_study, ScalingConfig, Study, StudyOptions};

#[derive(Debug, Args)]
pub struct ScalingArgs {
    /// YAML study file (dataset, models, defaults, factors); built-in defaults without it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Dataset to study (replaces the file's).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Comma-separated graph models (replaces the file's; detail and dense lists are kept
    /// where they name these models).
    #[arg(long, value_delimiter = ',')]
    pub models: Option<Vec<String>>,
    /// Every user, and every model on every factor: the study for a GPU.
    #[arg(long)]
    pub full: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Samples per inference batch.
    #[arg(long, default_value_t = 64)]
    pub eval_batch_size: usize,
    /// Re-analyse a finished study from its folder's scaling.json with this binary's fits,
    /// verdict and report, without measuring again (into --out, or back into that folder).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "dataset", "models", "full"])]
    pub report_from: Option<PathBuf>,
    /// Output folder (default: <results-dir>/scaling-<dataset>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn execute(cli: &Cli, args: &ScalingArgs) -> Result<ExitCode> {
    if let Some(dir) = &args.report_from {
        let path = dir.join("scaling.json");
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut study: Study = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not a scaling study written by this version",
                path.display()
            )
        })?;
        study.analysis = analyse(&study.measurements);
        write_study(&study, args.out.as_deref().unwrap_or(dir), cli.quiet)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut config = match &args.config {
        Some(path) => ScalingConfig::from_file(path)?,
        None => ScalingConfig::default(),
    };
    if let Some(dataset) = &args.dataset {
        config.dataset = dataset.clone();
    }
    if let Some(models) = &args.models {
        config.models = models.clone();
        config.dense.retain(|m| models.contains(m));
        config.detail_models.retain(|m| models.contains(m));
    }
    if args.full {
        config.base_users = None;
        config.detail_models = config.models.clone();
    }
    crate::scaling::check(&config)?;
    anyhow::ensure!(
        (1..=MAX_BATCH_SIZE).contains(&args.eval_batch_size),
        "--eval-batch-size {} is out of range: between 1 and {MAX_BATCH_SIZE} (a batch scores every item at once)",
        args.eval_batch_size
    );
    let device = args.device.parse::<DeviceChoice>()?.resolve()?;
    let data = registry::load(&config.dataset, &cli.data_dir, &config.synthetic, None)
        .with_context(|| format!("loading {} for the scaling study", config.dataset))?;
    let study = run_study(
        &config,
        &data,
        &StudyOptions {
            device,
            eval_batch: args.eval_batch_size,
            verbose: !cli.quiet,
        },
    )?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| cli.results_dir.join(format!("scaling-{}", config.dataset)));
    write_study(&study, &out, cli.quiet)?;
    Ok(ExitCode::SUCCESS)
}

/// scaling.json, scaling.md and the two plots, each written atomically.
fn write_study(study: &Study, out: &Path, quiet: bool) -> Result<()> {
    std::fs::create_dir_all(out.join("plots"))
        .with_context(|| format!("creating {}", out.display()))?;
    let json = serde_json::to_vec_pretty(study)?;
    write_atomically(&out.join("scaling.json"), &json)?;
    let markdown = scaling_report::markdown(study);
    write_atomically(&out.join("scaling.md"), markdown.as_bytes())?;
    for axis in [Axis::Users, Axis::Edges] {
        let path = out.join("plots").join(format!("{}.svg", axis.file_stem()));
        draw_atomically(&path, |tmp| scaling_report::plot(study, axis, tmp))?;
    }
    if !quiet {
        print!("{markdown}");
    }
    eprintln!("wrote {}", out.display());
    Ok(())
}
