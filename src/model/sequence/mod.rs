//! What the sequence models (`sasrec`, `gru4rec`) share: the batch of item-id sequences, the
//! item table they score against, and the two training losses of spec §5.4.
//!
//! Sequences are right-padded (item ids from column 0, then zeros) and every model reads its
//! output at the sample's last item, so a sample's scores never depend on the other samples of
//! its batch or on how wide the batch is (tested for every sequence model).

pub mod gru4rec;
pub mod sasrec;

use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use crate::dataset::missing::DropPattern;
use crate::dataset::SampleSet;
use crate::modality::Modality;

/// Item-id sequences of one batch, on the model's device.
pub struct SequenceBatch {
    /// Item ids, int64 [B, L] with L the longest input of the batch; 0 pads the right end.
    pub items: Tensor,
    /// Input lengths, int64 [B] (at least 1: an empty input reads the padding row).
    pub lengths: Tensor,
    /// Per modality (in [`Modality::ALL`] order), bool [B, L]: where the missing-modality study
    /// hides it (absent when nothing is hidden).
    pub dropped: Option<[Tensor; 2]>,
    /// The same samples as sub-batches of similar input length, each padded only to its own
    /// longest input; absent when one width serves them all.
    buckets: Option<LengthBuckets>,
}

/// Sub-batches by input length. Prefix samples are short (8.4 items on average on Beauty) but
/// a batch of 128 almost always holds one of the cap's 50, so one padded batch spends about five
/// sixths of an encoder's work on padding. A sample's state depends only on its own items
/// (causal attention or a recurrence over right-padded rows), so encoding the sub-batches
/// separately gives every sample the same function of its input.
struct LengthBuckets {
    parts: Vec<SequenceBatch>,
    /// For each row of the batch, its row in the concatenation of the parts.
    restore: Tensor,
    /// For each row of the concatenation of the parts, its row in the batch.
    order: Tensor,
}

/// Upper bounds of the length buckets: a sample of length l goes to the first bound ≥ l, or to
/// the last bucket. On Beauty's training batches real items fill 14 % of one padded batch's
/// positions and 57 % of these three buckets'; seven buckets (powers of two, 81 %) measured no
/// faster, because each bucket adds an encoder pass of small operators (docs/performance.md).
const BUCKET_BOUNDS: [usize; 2] = [4, 16];

/// Rows of the batch grouped by [`BUCKET_BOUNDS`], in batch order within a group; empty groups
/// left out.
fn length_buckets(lengths: &[usize]) -> Vec<Vec<usize>> {
    let mut groups = vec![Vec::new(); BUCKET_BOUNDS.len() + 1];
    for (row, &length) in lengths.iter().enumerate() {
        let bucket = BUCKET_BOUNDS
            .iter()
            .position(|&bound| length <= bound)
            .unwrap_or(BUCKET_BOUNDS.len());
        groups[bucket].push(row);
    }
    groups.retain(|g| !g.is_empty());
    groups
}

impl SequenceBatch {
    pub fn assemble(samples: &SampleSet, indices: &[usize], device: Device) -> Self {
        Self::assemble_missing(samples, indices, None, device)
    }

    /// As [`SequenceBatch::assemble`], with the drop masks of `missing` (spec §8).
    pub fn assemble_missing(
        samples: &SampleSet,
        indices: &[usize],
        missing: Option<&DropPattern>,
        device: Device,
    ) -> Self {
        let mut batch = Self::padded(samples, indices, missing, device);
        let lengths: Vec<usize> = indices.iter().map(|&s| samples.input(s).len()).collect();
        let groups = length_buckets(&lengths);
        if groups.len() > 1 {
            let mut restore = vec![0i64; indices.len()];
            for (position, &row) in groups.iter().flatten().enumerate() {
                restore[row] = position as i64;
            }
            let parts = groups
                .iter()
                .map(|rows| {
                    let part: Vec<usize> = rows.iter().map(|&row| indices[row]).collect();
                    Self::padded(samples, &part, missing, device)
                })
                .collect();
            let order: Vec<i64> = groups.iter().flatten().map(|&row| row as i64).collect();
            batch.buckets = Some(LengthBuckets {
                parts,
                restore: Tensor::from_slice(&restore).to_device(device),
                order: Tensor::from_slice(&order).to_device(device),
            });
        }
        batch
    }

    /// One batch padded to its longest input, without length buckets.
    fn padded(
        samples: &SampleSet,
        indices: &[usize],
        missing: Option<&DropPattern>,
        device: Device,
    ) -> Self {
        let width = indices
            .iter()
            .map(|&s| samples.input(s).len())
            .max()
            .unwrap_or(0)
            .max(1);
        let mut items = vec![0i64; indices.len() * width];
        let mut lengths = Vec::with_capacity(indices.len());
        for (row, &s) in indices.iter().enumerate() {
            let input = samples.input(s);
            for (slot, &item) in items[row * width..].iter_mut().zip(input) {
                *slot = i64::from(item);
            }
            lengths.push(input.len().max(1) as i64);
        }
        let shape = [indices.len() as i64, width as i64];
        let dropped = missing.map(|pattern| {
            Modality::ALL.map(|modality| {
                let mut mask = vec![false; indices.len() * width];
                for (row, &s) in indices.iter().enumerate() {
                    for p in 0..samples.input(s).len() {
                        mask[row * width + p] = pattern.dropped(s, p, modality);
                    }
                }
                Tensor::from_slice(&mask).view(shape).to_device(device)
            })
        });
        Self {
            items: Tensor::from_slice(&items).view(shape).to_device(device),
            lengths: Tensor::from_slice(&lengths).to_device(device),
            dropped,
            buckets: None,
        }
    }

    /// `encode` ([b, D] states of a batch) applied to each length bucket, the states put back in
    /// batch order: [B, D]. Without buckets, `encode(self)`.
    pub fn encode_by_length(&self, encode: impl Fn(&SequenceBatch) -> Tensor) -> Tensor {
        match &self.buckets {
            None => encode(self),
            Some(buckets) => {
                let states: Vec<Tensor> = buckets.parts.iter().map(encode).collect();
                Tensor::cat(&states, 0).index_select(0, &buckets.restore)
            }
        }
    }

    /// Each length bucket (or the whole batch) with the rows of `per_row` [B, ...] that belong
    /// to it, for work that keeps every position of a part (the parts differ in width).
    pub fn parts_with(&self, per_row: &Tensor) -> Vec<(&SequenceBatch, Tensor)> {
        match &self.buckets {
            None => vec![(self, per_row.shallow_clone())],
            Some(buckets) => {
                let mut start = 0;
                buckets
                    .parts
                    .iter()
                    .map(|part| {
                        let len = part.items.size()[0];
                        let rows = buckets.order.narrow(0, start, len);
                        start += len;
                        (part, per_row.index_select(0, &rows))
                    })
                    .collect()
            }
        }
    }

    /// Where `modality` is hidden, bool [B, L], when it is hidden anywhere in the batch (a
    /// batch with nothing hidden takes the models' complete-data path: rate 0 gives exactly the
    /// complete-data numbers).
    pub fn dropped(&self, modality: Modality) -> Option<&Tensor> {
        let index = Modality::ALL.iter().position(|&m| m == modality)?;
        let mask = &self.dropped.as_ref()?[index];
        mask.any().int64_value(&[]).ne(&0).then_some(mask)
    }

    /// Whether any modality is hidden anywhere in the batch.
    pub fn any_dropped(&self) -> bool {
        Modality::ALL.iter().any(|&m| self.dropped(m).is_some())
    }

    /// Width L of the padded batch.
    pub fn width(&self) -> i64 {
        self.items.size()[1]
    }

    /// Each row's state at its last item: `states` [B, L, D] -> [B, D].
    pub fn last(&self, states: &Tensor) -> Tensor {
        let dim = states.size()[2];
        let index = (&self.lengths - 1)
            .view([-1, 1, 1])
            .expand([-1, 1, dim], false);
        states.gather(1, &index, false).squeeze_dim(1)
    }

    /// Positions counted back from each row's last item (0 = last), int64 [B, L]; the padding
    /// gets negative positions, which callers mask.
    pub fn positions_from_last(&self) -> Tensor {
        let columns = Tensor::arange(self.width(), (Kind::Int64, self.items.device()));
        (&self.lengths - 1).unsqueeze(1) - columns.unsqueeze(0)
    }
}

/// How a sequence model is trained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SequenceLoss {
    /// Full-softmax cross-entropy over all items: what every model of the benchmark is trained
    /// with, so numbers are comparable (default).
    #[default]
    CrossEntropy,
    /// Binary cross-entropy of the target against one uniformly sampled other item, as the
    /// original SASRec and GRU4Rec papers train (with every prefix of a history as a sample).
    Bce,
}

/// The item embedding table of a sequence model: row 0 is the padding (always zero), rows
/// 1..=I the items; scores are dot products with the item rows.
pub struct ItemTable {
    table: Tensor,
}

impl ItemTable {
    pub fn new(path: &nn::Path, num_items: i64, dim: i64) -> Self {
        let table = path.var(
            "item_embedding",
            &[num_items + 1, dim],
            nn::Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
        );
        Self { table }
    }

    /// Embeddings of `items` (int64, any shape); the padding id 0 embeds as zeros.
    pub fn embed(&self, items: &Tensor) -> Tensor {
        embed_rows(&self.table, items)
    }

    /// The table [I + 1, D] (row 0: padding).
    pub fn table(&self) -> &Tensor {
        &self.table
    }

    /// Scores [B, I] of sequence states [B, D] against every item (column j = item j + 1).
    pub fn scores(&self, states: &Tensor) -> Tensor {
        scores_against(states, &self.table)
    }

    /// The training loss for `states` [B, D] and 0-based `targets` [B].
    pub fn loss(&self, states: &Tensor, targets: &Tensor, loss: SequenceLoss) -> Tensor {
        loss_against(states, &self.table, targets, loss)
    }
}

/// Rows of `table` [I + 1, D] for `items` (int64, any shape); the padding id 0 gives zeros.
pub fn embed_rows(table: &Tensor, items: &Tensor) -> Tensor {
    let rows = Tensor::embedding(table, items, 0, false, false);
    rows * items.ne(0).unsqueeze(-1).to_kind(Kind::Float)
}

/// Scores [B, I] of states [B, D] against an item table [I + 1, D] (row 0: padding).
pub fn scores_against(states: &Tensor, table: &Tensor) -> Tensor {
    let num_items = table.size()[0] - 1;
    states.matmul(&table.narrow(0, 1, num_items).tr())
}

/// The training loss of states [B, D] against an item table [I + 1, D] and 0-based targets.
pub fn loss_against(
    states: &Tensor,
    table: &Tensor,
    targets: &Tensor,
    loss: SequenceLoss,
) -> Tensor {
    match loss {
        SequenceLoss::CrossEntropy => {
            scores_against(states, table).cross_entropy_for_logits(targets)
        }
        SequenceLoss::Bce => {
            let num_items = table.size()[0] - 1;
            // One negative per target, uniform over the other items (torch's seeded stream).
            let offset = Tensor::randint_low(
                1,
                num_items.max(2),
                [targets.size()[0]],
                (Kind::Int64, targets.device()),
            );
            let negatives = (targets + offset).remainder(num_items);
            let score = |items: &Tensor| {
                let rows = table.index_select(0, &(items + 1));
                (states * rows).sum_dim_intlist(-1, false, Kind::Float)
            };
            let (pos, neg) = (score(targets), score(&negatives));
            let ones = pos.ones_like();
            pos.binary_cross_entropy_with_logits::<Tensor>(&ones, None, None, tch::Reduction::Mean)
                + neg.binary_cross_entropy_with_logits::<Tensor>(
                    &ones.zeros_like(),
                    None,
                    None,
                    tch::Reduction::Mean,
                )
        }
    }
}

/// The loss of a model trained at every position, as SASRec's authors train it: each real
/// position of each row is trained at the item after it, the last at the row's target, and the
/// loss is the mean over all those positions. `states_of(part)` gives [b, L, D] states of every
/// position of a length bucket; causal encoders make the state at a position a function of the
/// items up to it.
pub fn every_position_loss(
    input: &SequenceBatch,
    targets: &Tensor,
    table: &Tensor,
    loss: SequenceLoss,
    states_of: impl Fn(&SequenceBatch) -> Tensor,
) -> Tensor {
    let (mut states, mut position_targets) = (Vec::new(), Vec::new());
    for (part, part_targets) in input.parts_with(targets) {
        let (rows, width) = (part.items.size()[0], part.width());
        let next = Tensor::cat(
            &[
                part.items.narrow(1, 1, width - 1),
                part.items.zeros_like().narrow(1, 0, 1),
            ],
            1,
        ) - 1;
        let columns = Tensor::arange(width, (Kind::Int64, part.items.device())).unsqueeze(0);
        let is_last = columns.eq_tensor(&(&part.lengths - 1).unsqueeze(1));
        let wanted = part_targets
            .unsqueeze(1)
            .expand([rows, width], false)
            .where_self(&is_last, &next);
        // Real positions only: the padding, and the placeholder of an empty input, train nothing.
        let real = part.items.ne(0).view([-1]).nonzero().squeeze_dim(1);
        let part_states = states_of(part);
        let dim = part_states.size()[2];
        states.push(part_states.view([-1, dim]).index_select(0, &real));
        position_targets.push(wanted.view([-1]).index_select(0, &real));
    }
    let states = Tensor::cat(&states, 0);
    if states.size()[0] == 0 {
        // A batch of empty inputs: a zero that still reaches the parameters.
        return states.sum(Kind::Float) * 0.0;
    }
    loss_against(&states, table, &Tensor::cat(&position_targets, 0), loss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_right_padded_and_read_at_the_last_item() {
        let mut samples = SampleSet::new();
        samples.push(1, &[3, 4, 5], 6);
        samples.push(2, &[7], 8);
        samples.push(3, &[], 9);
        let batch = SequenceBatch::assemble(&samples, &[0, 1, 2], Device::Cpu);
        assert_eq!(
            Vec::<i64>::try_from(batch.items.view([-1])).unwrap(),
            [3, 4, 5, 7, 0, 0, 0, 0, 0]
        );
        assert_eq!(Vec::<i64>::try_from(&batch.lengths).unwrap(), [3, 1, 1]);
        assert_eq!(
            Vec::<i64>::try_from(batch.positions_from_last().view([-1])).unwrap(),
            [2, 1, 0, 0, -1, -2, 0, -1, -2]
        );
        let states = Tensor::arange(9, (Kind::Float, Device::Cpu)).view([3, 3, 1]);
        assert_eq!(
            Vec::<f32>::try_from(batch.last(&states).view([-1])).unwrap(),
            [2.0, 3.0, 6.0]
        );
    }

    #[test]
    fn sampled_negatives_are_never_the_target() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let table = ItemTable::new(&vs.root(), 2, 4);
        // With two items the only other item is the negative: the loss is exact.
        let states = Tensor::ones([5, 4], (Kind::Float, Device::Cpu));
        let targets = Tensor::from_slice(&[0i64, 1, 0, 1, 1]);
        let loss = table.loss(&states, &targets, SequenceLoss::Bce);
        let item = |i: i64| (table.table.get(i + 1).sum(Kind::Float)).double_value(&[]);
        let softplus = |x: f64| (1.0 + x.exp()).ln();
        let expected = [0, 1, 0, 1, 1]
            .iter()
            .map(|&t| softplus(-item(t)) + softplus(item(1 - t)))
            .sum::<f64>()
            / 5.0;
        assert!((loss.double_value(&[]) - expected).abs() < 1e-6);
    }
}
