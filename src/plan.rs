//! Plans for cluster execution: an experiment matrix written as one self-contained cell per line
//! (JSON Lines), so a Slurm array task runs exactly one cell (`run-cell --index
//! $SLURM_ARRAY_TASK_ID`) and `merge` collects the results. Slurm schedules; nothing here does.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::config::{ExperimentConfig, ModelSpec};
use crate::dataset::missing::MissingModalitySweep;
use crate::experiment::RunRequest;
use crate::record::result::RunResult;

/// One cell: a 1 × 1 × 1 experiment and the run id it gets on hardware of the planning kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanCell {
    pub index: usize,
    /// The run id on the planning machine's hardware kind; a node of another kind computes
    /// (and files its result under) its own.
    pub run_id: String,
    pub planned_device_kind: String,
    pub experiment: ExperimentConfig,
}

impl PlanCell {
    /// Whether `r` is this cell's result (same model, parameters, data name, seed, settings),
    /// whatever hardware computed it.
    pub fn matches(&self, r: &RunResult) -> bool {
        let e = &self.experiment;
        let spec = &e.models[0];
        r.config.model == spec.name
            && r.config.dataset == e.datasets[0]
            && r.config.seed == e.seeds[0]
            && r.config.train == e.train
            && r.config.eval == e.eval
            && e.missing_modality
                .as_ref()
                .map_or(vec![None], |s| s.conditions())
                == vec![r.config.missing]
            && spec
                .params
                .iter()
                .all(|(k, v)| r.config.model_params.get(k) == Some(v))
    }
}

/// The 1 × 1 × 1 experiment of one request of `config`'s matrix (its settings kept).
pub fn cell_experiment(config: &ExperimentConfig, request: &RunRequest) -> ExperimentConfig {
    ExperimentConfig {
        models: vec![ModelSpec {
            name: request.model.entry.name.to_string(),
            params: request
                .model
                .params
                .as_object()
                .cloned()
                .unwrap_or_default(),
        }],
        datasets: vec![request.dataset.clone()],
        seeds: vec![request.seed],
        missing_modality: request.missing.map(MissingModalitySweep::single),
        ..config.clone()
    }
}

pub fn write_plan(path: &Path, cells: &[PlanCell]) -> Result<()> {
    let mut text = Vec::new();
    for cell in cells {
        serde_json::to_writer(&mut text, cell)?;
        text.write_all(b"\n")?;
    }
    crate::record::result::write_atomically(path, &text)
}

/// Reads a plan file, or standard input when `path` is `-` (how `run-all` hands a cell to a
/// child process without a file to clean up).
pub fn read_plan(path: &Path) -> Result<Vec<PlanCell>> {
    let reader: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let file = std::fs::File::open(path)
            .with_context(|| format!("reading the plan {}", path.display()))?;
        Box::new(BufReader::new(file))
    };
    let mut cells = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}", path.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let cell: PlanCell = serde_json::from_str(&line).with_context(|| {
            format!(
                "{}:{}: not a plan cell (write plans with `mmsr-bench plan`)",
                path.display(),
                n + 1
            )
        })?;
        let e = &cell.experiment;
        anyhow::ensure!(
            e.models.len() == 1 && e.datasets.len() == 1 && e.seeds.len() == 1,
            "{}:{}: a plan cell holds one model, one dataset and one seed ({} models, {} datasets, {} seeds; write plans with `mmsr-bench plan`)",
            path.display(),
            n + 1,
            e.models.len(),
            e.datasets.len(),
            e.seeds.len()
        );
        e.validate()
            .with_context(|| format!("{}:{}", path.display(), n + 1))?;
        anyhow::ensure!(
            cell.index == cells.len(),
            "{}:{}: cell index {} out of order (expected {})",
            path.display(),
            n + 1,
            cell.index,
            cells.len()
        );
        cells.push(cell);
    }
    anyhow::ensure!(
        !cells.is_empty(),
        "{}: the plan has no cells",
        path.display()
    );
    Ok(cells)
}
