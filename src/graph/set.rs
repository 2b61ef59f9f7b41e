//! All graphs of one sample set, built once (in parallel) and stored in flat arrays.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::builder::{build_graph, MsGraph, Scratch};
use super::Relation;
use crate::dataset::missing::DropPattern;
use crate::dataset::SampleSet;
use crate::modality::{ItemBundles, Modality};

/// How much of each flat array one graph (or a run of graphs) takes.
#[derive(Debug, Clone, Copy, Default)]
struct GraphSizes {
    nodes: usize,
    edges: usize,
    alias: usize,
    positions: usize,
}

impl GraphSizes {
    fn of(g: &MsGraph) -> Self {
        Self {
            nodes: g.nodes.len(),
            edges: g.edges.len(),
            alias: g.alias.len(),
            positions: g.positions.len(),
        }
    }

    fn plus(self, other: &GraphSizes) -> Self {
        Self {
            nodes: self.nodes + other.nodes,
            edges: self.edges + other.edges,
            alias: self.alias + other.alias,
            positions: self.positions + other.positions,
        }
    }
}

/// One chunk's share of a set's flat arrays, filled graph by graph in index order.
struct ChunkSlices<'a> {
    graphs: std::ops::Range<usize>,
    nodes: &'a mut [u32],
    types: &'a mut [u8],
    edge_rows: &'a mut [u16],
    edge_cols: &'a mut [u16],
    edge_relations: &'a mut [u8],
    alias: &'a mut [u16],
    position_nodes: &'a mut [u16],
    position_indices: &'a mut [u16],
    /// What the graphs written so far took.
    written: GraphSizes,
}

impl ChunkSlices<'_> {
    /// Writes the next graph; it must have the sizes the first pass measured for it (the same
    /// deterministic builder on the same sample).
    fn write(&mut self, g: &MsGraph) {
        let at = self.written;
        let size = GraphSizes::of(g);
        self.nodes[at.nodes..at.nodes + size.nodes].copy_from_slice(&g.nodes);
        for (slot, &t) in self.types[at.nodes..].iter_mut().zip(&g.types) {
            *slot = t as u8;
        }
        for (e, &(r, c, rel)) in g.edges.iter().enumerate() {
            self.edge_rows[at.edges + e] = r;
            self.edge_cols[at.edges + e] = c;
            self.edge_relations[at.edges + e] = rel as u8;
        }
        self.alias[at.alias..at.alias + size.alias].copy_from_slice(&g.alias);
        for (q, &(node, position)) in g.positions.iter().enumerate() {
            self.position_nodes[at.positions + q] = node;
            self.position_indices[at.positions + q] = position;
        }
        self.written = at.plus(&size);
    }
}

/// A read-only view of one stored graph.
#[derive(Debug, Clone, Copy)]
pub struct GraphView<'a> {
    pub nodes: &'a [u32],
    pub types: &'a [u8],
    pub edge_rows: &'a [u16],
    pub edge_cols: &'a [u16],
    pub edge_relations: &'a [u8],
    pub alias: &'a [u16],
    pub position_nodes: &'a [u16],
    pub position_indices: &'a [u16],
}

impl GraphView<'_> {
    pub fn num_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Local index of the most recent item's node (`last` pooling).
    pub fn last_node(&self) -> usize {
        *self.alias.last().expect("inputs are never empty") as usize
    }
}

/// Graphs in compressed layout: graph `g` owns `nodes[node_offsets[g]..node_offsets[g + 1]]`,
/// and likewise for edges, aliases and position entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GraphSet {
    pub(super) node_offsets: Vec<usize>,
    pub(super) nodes: Vec<u32>,
    pub(super) types: Vec<u8>,
    pub(super) edge_offsets: Vec<usize>,
    pub(super) edge_rows: Vec<u16>,
    pub(super) edge_cols: Vec<u16>,
    pub(super) edge_relations: Vec<u8>,
    pub(super) alias_offsets: Vec<usize>,
    pub(super) alias: Vec<u16>,
    pub(super) position_offsets: Vec<usize>,
    pub(super) position_nodes: Vec<u16>,
    pub(super) position_indices: Vec<u16>,
}

/// Size distribution of a graph set (spec §9.2: record n, |E_ho|, |E_he| per dataset).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GraphStats {
    pub graphs: usize,
    pub mean_nodes: f64,
    pub max_nodes: usize,
    pub mean_edges: f64,
    pub max_edges: usize,
    /// Directed edges with a homogeneous relation (self-loops included), summed over graphs.
    pub total_homogeneous_edges: usize,
    /// Directed edges with a heterogeneous relation (self-loops included), summed over graphs.
    pub total_heterogeneous_edges: usize,
    /// All non-zero adjacency entries, summed over graphs.
    pub total_edges: usize,
}

impl GraphSet {
    pub(super) fn empty() -> Self {
        Self {
            node_offsets: vec![0],
            edge_offsets: vec![0],
            alias_offsets: vec![0],
            position_offsets: vec![0],
            ..Self::default()
        }
    }

    /// Builds `count` graphs with `make(index, scratch)`, in parallel chunks, in index order,
    /// in two passes: the first only measures each graph, so that every flat array is allocated
    /// once at its exact size and the second writes each chunk's graphs into its own disjoint
    /// slices. (Building per-thread parts and concatenating them held every graph twice at the
    /// peak, about 0.2 GB on Beauty's training graphs, and left the copies with the allocator.)
    /// Graph building is a small part of a run, so building each graph twice is cheap.
    pub fn build_with<F>(count: usize, make: F) -> Self
    where
        F: Fn(usize, &mut Scratch) -> MsGraph + Sync,
    {
        let sizes: Vec<GraphSizes> = (0..count)
            .into_par_iter()
            .map_init(Scratch::default, |scratch, i| {
                GraphSizes::of(&make(i, scratch))
            })
            .collect();
        let mut set = GraphSet::sized(&sizes);
        set.chunks(&sizes)
            .into_par_iter()
            .for_each_init(Scratch::default, |scratch, mut chunk| {
                for i in chunk.graphs.clone() {
                    chunk.write(&make(i, scratch));
                }
            });
        set
    }

    /// Offsets from the graphs' sizes and zeroed arrays of exactly the total sizes.
    fn sized(sizes: &[GraphSizes]) -> Self {
        let mut set = GraphSet::empty();
        let mut totals = GraphSizes::default();
        for offsets in [
            &mut set.node_offsets,
            &mut set.edge_offsets,
            &mut set.alias_offsets,
            &mut set.position_offsets,
        ] {
            offsets.reserve_exact(sizes.len());
        }
        for size in sizes {
            totals = totals.plus(size);
            set.node_offsets.push(totals.nodes);
            set.edge_offsets.push(totals.edges);
            set.alias_offsets.push(totals.alias);
            set.position_offsets.push(totals.positions);
        }
        set.nodes = vec![0; totals.nodes];
        set.types = vec![0; totals.nodes];
        set.edge_rows = vec![0; totals.edges];
        set.edge_cols = vec![0; totals.edges];
        set.edge_relations = vec![0; totals.edges];
        set.alias = vec![0; totals.alias];
        set.position_nodes = vec![0; totals.positions];
        set.position_indices = vec![0; totals.positions];
        set
    }

    /// The arrays cut into the disjoint slices of consecutive chunks of graphs.
    fn chunks(&mut self, sizes: &[GraphSizes]) -> Vec<ChunkSlices<'_>> {
        const CHUNK: usize = 2048;
        let mut out = Vec::new();
        let (mut nodes, mut types) = (self.nodes.as_mut_slice(), self.types.as_mut_slice());
        let (mut rows, mut cols, mut relations) = (
            self.edge_rows.as_mut_slice(),
            self.edge_cols.as_mut_slice(),
            self.edge_relations.as_mut_slice(),
        );
        let mut alias = self.alias.as_mut_slice();
        let (mut position_nodes, mut position_indices) = (
            self.position_nodes.as_mut_slice(),
            self.position_indices.as_mut_slice(),
        );
        for start in (0..sizes.len()).step_by(CHUNK) {
            let graphs = start..(start + CHUNK).min(sizes.len());
            let total = sizes[graphs.clone()]
                .iter()
                .fold(GraphSizes::default(), |t, s| t.plus(s));
            macro_rules! take {
                ($slice:ident, $n:expr) => {{
                    let (head, tail) = std::mem::take(&mut $slice).split_at_mut($n);
                    $slice = tail;
                    head
                }};
            }
            out.push(ChunkSlices {
                graphs,
                nodes: take!(nodes, total.nodes),
                types: take!(types, total.nodes),
                edge_rows: take!(rows, total.edges),
                edge_cols: take!(cols, total.edges),
                edge_relations: take!(relations, total.edges),
                alias: take!(alias, total.alias),
                position_nodes: take!(position_nodes, total.positions),
                position_indices: take!(position_indices, total.positions),
                written: GraphSizes::default(),
            });
        }
        out
    }

    /// Gives back the vectors' unused capacity (sets grown graph by graph).
    pub(super) fn shrink_to_fit(&mut self) {
        for offsets in [
            &mut self.node_offsets,
            &mut self.edge_offsets,
            &mut self.alias_offsets,
            &mut self.position_offsets,
        ] {
            offsets.shrink_to_fit();
        }
        self.nodes.shrink_to_fit();
        self.types.shrink_to_fit();
        self.edge_rows.shrink_to_fit();
        self.edge_cols.shrink_to_fit();
        self.edge_relations.shrink_to_fit();
        self.alias.shrink_to_fit();
        self.position_nodes.shrink_to_fit();
        self.position_indices.shrink_to_fit();
    }

    /// The graphs of every sample of `samples`; `bundles` = None builds item-only graphs.
    pub fn build(samples: &SampleSet, bundles: Option<&ItemBundles>) -> Self {
        Self::build_missing(samples, bundles, None)
    }

    /// As [`GraphSet::build`], with the bundles that `missing` drops left out (the positions'
    /// items stay; spec §8).
    pub fn build_missing(
        samples: &SampleSet,
        bundles: Option<&ItemBundles>,
        missing: Option<&DropPattern>,
    ) -> Self {
        Self::build_with(samples.len(), |i, scratch| {
            let items = samples.input(i);
            let Some(b) = bundles else {
                return build_graph(items, &[], &[], scratch);
            };
            let seen = |position: usize, modality: Modality| {
                missing.is_none_or(|p| !p.dropped(i, position, modality))
            };
            let bundle_at = |p: usize, item: u32, modality| -> &[u32] {
                let table = match modality {
                    Modality::Image => &b.image,
                    Modality::Text => &b.text,
                };
                match seen(p, modality) {
                    true => table[item as usize].as_slice(),
                    false => &[],
                }
            };
            let per_position = |modality| -> Vec<&[u32]> {
                items
                    .iter()
                    .enumerate()
                    .map(|(p, &item)| bundle_at(p, item, modality))
                    .collect()
            };
            let images = per_position(Modality::Image);
            let texts = per_position(Modality::Text);
            build_graph(items, &images, &texts, scratch)
        })
    }

    pub fn len(&self) -> usize {
        self.node_offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn graph(&self, g: usize) -> GraphView<'_> {
        let (n0, n1) = (self.node_offsets[g], self.node_offsets[g + 1]);
        let (e0, e1) = (self.edge_offsets[g], self.edge_offsets[g + 1]);
        let (a0, a1) = (self.alias_offsets[g], self.alias_offsets[g + 1]);
        let (p0, p1) = (self.position_offsets[g], self.position_offsets[g + 1]);
        GraphView {
            nodes: &self.nodes[n0..n1],
            types: &self.types[n0..n1],
            edge_rows: &self.edge_rows[e0..e1],
            edge_cols: &self.edge_cols[e0..e1],
            edge_relations: &self.edge_relations[e0..e1],
            alias: &self.alias[a0..a1],
            position_nodes: &self.position_nodes[p0..p1],
            position_indices: &self.position_indices[p0..p1],
        }
    }

    pub fn stats(&self) -> GraphStats {
        let graphs = self.len();
        let nodes_of = |g: usize| self.node_offsets[g + 1] - self.node_offsets[g];
        let edges_of = |g: usize| self.edge_offsets[g + 1] - self.edge_offsets[g];
        let homogeneous = self
            .edge_relations
            .iter()
            .filter(|&&r| Relation::from_id(r).is_homogeneous())
            .count();
        let heterogeneous = self
            .edge_relations
            .iter()
            .filter(|&&r| Relation::from_id(r).is_heterogeneous())
            .count();
        GraphStats {
            graphs,
            mean_nodes: self.nodes.len() as f64 / graphs.max(1) as f64,
            max_nodes: (0..graphs).map(nodes_of).max().unwrap_or(0),
            mean_edges: self.edge_rows.len() as f64 / graphs.max(1) as f64,
            max_edges: (0..graphs).map(edges_of).max().unwrap_or(0),
            total_homogeneous_edges: homogeneous,
            total_heterogeneous_edges: heterogeneous,
            total_edges: self.edge_rows.len(),
        }
    }

    /// Bytes held by the flat arrays (for memory reports).
    pub fn memory_bytes(&self) -> usize {
        let offsets = self.node_offsets.len() * 4 * std::mem::size_of::<usize>();
        offsets
            + self.nodes.len() * 4
            + self.types.len()
            + self.edge_rows.len() * 5
            + self.alias.len() * 2
            + self.position_nodes.len() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_build_equals_sequential_and_views_round_trip() {
        let mut samples = SampleSet::new();
        for s in 0..5000u32 {
            let len = 1 + (s % 7) as usize;
            let input: Vec<u32> = (0..len as u32).map(|p| 1 + (s * 3 + p * 5) % 40).collect();
            samples.push(1, &input, 1);
        }
        let bundles = ItemBundles {
            image: (0..=40)
                .map(|i| {
                    if i == 0 {
                        vec![]
                    } else {
                        vec![41 + i % 6, 41 + (i + 1) % 6]
                    }
                })
                .collect(),
            text: (0..=40)
                .map(|i| if i % 5 == 0 { vec![] } else { vec![47 + i % 4] })
                .collect(),
        };
        let set = GraphSet::build(&samples, Some(&bundles));
        assert_eq!(set.len(), 5000);
        let mut scratch = Scratch::default();
        for i in [0usize, 1, 2047, 2048, 4999] {
            let items = samples.input(i);
            let images: Vec<&[u32]> = items
                .iter()
                .map(|&it| bundles.image[it as usize].as_slice())
                .collect();
            let texts: Vec<&[u32]> = items
                .iter()
                .map(|&it| bundles.text[it as usize].as_slice())
                .collect();
            let g = build_graph(items, &images, &texts, &mut scratch);
            let v = set.graph(i);
            assert_eq!(v.nodes, &g.nodes[..]);
            assert_eq!(v.alias, &g.alias[..]);
            let edges: Vec<(u16, u16, u8)> = g
                .edges
                .iter()
                .map(|&(r, c, rel)| (r, c, rel as u8))
                .collect();
            let stored: Vec<(u16, u16, u8)> = (0..v.edge_rows.len())
                .map(|k| (v.edge_rows[k], v.edge_cols[k], v.edge_relations[k]))
                .collect();
            assert_eq!(stored, edges);
            assert_eq!(v.last_node(), *g.alias.last().unwrap() as usize);
        }
        let stats = set.stats();
        assert_eq!(stats.graphs, 5000);
        assert!(
            stats.total_homogeneous_edges + stats.total_heterogeneous_edges > stats.total_edges
        );
        let items_only = GraphSet::build(&samples, None);
        assert!(items_only.stats().max_nodes <= 7);
    }
}
