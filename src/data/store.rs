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

use super::log::InteractionDataset;
use super::prepared::{
    DatasetCounts, FeatureTable, ItemSideInfo, Modality, PreparedDataset, Provenance,
};
use super::split::{SampleSet, SplitConfig, Splits};

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
    pub files: BTreeMap<String, FileEntry>,
    pub content_hash: String,
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
    }
    replace_dir(&staged.keep(), dir)?;
    Ok(manifest)
}

/// Moves a staged directory to `dir`, replacing an older version if there is one.
fn replace_dir(staged: &Path, dir: &Path) -> Result<(), StoreError> {
    if dir.exists() {
        let old = dir.with_file_name(format!(
            ".{}.old-{}",
            dir.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("dataset"),
            std::process::id()
        ));
        fs::rename(dir, &old).map_err(io_error(dir))?;
        fs::rename(staged, dir).map_err(io_error(dir))?;
        fs::remove_dir_all(&old).map_err(io_error(&old))?;
    } else {
        fs::rename(staged, dir).map_err(io_error(dir))?;
    }
    Ok(())
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

fn join_ids(ids: &[u32]) -> String {
    let mut out = String::with_capacity(ids.len() * 6);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{id}");
    }
    out
}

fn serialize_tables(dataset: &PreparedDataset) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let inter = &dataset.interactions;
    let mut files = Vec::new();

    let mut users = String::from("user_id\tkey\n");
    for (i, key) in inter.user_keys.iter().enumerate() {
        let _ = writeln!(users, "{}\t{key}", i + 1);
    }
    files.push(("users.tsv".to_string(), users.into_bytes()));

    let mut items = csv::WriterBuilder::new()
        .delimiter(b'\t')
        .from_writer(Vec::new());
    let write_err = |e: csv::Error| StoreError::Corrupt {
        path: PathBuf::from("items.tsv"),
        problem: e.to_string(),
    };
    items
        .write_record(["item_id", "key", "title"])
        .map_err(write_err)?;
    for (i, key) in inter.item_keys.iter().enumerate() {
        let title = dataset
            .side
            .titles
            .get(i)
            .cloned()
            .flatten()
            .unwrap_or_default();
        items
            .write_record([(i + 1).to_string(), key.clone(), title])
            .map_err(write_err)?;
    }
    let items = items
        .into_inner()
        .map_err(|e| write_err(e.into_error().into()))?;
    files.push(("items.tsv".to_string(), items));

    let mut sequences = String::from("user_id\titems\n");
    for (i, seq) in inter.sequences.iter().enumerate() {
        let _ = writeln!(sequences, "{}\t{}", i + 1, join_ids(seq));
    }
    files.push(("sequences.tsv".to_string(), sequences.into_bytes()));

    for (name, set) in [
        ("train.tsv", &dataset.splits.train),
        ("valid.tsv", &dataset.splits.valid),
        ("test.tsv", &dataset.splits.test),
    ] {
        let mut text = String::from("user_id\ttarget\tinput\n");
        for (user, input, target) in set.iter() {
            let _ = writeln!(text, "{user}\t{target}\t{}", join_ids(input));
        }
        files.push((name.to_string(), text.into_bytes()));
    }

    for modality in Modality::ALL {
        if let Some(table) = dataset.side.features(modality) {
            files.push((format!("{}.npy", modality.name()), npy_f32(table)?));
            files.push((
                format!("{}_present.npy", modality.name()),
                npy_u8(&table.present)?,
            ));
        }
    }
    Ok(files)
}

fn npy_f32(table: &FeatureTable) -> Result<Vec<u8>, StoreError> {
    use npyz::WriterBuilder;
    let rows = table.present.len() as u64;
    let mut out = Vec::new();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[rows, table.dim as u64])
        .writer(&mut out)
        .begin_nd()
        .map_err(io_error(Path::new("features.npy")))?;
    writer
        .extend(table.values.iter().copied())
        .map_err(io_error(Path::new("features.npy")))?;
    writer
        .finish()
        .map_err(io_error(Path::new("features.npy")))?;
    Ok(out)
}

fn npy_u8(flags: &[bool]) -> Result<Vec<u8>, StoreError> {
    use npyz::WriterBuilder;
    let mut out = Vec::new();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[flags.len() as u64])
        .writer(&mut out)
        .begin_nd()
        .map_err(io_error(Path::new("present.npy")))?;
    writer
        .extend(flags.iter().map(|&f| f as u8))
        .map_err(io_error(Path::new("present.npy")))?;
    writer
        .finish()
        .map_err(io_error(Path::new("present.npy")))?;
    Ok(out)
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

fn read_npy<T: npyz::Deserialize>(
    path: &Path,
    bytes: &[u8],
    shape: &[u64],
) -> Result<Vec<T>, StoreError> {
    let corrupt = |problem: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        problem,
    };
    let npy = npyz::NpyFile::new(bytes).map_err(|e| corrupt(e.to_string()))?;
    if npy.shape() != shape {
        return Err(corrupt(format!(
            "shape {:?}, expected {shape:?}",
            npy.shape()
        )));
    }
    npy.into_vec::<T>().map_err(|e| corrupt(e.to_string()))
}

/// Data lines of a TSV table (the header is line 1), with 1-based line numbers.
fn data_lines<'a>(
    path: &'a Path,
    bytes: &'a [u8],
) -> Result<impl Iterator<Item = (usize, &'a str)>, StoreError> {
    let text = std::str::from_utf8(bytes).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        problem: format!("not UTF-8: {e}"),
    })?;
    Ok(text.lines().enumerate().skip(1).map(|(i, l)| (i + 1, l)))
}

fn parse_error(path: &Path, line: usize, problem: impl Into<String>) -> StoreError {
    StoreError::Parse {
        path: path.to_path_buf(),
        line,
        problem: problem.into(),
    }
}

/// Checks that the first column counts 1, 2, 3, ... (ids are dense).
fn expect_id(
    path: &Path,
    line: usize,
    field: Option<&str>,
    expected: usize,
) -> Result<(), StoreError> {
    match field.and_then(|f| f.parse::<usize>().ok()) {
        Some(id) if id == expected => Ok(()),
        _ => Err(parse_error(
            path,
            line,
            format!("expected id {expected} in the first column"),
        )),
    }
}

fn parse_ids(path: &Path, line: usize, field: &str) -> Result<Vec<u32>, StoreError> {
    field
        .split_ascii_whitespace()
        .map(|t| {
            t.parse::<u32>()
                .map_err(|_| parse_error(path, line, format!("{t:?} is not an id")))
        })
        .collect()
}

fn parse_keys(path: &Path, bytes: &[u8]) -> Result<Vec<String>, StoreError> {
    let mut keys = Vec::new();
    for (line, text) in data_lines(path, bytes)? {
        let mut fields = text.splitn(2, '\t');
        expect_id(path, line, fields.next(), keys.len() + 1)?;
        keys.push(fields.next().unwrap_or_default().to_string());
    }
    Ok(keys)
}

fn parse_items(
    path: &Path,
    bytes: &[u8],
) -> Result<(Vec<String>, Vec<Option<String>>), StoreError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .from_reader(bytes);
    let (mut keys, mut titles) = (Vec::new(), Vec::new());
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            parse_error(path, line, e.to_string())
        })?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        expect_id(path, line, record.get(0), keys.len() + 1)?;
        keys.push(record.get(1).unwrap_or_default().to_string());
        titles.push(record.get(2).filter(|t| !t.is_empty()).map(str::to_string));
    }
    Ok((keys, titles))
}

fn parse_sequences(path: &Path, bytes: &[u8]) -> Result<Vec<Vec<u32>>, StoreError> {
    let mut sequences = Vec::new();
    for (line, text) in data_lines(path, bytes)? {
        let mut fields = text.splitn(2, '\t');
        expect_id(path, line, fields.next(), sequences.len() + 1)?;
        sequences.push(parse_ids(path, line, fields.next().unwrap_or_default())?);
    }
    Ok(sequences)
}

fn parse_samples(path: &Path, bytes: &[u8]) -> Result<SampleSet, StoreError> {
    let mut set = SampleSet::new();
    for (line, text) in data_lines(path, bytes)? {
        let fields: Vec<&str> = text.splitn(3, '\t').collect();
        if fields.len() != 3 {
            return Err(parse_error(
                path,
                line,
                "expected user_id, target and input",
            ));
        }
        let user = parse_ids(path, line, fields[0])?;
        let target = parse_ids(path, line, fields[1])?;
        let (&[user], &[target]) = (user.as_slice(), target.as_slice()) else {
            return Err(parse_error(
                path,
                line,
                "user_id and target must be single ids",
            ));
        };
        set.push(user, &parse_ids(path, line, fields[2])?, target);
    }
    Ok(set)
}
