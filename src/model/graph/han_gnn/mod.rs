//! MMSR's HAN-GNN layer (spec §4.3, `HeteAttenLayer` with `fusion_type = asy_mask`) and the
//! switches its ablations (§4.6) need, as a [`GraphLayer`] inside the shared graph wrapper.
//!
//! compat reproduces the official computation: Q = K = V = typed projection with W_Q only; the
//! homo-first branch takes its hetero scores from the original Q, K (phase 1 is ignored); a soft
//! per-node gate; no residual. fixed uses separate W_K and W_V and a homo-first branch whose
//! hetero scores come from the phase-1 homogeneous aggregates (spec §4.7, a reconstruction).

pub mod attention;
pub mod official;
pub mod parity;

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use super::{GraphCommon, GraphLayer};
use crate::graph::{EdgeLists, GraphBatch, GraphLayout};
use crate::model::check_probability;
use crate::model::layers::edge_kernels::EdgeKernels;
use crate::model::layers::ops::{dropout, typed_projection};
use crate::model::layers::uniform_init;
use attention::{ops_for, AttentionOps, EdgeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HanMode {
    Compat,
    Fixed,
}

/// What the layer returns (spec §4.6; the official `fusion_type` and `ablation` switches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// The update gate over the two orders (official `asy_mask`).
    Gate,
    /// `Linear(2D -> D)([M_ho ‖ M_he])`, the official `cat` fusion (`ablation = 1`).
    Concat,
    /// The homo-then-hetero order alone (`ablation = 3`).
    Hohe,
    /// The hetero-then-homo order alone (`ablation = 2`).
    Heho,
    /// The phase-1 homogeneous update alone: no heterogeneous branch (`ablation = 5`).
    Homo,
    /// The phase-1 heterogeneous update alone: no homogeneous branch (`ablation = 6`).
    Hete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HanConfig {
    pub mode: HanMode,
    pub fusion: Fusion,
    /// Phase 2 propagates the phase-1 updates (`M_ho`, `M_he`) instead of the original values:
    /// the official code's discarded "invasive" outputs.
    pub invasive: bool,
    /// Dropout on attention weights (`dropout_atten`).
    pub attention_dropout: f64,
    pub leaky_slope: f64,
}

impl Default for HanConfig {
    fn default() -> Self {
        Self {
            mode: HanMode::Compat,
            fusion: Fusion::Gate,
            invasive: false,
            attention_dropout: 0.2,
            leaky_slope: 0.1,
        }
    }
}

/// The update gate: a shared MLP scores both candidates, a per-node softmax mixes them. The
/// official MLP's last layer also has a bias; it is added to both scores and cancels in their
/// softmax, so it is not a parameter of the function and is left out (its official gradient is
/// rounding noise, -7.3e-12 in the parity fixture; here it would be the same kind of noise).
struct Gate {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
}

impl Gate {
    fn new(path: &nn::Path, dim: i64) -> Self {
        let init = uniform_init(dim);
        Self {
            w1: path.var("gate_w1", &[dim, dim], init),
            b1: path.var("gate_b1", &[dim], init),
            w2: path.var("gate_w2", &[dim, 1], init),
        }
    }

    fn mix(&self, hohe: &Tensor, heho: &Tensor) -> Tensor {
        let stacked = Tensor::stack(&[hohe, heho], -2);
        let energy = (stacked.matmul(&self.w1) + &self.b1)
            .relu()
            .matmul(&self.w2);
        let weights = energy.squeeze_dim(-1).softmax(-1, Kind::Float);
        (stacked * weights.unsqueeze(-1)).sum_dim_intlist(-2, false, Kind::Float)
    }
}

pub struct HanLayer {
    config: HanConfig,
    edge_kernels: EdgeKernels,
    /// [4, D, D]; index 0 (padding) unused, 1..3 = item, image, text.
    w_query: Tensor,
    w_key: Option<Tensor>,
    w_value: Option<Tensor>,
    /// [4, D]: a_1..a_4 of the homogeneous content attention (relations 1-4); absent when no
    /// homogeneous attention is computed.
    relation_vectors: Option<Tensor>,
    gate: Option<Gate>,
    /// [2D, D] and [D] for `Fusion::Concat`.
    concat: Option<(Tensor, Tensor)>,
}

impl HanConfig {
    /// Whether any homogeneous attention is computed (it is not for the hetero-only variants).
    fn uses_homo(&self) -> bool {
        match self.fusion {
            Fusion::Hete => false,
            // compat's homo-first branch scores with the original Q, K (spec §4.7 quirk 2).
            Fusion::Hohe => self.mode == HanMode::Fixed || self.invasive,
            _ => true,
        }
    }
}

/// The tensors of one forward pass that several outputs share.
struct Pass<'a> {
    layer: &'a HanLayer,
    ops: Box<dyn AttentionOps + 'a>,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    train: bool,
}

impl Pass<'_> {
    fn drop(&self, weights: &Tensor) -> Tensor {
        dropout(weights, self.layer.config.attention_dropout, self.train)
    }

    fn relation_vectors(&self) -> &Tensor {
        self.layer
            .relation_vectors
            .as_ref()
            .expect("created whenever homogeneous attention is used")
    }

    /// Phase-1 homogeneous attention weights (before dropout). compat scores the values (the
    /// official call passes V, which is Q); fixed scores Q.
    fn homo_phase1(&self) -> Tensor {
        let features = match self.layer.config.mode {
            HanMode::Compat => &self.v,
            HanMode::Fixed => &self.q,
        };
        self.ops.homo_softmax(features, self.relation_vectors())
    }

    /// `M_ho`, and the weights it used.
    fn m_ho(&self) -> (Tensor, Tensor) {
        let alpha = self.drop(&self.homo_phase1());
        (self.ops.apply(EdgeSet::Homo, &alpha, &self.v), alpha)
    }
}

impl HanLayer {
    fn forward_pass(&self, pass: &Pass) -> Tensor {
        let config = &self.config;
        let (ops, v) = (&pass.ops, &pass.v);
        let hete = ops.hete_softmax(&pass.q, &pass.k);
        let m_he = ops.apply(EdgeSet::Hete, &pass.drop(&hete), v);
        match config.fusion {
            Fusion::Hete => return m_he,
            Fusion::Homo => return pass.m_ho().0,
            Fusion::Concat => {
                let (w, b) = self.concat.as_ref().expect("created for concat");
                return Tensor::cat(&[&pass.m_ho().0, &m_he], -1).matmul(w) + b;
            }
            Fusion::Gate | Fusion::Hohe | Fusion::Heho => {}
        }
        // Hetero first: homo scores computed on M_he pick the values (non-invasive: V).
        let heho = || {
            let values = if config.invasive { &m_he } else { v };
            let weights = ops.homo_softmax(&m_he, pass.relation_vectors());
            ops.apply(EdgeSet::Homo, &pass.drop(&weights), values)
        };
        // Homo first.
        let hohe = || match config.mode {
            // Without dropout this is phase 1's aggregate again: reuse it (same numbers).
            HanMode::Compat
                if !config.invasive && (!pass.train || config.attention_dropout == 0.0) =>
            {
                m_he.shallow_clone()
            }
            // Official: scores from the original Q, K (a fresh dropout mask on the same softmax).
            HanMode::Compat => {
                let values = if config.invasive {
                    pass.m_ho().0
                } else {
                    v.shallow_clone()
                };
                ops.apply(EdgeSet::Hete, &pass.drop(&hete), &values)
            }
            HanMode::Fixed => {
                let (m_ho, alpha) = pass.m_ho();
                let (q1, k1) = (
                    ops.apply(EdgeSet::Homo, &alpha, &pass.q),
                    ops.apply(EdgeSet::Homo, &alpha, &pass.k),
                );
                let values = if config.invasive { &m_ho } else { v };
                ops.apply(
                    EdgeSet::Hete,
                    &pass.drop(&ops.hete_softmax(&q1, &k1)),
                    values,
                )
            }
        };
        match config.fusion {
            Fusion::Hohe => hohe(),
            Fusion::Heho => heho(),
            _ => {
                let gate = self.gate.as_ref().expect("created for the gate");
                gate.mix(&hohe(), &heho())
            }
        }
    }
}

impl GraphLayer for HanLayer {
    type Config = HanConfig;
    const LAYOUTS: &'static [GraphLayout] = &[GraphLayout::Sparse, GraphLayout::Dense];
    const VERSION: u32 = 1;
    const FUSED_EDGE_KERNELS: bool = true;

    /// Two phases, each a step over one edge set (phase 2 reads phase-1 results in the
    /// invasive and fixed variants).
    fn hops(_config: &HanConfig) -> Option<usize> {
        Some(2)
    }

    /// Both phases read their own edge lists, never the list of all edges.
    fn edge_lists(_config: &HanConfig) -> EdgeLists {
        EdgeLists::Phases
    }

    fn validate(config: &HanConfig, _common: &GraphCommon) -> Result<(), String> {
        check_probability("attention_dropout", config.attention_dropout)?;
        if config.invasive && !matches!(config.fusion, Fusion::Gate | Fusion::Hohe | Fusion::Heho) {
            return Err(format!(
                "invasive applies to the phase-2 orders (fusion gate, hohe or heho), not to fusion {:?}",
                config.fusion
            )
            .to_lowercase());
        }
        Ok(())
    }

    fn new(path: &nn::Path, common: &GraphCommon, config: &HanConfig, _first: bool) -> Self {
        let dim = common.dim;
        let init = uniform_init(dim);
        let typed = |name: &str| path.var(name, &[4, dim, dim], init);
        let fixed = config.mode == HanMode::Fixed;
        Self {
            config: config.clone(),
            edge_kernels: common.edge_kernels,
            w_query: typed("w_query"),
            w_key: fixed.then(|| typed("w_key")),
            w_value: fixed.then(|| typed("w_value")),
            relation_vectors: config
                .uses_homo()
                .then(|| path.var("relation_vectors", &[4, dim], init)),
            gate: (config.fusion == Fusion::Gate).then(|| Gate::new(path, dim)),
            concat: (config.fusion == Fusion::Concat).then(|| {
                (
                    path.var("concat_w", &[2 * dim, dim], init),
                    path.var("concat_b", &[dim], init),
                )
            }),
        }
    }

    fn forward(&self, h: &Tensor, graph: &GraphBatch, train: bool) -> Tensor {
        // Typed projections over the real nodes only.
        let types = graph.type_index();
        let q = typed_projection(h, types, &self.w_query);
        let project = |w: &Option<Tensor>| match w {
            Some(w) => typed_projection(h, types, w),
            None => q.shallow_clone(),
        };
        let (k, v) = (project(&self.w_key), project(&self.w_value));
        let pass = Pass {
            layer: self,
            ops: ops_for(graph, self.config.leaky_slope, self.edge_kernels),
            q,
            k,
            v,
            train,
        };
        self.forward_pass(&pass)
    }
}
