//! What a scaling study varies (spec §9.3): one factor at a time, the others at their defaults,
//! read from a YAML file (`baselines/scaling.yaml`).

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{MAX_BATCH_SIZE, MAX_CLUSTERS, MAX_ITERATIONS};
use crate::dataset::synthetic::SyntheticConfig;
use crate::model::{MAX_DEPTH, MAX_WIDTH};

#[derive(Debug, Error)]
pub enum ScalingConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message} (see baselines/scaling.yaml for the fields)")]
    Parse { path: String, message: String },
    #[error("scaling setting `{field}`: {message}")]
    Invalid { field: String, message: String },
}

/// One point of the study: every knob a factor can move.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalingPoint {
    /// Share of the base users whose training graphs form the epoch (`|U|`).
    pub users: f64,
    /// Codes linked per item and modality (`K`).
    pub links: usize,
    /// Codes per modality (`C`).
    pub clusters: usize,
    /// Sequence cap `m`: each input keeps its last `m` items.
    pub max_len: usize,
    /// Layers `L`.
    pub layers: usize,
    /// Whether the layers share their weights (official: tied).
    pub tied: bool,
    /// Width `D`.
    pub dim: usize,
    /// Training batch size `B`.
    pub batch: usize,
}

impl Default for ScalingPoint {
    fn default() -> Self {
        Self {
            users: 1.0,
            links: 3,
            clusters: 30,
            max_len: 50,
            layers: 1,
            tied: true,
            dim: 128,
            batch: 128,
        }
    }
}

/// The values each factor takes (an empty list leaves the factor out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Factors {
    pub users: Vec<f64>,
    pub links: Vec<usize>,
    pub clusters: Vec<usize>,
    pub max_len: Vec<usize>,
    /// Weight-tied layers (the official setting).
    pub layers: Vec<usize>,
    /// The same layer counts with one weight set per layer.
    pub untied_layers: Vec<usize>,
    pub dim: Vec<usize>,
    pub batch: Vec<usize>,
}

impl Default for Factors {
    fn default() -> Self {
        Self {
            users: vec![0.1, 0.25, 0.5, 1.0],
            links: vec![1, 2, 3, 5],
            clusters: vec![10, 20, 30, 50, 100],
            max_len: vec![5, 10, 20, 50],
            layers: vec![1, 2, 3],
            untied_layers: vec![2, 3],
            dim: vec![64, 128, 256],
            batch: vec![32, 128, 512],
        }
    }
}

/// The factors, in the order the study runs and reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    Users,
    Links,
    Clusters,
    MaxLen,
    Layers,
    UntiedLayers,
    Dim,
    Batch,
}

impl Factor {
    pub const ALL: [Factor; 8] = [
        Factor::Users,
        Factor::Links,
        Factor::Clusters,
        Factor::MaxLen,
        Factor::Layers,
        Factor::UntiedLayers,
        Factor::Dim,
        Factor::Batch,
    ];

    /// The factors of the claim itself, which every model runs: |U|, and the codes per item K,
    /// which sets |E| per graph. The rest (C, m, L, D, B) run on the detail models only, so
    /// that the default study fits the 2 cores.
    pub fn runs_every_model(self) -> bool {
        matches!(self, Factor::Users | Factor::Links)
    }

    pub fn label(self) -> &'static str {
        match self {
            Factor::Users => "share of users |U|",
            Factor::Links => "codes per item K",
            Factor::Clusters => "codes per modality C",
            Factor::MaxLen => "sequence cap m",
            Factor::Layers => "layers L (tied)",
            Factor::UntiedLayers => "layers L (untied)",
            Factor::Dim => "width D",
            Factor::Batch => "batch size B",
        }
    }

    /// `point` with this factor set to `value`.
    pub fn apply(self, point: ScalingPoint, value: f64) -> ScalingPoint {
        let count = value as usize;
        match self {
            Factor::Users => ScalingPoint {
                users: value,
                ..point
            },
            Factor::Links => ScalingPoint {
                links: count,
                ..point
            },
            Factor::Clusters => ScalingPoint {
                clusters: count,
                ..point
            },
            Factor::MaxLen => ScalingPoint {
                max_len: count,
                ..point
            },
            Factor::Layers => ScalingPoint {
                layers: count,
                tied: true,
                ..point
            },
            Factor::UntiedLayers => ScalingPoint {
                layers: count,
                tied: false,
                ..point
            },
            Factor::Dim => ScalingPoint {
                dim: count,
                ..point
            },
            Factor::Batch => ScalingPoint {
                batch: count,
                ..point
            },
        }
    }
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = serde_json::to_value(self).expect("a unit variant");
        f.write_str(name.as_str().expect("a string"))
    }
}

impl Factors {
    pub fn values(&self, factor: Factor) -> Vec<f64> {
        let counts = |v: &[usize]| v.iter().map(|&c| c as f64).collect();
        match factor {
            Factor::Users => self.users.clone(),
            Factor::Links => counts(&self.links),
            Factor::Clusters => counts(&self.clusters),
            Factor::MaxLen => counts(&self.max_len),
            Factor::Layers => counts(&self.layers),
            Factor::UntiedLayers => counts(&self.untied_layers),
            Factor::Dim => counts(&self.dim),
            Factor::Batch => counts(&self.batch),
        }
    }
}

/// The most rounds a study may ask for (each repeats every measurement).
pub const MAX_REPEATS: usize = 20;
/// The most test samples of an inference measurement (Beauty has 33,942).
pub const MAX_INFERENCE_SAMPLES: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScalingConfig {
    /// A prepared dataset (`beauty-offline`), an official folder's name, or `synthetic`.
    pub dataset: String,
    /// Users drawn (seeded) from the dataset's training users before any factor applies, so
    /// that the study fits the machine; `null`: all of them (`--full`).
    pub base_users: Option<usize>,
    /// Seeds the user draw, the weights and the batch order.
    pub seed: u64,
    /// Graph models run on |U| and K; each in its default layout.
    pub models: Vec<String>,
    /// Models also run with `layout: dense` (those that have one).
    pub dense: Vec<String>,
    /// Models (of `models`) also run on the factors besides |U| and K (C, m, L, D, B); with
    /// their dense twin where listed in `dense`.
    pub detail_models: Vec<String>,
    /// Test samples scored for the inference time (the first ones of the test split).
    pub inference_samples: usize,
    /// k-means iterations when a `C` point re-clusters the stored reduced features.
    pub kmeans_iterations: usize,
    /// Rounds of the whole study: each point is measured once per round, so its repeats are
    /// interleaved with the other points' (never back to back), and the fits read the median.
    pub repeats: usize,
    pub defaults: ScalingPoint,
    pub factors: Factors,
    /// Sizes of the generated dataset when `dataset` is `synthetic`.
    pub synthetic: SyntheticConfig,
}

impl Default for ScalingConfig {
    fn default() -> Self {
        Self {
            dataset: "synthetic".to_string(),
            base_users: None,
            seed: crate::DEFAULT_SEED,
            models: vec!["han-gnn".into(), "kv-attention".into()],
            dense: vec!["han-gnn".into()],
            detail_models: vec!["han-gnn".into()],
            inference_samples: 1000,
            kmeans_iterations: 25,
            repeats: 3,
            defaults: ScalingPoint::default(),
            factors: Factors::default(),
            synthetic: SyntheticConfig::default(),
        }
    }
}

impl ScalingConfig {
    pub fn from_file(path: &Path) -> Result<Self, ScalingConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScalingConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let config: Self =
            serde_norway::from_str(&text).map_err(|e| ScalingConfigError::Parse {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        Ok(config)
    }

    /// Range checks: every error names the field and the allowed values.
    pub fn validate(&self) -> Result<(), ScalingConfigError> {
        let invalid = |field: &str, message: String| {
            Err(ScalingConfigError::Invalid {
                field: field.to_string(),
                message,
            })
        };
        let f = &self.factors;
        let d = &self.defaults;
        for (field, share) in f
            .users
            .iter()
            .map(|u| ("factors.users", *u))
            .chain([("defaults.users", d.users)])
        {
            if !(share > 0.0 && share <= 1.0) {
                return invalid(field, format!("{share} is not a share in (0, 1]"));
            }
        }
        let positive: [(&str, &[usize]); 8] = [
            ("factors.links", &f.links),
            ("factors.clusters", &f.clusters),
            ("factors.max_len", &f.max_len),
            ("factors.layers", &f.layers),
            ("factors.untied_layers", &f.untied_layers),
            ("factors.dim", &f.dim),
            ("factors.batch", &f.batch),
            (
                "defaults",
                &[d.links, d.clusters, d.max_len, d.layers, d.dim, d.batch],
            ),
        ];
        for (field, values) in positive {
            if let Some(zero) = values.iter().find(|&&v| v == 0) {
                return invalid(field, format!("{zero} is not allowed (at least 1)"));
            }
        }
        for (field, values) in [
            ("factors.max_len", &f.max_len),
            ("defaults.max_len", &vec![d.max_len]),
        ] {
            if let Some(long) = values.iter().find(|&&v| v > 150) {
                return invalid(field, format!("{long} exceeds the 150-position table"));
            }
        }
        // Every count that sizes an allocation or a loop is bounded above too.
        let (depth, width) = (MAX_DEPTH as usize, MAX_WIDTH as usize);
        let bounded: Vec<(&str, &[usize], usize)> = vec![
            ("factors.links", &f.links, MAX_CLUSTERS),
            ("factors.clusters", &f.clusters, MAX_CLUSTERS),
            ("factors.layers", &f.layers, depth),
            ("factors.untied_layers", &f.untied_layers, depth),
            ("factors.dim", &f.dim, width),
            ("factors.batch", &f.batch, MAX_BATCH_SIZE),
            (
                "defaults.links",
                std::slice::from_ref(&d.links),
                MAX_CLUSTERS,
            ),
            (
                "defaults.clusters",
                std::slice::from_ref(&d.clusters),
                MAX_CLUSTERS,
            ),
            ("defaults.layers", std::slice::from_ref(&d.layers), depth),
            ("defaults.dim", std::slice::from_ref(&d.dim), width),
            (
                "defaults.batch",
                std::slice::from_ref(&d.batch),
                MAX_BATCH_SIZE,
            ),
            (
                "kmeans_iterations",
                std::slice::from_ref(&self.kmeans_iterations),
                MAX_ITERATIONS,
            ),
            (
                "inference_samples",
                std::slice::from_ref(&self.inference_samples),
                MAX_INFERENCE_SAMPLES,
            ),
        ];
        for (field, values, max) in bounded {
            if let Some(big) = values.iter().find(|&&v| v > max) {
                return invalid(field, format!("{big} is too large (at most {max})"));
            }
        }
        if self.models.is_empty() {
            return invalid("models", "name at least one graph model".into());
        }
        for (field, list) in [
            ("dense", &self.dense),
            ("detail_models", &self.detail_models),
        ] {
            if let Some(name) = list.iter().find(|n| !self.models.contains(n)) {
                return invalid(field, format!("{name} is not in `models`"));
            }
        }
        if self.inference_samples == 0 {
            return invalid("inference_samples", "at least 1".into());
        }
        if self.base_users == Some(0) {
            return invalid("base_users", "at least 1 (or null for all users)".into());
        }
        if self.kmeans_iterations == 0 {
            return invalid("kmeans_iterations", "at least 1".into());
        }
        if !(1..=MAX_REPEATS).contains(&self.repeats) {
            return invalid(
                "repeats",
                format!(
                    "{} is out of range: between 1 and {MAX_REPEATS} (3 gives each point a median)",
                    self.repeats
                ),
            );
        }
        Ok(())
    }
}
