//! HAN-GNN (compat) against the official PyTorch code, number by number, on the golden fixture
//! `../shared/data/mmsr-parity` (one batch of 16 real Beauty samples through the official
//! `VLGraph` at commit 320d2dc, eval mode, float32 CPU): our graph builder against the official
//! collated graph tensors, then the official initial weights loaded into `han-gnn` and its
//! sequence representation, scores, loss and every gradient compared, in both layouts. Also the
//! builder against the official `Data` on five toy samples. Tolerances are the fixture README's.

use crate::common;

use std::collections::HashMap;

use mmsr_bench::config::ModelSpec;
use mmsr_bench::dataset::{InteractionDataset, PreparedDataset, Provenance, SplitConfig};
use mmsr_bench::graph::{
    build_graph, DenseGraphBatch, EdgeLists, GraphBatch, GraphSet, SparseGraphBatch,
};
use mmsr_bench::modality::codes::{CodeBook, CodeConfig, ModalityCodes};
use mmsr_bench::modality::ItemSideInfo;
use mmsr_bench::model::graph::han_gnn::official::{load_official, to_official};
use mmsr_bench::model::graph::han_gnn::HanLayer;
use mmsr_bench::model::graph::{GraphModelConfig, GraphRecommender};
use mmsr_bench::model::{self, Batch, BatchInput, Model, ModelContext, Recommender};
use serde_json::Value;
use tch::{nn, Device, Kind, Tensor};

fn fixture(name: &str) -> std::path::PathBuf {
    common::shared_data(&format!("mmsr-parity/{name}"))
}

fn tensors(name: &str) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(fixture(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .into_iter()
        .collect()
}

struct RawSample {
    seq: Vec<u32>,
    bundles_1: Vec<Vec<u32>>,
    bundles_2: Vec<Vec<u32>>,
    target: u32,
}

fn samples(json_file: &str) -> Vec<RawSample> {
    let text = std::fs::read_to_string(fixture(json_file)).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let list = |v: &Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    json["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| RawSample {
            seq: list(&s["seq"]),
            bundles_1: s["bundles_1"]
                .as_array()
                .unwrap()
                .iter()
                .map(list)
                .collect(),
            bundles_2: s["bundles_2"]
                .as_array()
                .unwrap()
                .iter()
                .map(list)
                .collect(),
            target: s["target"].as_u64().unwrap() as u32,
        })
        .collect()
}

/// Our graphs of the raw samples: list [1] in the builder's first code group (node type 2) and
/// list [2] in the second, as the official loader reads them.
fn our_graphs(raw: &[RawSample]) -> GraphSet {
    GraphSet::build_with(raw.len(), |i, scratch| {
        let s = &raw[i];
        let first: Vec<&[u32]> = s.bundles_1.iter().map(Vec::as_slice).collect();
        let second: Vec<&[u32]> = s.bundles_2.iter().map(Vec::as_slice).collect();
        build_graph(&s.seq, &first, &second, scratch)
    })
}

fn int_rows(t: &Tensor) -> Vec<Vec<i64>> {
    let (rows, cols) = t.size2().unwrap();
    let flat = Vec::<i64>::try_from(t.to_kind(Kind::Int64).contiguous().view([-1])).unwrap();
    (0..rows as usize)
        .map(|r| flat[r * cols as usize..(r + 1) * cols as usize].to_vec())
        .collect()
}

/// Every official graph tensor against our builder, sample by sample (official N is split-wide;
/// ours is per graph, so the official rows and columns beyond our nodes must be padding).
fn check_graphs(raw: &[RawSample], official: &HashMap<String, Tensor>) {
    let set = our_graphs(raw);
    let n_official = official["nodes"].size()[1] as usize;
    for (b, sample) in raw.iter().enumerate() {
        let g = set.graph(b);
        let n = g.num_nodes();
        let b64 = b as i64;
        let nodes = &int_rows(&official["nodes"].get(b64).unsqueeze(0))[0];
        let types = &int_rows(&official["node_type_mask"].get(b64).unsqueeze(0))[0];
        let ours_nodes: Vec<i64> = g.nodes.iter().map(|&x| i64::from(x)).collect();
        assert_eq!(&nodes[..n], &ours_nodes[..], "sample {b}: nodes");
        assert!(
            nodes[n..].iter().all(|&x| x == 0),
            "sample {b}: padding nodes"
        );
        let ours_types: Vec<i64> = g.types.iter().map(|&x| i64::from(x)).collect();
        assert_eq!(&types[..n], &ours_types[..], "sample {b}: types");
        assert!(types[n..].iter().all(|&x| x == 0));

        let adj = int_rows(&official["adj"].get(b64));
        let mut ours_adj = vec![vec![0i64; n_official]; n_official];
        for e in 0..g.edge_rows.len() {
            ours_adj[g.edge_rows[e] as usize][g.edge_cols[e] as usize] =
                i64::from(g.edge_relations[e]);
        }
        assert_eq!(adj, ours_adj, "sample {b}: relation matrix");

        let pos = int_rows(&official["node_pos_matrix"].get(b64));
        let mut ours_pos = vec![vec![0i64; n_official]; n_official];
        for q in 0..g.position_nodes.len() {
            ours_pos[g.position_nodes[q] as usize][g.position_indices[q] as usize] = 1;
        }
        assert_eq!(pos, ours_pos, "sample {b}: node positions");

        let m = sample.seq.len();
        let alias = &int_rows(&official["alias_inputs"].get(b64).unsqueeze(0))[0];
        let ours_alias: Vec<i64> = g.alias.iter().map(|&x| i64::from(x)).collect();
        assert_eq!(&alias[..m], &ours_alias[..], "sample {b}: alias");
        let mask = &int_rows(&official["inputs_mask"].get(b64).unsqueeze(0))[0];
        assert_eq!(mask.iter().sum::<i64>(), m as i64, "sample {b}: length");
        assert_eq!(
            official["targets"].int64_value(&[b64]),
            i64::from(sample.target)
        );
    }
}

#[test]
fn graph_builder_matches_the_official_toy_samples() {
    let _rng = crate::common::torch_rng();
    check_graphs(
        &samples("sample_graphs.json"),
        &tensors("sample_graphs.safetensors"),
    );
}

#[test]
fn graph_builder_matches_the_official_beauty_batch() {
    let _rng = crate::common::torch_rng();
    check_graphs(&samples("batch.json"), &tensors("batch.safetensors"));
}

/// A dataset shell with Beauty's id layout (12,101 items, 30 + 30 codes): what `han-gnn` needs
/// to size its tables. Its interactions are never read.
fn beauty_layout() -> PreparedDataset {
    let items = 12_101usize;
    let interactions = InteractionDataset {
        user_keys: vec!["u".into()],
        item_keys: (1..=items).map(|i| i.to_string()).collect(),
        sequences: vec![vec![1, 2, 3, 4, 5]],
    };
    let provenance = Provenance {
        source: "mmsr-parity id layout".into(),
        k_core: None,
        min_rating: None,
    };
    let side = ItemSideInfo {
        titles: vec![None; items],
        ..ItemSideInfo::default()
    };
    let mut data = PreparedDataset::new(
        "parity",
        provenance,
        interactions,
        SplitConfig::default(),
        side,
    );
    let book = || CodeBook {
        num_codes: 30,
        centres: Vec::new(),
        centre_dim: 0,
        links: vec![Vec::new(); items + 1],
        reduced: Vec::new(),
        reduced_dim: 0,
    };
    data.codes = Some(ModalityCodes {
        config: CodeConfig::default(),
        image: Some(book()),
        text: Some(book()),
    });
    data
}

fn assert_close(name: &str, ours: &Tensor, official: &Tensor, tolerance: f64) {
    assert_eq!(ours.size(), official.size(), "{name}: shape");
    let diff = (ours - official).abs().max().double_value(&[]);
    // Printed for the record: cargo test --release --test parity -- --nocapture
    eprintln!("{name}: max |Δ| = {diff:e} (tolerance {tolerance:e})");
    assert!(
        diff <= tolerance,
        "{name}: max |Δ| = {diff:e} > {tolerance:e}"
    );
}

/// Loads the official weights into `han-gnn` (compat) in `layout`, runs the fixture's batch in
/// eval mode and compares outputs and gradients.
fn check_model(layout: &str) {
    let raw = samples("batch.json");
    let data = beauty_layout();
    let mut spec = ModelSpec::named("han-gnn");
    spec.params.insert("layout".into(), Value::from(layout));
    let resolved = model::resolve(&spec).unwrap();
    let config: GraphModelConfig<HanLayer> =
        serde_json::from_value(resolved.params.clone()).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let context = ModelContext {
        dataset: &data,
        device: Device::Cpu,
    };
    let han = GraphRecommender::<HanLayer>::new(&vs.root(), &config, &context).unwrap();
    let weights = tensors("weights.safetensors");
    load_official(&vs, &weights).unwrap();
    // The 13 parameters the official forward uses, minus the gate's last bias (it cancels in
    // the gate's softmax; see `Gate`), with the four a_r as one table.
    assert_eq!(
        vs.variables().len(),
        9,
        "exactly the parameters the official forward uses"
    );

    let set = our_graphs(&raw);
    let indices: Vec<usize> = (0..raw.len()).collect();
    let graph = match layout {
        "dense" => GraphBatch::Dense(DenseGraphBatch::assemble(&set, None, &indices, Device::Cpu)),
        _ => GraphBatch::Sparse(SparseGraphBatch::assemble(
            &set,
            &indices,
            EdgeLists::Phases,
            Device::Cpu,
        )),
    };
    let targets: Vec<i64> = raw.iter().map(|s| i64::from(s.target) - 1).collect();
    let batch = Batch {
        size: raw.len(),
        targets: Tensor::from_slice(&targets),
        input: BatchInput::Graph(graph),
    };
    let outputs = tensors("outputs.safetensors");
    let sequence = han.user_representations(&batch, false);
    assert_close(
        &format!("{layout}: seq_hidden"),
        &sequence,
        &outputs["seq_hidden"],
        1e-6,
    );
    let scores = han.scores(&batch, false);
    assert_close(
        &format!("{layout}: scores"),
        &scores,
        &outputs["scores"],
        1e-6,
    );
    let loss = scores.cross_entropy_for_logits(&batch.targets);
    assert_close(&format!("{layout}: loss"), &loss, &outputs["loss"], 1e-5);

    loss.backward();
    let ours = to_official(&vs, |v| v.grad());
    let official = tensors("grads.safetensors");
    let cancelled = "local_agg.projection.2.bias";
    assert_eq!(
        ours.len() + 1,
        official.len(),
        "the same parameters get gradients"
    );
    for (name, reference) in &official {
        if name == cancelled {
            // Mathematically zero; the official float32 value is rounding noise.
            assert!(reference.abs().max().double_value(&[]) < 1e-10, "{name}");
            continue;
        }
        let g = &ours[name];
        let scale = reference.abs().max().double_value(&[]);
        assert_close(
            &format!("{layout}: grad {name}"),
            g,
            reference,
            1e-5 * scale + 1e-10,
        );
    }
    // The structural zeros of the fixture README §2.4, exactly.
    let zero = |t: Tensor, what: &str| {
        assert_eq!(
            t.abs().max().double_value(&[]),
            0.0,
            "{layout}: {what} must be exactly zero"
        )
    };
    zero(
        ours["local_agg.a_params.1"].shallow_clone(),
        "a_2 (relation 2)",
    );
    zero(
        ours["local_agg.a_params.3"].shallow_clone(),
        "a_4 (relation 4)",
    );
    zero(ours["local_agg.W_Q"].get(0), "W_Q[0]");
    zero(
        ours["node_type_embedding.weight"].get(0),
        "type embedding of padding",
    );
    zero(
        ours["pos_embedding.weight"].narrow(0, 50, 100),
        "position rows 50..149",
    );
    zero(ours["embedding.weight"].get(0), "embedding row 0");
    let code_rows = |start: i64| {
        ours["embedding.weight"]
            .narrow(0, start, 30)
            .abs()
            .sum_dim_intlist(1, false, Kind::Float)
            .gt(0.0)
            .sum(Kind::Int64)
            .int64_value(&[])
    };
    assert_eq!(
        (code_rows(12_102), code_rows(12_132)),
        (20, 20),
        "{layout}: code rows with gradient"
    );
}

#[test]
fn han_gnn_compat_matches_the_official_model_dense() {
    let _rng = crate::common::torch_rng();
    check_model("dense");
}

#[test]
fn han_gnn_compat_matches_the_official_model_sparse() {
    let _rng = crate::common::torch_rng();
    check_model("sparse");
}
