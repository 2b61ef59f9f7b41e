//! RecBole atomic item files (`<dataset>.item`): tab-separated, a header of `name:type` fields,
//! values quoted with `"` where they contain tabs, quotes or newlines. Used for item side
//! information when only sequences are available offline (e.g. `Amazon_Beauty.item`, which has
//! titles, categories and brands of all 12,101 Beauty 5-core items).

use std::collections::HashMap;
use std::path::Path;

use super::SourceError;

/// For every item (keyed by the `item_id` field), the values of `fields`, in that order.
pub fn read_item_fields(
    path: &Path,
    fields: &[&str],
) -> Result<HashMap<String, Vec<String>>, SourceError> {
    let invalid = |problem: String| SourceError::Invalid {
        path: path.to_path_buf(),
        problem,
    };
    let file = std::fs::File::open(path).map_err(|source| SourceError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .flexible(false)
        .from_reader(std::io::BufReader::new(file));
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
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            SourceError::Parse {
                path: path.to_path_buf(),
                line,
                problem: e.to_string(),
            }
        })?;
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
