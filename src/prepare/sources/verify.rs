//! Verification of raw files: sha256 (streamed, with a progress bar), size, and structural checks
//! for files whose registry entry has neither (`.gz`: the whole gzip stream decodes with matching
//! CRCs; `.b`: a whole number of image-feature records).

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use indicatif::ProgressBar;
use sha2::{Digest, Sha256};

use super::image_features::RECORD_BYTES;

/// How a present file was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    Sha256,
    Size,
    /// Checked structurally only (no size or checksum known); says how.
    Structure(&'static str),
    /// Nothing known to check against.
    Unverified,
}

fn hash_reader(mut reader: impl Read, bar: &ProgressBar) -> std::io::Result<Sha256> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(hasher),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        bar.inc(n as u64);
    }
}

/// Hex sha256 of a whole file.
pub fn sha256_file(path: &Path, bar: &ProgressBar) -> std::io::Result<String> {
    let file = File::open(path)?;
    bar.set_length(file.metadata()?.len());
    bar.set_position(0);
    Ok(hex::encode(hash_reader(file, bar)?.finalize()))
}

pub(super) fn sha256_prefix(path: &Path, bar: &ProgressBar) -> std::io::Result<Sha256> {
    let file = File::open(path)?;
    bar.set_length(file.metadata()?.len());
    bar.set_position(0);
    hash_reader(file, bar)
}

pub(super) enum Verdict {
    Good {
        size: u64,
        sha256: Option<String>,
        verified: Verified,
    },
    Bad(String),
}

/// Checks a present file against what is known about it.
pub(super) fn verify_file(
    path: &Path,
    size: Option<u64>,
    sha256: Option<&str>,
    want_sha256: bool,
    bar: &ProgressBar,
) -> std::io::Result<Verdict> {
    let len = fs::metadata(path)?.len();
    if let Some(expected) = size.filter(|&s| s != len) {
        return Ok(Verdict::Bad(format!(
            "{len} bytes, expected {expected} (truncated or a different file)"
        )));
    }
    let actual = if sha256.is_some() || want_sha256 {
        Some(sha256_file(path, bar)?)
    } else {
        None
    };
    if let (Some(expected), Some(actual)) = (sha256, &actual) {
        if expected != actual {
            return Ok(Verdict::Bad(format!(
                "sha256 {actual}, expected {expected} (corrupt or a different file)"
            )));
        }
    }
    let verified = if sha256.is_some() {
        Verified::Sha256
    } else if size.is_some() {
        Verified::Size
    } else {
        match check_structure(path, len)? {
            Ok(Some(how)) => Verified::Structure(how),
            Ok(None) => Verified::Unverified,
            Err(reason) => return Ok(Verdict::Bad(reason)),
        }
    };
    Ok(Verdict::Good {
        size: len,
        sha256: actual,
        verified,
    })
}

/// Format checks for files with no known size or checksum: `Ok(Ok(Some(how)))` when a check
/// passed, `Ok(Ok(None))` when none applies, `Ok(Err(reason))` when the file is damaged.
fn check_structure(path: &Path, len: u64) -> std::io::Result<Result<Option<&'static str>, String>> {
    let name = path.to_string_lossy();
    if name.ends_with(".b") {
        let record = RECORD_BYTES as u64;
        return Ok(if len > 0 && len % record == 0 {
            Ok(Some("whole number of image-feature records"))
        } else {
            Err(format!(
                "{len} bytes is not a whole number of {record}-byte records (truncated)"
            ))
        });
    }
    if name.ends_with(".gz") {
        let file = std::io::BufReader::new(File::open(path)?);
        let mut decoder = flate2::bufread::MultiGzDecoder::new(file);
        return Ok(match std::io::copy(&mut decoder, &mut std::io::sink()) {
            Ok(n) if n > 0 => Ok(Some("complete gzip stream (CRC checked)")),
            Ok(_) => Err("empty gzip stream".to_string()),
            Err(e) => Err(format!(
                "not a complete gzip stream ({e}): truncated or corrupt"
            )),
        });
    }
    Ok(Ok(None))
}
