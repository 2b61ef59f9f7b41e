//! On-disk prepared-dataset format, version 1 (documented in `datasets/README.md`).
//!
//! A directory holding `manifest.yaml` and plain tables:
//! `users.tsv`, `items.tsv`, `sequences.tsv`, `train.tsv`, `valid.tsv`, `test.tsv`, and per
//! modality `<m>.npy` (float32 `[items + 1, dim]`, row = item id) with `<m>_present.npy` (uint8).
//! The manifest lists every file with its size and sha256; `content_hash` is the sha256 over the
//! sorted (name, sha256) pairs and identifies the data in run ids. The directory is staged under
//! a temporary name and renamed into place, so a crash never leaves a half-written dataset.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

mod tables;

use tables::*;

use super::log::InteractionDataset;
use super::prepared::{DatasetCounts, PreparedDataset, Provenance};
use super::split::{SplitConfig, Splits};
use crate::modality::codes::{CodeBook, CodeConfig, ModalityCodes};
use crate::modality::{FeatureTable, ItemSideInfo, Modality};

pub const FORMAT: &str = "mmsr-bench-prepared";
pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.yaml";

#[derive(Debug, Error)]
pub enum StoreError {
    #[error(
        "{dir} is not a prepared dataset (no {MANIFEST}); create it with `mmsr-bench prepare`"
    )]
    NotPrepared { dir: PathBuf },
    #[error("{path}: format {found:?} version {version} is not readable by this build ({FORMAT} version {FORMAT_VERSION}); re-run `mmsr-bench prepare`")]
    Version {
        path: PathBuf,
        found: String,
        version: u32,
    },
    #[error("{path}: {problem}; the prepared dataset is corrupt: delete it and re-run `mmsr-bench prepare`")]
    Corrupt { path: PathBuf, problem: String },
    #[error("{path}:{line}: {problem}; the prepared dataset is corrupt: delete it and re-run `mmsr-bench prepare`")]
    Parse {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid manifest: {source}")]
    Manifest {
        path: PathBuf,
        #[source]
        source: serde_norway::Error,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub name: String,
    pub created_by: String,
    pub provenance: Provenance,
    pub split: SplitConfig,
    pub counts: DatasetCounts,
    pub modalities: BTreeMap<Modality, ModalityInfo>,
    /// Present when modality codes were built (files `<m>_codes.tsv`, `<m>_centres.npy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codes: Option<CodesInfo>,
    pub files: BTreeMap<String, FileEntry>,
    pub content_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodesInfo {
    pub config: CodeConfig,
    pub books: BTreeMap<Modality, CodeBookInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeBookInfo {
    pub codes: usize,
    /// Width of the stored centres (0: stored without centres).
    pub centre_dim: usize,
    /// Items linked to at least one code (coverage of the modality).
    pub linked_items: usize,
    /// Width of the items' stored reduced features (`<m>_reduced.npy`, `[items + 1, dim]`);
    /// 0 (or absent, in datasets prepared before they were stored): none.
    #[serde(default)]
    pub reduced_dim: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModalityInfo {
    pub dim: usize,
    /// Items that have this modality (coverage); the rest get no code nodes.
    pub items_with: usize,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub bytes: u64,
    pub sha256: String,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// sha256 over the sorted `name\tsha256\n` lines of the data files.
fn combined_hash(files: &BTreeMap<String, FileEntry>) -> String {
    let mut text = String::new();
    for (name, entry) in files {
        let _ = writeln!(text, "{name}\t{}", entry.sha256);
    }
    sha256_hex(text.as_bytes())
}

/// The content hash of a dataset, identical to the one `save` writes into its manifest.
pub fn content_hash(dataset: &PreparedDataset) -> Result<String, StoreError> {
    let files = serialize_tables(dataset)?;
    Ok(combined_hash(&file_entries(&files)))
}

fn file_entries(files: &[(String, Vec<u8>)]) -> BTreeMap<String, FileEntry> {
    files
        .iter()
        .map(|(name, bytes)| {
            (
                name.clone(),
                FileEntry {
                    bytes: bytes.len() as u64,
                    sha256: sha256_hex(bytes),
                },
            )
        })
        .collect()
}

/// Writes `dataset` to `dir` atomically (staged directory + rename) and returns its manifest.
pub fn save(dataset: &PreparedDataset, dir: &Path) -> Result<Manifest, StoreError> {
    let files = serialize_tables(dataset)?;
    let entries = file_entries(&files);
    let manifest = Manifest {
        format: FORMAT.to_string(),
        format_version: FORMAT_VERSION,
        name: dataset.name.clone(),
        created_by: format!("mmsr-bench {}", env!("CARGO_PKG_VERSION")),
        provenance: dataset.provenance.clone(),
        split: dataset.split_config,
        counts: dataset.counts(),
        modalities: modality_infos(&dataset.side),
        codes: dataset.codes.as_ref().map(codes_info),
        content_hash: combined_hash(&entries),
        files: entries,
    };
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io_error(parent))?;
    let staged = tempfile::Builder::new()
        .prefix(".prepare-")
        .tempdir_in(parent)
        .map_err(io_error(parent))?;
    let manifest_text = serde_norway::to_string(&manifest).expect("manifest serialises");
    let all = files.iter().map(|(n, b)| (n.as_str(), b.as_slice()));
    for (name, bytes) in all.chain([(MANIFEST, manifest_text.as_bytes())]) {
        let path = staged.path().join(name);
        let mut file = fs::File::create(&path).map_err(io_error(&path))?;
        file.write_all(bytes).map_err(io_error(&path))?;
        file.sync_all().map_err(io_error(&path))?;
        crate::faults::point(|| format!("prepare: {name} staged"));
    }
    replace_dir(&staged.keep(), dir)?;
    Ok(manifest)
}

/// Puts a staged directory at `dir`. Over an existing dataset the two are swapped in one atomic
/// step where the system can (Linux `renameat2(RENAME_EXCHANGE)`), so a kill at any moment leaves
/// the old or the new dataset at `dir`, never neither; elsewhere the old one is moved aside first
/// (a kill in between leaves it as `.<name>.old-<pid>` beside `dir`).
fn replace_dir(staged: &Path, dir: &Path) -> Result<(), StoreError> {
    if !dir.exists() {
        return fs::rename(staged, dir).map_err(io_error(dir));
    }
    if exchange(staged, dir).is_ok() {
        crate::faults::point(|| "prepare: swapped in, the old version not yet removed".into());
        return fs::remove_dir_all(staged).map_err(io_error(staged));
    }
    let old = dir.with_file_name(format!(
        ".{}.old-{}",
        dir.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("dataset"),
        std::process::id()
    ));
    fs::rename(dir, &old).map_err(io_error(dir))?;
    fs::rename(staged, dir).map_err(io_error(dir))?;
    fs::remove_dir_all(&old).map_err(io_error(&old))
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let a = CString::new(a.as_os_str().as_bytes())?;
    let b = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

fn codes_info(codes: &ModalityCodes) -> CodesInfo {
    CodesInfo {
        config: codes.config.clone(),
        books: Modality::ALL
            .iter()
            .filter_map(|&m| {
                codes.book(m).map(|b| {
                    let info = CodeBookInfo {
                        codes: b.num_codes,
                        centre_dim: b.centre_dim,
                        linked_items: b.linked_items(),
                        reduced_dim: b.reduced_dim,
                    };
                    (m, info)
                })
            })
            .collect(),
    }
}

fn modality_infos(side: &ItemSideInfo) -> BTreeMap<Modality, ModalityInfo> {
    Modality::ALL
        .iter()
        .filter_map(|&m| {
            side.features(m).map(|t| {
                (
                    m,
                    ModalityInfo {
                        dim: t.dim,
                        items_with: t.coverage(),
                        source: t.source.clone(),
                    },
                )
            })
        })
        .collect()
}

/// Reads the manifest only (cheap; used to list datasets and to get the content hash).
pub fn read_manifest(dir: &Path) -> Result<Manifest, StoreError> {
    let path = dir.join(MANIFEST);
    if !path.exists() {
        return Err(StoreError::NotPrepared {
            dir: dir.to_path_buf(),
        });
    }
    let text = fs::read_to_string(&path).map_err(io_error(&path))?;
    // Check the format before the schema so that a future version gets the right message.
    #[derive(Deserialize)]
    struct Header {
        format: String,
        format_version: u32,
    }
    let header: Header = serde_norway::from_str(&text).map_err(|source| StoreError::Manifest {
        path: path.clone(),
        source,
    })?;
    if header.format != FORMAT || header.format_version != FORMAT_VERSION {
        return Err(StoreError::Version {
            path,
            found: header.format,
            version: header.format_version,
        });
    }
    serde_norway::from_str(&text).map_err(|source| StoreError::Manifest { path, source })
}

/// Loads a prepared dataset, verifying every file against the manifest's checksums.
pub fn load(dir: &Path) -> Result<PreparedDataset, StoreError> {
    let manifest = read_manifest(dir)?;
    let mut data = BTreeMap::new();
    for (name, entry) in &manifest.files {
        let path = dir.join(name);
        let bytes = fs::read(&path).map_err(io_error(&path))?;
        if bytes.len() as u64 != entry.bytes || sha256_hex(&bytes) != entry.sha256 {
            return Err(StoreError::Corrupt {
                path,
                problem: format!(
                    "size or sha256 differs from {MANIFEST} ({} bytes, expected {})",
                    bytes.len(),
                    entry.bytes
                ),
            });
        }
        data.insert(name.clone(), bytes);
    }
    let manifest_path = dir.join(MANIFEST);
    if combined_hash(&manifest.files) != manifest.content_hash {
        return Err(StoreError::Corrupt {
            path: manifest_path,
            problem: "content_hash does not match the listed files".to_string(),
        });
    }
    let table = |name: &str| -> Result<(PathBuf, &[u8]), StoreError> {
        let path = dir.join(name);
        match data.get(name) {
            Some(bytes) => Ok((path, bytes.as_slice())),
            None => Err(StoreError::Corrupt {
                path: manifest_path.clone(),
                problem: format!("{name} is not listed"),
            }),
        }
    };

    let (path, bytes) = table("users.tsv")?;
    let user_keys = parse_keys(&path, bytes)?;
    let (path, bytes) = table("items.tsv")?;
    let (item_keys, titles) = parse_items(&path, bytes)?;
    let (path, bytes) = table("sequences.tsv")?;
    let sequences = parse_sequences(&path, bytes)?;
    let mut sets = Vec::new();
    for name in ["train.tsv", "valid.tsv", "test.tsv"] {
        let (path, bytes) = table(name)?;
        sets.push(parse_samples(&path, bytes)?);
    }
    let test = sets.pop().unwrap_or_default();
    let valid = sets.pop().unwrap_or_default();
    let train = sets.pop().unwrap_or_default();

    let mut side = ItemSideInfo {
        titles,
        ..ItemSideInfo::default()
    };
    for (modality, info) in &manifest.modalities {
        let (path, bytes) = table(&format!("{}.npy", modality.name()))?;
        let values = read_npy::<f32>(&path, bytes, &[item_keys.len() as u64 + 1, info.dim as u64])?;
        let (path, bytes) = table(&format!("{}_present.npy", modality.name()))?;
        let present = read_npy::<u8>(&path, bytes, &[item_keys.len() as u64 + 1])?;
        let features = FeatureTable {
            dim: info.dim,
            values,
            present: present.into_iter().map(|p| p != 0).collect(),
            source: info.source.clone(),
        };
        match modality {
            Modality::Image => side.image = Some(features),
            Modality::Text => side.text = Some(features),
        }
    }

    let num_items = item_keys.len();
    let codes = match &manifest.codes {
        None => None,
        Some(info) => {
            let mut codes = ModalityCodes {
                config: info.config.clone(),
                image: None,
                text: None,
            };
            for (modality, book) in &info.books {
                let (path, bytes) = table(&format!("{}_codes.tsv", modality.name()))?;
                let links = parse_code_links(&path, bytes, num_items, book.codes)?;
                let centres = if book.centre_dim > 0 {
                    let (path, bytes) = table(&format!("{}_centres.npy", modality.name()))?;
                    read_npy::<f32>(&path, bytes, &[book.codes as u64, book.centre_dim as u64])?
                } else {
                    Vec::new()
                };
                let reduced = if book.reduced_dim > 0 {
                    let (path, bytes) = table(&format!("{}_reduced.npy", modality.name()))?;
                    let shape = [num_items as u64 + 1, book.reduced_dim as u64];
                    read_npy::<f32>(&path, bytes, &shape)?
                } else {
                    Vec::new()
                };
                let book = CodeBook {
                    num_codes: book.codes,
                    centres,
                    centre_dim: book.centre_dim,
                    links,
                    reduced,
                    reduced_dim: book.reduced_dim,
                };
                match modality {
                    Modality::Image => codes.image = Some(book),
                    Modality::Text => codes.text = Some(book),
                }
            }
            Some(codes)
        }
    };

    let dataset = PreparedDataset {
        name: manifest.name.clone(),
        provenance: manifest.provenance.clone(),
        split_config: manifest.split,
        interactions: InteractionDataset {
            user_keys,
            item_keys,
            sequences,
        },
        splits: Splits { train, valid, test },
        side,
        codes,
    };
    if dataset.counts() != manifest.counts {
        return Err(StoreError::Corrupt {
            path: dir.join(MANIFEST),
            problem: format!(
                "tables give {:?}, manifest says {:?}",
                dataset.counts(),
                manifest.counts
            ),
        });
    }
    Ok(dataset)
}
