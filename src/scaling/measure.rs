//! One measurement: a model (in one layout) at one study point. Three warm-up batches, then one timed
//! epoch over the point's training graphs (shuffled batches, forward, backward, Adam, as the
//! trainer does), then the inference pass over the point's inference samples (scores and
//! ranks, as evaluation does), with the process's peak memory over both.

use std::time::Instant;

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tch::{nn, Device};

use super::config::{Factor, ScalingPoint};
use super::variant::{Graphs, Variant};
use crate::config::ModelSpec;
use crate::device::probe::{current_rss_bytes, peak_rss_bytes, release_and_reset_peak_rss};
use crate::model::{self, InputKind, ModelContext, ResolvedModel};
use crate::optim::Adam;
use crate::train::evaluation::evaluate;
use crate::train::trainer::synchronize;
use crate::train::{shuffle_rng, BatchSource, SplitInputs};

/// A registered model in one layout.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Contestant {
    pub model: String,
    /// Measured with `layout: dense` (otherwise the model's default layout).
    pub dense: bool,
}

impl Contestant {
    pub fn label(&self) -> String {
        if self.dense {
            format!("{} (dense)", self.model)
        } else {
            self.model.clone()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub model: String,
    pub dense: bool,
    pub factor: Factor,
    pub value: f64,
    /// Which round of the study measured it (0-based; 0 in studies made before points were
    /// repeated).
    #[serde(default)]
    pub repeat: usize,
    pub point: ScalingPoint,
    /// Users whose training graphs formed the epoch.
    pub users: usize,
    pub train_graphs: usize,
    /// Σ|E| (directed edges, self-loops included) and Σn over the training graphs.
    pub total_edges: usize,
    pub total_nodes: usize,
    pub batches: usize,
    pub train_seconds: f64,
    pub inference_samples: usize,
    pub inference_seconds_per_1000: f64,
    /// Peak resident memory of the process during the measurement and its resident memory
    /// just before (the loaded dataset and graphs); Linux only.
    pub peak_rss_bytes: Option<u64>,
    pub start_rss_bytes: Option<u64>,
}

impl Measurement {
    pub fn contestant(&self) -> Contestant {
        Contestant {
            model: self.model.clone(),
            dense: self.dense,
        }
    }

    pub fn seconds_per_batch(&self) -> f64 {
        self.train_seconds / self.batches.max(1) as f64
    }
}

/// The model with the point's width, depth and layout, or why it cannot take the point.
/// Where the width differs from the code centres' (`centre_dim`), code embeddings start at
/// random instead of at the centres: the cost is the same.
pub fn resolve_at(
    contestant: &Contestant,
    point: &ScalingPoint,
    centre_dim: Option<usize>,
) -> Result<ResolvedModel, String> {
    let defaults = model::resolve(&ModelSpec::named(&contestant.model))
        .map_err(|e| e.to_string())?
        .params;
    let has = |name: &str| defaults.get(name).is_some();
    let mut spec = ModelSpec::named(&contestant.model);
    let mut set = |name: &str, value: Value, differs: bool| -> Result<(), String> {
        if has(name) {
            spec.params.insert(name.to_string(), value);
            Ok(())
        } else if differs {
            Err(format!("{} has no `{name}` parameter", contestant.model))
        } else {
            Ok(())
        }
    };
    set("dim", json!(point.dim), true)?;
    set("layers", json!(point.layers), point.layers != 1)?;
    set("tied_layers", json!(point.tied), !point.tied)?;
    if contestant.dense {
        set("layout", json!("dense"), true)?;
    }
    if centre_dim.is_some_and(|c| c != point.dim) {
        set("init_codes_from_centres", json!(false), false)?;
    }
    if !matches!(
        model::resolve(&spec).map_err(|e| e.to_string())?.kind,
        InputKind::Graph(_)
    ) {
        return Err(format!("{} is not a graph model", contestant.model));
    }
    model::resolve(&spec).map_err(|e| e.to_string())
}

/// The graphs a model reads at a variant.
pub fn graphs_for<'a>(variant: &'a Variant, resolved: &ResolvedModel) -> Option<&'a Graphs> {
    match resolved.kind {
        InputKind::Graph(input) if input.codes => variant.with_codes.as_ref(),
        InputKind::Graph(_) => variant.items_only.as_ref(),
        _ => None,
    }
}

/// The training or inference side of `graphs` as batch inputs.
fn split_inputs(graphs: &Graphs, structure: bool, train: bool) -> SplitInputs<'_> {
    SplitInputs {
        graphs: if train {
            &graphs.train
        } else {
            &graphs.inference
        },
        structure: graphs
            .structure
            .as_ref()
            .filter(|_| structure)
            .map(|(t, i)| if train { t } else { i }),
    }
}

/// Untimed training batches before the timed epoch.
const WARM_UP_BATCHES: usize = 3;

pub struct MeasureOptions {
    pub seed: u64,
    pub device: Device,
    pub eval_batch: usize,
    pub learning_rate: f64,
}

/// Measures `contestant` at `point` on `variant`. `Err`: a libtorch or build failure message.
pub fn measure(
    contestant: &Contestant,
    resolved: &ResolvedModel,
    factor: Factor,
    value: f64,
    point: &ScalingPoint,
    variant: &Variant,
    options: &MeasureOptions,
) -> Result<Measurement, String> {
    let graphs = graphs_for(variant, resolved).ok_or("the variant lacks this model's graphs")?;
    let InputKind::Graph(input) = resolved.kind else {
        return Err("not a graph model".into());
    };
    release_and_reset_peak_rss();
    let start_rss = current_rss_bytes();
    tch::manual_seed(options.seed as i64);
    let vs = nn::VarStore::new(options.device);
    let context = ModelContext {
        dataset: &variant.data,
        device: options.device,
    };
    let built = model::build(resolved, &vs, &context).map_err(|e| e.to_string())?;
    // As in a run: inference reads receptive fields, and training too when the model asks
    // (cut once, untimed).
    let pruned_train = input
        .training_reach()
        .map(|reach| graphs.train.receptive_field(reach));
    let pruned_inference = input
        .evaluation_reach()
        .map(|reach| graphs.inference.receptive_field(reach));
    let train = BatchSource::new(
        &variant.data.splits.train,
        Some(split_inputs(graphs, input.structure, true).or_pruned(pruned_train.as_ref())),
        resolved.kind,
        options.device,
    );
    let inference = BatchSource::new(
        &variant.data.splits.test,
        Some(split_inputs(graphs, input.structure, false).or_pruned(pruned_inference.as_ref())),
        resolved.kind,
        options.device,
    );
    let mut adam = Adam::new(&vs, options.learning_rate, 0.0);
    let mut order: Vec<usize> = (0..train.len()).collect();
    order.shuffle(&mut shuffle_rng(options.seed));
    let batch_size = point.batch.max(1);
    // Warm-up: the first calls after a model is built (and after the allocator was trimmed for
    // the memory reading) fault pages in and pick kernels, which a run's long epochs amortise.
    // With one warm-up batch the study's smallest epochs (7 batches) cost up to twice as much
    // per batch as its largest; several batches of different sizes take most of that out.
    for chunk in order.chunks(batch_size).take(WARM_UP_BATCHES) {
        adam.backward_step(&built.model.loss(&train.batch(chunk)));
    }
    synchronize(options.device);

    let start = Instant::now();
    let mut loss_sum = 0.0;
    for chunk in order.chunks(batch_size) {
        let batch = train.batch(chunk);
        let loss = built.model.loss(&batch);
        adam.backward_step(&loss);
        loss_sum += loss.double_value(&[]);
    }
    synchronize(options.device);
    let train_seconds = start.elapsed().as_secs_f64();
    if !loss_sum.is_finite() {
        return Err(format!("the training loss became {loss_sum}"));
    }

    let start = Instant::now();
    evaluate(built.model.as_ref(), &inference, &[20], options.eval_batch)
        .map_err(|e| e.to_string())?;
    synchronize(options.device);
    let inference_seconds = start.elapsed().as_secs_f64();
    let samples = inference.len();
    Ok(Measurement {
        repeat: 0,
        model: contestant.model.clone(),
        dense: contestant.dense,
        factor,
        value,
        point: *point,
        users: variant.users,
        train_graphs: graphs.train_stats.graphs,
        total_edges: graphs.train_stats.total_edges,
        total_nodes: graphs.total_nodes(),
        batches: order.len().div_ceil(batch_size),
        train_seconds,
        inference_samples: samples,
        inference_seconds_per_1000: inference_seconds * 1000.0 / samples.max(1) as f64,
        peak_rss_bytes: peak_rss_bytes(),
        start_rss_bytes: start_rss,
    })
}
