//! The raw Amazon-2014 sources (spec §1.1–1.2, `../shared/data/README.md` §1.1): the dataset
//! registry (`datasets/<name>.yaml`), the downloader, streaming parsers for the four raw formats
//! and the assembly of a [`RawLog`](super::RawLog), titles and image features from them.
//!
//! | module | file | format |
//! |---|---|---|
//! | [`ratings`] | `ratings_<Cat>.csv` | headerless CSV `user,item,rating,timestamp` |
//! | [`reviews`] | `reviews_<Cat>_5.json.gz` | gzip, one JSON object per line |
//! | [`meta`] | `meta_<Cat>.json.gz` | gzip, one Python dict literal per line |
//! | [`image_features`] | `image_features_<Cat>.b` | 10-byte ASIN + 4096 little-endian f32 per record |
//!
//! Every parser streams (nothing but the result is held in memory) and reports errors as
//! [`SourceError`]s that name the file and the line or record.

pub mod amazon;
pub mod download;
pub mod image_features;
pub mod meta;
pub mod pyliteral;
pub mod ratings;
pub mod recbole;
pub mod registry;
pub mod reviews;
pub mod side;
pub mod verify;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;
use thiserror::Error;

/// What went wrong while reading a raw source file.
#[derive(Debug, Error)]
pub enum SourceError {
    #[error("{path}: cannot read: {source}; check that the file exists (`mmsr-bench download` fetches it)")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A read failed in the middle of the file; for gzip files this is also how a corrupt or
    /// truncated stream shows up.
    #[error("{path}: read error after line {line}: {source}; the file is corrupt or truncated: delete it and re-run `mmsr-bench download`")]
    Read {
        path: PathBuf,
        line: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {problem}")]
    Parse {
        path: PathBuf,
        line: u64,
        problem: String,
    },
    #[error("{path}: record {record} (byte offset {offset}): {problem}")]
    Record {
        path: PathBuf,
        record: u64,
        offset: u64,
        problem: String,
    },
    #[error("{path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
}

/// Opens `path` for buffered reading, decompressing it when it starts with the gzip magic bytes
/// (so a `.json.gz` that was unpacked by hand, or a gzipped CSV, reads the same). Concatenated
/// gzip members are read as one stream.
pub fn open_maybe_gzip(path: &Path) -> Result<Box<dyn BufRead + Send>, SourceError> {
    let file = File::open(path).map_err(|source| SourceError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let head = reader.fill_buf().map_err(|source| SourceError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            MultiGzDecoder::new(reader),
        )))
    } else {
        Ok(Box::new(reader))
    }
}

/// Reads a file line by line as bytes, counting lines (1-based) for error messages.
pub struct LineReader {
    reader: Box<dyn BufRead + Send>,
    path: PathBuf,
    line: u64,
    buf: Vec<u8>,
}

impl LineReader {
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        Ok(Self::new(open_maybe_gzip(path)?, path))
    }

    pub fn new(reader: Box<dyn BufRead + Send>, path: &Path) -> Self {
        Self {
            reader,
            path: path.to_path_buf(),
            line: 0,
            buf: Vec::with_capacity(4096),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of the line last returned (1-based).
    pub fn line_number(&self) -> u64 {
        self.line
    }

    /// The next line without its `\n` / `\r\n`, or `None` at the end of the file.
    pub fn next_line(&mut self) -> Result<Option<&[u8]>, SourceError> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| SourceError::Read {
                path: self.path.clone(),
                line: self.line,
                source,
            })?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        let mut end = self.buf.len();
        if self.buf[..end].ends_with(b"\n") {
            end -= 1;
        }
        if self.buf[..end].ends_with(b"\r") {
            end -= 1;
        }
        Ok(Some(&self.buf[..end]))
    }

    /// An error about the line last returned.
    pub fn error(&self, problem: impl Into<String>) -> SourceError {
        SourceError::Parse {
            path: self.path.clone(),
            line: self.line,
            problem: problem.into(),
        }
    }
}

/// Reads until `buf` is full or the stream ends; returns how many bytes were read (so a clean end
/// of file, 0, can be told from a truncated record).
pub(crate) fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn line_reader_handles_gzip_crlf_and_a_missing_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.txt");
        std::fs::write(&plain, b"one\r\ntwo\nthree").unwrap();
        let gz = dir.path().join("a.txt.gz");
        let mut enc =
            flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        enc.write_all(b"one\r\ntwo\nthree").unwrap();
        enc.finish().unwrap();
        for path in [&plain, &gz] {
            let mut r = LineReader::open(path).unwrap();
            let mut lines = Vec::new();
            while let Some(l) = r.next_line().unwrap() {
                lines.push(String::from_utf8(l.to_vec()).unwrap());
            }
            assert_eq!(lines, ["one", "two", "three"]);
            assert_eq!(r.line_number(), 3);
        }
    }

    #[test]
    fn truncated_gzip_is_a_read_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("t.json.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for i in 0..2000 {
            writeln!(enc, "line {i} with some text").unwrap();
        }
        let bytes = enc.finish().unwrap();
        std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
        let mut r = LineReader::open(&gz).unwrap();
        let err = loop {
            match r.next_line() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("a truncated gzip stream must not end cleanly"),
                Err(e) => break e,
            }
        };
        let text = err.to_string();
        assert!(
            text.contains("t.json.gz") && text.contains("truncated"),
            "{text}"
        );
    }
}
