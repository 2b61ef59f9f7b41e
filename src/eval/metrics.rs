//! Full-ranking metrics with exactly one relevant item per sample (spec §7.3).
//!
//! Everything here is pure Rust on plain numbers: the trainer, the `evaluate` command and the
//! tests all go through [`rank_of_target`] / [`MetricAccumulator`], so there is one definition.

use serde::{Deserialize, Serialize};

/// Cut-offs reported when the caller does not choose.
pub const DEFAULT_KS: [usize; 3] = [5, 10, 20];

/// 1-based rank of `target` (0-based index into `scores`):
/// `1 + #{j != t : s_j > s_t} + #{j < t : s_j == s_t}` — ties are broken by item id: the target
/// ranks behind the items with an equal score and a lower id, and ahead of those with an equal
/// score and a higher id. Callers must reject NaN scores first (a NaN compares false with
/// everything and would silently rank first).
pub fn rank_of_target<T: PartialOrd + Copy>(scores: &[T], target: usize) -> usize {
    let t = scores[target];
    let higher = scores.iter().filter(|&&s| s > t).count();
    let tied_before = scores[..target].iter().filter(|&&s| s == t).count();
    1 + higher + tied_before
}

/// HR@K (= Recall@K with one relevant item).
pub fn hit_rate(rank: usize, k: usize) -> f64 {
    if rank <= k {
        1.0
    } else {
        0.0
    }
}

/// MRR@K: reciprocal rank, 0 outside the cut-off.
pub fn mrr(rank: usize, k: usize) -> f64 {
    if rank <= k {
        1.0 / rank as f64
    } else {
        0.0
    }
}

/// NDCG@K with one relevant item: the ideal DCG is 1, so NDCG = DCG = 1/log2(rank + 1).
pub fn ndcg(rank: usize, k: usize) -> f64 {
    if rank <= k {
        1.0 / ((rank + 1) as f64).log2()
    } else {
        0.0
    }
}

/// DCG of a list whose first `k` entries are all relevant: sum_{i=1..k} 1/log2(i+1).
pub fn ideal_dcg_all_relevant(k: usize) -> f64 {
    (1..=k).map(|i| 1.0 / ((i + 1) as f64).log2()).sum()
}

/// The original MMSR code's NDCG (spec §7.2): divides by the DCG of `k` relevant items instead
/// of 1. Only for cross-checking against the official log; never a headline number.
pub fn ndcg_official(rank: usize, k: usize) -> f64 {
    ndcg(rank, k) / ideal_dcg_all_relevant(k)
}

/// Mean metrics at one cut-off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricsAtK {
    pub k: usize,
    /// Hit rate, identical to Recall@K with one relevant item.
    pub hr: f64,
    pub ndcg: f64,
    pub mrr: f64,
    /// The original code's NDCG normaliser (§7.2), for cross-checks only.
    pub ndcg_official: f64,
}

/// Which metric a caller asks for (selection criteria, tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Hr,
    Ndcg,
    Mrr,
    NdcgOfficial,
}

impl Metric {
    pub fn label(self) -> &'static str {
        match self {
            Metric::Hr => "HR",
            Metric::Ndcg => "NDCG",
            Metric::Mrr => "MRR",
            Metric::NdcgOfficial => "NDCG_official",
        }
    }
}

impl MetricsAtK {
    pub fn get(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Hr => self.hr,
            Metric::Ndcg => self.ndcg,
            Metric::Mrr => self.mrr,
            Metric::NdcgOfficial => self.ndcg_official,
        }
    }
}

/// Mean metrics over a set of samples, at every requested cut-off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSet {
    pub num_samples: usize,
    pub at: Vec<MetricsAtK>,
}

impl MetricSet {
    /// No samples, no cut-offs: the validation of a run that has none (`--protocol official`).
    pub fn empty() -> Self {
        Self {
            num_samples: 0,
            at: Vec::new(),
        }
    }

    /// The value of `metric` at cut-off `k`, if `k` was evaluated.
    pub fn get(&self, metric: Metric, k: usize) -> Option<f64> {
        self.at.iter().find(|m| m.k == k).map(|m| m.get(metric))
    }

    pub fn ks(&self) -> Vec<usize> {
        self.at.iter().map(|m| m.k).collect()
    }
}

/// Streams ranks in and produces the means; merging two accumulators equals feeding both streams.
#[derive(Debug, Clone)]
pub struct MetricAccumulator {
    ks: Vec<usize>,
    /// Per cut-off: the official normaliser, computed once.
    official_normalisers: Vec<f64>,
    /// Per cut-off: sums of hr, ndcg, mrr, ndcg_official.
    sums: Vec<[f64; 4]>,
    count: usize,
}

impl MetricAccumulator {
    /// `ks` are sorted and deduplicated; a cut-off of 0 is meaningless and dropped.
    pub fn new(ks: &[usize]) -> Self {
        let mut ks: Vec<usize> = ks.iter().copied().filter(|&k| k > 0).collect();
        ks.sort_unstable();
        ks.dedup();
        let sums = vec![[0.0; 4]; ks.len()];
        let official_normalisers = ks.iter().map(|&k| ideal_dcg_all_relevant(k)).collect();
        Self {
            ks,
            official_normalisers,
            sums,
            count: 0,
        }
    }

    /// Adds one sample given its 1-based rank.
    pub fn add_rank(&mut self, rank: usize) {
        debug_assert!(rank >= 1, "ranks are 1-based");
        for ((&k, sums), normaliser) in self
            .ks
            .iter()
            .zip(self.sums.iter_mut())
            .zip(&self.official_normalisers)
        {
            if rank <= k {
                let gain = ndcg(rank, k);
                sums[0] += 1.0;
                sums[1] += gain;
                sums[2] += mrr(rank, k);
                sums[3] += gain / normaliser;
            }
        }
        self.count += 1;
    }

    pub fn add_ranks(&mut self, ranks: impl IntoIterator<Item = usize>) {
        for rank in ranks {
            self.add_rank(rank);
        }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Means over the samples seen so far (all zeros when none were seen).
    pub fn finish(&self) -> MetricSet {
        let n = self.count.max(1) as f64;
        let at = self
            .ks
            .iter()
            .zip(&self.sums)
            .map(|(&k, s)| MetricsAtK {
                k,
                hr: s[0] / n,
                ndcg: s[1] / n,
                mrr: s[2] / n,
                ndcg_official: s[3] / n,
            })
            .collect();
        MetricSet {
            num_samples: self.count,
            at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    /// The hand-computed cases of spec §7.3.
    #[test]
    fn spec_hand_computed_cases() {
        // rank 1 -> (1, 1, 1)
        assert_eq!((hit_rate(1, 5), mrr(1, 5), ndcg(1, 5)), (1.0, 1.0, 1.0));
        // rank 2 -> HR 1, MRR 0.5, NDCG 0.630930
        assert_eq!(hit_rate(2, 5), 1.0);
        assert_eq!(mrr(2, 5), 0.5);
        assert!(close(ndcg(2, 5), 0.630930));
        // rank 5 -> HR@5 1, MRR@5 0.2, NDCG@5 0.386853
        assert_eq!(hit_rate(5, 5), 1.0);
        assert!(close(mrr(5, 5), 0.2));
        assert!(close(ndcg(5, 5), 0.386853));
        // rank 6 -> all @5 are 0, NDCG@20 = 0.356207
        assert_eq!((hit_rate(6, 5), mrr(6, 5), ndcg(6, 5)), (0.0, 0.0, 0.0));
        assert!(close(ndcg(6, 20), 0.356207));
    }

    /// IDCG values quoted in spec §7.2 for the official normaliser.
    #[test]
    fn official_normaliser_matches_spec() {
        assert!(close(ideal_dcg_all_relevant(5), 2.948459));
        assert!(close(ideal_dcg_all_relevant(20), 7.040268));
        assert!(close(ndcg_official(1, 20), 1.0 / 7.040268));
    }

    #[test]
    fn rank_rule_breaks_ties_by_item_id() {
        let scores = [0.5, 0.9, 0.5, 0.1, 0.5];
        assert_eq!(rank_of_target(&scores, 1), 1);
        // item 0 ties with items 2 and 4 but has the lowest id: only 0.9 is ahead.
        assert_eq!(rank_of_target(&scores, 0), 2);
        assert_eq!(rank_of_target(&scores, 2), 3);
        assert_eq!(rank_of_target(&scores, 4), 4);
        assert_eq!(rank_of_target(&scores, 3), 5);
        // all equal: rank = 1 + index
        assert_eq!(rank_of_target(&[0.0; 7], 6), 7);
    }

    #[test]
    fn accumulator_means_hand_computed() {
        let mut acc = MetricAccumulator::new(&[20, 5, 5]);
        acc.add_ranks([1, 2, 6, 100]);
        let m = acc.finish();
        assert_eq!(m.num_samples, 4);
        assert_eq!(m.ks(), vec![5, 20]);
        assert!(close(m.get(Metric::Hr, 5).unwrap(), 0.5));
        assert!(close(m.get(Metric::Hr, 20).unwrap(), 0.75));
        assert!(close(m.get(Metric::Mrr, 5).unwrap(), 1.5 / 4.0));
        assert!(close(
            m.get(Metric::Mrr, 20).unwrap(),
            (1.5 + 1.0 / 6.0) / 4.0
        ));
        assert!(close(
            m.get(Metric::Ndcg, 20).unwrap(),
            (1.0 + 0.630930 + 0.356207) / 4.0
        ));
        assert_eq!(m.get(Metric::Hr, 10), None);
    }

    proptest! {
        /// 0 <= MRR <= NDCG <= HR <= 1 per sample and on means; each non-decreasing in K.
        #[test]
        fn metric_order_and_monotonicity(ranks in proptest::collection::vec(1usize..200, 1..60),
                                         mut ks in proptest::collection::vec(1usize..100, 1..6)) {
            ks.sort_unstable();
            ks.dedup();
            let mut acc = MetricAccumulator::new(&ks);
            acc.add_ranks(ranks.iter().copied());
            let m = acc.finish();
            for at in &m.at {
                prop_assert!(0.0 <= at.mrr && at.mrr <= at.ndcg + 1e-12);
                prop_assert!(at.ndcg <= at.hr + 1e-12 && at.hr <= 1.0);
                prop_assert!(at.ndcg_official <= at.ndcg + 1e-12);
            }
            for pair in m.at.windows(2) {
                prop_assert!(pair[0].hr <= pair[1].hr + 1e-12);
                prop_assert!(pair[0].ndcg <= pair[1].ndcg + 1e-12);
                prop_assert!(pair[0].mrr <= pair[1].mrr + 1e-12);
            }
        }

        /// The rank rule equals a sort by (score descending, id ascending).
        #[test]
        fn rank_equals_position_in_stable_sort(scores in proptest::collection::vec(-3i8..3, 1..40),
                                                target_seed in 0usize..1000) {
            let scores: Vec<f32> = scores.into_iter().map(f32::from).collect();
            let target = target_seed % scores.len();
            let mut order: Vec<usize> = (0..scores.len()).collect();
            order.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap().then(a.cmp(&b)));
            let position = order.iter().position(|&j| j == target).unwrap() + 1;
            prop_assert_eq!(rank_of_target(&scores, target), position);
        }
    }
}
