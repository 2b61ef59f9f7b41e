//! Type-aware key-query attention over every edge (the official `KVAttentionLayer`, spec §5.1):
//! typed projections per node type, logits `LeakyReLU_0.1(q_i · k_j)` (no scaling) for every
//! pair with a relation, softmax over the neighbours, values aggregated. `compat` keeps the
//! official K = V = Q (only `W_Q` is used); `fixed` has its own `W_K` and `W_V`. Cost: one
//! attention over |E| (HAN-GNN does two phases over its two relation sets).

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use super::han_gnn::HanMode;
use super::{GraphCommon, GraphLayer};
use crate::graph::{GraphBatch, GraphLayout};
use crate::model::check_probability;
use crate::model::layers::ops::{
    dropout, leaky_relu, masked_softmax, segment_softmax, typed_projection, EdgeOps,
};
use crate::model::layers::uniform_init;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KvAttentionConfig {
    pub mode: HanMode,
    /// Dropout on the attention weights (none in the official layer).
    pub attention_dropout: f64,
    pub leaky_slope: f64,
}

impl Default for KvAttentionConfig {
    fn default() -> Self {
        Self {
            mode: HanMode::Compat,
            attention_dropout: 0.0,
            leaky_slope: 0.1,
        }
    }
}

pub struct KvAttentionLayer {
    attention_dropout: f64,
    slope: f64,
    /// [4, D, D] each; index 0 (padding) unused.
    w_query: Tensor,
    w_key: Option<Tensor>,
    w_value: Option<Tensor>,
    /// The per-edge primitives (`edge_kernels`).
    edges: EdgeOps,
}

impl GraphLayer for KvAttentionLayer {
    type Config = KvAttentionConfig;
    const LAYOUTS: &'static [GraphLayout] = &[GraphLayout::Sparse, GraphLayout::Dense];
    const VERSION: u32 = 1;
    const FUSED_EDGE_KERNELS: bool = true;

    fn validate(config: &KvAttentionConfig, _common: &GraphCommon) -> Result<(), String> {
        check_probability("attention_dropout", config.attention_dropout)
    }

    fn new(
        path: &nn::Path,
        common: &GraphCommon,
        config: &KvAttentionConfig,
        _first: bool,
    ) -> Self {
        let dim = common.dim;
        let typed = |name: &str| path.var(name, &[4, dim, dim], uniform_init(dim));
        let fixed = config.mode == HanMode::Fixed;
        Self {
            attention_dropout: config.attention_dropout,
            slope: config.leaky_slope,
            w_query: typed("w_query"),
            w_key: fixed.then(|| typed("w_key")),
            w_value: fixed.then(|| typed("w_value")),
            edges: EdgeOps(common.edge_kernels),
        }
    }

    fn forward(&self, h: &Tensor, graph: &GraphBatch, train: bool) -> Tensor {
        let types = graph.type_index();
        let q = typed_projection(h, types, &self.w_query);
        let project = |w: &Option<Tensor>| match w {
            Some(w) => typed_projection(h, types, w),
            None => q.shallow_clone(),
        };
        let (k, v) = (project(&self.w_key), project(&self.w_value));
        match graph {
            GraphBatch::Dense(b) => {
                let logits = leaky_relu(&q.matmul(&k.transpose(-1, -2)), self.slope);
                let weights = masked_softmax(&logits, &b.adjacency.gt(0));
                dropout(&weights, self.attention_dropout, train).matmul(&v)
            }
            GraphBatch::Sparse(b) => {
                let e = b.all_edges();
                let logits = leaky_relu(&self.edges.dot(&q, &k, &e.rows, &e.cols), self.slope);
                let weights = segment_softmax(&logits, &e.rows, b.num_nodes);
                let weights = dropout(&weights, self.attention_dropout, train);
                self.edges
                    .aggregate(&weights, &e.rows, &e.cols, &v, b.num_nodes)
            }
        }
    }
}
