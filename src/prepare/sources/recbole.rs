//! RecBole atomic files: tab-separated, a header of `name:type` fields, values quoted with `"`
//! where they contain tabs, quotes or newlines. Item files (`<dataset>.item`) give item side
//! information when only sequences are available offline (e.g. `Amazon_Beauty.item`, which has
//! titles, categories and brands of all 12,101 Beauty 5-core items); interaction files
//! (`<dataset>.inter`: user, item, timestamp) are a dataset's log (`prepare --from-recbole`).

use std::collections::HashMap;
use std::path::Path;

use super::SourceError;
use crate::dataset::log::RawLog;

fn tsv_reader(path: &Path) -> Result<csv::Reader<std::io::BufReader<std::fs::File>>, SourceError> {
    let file = std::fs::File::open(path).map_err(|source| SourceError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .flexible(false)
        .from_reader(std::io::BufReader::new(file)))
}

fn parse_error(path: &Path, e: csv::Error) -> SourceError {
    SourceError::Parse {
        path: path.to_path_buf(),
        line: e.position().map_or(0, |p| p.line()),
        problem: e.to_string(),
    }
}

/// Reads a RecBole interaction file into a raw log: the `user_id` and `item_id` fields, the
/// `timestamp` field when present (else the row's position, so file order is history order),
/// and `rating` when present (else 1). Rows of one user may come in any order.
pub fn read_interactions(path: &Path) -> Result<RawLog, SourceError> {
    let invalid = |problem: String| SourceError::Invalid {
        path: path.to_path_buf(),
        problem,
    };
    let mut reader = tsv_reader(path)?;
    let header = reader
        .headers()
        .map_err(|e| invalid(format!("cannot read the header: {e}")))?
        .clone();
    let names: Vec<&str> = header
        .iter()
        .map(|h| h.split(':').next().unwrap_or(h))
        .collect();
    let find = |name: &str| names.iter().position(|n| *n == name);
    let required = |name: &str| {
        find(name).ok_or_else(|| {
            invalid(format!(
                "no field {name:?}; a RecBole .inter file needs user_id and item_id (and timestamp for the order); the header has {}",
                names.join(", ")
            ))
        })
    };
    let (user, item) = (required("user_id")?, required("item_id")?);
    let (timestamp, rating) = (find("timestamp"), find("rating"));
    let mut log = RawLog::default();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| parse_error(path, e))?;
        let line = row + 2;
        let number = |column: usize, what: &str| -> Result<f64, SourceError> {
            let text = record.get(column).unwrap_or_default();
            text.trim().parse::<f64>().map_err(|_| SourceError::Parse {
                path: path.to_path_buf(),
                line: line as u64,
                problem: format!(
                    "{what} {:?} is not a number",
                    text.chars().take(40).collect::<String>()
                ),
            })
        };
        let time = match timestamp {
            // Integral seconds as RecBole's Amazon files have them; finer times keep their order.
            Some(c) => (number(c, "timestamp")? * 1000.0).round() as i64,
            None => row as i64,
        };
        let value = match rating {
            Some(c) => number(c, "rating")? as f32,
            None => 1.0,
        };
        let (u, i) = (
            record.get(user).unwrap_or_default(),
            record.get(item).unwrap_or_default(),
        );
        if u.is_empty() || i.is_empty() {
            return Err(SourceError::Parse {
                path: path.to_path_buf(),
                line: line as u64,
                problem: "empty user_id or item_id".into(),
            });
        }
        log.push(u, i, value, time);
    }
    if log.rows.is_empty() {
        return Err(invalid(
            "no interactions (the file has only a header)".into(),
        ));
    }
    Ok(log)
}

/// For every item (keyed by the `item_id` field), the values of `fields`, in that order.
pub fn read_item_fields(
    path: &Path,
    fields: &[&str],
) -> Result<HashMap<String, Vec<String>>, SourceError> {
    let invalid = |problem: String| SourceError::Invalid {
        path: path.to_path_buf(),
        problem,
    };
    let mut reader = tsv_reader(path)?;
    let header = reader
        .headers()
        .map_err(|e| invalid(format!("cannot read the header: {e}")))?
        .clone();
    let names: Vec<&str> = header
        .iter()
        .map(|h| h.split(':').next().unwrap_or(h))
        .collect();
    let column = |name: &str| {
        names.iter().position(|n| *n == name).ok_or_else(|| {
            invalid(format!(
                "no field {name:?}; the header has {}",
                names.join(", ")
            ))
        })
    };
    let key = column("item_id")?;
    let wanted: Vec<usize> = fields.iter().map(|f| column(f)).collect::<Result<_, _>>()?;
    let mut items = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| parse_error(path, e))?;
        let values = wanted
            .iter()
            .map(|&c| record.get(c).unwrap_or_default().to_string())
            .collect();
        items.insert(record.get(key).unwrap_or_default().to_string(), values);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_quoted_fields_by_name() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"item_id:token\ttitle:token\tbrand:token\nA1\t\"Tab\there and \"\"quotes\"\"\"\tB1\nA2\tplain\t\n").unwrap();
        let items = read_item_fields(f.path(), &["brand", "title"]).unwrap();
        assert_eq!(
            items["A1"],
            vec!["B1".to_string(), "Tab\there and \"quotes\"".to_string()]
        );
        assert_eq!(items["A2"], vec![String::new(), "plain".to_string()]);
        let e = read_item_fields(f.path(), &["price"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no field \"price\"; the header has item_id, title, brand"),
            "{e}"
        );
    }
}
