//! `meta_<Cat>.json.gz`: one Python dict literal per line (single quotes, `True`/`False`/`None`,
//! nested lists and dicts), e.g.
//! `{'asin': '0558925278', 'title': 'Eco Friendly ...', 'salesRank': {'Beauty': 402875}, 'categories': [['Beauty']]}`.
//!
//! The lines are parsed with the Python literal parser of [`super::pyliteral`] (data only, never
//! code execution).
//!
//! Meta lines are parsed in full (a malformed line is an error, never skipped), but only the
//! requested top-level fields (`asin`, `title`) are materialised: [`parse_dict_fields`] validates the rest without
//! allocating, which keeps the `related` lists of hundreds of ASINs per line cheap.

use std::path::Path;

pub use super::pyliteral::{parse_dict_fields, parse_literal, LiteralError, PyValue};
use super::{LineReader, SourceError};

/// One product of a meta file (only the fields mmsr-bench uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaEntry {
    pub asin: String,
    /// `None` when the key is missing or its value is `None`.
    pub title: Option<String>,
}

/// Parses one meta line: a dict with a string `asin` and an optional string (or `None`) `title`.
pub fn parse_meta_line(line: &str) -> Result<MetaEntry, LiteralError> {
    let dict = parse_dict_fields(line, &["asin", "title"])?;
    let plain = |message: String| LiteralError {
        column: None,
        message,
    };
    let asin = match dict.get("asin") {
        Some(PyValue::Str(s)) if !s.is_empty() => s.clone(),
        Some(PyValue::Str(_)) => return Err(plain("'asin' is empty".into())),
        Some(other) => {
            return Err(plain(format!(
                "'asin' is a {}, expected a string",
                other.type_name()
            )))
        }
        None => return Err(plain("the dict has no 'asin' key".into())),
    };
    let title = match dict.get("title") {
        None | Some(PyValue::None) => None,
        Some(PyValue::Str(s)) => Some(s.clone()),
        Some(other) => {
            return Err(plain(format!(
                "'title' of {asin} is a {}, expected a string",
                other.type_name()
            )))
        }
    };
    Ok(MetaEntry { asin, title })
}

/// Counts from one pass over a meta file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaStats {
    /// Non-blank lines, i.e. products.
    pub products: u64,
    pub with_title: u64,
}

/// Streams a meta file (gzip or plain) and calls `visit` with each product in file order. Any
/// malformed line stops the pass with an error naming the file, line and column.
pub fn for_each_meta(
    path: &Path,
    mut visit: impl FnMut(MetaEntry),
) -> Result<MetaStats, SourceError> {
    let mut reader = LineReader::open(path)?;
    let mut stats = MetaStats::default();
    while let Some(line) = reader.next_line()? {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let text = match std::str::from_utf8(line) {
            Ok(text) => text,
            Err(e) => {
                let problem = format!(
                    "invalid UTF-8 at byte {} of the line; the file is corrupt: delete it and re-run `mmsr-bench download`",
                    e.valid_up_to() + 1
                );
                return Err(reader.error(problem));
            }
        };
        match parse_meta_line(text) {
            Ok(entry) => {
                stats.products += 1;
                stats.with_title += u64::from(entry.title.is_some());
                visit(entry);
            }
            Err(e) => {
                return Err(reader.error(format!(
                    "not a valid meta record ({e}); the file is corrupt or not an Amazon-2014 meta file"
                )))
            }
        }
    }
    Ok(stats)
}
