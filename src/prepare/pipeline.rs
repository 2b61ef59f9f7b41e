//! From sources to prepared datasets: filter, ids and split, then item features and modality
//! codes. Used by `mmsr-bench prepare`; every step reports what it kept.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tch::Device;

use super::features::minilm;
use super::features::text::{encode_attribute_bags, encode_titles};
use super::features::torchscript::{Pooling, TorchScriptEncoder};
use super::sequence_file::read_sequence_file;
use super::sources::amazon::{
    image_features_for_items, read_interactions, require_raw_file, titles_for_items,
};
use super::sources::registry::{self, FileRole};
use super::sources::side::{Encoding, SideSource};
use crate::dataset::log::RawLog;
use crate::dataset::prepared::{PreparedDataset, Provenance};
use crate::dataset::split::{SplitConfig, SplitScheme};
use crate::modality::codes::CodeConfig;
use crate::modality::compute::build_codes;
use crate::modality::{FeatureTable, ItemSideInfo};

/// Settings shared by every source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrepareOptions {
    /// Iterative k-core applied before the split (0 = none).
    pub k_core: usize,
    /// Output dimension of the built-in text encoder (t5-base's 768 by default).
    pub text_dim: usize,
    pub text_seed: u64,
    /// A pretrained encoder for the item text instead of the built-in TF-IDF one.
    pub text_encoder: Option<TextEncoderSpec>,
    pub codes: CodeConfig,
    /// User-ratio (MMSR's) or leave-one-out (the literature's) split.
    pub split: SplitScheme,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum TextEncoderSpec {
    /// A user-supplied TorchScript export: `dir` holds encoder.pt and tokenizer.json.
    TorchScript { dir: PathBuf, pooling: Pooling },
    /// The built-in all-MiniLM-L6-v2 (`crate::text::minilm`), read from `dir`.
    MiniLm { dir: PathBuf },
}

impl Default for PrepareOptions {
    fn default() -> Self {
        Self {
            k_core: 5,
            text_dim: 768,
            text_seed: crate::DEFAULT_SEED,
            text_encoder: None,
            codes: CodeConfig::default(),
            split: SplitScheme::UserRatio,
        }
    }
}

/// Item side information for sequence-file sources: where each modality's item text comes from.
/// The image modality exists offline only as a labelled stand-in (no image features are stored).
#[derive(Debug, Clone, Default)]
pub struct SideSpec {
    pub text: Option<SideSource>,
    pub image_stand_in: Option<SideSource>,
}

impl SideSpec {
    /// A RecBole atomic `.item` file's fields for text and for the image stand-in.
    pub fn recbole(path: &Path, text_fields: &[String], image_stand_in_fields: &[String]) -> Self {
        let source = |fields: &[String]| {
            (!fields.is_empty()).then(|| SideSource::RecboleItem {
                path: path.to_path_buf(),
                fields: fields.to_vec(),
            })
        };
        Self {
            text: source(text_fields),
            image_stand_in: source(image_stand_in_fields),
        }
    }
}

/// A prepared dataset and what happened on the way (coverage, mismatches, timings).
pub struct PrepareOutcome {
    pub dataset: PreparedDataset,
    pub notes: Vec<String>,
    /// Lines that need the user's attention (counts that differ from the registry).
    pub warnings: Vec<String>,
}

fn timed<T>(notes: &mut Vec<String>, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let start = Instant::now();
    let value = f()?;
    notes.push(format!("{what}: {:.1} s", start.elapsed().as_secs_f64()));
    Ok(value)
}

fn filter_split(
    name: &str,
    mut log: RawLog,
    options: &PrepareOptions,
    source: String,
) -> PreparedDataset {
    log.retain_min_rating(0.0);
    if options.k_core > 0 {
        log.k_core(options.k_core);
    }
    let interactions = log.into_dataset();
    let provenance = Provenance {
        source,
        k_core: (options.k_core > 0).then_some(options.k_core),
        min_rating: Some(0.0),
    };
    let side = ItemSideInfo {
        titles: vec![None; interactions.num_items()],
        ..ItemSideInfo::default()
    };
    let split = SplitConfig {
        scheme: options.split,
        ..SplitConfig::default()
    };
    PreparedDataset::new(name, provenance, interactions, split, side)
}

/// Adds the modality codes (autoencoder, k-means, links) to a dataset with features.
fn add_codes(
    dataset: &mut PreparedDataset,
    options: &PrepareOptions,
    device: Device,
    notes: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    if dataset.side.image.is_none() && dataset.side.text.is_none() {
        notes.push(
            "no item features: no modality codes (graph models other than items-only need them)"
                .into(),
        );
        return Ok(());
    }
    let codes = timed(notes, "autoencoders, k-means and links", || {
        crate::guard::guarded(|| build_codes(&dataset.side, &options.codes, device)).map_err(
            |panic| {
                let message = crate::guard::first_line(&panic);
                if crate::guard::is_out_of_memory(&panic) {
                    anyhow::anyhow!("out of memory while computing the modality codes on {device:?} ({message}); prepare with --device cpu (host memory is larger; the autoencoder trains on batches of {} items)", options.codes.autoencoder_batch_size)
                } else {
                    anyhow::anyhow!("libtorch failed while computing the modality codes on {device:?}: {message} (an internal error: please report it with the command line)")
                }
            },
        )
    })?;
    let items = dataset.num_items();
    for (name, features, book) in [
        ("image", &dataset.side.image, &codes.image),
        ("text", &dataset.side.text, &codes.text),
    ] {
        if features.is_some() && book.is_none() {
            // A modality file that matches no surviving item (e.g. image features whose ASINs
            // are none of the items): dropped, not an error, and visible in the manifest.
            warnings.push(format!(
                "no item has the {name} modality (0 of {items} items covered): it is dropped, with no {name} codes; the manifest records modalities.{name}.items_with = 0. Check that the {name} source matches these items"
            ));
        }
        if let Some(book) = book {
            notes.push(format!(
                "{name} codes: {} clusters, {} items linked to {} codes each ({:?})",
                book.num_codes,
                book.linked_items(),
                options.codes.links,
                options.codes.metric
            ));
        }
    }
    dataset.codes = Some(codes);
    Ok(())
}

fn encode(
    texts: &[Option<String>],
    options: &PrepareOptions,
    seed_offset: u64,
) -> Result<FeatureTable> {
    encode_titles(texts, options.text_dim, options.text_seed + seed_offset)
        .context("encoding item text")
}

/// Attribute bags through the built-in encoder on whole tokens.
fn encode_bags(
    bags: &[Option<String>],
    options: &PrepareOptions,
    seed_offset: u64,
) -> Result<FeatureTable> {
    encode_attribute_bags(bags, options.text_dim, options.text_seed + seed_offset)
        .context("encoding item attributes")
}

/// One modality from a side source: every item's text, its coverage noted, encoded as text by
/// `encode_free_text` or as an attribute bag (the built-in encoder's seed + `seed_offset`).
fn side_table(
    what: &str,
    source: &SideSource,
    keys: &[String],
    notes: &mut Vec<String>,
    options: &PrepareOptions,
    seed_offset: u64,
    encode_free_text: impl FnOnce(&[Option<String>]) -> Result<FeatureTable>,
) -> Result<FeatureTable> {
    let texts = item_texts(source, keys)?;
    notes.push(format!(
        "{what} ({}): {} of {} items",
        source.describe(),
        texts.iter().flatten().count(),
        texts.len()
    ));
    match source.encoding() {
        Encoding::Text => encode_free_text(&texts),
        Encoding::AttributeBag => encode_bags(&texts, options, seed_offset),
    }
}

/// Each item's text from `source`, in item-id order (`keys[i]` is item `i + 1`).
fn item_texts(source: &SideSource, keys: &[String]) -> Result<Vec<Option<String>>> {
    let texts = source.read()?;
    Ok(keys.iter().map(|key| texts.get(key).cloned()).collect())
}

/// The text modality: the chosen pretrained encoder when given, else the built-in TF-IDF one.
fn encode_text(
    texts: &[Option<String>],
    options: &PrepareOptions,
    device: Device,
) -> Result<FeatureTable> {
    match &options.text_encoder {
        Some(TextEncoderSpec::TorchScript { dir, pooling }) => {
            Ok(TorchScriptEncoder::load(dir, device)?.encode(texts, *pooling)?)
        }
        Some(TextEncoderSpec::MiniLm { dir }) => Ok(minilm::encode_items(texts, dir, device)?),
        None => encode(texts, options, 0),
    }
}

/// The size of a raw log before filtering, to explain an empty result.
struct LogSize {
    rows: usize,
    users: usize,
    items: usize,
}

impl LogSize {
    fn of(log: &RawLog) -> Self {
        Self {
            rows: log.rows.len(),
            users: log.users.len(),
            items: log.items.len(),
        }
    }

    /// Empty data after the k-core filter is an error naming the file and the counts, never an
    /// empty prepared dataset.
    fn ensure_survivors(&self, dataset: &PreparedDataset, k: usize, path: &Path) -> Result<()> {
        anyhow::ensure!(
            dataset.interactions.num_users() > 0,
            "{}: no user survives the {k}-core filter ({} interactions of {} users on {} items before it; every user and item must keep at least {k} interactions). Check that this is the whole file, or lower --k-core",
            path.display(),
            self.rows,
            self.users,
            self.items
        );
        Ok(())
    }
}

/// One of the six Amazon-2014 datasets from its raw files in `<data_dir>/raw/<name>/`.
pub fn from_amazon(
    name: &str,
    data_dir: &Path,
    registry_dir: Option<&Path>,
    interactions: FileRole,
    with_images: bool,
    options: &PrepareOptions,
    device: Device,
) -> Result<PrepareOutcome> {
    let (source, _) = registry::load(name, registry_dir)?;
    let mut notes = Vec::new();
    let log_path = require_raw_file(&source, data_dir, interactions)?;
    let log = timed(
        &mut notes,
        &format!("reading {}", log_path.display()),
        || Ok(read_interactions(&log_path, interactions)?),
    )?;
    notes.push(format!(
        "{} interactions of {} users on {} items before filtering",
        log.rows.len(),
        log.users.len(),
        log.items.len()
    ));
    let origin = format!(
        "Amazon-2014 {} ({})",
        source.category,
        log_path.file_name().unwrap_or_default().to_string_lossy()
    );
    let before = LogSize::of(&log);
    let mut dataset = filter_split(name, log, options, origin);
    before.ensure_survivors(&dataset, options.k_core, &log_path)?;
    let keys = dataset.interactions.item_keys.clone();

    let meta_path = require_raw_file(&source, data_dir, FileRole::Meta)?;
    let (titles, coverage) = timed(&mut notes, "reading titles", || {
        Ok(titles_for_items(&meta_path, &keys)?)
    })?;
    notes.push(format!(
        "titles: {} of {} items ({} in meta)",
        coverage.with_title, coverage.items, coverage.in_meta
    ));
    dataset.side.text = Some(timed(&mut notes, "encoding titles", || {
        encode_text(&titles, options, device)
    })?);
    dataset.side.titles = titles;

    if with_images {
        let image_path = require_raw_file(&source, data_dir, FileRole::ImageFeatures)?;
        let (image, coverage) = timed(&mut notes, "reading image features", || {
            Ok(image_features_for_items(&image_path, &keys)?)
        })?;
        notes.push(format!(
            "image vectors: {} of {} items",
            coverage.with_vector, coverage.items
        ));
        dataset.side.image = Some(image);
    } else {
        notes.push("image features skipped (--without-images): the image modality is missing for every item".into());
        dataset
            .provenance
            .source
            .push_str(", without image features");
    }

    let mut warnings = Vec::new();
    let counts = dataset.counts();
    let expected = &source.expected;
    let checks = [
        ("users", counts.users, expected.users),
        ("items", counts.items, expected.items),
        ("interactions", counts.interactions, expected.interactions),
        (
            "train samples (before the validation carve-out)",
            counts.train_samples + counts.valid_samples,
            expected.train_samples,
        ),
        ("test samples", counts.test_samples, expected.test_samples),
    ];
    for (what, got, want) in checks {
        if got as u64 != want as u64 {
            warnings.push(format!("{name}: {got} {what} after the {}-core filter, but the registry expects {want} (duplicate rows or a different file version?)", options.k_core));
        }
    }
    add_codes(&mut dataset, options, device, &mut notes, &mut warnings)?;
    Ok(PrepareOutcome {
        dataset,
        notes,
        warnings,
    })
}

/// A dataset from a one-user-per-line sequence file, with the item side information `side`
/// names (none: no modality, graph models then see the item sub-graph).
pub fn from_sequences(
    name: &str,
    path: &Path,
    side: &SideSpec,
    options: &PrepareOptions,
    device: Device,
) -> Result<PrepareOutcome> {
    let log = read_sequence_file(path)?;
    let source = format!("sequence file {}", path.display());
    from_log(name, log, source, path, side, options, device)
}

/// A dataset from a RecBole atomic interaction file (`user_id`, `item_id`, `timestamp`), with
/// the same filtering, ids and split as every other source.
pub fn from_recbole(
    name: &str,
    path: &Path,
    side: &SideSpec,
    options: &PrepareOptions,
    device: Device,
) -> Result<PrepareOutcome> {
    let log = super::sources::recbole::read_interactions(path)?;
    let source = format!("RecBole atomic file {}", path.display());
    from_log(name, log, source, path, side, options, device)
}

/// Filter, ids, split, then the optional side information of `side` and the codes.
fn from_log(
    name: &str,
    log: RawLog,
    source: String,
    path: &Path,
    side: &SideSpec,
    options: &PrepareOptions,
    device: Device,
) -> Result<PrepareOutcome> {
    let mut notes = Vec::new();
    let before = LogSize::of(&log);
    let mut dataset = filter_split(name, log, options, source);
    before.ensure_survivors(&dataset, options.k_core, path)?;
    let keys = &dataset.interactions.item_keys;
    if let Some(source) = &side.text {
        let mut table = side_table("text", source, keys, &mut notes, options, 0, |texts| {
            encode_text(texts, options, device)
        })?;
        table.source = format!("{}, {}", source.describe(), table.source);
        if let SideSource::RecboleItem { path, fields } = source {
            if fields.iter().any(|f| f == "title") {
                // The titles alone, shown by `evaluate --explain`.
                let titles = SideSource::RecboleItem {
                    path: path.clone(),
                    fields: vec!["title".into()],
                };
                dataset.side.titles = item_texts(&titles, keys)?;
            }
        }
        dataset.side.text = Some(table);
    }
    if let Some(source) = &side.image_stand_in {
        let mut table = side_table(
            "image stand-in",
            source,
            keys,
            &mut notes,
            options,
            1,
            |texts| encode(texts, options, 1),
        )?;
        table.source = format!(
            "STAND-IN for image features (none offline): {}, {}",
            source.describe(),
            table.source
        );
        dataset.side.image = Some(table);
    }
    let mut warnings = Vec::new();
    add_codes(&mut dataset, options, device, &mut notes, &mut warnings)?;
    Ok(PrepareOutcome {
        dataset,
        notes,
        warnings,
    })
}
