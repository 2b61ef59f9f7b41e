//! Item side information for sequence-file datasets, from the files that exist offline
//! (`../shared/data/README.md` §2): each source yields one text per item key (an ASIN), which the
//! pipeline encodes into a modality.
//!
//! | format | file | text per item |
//! |---|---|---|
//! | `recbole-item` | RecBole atomic `.item` (TSV with a typed header) | the chosen fields, joined |
//! | `key-text` | `KEY words ...` per line (IDGenRec's item indexings) | the words after the key |
//! | `s3rec-attributes` | S3-Rec `*_item2attributes.json` + a P5 `datamaps.json` for its ids | `a<id>` tokens |

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::recbole::read_item_fields;
use super::SourceError;

/// Where one modality's item text comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SideSource {
    /// Fields of a RecBole atomic item file, joined with " ; ".
    RecboleItem { path: PathBuf, fields: Vec<String> },
    /// One item per line: its key, then its text.
    KeyText { path: PathBuf },
    /// S3-Rec attribute ids per S3-Rec item id, turned into ASIN keys by the `id2item` map of a
    /// P5-style `datamaps.json` (the same numbering, `../shared/data/README.md` §2).
    S3recAttributes { path: PathBuf, datamaps: PathBuf },
}

/// How a source's texts become vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Free text: the text encoder (built-in TF-IDF with n-grams, or a pretrained one).
    Text,
    /// Bags of attribute tokens: whole tokens only (`encode_attribute_bags`).
    AttributeBag,
}

impl SideSource {
    pub fn encoding(&self) -> Encoding {
        match self {
            SideSource::S3recAttributes { .. } => Encoding::AttributeBag,
            _ => Encoding::Text,
        }
    }

    /// The source relative to `base` (recipes name files relative to the shared data folder).
    pub fn under(&self, base: &Path) -> SideSource {
        match self {
            SideSource::RecboleItem { path, fields } => SideSource::RecboleItem {
                path: base.join(path),
                fields: fields.clone(),
            },
            SideSource::KeyText { path } => SideSource::KeyText {
                path: base.join(path),
            },
            SideSource::S3recAttributes { path, datamaps } => SideSource::S3recAttributes {
                path: base.join(path),
                datamaps: base.join(datamaps),
            },
        }
    }

    /// A short description for the dataset's provenance.
    pub fn describe(&self) -> String {
        let name = |p: &Path| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        };
        match self {
            SideSource::RecboleItem { path, fields } => {
                format!("{} of {}", fields.join(" + "), name(path))
            }
            SideSource::KeyText { path } => format!("item text of {}", name(path)),
            SideSource::S3recAttributes { path, .. } => {
                format!("S3-Rec attribute ids of {}", name(path))
            }
        }
    }

    /// The text of every item the source knows, by item key. Items without text are absent.
    pub fn read(&self) -> Result<HashMap<String, String>, SourceError> {
        match self {
            SideSource::RecboleItem { path, fields } => {
                let names: Vec<&str> = fields.iter().map(String::as_str).collect();
                Ok(read_item_fields(path, &names)?
                    .into_iter()
                    .filter_map(|(key, values)| {
                        let text = values
                            .iter()
                            .map(|v| v.trim())
                            .filter(|v| !v.is_empty())
                            .collect::<Vec<_>>()
                            .join(" ; ");
                        (!text.is_empty()).then_some((key, text))
                    })
                    .collect())
            }
            SideSource::KeyText { path } => read_key_text(path),
            SideSource::S3recAttributes { path, datamaps } => read_attributes(path, datamaps),
        }
    }
}

fn read_key_text(path: &Path) -> Result<HashMap<String, String>, SourceError> {
    let reader = super::open_maybe_gzip(path)?;
    let mut texts = HashMap::new();
    for (index, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| SourceError::Read {
            path: path.to_path_buf(),
            line: index as u64,
            source,
        })?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (key, text) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let text = text.trim();
        if !text.is_empty() && texts.insert(key.to_string(), text.to_string()).is_some() {
            return Err(SourceError::Parse {
                path: path.to_path_buf(),
                line: index as u64 + 1,
                problem: format!("item {key:?} appears twice"),
            });
        }
    }
    if texts.is_empty() {
        return Err(SourceError::Invalid {
            path: path.to_path_buf(),
            problem: "no `KEY text` lines".into(),
        });
    }
    Ok(texts)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, SourceError> {
    let bytes = std::fs::read(path).map_err(|source| SourceError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| SourceError::Invalid {
        path: path.to_path_buf(),
        problem: format!("not the expected JSON: {e}"),
    })
}

#[derive(Deserialize)]
struct Datamaps {
    id2item: HashMap<String, String>,
}

fn read_attributes(path: &Path, datamaps: &Path) -> Result<HashMap<String, String>, SourceError> {
    let attributes: HashMap<String, Vec<u64>> = read_json(path)?;
    let keys: Datamaps = read_json(datamaps)?;
    let mut texts = HashMap::with_capacity(attributes.len());
    for (id, list) in attributes {
        let asin = keys.id2item.get(&id).ok_or_else(|| SourceError::Invalid {
            path: datamaps.to_path_buf(),
            problem: format!(
                "no id2item entry for item {id} of {}: the two files use different item numberings",
                path.display()
            ),
        })?;
        let mut list = list;
        list.sort_unstable();
        list.dedup();
        let bag: Vec<String> = list.iter().map(|a| format!("a{a}")).collect();
        if !bag.is_empty() {
            texts.insert(asin.clone(), bag.join(" "));
        }
    }
    Ok(texts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        path
    }

    #[test]
    fn key_text_and_attributes_map_onto_item_keys() {
        let dir = tempfile::tempdir().unwrap();
        let text = file(
            dir.path(),
            "t.txt",
            "B01 red shoe\n\nB02  blue  hat \nB03\n",
        );
        let texts = SideSource::KeyText { path: text.clone() }.read().unwrap();
        assert_eq!(texts.len(), 2);
        assert_eq!(texts["B02"], "blue  hat");
        let twice = file(dir.path(), "d.txt", "B01 a\nB01 b\n");
        let e = SideSource::KeyText { path: twice }
            .read()
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("d.txt:2: item \"B01\" appears twice"), "{e}");

        let attrs = file(dir.path(), "a.json", r#"{"1": [7, 3, 7], "2": []}"#);
        let maps = file(
            dir.path(),
            "m.json",
            r#"{"id2item": {"1": "B01", "2": "B02"}, "id2user": {}}"#,
        );
        let source = SideSource::S3recAttributes {
            path: attrs.clone(),
            datamaps: maps,
        };
        assert_eq!(source.encoding(), Encoding::AttributeBag);
        let bags = source.read().unwrap();
        assert_eq!(bags.len(), 1);
        assert_eq!(bags["B01"], "a3 a7");
        let other = file(dir.path(), "o.json", r#"{"id2item": {"2": "B02"}}"#);
        let e = SideSource::S3recAttributes {
            path: attrs,
            datamaps: other,
        }
        .read()
        .unwrap_err()
        .to_string();
        assert!(e.contains("no id2item entry for item 1"), "{e}");
    }
}
