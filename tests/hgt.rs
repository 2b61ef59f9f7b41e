//! HGT's layer against an edge-by-edge recomputation from its own weights (per-type
//! projections, per-relation attention and message matrices, priors, softmax over each node's
//! incoming edges, gated skip), on real MSGraphs with every relation; `hgt-lang` computes the
//! same layer from generated tensors, and generates parameters for relations it never trained
//! on from their descriptions.

use crate::common::zoo;

use mmsr_bench::graph::{EdgeLists, GraphBatch, GraphLayout, SparseGraphBatch};
use mmsr_bench::model::graph::hgt::{HgtConfig, HgtLayer};
use mmsr_bench::model::graph::hgt_lang::{DescriptionEncodings, HgtLangConfig, HgtLangLayer};
use mmsr_bench::model::graph::{GraphCommon, GraphLayer};
use std::collections::HashMap;

use tch::nn::OptimizerConfig;
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
    let _rng = crate::common::torch_rng();
    let data = zoo::random_dataset(3);
    let bundles = data.codes.as_ref().unwrap().item_bundles(data.num_items());
    let graphs = mmsr_bench::graph::GraphSet::build(&data.splits.test, Some(&bundles));
    let graph = GraphBatch::Sparse(SparseGraphBatch::assemble(
        &graphs,
        &[0, 1, 2, 3],
        EdgeLists::All,
        Device::Cpu,
    ));
    let GraphBatch::Sparse(batch) = &graph else {
        unreachable!()
    };
    let (dim, heads) = (8i64, 2i64);
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
    let worst = recomputation_error(batch, &h, &out, &vars, heads);
    assert!(worst < 1e-5, "max |Δ| = {worst}");
}

/// The largest |Δ| between a layer's output `out` and the edge-by-edge recomputation from the
/// tensors `vars` (by hgt's names).
fn recomputation_error(
    batch: &SparseGraphBatch,
    h: &Tensor,
    out: &Tensor,
    vars: &HashMap<String, Tensor>,
    heads: i64,
) -> f64 {
    let (t, dim) = (batch.num_nodes, h.size()[1]);
    let d = (dim / heads) as usize;

    let types: Vec<i64> = Vec::try_from(&batch.types).unwrap();
    let rows: Vec<i64> = Vec::try_from(&batch.all_edges().rows).unwrap();
    let cols: Vec<i64> = Vec::try_from(&batch.all_edges().cols).unwrap();
    let rels: Vec<i64> = Vec::try_from(&batch.all_edges().relations).unwrap();
    assert!(
        (2..=10).all(|r| rels.contains(&r)),
        "every relation occurs: {rels:?}"
    );
    let hv = matrix(h);
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
    worst
}

fn test_batch(samples: &[usize], data: &mmsr_bench::dataset::PreparedDataset) -> GraphBatch {
    let bundles = data.codes.as_ref().unwrap().item_bundles(data.num_items());
    let graphs = mmsr_bench::graph::GraphSet::build(&data.splits.test, Some(&bundles));
    GraphBatch::Sparse(SparseGraphBatch::assemble(
        &graphs,
        samples,
        EdgeLists::All,
        Device::Cpu,
    ))
}

/// Random stand-ins for the sentence encodings (the layer's maths does not depend on them).
fn random_encodings(seed: i64) -> DescriptionEncodings {
    tch::manual_seed(seed);
    let e = mmsr_bench::text::minilm::DIM as i64;
    let values = |rows: i64| {
        Vec::<f32>::try_from(Tensor::randn([rows, e], (Kind::Float, Device::Cpu)).view([-1]))
            .unwrap()
    };
    DescriptionEncodings {
        types: values(4),
        relations: values(11),
    }
}

#[test]
fn hgt_lang_is_hgt_on_generated_tensors() {
    let _rng = crate::common::torch_rng();
    let data = zoo::random_dataset(3);
    let graph = test_batch(&[0, 1, 2, 3], &data);
    let GraphBatch::Sparse(batch) = &graph else {
        unreachable!()
    };
    let (dim, heads) = (8i64, 2i64);
    let common = GraphCommon {
        layout: GraphLayout::Sparse,
        dim,
        ..GraphCommon::default()
    };
    let encodings = random_encodings(5);
    let vs = nn::VarStore::new(Device::Cpu);
    let config = HgtLangConfig {
        heads,
        rank: 3,
        hidden: 16,
        ..HgtLangConfig::default()
    };
    let layer = HgtLangLayer::with_encodings(&vs.root(), &common, &config, &encodings);
    let h = Tensor::randn([batch.num_nodes, dim], (Kind::Float, Device::Cpu));
    let out = tch::no_grad(|| layer.forward(&h, &graph, false));
    let generated = tch::no_grad(|| layer.generate());
    let vars: HashMap<String, Tensor> = generated
        .named()
        .into_iter()
        .map(|(name, t)| (name.to_string(), t.shallow_clone()))
        .collect();
    assert_eq!(
        vars["w_attention"].size(),
        [11, heads, dim / heads, dim / heads]
    );
    assert_eq!(vars["w_query"].size(), [4, dim, dim]);
    let worst = recomputation_error(batch, &h, &out, &vars, heads);
    assert!(worst < 1e-5, "max |Δ| = {worst}");
}

/// Trained on batches without text codes: `hgt`'s text-relation matrices receive no gradient
/// (they stay at their initial values), `hgt-lang`'s are regenerated from their descriptions by
/// the trained hypernetwork; and a relation's parameters follow its description.
#[test]
fn hgt_lang_moves_relations_it_never_saw_and_hgt_does_not() {
    let _rng = crate::common::torch_rng();
    let mut data = zoo::random_dataset(3);
    data.codes.as_mut().unwrap().text = None;
    let graph = test_batch(&[0, 1, 2, 3, 4, 5], &data);
    let GraphBatch::Sparse(batch) = &graph else {
        unreachable!()
    };
    let rels: Vec<i64> = Vec::try_from(&batch.all_edges().relations).unwrap();
    assert!(
        rels.iter().all(|r| !(7..=10).contains(r)),
        "no text relation"
    );
    let (dim, heads) = (8i64, 2i64);
    let common = GraphCommon {
        layout: GraphLayout::Sparse,
        dim,
        ..GraphCommon::default()
    };
    let h = Tensor::randn([batch.num_nodes, dim], (Kind::Float, Device::Cpu));
    let step = |vs: &nn::VarStore, forward: &dyn Fn() -> Tensor| {
        let mut opt = nn::Adam::default().build(vs, 0.05).unwrap();
        opt.backward_step(&forward().square().mean(Kind::Float));
    };
    let text_relations = Tensor::from_slice(&[7i64, 8, 9, 10]);

    let vs = nn::VarStore::new(Device::Cpu);
    let hgt = HgtLayer::new(
        &vs.root(),
        &common,
        &HgtConfig {
            heads,
            attention_dropout: 0.0,
        },
        true,
    );
    let before = vs.variables()["w_attention"]
        .index_select(0, &text_relations)
        .copy();
    step(&vs, &|| hgt.forward(&h, &graph, true));
    let after = vs.variables()["w_attention"].index_select(0, &text_relations);
    assert_eq!(zoo::max_abs_diff(&before, &after), 0.0);

    let vs = nn::VarStore::new(Device::Cpu);
    let config = HgtLangConfig {
        heads,
        rank: 3,
        hidden: 16,
        ..HgtLangConfig::default()
    };
    let encodings = random_encodings(6);
    let lang = HgtLangLayer::with_encodings(&vs.root(), &common, &config, &encodings);
    let generated = |layer: &HgtLangLayer| {
        tch::no_grad(|| {
            layer
                .generate()
                .w_attention
                .index_select(0, &text_relations)
        })
    };
    let before = generated(&lang);
    step(&vs, &|| lang.forward(&h, &graph, true));
    let moved = zoo::max_abs_diff(&before, &generated(&lang));
    assert!(moved > 1e-4, "hgt-lang's unseen relations moved by {moved}");

    // Relations 7 and 8 given one description get one set of parameters.
    let mut same = encodings.clone();
    let e = mmsr_bench::text::minilm::DIM;
    let row7 = same.relations[7 * e..8 * e].to_vec();
    same.relations[8 * e..9 * e].copy_from_slice(&row7);
    let vs = nn::VarStore::new(Device::Cpu);
    let layer = HgtLangLayer::with_encodings(&vs.root(), &common, &config, &same);
    let p = tch::no_grad(|| layer.generate());
    // (Equal up to rounding: the batched products differ in the last bits between rows.)
    assert!(zoo::max_abs_diff(&p.w_attention.get(7), &p.w_attention.get(8)) < 1e-6);
    assert!(zoo::max_abs_diff(&p.w_attention.get(7), &p.w_attention.get(9)) > 1e-4);
}
