//! `mmsr-bench prepare`: build a prepared dataset and store it in the data directory.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use crate::data::registry::{self, AMAZON_DATASETS, SYNTHETIC};
use crate::data::sequence_file::read_sequence_file;
use crate::data::synthetic::{self, SyntheticConfig};
use crate::data::{store, ItemSideInfo, PreparedDataset, Provenance, SplitConfig};

use super::Cli;

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// Name of the prepared dataset (`synthetic` writes the embedded dataset to disk).
    pub name: String,
    /// Build it from a one-user-per-line sequence file (`user item item ...`, oldest first).
    #[arg(long)]
    pub from_sequences: Option<PathBuf>,
    /// Iterative k-core filter applied before the split (0 = none).
    #[arg(long, default_value_t = 5)]
    pub k_core: usize,
}

pub fn execute(cli: &Cli, args: &PrepareArgs) -> Result<ExitCode> {
    let dataset = match (&args.from_sequences, args.name.as_str()) {
        (None, SYNTHETIC) => {
            synthetic::generate(&SyntheticConfig::default(), &SplitConfig::default())
        }
        (Some(path), _) => {
            let mut log = read_sequence_file(path)?;
            if args.k_core > 0 {
                log.k_core(args.k_core);
            }
            let interactions = log.into_dataset();
            anyhow::ensure!(
                interactions.num_users() > 0,
                "no user survives the {}-core filter of {}",
                args.k_core,
                path.display()
            );
            let provenance = Provenance {
                source: format!("sequence file {}", path.display()),
                k_core: (args.k_core > 0).then_some(args.k_core),
                min_rating: None,
            };
            let side = ItemSideInfo {
                titles: vec![None; interactions.num_items()],
                ..ItemSideInfo::default()
            };
            PreparedDataset::new(
                &args.name,
                provenance,
                interactions,
                SplitConfig::default(),
                side,
            )
        }
        (None, name) if AMAZON_DATASETS.contains(&name) => bail!(
            "preparing {name} from the raw Amazon files is not available in this version; \
             use --from-sequences FILE with a one-user-per-line sequence file"
        ),
        (None, name) => bail!("dataset {name:?} needs a source: pass --from-sequences FILE"),
    };
    let dir = registry::prepared_dir(&cli.data_dir, &args.name);
    let manifest = store::save(&dataset, &dir)?;
    let c = manifest.counts;
    println!(
        "prepared {}: {} users, {} items, {} interactions; {} train / {} validation / {} test samples",
        manifest.name, c.users, c.items, c.interactions, c.train_samples, c.valid_samples, c.test_samples
    );
    for (modality, info) in &manifest.modalities {
        println!(
            "  {}: {} of {} items, {}-d ({})",
            modality.name(),
            info.items_with,
            c.items,
            info.dim,
            info.source
        );
    }
    println!(
        "written to {} (content hash {})",
        dir.display(),
        &manifest.content_hash[..16]
    );
    Ok(ExitCode::SUCCESS)
}
