//! Encoding and decoding of the prepared format's tables (TSV and NPY).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::StoreError;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}
use crate::dataset::prepared::PreparedDataset;
use crate::dataset::split::SampleSet;
use crate::modality::Modality;

pub(super) fn join_ids(ids: &[u32]) -> String {
    let mut out = String::with_capacity(ids.len() * 6);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{id}");
    }
    out
}

pub(super) fn serialize_tables(
    dataset: &PreparedDataset,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
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
            let shape = [table.present.len() as u64, table.dim as u64];
            files.push((
                format!("{}.npy", modality.name()),
                npy_f32(&table.values, &shape)?,
            ));
            files.push((
                format!("{}_present.npy", modality.name()),
                npy_u8(&table.present)?,
            ));
        }
        if let Some(book) = dataset.codes.as_ref().and_then(|c| c.book(modality)) {
            let mut text = String::from("item_id\tcodes\n");
            for (item, links) in book.links.iter().enumerate().skip(1) {
                let _ = writeln!(text, "{item}\t{}", join_ids(links));
            }
            files.push((format!("{}_codes.tsv", modality.name()), text.into_bytes()));
            if book.centre_dim > 0 {
                let shape = [book.num_codes as u64, book.centre_dim as u64];
                files.push((
                    format!("{}_centres.npy", modality.name()),
                    npy_f32(&book.centres, &shape)?,
                ));
            }
            if book.reduced_dim > 0 {
                let shape = [book.links.len() as u64, book.reduced_dim as u64];
                files.push((
                    format!("{}_reduced.npy", modality.name()),
                    npy_f32(&book.reduced, &shape)?,
                ));
            }
        }
    }
    Ok(files)
}

pub(super) fn npy_f32(values: &[f32], shape: &[u64]) -> Result<Vec<u8>, StoreError> {
    use npyz::WriterBuilder;
    let mut out = Vec::new();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut out)
        .begin_nd()
        .map_err(io_error(Path::new("features.npy")))?;
    writer
        .extend(values.iter().copied())
        .map_err(io_error(Path::new("features.npy")))?;
    writer
        .finish()
        .map_err(io_error(Path::new("features.npy")))?;
    Ok(out)
}

pub(super) fn npy_u8(flags: &[bool]) -> Result<Vec<u8>, StoreError> {
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

pub(super) fn read_npy<T: npyz::Deserialize>(
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
pub(super) fn data_lines<'a>(
    path: &'a Path,
    bytes: &'a [u8],
) -> Result<impl Iterator<Item = (usize, &'a str)>, StoreError> {
    let text = std::str::from_utf8(bytes).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        problem: format!("not UTF-8: {e}"),
    })?;
    Ok(text.lines().enumerate().skip(1).map(|(i, l)| (i + 1, l)))
}

pub(super) fn parse_error(path: &Path, line: usize, problem: impl Into<String>) -> StoreError {
    StoreError::Parse {
        path: path.to_path_buf(),
        line,
        problem: problem.into(),
    }
}

/// Checks that the first column counts 1, 2, 3, ... (ids are dense).
pub(super) fn expect_id(
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

pub(super) fn parse_ids(path: &Path, line: usize, field: &str) -> Result<Vec<u32>, StoreError> {
    field
        .split_ascii_whitespace()
        .map(|t| {
            t.parse::<u32>()
                .map_err(|_| parse_error(path, line, format!("{t:?} is not an id")))
        })
        .collect()
}

pub(super) fn parse_keys(path: &Path, bytes: &[u8]) -> Result<Vec<String>, StoreError> {
    let mut keys = Vec::new();
    for (line, text) in data_lines(path, bytes)? {
        let mut fields = text.splitn(2, '\t');
        expect_id(path, line, fields.next(), keys.len() + 1)?;
        keys.push(fields.next().unwrap_or_default().to_string());
    }
    Ok(keys)
}

pub(super) fn parse_items(
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

pub(super) fn parse_sequences(path: &Path, bytes: &[u8]) -> Result<Vec<Vec<u32>>, StoreError> {
    let mut sequences = Vec::new();
    for (line, text) in data_lines(path, bytes)? {
        let mut fields = text.splitn(2, '\t');
        expect_id(path, line, fields.next(), sequences.len() + 1)?;
        sequences.push(parse_ids(path, line, fields.next().unwrap_or_default())?);
    }
    Ok(sequences)
}

/// `item_id<TAB>codes` for items 1..=num_items; index 0 of the result is padding (empty).
pub(super) fn parse_code_links(
    path: &Path,
    bytes: &[u8],
    num_items: usize,
    num_codes: usize,
) -> Result<Vec<Vec<u32>>, StoreError> {
    let mut links = vec![Vec::new()];
    for (line, text) in data_lines(path, bytes)? {
        let mut fields = text.splitn(2, '\t');
        expect_id(path, line, fields.next(), links.len())?;
        let codes = parse_ids(path, line, fields.next().unwrap_or_default())?;
        if let Some(bad) = codes.iter().find(|&&c| c as usize >= num_codes) {
            return Err(parse_error(
                path,
                line,
                format!("code {bad} out of range (there are {num_codes})"),
            ));
        }
        links.push(codes);
    }
    if links.len() != num_items + 1 {
        return Err(parse_error(
            path,
            links.len(),
            format!("expected {num_items} items"),
        ));
    }
    Ok(links)
}

pub(super) fn parse_samples(path: &Path, bytes: &[u8]) -> Result<SampleSet, StoreError> {
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
