//! The user-ratio split with prefix augmentation and the validation carve-out (spec §1.3).

use serde::{Deserialize, Serialize};

/// How each user's history is divided between training and test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SplitScheme {
    /// MMSR's: the last floor(`test_ratio` · n) items are test targets (spec §1.3).
    #[default]
    UserRatio,
    /// SASRec's and most later papers': the last item is the test target, the one before it the
    /// validation target, every earlier item a training target (`test_ratio` is not used).
    LeaveOneOut,
}

impl SplitScheme {
    pub fn is_user_ratio(&self) -> bool {
        *self == SplitScheme::UserRatio
    }
}

/// Split parameters; the defaults are the official ones plus our validation carve-out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    /// Absent in manifests written before leave-one-out existed (= user-ratio).
    #[serde(default, skip_serializing_if = "SplitScheme::is_user_ratio")]
    pub scheme: SplitScheme,
    /// Per user, the last floor(ratio * n) interactions are test targets.
    pub test_ratio: f64,
    /// Inputs keep only their most recent `max_len` items.
    pub max_len: usize,
    /// Each user's last training target becomes a validation sample (model selection never
    /// looks at test).
    pub validation: bool,
}

impl Default for SplitConfig {
    fn default() -> Self {
        Self {
            scheme: SplitScheme::UserRatio,
            test_ratio: 0.2,
            max_len: 50,
            validation: true,
        }
    }
}

impl SplitConfig {
    /// Length of the test part of a history of `n` items: floor(ratio * n) in f64, as the
    /// official Python computes it; under leave-one-out, the last item (none of a one-item
    /// history).
    pub fn test_len(&self, n: usize) -> usize {
        match self.scheme {
            SplitScheme::UserRatio => ((n as f64) * self.test_ratio).floor() as usize,
            SplitScheme::LeaveOneOut => usize::from(n >= 2),
        }
    }
}

/// Samples in compressed-row layout: sample `s` has input `items[offsets[s]..offsets[s + 1]]`
/// (oldest first), target `targets[s]`, and belongs to user `users[s]` (1-based ids).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleSet {
    pub offsets: Vec<usize>,
    pub items: Vec<u32>,
    pub targets: Vec<u32>,
    pub users: Vec<u32>,
}

impl SampleSet {
    pub fn new() -> Self {
        Self {
            offsets: vec![0],
            ..Self::default()
        }
    }

    pub fn push(&mut self, user: u32, input: &[u32], target: u32) {
        self.items.extend_from_slice(input);
        self.offsets.push(self.items.len());
        self.targets.push(target);
        self.users.push(user);
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    pub fn input(&self, sample: usize) -> &[u32] {
        &self.items[self.offsets[sample]..self.offsets[sample + 1]]
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &[u32], u32)> + '_ {
        (0..self.len()).map(move |s| (self.users[s], self.input(s), self.targets[s]))
    }

    /// Appends every sample of `other`, in its order.
    pub fn extend(&mut self, other: &SampleSet) {
        for (user, input, target) in other.iter() {
            self.push(user, input, target);
        }
    }

    /// Longest input length (0 when empty).
    pub fn max_input_len(&self) -> usize {
        self.offsets
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or(0)
    }

    /// For each user (in ascending id order), the sample with the longest input, the later one
    /// on a tie. Over prefix samples this is each user's whole capped history with its last
    /// target: the one sample a model trained at every position needs.
    pub fn longest_input_per_user(&self) -> Vec<usize> {
        let mut best: std::collections::BTreeMap<u32, usize> = Default::default();
        for s in 0..self.len() {
            let len = self.input(s).len();
            best.entry(self.users[s])
                .and_modify(|b| {
                    if len >= self.input(*b).len() {
                        *b = s;
                    }
                })
                .or_insert(s);
        }
        best.into_values().collect()
    }
}

/// The three sample sets of a prepared dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splits {
    pub train: SampleSet,
    pub valid: SampleSet,
    pub test: SampleSet,
}

impl Splits {
    /// The validation samples moved to the end of training, as the official code trains
    /// (it holds nothing out; `--protocol official`). Test is unchanged.
    pub fn with_validation_trained(&self) -> Splits {
        let mut train = self.train.clone();
        train.extend(&self.valid);
        Splits {
            train,
            valid: SampleSet::new(),
            test: self.test.clone(),
        }
    }
}

/// Splits every user's history (`sequences[u - 1]` for user `u`):
/// train part `t` = first `n - test_len(n)` items (user-ratio: floor(ratio n) test items;
/// leave-one-out: one), test part `s` = the rest;
/// training samples (`t[..j]` -> `t[j]`, j = 1..|t|), the last of which becomes the validation
/// sample when enabled; test samples (`t ++ s[..j]` -> `s[j]`); every input capped to its last
/// `max_len` items.
pub fn split_sequences(sequences: &[Vec<u32>], config: &SplitConfig) -> Splits {
    let mut train = SampleSet::new();
    let mut valid = SampleSet::new();
    let mut test = SampleSet::new();
    fn cap(history: &[u32], max_len: usize) -> &[u32] {
        &history[history.len().saturating_sub(max_len)..]
    }
    for (index, history) in sequences.iter().enumerate() {
        let user = index as u32 + 1;
        let train_len = history.len() - config.test_len(history.len());
        for j in 1..train_len {
            let is_valid = config.validation && j == train_len - 1;
            let set = if is_valid { &mut valid } else { &mut train };
            set.push(user, cap(&history[..j], config.max_len), history[j]);
        }
        for j in train_len..history.len() {
            test.push(user, cap(&history[..j], config.max_len), history[j]);
        }
    }
    Splits { train, valid, test }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_input_of_each_user_is_picked_once_later_on_ties() {
        let mut s = SampleSet::new();
        s.push(2, &[1], 2);
        s.push(1, &[5], 6);
        s.push(2, &[1, 2], 3);
        s.push(1, &[7], 8);
        s.push(3, &[], 4);
        s.push(2, &[2], 3);
        assert_eq!(s.longest_input_per_user(), [3, 2, 4]);
        assert!(SampleSet::new().longest_input_per_user().is_empty());
    }

    #[test]
    fn validation_trained_appends_the_validation_samples_to_training() {
        let set = |samples: &[(u32, &[u32], u32)]| {
            let mut s = SampleSet::new();
            for &(user, input, target) in samples {
                s.push(user, input, target);
            }
            s
        };
        let splits = Splits {
            train: set(&[(1, &[1], 2), (2, &[3], 4)]),
            valid: set(&[(1, &[1, 2], 5)]),
            test: set(&[(1, &[1, 2, 5], 6)]),
        };
        let merged = splits.with_validation_trained();
        assert_eq!(
            merged.train,
            set(&[(1, &[1], 2), (2, &[3], 4), (1, &[1, 2], 5)])
        );
        assert!(merged.valid.is_empty());
        assert_eq!(merged.test, splits.test);
    }

    #[test]
    fn split_of_one_user_by_hand() {
        // n = 10 -> 2 test items; train part [1..8]
        let history: Vec<u32> = (1..=10).collect();
        let s = split_sequences(&[history], &SplitConfig::default());
        assert_eq!(s.train.len(), 6); // targets 2..7
        assert_eq!(s.train.input(0), &[1]);
        assert_eq!(s.train.targets[0], 2);
        assert_eq!(s.train.input(5), &[1, 2, 3, 4, 5, 6]);
        assert_eq!(s.valid.len(), 1);
        assert_eq!(s.valid.input(0), &[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(s.valid.targets[0], 8);
        assert_eq!(s.test.len(), 2);
        assert_eq!(s.test.input(0), &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(s.test.targets[0], 9);
        assert_eq!(s.test.input(1), &(1..=9).collect::<Vec<_>>()[..]);
        assert_eq!(s.test.targets[1], 10);
    }

    /// Leave-one-out by hand: [1..=6] -> train ->2, ->3, ->4; validation [1,2,3,4] -> 5; test
    /// [1..=5] -> 6 (inputs capped as ever).
    #[test]
    fn leave_one_out_of_one_user_by_hand() {
        let config = SplitConfig {
            scheme: SplitScheme::LeaveOneOut,
            ..SplitConfig::default()
        };
        let s = split_sequences(&[(1..=6).collect(), vec![7, 8]], &config);
        assert_eq!(s.train.targets, vec![2, 3, 4]);
        assert_eq!(s.train.input(2), &[1, 2, 3]);
        assert_eq!(s.valid.targets, vec![5]);
        assert_eq!(s.valid.input(0), &[1, 2, 3, 4]);
        assert_eq!(s.test.targets, vec![6, 8]);
        assert_eq!(s.test.input(0), &[1, 2, 3, 4, 5]);
        // Two items: no training sample, no validation sample, the test sample [7] -> 8.
        assert_eq!(s.test.input(1), &[7]);
        let capped = SplitConfig {
            max_len: 2,
            ..config
        };
        assert_eq!(
            split_sequences(&[(1..=6).collect()], &capped).test.input(0),
            &[4, 5]
        );
    }

    #[test]
    fn without_validation_all_prefixes_train() {
        let config = SplitConfig {
            validation: false,
            ..SplitConfig::default()
        };
        let s = split_sequences(&[vec![4, 5, 6, 7, 8]], &config);
        assert_eq!(s.train.len(), 3);
        assert!(s.valid.is_empty());
        assert_eq!(s.test.targets, vec![8]);
    }

    #[test]
    fn inputs_are_capped_to_the_most_recent_items() {
        let config = SplitConfig {
            max_len: 3,
            ..SplitConfig::default()
        };
        let s = split_sequences(&[(1..=10).collect()], &config);
        assert_eq!(s.test.input(1), &[7, 8, 9]);
        assert_eq!(s.train.input(5), &[4, 5, 6]);
        assert_eq!(s.train.max_input_len(), 3);
    }

    #[test]
    fn test_len_is_floor_of_twenty_percent() {
        let c = SplitConfig::default();
        let got: Vec<usize> = [5, 9, 10, 14, 15, 204]
            .iter()
            .map(|&n| c.test_len(n))
            .collect();
        assert_eq!(got, vec![1, 1, 2, 2, 3, 40]);
    }
}
