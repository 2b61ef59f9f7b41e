//! The training loop (spec §6): Adam, StepLR, shuffled mini-batches, validation after every
//! epoch, patience on the validation selection metric, the best epoch's weights restored, and the
//! test set evaluated once at that epoch. The trainer never knows which model it trains.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{nn, nn::OptimizerConfig, Device, Tensor};

use crate::config::{EvalConfig, Protocol, TrainConfig};
use crate::eval::MetricSet;
use crate::model::Recommender;
use crate::record::result::EpochRecord;

use super::batching::BatchSource;
use super::early_stopping::EarlyStopping;
use super::evaluation::evaluate;

/// The three splits of one dataset, as batch sources.
pub struct SplitSources<'a> {
    pub train: BatchSource<'a>,
    pub valid: BatchSource<'a>,
    pub test: BatchSource<'a>,
}

pub struct TrainOptions<'a> {
    pub train: &'a TrainConfig,
    pub eval: &'a EvalConfig,
    pub seed: u64,
    pub device: Device,
    /// Per-epoch progress bar and summary lines on stderr.
    pub verbose: bool,
}

#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub selected_epoch: Option<usize>,
    pub epochs_run: usize,
    pub validation: MetricSet,
    pub test: MetricSet,
    pub official_best_over_epochs_on_test: Option<MetricSet>,
    pub curve: Vec<EpochRecord>,
    pub train_seconds: f64,
    pub validation_seconds: f64,
    pub test_seconds: f64,
}

/// Seeds torch's generators (initialisation, dropout); call before building the model.
pub fn seed_torch(seed: u64) {
    tch::manual_seed(seed as i64);
}

/// The shuffling stream of a run, derived from its seed but independent of torch's generator.
pub fn shuffle_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5eed_5eed_5eed)
}

/// Waits for queued CUDA work, so that a clock read afterwards measures it.
pub fn synchronize(device: Device) {
    if let Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
}

fn timed<T>(device: Device, f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let value = f();
    synchronize(device);
    (value, start.elapsed().as_secs_f64())
}

/// Deep copies of every variable, to restore the best epoch later.
fn snapshot(vs: &nn::VarStore) -> HashMap<String, Tensor> {
    tch::no_grad(|| {
        vs.variables()
            .into_iter()
            .map(|(name, t)| (name, t.detach().copy()))
            .collect()
    })
}

fn restore(vs: &nn::VarStore, saved: &HashMap<String, Tensor>) {
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            t.copy_(&saved[&name]);
        }
    });
}

/// Per metric and cut-off, the best value over epochs (the official reporting, spec §6.4).
fn elementwise_best(sets: &[&MetricSet]) -> Option<MetricSet> {
    let mut best = (*sets.first()?).clone();
    for set in &sets[1..] {
        for (b, s) in best.at.iter_mut().zip(&set.at) {
            b.hr = b.hr.max(s.hr);
            b.ndcg = b.ndcg.max(s.ndcg);
            b.mrr = b.mrr.max(s.mrr);
            b.ndcg_official = b.ndcg_official.max(s.ndcg_official);
        }
    }
    Some(best)
}

fn progress_bar(verbose: bool, len: usize, epoch: usize) -> ProgressBar {
    if !verbose {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "epoch {prefix:>3} [{bar:30}] {pos}/{len} batches {msg} ({elapsed})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(epoch.to_string());
    bar
}

/// Trains `model` (if `vs` holds trainable parameters) and evaluates it under the configured
/// protocol. `vs` is the var store the model was built in.
pub fn train_and_evaluate(
    model: &dyn Recommender,
    vs: &nn::VarStore,
    data: &SplitSources,
    options: &TrainOptions,
) -> Result<TrainOutcome> {
    let (train_cfg, eval_cfg) = (options.train, options.eval);
    let ks = &eval_cfg.ks;
    let eval_batch = eval_cfg.batch_size;
    if vs.trainable_variables().is_empty() {
        // Fitted when built: one evaluation of each split.
        let (validation, validation_seconds) = timed(options.device, || {
            evaluate(model, &data.valid, ks, eval_batch)
        });
        let (test, test_seconds) = timed(options.device, || {
            evaluate(model, &data.test, ks, eval_batch)
        });
        return Ok(TrainOutcome {
            selected_epoch: None,
            epochs_run: 0,
            validation: validation?,
            test: test?,
            official_best_over_epochs_on_test: None,
            curve: Vec::new(),
            train_seconds: 0.0,
            validation_seconds,
            test_seconds,
        });
    }
    anyhow::ensure!(!data.train.is_empty(), "no training samples");
    anyhow::ensure!(
        !data.valid.is_empty(),
        "no validation samples: model selection needs them"
    );

    let mut rng = shuffle_rng(options.seed);
    let mut optimizer = nn::Adam {
        wd: train_cfg.weight_decay,
        ..nn::Adam::default()
    }
    .build(vs, train_cfg.learning_rate)
    .context("creating the Adam optimiser")?;
    let mut stopping = EarlyStopping::new(train_cfg.patience);
    let mut best_weights = None;
    let mut curve = Vec::new();
    let mut test_per_epoch = Vec::new();
    let (mut train_seconds, mut validation_seconds, mut test_seconds) = (0.0, 0.0, 0.0);
    let mut order: Vec<usize> = (0..data.train.len()).collect();

    for epoch in 0..train_cfg.max_epochs {
        // StepLR stepped after every epoch, as officially: rate = base * gamma^(epoch / step).
        let learning_rate = train_cfg.learning_rate
            * train_cfg
                .lr_gamma
                .powi((epoch / train_cfg.lr_step.max(1)) as i32);
        optimizer.set_lr(learning_rate);
        order.shuffle(&mut rng);
        let batches = order.len().div_ceil(train_cfg.batch_size);
        let bar = progress_bar(options.verbose, batches, epoch);
        let (loss_sum, epoch_train_seconds) = timed(options.device, || {
            let mut loss_sum = 0.0;
            for (i, chunk) in order.chunks(train_cfg.batch_size).enumerate() {
                let batch = data.train.batch(chunk);
                let loss = model.loss(&batch);
                optimizer.backward_step(&loss);
                loss_sum += loss.double_value(&[]);
                bar.inc(1);
                crate::faults::point(|| format!("epoch {epoch}: batch {i} trained"));
                if i % 20 == 0 {
                    bar.set_message(format!("loss {:.4}", loss_sum / (i + 1) as f64));
                }
            }
            loss_sum
        });
        bar.finish_and_clear();
        let train_loss = loss_sum / batches as f64;
        anyhow::ensure!(
            train_loss.is_finite(),
            "training loss became {train_loss} in epoch {epoch}; the run diverged"
        );
        train_seconds += epoch_train_seconds;

        let (validation, seconds) = timed(options.device, || {
            evaluate(model, &data.valid, ks, eval_batch)
        });
        let validation = validation?;
        validation_seconds += seconds;
        let test = if train_cfg.protocol == Protocol::ValidationWithTestCurve {
            let (test, seconds) = timed(options.device, || {
                evaluate(model, &data.test, ks, eval_batch)
            });
            test_seconds += seconds;
            Some(test?)
        } else {
            None
        };
        let criterion = validation
            .get(train_cfg.selection_metric, train_cfg.selection_k)
            .context("the selection cut-off is not among the evaluated ones")?;
        let step = stopping.step(epoch, criterion);
        if step.improved {
            best_weights = Some(snapshot(vs));
        }
        if options.verbose {
            eprintln!(
                "epoch {epoch:>3}: loss {train_loss:.4}, valid {}@{} {:.4}{} ({epoch_train_seconds:.1} s train, {seconds:.1} s valid)",
                train_cfg.selection_metric.label(),
                train_cfg.selection_k,
                criterion,
                if step.improved { " *" } else { "" },
            );
        }
        test_per_epoch.extend(test.clone());
        curve.push(EpochRecord {
            epoch,
            learning_rate,
            train_loss,
            train_seconds: epoch_train_seconds,
            validation_seconds: seconds,
            validation,
            test,
        });
        if step.stop {
            break;
        }
    }

    let selected = stopping
        .best_epoch()
        .context("no epoch was run (max_epochs = 0)")?;
    if let Some(weights) = &best_weights {
        restore(vs, weights);
    }
    let (test, seconds) = timed(options.device, || {
        evaluate(model, &data.test, ks, eval_batch)
    });
    test_seconds += seconds;
    Ok(TrainOutcome {
        selected_epoch: Some(selected),
        epochs_run: curve.len(),
        validation: curve[selected].validation.clone(),
        test: test?,
        official_best_over_epochs_on_test: elementwise_best(
            &test_per_epoch.iter().collect::<Vec<_>>(),
        ),
        curve,
        train_seconds,
        validation_seconds,
        test_seconds,
    })
}
