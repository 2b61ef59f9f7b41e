//! Reader for one-user-per-line sequence files (`user item item ...`, oldest first), the format of
//! the S3-Rec / P5 copies of the Amazon 5-core data in `../shared/data`. Item tokens may be
//! integer ids or ASINs; positions become increasing timestamps so the usual pipeline applies.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::dataset::log::RawLog;

#[derive(Debug, Error)]
pub enum SequenceFileError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {problem}")]
    Line {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("{path}: no sequences (empty file)")]
    Empty { path: PathBuf },
}

/// Reads a sequence file into a raw log (rating 1, timestamp = position in the user's line).
pub fn read_sequence_file(path: &Path) -> Result<RawLog, SequenceFileError> {
    let io = |source| SequenceFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let reader = BufReader::new(File::open(path).map_err(io)?);
    let mut log = RawLog::default();
    let mut first_line_of_user: HashMap<String, usize> = HashMap::new();
    for (index, line) in reader.lines().enumerate() {
        let line_no = index + 1;
        let text = line.map_err(io)?;
        let mut tokens = text.split_ascii_whitespace();
        let Some(user) = tokens.next() else { continue };
        let error = |problem: String| SequenceFileError::Line {
            path: path.to_path_buf(),
            line: line_no,
            problem,
        };
        if let Some(first) = first_line_of_user.insert(user.to_string(), line_no) {
            return Err(error(format!(
                "user {user:?} already has a sequence on line {first}"
            )));
        }
        let before = log.rows.len();
        for (position, item) in tokens.enumerate() {
            log.push(user, item, 1.0, position as i64);
        }
        if log.rows.len() == before {
            return Err(error(format!("user {user:?} has an empty sequence")));
        }
    }
    if log.rows.is_empty() {
        return Err(SequenceFileError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn reads_users_in_order_and_keeps_item_order() {
        let f = file_with("u2 B c a\n\nu1 a a\n");
        let ds = read_sequence_file(f.path()).unwrap().into_dataset();
        assert_eq!(ds.user_keys, ["u1", "u2"]);
        assert_eq!(ds.item_keys, ["B", "a", "c"]);
        assert_eq!(ds.sequences, vec![vec![2, 2], vec![1, 3, 2]]);
    }

    #[test]
    fn errors_name_file_and_line() {
        let f = file_with("u1 a b\nu2\n");
        let e = read_sequence_file(f.path()).unwrap_err().to_string();
        assert!(e.ends_with(":2: user \"u2\" has an empty sequence"), "{e}");
        let f = file_with("u1 a\nu1 b\n");
        let e = read_sequence_file(f.path()).unwrap_err().to_string();
        assert!(
            e.ends_with(":2: user \"u1\" already has a sequence on line 1"),
            "{e}"
        );
        let f = file_with("\n\n");
        assert!(read_sequence_file(f.path())
            .unwrap_err()
            .to_string()
            .ends_with("no sequences (empty file)"));
        let missing = read_sequence_file(Path::new("/nonexistent/x.txt"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("/nonexistent/x.txt: cannot read"),
            "{missing}"
        );
    }
}
