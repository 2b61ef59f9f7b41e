//! Patience rule of the official code (spec §6.3), applied to the validation selection metric.

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

    #[test]
    fn ties_do_not_improve() {
        let mut es = EarlyStopping::new(1);
        assert!(es.step(0, 0.5).improved);
        assert!(!es.step(1, 0.5).improved); // previous improved -> counter stays 0
        assert!(es.step(2, 0.5).stop);
    }
}
