//! One modality-enriched sequence graph (MSGraph, spec §3), built exactly as the official
//! `Data.__getitem__`: deduplicated nodes, the 10 relation ids with their assignment order and
//! quirks, alias and position entries.

use super::{NodeType, Relation};

/// A graph with local node indices `0..nodes.len()`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MsGraph {
    /// Global ids (items, then image codes, then text codes; each group ascending).
    pub nodes: Vec<u32>,
    pub types: Vec<NodeType>,
    /// Every non-zero adjacency entry `(row, col, relation)` in row-major order. Row `i`
    /// attends over the columns `j` of its entries.
    pub edges: Vec<(u16, u16, Relation)>,
    /// `alias[p]` = local node of the item at input position `p` (oldest first).
    pub alias: Vec<u16>,
    /// `(node, position)` pairs where the node occurs at that position (items: the item itself;
    /// codes: in the position's bundle). Node-major, positions ascending.
    pub positions: Vec<(u16, u16)>,
}

/// Reusable buffers, so building many graphs allocates little.
#[derive(Debug, Default)]
pub struct Scratch {
    items: Vec<u32>,
    images: Vec<u32>,
    texts: Vec<u32>,
    adjacency: Vec<u8>,
}

fn sorted_unique(out: &mut Vec<u32>, values: impl Iterator<Item = u32>) {
    out.clear();
    out.extend(values);
    out.sort_unstable();
    out.dedup();
}

/// Local index of `id` inside a sorted group that starts at `offset`.
fn local(group: &[u32], offset: usize, id: u32) -> usize {
    offset
        + group
            .binary_search(&id)
            .expect("id collected into its group")
}

/// Builds the graph of one input: `items[p]` with its image bundle `images[p]` and text bundle
/// `texts[p]` (global code ids; may be empty, may repeat). Bundles may be omitted entirely
/// (items-only graphs) by passing empty slices.
pub fn build_graph(
    items: &[u32],
    images: &[&[u32]],
    texts: &[&[u32]],
    scratch: &mut Scratch,
) -> MsGraph {
    let m = items.len();
    debug_assert!(images.len() == m || images.is_empty());
    debug_assert!(texts.len() == m || texts.is_empty());
    let image_at = |p: usize| -> &[u32] { images.get(p).copied().unwrap_or(&[]) };
    let text_at = |p: usize| -> &[u32] { texts.get(p).copied().unwrap_or(&[]) };

    sorted_unique(&mut scratch.items, items.iter().copied());
    sorted_unique(
        &mut scratch.images,
        (0..m).flat_map(|p| image_at(p).iter().copied()),
    );
    sorted_unique(
        &mut scratch.texts,
        (0..m).flat_map(|p| text_at(p).iter().copied()),
    );
    let (u, a, t) = (&scratch.items, &scratch.images, &scratch.texts);
    let (image_offset, text_offset) = (u.len(), u.len() + a.len());
    let n = text_offset + t.len();
    assert!(
        n <= u16::MAX as usize && m <= u16::MAX as usize,
        "graph too large"
    );
    let item_node = |id| local(u, 0, id);
    let image_node = |id| local(a, image_offset, id);
    let text_node = |id| local(t, text_offset, id);

    let adj = &mut scratch.adjacency;
    adj.clear();
    adj.resize(n * n, 0);
    let at = |i: usize, j: usize| i * n + j;

    // Step 1: self-loops, item-code and image-text relations, position by position.
    for (p, &item) in items.iter().enumerate().take(m) {
        let v = item_node(item);
        adj[at(v, v)] = Relation::SelfLoop as u8;
        for &code in image_at(p) {
            let c = image_node(code);
            adj[at(c, c)] = Relation::SelfLoop as u8;
            adj[at(v, c)] = Relation::ItemToImage as u8;
            adj[at(c, v)] = Relation::ImageToItem as u8;
        }
        for &code in text_at(p) {
            let c = text_node(code);
            adj[at(c, c)] = Relation::SelfLoop as u8;
            adj[at(v, c)] = Relation::ItemToText as u8;
            adj[at(c, v)] = Relation::TextToItem as u8;
        }
        for &image in image_at(p) {
            for &text in text_at(p) {
                let (i, j) = (image_node(image), text_node(text));
                adj[at(i, j)] = Relation::ImageToText as u8;
                adj[at(j, i)] = Relation::TextToImage as u8;
            }
        }
    }

    // Step 2: transitions between consecutive positions (items, then their codes).
    let link = |adj: &mut Vec<u8>, x: usize, y: usize| {
        if adj[at(y, x)] == Relation::Out as u8 {
            adj[at(x, y)] = Relation::Both as u8;
            adj[at(y, x)] = Relation::Both as u8;
        } else {
            adj[at(x, y)] = Relation::Out as u8;
            adj[at(y, x)] = Relation::In as u8;
        }
    };
    let skip = |adj: &Vec<u8>, x: usize, y: usize| x == y || adj[at(x, y)] == Relation::Both as u8;
    for p in 0..m.saturating_sub(1) {
        let (x, y) = (item_node(items[p]), item_node(items[p + 1]));
        // Quirk kept from the official code: a repeated or already bidirectional item pair skips
        // the code transitions of this step as well.
        if skip(adj, x, y) {
            continue;
        }
        link(adj, x, y);
        for &from in image_at(p) {
            for &to in image_at(p + 1) {
                let (x, y) = (image_node(from), image_node(to));
                if !skip(adj, x, y) {
                    link(adj, x, y);
                }
            }
        }
        for &from in text_at(p) {
            for &to in text_at(p + 1) {
                let (x, y) = (text_node(from), text_node(to));
                if !skip(adj, x, y) {
                    link(adj, x, y);
                }
            }
        }
    }

    let mut edges = Vec::new();
    for i in 0..n {
        for j in 0..n {
            let r = adj[at(i, j)];
            if r != 0 {
                edges.push((i as u16, j as u16, Relation::from_id(r)));
            }
        }
    }

    let mut positions = Vec::new();
    for (node, &id) in u.iter().enumerate() {
        positions.extend(
            (0..m)
                .filter(|&p| items[p] == id)
                .map(|p| (node as u16, p as u16)),
        );
    }
    for (k, &id) in a.iter().enumerate() {
        let node = (image_offset + k) as u16;
        positions.extend(
            (0..m)
                .filter(|&p| image_at(p).contains(&id))
                .map(|p| (node, p as u16)),
        );
    }
    for (k, &id) in t.iter().enumerate() {
        let node = (text_offset + k) as u16;
        positions.extend(
            (0..m)
                .filter(|&p| text_at(p).contains(&id))
                .map(|p| (node, p as u16)),
        );
    }

    let mut types = vec![NodeType::Item; u.len()];
    types.extend(std::iter::repeat_n(NodeType::Image, a.len()));
    types.extend(std::iter::repeat_n(NodeType::Text, t.len()));
    MsGraph {
        nodes: u.iter().chain(a.iter()).chain(t.iter()).copied().collect(),
        types,
        edges,
        alias: items.iter().map(|&id| item_node(id) as u16).collect(),
        positions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dense relation matrix of a graph, for comparisons with the spec's tables.
    fn dense(g: &MsGraph) -> Vec<Vec<u8>> {
        let n = g.nodes.len();
        let mut adj = vec![vec![0u8; n]; n];
        for &(i, j, r) in &g.edges {
            adj[i as usize][j as usize] = r as u8;
        }
        adj
    }

    fn positions_of(g: &MsGraph, node: u16) -> Vec<u16> {
        g.positions
            .iter()
            .filter(|(n, _)| *n == node)
            .map(|(_, p)| *p)
            .collect()
    }

    /// Spec §3.4: sample 17 of the shipped train file, entry by entry.
    #[test]
    fn worked_example_sample_17() {
        let items = [22, 22, 23, 23, 23, 22, 23];
        let image_of = |item: u32| {
            if item == 22 {
                [332u32, 332]
            } else {
                [333, 333]
            }
        };
        let text_of = |item: u32| {
            if item == 22 {
                [642u32, 642]
            } else {
                [643, 643]
            }
        };
        let images: Vec<[u32; 2]> = items.iter().map(|&i| image_of(i)).collect();
        let texts: Vec<[u32; 2]> = items.iter().map(|&i| text_of(i)).collect();
        let image_refs: Vec<&[u32]> = images.iter().map(|b| &b[..]).collect();
        let text_refs: Vec<&[u32]> = texts.iter().map(|b| &b[..]).collect();
        let g = build_graph(&items, &image_refs, &text_refs, &mut Scratch::default());

        assert_eq!(g.nodes, vec![22, 23, 332, 333, 642, 643]);
        use NodeType::*;
        assert_eq!(g.types, vec![Item, Item, Image, Image, Text, Text]);
        assert_eq!(g.alias, vec![0, 0, 1, 1, 1, 0, 1]);
        let expected = vec![
            vec![1, 4, 5, 0, 7, 0],
            vec![4, 1, 0, 5, 0, 7],
            vec![6, 0, 1, 4, 9, 0],
            vec![0, 6, 4, 1, 0, 9],
            vec![8, 0, 10, 0, 1, 4],
            vec![0, 8, 0, 10, 4, 1],
        ];
        assert_eq!(dense(&g), expected);
        for node in [0u16, 2, 4] {
            assert_eq!(positions_of(&g, node), vec![0, 1, 5], "node {node}");
        }
        for node in [1u16, 3, 5] {
            assert_eq!(positions_of(&g, node), vec![2, 3, 4, 6], "node {node}");
        }
    }

    /// Spec §3.4: sample 0 (`[1, 2]`) has a one-way transition.
    #[test]
    fn worked_example_sample_0() {
        let images: [&[u32]; 2] = [&[311, 311], &[312, 312]];
        let texts: [&[u32]; 2] = [&[621, 621], &[622, 622]];
        let g = build_graph(&[1, 2], &images, &texts, &mut Scratch::default());
        assert_eq!(g.nodes, vec![1, 2, 311, 312, 621, 622]);
        let adj = dense(&g);
        assert_eq!((adj[0][0], adj[0][1], adj[1][0], adj[1][1]), (1, 2, 3, 1));
        // The codes follow the item transition; image-text pairs within the same item.
        assert_eq!((adj[2][3], adj[3][2]), (2, 3));
        assert_eq!((adj[4][5], adj[5][4]), (2, 3));
        assert_eq!((adj[2][4], adj[4][2], adj[2][5]), (9, 10, 0));
        assert_eq!((adj[0][2], adj[2][0], adj[0][4], adj[4][0]), (5, 6, 7, 8));
        assert_eq!(g.alias, vec![0, 1]);
    }

    #[test]
    fn repeated_items_skip_code_transitions_too() {
        // 1 -> 1 is skipped entirely (same node); so is the code pair 10 -> 11 attached to it.
        let images: [&[u32]; 3] = [&[10], &[11], &[12]];
        let g = build_graph(&[1, 1, 2], &images, &[], &mut Scratch::default());
        let adj = dense(&g);
        // nodes: 1, 2, 10, 11, 12
        assert_eq!(
            adj[2][3], 0,
            "no transition 10 -> 11 because the item step 1 -> 1 was skipped"
        );
        assert_eq!((adj[3][4], adj[4][3]), (2, 3));
        assert_eq!((adj[0][1], adj[1][0]), (2, 3));
    }

    #[test]
    fn missing_modalities_give_no_code_nodes() {
        let images: [&[u32]; 2] = [&[], &[40]];
        let texts: [&[u32]; 2] = [&[], &[]];
        let g = build_graph(&[5, 6], &images, &texts, &mut Scratch::default());
        assert_eq!(g.nodes, vec![5, 6, 40]);
        let adj = dense(&g);
        assert_eq!((adj[1][2], adj[2][1]), (5, 6));
        assert_eq!(adj[0][2], 0);
        // items-only graph
        let g = build_graph(&[5, 6, 5], &[], &[], &mut Scratch::default());
        assert_eq!(g.nodes, vec![5, 6]);
        assert_eq!(dense(&g), vec![vec![1, 4], vec![4, 1]]);
        assert_eq!(g.positions, vec![(0, 0), (0, 2), (1, 1)]);
    }
}
