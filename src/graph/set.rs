//! All graphs of one sample set, built once (in parallel) and stored in flat arrays.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::builder::{build_graph, MsGraph, Scratch};
use super::Relation;
use crate::dataset::missing::DropPattern;
use crate::dataset::SampleSet;
use crate::modality::{ItemBundles, Modality};

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

    fn push(&mut self, g: &MsGraph) {
        self.nodes.extend_from_slice(&g.nodes);
        self.types.extend(g.types.iter().map(|&t| t as u8));
        self.node_offsets.push(self.nodes.len());
        for &(r, c, rel) in &g.edges {
            self.edge_rows.push(r);
            self.edge_cols.push(c);
            self.edge_relations.push(rel as u8);
        }
        self.edge_offsets.push(self.edge_rows.len());
        self.alias.extend_from_slice(&g.alias);
        self.alias_offsets.push(self.alias.len());
        for &(node, position) in &g.positions {
            self.position_nodes.push(node);
            self.position_indices.push(position);
        }
        self.position_offsets.push(self.position_nodes.len());
    }

    fn append(&mut self, other: GraphSet) {
        fn shifted(dst: &mut Vec<usize>, src: &[usize]) {
            let base = *dst.last().expect("offsets start with 0");
            dst.extend(src[1..].iter().map(|o| o + base));
        }
        shifted(&mut self.node_offsets, &other.node_offsets);
        shifted(&mut self.edge_offsets, &other.edge_offsets);
        shifted(&mut self.alias_offsets, &other.alias_offsets);
        shifted(&mut self.position_offsets, &other.position_offsets);
        self.nodes.extend(other.nodes);
        self.types.extend(other.types);
        self.edge_rows.extend(other.edge_rows);
        self.edge_cols.extend(other.edge_cols);
        self.edge_relations.extend(other.edge_relations);
        self.alias.extend(other.alias);
        self.position_nodes.extend(other.position_nodes);
        self.position_indices.extend(other.position_indices);
    }

    /// Builds `count` graphs with `make(index, scratch)`, in parallel chunks, in index order.
    pub fn build_with<F>(count: usize, make: F) -> Self
    where
        F: Fn(usize, &mut Scratch) -> MsGraph + Sync,
    {
        const CHUNK: usize = 2048;
        let parts: Vec<GraphSet> = (0..count.div_ceil(CHUNK))
            .into_par_iter()
            .map(|chunk| {
                let mut part = GraphSet::empty();
                let mut scratch = Scratch::default();
                for i in chunk * CHUNK..((chunk + 1) * CHUNK).min(count) {
                    part.push(&make(i, &mut scratch));
                }
                part
            })
            .collect();
        let mut set = GraphSet::empty();
        for part in parts {
            set.append(part);
        }
        set
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
