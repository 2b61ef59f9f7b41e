//! `hgt-lang`: HGT whose per-type and per-relation parameters are generated from what the types
//! and relations mean in words (the idea of HiGPT): a model that can handle a relation it never
//! trained on, because it reads the relation's description.
//!
//! Each node type and relation has a few one-line phrasings (`hgt_lang.yaml`, beside this
//! file), encoded by all-MiniLM-L6-v2 ([`crate::text::minilm`]) and averaged per type or
//! relation. A small hypernetwork reads an encoding `e` as `z = tanh(W e + b)` and generates:
//! * per node type: `W_τ = W_shared + U(z_τ) V(z_τ) / √(r D)` for Q, K, V and the output
//!   (a rank-r update of one shared matrix), and the skip gate `1 + w·z_τ`;
//! * per relation: `W_r = I + W_shared + U(z_r) V(z_r) / √(r d)` per head for the attention
//!   and message matrices, and the prior `1 + P z_r`.
//!
//! The shared matrices and the hypernetwork are trained by the relations that occur; a relation
//! that never occurs in training still gets parameters from its description. The HGT
//! computation itself is `hgt`'s ([`super::hgt::hgt_forward`]).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Device, Kind, Tensor};

use super::hgt::{hgt_forward, HgtParams};
use super::{GraphCommon, GraphLayer};
use crate::graph::{GraphBatch, GraphLayout, NUM_RELATIONS};
use crate::model::layers::ops::EdgeOps;
use crate::model::layers::uniform_init;
use crate::model::{check_heads, check_probability};
use crate::text::minilm::{self, MiniLm};

/// The phrasings, embedded at build time.
pub const DESCRIPTIONS: &str = include_str!("hgt_lang.yaml");

/// Node types by type id (1 item, 2 image code, 3 text code) and relations by relation id.
const TYPE_NAMES: [&str; 3] = ["item", "image", "text"];
const RELATION_NAMES: [&str; NUM_RELATIONS] = [
    "self-loop",
    "out",
    "in",
    "both",
    "item-to-image",
    "image-to-item",
    "item-to-text",
    "text-to-item",
    "image-to-text",
    "text-to-image",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Descriptions {
    pub node_types: BTreeMap<String, Vec<String>>,
    pub relations: BTreeMap<String, Vec<String>>,
}

impl Descriptions {
    /// Parses and checks that every type and relation has at least one phrasing and that no
    /// unknown name appears.
    pub fn parse(text: &str) -> Result<Self, String> {
        let d: Descriptions =
            serde_norway::from_str(text).map_err(|e| format!("hgt-lang descriptions: {e}"))?;
        for (group, map, names) in [
            ("node_types", &d.node_types, &TYPE_NAMES[..]),
            ("relations", &d.relations, &RELATION_NAMES[..]),
        ] {
            if let Some(unknown) = map.keys().find(|k| !names.contains(&k.as_str())) {
                return Err(format!(
                    "hgt-lang descriptions: unknown {group} entry `{unknown}` (known: {})",
                    names.join(", ")
                ));
            }
            if let Some(missing) = names.iter().find(|n| {
                map.get(**n)
                    .is_none_or(|p| p.iter().all(|s| s.trim().is_empty()))
            }) {
                return Err(format!(
                    "hgt-lang descriptions: {group} entry `{missing}` has no phrasing"
                ));
            }
        }
        Ok(d)
    }

    /// Phrasings per row: row 0 (padding / no relation) has none.
    fn rows<'a>(map: &'a BTreeMap<String, Vec<String>>, names: &[&str]) -> Vec<&'a [String]> {
        std::iter::once(&[][..])
            .chain(names.iter().map(|n| map[*n].as_slice()))
            .collect()
    }
}

/// Averaged sentence encodings: types [4, E] and relations [R + 1, E] (row 0 zeros).
#[derive(Debug, Clone)]
pub struct DescriptionEncodings {
    pub types: Vec<f32>,
    pub relations: Vec<f32>,
}

/// Encodes every phrasing and averages each row's.
pub fn encode_descriptions(
    descriptions: &Descriptions,
    encoder: &MiniLm,
) -> Result<DescriptionEncodings, String> {
    let average = |rows: Vec<&[String]>| -> Result<Vec<f32>, String> {
        let mut out = vec![0f32; rows.len() * minilm::DIM];
        for (row, phrasings) in rows.iter().enumerate().skip(1) {
            let texts: Vec<&str> = phrasings.iter().map(String::as_str).collect();
            let vectors = encoder.encode(&texts).map_err(|e| e.to_string())?;
            let mean = Vec::<f32>::try_from(vectors.mean_dim(0, false, Kind::Float))
                .map_err(|e| e.to_string())?;
            out[row * minilm::DIM..(row + 1) * minilm::DIM].copy_from_slice(&mean);
        }
        Ok(out)
    };
    Ok(DescriptionEncodings {
        types: average(Descriptions::rows(&descriptions.node_types, &TYPE_NAMES))?,
        relations: average(Descriptions::rows(&descriptions.relations, &RELATION_NAMES))?,
    })
}

/// The embedded descriptions' encodings, computed once per process.
fn embedded_encodings() -> &'static Result<DescriptionEncodings, String> {
    static ENCODINGS: OnceLock<Result<DescriptionEncodings, String>> = OnceLock::new();
    ENCODINGS.get_or_init(|| {
        let descriptions = Descriptions::parse(DESCRIPTIONS)?;
        let encoder = MiniLm::load(&minilm::default_dir(), Device::Cpu).map_err(|e| {
            format!("hgt-lang reads its type descriptions with all-MiniLM-L6-v2: {e}")
        })?;
        encode_descriptions(&descriptions, &encoder)
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HgtLangConfig {
    pub heads: i64,
    pub attention_dropout: f64,
    /// Rank of each generated update.
    pub rank: i64,
    /// Width of the hypernetwork's reading `z` of an encoding.
    pub hidden: i64,
}

impl Default for HgtLangConfig {
    fn default() -> Self {
        Self {
            heads: 4,
            attention_dropout: 0.0,
            rank: 8,
            hidden: 64,
        }
    }
}

/// `W_shared + U(z) V(z) · scale` for every row of `z` [n, h]: [n, ...shape].
struct LowRank {
    shared: Tensor,
    u: nn::Linear,
    v: nn::Linear,
    /// (rows, cols) of one generated matrix, batched over `heads` (1 for typed matrices).
    heads: i64,
    rows: i64,
    cols: i64,
    rank: i64,
}

impl LowRank {
    fn new(
        path: &nn::Path,
        shared: Tensor,
        heads: i64,
        rows: i64,
        cols: i64,
        c: &HgtLangConfig,
    ) -> Self {
        let r = c.rank;
        Self {
            shared,
            u: nn::linear(path / "u", c.hidden, heads * rows * r, Default::default()),
            v: nn::linear(path / "v", c.hidden, heads * r * cols, Default::default()),
            heads,
            rows,
            cols,
            rank: r,
        }
    }

    fn generate(&self, z: &Tensor) -> Tensor {
        let n = z.size()[0];
        let u = self
            .u
            .forward(z)
            .view([n, self.heads, self.rows, self.rank]);
        let v = self
            .v
            .forward(z)
            .view([n, self.heads, self.rank, self.cols]);
        let scale = 1.0 / ((self.rank * self.rows) as f64).sqrt();
        let update = u.matmul(&v) * scale;
        let shape: Vec<i64> = if self.heads == 1 {
            vec![n, self.rows, self.cols]
        } else {
            vec![n, self.heads, self.rows, self.cols]
        };
        (update
            + self
                .shared
                .unsqueeze(0)
                .view([1, self.heads, self.rows, self.cols]))
        .view(shape.as_slice())
    }
}

pub struct HgtLangLayer {
    heads: i64,
    attention_dropout: f64,
    /// [4, E] and [R + 1, E] constant encodings.
    type_encodings: Tensor,
    relation_encodings: Tensor,
    reader: nn::Linear,
    typed: [LowRank; 4],
    relational: [LowRank; 2],
    prior: nn::Linear,
    skip: nn::Linear,
    edges: EdgeOps,
}

impl HgtLangLayer {
    /// The layer on given encodings (tests and other description sets use this directly).
    pub fn with_encodings(
        path: &nn::Path,
        common: &GraphCommon,
        config: &HgtLangConfig,
        encodings: &DescriptionEncodings,
    ) -> Self {
        let device = path.device();
        let (dim, heads) = (common.dim, config.heads);
        let d = dim / heads;
        let e = minilm::DIM as i64;
        let constant = |values: &[f32], rows: i64| {
            Tensor::from_slice(values).view([rows, e]).to_device(device)
        };
        let typed = |name: &str| {
            let shared = path.var(&format!("{name}_shared"), &[dim, dim], uniform_init(dim));
            LowRank::new(&(path / name), shared, 1, dim, dim, config)
        };
        let relational = |name: &str| {
            let shared = path.var(&format!("{name}_shared"), &[heads, d, d], uniform_init(d));
            tch::no_grad(|| {
                let eye = Tensor::eye(d, (Kind::Float, device)).expand([heads, d, d], false);
                let _ = shared.shallow_clone().g_add_(&eye);
            });
            LowRank::new(&(path / name), shared, heads, d, d, config)
        };
        Self {
            heads,
            attention_dropout: config.attention_dropout,
            type_encodings: constant(&encodings.types, 4),
            relation_encodings: constant(&encodings.relations, NUM_RELATIONS as i64 + 1),
            reader: nn::linear(path / "reader", e, config.hidden, Default::default()),
            typed: [
                typed("w_query"),
                typed("w_key"),
                typed("w_value"),
                typed("w_out"),
            ],
            relational: [relational("w_attention"), relational("w_message")],
            prior: nn::linear(path / "prior", config.hidden, heads, Default::default()),
            skip: nn::linear(path / "skip", config.hidden, 1, Default::default()),
            edges: EdgeOps(common.edge_kernels),
        }
    }

    /// Every type's and relation's tensors, generated from their encodings.
    pub fn generate(&self) -> HgtParams {
        let zt = self.reader.forward(&self.type_encodings).tanh();
        let zr = self.reader.forward(&self.relation_encodings).tanh();
        let [q, k, v, o] = &self.typed;
        let [att, msg] = &self.relational;
        HgtParams {
            w_query: q.generate(&zt),
            w_key: k.generate(&zt),
            w_value: v.generate(&zt),
            w_out: o.generate(&zt),
            w_attention: att.generate(&zr),
            w_message: msg.generate(&zr),
            prior: self.prior.forward(&zr) + 1.0,
            skip: self.skip.forward(&zt).squeeze_dim(1) + 1.0,
        }
    }
}

impl GraphLayer for HgtLangLayer {
    type Config = HgtLangConfig;
    const LAYOUTS: &'static [GraphLayout] = &[GraphLayout::Sparse];
    const VERSION: u32 = 1;
    const FUSED_EDGE_KERNELS: bool = true;

    fn validate(config: &HgtLangConfig, common: &GraphCommon) -> Result<(), String> {
        check_heads(config.heads, common.dim)?;
        check_probability("attention_dropout", config.attention_dropout)?;
        for (name, value) in [("rank", config.rank), ("hidden", config.hidden)] {
            if !(1..=4096).contains(&value) {
                return Err(format!("{name} = {value} must be between 1 and 4096"));
            }
        }
        Ok(())
    }

    fn ready(_config: &HgtLangConfig) -> Result<(), String> {
        embedded_encodings()
            .as_ref()
            .map(|_| ())
            .map_err(Clone::clone)
    }

    fn new(path: &nn::Path, common: &GraphCommon, config: &HgtLangConfig, _first: bool) -> Self {
        let encodings = embedded_encodings()
            .as_ref()
            .expect("ready() succeeded before any layer is built");
        Self::with_encodings(path, common, config, encodings)
    }

    fn forward(&self, h: &Tensor, graph: &GraphBatch, train: bool) -> Tensor {
        let params = self.generate();
        hgt_forward(
            &params,
            self.heads,
            self.attention_dropout,
            self.edges,
            h,
            graph,
            train,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_descriptions_cover_every_type_and_relation() {
        let d = Descriptions::parse(DESCRIPTIONS).unwrap();
        assert_eq!(d.node_types.len(), 3);
        assert_eq!(d.relations.len(), NUM_RELATIONS);
        let e = Descriptions::parse(
            "node_types: {item: [a], image: [b], text: [c], audio: [d]}\nrelations: {}\n",
        )
        .unwrap_err();
        assert!(e.contains("unknown node_types entry `audio`"), "{e}");
        let without = DESCRIPTIONS.replace("  both:\n", "  both: []\n  unused:\n");
        let e = Descriptions::parse(&without).unwrap_err();
        assert!(e.contains("`unused`"), "{e}");
    }
}
