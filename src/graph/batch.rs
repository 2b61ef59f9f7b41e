//! Batch layouts. Dense: every graph padded to the batch's own largest graph (spec §3.6: padding
//! is inert, so per-batch padding equals the official per-split padding and is much cheaper).
//! Sparse: the graphs' nodes concatenated and their edges as index lists, so cost follows |E|.

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::set::GraphSet;
use super::structure::{StructureSet, UNREACHABLE};
use super::Relation;

/// How a graph model consumes its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphLayout {
    /// Batched padded N × N relation matrices.
    Dense,
    /// Edge lists with gather/scatter and segment softmax.
    Sparse,
}

/// Padded tensors for `B` graphs with at most `N` nodes and `P` positions.
pub struct DenseGraphBatch {
    /// Global node ids, 0 for padding. [B, N] int64.
    pub nodes: Tensor,
    /// Node types (0 padding, 1 item, 2 image, 3 text). [B, N] int64.
    pub types: Tensor,
    /// Relation ids (0 = no edge). [B, N, N] int64.
    pub adjacency: Tensor,
    /// `positions[b, n, p] = 1` where node `n` occurs at input position `p`. [B, N, P] float.
    pub positions: Tensor,
    /// 1 for real nodes. [B, N] float.
    pub real: Tensor,
    /// Local index of each graph's most recent item node. [B] int64.
    pub last: Tensor,
    /// Flat indices (`b * N + n`) of the item, image and text nodes, for typed projections.
    pub type_index: [Tensor; 3],
    /// Distances and degrees, for the models that asked for them.
    pub structure: Option<DenseStructure>,
}

/// Padded structure tensors of a dense batch (spec §5.3).
pub struct DenseStructure {
    /// Shortest-path buckets (`structure::UNREACHABLE` for padding). [B, N, N] int64.
    pub distances: Tensor,
    /// Degrees over non-self-loop edges, 0 for padding. [B, N] int64 each.
    pub in_degree: Tensor,
    pub out_degree: Tensor,
}

/// A batch of graphs in either layout.
pub enum GraphBatch {
    Dense(DenseGraphBatch),
    Sparse(SparseGraphBatch),
}

impl GraphBatch {
    /// Node indices of the item, image and text nodes (flat `b * N + n` for dense batches).
    pub fn type_index(&self) -> &[Tensor; 3] {
        match self {
            GraphBatch::Dense(b) => &b.type_index,
            GraphBatch::Sparse(b) => &b.type_index,
        }
    }
}

/// Which edge lists a sparse layer reads; a sparse batch builds and copies only those.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdgeLists {
    /// Every edge with its relation (single-phase layers: GCN, GAT, RGAT, HGT, ...).
    All,
    /// The homogeneous and the heterogeneous phase's edges (HAN-GNN's two-phase attention).
    Phases,
}

/// Every edge: row (the attending node), column (its neighbour), relation id. [E] int64 each.
pub struct AllEdges {
    pub rows: Tensor,
    pub cols: Tensor,
    pub relations: Tensor,
}

/// The edges of the two attention phases.
pub struct PhaseEdges {
    /// The homogeneous edges (relations 1-4) and their relation ids.
    pub homo_rows: Tensor,
    pub homo_cols: Tensor,
    pub homo_relations: Tensor,
    /// The heterogeneous edges (relations 1, 5-10).
    pub hete_rows: Tensor,
    pub hete_cols: Tensor,
}

enum Edges {
    All(AllEdges),
    Phases(PhaseEdges),
}

/// Concatenated graphs: `T` nodes, edge lists with batch-global node indices.
pub struct SparseGraphBatch {
    pub num_nodes: i64,
    /// [T] int64 global node ids.
    pub nodes: Tensor,
    /// [T] int64 node types.
    pub types: Tensor,
    edges: Edges,
    /// Node-position incidences: node index and position. [Q] int64 each.
    pub position_nodes: Tensor,
    pub position_indices: Tensor,
    /// Node index of each graph's most recent item. [B] int64.
    pub last: Tensor,
    /// Node indices of the item, image and text nodes, for typed projections.
    pub type_index: [Tensor; 3],
}

fn to_device(values: Vec<i64>, shape: &[i64], device: Device) -> Tensor {
    Tensor::from_slice(&values).view(shape).to_device(device)
}

/// Positions in `types` (flat) of the nodes of type 1, 2 and 3.
fn type_index(types: &[i64], device: Device) -> [Tensor; 3] {
    [1i64, 2, 3].map(|t| {
        let rows: Vec<i64> = (0..types.len() as i64)
            .filter(|&i| types[i as usize] == t)
            .collect();
        let len = rows.len() as i64;
        to_device(rows, &[len], device)
    })
}

impl DenseGraphBatch {
    /// Pads the graphs `indices` of `set` to the batch's largest; `structure` (the same graphs'
    /// distances and degrees) is added when given.
    pub fn assemble(
        set: &GraphSet,
        structure: Option<&StructureSet>,
        indices: &[usize],
        device: Device,
    ) -> Self {
        let b = indices.len();
        let n = indices
            .iter()
            .map(|&i| set.graph(i).num_nodes())
            .max()
            .unwrap_or(1)
            .max(1);
        let p = indices
            .iter()
            .map(|&i| set.graph(i).alias.len())
            .max()
            .unwrap_or(1)
            .max(1);
        let mut nodes = vec![0i64; b * n];
        let mut types = vec![0i64; b * n];
        let mut adjacency = vec![0i64; b * n * n];
        let mut positions = vec![0f32; b * n * p];
        let mut real = vec![0f32; b * n];
        let mut last = Vec::with_capacity(b);
        for (row, &i) in indices.iter().enumerate() {
            let g = set.graph(i);
            for (k, (&id, &t)) in g.nodes.iter().zip(g.types).enumerate() {
                nodes[row * n + k] = i64::from(id);
                types[row * n + k] = i64::from(t);
                real[row * n + k] = 1.0;
            }
            for e in 0..g.edge_rows.len() {
                let (r, c) = (g.edge_rows[e] as usize, g.edge_cols[e] as usize);
                adjacency[(row * n + r) * n + c] = i64::from(g.edge_relations[e]);
            }
            for q in 0..g.position_nodes.len() {
                positions[(row * n + g.position_nodes[q] as usize) * p
                    + g.position_indices[q] as usize] = 1.0;
            }
            last.push(g.last_node() as i64);
        }
        let type_index = type_index(&types, device);
        let structure = structure.map(|s| dense_structure(s, indices, n, device));
        let (b, n, p) = (b as i64, n as i64, p as i64);
        Self {
            type_index,
            structure,
            nodes: to_device(nodes, &[b, n], device),
            types: to_device(types, &[b, n], device),
            adjacency: to_device(adjacency, &[b, n, n], device),
            positions: Tensor::from_slice(&positions)
                .view([b, n, p])
                .to_device(device),
            real: Tensor::from_slice(&real).view([b, n]).to_device(device),
            last: to_device(last, &[b], device),
        }
    }
}

fn dense_structure(
    set: &StructureSet,
    indices: &[usize],
    n: usize,
    device: Device,
) -> DenseStructure {
    let b = indices.len();
    let mut distances = vec![i64::from(UNREACHABLE); b * n * n];
    let mut in_degree = vec![0i64; b * n];
    let mut out_degree = vec![0i64; b * n];
    for (row, &g) in indices.iter().enumerate() {
        let s = set.graph(g);
        let k = s.num_nodes;
        for i in 0..k {
            for j in 0..k {
                distances[(row * n + i) * n + j] = i64::from(s.distances[i * k + j]);
            }
            in_degree[row * n + i] = i64::from(s.in_degree[i]);
            out_degree[row * n + i] = i64::from(s.out_degree[i]);
        }
    }
    let (b, n) = (b as i64, n as i64);
    DenseStructure {
        distances: to_device(distances, &[b, n, n], device),
        in_degree: to_device(in_degree, &[b, n], device),
        out_degree: to_device(out_degree, &[b, n], device),
    }
}

impl SparseGraphBatch {
    /// Concatenates the graphs `indices` of `set`, with the edge lists `edges` a layer reads.
    pub fn assemble(set: &GraphSet, indices: &[usize], edges: EdgeLists, device: Device) -> Self {
        let mut nodes = Vec::new();
        let mut types = Vec::new();
        let mut lists: [Vec<i64>; 3] = Default::default();
        let mut hete: [Vec<i64>; 2] = Default::default();
        let (mut position_nodes, mut position_indices) = (Vec::new(), Vec::new());
        let mut last = Vec::with_capacity(indices.len());
        for &i in indices {
            let g = set.graph(i);
            let offset = nodes.len() as i64;
            nodes.extend(g.nodes.iter().map(|&id| i64::from(id)));
            types.extend(g.types.iter().map(|&t| i64::from(t)));
            for e in 0..g.edge_rows.len() {
                let (r, c) = (
                    offset + i64::from(g.edge_rows[e]),
                    offset + i64::from(g.edge_cols[e]),
                );
                let relation = Relation::from_id(g.edge_relations[e]);
                // `lists` holds every edge (All) or the homogeneous ones (Phases).
                if edges == EdgeLists::All || relation.is_homogeneous() {
                    lists[0].push(r);
                    lists[1].push(c);
                    lists[2].push(relation as i64);
                }
                if edges == EdgeLists::Phases && relation.is_heterogeneous() {
                    hete[0].push(r);
                    hete[1].push(c);
                }
            }
            position_nodes.extend(g.position_nodes.iter().map(|&k| offset + i64::from(k)));
            position_indices.extend(g.position_indices.iter().map(|&q| i64::from(q)));
            last.push(offset + g.last_node() as i64);
        }
        let vector = |v: Vec<i64>| {
            let len = v.len() as i64;
            to_device(v, &[len], device)
        };
        let [rows, cols, relations] = lists.map(vector);
        let edges = match edges {
            EdgeLists::All => Edges::All(AllEdges {
                rows,
                cols,
                relations,
            }),
            EdgeLists::Phases => {
                let [hete_rows, hete_cols] = hete.map(vector);
                Edges::Phases(PhaseEdges {
                    homo_rows: rows,
                    homo_cols: cols,
                    homo_relations: relations,
                    hete_rows,
                    hete_cols,
                })
            }
        };
        Self {
            type_index: type_index(&types, device),
            num_nodes: nodes.len() as i64,
            nodes: vector(nodes),
            types: vector(types),
            edges,
            position_nodes: vector(position_nodes),
            position_indices: vector(position_indices),
            last: vector(last),
        }
    }

    /// Every edge. Panics when the batch was built for a layer that declared
    /// [`EdgeLists::Phases`]: the layer's `edge_lists` is wrong, a programming error.
    pub fn all_edges(&self) -> &AllEdges {
        match &self.edges {
            Edges::All(edges) => edges,
            Edges::Phases(_) => panic!("this sparse batch holds the phase edge lists only: the layer must declare EdgeLists::All"),
        }
    }

    /// The two phases' edges. Panics when the batch was built with [`EdgeLists::All`].
    pub fn phase_edges(&self) -> &PhaseEdges {
        match &self.edges {
            Edges::Phases(edges) => edges,
            Edges::All(_) => panic!("this sparse batch holds the all-edge list only: the layer must declare EdgeLists::Phases"),
        }
    }

    /// Which edge lists the batch holds.
    pub fn edge_lists(&self) -> EdgeLists {
        match self.edges {
            Edges::All(_) => EdgeLists::All,
            Edges::Phases(_) => EdgeLists::Phases,
        }
    }
}

/// Float mask of real nodes for a dense batch, broadcastable over features: [B, N, 1].
pub fn feature_mask(batch: &DenseGraphBatch) -> Tensor {
    batch.real.unsqueeze(-1).to_kind(Kind::Float)
}
