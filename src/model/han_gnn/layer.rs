//! One HAN-GNN layer (spec §4.3, `HeteAttenLayer` with `fusion_type = asy_mask`) in two execution
//! paths over the same parameters: dense (padded N × N per graph, never a [B, N, N, D] tensor)
//! and sparse (edge lists, cost linear in |E|). Both give the same numbers on the same graphs.
//!
//! compat reproduces the official computation: Q = K = V = typed projection with W_Q only; the
//! homo-first branch takes its hetero scores from the original Q, K (phase 1 is ignored); a soft
//! per-node gate; no residual. fixed uses separate W_K and W_V and a homo-first branch whose
//! hetero scores come from the phase-1 homogeneous aggregates (spec §4.7, a reconstruction).

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use crate::graph::{DenseGraphBatch, SparseGraphBatch};
use crate::model::input::uniform_init;
use crate::model::ops::{aggregate, dropout, leaky_relu, segment_softmax, typed_projection, NEG};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HanMode {
    Compat,
    Fixed,
}

pub struct HanLayer {
    mode: HanMode,
    slope: f64,
    attention_dropout: f64,
    /// [4, D, D]; index 0 (padding) unused, 1..3 = item, image, text.
    w_query: Tensor,
    w_key: Option<Tensor>,
    w_value: Option<Tensor>,
    /// [4, D]: a_1..a_4 of the homogeneous content attention (relations 1-4).
    relation_vectors: Tensor,
    gate_w1: Tensor,
    gate_b1: Tensor,
    gate_w2: Tensor,
    gate_b2: Tensor,
}

/// Node features for the dense path ([B, N, D]) or the sparse path ([T, D]).
pub enum Graph<'a> {
    Dense(&'a DenseGraphBatch),
    Sparse(&'a SparseGraphBatch),
}

impl HanLayer {
    pub fn new(
        path: &nn::Path,
        dim: i64,
        mode: HanMode,
        slope: f64,
        attention_dropout: f64,
    ) -> Self {
        let init = uniform_init(dim);
        let typed = |name: &str| path.var(name, &[4, dim, dim], init);
        let fixed = mode == HanMode::Fixed;
        Self {
            mode,
            slope,
            attention_dropout,
            w_query: typed("w_query"),
            w_key: fixed.then(|| typed("w_key")),
            w_value: fixed.then(|| typed("w_value")),
            relation_vectors: path.var("relation_vectors", &[4, dim], init),
            gate_w1: path.var("gate_w1", &[dim, dim], init),
            gate_b1: path.var("gate_b1", &[dim], init),
            gate_w2: path.var("gate_w2", &[dim, 1], init),
            gate_b2: path.var("gate_b2", &[1], init),
        }
    }

    fn dropout(&self, weights: &Tensor, train: bool) -> Tensor {
        dropout(weights, self.attention_dropout, train)
    }

    /// The update gate: a per-node softmax over the two candidates, scored by a shared MLP.
    fn gate(&self, hohe: &Tensor, heho: &Tensor) -> Tensor {
        let stacked = Tensor::stack(&[hohe, heho], -2);
        let energy = (stacked.matmul(&self.gate_w1) + &self.gate_b1)
            .relu()
            .matmul(&self.gate_w2)
            + &self.gate_b2;
        let weights = energy.squeeze_dim(-1).softmax(-1, Kind::Float);
        (stacked * weights.unsqueeze(-1)).sum_dim_intlist(-2, false, Kind::Float)
    }

    pub fn forward(&self, h0: &Tensor, graph: Graph, train: bool) -> Tensor {
        // Typed projections over the real nodes only, on [rows, D] (dense: rows = B * N).
        let type_index = match graph {
            Graph::Dense(b) => &b.type_index,
            Graph::Sparse(b) => &b.type_index,
        };
        let shape = h0.size();
        let flat = h0.view([-1, shape[shape.len() - 1]]);
        let project = |w: &Tensor| typed_projection(&flat, type_index, w).view(shape.as_slice());
        let q = project(&self.w_query);
        let (k, v) = match self.mode {
            HanMode::Compat => (q.shallow_clone(), q.shallow_clone()),
            HanMode::Fixed => (
                project(self.w_key.as_ref().expect("fixed mode has W_K")),
                project(self.w_value.as_ref().expect("fixed mode has W_V")),
            ),
        };
        let ops: &dyn AttentionOps = match graph {
            Graph::Dense(b) => &DenseOps {
                batch: b,
                slope: self.slope,
            },
            Graph::Sparse(b) => &SparseOps {
                batch: b,
                slope: self.slope,
            },
        };
        let a = &self.relation_vectors;
        // Hetero-first: phase 1 hetero aggregate, whose homo scores pick the values (non-invasive).
        let hete = ops.hete_softmax(&q, &k);
        let m_he = ops.apply(Hete, &self.dropout(&hete, train), &v);
        let heho = ops.apply(Homo, &self.dropout(&ops.homo_softmax(&m_he, a), train), &v);
        // Homo-first.
        let hohe = match self.mode {
            // Without dropout this is phase 1's aggregate again: reuse it (same numbers).
            HanMode::Compat if !train || self.attention_dropout == 0.0 => m_he.shallow_clone(),
            // Official: scores from the original Q, K (a fresh dropout mask on the same softmax).
            HanMode::Compat => ops.apply(Hete, &self.dropout(&hete, train), &v),
            HanMode::Fixed => {
                let alpha = self.dropout(&ops.homo_softmax(&q, a), train);
                let (q1, k1) = (ops.apply(Homo, &alpha, &q), ops.apply(Homo, &alpha, &k));
                ops.apply(Hete, &self.dropout(&ops.hete_softmax(&q1, &k1), train), &v)
            }
        };
        self.gate(&hohe, &heho)
    }
}

/// The two relation sets; a sparse weight vector lives on the edge list of its set.
#[derive(Clone, Copy)]
enum EdgeSet {
    /// Relations 1-4: self-loops and transitions.
    Homo,
    /// Relations 1 and 5-10: self-loops and cross-type links.
    Hete,
}
use EdgeSet::{Hete, Homo};

/// The three attention primitives, for either layout. Weights are [B, N, N] (dense) or [E]
/// over the edge list of their set (sparse).
trait AttentionOps {
    /// Homogeneous content attention on features `f`: softmax over relations 1-4 of
    /// `LR(sum_d f_i f_j a_r)`.
    fn homo_softmax(&self, f: &Tensor, relation_vectors: &Tensor) -> Tensor;
    /// Heterogeneous key-query attention: softmax over relations {1, 5..10} of `LR(q_i . k_j)`.
    fn hete_softmax(&self, q: &Tensor, k: &Tensor) -> Tensor;
    /// Weighted sum of neighbour values with weights of the edge set `set`.
    fn apply(&self, set: EdgeSet, weights: &Tensor, values: &Tensor) -> Tensor;
}

struct DenseOps<'a> {
    batch: &'a DenseGraphBatch,
    slope: f64,
}

impl AttentionOps for DenseOps<'_> {
    fn homo_softmax(&self, f: &Tensor, relation_vectors: &Tensor) -> Tensor {
        let dim = f.size()[2];
        // e_r = (f ⊙ a_r) fᵀ for the four relations at once: [B, 4, N, N] (spec §4.8).
        let scaled = f.unsqueeze(1) * relation_vectors.view([1, 4, 1, dim]);
        let logits = leaky_relu(
            &scaled.matmul(&f.unsqueeze(1).transpose(-1, -2)),
            self.slope,
        );
        let adjacency = &self.batch.adjacency;
        let homo = adjacency.ge(1).logical_and(&adjacency.le(4));
        let selected = logits
            .gather(1, &(adjacency - 1).clamp(0, 3).unsqueeze(1), false)
            .squeeze_dim(1);
        selected
            .masked_fill(&homo.logical_not(), NEG)
            .softmax(-1, Kind::Float)
    }

    fn hete_softmax(&self, q: &Tensor, k: &Tensor) -> Tensor {
        let adjacency = &self.batch.adjacency;
        let hete = adjacency.eq(1).logical_or(&adjacency.ge(5));
        // LeakyReLU after masking, as officially (irrelevant for real rows).
        let scores = q
            .matmul(&k.transpose(-1, -2))
            .masked_fill(&hete.logical_not(), NEG);
        leaky_relu(&scores, self.slope).softmax(-1, Kind::Float)
    }

    fn apply(&self, _set: EdgeSet, weights: &Tensor, values: &Tensor) -> Tensor {
        weights.matmul(values)
    }
}

struct SparseOps<'a> {
    batch: &'a SparseGraphBatch,
    slope: f64,
}

impl AttentionOps for SparseOps<'_> {
    fn homo_softmax(&self, f: &Tensor, relation_vectors: &Tensor) -> Tensor {
        let b = self.batch;
        let a = relation_vectors.index_select(0, &(&b.homo_relations - 1));
        let logits = (f.index_select(0, &b.homo_rows) * a * f.index_select(0, &b.homo_cols))
            .sum_dim_intlist(-1, false, Kind::Float);
        segment_softmax(&leaky_relu(&logits, self.slope), &b.homo_rows, b.num_nodes)
    }

    fn hete_softmax(&self, q: &Tensor, k: &Tensor) -> Tensor {
        let b = self.batch;
        let logits = (q.index_select(0, &b.hete_rows) * k.index_select(0, &b.hete_cols))
            .sum_dim_intlist(-1, false, Kind::Float);
        segment_softmax(&leaky_relu(&logits, self.slope), &b.hete_rows, b.num_nodes)
    }

    fn apply(&self, set: EdgeSet, weights: &Tensor, values: &Tensor) -> Tensor {
        let b = self.batch;
        match set {
            Homo => aggregate(weights, &b.homo_rows, &b.homo_cols, values, b.num_nodes),
            Hete => aggregate(weights, &b.hete_rows, &b.hete_cols, values, b.num_nodes),
        }
    }
}
