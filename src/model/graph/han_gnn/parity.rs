//! HAN-GNN (compat) against the official PyTorch code on the golden fixture
//! (`../shared/data/mmsr-parity`: one batch of 16 real Beauty samples through the official
//! `VLGraph`, eval mode, float32 CPU): the official initial weights loaded, then the sequence
//! representation, scores, loss and every gradient compared, and the structural zeros of the
//! fixture's README. A library function so that `mmsr-bench parity` runs it on any device (the
//! GPU check) and the test suite on the CPU.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;
use tch::{nn, Device, Kind, Tensor};

use super::official::{load_official, to_official};
use super::HanLayer;
use crate::config::ModelSpec;
use crate::dataset::{InteractionDataset, PreparedDataset, Provenance, SplitConfig};
use crate::graph::{
    build_graph, DenseGraphBatch, EdgeLists, GraphBatch, GraphSet, SparseGraphBatch,
};
use crate::modality::codes::{CodeBook, CodeConfig, ModalityCodes};
use crate::modality::ItemSideInfo;
use crate::model::graph::{GraphModelConfig, GraphRecommender};
use crate::model::{self, Batch, BatchInput, Model, ModelContext, Recommender};

/// One sample as the fixture's JSON holds it: the official loader's inputs.
pub struct RawSample {
    pub seq: Vec<u32>,
    pub bundles_1: Vec<Vec<u32>>,
    pub bundles_2: Vec<Vec<u32>>,
    pub target: u32,
}

/// The samples of a fixture JSON file (`batch.json`, `sample_graphs.json`).
pub fn read_samples(path: &Path) -> Result<Vec<RawSample>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let json: Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let ids = |v: &Value| -> Option<Vec<u32>> {
        v.as_array()?
            .iter()
            .map(|x| u32::try_from(x.as_u64()?).ok())
            .collect()
    };
    let lists = |v: &Value| -> Option<Vec<Vec<u32>>> { v.as_array()?.iter().map(ids).collect() };
    json["samples"]
        .as_array()
        .context("no \"samples\" list")?
        .iter()
        .map(|s| {
            Some(RawSample {
                seq: ids(&s["seq"])?,
                bundles_1: lists(&s["bundles_1"])?,
                bundles_2: lists(&s["bundles_2"])?,
                target: u32::try_from(s["target"].as_u64()?).ok()?,
            })
        })
        .collect::<Option<_>>()
        .with_context(|| {
            format!(
                "{}: a sample lacks seq, bundles_1, bundles_2 or target",
                path.display()
            )
        })
}

/// The tensors of a fixture `.safetensors` file, by name.
pub fn read_tensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    Ok(Tensor::read_safetensors(path)
        .with_context(|| format!("reading {}", path.display()))?
        .into_iter()
        .collect())
}

/// Our graphs of the raw samples: list [1] in the builder's first code group (node type 2) and
/// list [2] in the second, as the official loader reads them.
pub fn our_graphs(raw: &[RawSample]) -> GraphSet {
    GraphSet::build_with(raw.len(), |i, scratch| {
        let s = &raw[i];
        let first: Vec<&[u32]> = s.bundles_1.iter().map(Vec::as_slice).collect();
        let second: Vec<&[u32]> = s.bundles_2.iter().map(Vec::as_slice).collect();
        build_graph(&s.seq, &first, &second, scratch)
    })
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

/// One compared quantity: the largest absolute difference and the tolerance it must meet.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub layout: String,
    pub name: String,
    pub max_abs_diff: f64,
    pub tolerance: f64,
}

impl Comparison {
    pub fn passed(&self) -> bool {
        self.max_abs_diff <= self.tolerance
    }
}

/// How much looser than the CPU tolerances (1e-6 outputs, 1e-5 loss, 1e-5 relative
/// gradients, the fixture README's) a device's comparison is: 1 on the CPU; 100 on CUDA,
/// whose float32 kernels sum in other orders and whose index additions are atomic (not
/// bit-exact from run to run). Structural zeros must be exactly zero everywhere.
pub fn tolerance_scale(device: Device) -> f64 {
    match device {
        Device::Cpu => 1.0,
        _ => 100.0,
    }
}

/// Loads the official weights into `han-gnn` (compat, `layout` "dense" or "sparse") on
/// `device`, runs the fixture's batch in eval mode and compares outputs and gradients.
pub fn compare(fixture: &Path, layout: &str, device: Device) -> Result<Vec<Comparison>> {
    let scale = tolerance_scale(device);
    let raw = read_samples(&fixture.join("batch.json"))?;
    let data = beauty_layout();
    let mut spec = ModelSpec::named("han-gnn");
    spec.params.insert("layout".into(), Value::from(layout));
    let resolved = model::resolve(&spec)?;
    let config: GraphModelConfig<HanLayer> = serde_json::from_value(resolved.params.clone())?;
    let vs = nn::VarStore::new(device);
    let context = ModelContext {
        dataset: &data,
        device,
    };
    let han = GraphRecommender::<HanLayer>::new(&vs.root(), &config, &context)
        .map_err(anyhow::Error::msg)?;
    load_official(&vs, &read_tensors(&fixture.join("weights.safetensors"))?)?;
    // The 13 parameters the official forward uses, minus the gate's last bias (it cancels in
    // the gate's softmax; see `Gate`), with the four a_r as one table.
    anyhow::ensure!(
        vs.variables().len() == 9,
        "han-gnn has {} variables; the official forward uses 9 of ours",
        vs.variables().len()
    );
    let set = our_graphs(&raw);
    let indices: Vec<usize> = (0..raw.len()).collect();
    let graph = match layout {
        "dense" => GraphBatch::Dense(DenseGraphBatch::assemble(&set, None, &indices, device)),
        _ => GraphBatch::Sparse(SparseGraphBatch::assemble(
            &set,
            &indices,
            EdgeLists::Phases,
            device,
        )),
    };
    let targets: Vec<i64> = raw.iter().map(|s| i64::from(s.target) - 1).collect();
    let batch = Batch {
        size: raw.len(),
        targets: Tensor::from_slice(&targets).to_device(device),
        input: BatchInput::Graph(graph),
    };
    let mut out = Vec::new();
    let mut compare = |name: &str, ours: &Tensor, official: &Tensor, tolerance: f64| {
        let ours = ours.to_device(Device::Cpu);
        let diff = if ours.size() == official.size() {
            (&ours - official).abs().max().double_value(&[])
        } else {
            f64::INFINITY
        };
        out.push(Comparison {
            layout: layout.to_string(),
            name: name.to_string(),
            max_abs_diff: diff,
            tolerance,
        });
    };
    let outputs = read_tensors(&fixture.join("outputs.safetensors"))?;
    let sequence = han.user_representations(&batch, false);
    compare(
        "seq_hidden",
        &sequence,
        &outputs["seq_hidden"],
        1e-6 * scale,
    );
    let scores = han.scores(&batch, false);
    compare("scores", &scores, &outputs["scores"], 1e-6 * scale);
    let loss = scores.cross_entropy_for_logits(&batch.targets);
    compare("loss", &loss, &outputs["loss"], 1e-5 * scale);

    loss.backward();
    let ours = to_official(&vs, |v| v.grad());
    let official = read_tensors(&fixture.join("grads.safetensors"))?;
    // Mathematically zero (it cancels in the gate's softmax); the official float32 value is
    // rounding noise, and we have no such parameter.
    let cancelled = "local_agg.projection.2.bias";
    let mut names: Vec<&String> = official.keys().collect();
    names.sort();
    for name in names {
        let reference = &official[name];
        if name == cancelled {
            compare(
                &format!("grad {name} (official rounding noise)"),
                &reference.zeros_like(),
                reference,
                1e-10,
            );
            continue;
        }
        let g = ours
            .get(name)
            .with_context(|| format!("no gradient of ours maps to the official {name}"))?;
        let magnitude = reference.abs().max().double_value(&[]);
        compare(
            &format!("grad {name}"),
            g,
            reference,
            (1e-5 * magnitude + 1e-10) * scale,
        );
    }
    // The structural zeros of the fixture README §2.4, exactly.
    let mut zero = |what: &str, t: Tensor| {
        let t = t.to_device(Device::Cpu);
        compare(&format!("zero: {what}"), &t, &t.zeros_like(), 0.0);
    };
    zero(
        "a_2 (relation 2)",
        ours["local_agg.a_params.1"].shallow_clone(),
    );
    zero(
        "a_4 (relation 4)",
        ours["local_agg.a_params.3"].shallow_clone(),
    );
    zero("W_Q[0]", ours["local_agg.W_Q"].get(0));
    zero(
        "type embedding of padding",
        ours["node_type_embedding.weight"].get(0),
    );
    zero(
        "position rows 50..149",
        ours["pos_embedding.weight"].narrow(0, 50, 100),
    );
    zero("embedding row 0", ours["embedding.weight"].get(0));
    let code_rows = |start: i64| {
        ours["embedding.weight"]
            .narrow(0, start, 30)
            .abs()
            .sum_dim_intlist(1, false, Kind::Float)
            .gt(0.0)
            .sum(Kind::Int64)
            .int64_value(&[])
    };
    // 20 of each modality's 30 code rows receive a gradient from this batch.
    let rows = (code_rows(12_102), code_rows(12_132));
    out.push(Comparison {
        layout: layout.to_string(),
        name: format!("code rows with gradient {rows:?} (expected (20, 20))"),
        max_abs_diff: if rows == (20, 20) { 0.0 } else { f64::INFINITY },
        tolerance: 0.0,
    });
    Ok(out)
}
