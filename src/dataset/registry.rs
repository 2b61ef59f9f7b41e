//! Dataset names: the embedded `synthetic`, the six Amazon-2014 datasets of the MMSR paper, and
//! any dataset prepared under `<data-dir>/prepared/<name>`.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::official::{self, OfficialConfig, OfficialError};
use super::prepared::PreparedDataset;
use super::split::SplitConfig;
use super::store::{self, StoreError};
use super::subsample::{SubsampleError, UserSample};
use super::synthetic::{self, SyntheticConfig};

pub const SYNTHETIC: &str = "synthetic";
/// The authors' processed folder given by `--official-dir` (spec §1.4).
pub const OFFICIAL: &str = "official";

/// The six datasets of the MMSR paper (spec §1.1), by their CLI names.
pub const AMAZON_DATASETS: [&str; 6] = ["beauty", "clothing", "sport", "toy", "kitchen", "phone"];

#[derive(Debug, Error)]
pub enum DatasetError {
    #[error("unknown dataset {name:?}; valid names: {}", valid.join(", "))]
    Unknown { name: String, valid: Vec<String> },
    #[error("dataset {name:?} is not prepared in {}: prepare it first with `mmsr-bench prepare {name} ...` (see docs/datasets.md)", dir.display())]
    NotPrepared { name: String, dir: PathBuf },
    #[error("dataset \"official\" is the authors' processed folder: pass --official-dir DIR")]
    OfficialWithoutDir,
    #[error("synthetic: no user survives the 5-core filter of the generated data ({users} users, {items} items); generate more users per item (synthetic.users, synthetic.items, synthetic.min_len)")]
    EmptySynthetic { users: usize, items: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Official(#[from] OfficialError),
    #[error(transparent)]
    Subsample(#[from] SubsampleError),
}

/// Where prepared datasets of a data directory live.
pub fn prepared_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("prepared").join(name)
}

/// Every name `load` accepts: synthetic, the Amazon six and whatever is prepared in `data_dir`.
pub fn known_names(data_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::iter::once(SYNTHETIC)
        .chain(AMAZON_DATASETS)
        .map(str::to_string)
        .collect();
    if let Ok(entries) = std::fs::read_dir(data_dir.join("prepared")) {
        let mut prepared: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().join(store::MANIFEST).exists())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            // Hidden: a staged or set-aside copy from an interrupted `prepare`.
            .filter(|n| !n.starts_with('.') && !names.contains(n))
            .collect();
        prepared.sort();
        names.extend(prepared);
    }
    names
}

/// Checks a name without loading anything.
pub fn validate_name(name: &str, data_dir: &Path) -> Result<(), DatasetError> {
    if let Some(sample) = UserSample::parse(name) {
        return validate_name(&sample?.base, data_dir);
    }
    if name == OFFICIAL {
        return Ok(());
    }
    let valid = known_names(data_dir);
    if valid.iter().any(|n| n == name) {
        Ok(())
    } else {
        Err(DatasetError::Unknown {
            name: name.to_string(),
            valid,
        })
    }
}

/// Generates `synthetic` in-process, imports `official` from its folder, or loads a prepared
/// dataset from `data_dir`.
pub fn load(
    name: &str,
    data_dir: &Path,
    synthetic: &SyntheticConfig,
    official: Option<&OfficialConfig>,
) -> Result<PreparedDataset, DatasetError> {
    if let Some(sample) = UserSample::parse(name) {
        let sample = sample?;
        let full = load(&sample.base, data_dir, synthetic, official)?;
        return Ok(sample.apply(name, &full)?);
    }
    if name == SYNTHETIC {
        let data = synthetic::generate(synthetic, &SplitConfig::default());
        if data.splits.train.is_empty() {
            return Err(DatasetError::EmptySynthetic {
                users: synthetic.users,
                items: synthetic.items,
            });
        }
        return Ok(data);
    }
    if name == OFFICIAL {
        let config = official.ok_or(DatasetError::OfficialWithoutDir)?;
        let (dataset, notes) = official::import(config)?;
        for note in notes {
            eprintln!("note: {note}");
        }
        return Ok(dataset);
    }
    validate_name(name, data_dir)?;
    let dir = prepared_dir(data_dir, name);
    if !dir.join(store::MANIFEST).exists() {
        return Err(DatasetError::NotPrepared {
            name: name.to_string(),
            dir,
        });
    }
    Ok(store::load(&dir)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let dir = tempfile::tempdir().unwrap();
        let e = load("beuaty", dir.path(), &SyntheticConfig::default(), None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "unknown dataset \"beuaty\"; valid names: synthetic, beauty, clothing, sport, toy, kitchen, phone"
        );
        let e = load("beauty", dir.path(), &SyntheticConfig::default(), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("dataset \"beauty\" is not prepared in"),
            "{e}"
        );
    }
}
