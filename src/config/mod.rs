//! Experiment configuration: YAML files (typed, unknown fields rejected) plus command-line
//! overrides, resolved into one [`RunConfig`] per run. The resolved config is stored in every
//! result file and hashed into its run id.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::dataset::missing::{MissingModality, MissingModalitySweep};
use crate::dataset::official::OfficialConfig;
use crate::dataset::synthetic::SyntheticConfig;
use crate::eval::metrics::{Metric, DEFAULT_KS};

mod validate;
pub use validate::*;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// serde_norway's message names the field and carries "at line L column C".
    #[error("{path}: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("{origin}: model {model:?}: {message}")]
    ModelParams {
        origin: String,
        model: String,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Which numbers a run reports. The first two select the epoch on validation; `official` trains
/// and stops the way the official code does (spec §6), so its numbers are test-selected and
/// optimistic by construction: labelled so in results, `check` and tables, never a headline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Select the epoch on validation NDCG@20; evaluate test once at that epoch.
    Validation,
    /// The same, and also evaluate test after every epoch to report, per metric, its best value
    /// over epochs on test: what the official code reports (spec §6.4). Labelled as optimistic
    /// in results and tables; never the headline.
    ValidationWithTestCurve,
    /// The official code's protocol, for reproducing its numbers: train on every training sample
    /// (the validation samples join training), evaluate test after every epoch, stop when none of
    /// HR, MRR and the official NDCG at 5 and 20 improved (spec §6.3), report per metric its best
    /// value over epochs on test. Optimistic; never the headline.
    Official,
}

impl Protocol {
    /// Whether the validation samples are trained on (nothing is held out for selection).
    pub fn trains_on_validation(self) -> bool {
        self == Protocol::Official
    }

    /// Whether test is evaluated after every epoch.
    pub fn has_test_curve(self) -> bool {
        self != Protocol::Validation
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub max_epochs: usize,
    /// Stop after this many epochs without a new best validation score.
    pub patience: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// StepLR as in the official code: multiply the rate by `lr_gamma` every `lr_step` epochs.
    pub lr_step: usize,
    pub lr_gamma: f64,
    pub protocol: Protocol,
    /// Selection criterion (spec §1.3: validation NDCG@20).
    pub selection_metric: Metric,
    pub selection_k: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            max_epochs: 100,
            patience: 8,
            batch_size: 128,
            learning_rate: 0.002,
            weight_decay: 0.0,
            lr_step: 40,
            lr_gamma: 1e-4,
            protocol: Protocol::Validation,
            selection_metric: Metric::Ndcg,
            selection_k: 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    pub ks: Vec<usize>,
    /// Samples per evaluation batch: speed and memory, and the last bits of some scores (matrix
    /// kernels sum in another order for other row counts; a rank moves only on a near-tie).
    /// Small batches keep the sparse path's [E, D] intermediates in cache: on Beauty's test
    /// split (2 cores) 64 took 14 s where 256 took 23 s; raise it on a GPU.
    pub batch_size: usize,
    /// The order an evaluation pass visits the samples in (left out of stored configs when it
    /// is the default, so earlier run ids stand).
    #[serde(skip_serializing_if = "EvaluationOrder::is_input")]
    pub order: EvaluationOrder,
    /// Which items a target is ranked among (left out of stored configs when it is the
    /// default, so earlier run ids stand).
    #[serde(skip_serializing_if = "Candidates::is_all_items")]
    pub candidates: Candidates,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            ks: DEFAULT_KS.to_vec(),
            batch_size: 64,
            order: EvaluationOrder::Input,
            candidates: Candidates::AllItems,
        }
    }
}

/// `eval.order`: how sequence models' evaluation samples are batched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvaluationOrder {
    /// The split's order (default).
    #[default]
    Input,
    /// Sequence-input models visit the samples by input length, so a batch's inputs have
    /// similar lengths and a recurrent or attention encoder steps through little padding (on
    /// official Beauty's test split, 2 cores: GRU4Rec's test pass 2.9 s -> 1.7-1.8 s,
    /// docs/performance.md).
    /// Other batches than the default, so the last bits of some scores differ (see
    /// `batch_size`); graph models keep their own order (the dense layout already sorts by
    /// graph size).
    ByLength,
}

impl EvaluationOrder {
    pub fn is_input(&self) -> bool {
        *self == Self::Input
    }
}

/// `eval.candidates`: the items a target is ranked among.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Candidates {
    /// Every item (default; the official MMSR code and RecBole's sequential models rank so).
    #[default]
    AllItems,
    /// Every item except those of the sample's input (its history, capped at `m` items); the
    /// target is always ranked, also when the user had it before. S3-Rec's full-ranking code
    /// and the code bases built on it evaluate so (they set those items' scores to 0 rather
    /// than leaving them out).
    NotInInput,
}

impl Candidates {
    pub fn is_all_items(&self) -> bool {
        *self == Self::AllItems
    }
}

/// A model name plus its parameters; written `pop` or `{name: han-gnn, dropout: 0.3}` in YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "ModelSpecRepr", into = "ModelSpecRepr")]
pub struct ModelSpec {
    pub name: String,
    pub params: serde_json::Map<String, serde_json::Value>,
}

impl ModelSpec {
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_string(),
            params: serde_json::Map::new(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ModelSpecRepr {
    Name(String),
    Full {
        name: String,
        #[serde(flatten)]
        params: serde_json::Map<String, serde_json::Value>,
    },
}

impl From<ModelSpecRepr> for ModelSpec {
    fn from(repr: ModelSpecRepr) -> Self {
        match repr {
            ModelSpecRepr::Name(name) => ModelSpec::named(&name),
            ModelSpecRepr::Full { name, params } => ModelSpec { name, params },
        }
    }
}

impl From<ModelSpec> for ModelSpecRepr {
    fn from(spec: ModelSpec) -> Self {
        ModelSpecRepr::Full {
            name: spec.name,
            params: spec.params,
        }
    }
}

/// An experiment file: a matrix of models × datasets × seeds with shared settings. A single
/// `run` is the 1 × 1 × 1 case. Every section is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ExperimentConfig {
    pub models: Vec<ModelSpec>,
    pub datasets: Vec<String>,
    pub seeds: Vec<u64>,
    pub device: Option<String>,
    pub train: TrainConfig,
    pub eval: EvalConfig,
    /// Generator settings of the embedded `synthetic` dataset.
    pub synthetic: SyntheticConfig,
    /// The authors' processed folder, used by the dataset named `official`.
    pub official: Option<OfficialConfig>,
    /// The missing-modality study: every run under each of these conditions (spec §8).
    pub missing_modality: Option<MissingModalitySweep>,
}

impl ExperimentConfig {
    /// Reads and type-checks a YAML experiment file; errors name the file, field and line.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml(&text, path)
    }

    pub fn from_yaml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_norway::from_str(text).map_err(|e| ConfigError::Yaml {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

/// Applies a `--set key=value` override (value in YAML syntax) to an experiment. Keys are dotted
/// paths into the file's structure (`train.max_epochs=5`). Model parameters are scoped by model:
/// `model.<name>.<param>=v` sets a parameter of the selected model `<name>`; the short form
/// `model.<param>=v` is accepted only when exactly one model is selected. Whether the model has
/// that parameter is checked when the experiment is resolved (an unknown one is an error naming
/// the model).
pub fn apply_override(
    config: &ExperimentConfig,
    assignment: &str,
) -> Result<ExperimentConfig, ConfigError> {
    let origin = format!("--set {assignment}");
    let invalid = |m: &str| ConfigError::Invalid(format!("{origin}: {m}"));
    let (key, value) = assignment
        .split_once('=')
        .ok_or_else(|| invalid("expected KEY=VALUE"))?;
    let path: Vec<&str> = key.trim().split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(invalid("empty key component"));
    }
    let value: serde_norway::Value = serde_norway::from_str(value)
        .map_err(|e| invalid(&format!("value is not valid YAML: {e}")))?;
    let mut config = config.clone();
    if path[0] == "model" {
        let json = serde_json::to_value(&value).map_err(|e| invalid(&e.to_string()))?;
        let selected: Vec<String> = config.models.iter().map(|m| m.name.clone()).collect();
        let (spec, param) = match path[..] {
            [_, name, param] => {
                let spec = config.models.iter_mut().find(|m| m.name == name);
                let spec = spec.ok_or_else(|| {
                    invalid(&format!(
                        "model {name:?} is not selected (selected: {})",
                        selected.join(", ")
                    ))
                })?;
                (spec, param)
            }
            [_, param] => match config.models.as_mut_slice() {
                [spec] => (spec, param),
                [] => return Err(invalid("no model is selected yet to set a parameter on")),
                _ => {
                    return Err(invalid(&format!(
                        "several models are selected ({}); scope the parameter: model.<name>.{param}=...",
                        selected.join(", ")
                    )))
                }
            },
            _ => return Err(invalid("use model.<name>.<parameter>=<value>")),
        };
        spec.params.insert(param.to_string(), json);
        return Ok(config);
    }
    let mut tree = serde_norway::to_value(&config).expect("config serialises");
    let mut node = &mut tree;
    for (depth, part) in path.iter().enumerate() {
        let mapping = node
            .as_mapping_mut()
            .ok_or_else(|| invalid(&format!("{} is not a section", path[..depth].join("."))))?;
        let key = serde_norway::Value::String(part.to_string());
        if depth + 1 == path.len() {
            mapping.insert(key, value.clone());
            break;
        }
        node = mapping
            .entry(key)
            .or_insert_with(|| serde_norway::Value::Mapping(Default::default()));
    }
    serde_norway::from_value(tree).map_err(|e| ConfigError::Yaml {
        path: PathBuf::from(origin),
        message: e.to_string(),
    })
}

/// Everything that determines one run's numbers (besides the data, identified by its hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub model: String,
    /// The model type's implementation version, bumped whenever its numbers change.
    pub model_version: u32,
    /// The model's parameters with every default filled in.
    pub model_params: serde_json::Value,
    pub dataset: String,
    pub seed: u64,
    /// Resolved device ("cpu", "cuda:0"), never "auto".
    pub device: String,
    /// The hardware behind it ("cpu: <CPU model>", "cuda: <GPU model>").
    pub device_kind: String,
    pub train: TrainConfig,
    pub eval: EvalConfig,
    /// The missing-modality condition; absent on complete data (so run ids of complete-data
    /// runs did not change when the study was added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<MissingModality>,
    /// libtorch's intra-op thread count on the CPU: some kernels (attention, GRU reductions)
    /// split their sums by thread, so it can change the numbers and belongs to the run's
    /// identity. Absent on CUDA and in results made before it was recorded (their run ids
    /// stay as they were; `environment.torch_threads` holds it there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_threads: Option<i32>,
}

impl RunConfig {
    /// The key under which [`Self::row_params`] adds the evaluation's candidates.
    pub const CANDIDATES_KEY: &'static str = "candidates";

    /// What names and groups a run's rows in tables: its model parameters, plus
    /// `candidates` when the evaluation ranks among other items than all (it changes the
    /// numbers as much as a parameter does, so such runs are never seeds of one row with others).
    pub fn row_params(&self) -> serde_json::Value {
        let mut params = self.model_params.clone();
        if let (false, Some(map)) = (self.eval.candidates.is_all_items(), params.as_object_mut()) {
            let value = serde_json::to_value(self.eval.candidates).expect("serialisable");
            map.insert(Self::CANDIDATES_KEY.into(), value);
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file() {
        let yaml = "models:\n  - pop\n  - {name: han-gnn, dropout: 0.3}\ndatasets: [synthetic]\nseeds: [1, 2]\ntrain:\n  max_epochs: 5\n";
        let c = ExperimentConfig::from_yaml(yaml, Path::new("m.yaml")).unwrap();
        assert_eq!(c.models[0], ModelSpec::named("pop"));
        assert_eq!(c.models[1].name, "han-gnn");
        assert_eq!(c.models[1].params["dropout"], serde_json::json!(0.3));
        assert_eq!(c.seeds, vec![1, 2]);
        assert_eq!(c.train.max_epochs, 5);
        assert_eq!(c.train.batch_size, 128);
        c.validate().unwrap();
    }

    #[test]
    fn malformed_yaml_names_file_line_and_field() {
        let e = ExperimentConfig::from_yaml(
            "seeds: [1]\ntrain:\n  max_epoch: 5\n",
            Path::new("bad.yaml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("bad.yaml: train: unknown field `max_epoch`"),
            "{e}"
        );
        assert!(e.contains("line 3"), "{e}");
        let e = ExperimentConfig::from_yaml("seeds: [1, x]\n", Path::new("bad.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("seeds[1]") && e.contains("line 1"), "{e}");
        let e = ExperimentConfig::from_yaml("models: [pop\n", Path::new("bad.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("bad.yaml: ") && e.contains("line"), "{e}");
    }

    #[test]
    fn overrides_set_typed_fields_and_reject_unknown_ones() {
        let base = ExperimentConfig {
            models: vec![ModelSpec::named("pop")],
            ..ExperimentConfig::default()
        };
        let c = apply_override(&base, "train.max_epochs=3").unwrap();
        assert_eq!(c.train.max_epochs, 3);
        let c = apply_override(&c, "eval.ks=[1, 20]").unwrap();
        assert_eq!(c.eval.ks, vec![1, 20]);
        let c = apply_override(&c, "model.dropout=0.25").unwrap();
        assert_eq!(c.models[0].params["dropout"], serde_json::json!(0.25));
        let c = apply_override(&c, "model.pop.x=1").unwrap();
        assert_eq!(c.models[0].params["x"], serde_json::json!(1));
        let e = apply_override(&base, "train.max_epoch=3")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--set train.max_epoch=3") && e.contains("unknown field `max_epoch`"),
            "{e}"
        );
        let e = apply_override(&base, "train.max_epochs=many")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("max_epochs") && e.contains("invalid type"),
            "{e}"
        );
        assert!(apply_override(&base, "noequals")
            .unwrap_err()
            .to_string()
            .contains("expected KEY=VALUE"));
    }

    #[test]
    fn model_parameters_are_scoped_by_model() {
        let base = ExperimentConfig {
            models: vec![ModelSpec::named("gcn"), ModelSpec::named("gat")],
            ..ExperimentConfig::default()
        };
        let c = apply_override(&base, "model.gat.heads=2").unwrap();
        assert_eq!(c.models[1].params["heads"], serde_json::json!(2));
        assert!(c.models[0].params.is_empty(), "gcn untouched");
        let e = apply_override(&base, "model.heads=2")
            .unwrap_err()
            .to_string();
        assert!(e.contains("scope the parameter: model.<name>.heads"), "{e}");
        let e = apply_override(&base, "model.sasrec.heads=2")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"sasrec\" is not selected") && e.contains("gcn, gat"),
            "{e}"
        );
        let e = apply_override(&base, "model.a.b.c=1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("model.<name>.<parameter>"), "{e}");
    }

    #[test]
    fn validation_rejects_unusable_settings() {
        let mut c = ExperimentConfig::default();
        c.validate().unwrap();
        c.train.selection_k = 7;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("selection_k = 7"));
        let error = |set: &str| {
            apply_override(&ExperimentConfig::default(), set)
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string()
        };
        for (set, message) in [
            ("synthetic.topics=0", "synthetic.topics = 0 is out of range: it must be between 1 and 4096 (the topic transitions are a topics × topics table)"),
            ("synthetic.items=10", "synthetic.items = 10 is out of range: it must be at least synthetic.topics (25) and at most 1000000 (Amazon's largest 5-core category, Books, has 370,000 items; the generator holds everything in memory)"),
            ("synthetic.item_spread=-1", "synthetic.item_spread = -1 is out of range: it must be a finite number, 0 or more"),
            ("synthetic.missing_share=1.5", "synthetic.missing_share = 1.5 is out of range: it must be between 0 and 1"),
            ("synthetic.codes.links=40", "synthetic.codes.links = 40 is out of range: it must be between 1 and synthetic.codes.clusters (30)"),
            ("train.lr_gamma=-1", "train.lr_gamma = -1 is out of range: it must be a positive number"),
            ("train.patience=0", "train.patience = 0 is out of range: it must be between 1 and 10000 (the limit of train.max_epochs; the official patience is 8)"),
            ("train.batch_size=0", "train.batch_size = 0 is out of range: it must be between 1 and 16384 (the official batch is 128; a batch scores every item at once, [batch, items] floats: 0.8 GB on Beauty at the limit)"),
            ("train.max_epochs=10001", "train.max_epochs = 10001 is out of range: it must be between 1 and 10000 (the official Beauty run stopped after 19 epochs; each epoch is a full pass over the training samples)"),
            ("eval.batch_size=16385", "eval.batch_size = 16385 is out of range: it must be between 1 and 16384 (the official batch is 128; a batch scores every item at once, [batch, items] floats: 0.8 GB on Beauty at the limit)"),
            ("synthetic.users=1000001", "synthetic.users = 1000001 is out of range: it must be between 1 and 1000000 (Amazon's largest 5-core category, Books, has 600,000 users; the generator holds everything in memory)"),
            ("synthetic.items=1000001", "synthetic.items = 1000001 is out of range: it must be at least synthetic.topics (25) and at most 1000000 (Amazon's largest 5-core category, Books, has 370,000 items; the generator holds everything in memory)"),
            ("synthetic.topics=4097", "synthetic.topics = 4097 is out of range: it must be between 1 and 4096 (the topic transitions are a topics × topics table)"),
            ("synthetic.image_dim=4097", "synthetic.image_dim = 4097 is out of range: it must be between 1 and 4096 (the Amazon image features have 4096)"),
            ("synthetic.max_len=10001", "synthetic.max_len = 10001 is out of range: it must be at least synthetic.min_len (5) and at most 10000 (Beauty's longest history has 204 items)"),
            ("synthetic.mean_extra_len=1e9", "synthetic.mean_extra_len = 1000000000 is out of range: it must be a number between 0 and 10000 (the lengths are capped at synthetic.max_len anyway)"),
            ("synthetic.codes.clusters=1001", "synthetic.codes.clusters = 1001 is out of range: it must be between 1 and synthetic.items (1000) (k-means makes at most one cluster per item)"),
            ("synthetic.codes.reduced_dim=5000", "synthetic.codes.reduced_dim = 5000 is out of range: it must be between 1 and 4096 (the official bottleneck is 128)"),
            ("synthetic.codes.kmeans_iterations=10001", "synthetic.codes.kmeans_iterations = 10001 is out of range: it must be between 1 and 10000 (k-means converges in tens)"),
            ("synthetic.codes.autoencoder_max_epochs=10001", "synthetic.codes.autoencoder_max_epochs = 10001 is out of range: it must be at most 10000 (the official autoencoder trains 500)"),
            ("eval.ks=[0, 20]", "eval.ks = [0, 20] is out of range: it must be a non-empty list of cut-offs between 1 and 1000000"),
        ] {
            assert_eq!(error(set), message, "{set}");
        }
        // Products and list lengths.
        let mut c = ExperimentConfig::default();
        c.synthetic.users = 1_000_000;
        c.synthetic.max_len = 51;
        assert_eq!(c.validate().unwrap_err().to_string(), "synthetic.users × max_len = 51000000 is out of range: it must be at most 50000000 (the generated log holds up to that many interactions)");
        let mut c = ExperimentConfig::default();
        c.synthetic.items = 100_000;
        c.synthetic.image_dim = 4096;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("synthetic.items × (image_dim + text_dim) = 414400000 is out of range"));
        let mut c = ExperimentConfig {
            seeds: (0..1001).collect(),
            ..ExperimentConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().to_string(), "seeds = a list of 1001 is out of range: it must be at most 1000 entries (the runs are models × datasets × seeds: more is a typo, not an experiment)");
        c.seeds = (0..1000).collect();
        c.validate().unwrap();
        c.eval.ks = (1..=33).collect();
        c.train.selection_k = 1;
        assert!(c.validate().unwrap_err().to_string().starts_with(
            "eval.ks = a list of 33 cut-offs is out of range: it must be at most 32 cut-offs"
        ));
    }
}
