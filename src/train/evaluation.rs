//! Evaluation passes: model scores -> target ranks on the device (the §7.3 rule, computed without
//! sorting) -> the same [`MetricAccumulator`] the `evaluate` command uses.

use tch::{Kind, Tensor};
use thiserror::Error;

use crate::eval::metrics::{MetricAccumulator, MetricSet};
use crate::model::Recommender;

use super::batching::BatchSource;

#[derive(Debug, Error)]
pub enum EvaluationError {
    #[error("the model produced {count} NaN score(s) in an evaluation batch; the run diverged (try a lower learning rate)")]
    NanScores { count: i64 },
}

/// 1-based ranks of the targets (0-based columns) in each row of `scores` [B, I]:
/// `1 + #{j : s_j > s_t} + #{j < t : s_j == s_t}`, exactly [`crate::eval::rank_of_target`].
/// Two passes over the scores (greater, equal); a row whose target shares its score with
/// another item (rare with float scores) gets the column-order tie count in a third pass over
/// just those rows.
pub fn target_ranks(scores: &Tensor, targets: &Tensor) -> Tensor {
    let targets = targets.unsqueeze(1);
    let target_scores = scores.gather(1, &targets, false);
    let higher = scores
        .gt_tensor(&target_scores)
        .sum_dim_intlist(1, false, Kind::Int64);
    let equal = scores
        .eq_tensor(&target_scores)
        .sum_dim_intlist(1, false, Kind::Int64);
    let tied_rows = equal.gt(1).nonzero().squeeze_dim(1);
    if tied_rows.size()[0] == 0 {
        return higher + 1;
    }
    let tied_scores = scores.index_select(0, &tied_rows);
    let tied_targets = targets.index_select(0, &tied_rows);
    let columns = Tensor::arange(scores.size()[1], (Kind::Int64, scores.device())).unsqueeze(0);
    let tied_before = tied_scores
        .eq_tensor(&target_scores.index_select(0, &tied_rows))
        .logical_and(&columns.lt_tensor(&tied_targets))
        .sum_dim_intlist(1, false, Kind::Int64);
    higher.index_add(0, &tied_rows, &tied_before) + 1
}

/// Scores every sample of `source` once (no dropout, no gradients) and averages the metrics.
pub fn evaluate(
    model: &dyn Recommender,
    source: &BatchSource,
    ks: &[usize],
    batch_size: usize,
) -> Result<MetricSet, EvaluationError> {
    let mut accumulator = MetricAccumulator::new(ks);
    let order = source.evaluation_order();
    tch::no_grad(|| {
        for chunk in order.chunks(batch_size) {
            let batch = source.batch(chunk);
            let scores = model.scores(&batch, false);
            let nan = scores.isnan().sum(Kind::Int64).int64_value(&[]);
            if nan > 0 {
                return Err(EvaluationError::NanScores { count: nan });
            }
            let ranks = Vec::<i64>::try_from(
                target_ranks(&scores, &batch.targets).to_device(tch::Device::Cpu),
            )
            .expect("int64 ranks");
            accumulator.add_ranks(ranks.into_iter().map(|r| r as usize));
        }
        Ok(accumulator.finish())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::rank_of_target;
    use rand::{Rng, SeedableRng};

    #[test]
    fn tensor_ranks_equal_the_pure_rule_with_ties() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let (rows, cols) = (64usize, 37usize);
        // Few distinct values in the first half of the rows, so that ties are everywhere; all
        // distinct in the second half (the path without the tie pass).
        let scores: Vec<f32> = (0..rows * cols)
            .map(|i| {
                if i < rows / 2 * cols {
                    rng.random_range(0..5) as f32
                } else {
                    i as f32 + rng.random_range(0.0..0.5)
                }
            })
            .collect();
        let targets: Vec<i64> = (0..rows)
            .map(|_| rng.random_range(0..cols as i64))
            .collect();
        let tensor = Tensor::from_slice(&scores).view([rows as i64, cols as i64]);
        let ranks =
            Vec::<i64>::try_from(target_ranks(&tensor, &Tensor::from_slice(&targets))).unwrap();
        for r in 0..rows {
            let expected = rank_of_target(&scores[r * cols..(r + 1) * cols], targets[r] as usize);
            assert_eq!(ranks[r] as usize, expected, "row {r}");
        }
    }

    #[test]
    fn tensor_ranks_without_any_tie_take_the_two_pass_path() {
        // Distinct scores, descending with the column: the target's rank is its column + 1.
        let scores = Tensor::arange(50, (Kind::Float, tch::Device::Cpu))
            .neg()
            .view([5, 10]);
        let targets = Tensor::from_slice(&[0i64, 3, 9, 5, 1]);
        let ranks = Vec::<i64>::try_from(target_ranks(&scores, &targets)).unwrap();
        assert_eq!(ranks, vec![1, 4, 10, 6, 2]);
    }
}
