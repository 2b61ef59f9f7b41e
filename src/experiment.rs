//! One run and a matrix of runs: load data -> build model -> train -> evaluate -> result file.
//! Runs are identified by run id; a matrix skips runs whose result file already exists, so an
//! interrupted `run-all` resumes where it stopped and loses nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::config::{EvalConfig, ExperimentConfig, Protocol, RunConfig, TrainConfig};
use crate::dataset::missing::{DropPattern, MissingModality, MissingModalitySweep, Stream};
use crate::dataset::{registry, store, PreparedDataset};
use crate::device::probe::{peak_rss_bytes, release_and_reset_peak_rss, release_free_memory};
use crate::device::{self, DeviceChoice};
use crate::graph::splits::{RunGraphs, SplitStructures, SplitView};
use crate::graph::{SplitGraphs, StructureSet};
use crate::guard::{first_line, guarded, is_out_of_memory};
use crate::model::{self, InputKind, ModelContext, ResolvedModel};
use crate::record::result::{self, DatasetInfo, RunResult, Timings};
use crate::record::Environment;
use crate::train::{self, BatchSource, SplitInputs, SplitSources, TrainOptions};

/// Where data and results live, and how chatty to be.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub data_dir: PathBuf,
    pub results_dir: PathBuf,
    pub verbose: bool,
    /// Re-run even when a result with the same run id exists.
    pub force: bool,
}

/// One run: its model already resolved and checked, its device not yet.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub model: ResolvedModel,
    pub dataset: String,
    pub seed: u64,
    pub device: DeviceChoice,
    pub train: TrainConfig,
    pub eval: EvalConfig,
    /// The missing-modality condition (None: complete data).
    pub missing: Option<MissingModality>,
}

#[derive(Debug)]
pub enum RunStatus {
    Completed(RunResult, PathBuf),
    /// A result with the same run id was already on disk.
    Reused(RunResult, PathBuf),
}

impl RunStatus {
    pub fn result(&self) -> &RunResult {
        match self {
            RunStatus::Completed(r, _) | RunStatus::Reused(r, _) => r,
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            RunStatus::Completed(_, p) | RunStatus::Reused(_, p) => p,
        }
    }
}

struct LoadedDataset {
    data: Rc<PreparedDataset>,
    content_hash: String,
    /// The dataset's own counts (a `--protocol official` copy trains on its validation samples
    /// but keeps the counts, and the content hash, of the data it came from).
    counts: crate::dataset::DatasetCounts,
    seconds: f64,
    /// Graphs with code nodes (`true`) and item-only graphs (`false`), built on first use.
    graphs: HashMap<bool, Rc<SplitGraphs>>,
    /// Graphs with bundles left out by a missing-modality condition, per seed; only those of
    /// the latest condition are kept (a sweep runs condition by condition).
    missing_graphs: Option<(String, HashMap<u64, Rc<SplitGraphs>>)>,
}

/// Datasets are loaded (or generated) once per process and shared by all runs on them.
#[derive(Default)]
pub struct DatasetCache {
    /// Keyed by name and whether the validation samples are trained on (`--protocol official`).
    loaded: HashMap<(String, bool), LoadedDataset>,
}

impl DatasetCache {
    fn get(
        &mut self,
        name: &str,
        workspace: &Workspace,
        experiment: &ExperimentConfig,
    ) -> Result<&LoadedDataset> {
        let key = (name.to_string(), false);
        if !self.loaded.contains_key(&key) {
            let start = Instant::now();
            let data = registry::load(
                name,
                &workspace.data_dir,
                &experiment.synthetic,
                experiment.official.as_ref(),
            )?;
            let content_hash = store::content_hash(&data)?;
            let loaded = LoadedDataset {
                counts: data.counts(),
                data: Rc::new(data),
                content_hash,
                seconds: start.elapsed().as_secs_f64(),
                graphs: HashMap::new(),
                missing_graphs: None,
            };
            self.loaded.insert(key.clone(), loaded);
        }
        Ok(&self.loaded[&key])
    }

    /// The dataset as a run of `protocol` trains on it: under `official` a copy with the
    /// validation samples in training (made once, with graphs of its own).
    fn get_for(
        &mut self,
        name: &str,
        protocol: Protocol,
        workspace: &Workspace,
        experiment: &ExperimentConfig,
    ) -> Result<&LoadedDataset> {
        if !protocol.trains_on_validation() {
            return self.get(name, workspace, experiment);
        }
        let key = (name.to_string(), true);
        if !self.loaded.contains_key(&key) {
            let base = self.get(name, workspace, experiment)?;
            let merged = LoadedDataset {
                data: Rc::new(base.data.with_validation_trained()),
                content_hash: base.content_hash.clone(),
                counts: base.counts,
                seconds: base.seconds,
                graphs: HashMap::new(),
                missing_graphs: None,
            };
            self.loaded.insert(key.clone(), merged);
        }
        Ok(&self.loaded[&key])
    }

    /// The content hash of a dataset (loading or generating it once).
    pub fn content_hash(
        &mut self,
        name: &str,
        workspace: &Workspace,
        experiment: &ExperimentConfig,
    ) -> Result<String> {
        Ok(self.get(name, workspace, experiment)?.content_hash.clone())
    }

    /// The counts of a dataset (loading or generating it once).
    pub fn counts(
        &mut self,
        name: &str,
        workspace: &Workspace,
        experiment: &ExperimentConfig,
    ) -> Result<crate::dataset::DatasetCounts> {
        Ok(self.get(name, workspace, experiment)?.counts)
    }

    /// The split graphs of a loaded dataset, built once per (dataset, with_codes), and per
    /// (condition, seed) under a missing-modality condition (item-only graphs have no
    /// modality to drop).
    fn graphs(
        &mut self,
        name: &str,
        protocol: Protocol,
        with_codes: bool,
        missing: Option<MissingModality>,
        seed: u64,
    ) -> Rc<SplitGraphs> {
        let loaded = self
            .loaded
            .get_mut(&(name.to_string(), protocol.trains_on_validation()))
            .expect("dataset loaded before its graphs");
        let data = Rc::clone(&loaded.data);
        if let Some(condition) = missing.filter(|_| with_codes) {
            let key = condition.to_string();
            if loaded
                .missing_graphs
                .as_ref()
                .is_none_or(|(k, _)| *k != key)
            {
                loaded.missing_graphs = Some((key, HashMap::new()));
            }
            let (_, per_seed) = loaded.missing_graphs.as_mut().expect("just set");
            return Rc::clone(per_seed.entry(seed).or_insert_with(|| {
                Rc::new(SplitGraphs::new(data, true, Some((condition, seed))))
            }));
        }
        Rc::clone(
            loaded
                .graphs
                .entry(with_codes)
                .or_insert_with(|| Rc::new(SplitGraphs::new(data, with_codes, None))),
        )
    }
}

/// A libtorch failure as an error that names the knob: memory (batch sizes, model size) or,
/// for anything else, the message and a request to report it.
fn torch_failure(panic: &str, what: &str, request: &RunRequest) -> anyhow::Error {
    let model = request.model.entry.name;
    let message = first_line(panic);
    let message = message.as_str();
    if is_out_of_memory(panic) {
        let size: Vec<String> = ["dim", "layers"]
            .iter()
            .filter_map(|p| Some(format!("{p} = {}", request.model.params.get(*p)?)))
            .collect();
        anyhow::anyhow!(
            "out of memory while {what} {model} on {} ({message}). Lower train.batch_size (now {}) or eval.batch_size (now {}), or the model's size ({}), e.g. --set train.batch_size=64",
            request.dataset,
            request.train.batch_size,
            request.eval.batch_size,
            if size.is_empty() { "its parameters".to_string() } else { size.join(", ") }
        )
    } else {
        anyhow::anyhow!(
            "libtorch failed while {what} {model} on {}: {message} (an internal error: please report it with the command line)",
            request.dataset
        )
    }
}

/// The resolved config of a request on `device`: everything its run id hashes besides the data.
/// The resolved configuration (the run's identity) of `request` on `device`, run with
/// `cpu_threads` libtorch threads (recorded on the CPU only).
pub fn run_config(request: &RunRequest, device: tch::Device, cpu_threads: i32) -> RunConfig {
    RunConfig {
        model: request.model.entry.name.to_string(),
        model_version: request.model.version,
        model_params: request.model.params.clone(),
        dataset: request.dataset.clone(),
        seed: request.seed,
        device: device::label(device),
        device_kind: device::kind(device),
        train: request.train.clone(),
        eval: request.eval.clone(),
        missing: request.missing,
        cpu_threads: (device == tch::Device::Cpu).then_some(cpu_threads),
    }
}

/// The readable result at `path`, unless `--force` asks for a new one (an unreadable file is
/// reported and run again).
fn stored_result(path: &Path, workspace: &Workspace) -> Option<RunResult> {
    if !path.exists() || workspace.force {
        return None;
    }
    RunResult::load(path)
        .map_err(|e| eprintln!("warning: {e:#}; running again"))
        .ok()
}

/// Where a request's result file lives on this machine's hardware when run with `cpu_threads`
/// libtorch threads, and the stored result when one is there (nothing is built or run).
pub fn locate(
    request: &RunRequest,
    experiment: &ExperimentConfig,
    workspace: &Workspace,
    cache: &mut DatasetCache,
    cpu_threads: i32,
) -> Result<(PathBuf, Option<RunResult>)> {
    let device = request.device.resolve()?;
    let content_hash = cache.content_hash(&request.dataset, workspace, experiment)?;
    let config = run_config(request, device, cpu_threads);
    let run_id = result::run_id(&content_hash, &config);
    let path = result::result_path(&workspace.results_dir, &config, &run_id);
    let stored = stored_result(&path, workspace);
    Ok((path, stored))
}

/// Runs one experiment (or reuses its stored result) and writes the result file atomically.
pub fn run_one(
    request: &RunRequest,
    experiment: &ExperimentConfig,
    workspace: &Workspace,
    cache: &mut DatasetCache,
) -> Result<RunStatus> {
    let total = Instant::now();
    let device = request.device.resolve()?;
    let protocol = request.train.protocol;
    let dataset = cache.get_for(&request.dataset, protocol, workspace, experiment)?;
    let (data, content_hash, counts, load_seconds) = (
        Rc::clone(&dataset.data),
        dataset.content_hash.clone(),
        dataset.counts,
        dataset.seconds,
    );

    let config = run_config(request, device, tch::get_num_threads());
    // Stored results are found before anything is built.
    let run_id = result::run_id(&content_hash, &config);
    let path = result::result_path(&workspace.results_dir, &config, &run_id);
    if let Some(stored) = stored_result(&path, workspace) {
        return Ok(RunStatus::Reused(stored, path));
    }

    release_and_reset_peak_rss();
    let build_start = Instant::now();
    train::seed_torch(request.seed);
    let context = ModelContext {
        dataset: &data,
        device,
    };
    let vs = tch::nn::VarStore::new(device);
    let built = guarded(|| model::build(&request.model, &vs, &context))
        .map_err(|panic| torch_failure(&panic, "building", request))??;
    let build_seconds = build_start.elapsed().as_secs_f64();

    let graphs = match request.model.kind {
        InputKind::Graph(input) => Some((
            cache.graphs(
                &request.dataset,
                protocol,
                input.codes,
                request.missing,
                request.seed,
            ),
            input,
        )),
        InputKind::None | InputKind::Sequence => None,
    };
    let structure = graphs
        .as_ref()
        .filter(|(_, input)| input.structure)
        .map(|(g, _)| g.structure());
    // What the model reads of each split: models that declare a receptive field are evaluated
    // (and, when asked, trained) on it, the same scores for a fraction of the work
    // (`graph::receptive`); the whole graphs are then never kept.
    let views = graphs
        .as_ref()
        .map(|(g, input)| g.for_run(input.training_reach(), input.evaluation_reach()));
    // The graph builders' freed scratch goes back to the system before training starts.
    release_free_memory();
    let split_inputs = |split: Stream, pick_structure: fn(&SplitStructures) -> &StructureSet| {
        views.as_ref().map(|views| {
            let view = views.split(split);
            SplitInputs {
                graphs: view.graphs(),
                // Structure encodings belong to whole graphs (a model that reads them declares
                // no reach, so it never gets a receptive field).
                structure: match view {
                    SplitView::Whole(_) => structure.map(pick_structure),
                    SplitView::Receptive(_) => None,
                },
            }
        })
    };
    let kind = request.model.kind;
    let pattern = |stream| {
        request
            .missing
            .map(|c| DropPattern::new(c, request.seed, stream))
    };
    let sources = SplitSources {
        train: BatchSource::new(
            &data.splits.train,
            split_inputs(Stream::Train, |s| &s.train),
            kind,
            device,
        )
        .with_missing(pattern(Stream::Train)),
        valid: BatchSource::new(
            &data.splits.valid,
            split_inputs(Stream::Valid, |s| &s.valid),
            kind,
            device,
        )
        .with_missing(pattern(Stream::Valid))
        .with_order(request.eval.order)
        .with_candidates(request.eval.candidates),
        test: BatchSource::new(
            &data.splits.test,
            split_inputs(Stream::Test, |s| &s.test),
            kind,
            device,
        )
        .with_missing(pattern(Stream::Test))
        .with_order(request.eval.order)
        .with_candidates(request.eval.candidates),
    };
    let options = TrainOptions {
        train: &request.train,
        eval: &request.eval,
        seed: request.seed,
        device,
        verbose: workspace.verbose,
    };
    let outcome =
        guarded(|| train::train_and_evaluate(built.model.as_ref(), &vs, &sources, &options))
            .map_err(|panic| torch_failure(&panic, "training", request))?
            .with_context(|| {
                format!(
                    "training {} on {} (seed {})",
                    config.model, config.dataset, config.seed
                )
            })?;

    let result = RunResult {
        schema: result::SCHEMA.to_string(),
        schema_version: result::SCHEMA_VERSION,
        run_id,
        dataset: DatasetInfo {
            name: data.name.clone(),
            content_hash,
            source: data.description(),
            counts,
        },
        num_parameters: built.num_parameters,
        protocol: request.train.protocol,
        selected_epoch: outcome.selected_epoch,
        epochs_run: outcome.epochs_run,
        validation: outcome.validation,
        test: outcome.test,
        official_best_over_epochs_on_test: outcome.official_best_over_epochs_on_test,
        learning_curve: outcome.curve,
        graph_stats: views.as_ref().map(|v| v.split(Stream::Train).whole_stats()),
        timings: Timings {
            load_data_seconds: load_seconds,
            build_graphs_seconds: views.as_ref().map_or(0.0, RunGraphs::build_seconds)
                + structure.map_or(0.0, |s| s.build_seconds),
            build_model_seconds: build_seconds,
            train_seconds: outcome.train_seconds,
            validation_seconds: outcome.validation_seconds,
            test_seconds: outcome.test_seconds,
            total_seconds: total.elapsed().as_secs_f64(),
        },
        peak_rss_bytes: peak_rss_bytes(),
        environment: Environment::capture(device),
        created_at: result::now_rfc3339(),
        config,
    };
    result.save(&path)?;
    Ok(RunStatus::Completed(result, path))
}

/// Every (dataset, missing-modality condition, model, seed) of an experiment, datasets
/// outermost so each is loaded once, conditions next so each condition's graphs are built once
/// per seed. Every model spec is resolved (parameters checked) here, before any run starts.
pub fn expand(experiment: &ExperimentConfig, device: DeviceChoice) -> Result<Vec<RunRequest>> {
    let models = experiment
        .models
        .iter()
        .map(model::resolve)
        .collect::<Result<Vec<_>, _>>()?;
    let conditions = experiment
        .missing_modality
        .as_ref()
        .map_or(vec![None], MissingModalitySweep::conditions);
    let mut requests = Vec::new();
    for dataset in &experiment.datasets {
        for &missing in &conditions {
            for model in &models {
                for &seed in &experiment.seeds {
                    requests.push(RunRequest {
                        model: model.clone(),
                        dataset: dataset.clone(),
                        seed,
                        device,
                        train: experiment.train.clone(),
                        eval: experiment.eval.clone(),
                        missing,
                    });
                }
            }
        }
    }
    Ok(requests)
}

/// Checks names and parameters before any run starts, so a typo fails in a second, not after
/// an hour.
pub fn check_names(experiment: &ExperimentConfig, workspace: &Workspace) -> Result<()> {
    anyhow::ensure!(!experiment.models.is_empty(), "no models selected");
    anyhow::ensure!(!experiment.datasets.is_empty(), "no datasets selected");
    anyhow::ensure!(!experiment.seeds.is_empty(), "no seeds selected");
    for spec in &experiment.models {
        model::resolve(spec)?;
    }
    for name in &experiment.datasets {
        registry::validate_name(name, &workspace.data_dir)?;
    }
    experiment.validate()?;
    Ok(())
}
