//! Evaluation passes: model scores -> target ranks on the device (the §7.3 rule, computed without
//! sorting) -> the same [`MetricAccumulator`] the `evaluate` command uses.

use tch::{Kind, Tensor};
use thiserror::Error;

use crate::config::EvaluationOrder;
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
/// On the CPU a C++ kernel counts each row in one pass; elsewhere two tensor passes over the
/// scores (greater, equal), counted in int32 (a third faster than int64 sums; a row has far
/// fewer than 2^31 items), and a row whose target shares its score with another item (rare
/// with float scores) gets the column-order tie count in a third pass over just those rows.
pub fn target_ranks(scores: &Tensor, targets: &Tensor) -> Tensor {
    if scores.device() == tch::Device::Cpu && scores.kind() == Kind::Float {
        return cpu_target_ranks(scores, targets);
    }
    tensor_target_ranks(scores, targets)
}

extern "C" {
    fn mmsr_target_ranks(
        out: *mut *mut torch_sys::C_tensor,
        scores: *const torch_sys::C_tensor,
        targets: *const torch_sys::C_tensor,
    ) -> *mut std::ffi::c_char;
}

/// [`target_ranks`] on the CPU in one pass over each row (`target_ranks.cpp`); integers, so
/// exactly the ranks of the tensor form (tested), without its five or six passes over [B, I].
fn cpu_target_ranks(scores: &Tensor, targets: &Tensor) -> Tensor {
    let mut out = std::ptr::null_mut();
    // SAFETY: both pointers are live tensor handles.
    let error = unsafe { mmsr_target_ranks(&mut out, scores.as_ptr(), targets.as_ptr()) };
    // SAFETY: what the kernel call above returned.
    unsafe { crate::native::take(out, error, "target_ranks") }
}

/// [`target_ranks`] in libtorch operators, for every device and dtype (the CPU kernel's
/// reference; `cargo bench --bench evaluator` times both).
pub fn tensor_target_ranks(scores: &Tensor, targets: &Tensor) -> Tensor {
    let targets = targets.unsqueeze(1);
    let target_scores = scores.gather(1, &targets, false);
    let higher = scores
        .gt_tensor(&target_scores)
        .sum_dim_intlist(1, false, Kind::Int)
        .to_kind(Kind::Int64);
    let equal = scores
        .eq_tensor(&target_scores)
        .sum_dim_intlist(1, false, Kind::Int);
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

/// `ranks` (from [`target_ranks`]) with the items at (`rows`, `items`) left out of the ranking:
/// each that the rule places before its row's target (scored higher, or equal with a lower
/// id) is subtracted, so the rank is the rule's rank among the remaining items. The pairs
/// must be distinct and never a row's target.
pub fn ranks_leaving_out(
    scores: &Tensor,
    targets: &Tensor,
    ranks: &Tensor,
    rows: &Tensor,
    items: &Tensor,
) -> Tensor {
    if rows.size()[0] == 0 {
        return ranks.shallow_clone();
    }
    let target_scores = scores
        .gather(1, &targets.unsqueeze(1), false)
        .squeeze_dim(1)
        .index_select(0, rows);
    let left_out_scores = scores.index(&[Some(rows), Some(items)]);
    let row_targets = targets.index_select(0, rows);
    let before = left_out_scores.gt_tensor(&target_scores).logical_or(
        &left_out_scores
            .eq_tensor(&target_scores)
            .logical_and(&items.lt_tensor(&row_targets)),
    );
    ranks
        - ranks
            .zeros_like()
            .index_add(0, rows, &before.to_kind(Kind::Int64))
}

/// Fails on a batch with NaN scores. A row maximum is NaN exactly when the row holds one (max
/// propagates NaN), so one reduction without a [B, I] mask checks the batch; the exact count
/// is taken only for the error.
fn check_finite_rows(scores: &Tensor) -> Result<(), EvaluationError> {
    let row_max = scores.amax(1, false);
    if row_max.isnan().any().int64_value(&[]) == 0 {
        return Ok(());
    }
    let count = scores.isnan().sum(Kind::Int64).int64_value(&[]);
    Err(EvaluationError::NanScores { count })
}

/// Scores every sample of `source` once (no dropout, no gradients) and averages the metrics.
/// Ranks are summed in the order the samples were visited, except under `eval.order:
/// by-length`, which sums them in the split's order: equal ranks then give the input order's
/// metrics bit for bit (other orders keep the summation their stored results were made with).
pub fn evaluate(
    model: &dyn Recommender,
    source: &BatchSource,
    ks: &[usize],
    batch_size: usize,
) -> Result<MetricSet, EvaluationError> {
    let order = source.evaluation_order();
    let mut visited: Vec<(usize, usize)> = Vec::with_capacity(order.len());
    tch::no_grad(|| {
        for chunk in order.chunks(batch_size) {
            let batch = source.batch(chunk);
            let scores = model.scores(&batch, false);
            check_finite_rows(&scores)?;
            let mut ranks = target_ranks(&scores, &batch.targets);
            if let Some((rows, items)) = source.left_out_items(chunk) {
                ranks = ranks_leaving_out(&scores, &batch.targets, &ranks, &rows, &items);
            }
            let ranks =
                Vec::<i64>::try_from(ranks.to_device(tch::Device::Cpu)).expect("int64 ranks");
            visited.extend(chunk.iter().zip(ranks).map(|(&s, r)| (s, r as usize)));
        }
        Ok::<(), EvaluationError>(())
    })?;
    if source.order() == EvaluationOrder::ByLength {
        visited.sort_unstable_by_key(|&(sample, _)| sample);
    }
    let mut accumulator = MetricAccumulator::new(ks);
    accumulator.add_ranks(visited.into_iter().map(|(_, rank)| rank));
    Ok(accumulator.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::rank_of_target;
    use rand::{Rng, SeedableRng};

    #[test]
    fn the_cpu_kernel_gives_the_tensor_form_s_ranks() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let (rows, cols) = (97usize, 301usize);
        // Ties everywhere in some rows (a few distinct values), targets at both ends too.
        let scores: Vec<f32> = (0..rows * cols)
            .map(|i| {
                if (i / cols) % 3 == 0 {
                    rng.random_range(0..4) as f32
                } else {
                    rng.random_range(-1.0..1.0)
                }
            })
            .collect();
        let mut targets: Vec<i64> = (0..rows)
            .map(|_| rng.random_range(0..cols as i64))
            .collect();
        targets[0] = 0;
        targets[1] = cols as i64 - 1;
        let scores = Tensor::from_slice(&scores).view([rows as i64, cols as i64]);
        let targets = Tensor::from_slice(&targets);
        let kernel = cpu_target_ranks(&scores, &targets);
        assert!(kernel.equal(&tensor_target_ranks(&scores, &targets)));
        assert_eq!(kernel.kind(), Kind::Int64);
        let empty = Tensor::zeros([0, 5], (Kind::Float, tch::Device::Cpu));
        let none = cpu_target_ranks(&empty, &Tensor::zeros([0], (Kind::Int64, tch::Device::Cpu)));
        assert_eq!(none.size(), [0]);
    }

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
    fn leaving_items_out_gives_the_rule_s_rank_among_the_rest() {
        // By hand: row 0 scores [0.9, 0.5, 0.7, 0.1], target column 1: rank 3 among all, 2
        // without column 0, still 3 without column 3 (below the target). Row 1 [0.5, 0.5, 0.2,
        // 0.0], target column 1: the tie with column 0 puts it second; without column 0, first.
        let scores = Tensor::from_slice(&[0.9f32, 0.5, 0.7, 0.1, 0.5, 0.5, 0.2, 0.0]).view([2, 4]);
        let targets = Tensor::from_slice(&[1i64, 1]);
        let ranks = target_ranks(&scores, &targets);
        assert_eq!(Vec::<i64>::try_from(&ranks).unwrap(), [3, 2]);
        let left = |rows: &[i64], items: &[i64]| {
            let out = ranks_leaving_out(
                &scores,
                &targets,
                &ranks,
                &Tensor::from_slice(rows),
                &Tensor::from_slice(items),
            );
            Vec::<i64>::try_from(out).unwrap()
        };
        assert_eq!(left(&[0, 1], &[0, 0]), [2, 1]);
        assert_eq!(left(&[0, 0], &[3, 0]), [2, 2]);
        assert_eq!(left(&[], &[]), [3, 2]);

        // Against the pure rule on the scores that remain, with ties everywhere.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (rows, cols) = (40usize, 23usize);
        let scores: Vec<f32> = (0..rows * cols)
            .map(|_| rng.random_range(0..4) as f32)
            .collect();
        let targets: Vec<i64> = (0..rows)
            .map(|_| rng.random_range(0..cols as i64))
            .collect();
        let (mut out_rows, mut out_items) = (Vec::new(), Vec::new());
        for (r, &t) in targets.iter().enumerate() {
            for c in 0..cols as i64 {
                if c != t && rng.random_range(0..3) == 0 {
                    out_rows.push(r as i64);
                    out_items.push(c);
                }
            }
        }
        let tensor = Tensor::from_slice(&scores).view([rows as i64, cols as i64]);
        let target_tensor = Tensor::from_slice(&targets);
        let all = target_ranks(&tensor, &target_tensor);
        let ranks = Vec::<i64>::try_from(ranks_leaving_out(
            &tensor,
            &target_tensor,
            &all,
            &Tensor::from_slice(&out_rows),
            &Tensor::from_slice(&out_items),
        ))
        .unwrap();
        for r in 0..rows {
            let kept: Vec<usize> = (0..cols)
                .filter(|&c| {
                    !out_rows
                        .iter()
                        .zip(&out_items)
                        .any(|(&x, &y)| x == r as i64 && y == c as i64)
                })
                .collect();
            let kept_scores: Vec<f32> = kept.iter().map(|&c| scores[r * cols + c]).collect();
            let target_at = kept.iter().position(|&c| c as i64 == targets[r]).unwrap();
            assert_eq!(
                ranks[r] as usize,
                rank_of_target(&kept_scores, target_at),
                "row {r}"
            );
        }
    }

    #[test]
    fn a_nan_anywhere_in_a_batch_is_an_error_with_its_count() {
        let mut scores = vec![0.5f32; 3 * 7];
        scores[3] = f32::NAN; // row 0, not its maximum's column
        scores[20] = f32::NAN; // row 2, last column
        let tensor = Tensor::from_slice(&scores).view([3, 7]);
        match check_finite_rows(&tensor) {
            Err(EvaluationError::NanScores { count }) => assert_eq!(count, 2),
            other => panic!("expected NanScores, got {other:?}"),
        }
        let finite = Tensor::from_slice(&[1.0f32, f32::INFINITY, -f32::INFINITY, 0.0]).view([2, 2]);
        assert!(check_finite_rows(&finite).is_ok());
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
