//! GAT (spec §5.2) on the binary adjacency with self-loops: `z = H W` split into `heads` heads,
//! `e_ij = LeakyReLU_0.2(a_l · z_i + a_r · z_j)`, softmax over the neighbours, the heads'
//! weighted sums concatenated, plus a bias, then ReLU (as the official layer). One head by
//! default, as in the official code.

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use super::{GraphCommon, GraphLayer};
use crate::graph::{GraphBatch, GraphLayout};
use crate::model::layers::ops::{dropout, leaky_relu, masked_softmax, segment_softmax, EdgeOps};
use crate::model::layers::uniform_init;
use crate::model::{check_heads, check_probability};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatConfig {
    /// Attention heads; each has `dim / heads` channels.
    pub heads: i64,
    /// Dropout on the attention weights (none in the official layer).
    pub attention_dropout: f64,
    pub leaky_slope: f64,
}

impl Default for GatConfig {
    fn default() -> Self {
        Self {
            heads: 1,
            attention_dropout: 0.0,
            leaky_slope: 0.2,
        }
    }
}

pub struct GatLayer {
    heads: i64,
    attention_dropout: f64,
    slope: f64,
    weight: Tensor,
    /// [H, D/H] each.
    attention_left: Tensor,
    attention_right: Tensor,
    bias: Tensor,
    /// The per-edge primitives (`edge_kernels`).
    edges: EdgeOps,
}

impl GraphLayer for GatLayer {
    type Config = GatConfig;
    const LAYOUTS: &'static [GraphLayout] = &[GraphLayout::Sparse, GraphLayout::Dense];
    const VERSION: u32 = 1;
    const FUSED_EDGE_KERNELS: bool = true;

    fn validate(config: &GatConfig, common: &GraphCommon) -> Result<(), String> {
        check_heads(config.heads, common.dim)?;
        check_probability("attention_dropout", config.attention_dropout)
    }

    fn new(path: &nn::Path, common: &GraphCommon, config: &GatConfig, _first: bool) -> Self {
        let (dim, heads) = (common.dim, config.heads);
        let init = uniform_init(dim);
        Self {
            heads,
            attention_dropout: config.attention_dropout,
            slope: config.leaky_slope,
            weight: path.var("weight", &[dim, dim], init),
            attention_left: path.var("attention_left", &[heads, dim / heads], init),
            attention_right: path.var("attention_right", &[heads, dim / heads], init),
            bias: path.var("bias", &[dim], init),
            edges: EdgeOps(common.edge_kernels),
        }
    }

    fn forward(&self, h: &Tensor, graph: &GraphBatch, train: bool) -> Tensor {
        let shape = h.size();
        let dim = shape[shape.len() - 1];
        let mut split = shape.clone();
        split.pop();
        split.extend([self.heads, dim / self.heads]);
        // z: [..., H, D/H]; per-node attention halves: [..., H].
        let z = h.matmul(&self.weight).view(split.as_slice());
        let left = (&z * &self.attention_left).sum_dim_intlist(-1, false, Kind::Float);
        let right = (&z * &self.attention_right).sum_dim_intlist(-1, false, Kind::Float);
        let out = match graph {
            GraphBatch::Dense(b) => {
                // [B, H, N, N] logits; z as [B, H, N, D/H].
                let logits =
                    left.permute([0, 2, 1]).unsqueeze(-1) + right.permute([0, 2, 1]).unsqueeze(-2);
                let mask = b.adjacency.gt(0).unsqueeze(1);
                let weights = masked_softmax(&leaky_relu(&logits, self.slope), &mask);
                let weights = dropout(&weights, self.attention_dropout, train);
                weights
                    .matmul(&z.permute([0, 2, 1, 3]))
                    .permute([0, 2, 1, 3])
            }
            GraphBatch::Sparse(b) => {
                let e = b.all_edges();
                let logits = left.index_select(0, &e.rows) + right.index_select(0, &e.cols);
                let weights =
                    segment_softmax(&leaky_relu(&logits, self.slope), &e.rows, b.num_nodes);
                let weights = dropout(&weights, self.attention_dropout, train);
                self.edges
                    .aggregate(&weights, &e.rows, &e.cols, &z, b.num_nodes)
            }
        };
        (out.reshape(shape.as_slice()) + &self.bias).relu()
    }
}
