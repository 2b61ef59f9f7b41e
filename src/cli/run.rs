//! `mmsr-bench run`: one model, one dataset, one seed.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use std::path::PathBuf;

use crate::config::{ExperimentConfig, ModelSpec};
use crate::dataset::official::{BundleOrder, OfficialConfig};
use crate::dataset::registry::OFFICIAL;
use crate::experiment::{self, DatasetCache, RunStatus};
use crate::report::table;

use super::{Cli, ExperimentArgs};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Model name (see `mmsr-bench models`); taken from --config when it names exactly one.
    #[arg(long)]
    pub model: Option<String>,
    /// Dataset name (see `mmsr-bench datasets`).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Seed for initialisation, shuffling and dropout.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run on the authors' processed folder (train.txt/test.txt sample pickles and optional
    /// centre pickles) instead of a dataset name.
    #[arg(long, conflicts_with = "dataset")]
    pub official_dir: Option<PathBuf>,
    /// Which modality the official bundle lists [1] and [2] hold.
    #[arg(
        long,
        value_enum,
        default_value = "text-image",
        requires = "official_dir"
    )]
    pub bundle_order: BundleOrder,
    #[command(flatten)]
    pub experiment: ExperimentArgs,
}

pub fn execute(cli: &Cli, args: &RunArgs) -> Result<ExitCode> {
    cli.refuse_dirty_results()?;
    let (config, device) = args.experiment.resolve(ExperimentConfig::default(), |c| {
        if let Some(model) = &args.model {
            // Keep the file's parameters when it configures the same model.
            let params = c
                .models
                .iter()
                .find(|m| &m.name == model)
                .map(|m| m.params.clone());
            c.models = vec![ModelSpec {
                name: model.clone(),
                params: params.unwrap_or_default(),
            }];
        }
        if let Some(dataset) = &args.dataset {
            c.datasets = vec![dataset.clone()];
        }
        if let Some(seed) = args.seed {
            c.seeds = vec![seed];
        }
        if let Some(dir) = &args.official_dir {
            c.datasets = vec![OFFICIAL.to_string()];
            c.official = Some(OfficialConfig::from_command_line(
                dir.clone(),
                args.bundle_order,
            ));
        }
        if c.datasets.is_empty() {
            c.datasets = vec!["synthetic".to_string()];
        }
        if c.seeds.is_empty() {
            c.seeds = vec![crate::DEFAULT_SEED];
        }
    })?;
    anyhow::ensure!(
        config.models.len() == 1 && config.datasets.len() == 1 && config.seeds.len() == 1,
        "`run` takes exactly one model, dataset and seed (got {} models, {} datasets, {} seeds); use `run-all` for a matrix",
        config.models.len(),
        config.datasets.len(),
        config.seeds.len()
    );
    let workspace = args.experiment.workspace(cli);
    experiment::check_names(&config, &workspace)?;
    let request = experiment::expand(&config, device)?.remove(0);
    let status = experiment::run_one(&request, &config, &workspace, &mut DatasetCache::default())?;
    let result = status.result();
    let note = match &status {
        RunStatus::Completed(..) => "written to",
        RunStatus::Reused(..) => "already computed (use --force to re-run); read from",
    };
    println!(
        "{} on {} (seed {}, {}, {} parameters{})",
        result.config.model,
        result.config.dataset,
        result.config.seed,
        result.config.device,
        result.num_parameters,
        result.selected_epoch.map_or(String::new(), |e| format!(
            ", selected epoch {e} of {}",
            result.epochs_run
        )),
    );
    println!("{}", table::run_table(result));
    println!("result {note} {}", status.path().display());
    Ok(ExitCode::SUCCESS)
}
