//! Patience rule of the official code (spec §6.3): applied to the validation selection metric
//! ([`EarlyStopping`]) or, under `--protocol official`, to the six test metrics the official code
//! watches ([`AnyMetricStopping`]).

use crate::eval::{Metric, MetricSet};

/// After each epoch: an epoch "improves" if the metric beats the best so far. The counter grows
/// only when neither this nor the previous epoch improved, and resets otherwise; training stops
/// when it reaches `patience`, i.e. `patience + 1` epochs after the last improvement.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    patience: usize,
    best: Option<f64>,
    best_epoch: Option<usize>,
    previous_improved: bool,
    counter: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepOutcome {
    pub improved: bool,
    pub stop: bool,
}

impl EarlyStopping {
    pub fn new(patience: usize) -> Self {
        Self {
            patience,
            best: None,
            best_epoch: None,
            previous_improved: false,
            counter: 0,
        }
    }

    pub fn step(&mut self, epoch: usize, value: f64) -> StepOutcome {
        let improved = self.best.is_none_or(|b| value > b);
        if improved {
            self.best = Some(value);
            self.best_epoch = Some(epoch);
        }
        self.count(improved)
    }

    /// The counter of spec §6.3, fed whether this epoch improved.
    fn count(&mut self, improved: bool) -> StepOutcome {
        if improved || self.previous_improved {
            self.counter = 0;
        } else {
            self.counter += 1;
        }
        self.previous_improved = improved;
        StepOutcome {
            improved,
            stop: self.counter >= self.patience,
        }
    }

    pub fn best_epoch(&self) -> Option<usize> {
        self.best_epoch
    }

    pub fn best(&self) -> Option<f64> {
        self.best
    }
}

/// The metrics whose improvement keeps an official-protocol run going, as the official code
/// computes them: HR, MRR and its own NDCG (the wrong normaliser, spec §7) at 5 and 20.
pub const OFFICIAL_WATCHED: [(Metric, usize); 6] = [
    (Metric::Hr, 5),
    (Metric::Mrr, 5),
    (Metric::NdcgOfficial, 5),
    (Metric::Hr, 20),
    (Metric::Mrr, 20),
    (Metric::NdcgOfficial, 20),
];

/// The official stopping rule (spec §6.3): an epoch raises the flag when ANY watched metric beats
/// its own best so far; the counter is the same as [`EarlyStopping`]'s.
#[derive(Debug, Clone)]
pub struct AnyMetricStopping {
    best: Vec<Option<f64>>,
    counter: EarlyStopping,
}

impl AnyMetricStopping {
    pub fn new(patience: usize) -> Self {
        Self {
            best: vec![None; OFFICIAL_WATCHED.len()],
            counter: EarlyStopping::new(patience),
        }
    }

    /// The last epoch that raised the flag.
    pub fn last_improved_epoch(&self) -> Option<usize> {
        self.counter.best_epoch
    }

    /// `None` when `set` lacks a watched cut-off (the configuration must evaluate 5 and 20).
    pub fn step(&mut self, epoch: usize, set: &MetricSet) -> Option<StepOutcome> {
        // Every metric is read before any best moves, so a missing one changes nothing.
        let values: Vec<f64> = OFFICIAL_WATCHED
            .iter()
            .map(|&(metric, k)| set.get(metric, k))
            .collect::<Option<_>>()?;
        let mut flag = false;
        for (best, value) in self.best.iter_mut().zip(values) {
            if best.is_none_or(|b| value > b) {
                *best = Some(value);
                flag = true;
            }
        }
        if flag {
            self.counter.best_epoch = Some(epoch);
        }
        Some(self.counter.count(flag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The logged Beauty run: last improvement at epoch 9, stop after epoch 18 (patience 8).
    #[test]
    fn stops_nine_epochs_after_the_last_improvement() {
        let mut es = EarlyStopping::new(8);
        let mut stopped_at = None;
        for epoch in 0..100 {
            let value = if epoch <= 9 { epoch as f64 } else { 0.0 };
            if es.step(epoch, value).stop {
                stopped_at = Some(epoch);
                break;
            }
        }
        assert_eq!(stopped_at, Some(18));
        assert_eq!(es.best_epoch(), Some(9));
    }

    fn metrics(values: [f64; 6]) -> MetricSet {
        let at = |k: usize, hr: f64, mrr: f64, ndcg_official: f64| crate::eval::MetricsAtK {
            k,
            hr,
            ndcg: ndcg_official * crate::eval::metrics::ideal_dcg_all_relevant(k),
            mrr,
            ndcg_official,
        };
        MetricSet {
            num_samples: 100,
            at: vec![
                at(5, values[0], values[1], values[2]),
                at(20, values[3], values[4], values[5]),
            ],
        }
    }

    /// Any one of the six metrics improving keeps the run going; the log's rule otherwise.
    #[test]
    fn official_rule_watches_every_metric_separately() {
        let mut es = AnyMetricStopping::new(2);
        let base = [0.1, 0.05, 0.02, 0.2, 0.06, 0.01];
        assert!(es.step(0, &metrics(base)).unwrap().improved);
        // Epochs 1-3: only MRR@20 improves, once each; never stops.
        for epoch in 1..=3 {
            let mut v = base;
            v[4] = 0.06 + 0.01 * epoch as f64;
            let step = es.step(epoch, &metrics(v)).unwrap();
            assert!(step.improved && !step.stop, "epoch {epoch}");
        }
        // Nothing improves from epoch 4: counter 0 (previous improved), 1, 2 -> stop at 6.
        let flat = {
            let mut v = base;
            v[4] = 0.09;
            v
        };
        let stops: Vec<bool> = (4..=6)
            .map(|e| es.step(e, &metrics(flat)).unwrap().stop)
            .collect();
        assert_eq!(stops, [false, false, true]);
    }

    #[test]
    fn official_rule_needs_cut_offs_5_and_20() {
        let mut set = metrics([0.1; 6]);
        set.at.retain(|a| a.k == 20);
        assert!(AnyMetricStopping::new(8).step(0, &set).is_none());
    }

    #[test]
    fn ties_do_not_improve() {
        let mut es = EarlyStopping::new(1);
        assert!(es.step(0, 0.5).improved);
        assert!(!es.step(1, 0.5).improved); // previous improved -> counter stays 0
        assert!(es.step(2, 0.5).stop);
    }
}
