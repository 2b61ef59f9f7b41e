//! `mmsr-bench export`: a dataset in another library's format, split for split.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use crate::dataset::registry;
use crate::dataset::store;
use crate::dataset::synthetic::SyntheticConfig;

use super::Cli;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// RecBole atomic files plus benchmark split files and the config that loads them.
    Recbole,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A prepared dataset, `synthetic`, or a reduced view such as `beauty-offline@500x500`.
    pub dataset: String,
    #[arg(long, value_enum, default_value = "recbole")]
    pub format: ExportFormat,
    /// Output folder; the files go to OUT/<dataset>/.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn execute(cli: &Cli, args: &ExportArgs) -> Result<ExitCode> {
    let data = registry::load(
        &args.dataset,
        &cli.data_dir,
        &SyntheticConfig::default(),
        None,
    )
    .with_context(|| format!("loading {}", args.dataset))?;
    let hash = store::content_hash(&data)?;
    let exported = match args.format {
        ExportFormat::Recbole => crate::dataset::recbole::export(&data, &args.dataset, &args.out)?,
    };
    for file in &exported.files {
        println!("wrote {}", file.display());
    }
    let c = data.counts();
    println!(
        "{}: {} users, {} items; {} train / {} validation / {} test samples (content hash {})",
        args.dataset,
        c.users,
        c.items,
        c.train_samples,
        c.valid_samples,
        c.test_samples,
        &hash[..16]
    );
    println!(
        "RecBole: run_recbole(model='SASRec', dataset='{}', config_file_list=['{}'])",
        args.dataset,
        exported
            .dir
            .join(format!("{}.yaml", args.dataset))
            .display()
    );
    Ok(ExitCode::SUCCESS)
}
