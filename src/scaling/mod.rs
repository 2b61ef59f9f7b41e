//! The scaling study of the O(2L|U||E|) claim (spec §9): one factor at a time, every
//! configured graph model (dense and sparse where both exist) timed for one training epoch and
//! one inference pass at each point, then log–log fits of time against |U|, Σ|E| and Σn.
//! `config` says what varies, `variant` builds each point's data and graphs, `measure` times a
//! model there, `fit` fits exponents; `analysis` turns measurements into the verdict and `report`
//! writes it (tables and plots).

pub mod analysis;
pub mod config;
pub mod fit;
pub mod measure;
pub mod products;
pub mod report;
pub mod variant;

use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tch::Device;

use crate::dataset::PreparedDataset;
use crate::model::InputKind;
use crate::record::Environment;
pub use analysis::Analysis;
pub use config::{Factor, ScalingConfig, ScalingPoint};
use measure::{measure, resolve_at, Contestant, MeasureOptions, Measurement};
use variant::{build_variant, user_order, GraphKey, Needs, Variant};

/// A point a model could not take (a missing parameter, a failure), and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub model: String,
    pub dense: bool,
    pub factor: Factor,
    pub value: f64,
    pub reason: String,
}

/// Everything a study measured, as written to `scaling.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Study {
    pub schema: String,
    pub config: ScalingConfig,
    pub dataset: String,
    /// Users the shares apply to (after `base_users`), and all training users of the dataset.
    pub base_users: usize,
    pub dataset_users: usize,
    pub dataset_train_samples: usize,
    pub environment: Environment,
    pub measurements: Vec<Measurement>,
    pub skipped: Vec<Skipped>,
    pub analysis: Analysis,
    pub total_seconds: f64,
    pub created_at: String,
}

/// The contestants of a factor: every model (and dense twin) on |U| and K, the detail models on
/// the others.
pub fn contestants(config: &ScalingConfig, factor: Factor) -> Vec<Contestant> {
    config
        .models
        .iter()
        .filter(|m| factor.runs_every_model() || config.detail_models.contains(m))
        .flat_map(|m| {
            let twin = config.dense.contains(m).then(|| Contestant {
                model: m.clone(),
                dense: true,
            });
            [
                Some(Contestant {
                    model: m.clone(),
                    dense: false,
                }),
                twin,
            ]
        })
        .flatten()
        .collect()
}

/// What the variants must hold for these models (the default point's kinds).
fn needs(config: &ScalingConfig) -> Result<Needs> {
    let mut needs = Needs::default();
    for factor in Factor::ALL {
        for contestant in contestants(config, factor) {
            if let Ok(resolved) = resolve_at(&contestant, &config.defaults, None) {
                if let InputKind::Graph(input) = resolved.kind {
                    needs.with_codes |= input.codes;
                    needs.items_only |= !input.codes;
                    needs.structure |= input.structure;
                }
            } else {
                resolve_at(&contestant, &config.defaults, None)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("scaling model {}", contestant.label()))?;
            }
        }
    }
    Ok(needs)
}

/// Checks a study file before any data is loaded: ranges, and that every model is a
/// registered graph model that takes the default point.
pub fn check(config: &ScalingConfig) -> Result<()> {
    config.validate()?;
    needs(config).map(|_| ())
}

pub struct StudyOptions {
    pub device: Device,
    pub eval_batch: usize,
    pub verbose: bool,
}

/// Runs the study on a loaded dataset. Points shared by several factors (the defaults) are
/// measured once per model and reported under each factor.
pub fn run_study(
    config: &ScalingConfig,
    data: &PreparedDataset,
    options: &StudyOptions,
) -> Result<Study> {
    config.validate()?;
    let start = Instant::now();
    let needs = needs(config)?;
    let order = user_order(&data.splits.train, config.base_users, config.seed);
    let all_users = user_order(&data.splits.train, None, config.seed).len();
    let centre_dim = data.codes.as_ref().and_then(|c| {
        [&c.image, &c.text]
            .into_iter()
            .flatten()
            .map(|b| b.centre_dim)
            .find(|&d| d > 0)
    });
    let measure_options = MeasureOptions {
        seed: config.seed,
        device: options.device,
        eval_batch: options.eval_batch,
        learning_rate: 1e-3,
    };
    // The default point's variant is kept; other variants live while their factor runs.
    let default_key = GraphKey::of(&config.defaults);
    let mut default_variant: Option<Variant> = None;
    let mut measured: Vec<Measurement> = Vec::new();
    let mut skipped = Vec::new();
    let mut study_measurements = Vec::new();
    // Whole rounds, so that a point's repeats are separated by every other measurement.
    for repeat in 0..config.repeats {
        for factor in Factor::ALL {
            let mut current: Option<Variant> = None;
            for value in config.factors.values(factor) {
                let point = factor.apply(config.defaults, value);
                let key = GraphKey::of(&point);
                let variant = if key == default_key {
                    if default_variant.is_none() {
                        default_variant = Some(build(data, &order, key, config, needs)?);
                    }
                    default_variant.as_ref().expect("just built")
                } else {
                    if current.as_ref().is_none_or(|v| v.key != key) {
                        drop(current.take()); // free the previous variant first
                        current = Some(build(data, &order, key, config, needs)?);
                    }
                    current.as_ref().expect("just built")
                };
                for contestant in contestants(config, factor) {
                    let label = contestant.label();
                    if let Some(done) = measured.iter().find(|m| {
                        m.contestant() == contestant && m.point == point && m.repeat == repeat
                    }) {
                        study_measurements.push(Measurement {
                            factor,
                            value,
                            ..done.clone()
                        });
                        continue;
                    }
                    let outcome =
                        resolve_at(&contestant, &point, centre_dim).and_then(|resolved| {
                            measure(
                                &contestant,
                                &resolved,
                                factor,
                                value,
                                &point,
                                variant,
                                &measure_options,
                            )
                        });
                    match outcome.map(|m| Measurement { repeat, ..m }) {
                        Ok(m) => {
                            if options.verbose {
                                eprintln!(
                                "round {}: {factor} = {value}: {label}: {} graphs, Σ|E| {}, {:.2} s train ({:.1} ms/batch), {:.0} ms per 1000 inferred",
                                repeat + 1,
                                m.train_graphs,
                                m.total_edges,
                                m.train_seconds,
                                m.seconds_per_batch() * 1e3,
                                m.inference_seconds_per_1000 * 1e3
                            );
                            }
                            measured.push(m.clone());
                            study_measurements.push(m);
                        }
                        Err(_) if repeat > 0 => {} // said in the first round
                        Err(reason) => {
                            if options.verbose {
                                eprintln!("{factor} = {value}: {label}: skipped ({reason})");
                            }
                            skipped.push(Skipped {
                                model: contestant.model.clone(),
                                dense: contestant.dense,
                                factor,
                                value,
                                reason,
                            });
                        }
                    }
                }
            }
        }
    }
    let analysis = analysis::analyse(&study_measurements);
    Ok(Study {
        schema: "mmsr-bench-scaling".to_string(),
        config: config.clone(),
        dataset: data.name.clone(),
        base_users: order.len(),
        dataset_users: all_users,
        dataset_train_samples: data.splits.train.len(),
        environment: Environment::capture(options.device),
        measurements: study_measurements,
        skipped,
        analysis,
        total_seconds: start.elapsed().as_secs_f64(),
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    })
}

fn build(
    data: &PreparedDataset,
    order: &[u32],
    key: GraphKey,
    config: &ScalingConfig,
    needs: Needs,
) -> Result<Variant> {
    build_variant(
        data,
        order,
        key,
        config.inference_samples,
        config.kmeans_iterations,
        needs,
    )
    .with_context(|| {
        format!(
            "building the scaling point users {} K {} C {} m {}",
            key.users, key.links, key.clusters, key.max_len
        )
    })
}
