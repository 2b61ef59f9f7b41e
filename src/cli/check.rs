//! `mmsr-bench check SUBMISSION`: audit a results directory. Exit 0 clean, 1 findings
//! (regression or tampering), 2 unusable input.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::check::rerun::RerunDraw;
use crate::check::{check, CheckOptions};
use crate::dataset::official::{BundleOrder, OfficialConfig};
use crate::dataset::registry;
use crate::dataset::split::SplitConfig;
use crate::dataset::store;
use crate::dataset::subsample::UserSample;
use crate::dataset::synthetic::{generate, SyntheticConfig};
use crate::record::result::file_name_component;

use super::Cli;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The submitted results directory (runs/..., summary.json).
    pub submission: PathBuf,
    /// A reference results directory: a mean outside its mean ± max(3·std/√n, δ) is a finding.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// The band floor δ for --reference, in metric units (0.005 = 0.5 points ×100).
    #[arg(long, default_value_t = 0.005)]
    pub delta: f64,
    /// Re-run this many cells (drawn with --rerun-seed) and require the same numbers: identical
    /// on the CPU, within 1e-4 on CUDA.
    #[arg(long, default_value_t = 0)]
    pub rerun: usize,
    #[arg(long, default_value_t = crate::DEFAULT_SEED)]
    pub rerun_seed: u64,
    /// Draw the re-run cells only among runs that took at most this many minutes when they were
    /// made (their recorded total time), so that a folder of long runs can be re-verified in a
    /// short window; the report says how many cells this left out.
    #[arg(long, requires = "rerun", value_parser = positive_minutes)]
    pub rerun_max_minutes: Option<f64>,
    /// Runs made from a dirty working tree are findings (by default a warning).
    #[arg(long)]
    pub strict: bool,
    /// The authors' processed folder that the submission's runs on dataset `official` used
    /// (`run --official-dir`): `--rerun` re-imports it, and its content hash must be the runs'.
    #[arg(long)]
    pub official_dir: Option<PathBuf>,
    /// Which modality the official bundle lists [1] and [2] hold (as `run --bundle-order`).
    #[arg(
        long,
        value_enum,
        default_value = "text-image",
        requires = "official_dir"
    )]
    pub bundle_order: BundleOrder,
}

/// A time limit in minutes: a finite number above zero.
fn positive_minutes(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(m) if m.is_finite() && m > 0.0 => Ok(m),
        _ => Err(format!(
            "{text:?} is not a number of minutes above zero (e.g. 20 or 0.5)"
        )),
    }
}

/// Counts of the datasets available here, by content hash: the embedded `synthetic` at its
/// defaults, every prepared dataset under the data directory, and the reduced views
/// (`NAME@NxK`) the submission ran on whose base dataset is prepared here.
fn known_counts(
    cli: &Cli,
    submission: &std::path::Path,
) -> Result<BTreeMap<String, crate::dataset::DatasetCounts>> {
    let mut known = BTreeMap::new();
    let synthetic = generate(&SyntheticConfig::default(), &SplitConfig::default());
    known.insert(store::content_hash(&synthetic)?, synthetic.counts());
    for name in registry::known_names(&cli.data_dir) {
        if let Ok(manifest) = store::read_manifest(&registry::prepared_dir(&cli.data_dir, &name)) {
            known.insert(manifest.content_hash, manifest.counts);
        }
    }
    // Folders only, never a symbolic link (see `check`), and only names safe as file names:
    // a view's base name picks a folder of the data directory.
    let runs = submission.join("runs");
    let views = std::fs::read_dir(&runs)
        .into_iter()
        .filter(|_| !runs.is_symlink())
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            e.file_type().ok()?.is_dir().then_some(())?;
            e.file_name().into_string().ok()
        })
        .filter(|name| file_name_component(name).is_ok())
        .filter(|name| UserSample::parse(name).is_some_and(|s| s.is_ok()));
    for name in views {
        if let Ok(view) = registry::load(&name, &cli.data_dir, &SyntheticConfig::default(), None) {
            known.insert(store::content_hash(&view)?, view.counts());
        }
    }
    Ok(known)
}

pub fn execute(cli: &Cli, args: &CheckArgs) -> Result<ExitCode> {
    let options = CheckOptions {
        reference: args.reference.clone(),
        delta: args.delta,
        rerun: RerunDraw {
            count: args.rerun,
            seed: args.rerun_seed,
            max_seconds: args.rerun_max_minutes.map(|m| m * 60.0),
        },
        data_dir: cli.data_dir.clone(),
        known_counts: known_counts(cli, &args.submission)?,
        strict: args.strict,
        official: args
            .official_dir
            .as_ref()
            .map(|dir| OfficialConfig::from_command_line(dir.clone(), args.bundle_order)),
    };
    let report = check(&args.submission, &options)?;
    for finding in &report.findings {
        println!("FINDING {finding}");
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    if report.findings.is_empty() {
        println!(
            "{}: {} result files checked, no findings",
            args.submission.display(),
            report.files
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{}: {} result files checked, {} finding(s)",
            args.submission.display(),
            report.files,
            report.findings.len()
        );
        Ok(ExitCode::from(1))
    }
}
