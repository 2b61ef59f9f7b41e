//! Importer for the official MMSR processed data (spec §1.4): the 4-list sample pickles
//! (`train.txt`, `test.txt`: inputs, two bundle lists, targets) and, when present, the k-means
//! centre pickles (numpy float arrays) for code initialisation. The pickle reader is data-only
//! (serde-pickle): no class is looked up and nothing is executed; numpy arrays are decoded from
//! the shape, byte order and raw bytes of their pickled state.

mod ids;

use ids::{check_ids, id_range, per_item_links, CodeSpan};
pub mod pickle_guard;
pub mod users;

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_pickle::{DeOptions, Value};
use thiserror::Error;

use super::log::InteractionDataset;
use super::prepared::{PreparedDataset, Provenance};
use super::split::{SampleSet, SplitConfig, Splits};
use crate::modality::codes::{CodeBook, CodeConfig, LinkMetric, ModalityCodes};
use crate::modality::ItemSideInfo;

/// Which modality the bundle lists `[1]` and `[2]` of a sample pickle hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BundleOrder {
    /// `[1]` image codes, `[2]` text codes (the shipped `data/sample` files).
    ImageText,
    /// `[1]` text codes, `[2]` image codes (what the official preprocessing writes).
    TextImage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficialConfig {
    pub dir: PathBuf,
    pub bundle_order: BundleOrder,
    /// Share of training samples held out for model selection (seeded), used only when the
    /// folder carries no user ids (`all_train_seq.txt`); with them, each user's last training
    /// target is its validation sample (spec §1.3).
    pub validation_share: f64,
    pub seed: u64,
}

impl OfficialConfig {
    /// The folder as the command line names it (`run`/`check --official-dir`): the default
    /// validation share and seed, which matter only for folders without user ids.
    pub fn from_command_line(dir: PathBuf, bundle_order: BundleOrder) -> Self {
        Self {
            dir,
            bundle_order,
            validation_share: 0.1,
            seed: crate::DEFAULT_SEED,
        }
    }
}

#[derive(Debug, Error)]
pub enum OfficialError {
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
    #[error("{dir}: {problem}")]
    Folder { dir: PathBuf, problem: String },
}

fn file_error(path: &Path, problem: impl Into<String>) -> OfficialError {
    OfficialError::File {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// The decoded sample lists of one file: per sample the inputs, two bundle lists and a target.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SampleLists {
    pub inputs: Vec<Vec<u32>>,
    pub first: Vec<Vec<Vec<u32>>>,
    pub second: Vec<Vec<Vec<u32>>>,
    pub targets: Vec<u32>,
}

/// The largest pickle the importer reads: 1 GiB. The official Beauty `train.txt` is 30 MB;
/// importing the Beauty folder (46 MB of pickles) peaks at 310 MB of memory.
pub const MAX_PICKLE_BYTES: u64 = 1 << 30;

/// Reads and decodes one pickle, after [`pickle_guard`] has bounded its nesting and decoded
/// size (errors name the file and the limit).
fn load_value(path: &Path) -> Result<Value, OfficialError> {
    use std::io::Read;
    let cannot_read = |e: std::io::Error| file_error(path, format!("cannot read: {e}"));
    let file = std::fs::File::open(path).map_err(cannot_read)?;
    let too_large = |len: u64| {
        file_error(
            path,
            format!("{len} bytes is more than the {MAX_PICKLE_BYTES} bytes (1 GiB) a pickle may have (the official Beauty train.txt has 30 MB)"),
        )
    };
    let len = file.metadata().map_err(cannot_read)?.len();
    if len > MAX_PICKLE_BYTES {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_PICKLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot_read)?;
    if bytes.len() as u64 > MAX_PICKLE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    pickle_guard::check(&bytes, &pickle_guard::Limits::for_file(bytes.len()))
        .map_err(|e| file_error(path, e.to_string()))?;
    let options = DeOptions::new()
        .replace_unresolved_globals()
        .keep_restore_state();
    serde_pickle::value_from_slice(&bytes, options)
        .map_err(|e| file_error(path, format!("not a readable pickle: {e}")))
}

fn as_list<'a>(value: &'a Value, what: &str, path: &Path) -> Result<&'a [Value], OfficialError> {
    match value {
        Value::List(items) | Value::Tuple(items) => Ok(items),
        _ => Err(file_error(path, format!("{what} is not a list"))),
    }
}

fn as_id(value: &Value, what: &str, path: &Path) -> Result<u32, OfficialError> {
    match value {
        Value::I64(v) if *v >= 0 && *v <= i64::from(u32::MAX) => Ok(*v as u32),
        other => Err(file_error(
            path,
            format!("{what} is not a non-negative id: {other:?}"),
        )),
    }
}

/// Reads a 4-list sample pickle (`[inputs, bundles1, bundles2, targets]`).
pub fn read_sample_lists(path: &Path) -> Result<SampleLists, OfficialError> {
    let value = load_value(path)?;
    let top = as_list(&value, "the file", path)?;
    if top.len() != 4 {
        return Err(file_error(
            path,
            format!("expected 4 parallel lists, found {}", top.len()),
        ));
    }
    let inputs_raw = as_list(&top[0], "list [0]", path)?;
    let (first_raw, second_raw) = (
        as_list(&top[1], "list [1]", path)?,
        as_list(&top[2], "list [2]", path)?,
    );
    let targets_raw = as_list(&top[3], "list [3]", path)?;
    let n = inputs_raw.len();
    if [first_raw.len(), second_raw.len(), targets_raw.len()]
        .iter()
        .any(|&l| l != n)
    {
        return Err(file_error(path, "the four lists differ in length"));
    }
    let mut lists = SampleLists::default();
    for s in 0..n {
        let input: Vec<u32> = as_list(&inputs_raw[s], &format!("sample {s} input"), path)?
            .iter()
            .map(|v| as_id(v, &format!("sample {s} item"), path))
            .collect::<Result<_, _>>()?;
        if input.is_empty() || input.contains(&0) {
            return Err(file_error(
                path,
                format!("sample {s}: empty input or padding id 0"),
            ));
        }
        let bundles = |raw: &Value, which: &str| -> Result<Vec<Vec<u32>>, OfficialError> {
            let per_position = as_list(raw, &format!("sample {s} bundles {which}"), path)?;
            if per_position.len() != input.len() {
                return Err(file_error(
                    path,
                    format!("sample {s}: bundles {which} do not match the input length"),
                ));
            }
            per_position
                .iter()
                .map(|b| {
                    as_list(b, "a bundle", path)?
                        .iter()
                        .map(|v| as_id(v, "a code id", path))
                        .collect()
                })
                .collect()
        };
        lists.first.push(bundles(&first_raw[s], "[1]")?);
        lists.second.push(bundles(&second_raw[s], "[2]")?);
        lists
            .targets
            .push(as_id(&targets_raw[s], &format!("sample {s} target"), path)?);
        lists.inputs.push(input);
    }
    Ok(lists)
}

/// Decodes a pickled numpy float array `[rows, cols]` (float64 or float32, little-endian) from
/// its reconstruct state `(version, shape, dtype state, fortran, raw bytes)`.
pub fn read_numpy_matrix(path: &Path) -> Result<(Vec<f32>, usize, usize), OfficialError> {
    let value = load_value(path)?;
    let bad = |problem: &str| {
        file_error(
            path,
            format!("not a pickled 2-d numpy float array ({problem})"),
        )
    };
    let state = as_list(&value, "the array state", path).map_err(|_| bad("no array state"))?;
    let [_, Value::Tuple(shape), Value::Tuple(dtype), Value::Bool(fortran), Value::Bytes(raw)] =
        state
    else {
        return Err(bad("unexpected state layout"));
    };
    let (rows, cols) = match shape.as_slice() {
        [Value::I64(r), Value::I64(c)] if *r >= 0 && *c >= 0 => (*r as usize, *c as usize),
        _ => return Err(bad("shape is not 2-d")),
    };
    if *fortran {
        return Err(bad("Fortran order"));
    }
    if !matches!(dtype.get(1), Some(Value::String(order)) if order == "<" || order == "|") {
        return Err(bad("not little-endian"));
    }
    let count = rows * cols;
    let values: Vec<f32> = match raw.len().checked_div(count) {
        Some(8) if raw.len() == count * 8 => raw
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
        Some(4) if raw.len() == count * 4 => raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect(),
        _ => return Err(bad("neither float64 nor float32 data")),
    };
    Ok((values, rows, cols))
}

/// `name.txt` if present, else the single `name*.txt` of the folder.
fn find_file(dir: &Path, name: &str) -> Result<PathBuf, OfficialError> {
    let exact = dir.join(format!("{name}.txt"));
    if exact.exists() {
        return Ok(exact);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| OfficialError::Folder {
        dir: dir.to_path_buf(),
        problem: format!("cannot list: {e}"),
    })?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let file = p.file_name().and_then(|f| f.to_str()).unwrap_or_default();
            file.starts_with(name) && file.ends_with(".txt")
        })
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(OfficialError::Folder {
            dir: dir.to_path_buf(),
            problem: format!("no {name}.txt (or {name}*.txt) sample pickle"),
        }),
        _ => Err(OfficialError::Folder {
            dir: dir.to_path_buf(),
            problem: format!("several {name}*.txt files; keep one or name it {name}.txt"),
        }),
    }
}

/// A seeded share of `n` training samples as validation (folders without user ids).
fn seeded_share(n: usize, config: &OfficialConfig) -> Vec<bool> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(config.seed));
    let held_out = ((n as f64) * config.validation_share).round() as usize;
    let mut is_valid = vec![false; n];
    for &s in &order[..held_out] {
        is_valid[s] = true;
    }
    is_valid
}

/// Imports an official processed folder as a prepared dataset named `official`.
pub fn import(config: &OfficialConfig) -> Result<(PreparedDataset, Vec<String>), OfficialError> {
    let dir = &config.dir;
    let (train_path, test_path) = (find_file(dir, "train")?, find_file(dir, "test")?);
    let train = read_sample_lists(&train_path)?;
    let mut test = read_sample_lists(&test_path)?;
    let mut notes = Vec::new();

    for (lists, path) in [(&train, &train_path), (&test, &test_path)] {
        if let Some(s) = lists.targets.iter().position(|&t| t == 0) {
            return Err(file_error(
                path,
                format!("sample {s} has target item id 0; item ids start at 1 (0 is padding)"),
            ));
        }
    }
    let (train_first, train_second) = (id_range(&train.first), id_range(&train.second));
    let (Some(first_range), Some(second_range)) = (train_first, train_second) else {
        return Err(file_error(
            &train_path,
            "the training bundles are empty: no codes to import",
        ));
    };
    let largest_code = if first_range.1 >= second_range.1 {
        (first_range.1, "[1]")
    } else {
        (second_range.1, "[2]")
    };
    // As the official get_item_num: the largest item id over inputs and targets of both files,
    // checked against the code ids before anything is sized by it.
    let num_items = check_ids(
        (&train, &train_path),
        (&test, &test_path),
        first_range.0.min(second_range.0),
        largest_code,
    )?;
    let item_range_end = num_items as u32;
    // Spec §2.6: image codes come first after the items, text codes after them.
    let (image_first, image_range, text_range) = match config.bundle_order {
        BundleOrder::ImageText => (true, first_range, second_range),
        BundleOrder::TextImage => (false, second_range, first_range),
    };
    if image_range.0 > text_range.0 {
        let other = if image_first {
            "text-image"
        } else {
            "image-text"
        };
        return Err(file_error(&train_path, format!("the bundle order puts image code ids above text code ids, which the id layout forbids; try --bundle-order {other}")));
    }
    // check_ids bounds every id, so these sums stay far below u32::MAX.
    let image_offset = item_range_end + 1;
    let image_codes = (image_range.1 - image_offset + 1) as usize;
    let text_offset = image_offset + image_codes as u32;
    if text_range.0 < text_offset {
        return Err(file_error(&train_path, "image and text code ids overlap"));
    }
    let text_codes = (text_range.1 - text_offset + 1) as usize;

    // The shipped test file was never offset (spec §1.4.3): its code ids equal item ids.
    let test_ranges = (id_range(&test.first), id_range(&test.second));
    if let (Some(a), Some(b)) = test_ranges {
        if a.1 <= item_range_end && b.1 <= item_range_end {
            let (first_shift, second_shift) = if image_first {
                (image_offset, text_offset)
            } else {
                (text_offset, image_offset)
            };
            for bundles in test.first.iter_mut().flatten() {
                bundles
                    .iter_mut()
                    .for_each(|id| *id = id.saturating_add(first_shift));
            }
            for bundles in test.second.iter_mut().flatten() {
                bundles
                    .iter_mut()
                    .for_each(|id| *id = id.saturating_add(second_shift));
            }
            notes.push(format!(
                "{}: code ids were not offset (they equal item ids); added {first_shift} to list [1] and {second_shift} to list [2] (spec §1.4.3)",
                test_path.display()
            ));
        }
    }

    let files = [(&train, train_path.as_path()), (&test, test_path.as_path())];
    let first = |offset, codes, name| CodeSpan {
        name,
        list: "[1]",
        which: |l| &l.first,
        offset,
        codes,
    };
    let second = |offset, codes, name| CodeSpan {
        name,
        list: "[2]",
        which: |l| &l.second,
        offset,
        codes,
    };
    let (image_span, text_span) = if image_first {
        (
            first(image_offset, image_codes, "image"),
            second(text_offset, text_codes, "text"),
        )
    } else {
        (
            second(image_offset, image_codes, "image"),
            first(text_offset, text_codes, "text"),
        )
    };
    let image_links = per_item_links(&files, &image_span, num_items, &train_path)?;
    let text_links = per_item_links(&files, &text_span, num_items, &train_path)?;

    let centres = |prefix: &str, codes: usize| -> Result<(Vec<f32>, usize), OfficialError> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok((Vec::new(), 0));
        };
        let candidates: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                let f = p.file_name().and_then(|f| f.to_str()).unwrap_or_default();
                f.starts_with(&format!("{prefix}_cluster")) && f.ends_with(".pickle")
            })
            .collect();
        match candidates.as_slice() {
            [path] => {
                let (values, rows, cols) = read_numpy_matrix(path)?;
                if rows != codes {
                    return Err(file_error(
                        path,
                        format!("{rows} centres, but the samples use {codes} {prefix} codes"),
                    ));
                }
                Ok((values, cols))
            }
            _ => Ok((Vec::new(), 0)),
        }
    };
    let (image_centres, image_dim) = centres("image", image_codes)?;
    let (text_centres, text_dim) = centres("text", text_codes)?;
    if image_dim == 0 || text_dim == 0 {
        notes.push("no (or no unique) image_cluster*/text_cluster* centre pickle: code embeddings start random".to_string());
    }
    let codes = ModalityCodes {
        config: CodeConfig {
            clusters: image_codes.max(text_codes),
            links: train
                .first
                .iter()
                .flatten()
                .map(Vec::len)
                .max()
                .unwrap_or(0),
            metric: LinkMetric::Euclidean,
            ..CodeConfig::default()
        },
        image: Some(CodeBook {
            num_codes: image_codes,
            centres: image_centres,
            centre_dim: image_dim,
            links: image_links,
            reduced: Vec::new(),
            reduced_dim: 0,
        }),
        text: Some(CodeBook {
            num_codes: text_codes,
            centres: text_centres,
            centre_dim: text_dim,
            links: text_links,
            reduced: Vec::new(),
            reduced_dim: 0,
        }),
    };

    // Validation: each user's longest-prefix sample when the folder carries user ids, else a
    // seeded share of the training samples.
    let max_len = train.inputs.iter().map(Vec::len).max().unwrap_or(0);
    let users = users::read_users(dir)?;
    let by_user = match &users {
        Some(u) => match users::validation_flags(u, &train, max_len) {
            Ok(flags) => Some(flags),
            Err(why) => {
                notes.push(format!("warning: {} has user ids, but {why}; validation falls back to a seeded share of the samples", dir.display()));
                None
            }
        },
        None => None,
    };
    let mapped = by_user.is_some();
    let is_valid = match by_user {
        Some(flags) => {
            notes.push(format!(
                "validation = each user's last training target ({} users, from all_train_seq.txt): no user's samples fall on both sides",
                users.as_ref().map_or(0, Vec::len)
            ));
            flags
        }
        None => {
            notes.push(format!(
                "warning: validation = a seeded {:.0} % of the {} training samples: the folder has no usable user ids (all_train_seq.txt), so samples of one user can fall on both sides",
                config.validation_share * 100.0,
                train.inputs.len()
            ));
            seeded_share(train.inputs.len(), config)
        }
    };
    let (mut train_set, mut valid_set, mut test_set) =
        (SampleSet::new(), SampleSet::new(), SampleSet::new());
    for (s, (input, &target)) in train.inputs.iter().zip(&train.targets).enumerate() {
        let set = if is_valid[s] {
            &mut valid_set
        } else {
            &mut train_set
        };
        set.push(0, input, target);
    }
    for (input, &target) in test.inputs.iter().zip(&test.targets) {
        test_set.push(0, input, target);
    }

    // The histories behind the samples, where the folder has them (popularity and counts read
    // them); the test part only when it is the official floor(0.2 n) split.
    let split_ratio = 0.2;
    let histories = users.filter(|_| mapped).unwrap_or_default();
    let outside = |ids: &[u32]| {
        ids.iter()
            .copied()
            .find(|&i| i == 0 || i as usize > num_items)
    };
    for u in &histories {
        for (ids, file) in [
            (&u.train, "all_train_seq.txt"),
            (&u.test, "all_test_seq.txt"),
        ] {
            if let Some(id) = outside(ids) {
                return Err(file_error(
                    &dir.join(file),
                    format!(
                        "user {} has item id {id}, outside 1..={num_items} (the item ids of {} and {})",
                        u.uid,
                        train_path.display(),
                        test_path.display()
                    ),
                ));
            }
        }
    }
    let with_test = !histories.is_empty()
        && histories.iter().all(|u| {
            let n = u.train.len() + u.test.len();
            u.test.len() == ((n as f64) * split_ratio).floor() as usize
        });
    let interactions = InteractionDataset {
        user_keys: histories.iter().map(|u| u.uid.to_string()).collect(),
        item_keys: (1..=num_items).map(|i| i.to_string()).collect(),
        sequences: histories
            .iter()
            .map(|u| {
                let mut seq = u.train.clone();
                if with_test {
                    seq.extend_from_slice(&u.test);
                }
                seq
            })
            .collect(),
    };
    let max_len = [&train_set, &valid_set, &test_set]
        .iter()
        .map(|s| s.max_input_len())
        .max()
        .unwrap_or(0);
    let dataset = PreparedDataset {
        name: "official".to_string(),
        provenance: Provenance {
            source: format!(
                "official MMSR processed data in {} ({:?} bundles)",
                dir.display(),
                config.bundle_order
            ),
            k_core: None,
            min_rating: None,
        },
        split_config: SplitConfig {
            test_ratio: if with_test { split_ratio } else { 0.0 },
            max_len,
            validation: true,
            ..SplitConfig::default()
        },
        interactions,
        splits: Splits {
            train: train_set,
            valid: valid_set,
            test: test_set,
        },
        side: ItemSideInfo {
            titles: vec![None; num_items],
            ..ItemSideInfo::default()
        },
        codes: Some(codes),
    };
    Ok((dataset, notes))
}
