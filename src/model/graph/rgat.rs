//! Relational GAT exactly as the official `RGATLayer` (spec §5.1): `Hw = H W`; for the pair
//! (i, j) with relation r, the logit `LeakyReLU_α((Hw_i ⊙ Hw_j) · a_r)` times a learned
//! per-relation amplifier `ρ_r` (it may turn negative); softmax over the neighbours; `Hw`
//! aggregated. No bias, no activation, no dropout (the official layer applies none).

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use super::{GraphCommon, GraphLayer};
use crate::graph::{GraphBatch, GraphLayout, NUM_RELATIONS};
use crate::model::layers::ops::{leaky_relu, masked_softmax, segment_softmax, EdgeOps};
use crate::model::layers::uniform_init;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RgatConfig {
    /// The LeakyReLU slope (the official config's `alpha`).
    pub leaky_slope: f64,
}

impl Default for RgatConfig {
    fn default() -> Self {
        Self { leaky_slope: 0.1 }
    }
}

pub struct RgatLayer {
    slope: f64,
    weight: Tensor,
    /// [10, D]: a_1..a_10.
    relation_vectors: Tensor,
    /// [10]: ρ_1..ρ_10.
    amplifiers: Tensor,
    /// The per-edge primitives (`edge_kernels`).
    edges: EdgeOps,
}

impl GraphLayer for RgatLayer {
    type Config = RgatConfig;
    const LAYOUTS: &'static [GraphLayout] = &[GraphLayout::Sparse, GraphLayout::Dense];
    const VERSION: u32 = 1;
    const FUSED_EDGE_KERNELS: bool = true;

    fn new(path: &nn::Path, common: &GraphCommon, config: &RgatConfig, _first: bool) -> Self {
        let (dim, relations) = (common.dim, NUM_RELATIONS as i64);
        let init = uniform_init(dim);
        Self {
            slope: config.leaky_slope,
            weight: path.var("weight", &[dim, dim], init),
            relation_vectors: path.var("relation_vectors", &[relations, dim], init),
            amplifiers: path.var("amplifiers", &[relations], init),
            edges: EdgeOps(common.edge_kernels),
        }
    }

    fn forward(&self, h: &Tensor, graph: &GraphBatch, _train: bool) -> Tensor {
        let hw = h.matmul(&self.weight);
        match graph {
            GraphBatch::Dense(b) => {
                let (relations, dim) = (NUM_RELATIONS as i64, hw.size()[2]);
                // All ten relation logits at once: [B, 10, N, N] (never a [B, N, N, D] tensor).
                let scaled = hw.unsqueeze(1) * self.relation_vectors.view([1, relations, 1, dim]);
                let logits = leaky_relu(
                    &scaled.matmul(&hw.unsqueeze(1).transpose(-1, -2)),
                    self.slope,
                );
                let index = (&b.adjacency - 1).clamp(0, relations - 1);
                let selected = logits.gather(1, &index.unsqueeze(1), false).squeeze_dim(1)
                    * self
                        .amplifiers
                        .index_select(0, &index.view([-1]))
                        .view_as(&index);
                masked_softmax(&selected, &b.adjacency.gt(0)).matmul(&hw)
            }
            GraphBatch::Sparse(b) => {
                let e = b.all_edges();
                let relation = &e.relations - 1;
                let logits = self.edges.scaled_dot(
                    &hw,
                    &hw,
                    &e.rows,
                    &e.cols,
                    &self.relation_vectors,
                    &relation,
                );
                let logits =
                    leaky_relu(&logits, self.slope) * self.amplifiers.index_select(0, &relation);
                let weights = segment_softmax(&logits, &e.rows, b.num_nodes);
                self.edges
                    .aggregate(&weights, &e.rows, &e.cols, &hw, b.num_nodes)
            }
        }
    }
}
