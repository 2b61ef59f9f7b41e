//! The training loop (spec §6): Adam, StepLR, shuffled mini-batches, validation after every
//! epoch, patience on the validation selection metric, the best epoch's weights restored, and the
//! test set evaluated once at that epoch. Under `--protocol official` (a reproduction mode) there
//! is no validation: test after every epoch, the official stopping rule, per-metric best values.
//! The trainer never knows which model it trains.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{nn, Device, Tensor};

use crate::config::{EvalConfig, Protocol, TrainConfig};
use crate::device::probe::{TrimOnGrowth, TrimRunaway};
use crate::eval::MetricSet;
use crate::model::{EpochSamples, Recommender};
use crate::optim::Adam;
use crate::record::result::EpochRecord;

use super::batching::BatchSource;
use super::early_stopping::{AnyMetricStopping, EarlyStopping};
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
    let official = train_cfg.protocol == Protocol::Official;
    if vs.trainable_variables().is_empty() {
        // Fitted when built: one evaluation of each split (no validation under `official`).
        let (validation, validation_seconds) = timed(options.device, || {
            if official {
                Ok(MetricSet::empty())
            } else {
                evaluate(model, &data.valid, ks, eval_batch)
            }
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
        official || !data.valid.is_empty(),
        "no validation samples: model selection needs them"
    );
    if official {
        return train_officially(model, vs, data, options);
    }

    let mut epochs = EpochTrainer::new(model, vs, data, options)?;
    let mut stopping = EarlyStopping::new(train_cfg.patience);
    let mut best_weights = None;
    let mut curve = Vec::new();
    let mut test_per_epoch = Vec::new();
    let (mut validation_seconds, mut test_seconds) = (0.0, 0.0);

    for epoch in 0..train_cfg.max_epochs {
        let trained = epochs.train_one(model, epoch)?;
        let (validation, seconds) = timed(options.device, || {
            evaluate(model, &data.valid, ks, eval_batch)
        });
        let validation = validation?;
        validation_seconds += seconds;
        let test = if train_cfg.protocol.has_test_curve() {
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
                "epoch {epoch:>3}: loss {:.4}, valid {}@{} {:.4}{} ({:.1} s train, {seconds:.1} s valid)",
                trained.loss,
                train_cfg.selection_metric.label(),
                train_cfg.selection_k,
                criterion,
                if step.improved { " *" } else { "" },
                trained.seconds,
            );
        }
        test_per_epoch.extend(test.clone());
        curve.push(EpochRecord {
            epoch,
            learning_rate: trained.learning_rate,
            train_loss: trained.loss,
            train_seconds: trained.seconds,
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
        train_seconds: epochs.train_seconds,
        validation_seconds,
        test_seconds,
    })
}

/// One epoch's training as the curve records it.
struct TrainedEpoch {
    learning_rate: f64,
    loss: f64,
    seconds: f64,
}

/// Adam, StepLR and the seeded shuffling over the training split: what both protocols share.
struct EpochTrainer<'a, 'b> {
    optimizer: Adam,
    rng: ChaCha8Rng,
    order: Vec<usize>,
    train: &'a BatchSource<'b>,
    options: &'a TrainOptions<'a>,
    train_seconds: f64,
    trim: TrimOnGrowth,
    runaway: TrimRunaway,
}

/// Resident growth over an epoch past which its freed batches go back to the system before
/// the evaluation passes (docs/performance.md).
const TRIM_AFTER_GROWTH: u64 = 256 << 20;

/// Resident growth during an epoch, above its working set, past which the free heap goes back
/// to the system: above HAN-GNN's creep (about 0.3 GB a Beauty epoch, so it is never trimmed),
/// far below `hgt`'s (3-4 GB); each trim costs faulting the working set in again
/// (docs/performance.md).
const TRIM_RUNAWAY: u64 = 512 << 20;

/// Training batches between two runaway checks (a check reads `/proc/self/status`).
const RUNAWAY_CHECK_BATCHES: usize = 25;

impl<'a, 'b> EpochTrainer<'a, 'b> {
    fn new(
        model: &dyn Recommender,
        vs: &nn::VarStore,
        data: &'a SplitSources<'b>,
        options: &'a TrainOptions<'a>,
    ) -> Result<Self> {
        let optimizer = Adam::new(vs, options.train.learning_rate, options.train.weight_decay);
        Ok(Self {
            optimizer,
            rng: shuffle_rng(options.seed),
            order: match model.epoch_samples() {
                EpochSamples::All => (0..data.train.len()).collect(),
                EpochSamples::LongestPerUser => data.train.samples().longest_input_per_user(),
            },
            train: &data.train,
            options,
            train_seconds: 0.0,
            trim: TrimOnGrowth::new(TRIM_AFTER_GROWTH),
            runaway: TrimRunaway::new(TRIM_RUNAWAY),
        })
    }

    fn train_one(&mut self, model: &dyn Recommender, epoch: usize) -> Result<TrainedEpoch> {
        let cfg = self.options.train;
        // StepLR stepped after every epoch, as officially: rate = base * gamma^(epoch / step).
        let learning_rate =
            cfg.learning_rate * cfg.lr_gamma.powi((epoch / cfg.lr_step.max(1)) as i32);
        self.optimizer.set_lr(learning_rate);
        self.order.shuffle(&mut self.rng);
        let batches = self.order.len().div_ceil(cfg.batch_size);
        let bar = progress_bar(self.options.verbose, batches, epoch);
        let (optimizer, order, train) = (&mut self.optimizer, &self.order, self.train);
        let runaway = &mut self.runaway;
        let (loss_sum, seconds) = timed(self.options.device, || {
            let mut loss_sum = 0.0;
            for (i, chunk) in order.chunks(cfg.batch_size).enumerate() {
                let batch = train.batch(chunk);
                let loss = model.loss(&batch);
                optimizer.backward_step(&loss);
                loss_sum += loss.double_value(&[]);
                bar.inc(1);
                crate::faults::point(|| format!("epoch {epoch}: batch {i} trained"));
                if i % 20 == 0 {
                    bar.set_message(format!("loss {:.4}", loss_sum / (i + 1) as f64));
                }
                // glibc may keep freed batches without reusing them: a Beauty epoch of `hgt`
                // ended with 3-4 GB resident, 0.6 GB of it in use.
                if (i + 1) % RUNAWAY_CHECK_BATCHES == 0 {
                    runaway.check();
                }
            }
            loss_sum
        });
        bar.finish_and_clear();
        // The evaluation passes' batches of other sizes would otherwise grow the heap on top of
        // the epoch's freed batches (0.1 GB on a Beauty epoch of HAN-GNN); a small epoch is
        // left alone, as faulting its pages in again would cost more than it saves.
        self.trim.check();
        let loss = loss_sum / batches as f64;
        anyhow::ensure!(
            loss.is_finite(),
            "training loss became {loss} in epoch {epoch}; the run diverged"
        );
        self.train_seconds += seconds;
        Ok(TrainedEpoch {
            learning_rate,
            loss,
            seconds,
        })
    }
}

/// `--protocol official` (spec §6.2-6.4): every training sample trains (the caller merged the
/// validation samples in), test after every epoch, the any-of-six stopping rule, and per metric
/// its best value over epochs. `test` is the last epoch's; nothing is selected or restored.
fn train_officially(
    model: &dyn Recommender,
    vs: &nn::VarStore,
    data: &SplitSources,
    options: &TrainOptions,
) -> Result<TrainOutcome> {
    let (train_cfg, eval_cfg) = (options.train, options.eval);
    let mut epochs = EpochTrainer::new(model, vs, data, options)?;
    let mut stopping = AnyMetricStopping::new(train_cfg.patience);
    let mut curve: Vec<EpochRecord> = Vec::new();
    let mut test_seconds = 0.0;
    for epoch in 0..train_cfg.max_epochs {
        let trained = epochs.train_one(model, epoch)?;
        let (test, seconds) = timed(options.device, || {
            evaluate(model, &data.test, &eval_cfg.ks, eval_cfg.batch_size)
        });
        let test = test?;
        test_seconds += seconds;
        let step = stopping.step(epoch, &test).context(
            "protocol official watches HR, MRR and NDCG at 5 and 20: add both to eval.ks",
        )?;
        if options.verbose {
            eprintln!(
                "epoch {epoch:>3}: loss {:.4}, test HR@20 {:.4}, NDCG@20 {:.4}{} ({:.1} s train, {seconds:.1} s test)",
                trained.loss,
                test.get(crate::eval::Metric::Hr, 20).unwrap_or(f64::NAN),
                test.get(crate::eval::Metric::Ndcg, 20).unwrap_or(f64::NAN),
                if step.improved { " *" } else { "" },
                trained.seconds,
            );
        }
        curve.push(EpochRecord {
            epoch,
            learning_rate: trained.learning_rate,
            train_loss: trained.loss,
            train_seconds: trained.seconds,
            validation_seconds: 0.0,
            validation: MetricSet::empty(),
            test: Some(test),
        });
        if step.stop {
            break;
        }
    }
    let tests: Vec<&MetricSet> = curve.iter().filter_map(|e| e.test.as_ref()).collect();
    let best = elementwise_best(&tests).context("no epoch was run (max_epochs = 0)")?;
    Ok(TrainOutcome {
        selected_epoch: None,
        epochs_run: curve.len(),
        validation: MetricSet::empty(),
        test: (*tests.last().expect("a best implies an epoch")).clone(),
        official_best_over_epochs_on_test: Some(best),
        train_seconds: epochs.train_seconds,
        validation_seconds: 0.0,
        test_seconds,
        curve,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::SampleSet;
    use crate::model::{Batch, EpochSamples, InputKind};

    /// A model that only says which samples it trains on.
    struct Samples(EpochSamples);

    impl Recommender for Samples {
        fn scores(&self, batch: &Batch, _train: bool) -> Tensor {
            Tensor::zeros([batch.size as i64, 3], (tch::Kind::Float, Device::Cpu))
        }

        fn epoch_samples(&self) -> EpochSamples {
            self.0
        }
    }

    /// An epoch visits every sample, or each user's longest input once when the model asks.
    #[test]
    fn an_epoch_visits_the_samples_the_model_asks_for() {
        let mut train = SampleSet::new();
        for (user, input, target) in [(1, &[1][..], 2), (1, &[1, 2], 3), (2, &[3], 1)] {
            train.push(user, input, target);
        }
        let empty = SampleSet::new();
        let source = |s| BatchSource::new(s, None, InputKind::Sequence, Device::Cpu);
        let data = SplitSources {
            train: source(&train),
            valid: source(&empty),
            test: source(&empty),
        };
        let (train_config, eval_config) = (TrainConfig::default(), EvalConfig::default());
        let options = TrainOptions {
            train: &train_config,
            eval: &eval_config,
            seed: 1,
            device: Device::Cpu,
            verbose: false,
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = vs.root().zeros("w", &[1]);
        let order = |samples| {
            let mut order = EpochTrainer::new(&Samples(samples), &vs, &data, &options)
                .unwrap()
                .order;
            order.sort();
            order
        };
        assert_eq!(order(EpochSamples::All), [0, 1, 2]);
        assert_eq!(order(EpochSamples::LongestPerUser), [1, 2]);
    }
}
