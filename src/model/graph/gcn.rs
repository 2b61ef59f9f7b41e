//! GCN (spec §5.2): `ReLU(D^-1/2 Â D^-1/2 H W + b)` with `Â` the binary adjacency with
//! self-loops. MSGraph adjacency is symmetric by construction (every relation has its inverse),
//! so `Â` needs no symmetrisation. `compat`: the official layer, `ReLU(A (dropout(H) W) + b)`
//! with the unnormalised binary `A` and dropout `dropout_local` on its input.

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use super::{GraphCommon, GraphLayer};
use crate::graph::{GraphBatch, GraphLayout};
use crate::model::layers::ops::{dropout, EdgeOps};
use crate::model::layers::uniform_init;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcnConfig {
    /// The official unnormalised sum with input dropout instead of the normalised GCN.
    pub compat: bool,
}

pub struct GcnLayer {
    compat: bool,
    input_dropout: f64,
    weight: Tensor,
    bias: Tensor,
    /// The per-edge primitives (`edge_kernels`).
    edges: EdgeOps,
}

/// `deg^-1/2`, zero where the degree is zero (padding).
fn inverse_sqrt(degree: &Tensor) -> Tensor {
    degree.clamp_min(1.0).pow_tensor_scalar(-0.5) * degree.gt(0.0)
}

impl GraphLayer for GcnLayer {
    type Config = GcnConfig;
    const LAYOUTS: &'static [GraphLayout] = &[GraphLayout::Sparse, GraphLayout::Dense];
    const VERSION: u32 = 1;
    const FUSED_EDGE_KERNELS: bool = true;

    fn reads_neighbour_degrees(config: &GcnConfig) -> bool {
        !config.compat
    }

    fn new(path: &nn::Path, common: &GraphCommon, config: &GcnConfig, _first: bool) -> Self {
        let init = uniform_init(common.dim);
        Self {
            compat: config.compat,
            input_dropout: common.dropout,
            weight: path.var("weight", &[common.dim, common.dim], init),
            bias: path.var("bias", &[common.dim], init),
            edges: EdgeOps(common.edge_kernels),
        }
    }

    fn forward(&self, h: &Tensor, graph: &GraphBatch, train: bool) -> Tensor {
        let h = if self.compat {
            dropout(h, self.input_dropout, train)
        } else {
            h.shallow_clone()
        };
        let hw = h.matmul(&self.weight);
        let propagated = match graph {
            GraphBatch::Dense(b) => {
                let a = b.adjacency.gt(0).to_kind(Kind::Float);
                if self.compat {
                    a.matmul(&hw)
                } else {
                    let norm = inverse_sqrt(&a.sum_dim_intlist(-1, true, Kind::Float));
                    a.matmul(&(hw * &norm)) * norm
                }
            }
            GraphBatch::Sparse(b) => {
                let e = b.all_edges();
                let weights = if self.compat {
                    Tensor::ones([e.rows.size()[0]], (Kind::Float, hw.device()))
                } else {
                    let degree = e.rows.bincount::<Tensor>(None, b.num_nodes);
                    let norm = inverse_sqrt(&degree.to_kind(Kind::Float));
                    norm.index_select(0, &e.rows) * norm.index_select(0, &e.cols)
                };
                self.edges
                    .aggregate(&weights, &e.rows, &e.cols, &hw, b.num_nodes)
            }
        };
        (propagated + &self.bias).relu()
    }
}
