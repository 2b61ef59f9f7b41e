//! A Graphormer-style transformer on the same graphs (spec §5.3, after Ying et al. 2021): full
//! self-attention over each graph's real nodes, with the structure injected only as encodings.
//! - centrality: `H0 += E_in[min(deg_in, 63)] + E_out[min(deg_out, 63)]` (non-self-loop edges);
//! - attention bias per head: `φ_spd[SPD(i, j)] + φ_rel[adj(i, j)]`, the hop distance capped at
//!   8 with one bucket for unreachable pairs, the relation id 0..10 (0 = no direct edge);
//! - pre-LN blocks: `H += Drop(MHA(LN(H)))`, `H += Drop(FFN(LN(H)))`, FFN `D -> 4D -> D` (GELU).
//!
//! Distances and degrees are computed once per dataset by the graph builder
//! (`graph::structure`). Dense only: every pair of a graph's nodes is attended.
//!
//! Initialisation is the transformer one (layer norms at 1 and 0, tch's default linear layers),
//! not the official uniform range, which would start the layer norms near zero.

use serde::{Deserialize, Serialize};
use tch::nn::Module;
use tch::{nn, Kind, Tensor};

use super::{GraphCommon, GraphLayer};
use crate::graph::structure::UNREACHABLE;
use crate::graph::{DenseGraphBatch, DenseStructure, GraphBatch, GraphLayout, NUM_RELATIONS};
use crate::model::layers::ops::{dropout, NEG};
use crate::model::layers::uniform_init;
use crate::model::{check_heads, check_probability, check_size, MAX_INNER_WIDTH};

/// Degrees are clipped to this (the encodings have one more row).
pub const MAX_DEGREE: i64 = 63;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphormerConfig {
    /// Attention heads (must divide dim).
    pub heads: i64,
    /// Dropout on the attention weights.
    pub attention_dropout: f64,
    /// Dropout on each residual branch.
    pub block_dropout: f64,
    /// FFN width as a multiple of dim.
    pub ffn_multiplier: i64,
}

impl Default for GraphormerConfig {
    fn default() -> Self {
        Self {
            heads: 4,
            attention_dropout: 0.2,
            block_dropout: 0.1,
            ffn_multiplier: 4,
        }
    }
}

struct Centrality {
    in_degree: Tensor,
    out_degree: Tensor,
}

pub struct GraphormerLayer {
    config: GraphormerConfig,
    /// Owned by the first layer only.
    centrality: Option<Centrality>,
    /// [UNREACHABLE + 1, H] and [11, H].
    distance_bias: Tensor,
    relation_bias: Tensor,
    norm_attention: nn::LayerNorm,
    query: nn::Linear,
    key: nn::Linear,
    value: nn::Linear,
    output: nn::Linear,
    norm_ffn: nn::LayerNorm,
    ffn_in: nn::Linear,
    ffn_out: nn::Linear,
}

fn structure_of(graph: &GraphBatch) -> (&DenseGraphBatch, &DenseStructure) {
    match graph {
        GraphBatch::Dense(b) => (
            b,
            b.structure
                .as_ref()
                .expect("graphormer declares that it needs structure encodings"),
        ),
        GraphBatch::Sparse(_) => unreachable!("graphormer is dense only"),
    }
}

impl GraphormerLayer {
    /// [B, N, D] -> [B, H, N, D/H].
    fn heads(&self, x: &Tensor) -> Tensor {
        let (b, n, d) = x.size3().expect("[B, N, D]");
        x.view([b, n, self.config.heads, d / self.config.heads])
            .permute([0, 2, 1, 3])
    }

    fn attention(
        &self,
        h: &Tensor,
        batch: &DenseGraphBatch,
        structure: &DenseStructure,
        train: bool,
    ) -> Tensor {
        let (b, n, d) = h.size3().expect("[B, N, D]");
        let head_dim = d / self.config.heads;
        let (q, k, v) = (
            self.heads(&self.query.forward(h)),
            self.heads(&self.key.forward(h)),
            self.heads(&self.value.forward(h)),
        );
        // Biases [B, N, N, H] -> [B, H, N, N].
        let bias = (Tensor::embedding(&self.distance_bias, &structure.distances, -1, false, false)
            + Tensor::embedding(&self.relation_bias, &batch.adjacency, -1, false, false))
        .permute([0, 3, 1, 2]);
        let logits = q.matmul(&k.transpose(-1, -2)) / (head_dim as f64).sqrt() + bias;
        let padding_keys = batch.real.eq(0.0).view([b, 1, 1, n]);
        let weights = logits
            .masked_fill(&padding_keys, NEG)
            .softmax(-1, Kind::Float);
        let weights = dropout(&weights, self.config.attention_dropout, train);
        let merged = weights.matmul(&v).permute([0, 2, 1, 3]).reshape([b, n, d]);
        self.output.forward(&merged)
    }
}

impl GraphLayer for GraphormerLayer {
    type Config = GraphormerConfig;
    const LAYOUTS: &'static [GraphLayout] = &[GraphLayout::Dense];
    const VERSION: u32 = 1;

    fn needs_structure(_config: &GraphormerConfig) -> bool {
        true
    }

    /// Every node attends to every node of its graph.
    fn hops(_config: &GraphormerConfig) -> Option<usize> {
        None
    }

    fn validate(config: &GraphormerConfig, common: &GraphCommon) -> Result<(), String> {
        check_heads(config.heads, common.dim)?;
        // The feed-forward width is ffn_multiplier × dim.
        check_size(
            "ffn_multiplier",
            config.ffn_multiplier,
            MAX_INNER_WIDTH / common.dim.max(1),
        )?;
        check_probability("attention_dropout", config.attention_dropout)?;
        check_probability("block_dropout", config.block_dropout)
    }

    fn new(path: &nn::Path, common: &GraphCommon, config: &GraphormerConfig, first: bool) -> Self {
        let (dim, heads) = (common.dim, config.heads);
        let init = uniform_init(dim);
        let centrality = first.then(|| Centrality {
            in_degree: path.var("in_degree_embedding", &[MAX_DEGREE + 1, dim], init),
            out_degree: path.var("out_degree_embedding", &[MAX_DEGREE + 1, dim], init),
        });
        let linear = |name: &str, i: i64, o: i64| nn::linear(path / name, i, o, Default::default());
        let ffn = config.ffn_multiplier * dim;
        Self {
            config: config.clone(),
            centrality,
            distance_bias: path.var("distance_bias", &[i64::from(UNREACHABLE) + 1, heads], init),
            relation_bias: path.var("relation_bias", &[NUM_RELATIONS as i64 + 1, heads], init),
            norm_attention: nn::layer_norm(path / "norm_attention", vec![dim], Default::default()),
            query: linear("query", dim, dim),
            key: linear("key", dim, dim),
            value: linear("value", dim, dim),
            output: linear("output", dim, dim),
            norm_ffn: nn::layer_norm(path / "norm_ffn", vec![dim], Default::default()),
            ffn_in: linear("ffn_in", dim, ffn),
            ffn_out: linear("ffn_out", ffn, dim),
        }
    }

    fn encode_input(&self, h0: Tensor, graph: &GraphBatch) -> Tensor {
        let (_, structure) = structure_of(graph);
        let centrality = self
            .centrality
            .as_ref()
            .expect("the first layer owns the centrality encodings");
        let lookup = |table: &Tensor, degree: &Tensor| {
            Tensor::embedding(table, &degree.clamp_max(MAX_DEGREE), -1, false, false)
        };
        h0 + lookup(&centrality.in_degree, &structure.in_degree)
            + lookup(&centrality.out_degree, &structure.out_degree)
    }

    fn forward(&self, h: &Tensor, graph: &GraphBatch, train: bool) -> Tensor {
        let (batch, structure) = structure_of(graph);
        let p = self.config.block_dropout;
        let attended = self.attention(&self.norm_attention.forward(h), batch, structure, train);
        let h = h + dropout(&attended, p, train);
        let inner = self.ffn_in.forward(&self.norm_ffn.forward(&h)).gelu("none");
        &h + dropout(&self.ffn_out.forward(&inner), p, train)
    }
}
