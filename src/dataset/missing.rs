//! The missing-modality study (spec §8, the recommendation there): which modality inputs a run
//! does not see.
//!
//! Each (split, sample, input position, modality) gets one uniform number `u` from a keyed hash;
//! the modality is dropped there when `u < rate`. So:
//! * validation and test patterns depend only on the run's seed: every model (and every rerun)
//!   sees the same missing data for one seed;
//! * training uses an independent stream (another key), drawn once per run, so a run's graphs
//!   are still built once (the official code re-draws every epoch, train and test alike);
//! * patterns are nested across rates: what is dropped at 0.3 is also dropped at 0.5, so a
//!   curve over rates changes one thing at a time;
//! * `both` drops each modality independently with the rate (as the official `[image, text]`),
//!   and `image` means image (the official flags are swapped, spec §1.4.2).
//!
//! Dropping removes the position's code bundle from graphs (the items stay); models on item
//! vectors see their learned "missing" vector there. Candidate items are never affected: the
//! study is about the history the model reads.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::modality::Modality;

/// Which modality a condition drops.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum DropTarget {
    Image,
    Text,
    /// Each modality, independently.
    Both,
}

impl DropTarget {
    pub fn name(self) -> &'static str {
        match self {
            DropTarget::Image => "image",
            DropTarget::Text => "text",
            DropTarget::Both => "both",
        }
    }

    pub fn covers(self, modality: Modality) -> bool {
        matches!(
            (self, modality),
            (DropTarget::Both, _)
                | (DropTarget::Image, Modality::Image)
                | (DropTarget::Text, Modality::Text)
        )
    }
}

/// One condition of the study: drop `target` at each history position with probability `rate`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissingModality {
    pub drop: DropTarget,
    /// The rate of validation and test (and of training unless `train_rate` is set).
    pub rate: f64,
    /// A different rate for training: `rate: 0, train_rate: 1` trains without the modality and
    /// evaluates with it (the unseen-relation experiment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_rate: Option<f64>,
}

impl MissingModality {
    pub fn new(drop: DropTarget, rate: f64) -> Self {
        Self {
            drop,
            rate,
            train_rate: None,
        }
    }

    /// Whether training sees another rate than evaluation.
    pub fn trains_differently(&self) -> bool {
        self.train_rate.is_some_and(|t| t != self.rate)
    }

    /// Rates outside [0, 1] (or NaN) are errors, named by the caller.
    pub fn rate_is_valid(rate: f64) -> bool {
        (0.0..=1.0).contains(&rate)
    }
}

impl fmt::Display for MissingModality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "drop {} {}", self.drop.name(), self.rate)?;
        match self.train_rate {
            Some(train) if train != self.rate => write!(f, " (train {train})"),
            _ => Ok(()),
        }
    }
}

/// The conditions of an experiment file (`missing_modality:`): every target × every rate, and
/// (by default) the complete data as the rate-0 reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissingModalitySweep {
    pub drop: Vec<DropTarget>,
    pub rates: Vec<f64>,
    /// One training rate for every condition (default: each condition's own rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_rate: Option<f64>,
    #[serde(default = "yes")]
    pub include_complete: bool,
}

fn yes() -> bool {
    true
}

impl MissingModalitySweep {
    /// One condition, without the complete-data reference (what `--drop-modality` asks for).
    pub fn single(condition: MissingModality) -> Self {
        Self {
            drop: vec![condition.drop],
            rates: vec![condition.rate],
            train_rate: condition.train_rate,
            include_complete: false,
        }
    }

    /// `None` is the complete data.
    pub fn conditions(&self) -> Vec<Option<MissingModality>> {
        let complete = self.include_complete.then_some(None);
        complete
            .into_iter()
            .chain(self.drop.iter().flat_map(|&drop| {
                self.rates.iter().map(move |&rate| {
                    Some(MissingModality {
                        drop,
                        rate,
                        train_rate: self.train_rate,
                    })
                })
            }))
            .collect()
    }
}

/// Which split's stream a pattern is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Train,
    Valid,
    Test,
}

impl Stream {
    fn tag(self) -> u64 {
        match self {
            Stream::Train => 0x7472_6169_6e00_0001,
            Stream::Valid => 0x7661_6c69_6400_0002,
            Stream::Test => 0x7465_7374_0000_0003,
        }
    }
}

/// splitmix64's finaliser: a bijective mix with good avalanche.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The drop decisions of one split of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DropPattern {
    condition: MissingModality,
    /// The condition's rate for this stream.
    rate: f64,
    key: u64,
}

impl DropPattern {
    pub fn new(condition: MissingModality, seed: u64, stream: Stream) -> Self {
        let rate = match (stream, condition.train_rate) {
            (Stream::Train, Some(train)) => train,
            _ => condition.rate,
        };
        Self {
            condition,
            rate,
            key: mix(mix(seed) ^ stream.tag()),
        }
    }

    pub fn condition(&self) -> MissingModality {
        self.condition
    }

    /// The uniform number in [0, 1) of one (sample, position, modality); independent of the
    /// condition, so patterns are nested across rates and shared across targets.
    pub fn uniform(&self, sample: usize, position: usize, modality: Modality) -> f64 {
        let h = mix(self.key ^ sample as u64);
        let h = mix(h ^ position as u64);
        let h = mix(h ^ modality as u64);
        (h >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether `modality` is missing at `position` of sample `sample`'s input.
    pub fn dropped(&self, sample: usize, position: usize, modality: Modality) -> bool {
        self.condition.drop.covers(modality) && self.uniform(sample, position, modality) < self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(drop: DropTarget, rate: f64) -> MissingModality {
        MissingModality::new(drop, rate)
    }

    #[test]
    fn rates_are_met_and_targets_mean_what_they_say() {
        for (drop, rate) in [(DropTarget::Image, 0.3), (DropTarget::Both, 0.7)] {
            let p = DropPattern::new(condition(drop, rate), 7, Stream::Test);
            let n = 200_000;
            let count = |m| (0..n).filter(|&s| p.dropped(s, s % 13, m)).count();
            let image = count(Modality::Image) as f64 / n as f64;
            assert!((image - rate).abs() < 0.005, "{image}");
            let text = count(Modality::Text) as f64 / n as f64;
            match drop {
                DropTarget::Image => assert_eq!(text, 0.0),
                _ => assert!((text - rate).abs() < 0.005, "{text}"),
            }
        }
        let p = DropPattern::new(condition(DropTarget::Text, 0.5), 7, Stream::Test);
        assert!((0..1000).all(|s| !p.dropped(s, 0, Modality::Image)));
    }

    #[test]
    fn both_drops_the_modalities_independently() {
        let p = DropPattern::new(condition(DropTarget::Both, 0.5), 3, Stream::Valid);
        let n = 100_000;
        let joint = (0..n)
            .filter(|&s| p.dropped(s, 2, Modality::Image) && p.dropped(s, 2, Modality::Text))
            .count() as f64
            / n as f64;
        assert!((joint - 0.25).abs() < 0.006, "{joint}");
    }

    #[test]
    fn patterns_are_nested_over_rates_and_streams_are_independent() {
        let low = DropPattern::new(condition(DropTarget::Image, 0.3), 11, Stream::Test);
        let high = DropPattern::new(condition(DropTarget::Image, 0.5), 11, Stream::Test);
        for s in 0..5000 {
            for pos in 0..4 {
                if low.dropped(s, pos, Modality::Image) {
                    assert!(high.dropped(s, pos, Modality::Image));
                }
            }
        }
        let train = DropPattern::new(condition(DropTarget::Image, 0.5), 11, Stream::Train);
        let other_seed = DropPattern::new(condition(DropTarget::Image, 0.5), 12, Stream::Test);
        let agree = |a: &DropPattern, b: &DropPattern| {
            (0..20_000)
                .filter(|&s| a.dropped(s, 1, Modality::Image) == b.dropped(s, 1, Modality::Image))
                .count() as f64
                / 20_000.0
        };
        // Independent patterns at rate 0.5 agree half the time; identical ones always.
        assert!((agree(&high, &train) - 0.5).abs() < 0.02);
        assert!((agree(&high, &other_seed) - 0.5).abs() < 0.02);
        let again = DropPattern::new(condition(DropTarget::Image, 0.5), 11, Stream::Test);
        assert_eq!(agree(&high, &again), 1.0);
    }

    #[test]
    fn sweep_lists_the_reference_then_every_target_and_rate() {
        let sweep: MissingModalitySweep =
            serde_norway::from_str("drop: [image, both]\nrates: [0.1, 0.9]\n").unwrap();
        let c = sweep.conditions();
        assert_eq!(c.len(), 5);
        assert_eq!(c[0], None);
        assert_eq!(c[4], Some(condition(DropTarget::Both, 0.9)));
        let single = MissingModalitySweep::single(condition(DropTarget::Text, 0.2)).conditions();
        assert_eq!(single, vec![Some(condition(DropTarget::Text, 0.2))]);
        assert!(
            serde_norway::from_str::<MissingModalitySweep>("drop: [audio]\nrates: [0.1]\n")
                .is_err()
        );
    }

    #[test]
    fn a_training_rate_applies_to_the_training_stream_only() {
        let unseen = MissingModality {
            train_rate: Some(1.0),
            ..condition(DropTarget::Text, 0.0)
        };
        assert_eq!(unseen.to_string(), "drop text 0 (train 1)");
        let train = DropPattern::new(unseen, 5, Stream::Train);
        let test = DropPattern::new(unseen, 5, Stream::Test);
        for s in 0..1000 {
            assert!(train.dropped(s, 0, Modality::Text) && !train.dropped(s, 0, Modality::Image));
            assert!(!test.dropped(s, 0, Modality::Text));
        }
    }
}
