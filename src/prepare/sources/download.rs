//! Fetching raw files: streaming to `<dest>.part`, resuming with HTTP `Range`, bounded retries with
//! exponential backoff, size and sha256 checks, then an atomic rename to `<dest>`. A file already
//! at `<dest>` (fetched earlier or placed by hand) is verified and accepted without network; one
//! that fails verification is moved to `<dest>.bad` and fetched again, never used.
//!
//! Verification, strongest first: the registry's sha256; else its size; else a structural check
//! (`.gz`: the whole gzip stream decodes and its CRCs match; `.b`: a whole number of records).
//! Downloads are always hashed while they stream, so `--record-checksums` costs nothing extra.
//!
//! Retries: network errors, timeouts, HTTP 408/429/5xx and connections that close early are
//! retried after `initial_backoff · 2^(n−1)` (capped at `max_backoff`), at most `retries` times in
//! a row without progress; an attempt that wrote new bytes resets the count. Other HTTP errors
//! fail at once. A server that ignores `Range` (answers 200) restarts the file from byte 0.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::blocking::{Client, Response};
use reqwest::header::{ACCEPT_ENCODING, CONTENT_RANGE, RANGE};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use thiserror::Error;

pub use super::verify::{sha256_file, Verified};
use super::verify::{sha256_prefix, verify_file, Verdict};

#[derive(Debug, Error)]
pub enum DownloadError {
    #[error("{file}: sha256 mismatch: expected {expected}, got {actual} (from {url}); the bad copy was deleted. Run the download again or use another --mirror; if the published file changed on purpose, update its sha256 in the registry")]
    Checksum {
        file: PathBuf,
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{file}: size mismatch: expected {expected} bytes, got {actual} (from {url}); the bad copy was deleted. Run the download again or use another --mirror; if the published file changed on purpose, update its size in the registry")]
    Size {
        file: PathBuf,
        url: String,
        expected: u64,
        actual: u64,
    },
    #[error("{url}: HTTP {status} while fetching {file}; check the URL, or use --mirror")]
    Http {
        file: PathBuf,
        url: String,
        status: u16,
    },
    #[error("{url}: gave up fetching {file} after {attempts} failed attempts in a row ({last}); {kept} bytes are kept in {file}.part and the next run resumes from there")]
    Network {
        file: PathBuf,
        url: String,
        attempts: u32,
        last: String,
        kept: u64,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: cannot fetch {file}: {problem}")]
    Request {
        file: PathBuf,
        url: String,
        problem: String,
    },
}

/// How hard to try and what to show.
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// Failed attempts in a row (without new bytes) before giving up.
    pub retries: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub connect_timeout: Duration,
    /// Longest wait for response headers or for the next bytes of the body.
    pub read_timeout: Duration,
    /// Progress bar on stderr (drawn only when stderr is a terminal).
    pub progress: bool,
    /// Retry and re-fetch notices on stderr.
    pub verbose: bool,
    /// Honour `HTTP_PROXY` and friends.
    pub system_proxy: bool,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            retries: 6,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
            progress: true,
            verbose: true,
            system_proxy: true,
        }
    }
}

/// One file to make present.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub url: &'a str,
    pub dest: &'a Path,
    pub size: Option<u64>,
    pub sha256: Option<&'a str>,
    /// Hash a file already present even when no sha256 is known (for `--record-checksums`).
    pub want_sha256: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Already there and verified; no network used.
    Present,
    /// Fetched now; `resumed_from` > 0 when an earlier partial download was continued.
    Fetched { resumed_from: u64 },
    /// A present file failed verification (reason), was moved to `<dest>.bad` and fetched again.
    Replaced { reason: String, resumed_from: u64 },
}

#[derive(Debug, Clone)]
pub struct FetchReport {
    pub path: PathBuf,
    pub size: u64,
    /// Known for every fetched file, and for present files when hashed.
    pub sha256: Option<String>,
    pub action: Action,
    pub verified: Verified,
}

pub struct Downloader {
    client: Client,
    options: DownloadOptions,
}

/// Why one attempt stopped.
enum Stop {
    Retry { reason: String, progressed: bool },
    Fail(DownloadError),
}

/// The partial download: `len` bytes in `<dest>.part`; `hash` covers exactly those bytes when
/// known.
struct Part {
    path: PathBuf,
    len: u64,
    hash: Option<Sha256>,
    /// Whether more than one response contributed to it (so a checksum mismatch may come from a
    /// stale part and deserves one clean retry).
    spliced: bool,
}

impl Downloader {
    pub fn new(options: DownloadOptions) -> Result<Self, DownloadError> {
        // rustls needs a process-wide crypto provider; an Err only says one is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = Client::builder()
            .user_agent(concat!("mmsr-bench/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(options.connect_timeout)
            .timeout(options.read_timeout);
        if !options.system_proxy {
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|e| DownloadError::Request {
            file: PathBuf::new(),
            url: String::new(),
            problem: format!("cannot start the HTTP client: {e}"),
        })?;
        Ok(Self { client, options })
    }

    pub fn options(&self) -> &DownloadOptions {
        &self.options
    }

    fn note(&self, bar: &ProgressBar, message: String) {
        if self.options.verbose {
            bar.suspend(|| eprintln!("{message}"));
        }
    }

    fn bar(&self, label: &str) -> ProgressBar {
        if !self.options.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        bar
    }

    /// Checks the file at `target.dest` without network: `Ok(None)` when there is none,
    /// `Ok(Some(Ok(report)))` when it verifies, `Ok(Some(Err(reason)))` when it does not.
    pub fn check_present(
        &self,
        target: &Target<'_>,
    ) -> Result<Option<Result<FetchReport, String>>, DownloadError> {
        let dest = target.dest;
        if !dest.exists() {
            return Ok(None);
        }
        let bar = self.bar(&format!("verifying {}", file_label(dest)));
        let verdict = verify_file(dest, target.size, target.sha256, target.want_sha256, &bar)
            .map_err(io_error(dest))?;
        bar.finish_and_clear();
        Ok(Some(match verdict {
            Verdict::Good {
                size,
                sha256,
                verified,
            } => Ok(FetchReport {
                path: dest.to_path_buf(),
                size,
                sha256,
                action: Action::Present,
                verified,
            }),
            Verdict::Bad(reason) => Err(reason),
        }))
    }

    /// Makes `target.dest` present and verified: accepts a good existing file, else downloads.
    pub fn fetch(&self, target: &Target<'_>) -> Result<FetchReport, DownloadError> {
        let dest = target.dest;
        let label = file_label(dest);
        let mut replaced = None;
        match self.check_present(target)? {
            None => {}
            Some(Ok(report)) => return Ok(report),
            Some(Err(reason)) => {
                let aside = with_suffix(dest, ".bad");
                fs::rename(dest, &aside).map_err(io_error(dest))?;
                self.note(
                    &ProgressBar::hidden(),
                    format!(
                        "{}: {reason}; moved to {} and fetching it again",
                        dest.display(),
                        aside.display()
                    ),
                );
                replaced = Some(reason);
            }
        }
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        let part_path = with_suffix(dest, ".part");
        let len = fs::metadata(&part_path).map(|m| m.len()).unwrap_or(0);
        let mut part = Part {
            path: part_path,
            len,
            hash: (len == 0).then(Sha256::new),
            spliced: false,
        };
        let resumed_from = part.len;
        let bar = self.bar(&label);
        let (size, sha256) = self.download(target, &mut part, &bar)?;
        bar.finish_and_clear();
        crate::faults::point(|| format!("download: {label} complete, not yet renamed"));
        fs::rename(&part.path, dest).map_err(io_error(dest))?;
        let verified = match (target.sha256, target.size) {
            (Some(_), _) => Verified::Sha256,
            (None, Some(_)) => Verified::Size,
            (None, None) => Verified::Unverified,
        };
        Ok(FetchReport {
            path: dest.to_path_buf(),
            size,
            sha256: Some(sha256),
            action: match replaced {
                Some(reason) => Action::Replaced {
                    reason,
                    resumed_from,
                },
                None => Action::Fetched { resumed_from },
            },
            verified,
        })
    }

    /// Retries attempts until `<dest>.part` is complete and verified; returns its size and sha256.
    fn download(
        &self,
        target: &Target<'_>,
        part: &mut Part,
        bar: &ProgressBar,
    ) -> Result<(u64, String), DownloadError> {
        let mut failures = 0u32;
        let mut clean_retry_used = false;
        loop {
            match self.attempt(target, part, bar) {
                Ok(()) => {}
                Err(Stop::Fail(e)) => return Err(e),
                Err(Stop::Retry { reason, progressed }) => {
                    failures = if progressed { 1 } else { failures + 1 };
                    if failures > self.options.retries {
                        return Err(DownloadError::Network {
                            file: target.dest.to_path_buf(),
                            url: target.url.to_string(),
                            attempts: failures,
                            last: reason,
                            kept: part.len,
                        });
                    }
                    let factor = 2u32.saturating_pow(failures - 1);
                    let wait = self
                        .options
                        .initial_backoff
                        .saturating_mul(factor)
                        .min(self.options.max_backoff);
                    self.note(
                        bar,
                        format!(
                            "{}: {reason}; retry {failures}/{} in {:.1?}",
                            target.url, self.options.retries, wait
                        ),
                    );
                    std::thread::sleep(wait);
                    continue;
                }
            }
            // Complete: check it.
            let sha256 = match part.hash.take() {
                Some(h) => hex::encode(h.finalize()),
                None => sha256_file(&part.path, bar).map_err(io_error(&part.path))?,
            };
            let size_bad = target.size.filter(|&s| s != part.len);
            let sha_bad = target.sha256.filter(|&s| s != sha256);
            if size_bad.is_none() && sha_bad.is_none() {
                File::open(&part.path)
                    .and_then(|f| f.sync_all())
                    .map_err(io_error(&part.path))?;
                return Ok((part.len, sha256));
            }
            let (actual_len, spliced) = (part.len, part.spliced);
            fs::remove_file(&part.path).map_err(io_error(&part.path))?;
            part.reset();
            if spliced && !clean_retry_used {
                clean_retry_used = true;
                self.note(
                    bar,
                    format!(
                        "{}: the resumed download does not verify; fetching it again from the start",
                        target.dest.display()
                    ),
                );
                continue;
            }
            let (file, url) = (target.dest.to_path_buf(), target.url.to_string());
            return Err(match (size_bad, sha_bad) {
                (Some(expected), _) => DownloadError::Size {
                    file,
                    url,
                    expected,
                    actual: actual_len,
                },
                (None, expected) => DownloadError::Checksum {
                    file,
                    url,
                    expected: expected.unwrap_or_default().to_string(),
                    actual: sha256,
                },
            });
        }
    }

    /// One request: appends to the part file until the body ends or fails.
    fn attempt(&self, target: &Target<'_>, part: &mut Part, bar: &ProgressBar) -> Result<(), Stop> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Stop::Fail(DownloadError::Io { path, source })
        };
        if let Some(total) = target.size {
            if part.len == total {
                return Ok(());
            }
            if part.len > total {
                part.truncate().map_err(io(&part.path))?;
            }
        }
        let mut request = self
            .client
            .get(target.url)
            .header(ACCEPT_ENCODING, "identity");
        if part.len > 0 {
            request = request.header(RANGE, format!("bytes={}-", part.len));
        }
        let response = request.send().map_err(|e| self.request_error(target, e))?;
        let status = response.status();
        let total = match status {
            StatusCode::PARTIAL_CONTENT => match content_range(&response) {
                Some((start, total)) if start == part.len => total,
                _ => {
                    part.truncate().map_err(io(&part.path))?;
                    return Err(Stop::Retry {
                        reason: "the server resumed at another offset than asked".into(),
                        progressed: false,
                    });
                }
            },
            StatusCode::OK => {
                if part.len > 0 {
                    // The server ignored Range: start over.
                    part.truncate().map_err(io(&part.path))?;
                }
                response.content_length()
            }
            StatusCode::RANGE_NOT_SATISFIABLE if part.len > 0 => {
                if content_range(&response).and_then(|(_, total)| total) == Some(part.len) {
                    return Ok(()); // the part was already complete
                }
                part.truncate().map_err(io(&part.path))?;
                return Err(Stop::Retry {
                    reason: "HTTP 416: the partial download is longer than the file".into(),
                    progressed: false,
                });
            }
            s if s == StatusCode::REQUEST_TIMEOUT
                || s == StatusCode::TOO_MANY_REQUESTS
                || s.is_server_error() =>
            {
                return Err(Stop::Retry {
                    reason: format!("HTTP {}", s.as_u16()),
                    progressed: false,
                });
            }
            s => {
                return Err(Stop::Fail(DownloadError::Http {
                    file: target.dest.to_path_buf(),
                    url: target.url.to_string(),
                    status: s.as_u16(),
                }))
            }
        };
        if let (Some(expected), Some(total)) = (target.size, total) {
            if expected != total {
                return Err(Stop::Fail(DownloadError::Size {
                    file: target.dest.to_path_buf(),
                    url: target.url.to_string(),
                    expected,
                    actual: total,
                }));
            }
        }
        if part.len > 0 && part.hash.is_none() {
            let hash = sha256_prefix(&part.path, bar).map_err(io(&part.path))?;
            part.hash = Some(hash);
        }
        if part.len > 0 {
            part.spliced = true;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&part.path)
            .map_err(io(&part.path))?;
        bar.set_length(total.or(target.size).unwrap_or(0));
        bar.set_position(part.len);
        bar.reset_eta();
        let before = part.len;
        let result = stream_body(response, &mut file, part, bar);
        file.flush().map_err(io(&part.path))?;
        let progressed = part.len > before;
        match result {
            Err(StreamError::Read(e)) => Err(Stop::Retry {
                reason: format!("connection lost after {} bytes: {e}", part.len),
                progressed,
            }),
            Err(StreamError::Write(e)) => Err(io(&part.path)(e)),
            Ok(()) => match total {
                Some(total) if part.len < total => Err(Stop::Retry {
                    reason: format!("connection closed after {} of {total} bytes", part.len),
                    progressed,
                }),
                Some(total) if part.len > total => {
                    part.truncate().map_err(io(&part.path))?;
                    Err(Stop::Retry {
                        reason: format!("the server sent more than the announced {total} bytes"),
                        progressed: false,
                    })
                }
                _ => Ok(()),
            },
        }
    }

    fn request_error(&self, target: &Target<'_>, e: reqwest::Error) -> Stop {
        if e.is_builder() {
            return Stop::Fail(DownloadError::Request {
                file: target.dest.to_path_buf(),
                url: target.url.to_string(),
                problem: e.to_string(),
            });
        }
        Stop::Retry {
            reason: error_chain(&e),
            progressed: false,
        }
    }
}

impl Part {
    fn truncate(&mut self) -> std::io::Result<()> {
        File::create(&self.path)?;
        self.reset();
        Ok(())
    }

    fn reset(&mut self) {
        self.len = 0;
        self.hash = Some(Sha256::new());
        self.spliced = false;
    }
}

enum StreamError {
    Read(std::io::Error),
    Write(std::io::Error),
}

fn stream_body(
    mut response: Response,
    file: &mut File,
    part: &mut Part,
    bar: &ProgressBar,
) -> Result<(), StreamError> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match response.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StreamError::Read(e)),
        };
        file.write_all(&buf[..n]).map_err(StreamError::Write)?;
        crate::faults::point(|| format!("download: {} bytes written", n));
        if let Some(h) = part.hash.as_mut() {
            h.update(&buf[..n]);
        }
        part.len += n as u64;
        bar.inc(n as u64);
    }
}

/// `Content-Range: bytes START-END/TOTAL` (or `bytes */TOTAL`) → (START, TOTAL if known).
fn content_range(response: &Response) -> Option<(u64, Option<u64>)> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let rest = value.trim().strip_prefix("bytes")?.trim();
    let (range, total) = rest.split_once('/')?;
    let total = total.trim().parse().ok();
    let start = match range.trim() {
        "*" => 0,
        r => r.split_once('-')?.0.trim().parse().ok()?,
    };
    Some((start, total))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text = format!("{text}: {s_text}");
        }
        source = s.source();
    }
    text
}

fn file_label(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DownloadError + '_ {
    move |source| DownloadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}
