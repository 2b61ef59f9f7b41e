//! Result files: one JSON document per run, written atomically, named by run id.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Protocol, RunConfig};
use crate::dataset::DatasetCounts;
use crate::eval::MetricSet;
use crate::graph::GraphStats;

use super::env::Environment;

pub const SCHEMA: &str = "mmsr-bench-result";
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub name: String,
    pub content_hash: String,
    pub source: String,
    pub counts: DatasetCounts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub learning_rate: f64,
    /// Mean cross-entropy over the epoch's batches.
    pub train_loss: f64,
    pub train_seconds: f64,
    pub validation_seconds: f64,
    pub validation: MetricSet,
    /// Only under the official protocol, which evaluates test after every epoch.
    pub test: Option<MetricSet>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Timings {
    pub load_data_seconds: f64,
    /// Building the split graphs (once per dataset and process; shared by later runs).
    pub build_graphs_seconds: f64,
    pub build_model_seconds: f64,
    pub train_seconds: f64,
    pub validation_seconds: f64,
    pub test_seconds: f64,
    pub total_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub schema: String,
    pub schema_version: u32,
    pub run_id: String,
    pub config: RunConfig,
    pub dataset: DatasetInfo,
    pub num_parameters: usize,
    pub protocol: Protocol,
    /// Epoch chosen on validation (None for models that are not trained).
    pub selected_epoch: Option<usize>,
    pub epochs_run: usize,
    /// Validation metrics at the selected epoch.
    pub validation: MetricSet,
    /// Test metrics, evaluated once at the selected epoch: the headline numbers.
    pub test: MetricSet,
    /// `--protocol validation-with-test-curve` only: for each metric separately, its best value over all epochs ON
    /// THE TEST SET, as the original code reports. Optimistic; never a model-selection result.
    pub official_best_over_epochs_on_test: Option<MetricSet>,
    pub learning_curve: Vec<EpochRecord>,
    /// Size distribution of the training graphs (graph models only).
    pub graph_stats: Option<GraphStats>,
    pub timings: Timings,
    pub peak_rss_bytes: Option<u64>,
    pub environment: Environment,
    pub created_at: String,
}

/// (modality, "present" | "stand-in" | "codes only" | "absent") as a dataset's source text
/// (`PreparedDataset::description`, kept in every result) records them; empty when the text
/// lists no modalities (the synthetic generator's, or results older than the listing).
pub fn modality_labels(source: &str) -> Vec<(&'static str, &'static str)> {
    let Some(at) = source.rfind("modalities: ") else {
        return Vec::new();
    };
    let rest = &source[at + "modalities: ".len()..];
    let parts: Vec<&str> = rest.split("; ").collect();
    ["image", "text"]
        .into_iter()
        .map(|m| {
            let part = parts.iter().find(|p| p.starts_with(&format!("{m} = ")));
            let state = match part {
                None if rest.starts_with("codes only") => "codes only",
                None => "absent",
                Some(p) if p.contains("STAND-IN") => "stand-in",
                Some(_) => "present",
            };
            (m, state)
        })
        .collect()
}

/// "image stand-in, text present": the labels of [`modality_labels`] in words, for the tables
/// where a number appears; `None` when the source lists no modalities.
pub fn modality_note(source: &str) -> Option<String> {
    let labels = modality_labels(source);
    (!labels.is_empty()).then(|| {
        labels
            .iter()
            .map(|(m, state)| format!("{m} {state}"))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// Run id: hash of the data's content hash and the resolved run config (which holds the model,
/// its implementation version and parameters, the seed, the device and the hardware kind), so
/// equal ids mean equal experiments.
pub fn run_id(content_hash: &str, config: &RunConfig) -> String {
    let config_json = serde_json::to_string(config).expect("serialisable config");
    let digest = Sha256::digest(format!("{content_hash}\n{config_json}").as_bytes());
    hex::encode(&digest[..8])
}

/// The longest dataset or model name accepted as a file-name component (bytes).
pub const MAX_NAME_BYTES: usize = 128;

/// What [`file_name_component`] accepts, in words (for messages).
pub const NAME_RULE: &str = "a name safe as a file-name component: 1 to 128 bytes of ASCII letters, digits and - _ . @ : + =, not starting with '.', no '..'";

/// Whether `name` (a dataset or model name, e.g. from a submitted result file) is safe as one
/// component of a file name: 1 to [`MAX_NAME_BYTES`] bytes of ASCII letters, digits and
/// `- _ . @ : + =`, not starting with `.` (so never `.` or a hidden name), without `..`. Path
/// separators, NUL, control characters, spaces, quotes and everything else are refused. Every
/// name this tool writes passes (`synthetic`, `official`, `beauty-offline@2000x500:7`,
/// `han-gnn-no-homo`); `Err` says why a name does not, without echoing it.
pub fn file_name_component(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "it has {} bytes (at most {MAX_NAME_BYTES})",
            name.len()
        ));
    }
    match name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "-_.@:+=".contains(c)))
    {
        Some(c @ ('/' | '\\')) => Err(format!("it holds a path separator {c:?}")),
        Some('\0') => Err("it holds a NUL".into()),
        Some(c) if c.is_control() => Err(format!("it holds a control character {c:?}")),
        Some(c) => Err(format!("it holds {c:?}")),
        None if name.starts_with('.') => Err("it starts with '.'".into()),
        None if name.contains("..") => Err("it holds '..'".into()),
        None => Ok(()),
    }
}

/// The fields of a result that name files and folders (`<dataset>/<model>/...`, plots named by
/// dataset), each to pass [`file_name_component`] before any path is made from it.
pub fn path_name_fields(r: &RunResult) -> [(&'static str, &str); 3] {
    [
        ("config.dataset", r.config.dataset.as_str()),
        ("config.model", r.config.model.as_str()),
        ("dataset.name", r.dataset.name.as_str()),
    ]
}

/// `<results>/runs/<dataset>/<model>/seed<seed>-<run id>.json`. The names come from the
/// dataset and model registries when a run writes its file; a name read from a file must pass
/// [`file_name_component`] first (`check` and `leaderboard` refuse any that does not).
pub fn result_path(results_dir: &Path, config: &RunConfig, run_id: &str) -> PathBuf {
    results_dir
        .join("runs")
        .join(&config.dataset)
        .join(&config.model)
        .join(format!("seed{}-{run_id}.json", config.seed))
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader (or an interrupted run) never sees a partial file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    let name = crate::faults::name(path);
    let (first, rest) = bytes.split_at(bytes.len() / 2);
    tmp.write_all(first)?;
    crate::faults::point(|| format!("{name}: half written"));
    tmp.write_all(rest)?;
    tmp.as_file().sync_all()?;
    crate::faults::point(|| format!("{name}: written, not yet renamed"));
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    crate::faults::point(|| format!("{name}: in place"));
    Ok(())
}

impl RunResult {
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        write_atomically(path, &json)
    }

    /// Reads a result file; a file that does not parse or has another schema or version is an
    /// error that says so (the version is checked before the fields, so a newer format is
    /// reported as a version, not as a confusing field error).
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a JSON result file", path.display()))?;
        let schema = value["schema"].as_str().unwrap_or("(none)");
        anyhow::ensure!(
            schema == SCHEMA,
            "{}: schema {schema:?} is not an mmsr-bench result ({SCHEMA:?})",
            path.display()
        );
        let version = value["schema_version"].as_u64();
        anyhow::ensure!(
            version == Some(u64::from(SCHEMA_VERSION)),
            "{}: result schema version {} is not readable by this build, which reads version {SCHEMA_VERSION} (leaderboard/schema/ has every version's schema); use the mmsr-bench release that wrote it, or re-run",
            path.display(),
            version.map_or("(missing)".to_string(), |v| v.to_string())
        );
        serde_json::from_value(value).with_context(|| {
            format!(
                "{} is not a valid result file (schema version {SCHEMA_VERSION})",
                path.display()
            )
        })
    }
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_components_accept_every_real_name_and_refuse_paths() {
        for name in [
            "synthetic",
            "official",
            "beauty-offline",
            "beauty-offline@500x500",
            "beauty-offline@2000x500:7",
            "han-gnn-no-homo",
            "kv-attention-fixed",
            "sasrec_v2",
            "a.b",
            "x=1+y",
            &"x".repeat(MAX_NAME_BYTES),
        ] {
            assert_eq!(file_name_component(name), Ok(()), "{name}");
        }
        for (name, why) in [
            ("", "empty"),
            ("../x", "path separator '/'"),
            ("..", "starts with '.'"),
            ("a..b", "holds '..'"),
            (".", "starts with '.'"),
            (".hidden", "starts with '.'"),
            ("a/../../b", "path separator '/'"),
            ("a\\b", "path separator '\\\\'"),
            ("/etc", "path separator '/'"),
            ("a\0b", "NUL"),
            ("a\nb", "control character '\\n'"),
            ("a\u{1b}[31m", "control character '\\u{1b}'"),
            ("a b", "holds ' '"),
            ("a*b", "holds '*'"),
            ("bé", "holds 'é'"),
        ] {
            let e = file_name_component(name).unwrap_err();
            assert!(e.contains(why), "{name:?}: {e}");
        }
        let long = "y".repeat(MAX_NAME_BYTES + 1);
        assert!(file_name_component(&long)
            .unwrap_err()
            .contains("129 bytes"));
        // The reason never echoes the name.
        let huge = "z".repeat(1 << 20);
        assert!(file_name_component(&huge).unwrap_err().len() < 100);
    }

    #[test]
    fn modality_notes_name_stand_ins_absences_and_code_only_folders() {
        let beauty = "sequence file x; modalities: image = STAND-IN for image features (none offline): categories; text = title of Amazon_Beauty.item";
        assert_eq!(
            modality_note(beauty).as_deref(),
            Some("image stand-in, text present")
        );
        assert_eq!(
            modality_note("x; modalities: none (graph models run on the item sub-graph)")
                .as_deref(),
            Some("image absent, text absent")
        );
        assert_eq!(
            modality_note(
                "official folder; modalities: codes only (2 code books, no feature vectors)"
            )
            .as_deref(),
            Some("image codes only, text codes only")
        );
        assert_eq!(modality_note("sequence file x"), None);
    }
}
