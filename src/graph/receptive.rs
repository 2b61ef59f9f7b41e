//! Receptive-field pruning: with `last` pooling, a model whose layers pass messages `S` times in
//! all (HAN-GNN's two-phase layer: two steps) reads a node's aggregation over its neighbours only
//! if the node lies within `S − 1` steps of the most recent item, and the other nodes' inputs
//! only if they lie within `S`. Evaluation batches are cut to that once per run, so the model
//! computes nothing it throws away. The cut is described by the reach `R` (`S − 1`, plus one for
//! models that weight an edge by its neighbour's degree, as GCN does).
//!
//! What is kept, following edges from the attending node (row) to its neighbour (column):
//! - every edge whose row is within `R` steps: those rows see all their neighbours, so their
//!   softmaxes, means and degrees are unchanged;
//! - every node within `R + 1` steps;
//! - the self-loops of the nodes `R + 1` steps away, so that no kept node has an empty row (the
//!   original graphs have none; those nodes' updates are never read, but must stay finite, since
//!   a masked-out dense weight times NaN would still be NaN).
//!
//! Nodes keep their relative order (items, then image codes, then text codes), so each kept row
//! sums its neighbours in the original order.

use super::set::{GraphSet, GraphView};

/// Marks a position whose item node lies outside the receptive field (only the last position is
/// read after pruning: `last` pooling; the alias length still sets the position-table width).
pub const PRUNED_ALIAS: u16 = u16::MAX;

/// Steps from each node to the pooled node along row -> column edges (`usize::MAX`: beyond
/// `limit`).
fn distances_from_last(view: &GraphView<'_>, limit: usize) -> Vec<usize> {
    let mut distance = vec![usize::MAX; view.num_nodes()];
    distance[view.last_node()] = 0;
    for step in 1..=limit {
        let mut reached = false;
        // One scan of the edge list per step: as cheap as an index for graphs this small.
        for e in 0..view.edge_rows.len() {
            let (row, col) = (view.edge_rows[e] as usize, view.edge_cols[e] as usize);
            if distance[row] == step - 1 && distance[col] == usize::MAX {
                distance[col] = step;
                reached = true;
            }
        }
        if !reached {
            break;
        }
    }
    distance
}

impl GraphSet {
    /// Every graph cut to the receptive field of reach `reach` (see the module documentation):
    /// 0 keeps the pooled node with all its edges, its neighbours and their self-loops.
    pub fn receptive_field(&self, reach: usize) -> GraphSet {
        let mut out = GraphSet::empty();
        let mut local = Vec::new();
        for g in 0..self.len() {
            let view = self.graph(g);
            let distance = distances_from_last(&view, reach + 1);
            local.clear();
            let mut kept = 0u16;
            for (k, &d) in distance.iter().enumerate() {
                if d <= reach + 1 {
                    local.push(kept);
                    kept += 1;
                    out.nodes.push(view.nodes[k]);
                    out.types.push(view.types[k]);
                } else {
                    local.push(PRUNED_ALIAS);
                }
            }
            out.node_offsets.push(out.nodes.len());
            for e in 0..view.edge_rows.len() {
                let (row, col) = (view.edge_rows[e] as usize, view.edge_cols[e] as usize);
                let reads_all = distance[row] <= reach;
                let boundary_loop = row == col && distance[row] == reach + 1;
                if reads_all || boundary_loop {
                    out.edge_rows.push(local[row]);
                    out.edge_cols.push(local[col]);
                    out.edge_relations.push(view.edge_relations[e]);
                }
            }
            out.edge_offsets.push(out.edge_rows.len());
            out.alias
                .extend(view.alias.iter().map(|&node| local[node as usize]));
            out.alias_offsets.push(out.alias.len());
            for q in 0..view.position_nodes.len() {
                let node = local[view.position_nodes[q] as usize];
                if node != PRUNED_ALIAS {
                    out.position_nodes.push(node);
                    out.position_indices.push(view.position_indices[q]);
                }
            }
            out.position_offsets.push(out.position_nodes.len());
        }
        out.shrink_to_fit();
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::{build_graph, GraphSet, Scratch};

    /// A chain of 6 items without modalities: item i's neighbours are i-1 and i+1.
    fn chain() -> GraphSet {
        GraphSet::build_with(1, |_, scratch: &mut Scratch| {
            build_graph(&[1, 2, 3, 4, 5, 6], &[], &[], scratch)
        })
    }

    #[test]
    fn a_chain_keeps_reach_plus_one_nodes_and_the_rows_within_reach() {
        let full = chain();
        let view = full.graph(0);
        assert_eq!(view.num_nodes(), 6);
        for reach in 0..6 {
            let pruned = full.receptive_field(reach);
            let g = pruned.graph(0);
            let nodes = (reach + 2).min(6);
            assert_eq!(g.num_nodes(), nodes, "reach {reach}");
            // The most recent items survive, in their original order.
            assert_eq!(g.nodes, &view.nodes[6 - nodes..], "reach {reach}");
            assert_eq!(g.alias.len(), 6);
            assert_eq!(g.last_node(), nodes - 1);
            // Rows within `reach` keep every edge; the boundary node only its self-loop.
            for e in 0..g.edge_rows.len() {
                let row_distance = nodes - 1 - g.edge_rows[e] as usize;
                assert!(
                    row_distance <= reach || g.edge_rows[e] == g.edge_cols[e],
                    "reach {reach}: edge {e}"
                );
            }
            let full_rows_kept = (0..view.edge_rows.len())
                .filter(|&e| 5 - view.edge_rows[e] as usize <= reach)
                .count();
            let boundary_loops = usize::from(nodes == reach + 2);
            assert_eq!(
                g.edge_rows.len(),
                full_rows_kept + boundary_loops,
                "reach {reach}"
            );
            assert!(g.position_nodes.iter().all(|&n| (n as usize) < nodes));
        }
    }
}
