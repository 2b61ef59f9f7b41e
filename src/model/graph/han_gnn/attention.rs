//! HAN-GNN's attention primitives in two execution paths over the same parameters: dense
//! (padded N × N per graph, never a [B, N, N, D] tensor) and sparse (edge lists, cost linear in
//! |E|). Both give the same numbers on the same graphs.

use tch::{Kind, Tensor};

use crate::graph::{DenseGraphBatch, GraphBatch, PhaseEdges};
use crate::model::layers::edge_kernels::EdgeKernels;
use crate::model::layers::ops::{leaky_relu, segment_softmax, EdgeOps, NEG};

/// The two relation sets; a sparse weight vector lives on the edge list of its set.
#[derive(Clone, Copy)]
pub enum EdgeSet {
    /// Relations 1-4: self-loops and transitions.
    Homo,
    /// Relations 1 and 5-10: self-loops and cross-type links.
    Hete,
}

/// The three attention primitives, for either layout. Weights are [B, N, N] (dense) or [E]
/// over the edge list of their set (sparse).
pub trait AttentionOps {
    /// Homogeneous content attention on features `f`: softmax over relations 1-4 of
    /// `LR(sum_d f_i f_j a_r)`.
    fn homo_softmax(&self, f: &Tensor, relation_vectors: &Tensor) -> Tensor;
    /// Heterogeneous key-query attention: softmax over relations {1, 5..10} of `LR(q_i . k_j)`.
    fn hete_softmax(&self, q: &Tensor, k: &Tensor) -> Tensor;
    /// Weighted sum of neighbour values with weights of the edge set `set`.
    fn apply(&self, set: EdgeSet, weights: &Tensor, values: &Tensor) -> Tensor;
}

/// The primitives for a batch in its layout; sparse batches on the CPU take the fused edge
/// kernels when `kernels` says so.
pub fn ops_for(graph: &GraphBatch, slope: f64, kernels: EdgeKernels) -> Box<dyn AttentionOps + '_> {
    match graph {
        GraphBatch::Dense(batch) => Box::new(DenseOps { batch, slope }),
        GraphBatch::Sparse(batch) => Box::new(SparseOps {
            num_nodes: batch.num_nodes,
            edges: batch.phase_edges(),
            slope,
            kernels: EdgeOps(kernels),
        }),
    }
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
    num_nodes: i64,
    edges: &'a PhaseEdges,
    slope: f64,
    kernels: EdgeOps,
}

impl AttentionOps for SparseOps<'_> {
    fn homo_softmax(&self, f: &Tensor, relation_vectors: &Tensor) -> Tensor {
        let (e, n) = (self.edges, self.num_nodes);
        let relations = &e.homo_relations - 1;
        let logits = self.kernels.scaled_dot(
            f,
            f,
            &e.homo_rows,
            &e.homo_cols,
            relation_vectors,
            &relations,
        );
        segment_softmax(&leaky_relu(&logits, self.slope), &e.homo_rows, n)
    }

    fn hete_softmax(&self, q: &Tensor, k: &Tensor) -> Tensor {
        let (e, n) = (self.edges, self.num_nodes);
        let logits = self.kernels.dot(q, k, &e.hete_rows, &e.hete_cols);
        segment_softmax(&leaky_relu(&logits, self.slope), &e.hete_rows, n)
    }

    fn apply(&self, set: EdgeSet, weights: &Tensor, values: &Tensor) -> Tensor {
        let (e, n) = (self.edges, self.num_nodes);
        match set {
            EdgeSet::Homo => self
                .kernels
                .aggregate(weights, &e.homo_rows, &e.homo_cols, values, n),
            EdgeSet::Hete => self
                .kernels
                .aggregate(weights, &e.hete_rows, &e.hete_cols, values, n),
        }
    }
}
