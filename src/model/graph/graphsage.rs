//! GraphSAGE with the mean aggregator (spec §5.2): `ReLU(W [h_i ‖ mean_{j ∈ N(i)} h_j])`,
//! `N(i)` the neighbours without the self-loop (a mean of nothing is zero), no bias.
//! `compat`: the official layer, `ReLU(W (A · dropout(H)))` with the binary `A` including the
//! self-loop (a sum, no separate self weight) and dropout `dropout_local` on its input.

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use super::{GraphCommon, GraphLayer};
use crate::graph::{GraphBatch, GraphLayout, Relation};
use crate::model::layers::ops::{dropout, EdgeOps};
use crate::model::layers::uniform_init;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SageConfig {
    /// The official sum over `A` (self included) with input dropout instead of the mean form.
    pub compat: bool,
}

pub struct SageLayer {
    compat: bool,
    input_dropout: f64,
    /// [2D, D] for [h_i ‖ mean], [D, D] in compat.
    weight: Tensor,
    /// The per-edge primitives (`edge_kernels`).
    edges: EdgeOps,
}

impl GraphLayer for SageLayer {
    type Config = SageConfig;
    const LAYOUTS: &'static [GraphLayout] = &[GraphLayout::Sparse, GraphLayout::Dense];
    const VERSION: u32 = 1;
    const FUSED_EDGE_KERNELS: bool = true;

    fn new(path: &nn::Path, common: &GraphCommon, config: &SageConfig, _first: bool) -> Self {
        let rows = if config.compat { 1 } else { 2 } * common.dim;
        Self {
            compat: config.compat,
            input_dropout: common.dropout,
            weight: path.var("weight", &[rows, common.dim], uniform_init(common.dim)),
            edges: EdgeOps(common.edge_kernels),
        }
    }

    fn forward(&self, h: &Tensor, graph: &GraphBatch, train: bool) -> Tensor {
        if self.compat {
            let h = dropout(h, self.input_dropout, train);
            let summed = match graph {
                GraphBatch::Dense(b) => b.adjacency.gt(0).to_kind(Kind::Float).matmul(&h),
                GraphBatch::Sparse(b) => {
                    let e = b.all_edges();
                    let ones = Tensor::ones([e.rows.size()[0]], (Kind::Float, h.device()));
                    self.edges
                        .aggregate(&ones, &e.rows, &e.cols, &h, b.num_nodes)
                }
            };
            return summed.matmul(&self.weight).relu();
        }
        let self_loop = Relation::SelfLoop as i64;
        let mean = match graph {
            GraphBatch::Dense(b) => {
                let a = b.adjacency.gt(self_loop).to_kind(Kind::Float);
                let degree = a.sum_dim_intlist(-1, true, Kind::Float).clamp_min(1.0);
                a.matmul(h) / degree
            }
            GraphBatch::Sparse(b) => {
                let e = b.all_edges();
                let keep = e.relations.ne(self_loop);
                let (rows, cols) = (e.rows.masked_select(&keep), e.cols.masked_select(&keep));
                let degree = rows
                    .bincount::<Tensor>(None, b.num_nodes)
                    .to_kind(Kind::Float)
                    .clamp_min(1.0);
                let weights = degree.index_select(0, &rows).reciprocal();
                self.edges.aggregate(&weights, &rows, &cols, h, b.num_nodes)
            }
        };
        Tensor::cat(&[h, &mean], -1).matmul(&self.weight).relu()
    }
}
