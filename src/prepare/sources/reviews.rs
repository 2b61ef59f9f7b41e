//! `reviews_<Cat>_5.json.gz`: the official 5-core reviews, gzip with one strict JSON object per
//! line, e.g. `{"reviewerID": "A1YJEY40YUW4SE", "asin": "7806397051", ..., "overall": 1.0,
//! "unixReviewTime": 1391040000, ...}`. Only `reviewerID`, `asin`, `overall` and
//! `unixReviewTime` are read; the file is grouped by item, not ordered by time (the stable time
//! sort happens in [`RawLog::into_dataset`]).

use std::borrow::Cow;
use std::path::Path;

use serde::Deserialize;

use crate::dataset::log::RawLog;

use super::{LineReader, SourceError};

#[derive(Deserialize)]
struct ReviewLine<'a> {
    #[serde(rename = "reviewerID", borrow)]
    reviewer: Cow<'a, str>,
    #[serde(borrow)]
    asin: Cow<'a, str>,
    overall: f32,
    #[serde(rename = "unixReviewTime")]
    time: i64,
}

/// One review (the fields the pipeline uses).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Review<'a> {
    pub user: &'a str,
    pub item: &'a str,
    pub rating: f32,
    pub timestamp: i64,
}

/// Streams a reviews file (gzip or plain JSON lines) in file order; returns the number of reviews.
pub fn for_each_review(path: &Path, mut visit: impl FnMut(Review<'_>)) -> Result<u64, SourceError> {
    let mut reader = LineReader::open(path)?;
    let mut count = 0u64;
    while let Some(line) = reader.next_line()? {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed: ReviewLine<'_> = match serde_json::from_slice(line) {
            Ok(parsed) => parsed,
            Err(e) => {
                let problem = format!(
                    "not a review record ({e}); the file is corrupt or not an Amazon-2014 reviews file"
                );
                return Err(reader.error(problem));
            }
        };
        if parsed.reviewer.is_empty() || parsed.asin.is_empty() {
            return Err(reader.error("empty reviewerID or asin"));
        }
        if !parsed.overall.is_finite() {
            return Err(reader.error("`overall` is not a finite number"));
        }
        visit(Review {
            user: &parsed.reviewer,
            item: &parsed.asin,
            rating: parsed.overall,
            timestamp: parsed.time,
        });
        count += 1;
    }
    if count == 0 {
        return Err(SourceError::Invalid {
            path: path.to_path_buf(),
            problem: "no reviews (empty file)".into(),
        });
    }
    Ok(count)
}

/// Reads a whole reviews file into a raw log (file order kept).
pub fn read_reviews(path: &Path) -> Result<RawLog, SourceError> {
    let mut log = RawLog::default();
    for_each_review(path, |r| log.push(r.user, r.item, r.rating, r.timestamp))?;
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_gz(lines: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reviews_Test_5.json.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        enc.write_all(lines.as_bytes()).unwrap();
        enc.finish().unwrap();
        (dir, path)
    }

    #[test]
    fn reads_the_official_first_line() {
        let (_d, path) = write_gz(concat!(
            r#"{"reviewerID": "A1YJEY40YUW4SE", "asin": "7806397051", "reviewerName": "Andrea", "helpful": [3, 4], "reviewText": "Very oily and creamy. \"Not\" what I hoped \u00e9.", "overall": 1.0, "summary": "Don't waste your money", "unixReviewTime": 1391040000, "reviewTime": "01 30, 2014"}"#,
            "\n",
            r#"{"reviewerID": "A\u0031B", "asin": "7806397051", "overall": 5.0, "unixReviewTime": 1}"#,
            "\n"
        ));
        let log = read_reviews(&path).unwrap();
        assert_eq!(log.rows.len(), 2);
        assert_eq!(log.users.key(0), "A1YJEY40YUW4SE");
        assert_eq!(log.users.key(1), "A1B"); // escaped key, decoded
        assert_eq!(
            (log.rows[0].rating, log.rows[0].timestamp),
            (1.0, 1391040000)
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let (_d, path) = write_gz(
            "{\"reviewerID\": \"A\", \"asin\": \"B\", \"overall\": 1.0, \"unixReviewTime\": 1}\n{\"reviewerID\": \"A\", \"overall\": 1.0, \"unixReviewTime\": 1}\n",
        );
        let e = read_reviews(&path).unwrap_err().to_string();
        assert!(
            e.contains("reviews_Test_5.json.gz:2: not a review record (missing field `asin`"),
            "{e}"
        );
    }
}
