//! `mmsr-bench download <name|all>`: fetch and verify the raw Amazon-2014 files of a dataset into
//! `<data-dir>/raw/<name>/`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use indicatif::HumanBytes;

use crate::prepare::sources::download::{
    Action, DownloadOptions, Downloader, FetchReport, Target, Verified,
};
use crate::prepare::sources::registry::{self, DatasetSource, FileRole, Origin};

use super::Cli;

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// beauty, clothing, sport, toy, kitchen, phone, or all.
    pub name: String,
    /// Fetch from a mirror: URL replaces the registry's `url_root` prefix of every file URL
    /// (e.g. http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/ratings_Beauty.csv
    /// becomes URL/categoryFiles/ratings_Beauty.csv).
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// Files to fetch, by role: ratings, reviews, meta, image_features, or all (comma-separated).
    /// Default: every file not marked optional (ratings, meta, image_features).
    #[arg(long, value_delimiter = ',', value_name = "ROLES")]
    pub files: Vec<String>,
    /// Write the size and sha256 of each verified file that the registry has none for into the
    /// registry file (needs a registry directory, see --registry).
    #[arg(long)]
    pub record_checksums: bool,
    /// Directory holding <name>.yaml. Default: ./datasets when it has the file, else the copy
    /// built into the binary.
    #[arg(long, value_name = "DIR")]
    pub registry: Option<PathBuf>,
    /// Only verify the files already in the data directory; never use the network.
    #[arg(long)]
    pub verify_only: bool,
    /// Failed attempts in a row (without progress) before giving up on a file.
    #[arg(long, default_value_t = 6)]
    pub retries: u32,
}

fn roles(args: &DownloadArgs, source: &DatasetSource) -> Result<Vec<FileRole>> {
    if args.files.is_empty() {
        return Ok(source
            .files
            .iter()
            .filter(|f| !f.optional)
            .map(|f| f.role)
            .collect());
    }
    let mut roles = Vec::new();
    for text in &args.files {
        let text = text.trim();
        if text == "all" {
            return Ok(source.files.iter().map(|f| f.role).collect());
        }
        match FileRole::parse(text) {
            Some(role) => roles.push(role),
            None => bail!(
                "unknown file role {text:?} in --files; valid: ratings, reviews, meta, image_features, all"
            ),
        }
    }
    Ok(roles)
}

fn is_loopback(url: &str) -> bool {
    let host = url.split("://").nth(1).unwrap_or(url);
    let host = host.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split(']')
            .next()
            .map(|h| h.trim_start_matches('['))
            .unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn registry_dir(args: &DownloadArgs, name: &str) -> Option<PathBuf> {
    args.registry.clone().or_else(|| {
        let default = PathBuf::from("datasets");
        default
            .join(format!("{name}.yaml"))
            .is_file()
            .then_some(default)
    })
}

fn describe(report: &FetchReport, known_sha: bool) -> String {
    let verified = match &report.verified {
        Verified::Sha256 => "sha256 verified".to_string(),
        Verified::Size => "size verified (no sha256 in the registry)".to_string(),
        Verified::Structure(how) => format!("{how} (no size or sha256 in the registry)"),
        Verified::Unverified => "not verified (no size or sha256 in the registry)".to_string(),
    };
    let action = match &report.action {
        Action::Present => "present".to_string(),
        Action::Fetched { resumed_from: 0 } => "downloaded".to_string(),
        Action::Fetched { resumed_from } => {
            format!("downloaded (resumed at {})", HumanBytes(*resumed_from))
        }
        Action::Replaced { reason, .. } => format!("re-downloaded (the old copy had {reason})"),
    };
    let sha = match (&report.sha256, known_sha) {
        (Some(sum), false) => format!(", sha256 {sum}"),
        _ => String::new(),
    };
    format!("{action}, {verified}{sha}")
}

pub fn execute(cli: &Cli, args: &DownloadArgs) -> Result<ExitCode> {
    let names = registry::resolve_names(&args.name)?;
    let downloader = Downloader::new(DownloadOptions {
        retries: args.retries,
        progress: !cli.quiet,
        verbose: !cli.quiet,
        // A mirror on this machine is never reached through a proxy.
        system_proxy: !args.mirror.as_deref().is_some_and(is_loopback),
        ..DownloadOptions::default()
    })?;
    let mut failures: Vec<String> = Vec::new();
    let mut unrecorded = false;
    for name in names {
        let dir = registry_dir(args, name);
        let (source, origin) = registry::load(name, dir.as_deref())?;
        if args.record_checksums && matches!(origin, Origin::Builtin(_)) {
            bail!("--record-checksums writes into the registry file, but {name} comes from the copy built into the binary; run from the repository root (./datasets) or pass --registry DIR");
        }
        for role in roles(args, &source)? {
            let Some(file) = source.file(role) else {
                failures.push(format!(
                    "{name}: the registry ({origin}) has no {} file",
                    role.name()
                ));
                continue;
            };
            let dest = source.raw_dir(&cli.data_dir).join(&file.file);
            let url = source.url(file, args.mirror.as_deref());
            let target = Target {
                url: &url,
                dest: &dest,
                size: file.size,
                sha256: file.sha256.as_deref(),
                want_sha256: args.record_checksums,
            };
            let result = if args.verify_only {
                match downloader.check_present(&target)? {
                    None => Err(format!(
                        "{}: missing (run without --verify-only to fetch it)",
                        dest.display()
                    )),
                    Some(Err(reason)) => Err(format!(
                        "{}: {reason}; run without --verify-only to fetch it again",
                        dest.display()
                    )),
                    Some(Ok(report)) => Ok(report),
                }
            } else {
                if !cli.quiet {
                    eprintln!("{name}: {} <- {url}", dest.display());
                }
                downloader.fetch(&target).map_err(|e| e.to_string())
            };
            match result {
                Ok(report) => {
                    println!(
                        "{}  {}  {}",
                        report.path.display(),
                        HumanBytes(report.size),
                        describe(&report, file.sha256.is_some())
                    );
                    if let (Some(sum), None) = (&report.sha256, &file.sha256) {
                        if let (true, Origin::File(path)) = (args.record_checksums, &origin) {
                            if registry::record_checksum(path, name, &file.file, report.size, sum)?
                            {
                                println!("  recorded size and sha256 in {}", path.display());
                            }
                        } else {
                            unrecorded = true;
                        }
                    }
                }
                Err(message) => {
                    eprintln!("error: {message}");
                    failures.push(message);
                }
            }
        }
    }
    if unrecorded && !cli.quiet {
        eprintln!("note: files without a sha256 in the registry were checked by size or format only; `--record-checksums` writes their checksums into datasets/<name>.yaml");
    }
    if !failures.is_empty() {
        bail!(
            "{} file(s) failed:\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
