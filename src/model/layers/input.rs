//! The input layer every graph model shares (spec §4.2): node embedding (items and codes in one
//! table, also the output item table), node-type embedding and mean position embedding,
//! concatenated and projected. Also the code-row initialisation of spec §2.6.

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use crate::graph::{DenseGraphBatch, SparseGraphBatch};

/// Rows of the position table (as official; longer inputs need a larger table).
pub const POSITION_ROWS: i64 = 150;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    pub node_type_embedding: bool,
    pub position_embedding: bool,
}

impl Default for InputConfig {
    fn default() -> Self {
        Self {
            node_type_embedding: true,
            position_embedding: true,
        }
    }
}

/// `U(-1/sqrt(D), 1/sqrt(D))`, the official initialisation of every parameter.
pub fn uniform_init(dim: i64) -> nn::Init {
    let bound = 1.0 / (dim as f64).sqrt();
    nn::Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

pub struct InputLayer {
    dim: i64,
    /// [rows, D]: 0 padding, 1..=I items, then image codes, then text codes.
    pub embedding: Tensor,
    /// [4, D] and [POSITION_ROWS, D], only when configured (unused tables are not parameters).
    type_embedding: Option<Tensor>,
    position_embedding: Option<Tensor>,
    /// [(1 + auxiliaries) D, D] without bias; absent when no auxiliary input is used.
    projection: Option<Tensor>,
}

impl InputLayer {
    pub fn new(path: &nn::Path, table_rows: i64, dim: i64, config: InputConfig) -> Self {
        let init = uniform_init(dim);
        let auxiliaries =
            i64::from(config.node_type_embedding) + i64::from(config.position_embedding);
        Self {
            dim,
            embedding: path.var("embedding", &[table_rows, dim], init),
            type_embedding: config
                .node_type_embedding
                .then(|| path.var("type_embedding", &[4, dim], init)),
            position_embedding: config
                .position_embedding
                .then(|| path.var("position_embedding", &[POSITION_ROWS, dim], init)),
            projection: (auxiliaries > 0)
                .then(|| path.var("input_projection", &[(1 + auxiliaries) * dim, dim], init)),
        }
    }

    /// Overwrites the rows `first..first + C` with cluster centres min-max rescaled over the
    /// whole `C × D` matrix to `[-1/sqrt(D), 1/sqrt(D)]` (spec §2.6). The rows stay trainable.
    pub fn init_code_rows(&mut self, first: i64, centres: &Tensor) {
        let bound = 1.0 / (self.dim as f64).sqrt();
        let (lo, hi) = (
            centres.min().double_value(&[]),
            centres.max().double_value(&[]),
        );
        let span = if hi > lo { hi - lo } else { 1.0 };
        let scaled = (centres - lo) * (2.0 * bound / span) - bound;
        let rows = centres.size()[0];
        tch::no_grad(|| {
            self.embedding.narrow(0, first, rows).copy_(
                &scaled
                    .to_kind(Kind::Float)
                    .to_device(self.embedding.device()),
            );
        });
    }

    /// Output item table: rows 1..=num_items (padding and codes are never candidates).
    pub fn item_table(&self, num_items: i64) -> Tensor {
        self.embedding.narrow(0, 1, num_items)
    }

    fn lookup(&self, nodes: &Tensor) -> Tensor {
        // padding_idx 0: the padding row gets no gradient, as with the official nn.Embedding.
        Tensor::embedding(&self.embedding, nodes, 0, false, false)
    }

    fn project(&self, parts: Vec<Tensor>) -> Tensor {
        match &self.projection {
            Some(w) => Tensor::cat(&parts, -1).matmul(w),
            None => parts
                .into_iter()
                .next()
                .expect("the embedding is always present"),
        }
    }

    /// The parts both layouts share: the node embedding and, if configured, the type embedding.
    fn node_and_type_parts(&self, nodes: &Tensor, types: &Tensor) -> Vec<Tensor> {
        let mut parts = vec![self.lookup(nodes)];
        if let Some(table) = &self.type_embedding {
            parts.push(Tensor::embedding(table, types, -1, false, false));
        }
        parts
    }

    /// H0 for a dense batch: [B, N, D].
    pub fn dense(&self, batch: &DenseGraphBatch) -> Tensor {
        let mut parts = self.node_and_type_parts(&batch.nodes, &batch.types);
        if let Some(positions) = &self.position_embedding {
            let width = batch.positions.size()[2];
            let table = positions.narrow(0, 0, width);
            let counts = batch.positions.sum_dim_intlist(-1, true, Kind::Float);
            let mean = batch.positions.matmul(&table) / (counts + 1e-9);
            parts.push(mean * batch.real.unsqueeze(-1));
        }
        self.project(parts)
    }

    /// H0 for a sparse batch: [T, D].
    pub fn sparse(&self, batch: &SparseGraphBatch) -> Tensor {
        let mut parts = self.node_and_type_parts(&batch.nodes, &batch.types);
        if let Some(positions) = &self.position_embedding {
            let rows = positions.index_select(0, &batch.position_indices);
            let zeros = Tensor::zeros([batch.num_nodes, self.dim], (Kind::Float, rows.device()));
            let sums = zeros.index_add(0, &batch.position_nodes, &rows);
            let ones = Tensor::ones(
                [batch.position_nodes.size()[0]],
                (Kind::Float, rows.device()),
            );
            let counts = Tensor::zeros([batch.num_nodes], (Kind::Float, rows.device())).index_add(
                0,
                &batch.position_nodes,
                &ones,
            );
            parts.push(sums / (counts.unsqueeze(-1) + 1e-9));
        }
        self.project(parts)
    }
}
