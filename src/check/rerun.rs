//! Re-running cells of a submission: a seeded draw of N result files, each run again from its
//! own stored config on this machine, with the libtorch thread count it recorded. On the CPU the
//! numbers must be identical; on CUDA, which is not bit-exact (atomics), within
//! `CUDA_TOLERANCE`. A cell that cannot be reproduced here (other hardware kind, another model
//! version, data not available) is skipped with a note. A draw may be limited to the cells whose
//! recorded run took at most a given time, so that a folder of hour-long runs can still be
//! re-verified in a short window; the note says how many cells that left out.

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{abbreviate, Findings};
use crate::config::{ExperimentConfig, ModelSpec};
use crate::dataset::missing::MissingModalitySweep;
use crate::dataset::official::OfficialConfig;
use crate::dataset::registry::OFFICIAL;
use crate::device::{self, DeviceChoice};
use crate::eval::MetricSet;
use crate::experiment::{expand, run_one, DatasetCache, Workspace};
use crate::model;
use crate::record::result::RunResult;

/// Largest metric difference accepted between two CUDA runs of one cell.
pub const CUDA_TOLERANCE: f64 = 1e-4;

fn max_difference(a: &MetricSet, b: &MetricSet) -> f64 {
    if a.at.len() != b.at.len() || a.num_samples != b.num_samples {
        return f64::INFINITY;
    }
    a.at.iter()
        .zip(&b.at)
        .map(|(x, y)| {
            if x.k != y.k {
                return f64::INFINITY;
            }
            [(x.hr - y.hr), (x.ndcg - y.ndcg), (x.mrr - y.mrr)]
                .iter()
                .fold(0f64, |m, d| m.max(d.abs()))
        })
        .fold(0f64, f64::max)
}

/// The experiment that reproduces one stored run: its model and parameters, dataset, seed,
/// device and settings (the `synthetic` generator at its defaults; the content hash check
/// catches any other data).
pub fn experiment_of(r: &RunResult) -> ExperimentConfig {
    ExperimentConfig {
        models: vec![ModelSpec {
            name: r.config.model.clone(),
            params: r
                .config
                .model_params
                .as_object()
                .cloned()
                .unwrap_or_default(),
        }],
        datasets: vec![r.config.dataset.clone()],
        seeds: vec![r.config.seed],
        device: Some(r.config.device.clone()),
        train: r.config.train.clone(),
        eval: r.config.eval.clone(),
        missing_modality: r.config.missing.map(MissingModalitySweep::single),
        ..ExperimentConfig::default()
    }
}

/// Why a stored run cannot be reproduced here, if it cannot.
fn obstacle(
    r: &RunResult,
    experiment: &ExperimentConfig,
    workspace: &Workspace,
    cache: &mut DatasetCache,
) -> Option<String> {
    if let Err(e) = experiment.validate() {
        return Some(format!(
            "its settings are invalid: {}",
            abbreviate(&e.to_string())
        ));
    }
    let version = match model::resolve(&experiment.models[0]) {
        Ok(m) => m.version,
        Err(e) => {
            return Some(format!(
                "its model does not resolve here: {}",
                abbreviate(&e.to_string())
            ))
        }
    };
    if version != r.config.model_version {
        return Some(format!(
            "it was computed by model version {}, this build has {version}",
            r.config.model_version
        ));
    }
    let device = match r.config.device.parse::<DeviceChoice>().map(|d| d.resolve()) {
        Ok(Ok(d)) => d,
        _ => {
            return Some(format!(
                "device {} is not available here",
                abbreviate(&r.config.device)
            ))
        }
    };
    let kind = device::kind(device);
    if kind != r.config.device_kind {
        return Some(format!(
            "it ran on {}, this machine is {kind:?}",
            abbreviate(&format!("{:?}", r.config.device_kind))
        ));
    }
    match cache.content_hash(&r.config.dataset, workspace, experiment) {
        Ok(hash) if hash == r.dataset.content_hash => None,
        Ok(hash) => Some(format!(
            "dataset {} here has content hash {hash}, the run used {}",
            r.config.dataset,
            abbreviate(&r.dataset.content_hash)
        )),
        Err(e) => Some(format!(
            "dataset {} is not available here: {e:#}",
            r.config.dataset
        )),
    }
}

/// Which cells `check --rerun` re-runs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RerunDraw {
    /// How many cells.
    pub count: usize,
    /// Seeds the draw.
    pub seed: u64,
    /// Only cells whose recorded `timings.total_seconds` is at most this (None: every cell).
    pub max_seconds: Option<f64>,
}

/// The indices of the cells a draw may pick, in `runs`' order.
fn eligible(runs: &[(PathBuf, RunResult)], max_seconds: Option<f64>) -> Vec<usize> {
    (0..runs.len())
        .filter(|&i| max_seconds.is_none_or(|limit| runs[i].1.timings.total_seconds <= limit))
        .collect()
}

/// Re-runs the cells `draw` picks and compares their numbers.
pub fn rerun(
    runs: &[(PathBuf, RunResult)],
    draw: RerunDraw,
    data_dir: &Path,
    official: Option<&OfficialConfig>,
    findings: &mut Findings,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let RerunDraw {
        count,
        seed,
        max_seconds,
    } = draw;
    let mut order = eligible(runs, max_seconds);
    if let Some(limit) = max_seconds {
        notes.push(format!(
            "re-run draw limited to the {} of {} cells whose recorded run took at most {:.0} s",
            order.len(),
            runs.len(),
            limit
        ));
    }
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let scratch = tempfile::tempdir()?;
    let workspace = Workspace {
        data_dir: data_dir.to_path_buf(),
        results_dir: scratch.path().to_path_buf(),
        verbose: false,
        force: true,
    };
    let mut cache = DatasetCache::default();
    let mut done = 0;
    // Down the shuffled list until `count` cells have been re-run: a cell this machine cannot
    // reproduce (another hardware kind, data not here) is passed over with a note, not counted.
    for &i in &order {
        if done == count {
            break;
        }
        let (path, stored) = &runs[i];
        let mut experiment = experiment_of(stored);
        if stored.config.dataset == OFFICIAL {
            // Re-imported from the folder given; its content hash must be the run's.
            experiment.official = official.cloned();
        }
        if let Some(reason) = obstacle(stored, &experiment, &workspace, &mut cache) {
            notes.push(format!("not re-run: {}: {reason}", path.display()));
            continue;
        }
        let request = expand(
            &experiment,
            experiment.device.as_deref().unwrap_or("cpu").parse()?,
        )?
        .remove(0);
        // Some kernels (attention, GRU reductions) split their sums by thread, so the numbers
        // depend on libtorch's thread count: re-run with the one recorded.
        let threads = tch::get_num_threads();
        let recorded = stored
            .config
            .cpu_threads
            .unwrap_or(stored.environment.torch_threads);
        if recorded >= 1 {
            tch::set_num_threads(recorded);
        }
        let fresh = run_one(&request, &experiment, &workspace, &mut cache);
        tch::set_num_threads(threads);
        let fresh = fresh?.result().clone();
        done += 1;
        let tolerance = if stored.config.device.starts_with("cuda") {
            CUDA_TOLERANCE
        } else {
            0.0
        };
        if fresh.run_id != stored.run_id {
            findings.add(
                path,
                "run_id",
                &format!("{} (the re-run's)", fresh.run_id),
                &stored.run_id,
            );
        }
        for (field, a, b) in [
            ("test", &fresh.test, &stored.test),
            ("validation", &fresh.validation, &stored.validation),
        ] {
            let diff = max_difference(a, b);
            if diff > tolerance {
                findings.add(
                    path,
                    field,
                    &format!("the re-run's values (max |Δ| <= {tolerance})"),
                    &format!("values {diff:e} away"),
                );
            }
        }
        if fresh.selected_epoch != stored.selected_epoch || fresh.epochs_run != stored.epochs_run {
            findings.add(
                path,
                "selected_epoch, epochs_run",
                &format!("{:?}, {} (re-run)", fresh.selected_epoch, fresh.epochs_run),
                &format!("{:?}, {}", stored.selected_epoch, stored.epochs_run),
            );
        }
        let loss_tolerance = if tolerance > 0.0 { 1e-3 } else { 0.0 };
        for (a, b) in fresh.learning_curve.iter().zip(&stored.learning_curve) {
            if (a.train_loss - b.train_loss).abs() > loss_tolerance * b.train_loss.abs() {
                findings.add(
                    path,
                    &format!("learning_curve[{}].train_loss", b.epoch),
                    &format!("{} (re-run)", a.train_loss),
                    &b.train_loss.to_string(),
                );
                break;
            }
        }
    }
    notes.push(format!(
        "{done} of {} drawn cells re-run (draw seed {seed})",
        count.min(order.len())
    ));
    Ok(())
}
