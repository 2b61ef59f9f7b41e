//! `ratings_<Cat>.csv`: the "ratings only" file that MMSR reads (spec §1.2). No header; columns
//! `user,item,rating,timestamp`, e.g. `A39HTATAQ9V7YF,0205616461,5.0,1369699200`. It holds every
//! rating of the category; the caller applies the rating filter and the 5-core (spec §1.3).
//! A gzipped copy reads the same.

use std::path::Path;

use crate::dataset::log::RawLog;

use super::{open_maybe_gzip, SourceError};

/// One row of a ratings file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rating<'a> {
    pub user: &'a str,
    pub item: &'a str,
    pub rating: f32,
    pub timestamp: i64,
}

/// Streams the rows of a ratings CSV in file order; returns the number of rows.
pub fn for_each_rating(path: &Path, mut visit: impl FnMut(Rating<'_>)) -> Result<u64, SourceError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(open_maybe_gzip(path)?);
    let mut record = csv::ByteRecord::new();
    let mut rows = 0u64;
    loop {
        let more = reader.read_byte_record(&mut record).map_err(|e| {
            let line = e.position().map_or(rows, |p| p.line());
            match e.into_kind() {
                csv::ErrorKind::Io(source) => SourceError::Read {
                    path: path.to_path_buf(),
                    line,
                    source,
                },
                other => SourceError::Parse {
                    path: path.to_path_buf(),
                    line,
                    problem: format!("{other:?}"),
                },
            }
        })?;
        if !more {
            break;
        }
        let line = record.position().map_or(rows + 1, |p| p.line());
        let error = |problem: String| SourceError::Parse {
            path: path.to_path_buf(),
            line,
            problem,
        };
        if record.len() == 1 && record[0].iter().all(u8::is_ascii_whitespace) {
            continue; // blank line
        }
        if record.len() != 4 {
            return Err(error(format!(
                "{} fields, expected 4 (user,item,rating,timestamp)",
                record.len()
            )));
        }
        let field = |i: usize, name: &str| {
            std::str::from_utf8(&record[i])
                .map(str::trim)
                .map_err(|_| error(format!("{name} is not valid UTF-8")))
        };
        let (user, item) = (field(0, "user")?, field(1, "item")?);
        if user.is_empty() || item.is_empty() {
            return Err(error("empty user or item".into()));
        }
        let rating_text = field(2, "rating")?;
        let rating: f32 = rating_text
            .parse()
            .ok()
            .filter(|r: &f32| r.is_finite())
            .ok_or_else(|| error(format!("rating {rating_text:?} is not a number")))?;
        let time_text = field(3, "timestamp")?;
        let timestamp = parse_timestamp(time_text)
            .ok_or_else(|| error(format!("timestamp {time_text:?} is not an integer")))?;
        visit(Rating {
            user,
            item,
            rating,
            timestamp,
        });
        rows += 1;
    }
    if rows == 0 {
        return Err(SourceError::Invalid {
            path: path.to_path_buf(),
            problem: "no ratings (empty file)".into(),
        });
    }
    Ok(rows)
}

/// Unix seconds; an integral float such as `1369699200.0` is accepted too.
fn parse_timestamp(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().or_else(|| {
        let f: f64 = text.parse().ok()?;
        (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
    })
}

/// Reads a whole ratings CSV into a raw log (file order kept, duplicates kept).
pub fn read_ratings(path: &Path) -> Result<RawLog, SourceError> {
    let mut log = RawLog::default();
    for_each_rating(path, |r| log.push(r.user, r.item, r.rating, r.timestamp))?;
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ratings_Test.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn reads_rows_in_order() {
        let (_d, path) = write(
            "A39HTATAQ9V7YF,0205616461,5.0,1369699200\nA3JM6GV9MNOF9X,0558925278,3.0,1355443200.0\r\n\nA39HTATAQ9V7YF,0558925278,4,1\n",
        );
        let log = read_ratings(&path).unwrap();
        assert_eq!(log.rows.len(), 3);
        assert_eq!(log.users.len(), 2);
        assert_eq!(log.items.key(log.rows[1].item), "0558925278");
        assert_eq!(
            (log.rows[1].rating, log.rows[1].timestamp),
            (3.0, 1355443200)
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        for (text, want) in [
            (
                "u,i,5.0,1\nu,i,5.0\n",
                "ratings_Test.csv:2: 3 fields, expected 4",
            ),
            (
                "u,i,5.0,1\nu,i,five,1\n",
                "ratings_Test.csv:2: rating \"five\" is not a number",
            ),
            (
                "u,i,5.0,1.5\n",
                "ratings_Test.csv:1: timestamp \"1.5\" is not an integer",
            ),
            ("u,,5.0,1\n", "ratings_Test.csv:1: empty user or item"),
            ("", "ratings_Test.csv: no ratings (empty file)"),
        ] {
            let (_d, path) = write(text);
            let e = read_ratings(&path).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
        }
    }
}
