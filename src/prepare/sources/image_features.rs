//! `image_features_<Cat>.b`: Caffe (AlexNet-like) FC7 image features of the Amazon-2014 data.
//! Repeated records of a 10-byte ASCII ASIN followed by 4096 little-endian `f32`s (16,394 bytes
//! per record, no header). A file whose length is not a multiple of the record size, or that ends
//! inside a record, is an error: it is truncated and must be fetched again.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::{read_full, SourceError};

pub const ASIN_BYTES: usize = 10;
pub const FEATURE_DIM: usize = 4096;
pub const RECORD_BYTES: usize = ASIN_BYTES + FEATURE_DIM * 4;

/// One record; borrowed from the reader's buffer until the next call.
#[derive(Debug)]
pub struct ImageRecord<'a> {
    /// 0-based record index in the file.
    pub index: u64,
    pub asin: &'a str,
    raw: &'a [u8],
}

impl ImageRecord<'_> {
    /// Decodes the 4096 little-endian floats into `out` (length [`FEATURE_DIM`]).
    pub fn decode_into(&self, out: &mut [f32]) {
        for (value, bytes) in out.iter_mut().zip(self.raw.chunks_exact(4)) {
            *value = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
    }

    pub fn vector(&self) -> Vec<f32> {
        let mut out = vec![0.0; FEATURE_DIM];
        self.decode_into(&mut out);
        out
    }
}

/// Streams the records of an image-features file; holds one record at a time.
pub struct ImageFeatureReader<R> {
    reader: R,
    path: PathBuf,
    next_index: u64,
    buf: Vec<u8>,
}

impl ImageFeatureReader<BufReader<File>> {
    /// Opens a file and checks up front that its length is a whole number of records.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let open_error = |source| SourceError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(open_error)?;
        let len = file.metadata().map_err(open_error)?.len();
        let record = RECORD_BYTES as u64;
        if len % record != 0 {
            return Err(SourceError::Invalid {
                path: path.to_path_buf(),
                problem: format!(
                    "{len} bytes is {} whole records of {RECORD_BYTES} bytes plus {} bytes: the file is truncated or not an image-features file; delete it and re-run `mmsr-bench download`",
                    len / record,
                    len % record
                ),
            });
        }
        Ok(Self::new(BufReader::with_capacity(1 << 20, file), path))
    }
}

impl<R: Read> ImageFeatureReader<R> {
    /// Wraps any reader; `path` names it in errors.
    pub fn new(reader: R, path: &Path) -> Self {
        Self {
            reader,
            path: path.to_path_buf(),
            next_index: 0,
            buf: vec![0; RECORD_BYTES],
        }
    }

    fn record_error(&self, index: u64, problem: String) -> SourceError {
        SourceError::Record {
            path: self.path.clone(),
            record: index,
            offset: index * RECORD_BYTES as u64,
            problem,
        }
    }

    /// The next record, or `None` after the last complete one.
    pub fn next_record(&mut self) -> Result<Option<ImageRecord<'_>>, SourceError> {
        let index = self.next_index;
        let n = match read_full(&mut self.reader, &mut self.buf) {
            Ok(n) => n,
            Err(e) => return Err(self.record_error(index, format!("read error: {e}"))),
        };
        if n == 0 {
            return Ok(None);
        }
        if n < RECORD_BYTES {
            return Err(self.record_error(
                index,
                format!("the file ends {n} bytes into this record of {RECORD_BYTES}: it is truncated; delete it and re-run `mmsr-bench download`"),
            ));
        }
        let asin_bytes = &self.buf[..ASIN_BYTES];
        if !asin_bytes.iter().all(u8::is_ascii_alphanumeric) {
            let shown = String::from_utf8_lossy(asin_bytes).into_owned();
            return Err(self.record_error(
                index,
                format!("{shown:?} is not a 10-character ASCII ASIN: the file is corrupt or not an image-features file"),
            ));
        }
        self.next_index += 1;
        // Checked just above: ASCII alphanumerics are valid UTF-8.
        let asin = std::str::from_utf8(asin_bytes).unwrap_or_default();
        Ok(Some(ImageRecord {
            index,
            asin,
            raw: &self.buf[ASIN_BYTES..],
        }))
    }

    /// Records read so far.
    pub fn records_read(&self) -> u64 {
        self.next_index
    }
}

/// Writes one record in the `.b` format (for tests and fixtures); `vector` is zero-padded or cut
/// to [`FEATURE_DIM`].
pub fn write_record(
    out: &mut impl std::io::Write,
    asin: &str,
    vector: &[f32],
) -> std::io::Result<()> {
    if asin.len() != ASIN_BYTES || !asin.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{asin:?} is not a 10-character ASCII ASIN"),
        ));
    }
    out.write_all(asin.as_bytes())?;
    for v in vector
        .iter()
        .chain(std::iter::repeat(&0.0))
        .take(FEATURE_DIM)
    {
        out.write_all(&v.to_le_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        for i in 0..n {
            let v: Vec<f32> = (0..FEATURE_DIM).map(|j| (i * 10 + j) as f32).collect();
            write_record(&mut bytes, &format!("B00000000{i}"), &v).unwrap();
        }
        bytes
    }

    #[test]
    fn reads_records_in_order() {
        let bytes = sample(3);
        let mut r = ImageFeatureReader::new(&bytes[..], Path::new("x.b"));
        let mut seen = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            let v = rec.vector();
            seen.push((rec.index, rec.asin.to_string(), v[0], v[4095]));
        }
        assert_eq!(
            seen,
            [
                (0, "B000000000".into(), 0.0, 4095.0),
                (1, "B000000001".into(), 10.0, 4105.0),
                (2, "B000000002".into(), 20.0, 4115.0)
            ]
        );
    }

    #[test]
    fn truncated_last_record_is_an_error() {
        let bytes = sample(2);
        let cut = &bytes[..bytes.len() - 5];
        let mut r = ImageFeatureReader::new(cut, Path::new("image_features_Beauty.b"));
        assert!(r.next_record().unwrap().is_some());
        let e = r.next_record().unwrap_err().to_string();
        assert_eq!(
            e,
            "image_features_Beauty.b: record 1 (byte offset 16394): the file ends 16389 bytes into this record of 16394: it is truncated; delete it and re-run `mmsr-bench download`"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.b");
        std::fs::write(&path, cut).unwrap();
        let e = ImageFeatureReader::open(&path).err().unwrap().to_string();
        assert!(
            e.contains("is 1 whole records of 16394 bytes plus 16389 bytes"),
            "{e}"
        );
    }

    #[test]
    fn garbage_asin_is_an_error() {
        let mut bytes = sample(1);
        bytes[3] = 0;
        let mut r = ImageFeatureReader::new(&bytes[..], Path::new("f.b"));
        let e = r.next_record().unwrap_err().to_string();
        assert!(
            e.contains("record 0 (byte offset 0)") && e.contains("not a 10-character ASCII ASIN"),
            "{e}"
        );
    }
}
