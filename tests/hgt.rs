//! HGT's layer against an edge-by-edge recomputation from its own weights (per-type
//! projections, per-relation attention and message matrices, priors, softmax over each node's
//! incoming edges, gated skip), on real MSGraphs with every relation.

#[path = "support/zoo.rs"]
mod zoo;

use mmsr_bench::graph::{GraphBatch, GraphLayout, SparseGraphBatch};
use mmsr_bench::model::graph::{GraphCommon, GraphLayer};
use mmsr_bench::model::hgt::{HgtConfig, HgtLayer};
use tch::{nn, Device, Kind, Tensor};

fn matrix(t: &Tensor) -> Vec<Vec<f64>> {
    let (rows, cols) = t.size2().unwrap();
    (0..rows)
        .map(|r| (0..cols).map(|c| t.double_value(&[r, c])).collect())
        .collect()
}

fn times(v: &[f64], m: &[Vec<f64>]) -> Vec<f64> {
    (0..m[0].len())
        .map(|c| v.iter().zip(m).map(|(x, row)| x * row[c]).sum())
        .collect()
}

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + statrs::function::erf::erf(x / 2f64.sqrt()))
}

#[test]
fn hgt_matches_an_edge_by_edge_recomputation() {
    let data = zoo::random_dataset(3);
    let bundles = data.codes.as_ref().unwrap().item_bundles(data.num_items());
    let graphs = mmsr_bench::graph::GraphSet::build(&data.splits.test, Some(&bundles));
    let graph = GraphBatch::Sparse(SparseGraphBatch::assemble(
        &graphs,
        &[0, 1, 2, 3],
        Device::Cpu,
    ));
    let GraphBatch::Sparse(batch) = &graph else {
        unreachable!()
    };
    let (dim, heads) = (8i64, 2i64);
    let d = (dim / heads) as usize;
    let common = GraphCommon {
        layout: GraphLayout::Sparse,
        dim,
        ..GraphCommon::default()
    };
    tch::manual_seed(11);
    let vs = nn::VarStore::new(Device::Cpu);
    let layer = HgtLayer::new(
        &vs.root(),
        &common,
        &HgtConfig {
            heads,
            attention_dropout: 0.0,
        },
        true,
    );
    // Perturb the priors and skips so that they matter.
    let vars = vs.variables();
    tch::no_grad(|| {
        let _ = vars["prior"]
            .shallow_clone()
            .g_add_(&(Tensor::rand_like(&vars["prior"]) - 0.5));
        let _ = vars["skip"]
            .shallow_clone()
            .g_add_(&(Tensor::rand_like(&vars["skip"]) - 0.5));
    });
    let t = batch.num_nodes;
    let h = Tensor::randn([t, dim], (Kind::Float, Device::Cpu));
    let out = tch::no_grad(|| layer.forward(&h, &graph, false));

    let types: Vec<i64> = Vec::try_from(&batch.types).unwrap();
    let rows: Vec<i64> = Vec::try_from(&batch.rows).unwrap();
    let cols: Vec<i64> = Vec::try_from(&batch.cols).unwrap();
    let rels: Vec<i64> = Vec::try_from(&batch.relations).unwrap();
    assert!(
        (2..=10).all(|r| rels.contains(&r)),
        "every relation occurs: {rels:?}"
    );
    let hv = matrix(&h);
    let typed = |name: &str, ty: i64| matrix(&vars[name].get(ty));
    let project = |name: &str, node: usize| times(&hv[node], &typed(name, types[node]));
    let head_matrix = |name: &str, r: i64, k: usize| matrix(&vars[name].get(r).get(k as i64));
    let prior = matrix(&vars["prior"]);
    let skip: Vec<f64> = Vec::<f32>::try_from(&vars["skip"])
        .unwrap()
        .iter()
        .map(|&x| f64::from(x))
        .collect();
    let mut aggregated = vec![vec![0.0; dim as usize]; t as usize];
    for (target, sums) in aggregated.iter_mut().enumerate() {
        let q = project("w_query", target);
        let edges: Vec<usize> = (0..rows.len())
            .filter(|&e| rows[e] as usize == target)
            .collect();
        for k in 0..heads as usize {
            let head = |x: &[f64]| x[k * d..(k + 1) * d].to_vec();
            let logits: Vec<f64> = edges
                .iter()
                .map(|&e| {
                    let key = times(
                        &head(&project("w_key", cols[e] as usize)),
                        &head_matrix("w_attention", rels[e], k),
                    );
                    let dot: f64 = key.iter().zip(head(&q)).map(|(a, b)| a * b).sum();
                    dot * prior[rels[e] as usize][k] / (d as f64).sqrt()
                })
                .collect();
            let max = logits.iter().cloned().fold(f64::MIN, f64::max);
            let total: f64 = logits.iter().map(|l| (l - max).exp()).sum();
            for (&e, l) in edges.iter().zip(&logits) {
                let weight = (l - max).exp() / total;
                let message = times(
                    &head(&project("w_value", cols[e] as usize)),
                    &head_matrix("w_message", rels[e], k),
                );
                for (i, m) in message.iter().enumerate() {
                    sums[k * d + i] += weight * m;
                }
            }
        }
    }
    let mut worst = 0f64;
    for node in 0..t as usize {
        let activated: Vec<f64> = aggregated[node].iter().map(|&x| gelu(x)).collect();
        let update = times(&activated, &typed("w_out", types[node]));
        let alpha = 1.0 / (1.0 + (-skip[types[node] as usize]).exp());
        for i in 0..dim as usize {
            let expected = alpha * update[i] + (1.0 - alpha) * hv[node][i];
            worst = worst.max((expected - out.double_value(&[node as i64, i as i64])).abs());
        }
    }
    assert!(worst < 1e-5, "max |Δ| = {worst}");
}
