//! HGT, the Heterogeneous Graph Transformer (Hu et al. 2020), on the MSGraphs: node types item /
//! image code / text code with their own Q, K, V and output projections, the 10 relation ids
//! with their own attention matrix `W_att`, message matrix `W_msg` and prior `μ` per head:
//!
//! `att(s → t) = softmax_s( (K_s W_att[r]) · Q_t · μ[r] / √d )` per head,
//! `msg(s → t) = V_s W_msg[r]`, `H̃_t = ‖_heads Σ_s att · msg`,
//! `out_t = α_τ · A_τ(GELU(H̃_t)) + (1 − α_τ) · h_t` with `α_τ = sigmoid(skip_τ)`.
//!
//! The self-loop (relation 1) is one relation for every node type. Sparse path only: relation
//! matrices are applied to every node once per relation ([R, T, H, d]) and gathered per edge, so
//! the cost stays linear in |E| (no per-edge matrices are materialised).

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use super::{GraphCommon, GraphLayer};
use crate::graph::{GraphBatch, GraphLayout, NUM_RELATIONS};
use crate::model::layers::edge_kernels;
use crate::model::layers::ops::{dropout, segment_softmax, typed_projection, EdgeOps};
use crate::model::layers::uniform_init;
use crate::model::{check_heads, check_probability};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HgtConfig {
    pub heads: i64,
    /// Dropout on the attention weights.
    pub attention_dropout: f64,
}

impl Default for HgtConfig {
    fn default() -> Self {
        Self {
            heads: 4,
            attention_dropout: 0.0,
        }
    }
}

/// The tensors of one HGT layer: free parameters in `hgt`, generated from language
/// descriptions in `hgt-lang`.
pub struct HgtParams {
    /// [4, D, D] per node type (index 0 unused).
    pub w_query: Tensor,
    pub w_key: Tensor,
    pub w_value: Tensor,
    pub w_out: Tensor,
    /// [R + 1, H, d, d] per relation (index 0 unused).
    pub w_attention: Tensor,
    pub w_message: Tensor,
    /// [R + 1, H] relation priors.
    pub prior: Tensor,
    /// [4] per node type; sigmoid gives the share of the update in the output.
    pub skip: Tensor,
}

impl HgtParams {
    /// The tensors by their `hgt` variable names.
    pub fn named(&self) -> Vec<(&'static str, &Tensor)> {
        vec![
            ("w_query", &self.w_query),
            ("w_key", &self.w_key),
            ("w_value", &self.w_value),
            ("w_out", &self.w_out),
            ("w_attention", &self.w_attention),
            ("w_message", &self.w_message),
            ("prior", &self.prior),
            ("skip", &self.skip),
        ]
    }
}

/// `x` [T, H, d] multiplied by each relation's [H, d, d] matrix: [R + 1, T, H, d].
fn per_relation(x: &Tensor, w: &Tensor) -> Tensor {
    Tensor::einsum("thd,rhde->rthe", &[x, w], None::<i64>)
}

/// One HGT layer over a sparse batch with the tensors `p` (see the module text); the per-edge
/// dot products and the aggregation with the kernels `edges` names.
pub fn hgt_forward(
    p: &HgtParams,
    heads: i64,
    attention_dropout: f64,
    edges: EdgeOps,
    h: &Tensor,
    graph: &GraphBatch,
    train: bool,
) -> Tensor {
    let GraphBatch::Sparse(b) = graph else {
        unreachable!("hgt declares the sparse layout only")
    };
    let e = b.all_edges();
    let types = graph.type_index();
    let (t, dim) = (h.size()[0], h.size()[1]);
    let d = dim / heads;
    let split = |x: Tensor| x.view([t, heads, d]);
    let q = split(typed_projection(h, types, &p.w_query));
    let k = split(typed_projection(h, types, &p.w_key));
    let v = split(typed_projection(h, types, &p.w_value));
    // Row (relation, node) of the [R + 1, T, ...] tables for each edge's source.
    let source = &e.relations * t + &e.cols;
    let keys = per_relation(&k, &p.w_attention).reshape([-1, heads, d]);
    // The eager branches keep the operators (and their order) of the original layer, so eager
    // runs give the numbers they always gave.
    let fused = edges.fused(h);
    let products = if fused {
        edge_kernels::edge_dot_per_head(&q, &keys, &e.rows, &source)
    } else {
        (keys.index_select(0, &source) * q.index_select(0, &e.rows)).sum_dim_intlist(
            -1,
            false,
            Kind::Float,
        )
    };
    let logits = products * p.prior.index_select(0, &e.relations) / (d as f64).sqrt();
    let weights = segment_softmax(&logits, &e.rows, b.num_nodes);
    let weights = dropout(&weights, attention_dropout, train);
    let values = per_relation(&v, &p.w_message).reshape([-1, heads, d]);
    let aggregated = if fused {
        edge_kernels::aggregate(&weights, &e.rows, &source, &values, t)
    } else {
        let messages = values.index_select(0, &source) * weights.unsqueeze(-1);
        Tensor::zeros([t, heads, d], (Kind::Float, h.device())).index_add(0, &e.rows, &messages)
    }
    .view([t, dim]);
    let update = typed_projection(&aggregated.gelu("none"), types, &p.w_out);
    // Per-node skip share from its type (padding rows have none in sparse batches).
    let alpha = p.skip.sigmoid().index_select(0, &b.types).unsqueeze(-1);
    &alpha * update + (1.0 - &alpha) * h
}

pub struct HgtLayer {
    heads: i64,
    attention_dropout: f64,
    params: HgtParams,
    edges: EdgeOps,
}

impl GraphLayer for HgtLayer {
    type Config = HgtConfig;
    const LAYOUTS: &'static [GraphLayout] = &[GraphLayout::Sparse];
    const VERSION: u32 = 1;
    const FUSED_EDGE_KERNELS: bool = true;

    fn validate(config: &HgtConfig, common: &GraphCommon) -> Result<(), String> {
        check_heads(config.heads, common.dim)?;
        check_probability("attention_dropout", config.attention_dropout)
    }

    fn new(path: &nn::Path, common: &GraphCommon, config: &HgtConfig, _first: bool) -> Self {
        let dim = common.dim;
        let (heads, d) = (config.heads, common.dim / config.heads);
        let relations = NUM_RELATIONS as i64 + 1;
        let typed = |name: &str| path.var(name, &[4, dim, dim], uniform_init(dim));
        let relation_matrices = |name: &str| {
            // Identity plus noise: a relation starts as plain attention / message passing.
            let eye = Tensor::eye(d, (Kind::Float, path.device()))
                .expand([relations, heads, d, d], false)
                .contiguous();
            let w = path.var(name, &[relations, heads, d, d], uniform_init(d));
            tch::no_grad(|| {
                let _ = w.shallow_clone().g_add_(&eye);
            });
            w
        };
        Self {
            heads,
            attention_dropout: config.attention_dropout,
            params: HgtParams {
                w_query: typed("w_query"),
                w_key: typed("w_key"),
                w_value: typed("w_value"),
                w_out: typed("w_out"),
                w_attention: relation_matrices("w_attention"),
                w_message: relation_matrices("w_message"),
                prior: path.var("prior", &[relations, heads], nn::Init::Const(1.0)),
                skip: path.var("skip", &[4], nn::Init::Const(1.0)),
            },
            edges: EdgeOps(common.edge_kernels),
        }
    }

    fn forward(&self, h: &Tensor, graph: &GraphBatch, train: bool) -> Tensor {
        hgt_forward(
            &self.params,
            self.heads,
            self.attention_dropout,
            self.edges,
            h,
            graph,
            train,
        )
    }
}
