//! Building blocks for `prepare <amazon dataset>`: the interaction log from the ratings CSV (or the
//! 5-core reviews), then, once the caller has run the k-core and `into_dataset()`, the titles and
//! image features of the surviving items. The side-information passes stream their files and keep
//! only the wanted ASINs in memory (the full Beauty `.b` file alone is ~259k records × 16 KB).
//!
//! ```text
//! let mut log = read_interactions(&ratings_path, FileRole::Ratings)?;
//! log.k_core(5);
//! let data = log.into_dataset();
//! let (titles, t) = titles_for_items(&meta_path, &data.item_keys)?;
//! let (image, i) = image_features_for_items(&b_path, &data.item_keys)?;
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::dataset::log::RawLog;
use crate::modality::FeatureTable;

use super::image_features::{ImageFeatureReader, FEATURE_DIM};
use super::registry::{DatasetSource, FileRole};
use super::{meta, ratings, reviews, SourceError};

/// The raw file of `role` in `data_dir`, or an error saying how to get it.
pub fn require_raw_file(
    source: &DatasetSource,
    data_dir: &Path,
    role: FileRole,
) -> Result<PathBuf, SourceError> {
    let Some(path) = source.path(data_dir, role) else {
        return Err(SourceError::Invalid {
            path: source.raw_dir(data_dir),
            problem: format!(
                "the registry entry of {} has no {} file",
                source.name,
                role.name()
            ),
        });
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(SourceError::Invalid {
            path,
            problem: format!(
                "missing; fetch it with `mmsr-bench download {} --files {}` (or place the file there by hand)",
                source.name,
                role.name()
            ),
        })
    }
}

/// The interaction log from a ratings CSV (`FileRole::Ratings`) or 5-core reviews file
/// (`FileRole::Reviews`), in file order with duplicates kept (spec §1.3).
pub fn read_interactions(path: &Path, role: FileRole) -> Result<RawLog, SourceError> {
    match role {
        FileRole::Ratings => ratings::read_ratings(path),
        FileRole::Reviews => reviews::read_reviews(path),
        other => Err(SourceError::Invalid {
            path: path.to_path_buf(),
            problem: format!(
                "a {} file holds no interactions (use ratings or reviews)",
                other.name()
            ),
        }),
    }
}

/// Item id (1-based) of each wanted ASIN.
fn item_index(item_keys: &[String]) -> HashMap<&str, usize> {
    item_keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i + 1))
        .collect()
}

/// How many items got a title.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TitleCoverage {
    /// Items asked for.
    pub items: usize,
    /// Items that have a record in the meta file.
    pub in_meta: usize,
    /// Items with a non-empty title.
    pub with_title: usize,
    /// Products (lines) in the meta file.
    pub meta_products: u64,
    /// Repeated records of wanted items (the first one is kept).
    pub duplicates: u64,
}

/// Titles of `item_keys` (item id `i` has `item_keys[i - 1]`) from a meta file; `titles[i - 1]`
/// is item `i`'s cleaned title (see [`clean_title`]) or `None`.
pub fn titles_for_items(
    meta_path: &Path,
    item_keys: &[String],
) -> Result<(Vec<Option<String>>, TitleCoverage), SourceError> {
    let index = item_index(item_keys);
    let mut titles: Vec<Option<String>> = vec![None; item_keys.len()];
    let mut seen = vec![false; item_keys.len()];
    let mut coverage = TitleCoverage {
        items: item_keys.len(),
        ..TitleCoverage::default()
    };
    let stats = meta::for_each_meta(meta_path, |entry| {
        let Some(&id) = index.get(entry.asin.as_str()) else {
            return;
        };
        if std::mem::replace(&mut seen[id - 1], true) {
            coverage.duplicates += 1;
            return;
        }
        coverage.in_meta += 1;
        titles[id - 1] = entry.title.as_deref().and_then(clean_title);
    })?;
    coverage.meta_products = stats.products;
    coverage.with_title = titles.iter().filter(|t| t.is_some()).count();
    Ok((titles, coverage))
}

/// How many items got an image vector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageCoverage {
    /// Items asked for.
    pub items: usize,
    /// Items with a (finite) vector.
    pub with_vector: usize,
    /// Records in the file.
    pub records: u64,
    /// Repeated records of wanted items (the first one is kept).
    pub duplicates: u64,
    /// Records of wanted items with NaN or infinite values (treated as missing).
    pub non_finite: u64,
}

/// The 4096-d image vectors of `item_keys` from an `image_features_*.b` file, as a feature table
/// (row = item id, row 0 padding); only wanted records are decoded and kept.
pub fn image_features_for_items(
    path: &Path,
    item_keys: &[String],
) -> Result<(FeatureTable, ImageCoverage), SourceError> {
    let index = item_index(item_keys);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut table = FeatureTable::empty(
        item_keys.len(),
        FEATURE_DIM,
        format!("Caffe FC7 image features (4096-d) from {file_name}"),
    );
    let mut coverage = ImageCoverage {
        items: item_keys.len(),
        ..ImageCoverage::default()
    };
    let mut vector = vec![0f32; FEATURE_DIM];
    let mut reader = ImageFeatureReader::open(path)?;
    while let Some(record) = reader.next_record()? {
        let Some(&id) = index.get(record.asin) else {
            continue;
        };
        if table.present[id] {
            coverage.duplicates += 1;
            continue;
        }
        record.decode_into(&mut vector);
        if vector.iter().all(|v| v.is_finite()) {
            table.set(id, &vector);
        } else {
            coverage.non_finite += 1;
        }
    }
    coverage.records = reader.records_read();
    coverage.with_vector = table.coverage();
    Ok((table, coverage))
}

/// A title as stored: HTML entities of the Amazon data decoded (`&amp;`, `&quot;`, `&#39;`,
/// `&#NNN;`, ...), whitespace runs collapsed to one space, trimmed; `None` when nothing is left.
pub fn clean_title(raw: &str) -> Option<String> {
    let mut decoded = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        decoded.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        match tail
            .find(';')
            .filter(|&end| end <= 10)
            .and_then(|end| decode_entity(&tail[1..end]).map(|c| (c, end)))
        {
            Some((c, end)) => {
                decoded.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                decoded.push('&');
                rest = &tail[1..];
            }
        }
    }
    decoded.push_str(rest);
    let collapsed = decoded.split_whitespace().collect::<Vec<_>>().join(" ");
    (!collapsed.is_empty()).then_some(collapsed)
}

fn decode_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "nbsp" => Some(' '),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_title_decodes_entities_and_whitespace() {
        assert_eq!(
            clean_title(
                "  Salt &amp; Pepper\t&quot;Mill&quot; &#39;XL&#39; &#x263A; &bogus; a&b  "
            )
            .as_deref(),
            Some("Salt & Pepper \"Mill\" 'XL' ☺ &bogus; a&b")
        );
        assert_eq!(clean_title(" \t "), None);
        assert_eq!(clean_title("&nbsp;"), None);
    }
}
