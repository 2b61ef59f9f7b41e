//! `mmsr-bench prepare`: build a prepared dataset (filter, ids, split, features, codes) and store
//! it in the data directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::config::require;
use crate::config::{MAX_CLUSTERS, MAX_DIM, MAX_ITERATIONS};
use crate::dataset::registry::{self, AMAZON_DATASETS, SYNTHETIC};
use crate::dataset::split::SplitScheme;
use crate::dataset::synthetic::{self, SyntheticConfig};
use crate::dataset::{store, SplitConfig};
use crate::device::probe::peak_rss_bytes;
use crate::device::DeviceChoice;
use crate::modality::codes::LinkMetric;
use crate::prepare::features::torchscript::Pooling;
use crate::prepare::sources::registry::FileRole;
use crate::prepare::{self, offline, PrepareOptions, SideSpec, TextEncoderSpec};

use super::Cli;

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// beauty, clothing, sport, toy, kitchen or phone (from the raw files `download` fetched),
    /// beauty-offline, sport-offline, toy-offline, clothing-offline, kitchen-offline or
    /// phone-offline (from the shared data folder, recipes in datasets/offline/), `synthetic`
    /// (writes the embedded dataset), or a new name with --from-sequences.
    pub name: String,
    /// The shared data folder the offline recipes read.
    #[arg(long, env = "MMSR_SHARED_DATA", default_value = crate::prepare::offline::DEFAULT_SHARED_DATA)]
    pub shared_data: PathBuf,
    /// Build it from a one-user-per-line sequence file (`user item item ...`, oldest first).
    #[arg(long)]
    pub from_sequences: Option<PathBuf>,
    /// Build it from a RecBole atomic dataset: its `.inter` file (user_id, item_id, timestamp),
    /// or a folder holding one (split files `*.train/valid/test.inter` are ignored); a `.item`
    /// file of the same name beside it gives the item side information.
    #[arg(long, conflicts_with = "from_sequences")]
    pub from_recbole: Option<PathBuf>,
    /// RecBole atomic item file (.item) with side information for --from-sequences or
    /// --from-recbole.
    #[arg(long)]
    pub item_file: Option<PathBuf>,
    /// Item-file fields that form the text modality.
    #[arg(long, value_delimiter = ',', default_value = "title")]
    pub text_fields: Vec<String>,
    /// Item-file fields whose text stands in for image features (labelled as a stand-in).
    #[arg(long, value_delimiter = ',')]
    pub image_stand_in_fields: Vec<String>,
    /// Amazon datasets: read the ratings CSV (official) or the 5-core reviews.
    #[arg(long, value_enum, default_value = "ratings")]
    pub interactions: InteractionSource,
    /// Amazon datasets: proceed without image features (the image modality is then missing).
    #[arg(long)]
    pub without_images: bool,
    /// Directory with the dataset registry YAMLs (default: ./datasets, else the built-in copy).
    #[arg(long)]
    pub registry: Option<PathBuf>,
    /// Iterative k-core filter applied before the split (0 = none).
    #[arg(long, default_value_t = 5)]
    pub k_core: usize,
    /// user-ratio (MMSR's: the last 20 % of each history is test) or leave-one-out (the last
    /// item is test, the one before it validation: SASRec's and most later papers' protocol).
    #[arg(long, value_enum, default_value = "user-ratio")]
    pub split: SplitScheme,
    /// Modality codes per modality (C).
    #[arg(long, default_value_t = 30)]
    pub clusters: usize,
    /// Codes linked to each item per modality (K).
    #[arg(long, default_value_t = 3)]
    pub links: usize,
    #[arg(long, value_enum, default_value = "cosine")]
    pub link_metric: LinkMetricArg,
    /// Upper bound on autoencoder epochs (official: 500).
    #[arg(long, default_value_t = 500)]
    pub ae_max_epochs: usize,
    /// Dimension of the built-in TF-IDF text encoder's vectors (not used with --text-encoder).
    #[arg(long, default_value_t = 768)]
    pub text_dim: usize,
    /// Encode the item text with a pretrained model instead: `minilm` for the built-in
    /// all-MiniLM-L6-v2 (384-d; ./ci/setup-minilm.sh installs it, MMSR_MINILM_DIR overrides
    /// where it is read from), or a DIR with a TorchScript export, encoder.pt and tokenizer.json
    /// (e.g. t5-base; see docs/datasets.md; write a directory called minilm as ./minilm). Nothing is
    /// downloaded.
    #[arg(long, value_parser = parse_text_encoder)]
    pub text_encoder: Option<TextEncoderArg>,
    /// Pooling of a TorchScript encoder's hidden states [default: official] (minilm always
    /// averages over real tokens, as sentence-transformers does).
    #[arg(long, value_enum, requires = "text_encoder")]
    pub text_pooling: Option<Pooling>,
    /// Device for the autoencoders (auto = CUDA when available).
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// The value of `--text-encoder`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextEncoderArg {
    /// The built-in all-MiniLM-L6-v2 from [`crate::text::minilm::default_dir`].
    MiniLm,
    /// A directory with a TorchScript export.
    TorchScript(PathBuf),
}

fn parse_text_encoder(value: &str) -> Result<TextEncoderArg, String> {
    match value {
        "" => Err("expected `minilm` or a directory with encoder.pt and tokenizer.json".into()),
        "minilm" => Ok(TextEncoderArg::MiniLm),
        dir => Ok(TextEncoderArg::TorchScript(PathBuf::from(dir))),
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum InteractionSource {
    Ratings,
    Reviews,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LinkMetricArg {
    Cosine,
    Euclidean,
}

pub fn execute(cli: &Cli, args: &PrepareArgs) -> Result<ExitCode> {
    let start = Instant::now();
    require(
        (1..=MAX_CLUSTERS).contains(&args.clusters),
        "--clusters",
        args.clusters,
        &format!("between 1 and {MAX_CLUSTERS} (the official C is 30)"),
    )?;
    require(
        args.ae_max_epochs <= MAX_ITERATIONS,
        "--ae-max-epochs",
        args.ae_max_epochs,
        &format!("at most {MAX_ITERATIONS} (the official autoencoder trains 500)"),
    )?;
    require(
        (1..=MAX_DIM).contains(&args.text_dim),
        "--text-dim",
        args.text_dim,
        &format!("between 1 and {MAX_DIM} (the built-in encoder's default is 768)"),
    )?;
    require(
        (1..=args.clusters).contains(&args.links),
        "--links",
        args.links,
        &format!("between 1 and --clusters ({})", args.clusters),
    )?;
    let device = args.device.parse::<DeviceChoice>()?.resolve()?;
    let mut options = PrepareOptions {
        k_core: args.k_core,
        text_dim: args.text_dim,
        text_encoder: match &args.text_encoder {
            None => None,
            Some(TextEncoderArg::MiniLm) => {
                if args.text_pooling.is_some() {
                    bail!("--text-pooling applies to a TorchScript --text-encoder DIR; minilm always averages over real tokens (sentence-transformers' pooling)");
                }
                Some(TextEncoderSpec::MiniLm {
                    dir: crate::text::minilm::default_dir(),
                })
            }
            Some(TextEncoderArg::TorchScript(dir)) => Some(TextEncoderSpec::TorchScript {
                dir: dir.clone(),
                pooling: args.text_pooling.unwrap_or(Pooling::Official),
            }),
        },
        split: args.split,
        ..PrepareOptions::default()
    };
    options.codes.clusters = args.clusters;
    options.codes.links = args.links;
    options.codes.autoencoder_max_epochs = args.ae_max_epochs;
    options.codes.metric = match args.link_metric {
        LinkMetricArg::Cosine => LinkMetric::Cosine,
        LinkMetricArg::Euclidean => LinkMetric::Euclidean,
    };
    let registry_dir = args
        .registry
        .as_deref()
        .or_else(|| Some(Path::new("datasets")).filter(|d| d.is_dir()));
    let recipe = match (&args.from_sequences, &args.from_recbole) {
        (None, None) => offline::find(&args.name, registry_dir)?,
        _ => None,
    };
    if args.item_file.is_some() && args.from_sequences.is_none() && args.from_recbole.is_none() {
        bail!("--item-file goes with --from-sequences or --from-recbole");
    }
    let outcome = match (&args.from_sequences, args.name.as_str()) {
        (None, _) if args.from_recbole.is_some() => {
            let given = args.from_recbole.as_deref().expect("matched");
            let inter = recbole_inter_file(given)?;
            let item_file = args.item_file.clone().or_else(|| {
                Some(inter.with_extension("item")).filter(|p| p.is_file())
            });
            if let Some(path) = &item_file {
                eprintln!("  item side information: {}", path.display());
            }
            let side = item_file.as_ref().map_or_else(SideSpec::default, |path| {
                SideSpec::recbole(path, &args.text_fields, &args.image_stand_in_fields)
            });
            prepare::from_recbole(&args.name, &inter, &side, &options, device)?
        }
        (None, SYNTHETIC) => prepare::PrepareOutcome {
            dataset: synthetic::generate(
                &SyntheticConfig::default(),
                &SplitConfig {
                    scheme: args.split,
                    ..SplitConfig::default()
                },
            ),
            notes: vec!["the embedded generator with its default settings".into()],
            warnings: Vec::new(),
        },
        (Some(path), _) => {
            let side = args.item_file.as_ref().map_or_else(SideSpec::default, |path| {
                SideSpec::recbole(path, &args.text_fields, &args.image_stand_in_fields)
            });
            prepare::from_sequences(&args.name, path, &side, &options, device)?
        }
        (None, _) if recipe.is_some() => {
            let (recipe, origin) = recipe.expect("matched");
            eprintln!("  recipe: {origin}");
            offline::prepare(&recipe, &origin, &args.shared_data, &options, device)?
        }
        (None, name) if AMAZON_DATASETS.contains(&name) => {
            let role = match args.interactions {
                InteractionSource::Ratings => FileRole::Ratings,
                InteractionSource::Reviews => FileRole::Reviews,
            };
            prepare::from_amazon(
                name,
                &cli.data_dir,
                args.registry.as_deref(),
                role,
                !args.without_images,
                &options,
                device,
            )?
        }
        (None, name) => bail!(
            "dataset {name:?} needs a source: one of {}, one of {} (offline recipes), --from-sequences FILE or --from-recbole DIR",
            AMAZON_DATASETS.join(", "),
            offline::names().join(", ")
        ),
    };
    for note in &outcome.notes {
        eprintln!("  {note}");
    }
    for warning in &outcome.warnings {
        eprintln!("WARNING: {warning}");
    }
    let dir = registry::prepared_dir(&cli.data_dir, &args.name);
    let manifest = store::save(&outcome.dataset, &dir)?;
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
    if let Some(codes) = &manifest.codes {
        for (modality, book) in &codes.books {
            println!(
                "  {} codes: {}, {} items linked",
                modality.name(),
                book.codes,
                book.linked_items
            );
        }
    }
    println!(
        "written to {} (content hash {}) in {:.1} s, peak memory {:.0} MB",
        dir.display(),
        &manifest.content_hash[..16],
        start.elapsed().as_secs_f64(),
        peak_rss_bytes().unwrap_or(0) as f64 / 1e6
    );
    Ok(ExitCode::SUCCESS)
}

/// The interaction file of a RecBole dataset: `path` itself, or the one `*.inter` in the folder
/// `path` that is not a benchmark split file.
fn recbole_inter_file(path: &Path) -> Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.ends_with(".inter")
                && ![".train.inter", ".valid.inter", ".test.inter"]
                    .iter()
                    .any(|s| name.ends_with(s))
        })
        .collect();
    found.sort();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "{}: no RecBole interaction file (NAME.inter) in this folder",
            path.display()
        ),
        many => bail!(
            "{}: several interaction files ({}); name one with --from-recbole FILE",
            path.display(),
            many.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
