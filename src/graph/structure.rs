//! Per-graph structure beyond the relations, computed once per dataset (like the graphs) for
//! the models that encode it (Graphormer, spec §5.3): all-pairs shortest-path hop distances on
//! the graph with every relation as an undirected edge, and in/out degrees over the edges that
//! are not self-loops.

use petgraph::algo::dijkstra;
use petgraph::graph::{NodeIndex, UnGraph};
use rayon::prelude::*;

use super::set::{GraphSet, GraphView};
use super::Relation;

/// Distances are capped here; farther pairs share this bucket.
pub const MAX_DISTANCE: u8 = 8;
/// The bucket of unreachable pairs (one past the cap).
pub const UNREACHABLE: u8 = MAX_DISTANCE + 1;

/// Distances and degrees of every graph of a [`GraphSet`], in the same order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StructureSet {
    /// Graph `g` owns `distances[distance_offsets[g]..distance_offsets[g + 1]]`, its n × n
    /// distance buckets row-major.
    distance_offsets: Vec<usize>,
    distances: Vec<u8>,
    /// Graph `g`'s nodes are `node_offsets[g]..node_offsets[g + 1]` in the degree arrays.
    node_offsets: Vec<usize>,
    in_degree: Vec<u16>,
    out_degree: Vec<u16>,
}

/// One graph's structure.
#[derive(Debug, Clone, Copy)]
pub struct StructureView<'a> {
    pub num_nodes: usize,
    /// Row-major n × n buckets: 0..=MAX_DISTANCE hops, or UNREACHABLE.
    pub distances: &'a [u8],
    pub in_degree: &'a [u16],
    pub out_degree: &'a [u16],
}

struct GraphStructure {
    distances: Vec<u8>,
    in_degree: Vec<u16>,
    out_degree: Vec<u16>,
}

fn structure_of(g: &GraphView) -> GraphStructure {
    let n = g.num_nodes();
    let mut in_degree = vec![0u16; n];
    let mut out_degree = vec![0u16; n];
    let mut graph = UnGraph::<(), ()>::with_capacity(n, g.edge_rows.len());
    for _ in 0..n {
        graph.add_node(());
    }
    for e in 0..g.edge_rows.len() {
        let (r, c) = (g.edge_rows[e] as usize, g.edge_cols[e] as usize);
        if Relation::from_id(g.edge_relations[e]) == Relation::SelfLoop {
            continue;
        }
        out_degree[r] += 1;
        in_degree[c] += 1;
        // Each direction is its own entry; one undirected edge per unordered pair suffices.
        if r < c {
            graph.add_edge(NodeIndex::new(r), NodeIndex::new(c), ());
        }
    }
    let mut distances = vec![UNREACHABLE; n * n];
    for source in 0..n {
        for (target, hops) in dijkstra(&graph, NodeIndex::new(source), None, |_| 1u32) {
            distances[source * n + target.index()] = hops.min(u32::from(MAX_DISTANCE)) as u8;
        }
    }
    GraphStructure {
        distances,
        in_degree,
        out_degree,
    }
}

impl StructureSet {
    /// The structure of every graph of `set`, computed in parallel, in order.
    pub fn build(set: &GraphSet) -> Self {
        let parts: Vec<GraphStructure> = (0..set.len())
            .into_par_iter()
            .map(|g| structure_of(&set.graph(g)))
            .collect();
        let mut out = Self {
            distance_offsets: vec![0],
            node_offsets: vec![0],
            ..Self::default()
        };
        for part in parts {
            out.distances.extend_from_slice(&part.distances);
            out.distance_offsets.push(out.distances.len());
            out.in_degree.extend_from_slice(&part.in_degree);
            out.out_degree.extend_from_slice(&part.out_degree);
            out.node_offsets.push(out.in_degree.len());
        }
        out
    }

    pub fn len(&self) -> usize {
        self.node_offsets.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn graph(&self, g: usize) -> StructureView<'_> {
        let (n0, n1) = (self.node_offsets[g], self.node_offsets[g + 1]);
        let (d0, d1) = (self.distance_offsets[g], self.distance_offsets[g + 1]);
        StructureView {
            num_nodes: n1 - n0,
            distances: &self.distances[d0..d1],
            in_degree: &self.in_degree[n0..n1],
            out_degree: &self.out_degree[n0..n1],
        }
    }

    /// Bytes held (for memory reports).
    pub fn memory_bytes(&self) -> usize {
        self.distances.len() + self.in_degree.len() * 4 + self.node_offsets.len() * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::SampleSet;
    use crate::modality::ItemBundles;

    /// Spec §3.4's sample 0 (`[1, 2]`, one image and one text code each): a path
    /// 1 - 2 between the items, each item linked to its codes, codes linked across modalities and
    /// along the transition.
    #[test]
    fn distances_and_degrees_of_a_small_graph() {
        let mut samples = SampleSet::new();
        samples.push(1, &[1, 2], 3);
        samples.push(1, &[1], 2);
        let bundles = ItemBundles {
            image: vec![vec![], vec![10], vec![11]],
            text: vec![vec![], vec![20], vec![21]],
        };
        let set = GraphSet::build(&samples, Some(&bundles));
        let structure = StructureSet::build(&set);
        assert_eq!(structure.len(), 2);
        // nodes: 1, 2, 10, 11, 20, 21
        let s = structure.graph(0);
        let d = |i: usize, j: usize| s.distances[i * 6 + j];
        assert_eq!(
            (d(0, 0), d(0, 1), d(0, 2), d(0, 3), d(0, 4), d(0, 5)),
            (0, 1, 1, 2, 1, 2)
        );
        assert_eq!(d(2, 5), 2, "image code 10 -> text code 21 via 11 or 20");
        for i in 0..6 {
            for j in 0..6 {
                assert_eq!(d(i, j), d(j, i), "symmetric");
            }
        }
        // item 1: item 2, its image and text code; image 10: item 1, image 11, text 20
        assert_eq!(s.out_degree, &[3, 3, 3, 3, 3, 3]);
        assert_eq!(s.in_degree, s.out_degree);
        let single = structure.graph(1);
        assert_eq!(single.num_nodes, 3);
        assert_eq!(single.distances, &[0, 1, 1, 1, 0, 1, 1, 1, 0]);
    }

    #[test]
    fn long_paths_are_capped_and_unconnected_pairs_marked() {
        let mut samples = SampleSet::new();
        let items: Vec<u32> = (1..=12).collect();
        samples.push(1, &items, 13);
        let set = GraphSet::build(&samples, None);
        let s = StructureSet::build(&set);
        let g = s.graph(0);
        assert_eq!(g.distances[11], MAX_DISTANCE, "11 hops capped at 8");
        assert_eq!(g.distances[3], 3);
        assert!(
            g.distances.iter().all(|&d| d != UNREACHABLE),
            "a path is connected"
        );
        assert_eq!(g.out_degree[0], 1);
        assert_eq!(g.out_degree[5], 2);
    }
}
