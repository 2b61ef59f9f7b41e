//! Dataset names: the embedded `synthetic`, the six Amazon-2014 datasets of the MMSR paper, and
//! any dataset prepared under `<data-dir>/prepared/<name>`.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::prepared::PreparedDataset;
use super::split::SplitConfig;
use super::store::{self, StoreError};
use super::synthetic::{self, SyntheticConfig};

pub const SYNTHETIC: &str = "synthetic";

/// The six datasets of the MMSR paper (spec §1.1), by their CLI names.
pub const AMAZON_DATASETS: [&str; 6] = ["beauty", "clothing", "sport", "toy", "kitchen", "phone"];

#[derive(Debug, Error)]
pub enum DatasetError {
    #[error("unknown dataset {name:?}; valid names: {}", valid.join(", "))]
    Unknown { name: String, valid: Vec<String> },
    #[error("dataset {name:?} is not prepared in {}: prepare it first with `mmsr-bench prepare {name} ...` (see README, 'Real datasets')", dir.display())]
    NotPrepared { name: String, dir: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
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
            .filter(|n| !names.contains(n))
            .collect();
        prepared.sort();
        names.extend(prepared);
    }
    names
}

/// Checks a name without loading anything.
pub fn validate_name(name: &str, data_dir: &Path) -> Result<(), DatasetError> {
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

/// Generates `synthetic` in-process or loads a prepared dataset from `data_dir`.
pub fn load(
    name: &str,
    data_dir: &Path,
    synthetic: &SyntheticConfig,
) -> Result<PreparedDataset, DatasetError> {
    if name == SYNTHETIC {
        return Ok(synthetic::generate(synthetic, &SplitConfig::default()));
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
        let e = load("beuaty", dir.path(), &SyntheticConfig::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "unknown dataset \"beuaty\"; valid names: synthetic, beauty, clothing, sport, toy, kitchen, phone"
        );
        let e = load("beauty", dir.path(), &SyntheticConfig::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("dataset \"beauty\" is not prepared in"),
            "{e}"
        );
    }
}
