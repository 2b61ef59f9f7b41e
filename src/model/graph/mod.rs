//! The wrapper every graph model shares (spec §5: "all graph baselines replace only the
//! aggregation layer"): the input layer of §4.2, `layers` applications of one [`GraphLayer`]
//! (weight-tied by default, as officially), dropout and the padding mask between layers, `last`
//! pooling, outer dropout, and dot-product scores over the item rows of the node table.
//!
//! The graph family: one file per layer (`gcn`, `gat`, `graphsage`, `rgat`, `kv_attention`,
//! `graphormer`, `hgt`, `hgt_lang`, `han_gnn/`), each a [`GraphLayer`] inside
//! [`GraphRecommender`].

pub mod gat;
pub mod gcn;
pub mod graphormer;
pub mod graphsage;
pub mod han_gnn;
pub mod hgt;
pub mod hgt_lang;
pub mod kv_attention;
pub mod rgat;

use std::fmt;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use tch::{nn, Kind, Tensor};

use super::layers::edge_kernels::EdgeKernels;
use super::layers::ops::dropout;
use super::layers::{InputConfig, InputLayer, POSITION_ROWS};
use super::{
    check_count, check_probability, check_size, Batch, GraphInput, InputKind, Model, ModelContext,
    Recommender, MAX_DEPTH, MAX_WIDTH,
};
use crate::graph::{EdgeLists, GraphBatch, GraphLayout};

/// One aggregation layer over a batch of graphs, in the layouts it implements.
pub trait GraphLayer: Sized + 'static {
    /// The layer's own parameters (unknown fields rejected, every field defaulted).
    type Config: Serialize + DeserializeOwned + Default + Clone;
    /// Layouts with an implementation; the first is the default.
    const LAYOUTS: &'static [GraphLayout];
    /// Implementation version of the layer (see [`Model::VERSION`]).
    const VERSION: u32;
    /// Whether the sparse layout honours `edge_kernels: fused`.
    const FUSED_EDGE_KERNELS: bool = false;

    /// Whether batches must carry shortest-path distances and degrees.
    fn needs_structure(_config: &Self::Config) -> bool {
        false
    }

    /// The edge lists the sparse layout reads; a sparse batch builds and copies only those.
    fn edge_lists(_config: &Self::Config) -> EdgeLists {
        EdgeLists::All
    }

    /// Range checks, with the common parameters at hand (e.g. heads must divide `dim`).
    fn validate(_config: &Self::Config, _common: &GraphCommon) -> Result<(), String> {
        Ok(())
    }

    /// Fallible set-up before any layer is built (reading files a layer needs); an error here
    /// is the model's build error.
    fn ready(_config: &Self::Config) -> Result<(), String> {
        Ok(())
    }

    /// Message-passing steps of one layer, each reading a node's direct neighbours; `None` for a
    /// layer that reads the whole graph (attention over every pair of nodes). Evaluation prunes
    /// each graph to what `last` pooling reads after all layers (`graph::receptive`), and
    /// `tests/graph_models.rs` checks that the scores do not move.
    fn hops(_config: &Self::Config) -> Option<usize> {
        Some(1)
    }

    /// Whether an edge's weight reads its neighbour's degree (GCN's symmetric normalisation), so
    /// the receptive field must hold one more step of edges to count them.
    fn reads_neighbour_degrees(_config: &Self::Config) -> bool {
        false
    }

    /// `first`: the layer applied first, which owns any encodings added once to the input.
    fn new(path: &nn::Path, common: &GraphCommon, config: &Self::Config, first: bool) -> Self;

    /// Encodings added to H0 before the first layer (Graphormer's degrees); none by default.
    fn encode_input(&self, h0: Tensor, _graph: &GraphBatch) -> Tensor {
        h0
    }

    /// Node states after the layer: [B, N, D] for dense batches, [T, D] for sparse ones.
    fn forward(&self, h: &Tensor, graph: &GraphBatch, train: bool) -> Tensor;
}

/// The parameters every graph model has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphCommon {
    /// Dense (padded N × N) or sparse (edge lists) execution; same numbers, different cost.
    pub layout: GraphLayout,
    pub dim: i64,
    /// Applications of the layer.
    pub layers: usize,
    /// One set of layer weights applied `layers` times (official), or one set per layer.
    pub tied_layers: bool,
    /// Dropout on every layer's output (`dropout_local`).
    pub dropout: f64,
    pub node_type_embedding: bool,
    pub position_embedding: bool,
    /// Initialise code embeddings from the k-means centres (spec §2.6).
    pub init_codes_from_centres: bool,
    /// Code nodes in the graphs; false runs on the item sub-graph only.
    pub codes: bool,
    /// Train on each graph's receptive field (`graph::receptive`, as evaluation always does):
    /// the same model, loss and gradients for a fraction of the work, but dropout masks are drawn
    /// for fewer nodes and edges, so a run's numbers differ from whole-graph training (not their
    /// distribution). Off by default and then left out of the parameters, so the run ids of
    /// whole-graph runs stay what they were.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub train_on_receptive_fields: bool,
    /// `fused`: sparse layers that have them compute their per-edge products and aggregations
    /// with the fused CPU kernels (`model::layers::edge_kernels`): the same function to
    /// rounding, other last bits. Left out of the parameters at the default (`eager`).
    #[serde(skip_serializing_if = "EdgeKernels::is_eager")]
    pub edge_kernels: EdgeKernels,
}

impl Default for GraphCommon {
    fn default() -> Self {
        Self {
            layout: GraphLayout::Sparse,
            dim: 128,
            layers: 1,
            tied_layers: true,
            dropout: 0.4,
            node_type_embedding: true,
            position_embedding: true,
            init_codes_from_centres: true,
            codes: true,
            train_on_receptive_fields: false,
            edge_kernels: EdgeKernels::Eager,
        }
    }
}

/// A graph model's parameters: the common ones and the layer's, as one flat map.
pub struct GraphModelConfig<L: GraphLayer> {
    pub common: GraphCommon,
    pub layer: L::Config,
}

impl<L: GraphLayer> Default for GraphModelConfig<L> {
    fn default() -> Self {
        Self {
            common: GraphCommon {
                layout: L::LAYOUTS[0],
                ..GraphCommon::default()
            },
            layer: L::Config::default(),
        }
    }
}

impl<L: GraphLayer> Clone for GraphModelConfig<L> {
    fn clone(&self) -> Self {
        Self {
            common: self.common.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<L: GraphLayer> fmt::Debug for GraphModelConfig<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", serde_json::to_string(self).unwrap_or_default())
    }
}

fn object<T: Serialize>(value: &T) -> Result<Map<String, Value>, serde_json::Error> {
    match serde_json::to_value(value)? {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        other => Err(serde_json::Error::io(std::io::Error::other(format!(
            "a config serialises to a map, not {other}"
        )))),
    }
}

impl<L: GraphLayer> Serialize for GraphModelConfig<L> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut map = object(&self.common).map_err(S::Error::custom)?;
        map.extend(object(&self.layer).map_err(S::Error::custom)?);
        map.serialize(serializer)
    }
}

impl<'de, L: GraphLayer> Deserialize<'de> for GraphModelConfig<L> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut layer = Map::deserialize(deserializer)?;
        let mut common = Map::new();
        // Every common key, the ones serialised only when set included.
        let all_keys = GraphCommon {
            train_on_receptive_fields: true,
            edge_kernels: EdgeKernels::Fused,
            ..GraphCommon::default()
        };
        for key in object(&all_keys).map_err(D::Error::custom)?.keys() {
            if let Some(value) = layer.remove(key) {
                common.insert(key.clone(), value);
            }
        }
        common
            .entry("layout")
            .or_insert(serde_json::to_value(L::LAYOUTS[0]).map_err(D::Error::custom)?);
        Ok(Self {
            common: serde_json::from_value(Value::Object(common)).map_err(D::Error::custom)?,
            layer: serde_json::from_value(Value::Object(layer)).map_err(D::Error::custom)?,
        })
    }
}

/// Version of the wrapper itself (input layer, pooling, scoring); a graph model's version is
/// `100 * WRAPPER_VERSION + layer version`.
pub const WRAPPER_VERSION: u32 = 1;

/// Input layer -> layer(s) -> `last` pooling -> item scores.
pub struct GraphRecommender<L: GraphLayer> {
    common: GraphCommon,
    input: InputLayer,
    /// One layer when tied, else `layers` of them.
    layers: Vec<L>,
    num_items: i64,
}

impl<L: GraphLayer> GraphRecommender<L> {
    fn layer(&self, index: usize) -> &L {
        &self.layers[if self.common.tied_layers { 0 } else { index }]
    }

    /// Final node states pooled to the most recent item: [B, D]. Every layer but the last is
    /// followed by dropout and the padding mask; after the last only the pooled rows are used,
    /// so its dropout is applied after pooling (elementwise and independent: the same
    /// distribution, a fraction of the work).
    pub fn user_representations(&self, batch: &Batch, train: bool) -> Tensor {
        let graph = batch.graph();
        let p = self.common.dropout;
        let h0 = match graph {
            GraphBatch::Dense(b) => self.input.dense(b),
            GraphBatch::Sparse(b) => self.input.sparse(b),
        };
        let mut h = self.layer(0).encode_input(h0, graph);
        for l in 0..self.common.layers {
            h = self.layer(l).forward(&h, graph, train);
            if l + 1 < self.common.layers {
                h = dropout(&h, p, train);
                if let GraphBatch::Dense(b) = graph {
                    // Not `*=`: the in-place product would overwrite a tensor autograd saved.
                    h = h.multiply(&b.real.unsqueeze(-1));
                }
            }
        }
        let pooled = match graph {
            GraphBatch::Dense(b) => {
                let index = b
                    .last
                    .view([-1, 1, 1])
                    .expand([-1, 1, self.common.dim], false);
                h.gather(1, &index, false).squeeze_dim(1)
            }
            GraphBatch::Sparse(b) => h.index_select(0, &b.last),
        };
        dropout(&pooled, p, train)
    }

    /// The node table's item rows, which are also the output item embeddings.
    pub fn item_table(&self) -> Tensor {
        self.input.item_table(self.num_items)
    }
}

impl<L: GraphLayer> Recommender for GraphRecommender<L> {
    fn scores(&self, batch: &Batch, train: bool) -> Tensor {
        self.user_representations(batch, train)
            .matmul(&self.item_table().transpose(0, 1))
            .to_kind(Kind::Float)
    }
}

impl<L: GraphLayer> Model for GraphRecommender<L> {
    type Config = GraphModelConfig<L>;
    const VERSION: u32 = 100 * WRAPPER_VERSION + L::VERSION;
    const OPTIONAL_PARAMETERS: &'static [&'static str] =
        &["train_on_receptive_fields", "edge_kernels"];

    fn input_kind(config: &Self::Config) -> InputKind {
        InputKind::Graph(GraphInput {
            layout: config.common.layout,
            codes: config.common.codes,
            structure: L::needs_structure(&config.layer),
            edge_lists: L::edge_lists(&config.layer),
            receptive_reach: L::hops(&config.layer).map(|hops| {
                hops * config.common.layers - 1
                    + usize::from(L::reads_neighbour_degrees(&config.layer))
            }),
            receptive_training: config.common.train_on_receptive_fields,
        })
    }

    fn validate(config: &Self::Config) -> Result<(), String> {
        let c = &config.common;
        if !L::LAYOUTS.contains(&c.layout) {
            let names: Vec<String> = L::LAYOUTS
                .iter()
                .map(|l| format!("{l:?}").to_lowercase())
                .collect();
            return Err(format!(
                "layout {:?} is not implemented; available: {}",
                c.layout,
                names.join(", ")
            )
            .to_lowercase());
        }
        check_size("dim", c.dim, MAX_WIDTH)?;
        check_count("layers", c.layers, MAX_DEPTH)?;
        check_probability("dropout", c.dropout)?;
        let fused_here = L::FUSED_EDGE_KERNELS && c.layout == GraphLayout::Sparse;
        if !c.edge_kernels.is_eager() && !fused_here {
            return Err(format!(
                "edge_kernels: fused exists for the sparse layout of han-gnn and its variants, \
                 kv-attention, gcn, graphsage, gat, rgat, hgt and hgt-lang (layout {:?} here); \
                 use edge_kernels: eager",
                c.layout
            )
            .to_lowercase());
        }
        L::validate(&config.layer, c)
    }

    fn new(path: &nn::Path, config: &Self::Config, context: &ModelContext) -> Result<Self, String> {
        let c = &config.common;
        let dataset = context.dataset;
        if dataset.split_config.max_len as i64 > POSITION_ROWS {
            return Err(format!(
                "inputs of up to {} items exceed the {POSITION_ROWS}-row position table",
                dataset.split_config.max_len
            ));
        }
        let num_items = dataset.num_items();
        // A dataset without any modality (no item features exist for it) gives every graph
        // model the item sub-graph; the run's dataset description says so.
        let codes = dataset.codes.as_ref().filter(|_| c.codes);
        let layout = codes.map(|codes| codes.layout(num_items));
        let table_rows = layout.map_or(num_items + 1, |l| l.table_rows()) as i64;
        let input_config = InputConfig {
            node_type_embedding: c.node_type_embedding,
            position_embedding: c.position_embedding,
        };
        L::ready(&config.layer)?;
        let mut input = InputLayer::new(&(path / "input"), table_rows, c.dim, input_config);
        let layers = if c.tied_layers {
            vec![L::new(&(path / "layer"), c, &config.layer, true)]
        } else {
            (0..c.layers)
                .map(|l| L::new(&(path / format!("layer{l}")), c, &config.layer, l == 0))
                .collect()
        };
        if let (Some(codes), Some(layout), true) = (codes, layout, c.init_codes_from_centres) {
            let offsets = [layout.image_offset(), layout.text_offset()];
            for (book, offset) in [codes.image.as_ref(), codes.text.as_ref()]
                .into_iter()
                .zip(offsets)
            {
                let Some(book) = book.filter(|b| b.centre_dim > 0) else {
                    continue;
                };
                if book.centre_dim as i64 != c.dim {
                    return Err(format!(
                        "code centres are {}-d but the embedding is {}-d; set init_codes_from_centres: false or dim: {}",
                        book.centre_dim, c.dim, book.centre_dim
                    ));
                }
                let centres =
                    Tensor::from_slice(&book.centres).view([book.num_codes as i64, c.dim]);
                input.init_code_rows(offset as i64, &centres);
            }
        }
        Ok(Self {
            common: c.clone(),
            input,
            layers,
            num_items: num_items as i64,
        })
    }
}
