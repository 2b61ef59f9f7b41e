//! Building registry models by name on small random data, for the model tests.
#![allow(dead_code)]

use mmsr_bench::config::ModelSpec;
use mmsr_bench::dataset::{
    InteractionDataset, PreparedDataset, Provenance, SampleSet, SplitConfig,
};
use mmsr_bench::graph::{GraphSet, StructureSet};
use mmsr_bench::modality::codes::{CodeBook, CodeConfig, ModalityCodes};
use mmsr_bench::modality::ItemSideInfo;
use mmsr_bench::model::{self, BuiltModel, InputKind, ModelContext, ResolvedModel};
use mmsr_bench::train::{BatchSource, SplitInputs};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{nn, Device, Tensor};

/// Random histories over 40 items and random code links (some items miss a modality).
pub fn random_dataset(seed: u64) -> PreparedDataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let items = 40usize;
    let sequences: Vec<Vec<u32>> = (0..60)
        .map(|_| {
            let len = rng.random_range(5..14);
            (0..len)
                .map(|_| rng.random_range(1..=items as u32))
                .collect()
        })
        .collect();
    let interactions = InteractionDataset {
        user_keys: (0..60).map(|u| format!("u{u}")).collect(),
        item_keys: (1..=items).map(|i| format!("i{i}")).collect(),
        sequences,
    };
    let provenance = Provenance {
        source: "random".into(),
        k_core: None,
        min_rating: None,
    };
    let side = ItemSideInfo {
        titles: vec![None; items],
        ..ItemSideInfo::default()
    };
    let mut data = PreparedDataset::new(
        "random",
        provenance,
        interactions,
        SplitConfig::default(),
        side,
    );
    let mut book = |codes: u32, missing: f64| CodeBook {
        num_codes: codes as usize,
        centres: Vec::new(),
        centre_dim: 0,
        links: (0..=items)
            .map(|i| {
                if i == 0 || rng.random_bool(missing) {
                    vec![]
                } else {
                    let first = rng.random_range(0..codes);
                    vec![first, (first + 1 + rng.random_range(0..codes - 1)) % codes]
                }
            })
            .collect(),
        reduced: Vec::new(),
        reduced_dim: 0,
    };
    let mut image = book(7, 0.15);
    let mut text = book(5, 0.25);
    // Reduced item vectors for the fusion references, from their own stream (so the links and
    // every other model's inputs stay as they were).
    let mut vectors = ChaCha8Rng::seed_from_u64(seed ^ 0x7ec7_0125);
    for (book, dim) in [(&mut image, 6usize), (&mut text, 4)] {
        book.reduced_dim = dim;
        book.reduced = book
            .links
            .iter()
            .flat_map(|l| {
                let has = !l.is_empty();
                (0..dim)
                    .map(|_| {
                        if has {
                            vectors.random_range(0.0..1.0f32)
                        } else {
                            0.0
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
    }
    data.codes = Some(ModalityCodes {
        config: CodeConfig::default(),
        image: Some(image),
        text: Some(text),
    });
    data
}

/// A registry model built with `params` over its preset, in its own var store.
pub struct Built {
    pub resolved: ResolvedModel,
    pub vs: nn::VarStore,
    pub model: BuiltModel,
}

/// Builds `name` with `params` (a JSON object) from torch seed `seed`. The seed is
/// process-global and tests run in parallel, so seeding and initialisation hold
/// `common::torch_rng` (tests that draw afterwards hold it for their whole body).
pub fn build(name: &str, params: serde_json::Value, data: &PreparedDataset, seed: i64) -> Built {
    let _rng = crate::common::torch_rng();
    let mut spec = ModelSpec::named(name);
    spec.params = params.as_object().cloned().unwrap_or_default();
    let resolved = model::resolve(&spec).unwrap_or_else(|e| panic!("{name}: {e}"));
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let context = ModelContext {
        dataset: data,
        device: Device::Cpu,
    };
    let model = model::build(&resolved, &vs, &context).unwrap_or_else(|e| panic!("{name}: {e}"));
    Built {
        resolved,
        vs,
        model,
    }
}

/// The graphs (and structure, when asked) of `samples` for a model's input kind.
pub struct Inputs {
    pub graphs: GraphSet,
    pub structure: Option<StructureSet>,
}

pub fn inputs(data: &PreparedDataset, samples: &SampleSet, kind: InputKind) -> Option<Inputs> {
    let InputKind::Graph(input) = kind else {
        return None;
    };
    let bundles = input
        .codes
        .then(|| data.codes.as_ref().unwrap().item_bundles(data.num_items()));
    let graphs = GraphSet::build(samples, bundles.as_ref());
    let structure = input.structure.then(|| StructureSet::build(&graphs));
    Some(Inputs { graphs, structure })
}

pub fn source<'a>(
    samples: &'a SampleSet,
    inputs: Option<&'a Inputs>,
    kind: InputKind,
) -> BatchSource<'a> {
    BatchSource::new(
        samples,
        inputs.map(|i| SplitInputs {
            graphs: &i.graphs,
            structure: i.structure.as_ref(),
        }),
        kind,
        Device::Cpu,
    )
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// Every variable's gradient, sorted by name.
pub fn gradients(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut grads: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| (name, t.grad().copy()))
        .collect();
    grads.sort_by(|a, b| a.0.cmp(&b.0));
    grads
}

/// `params` with every dropout parameter the resolved model has set to `p`.
pub fn with_dropout(name: &str, params: serde_json::Value, p: f64) -> serde_json::Value {
    let mut spec = ModelSpec::named(name);
    spec.params = params.as_object().cloned().unwrap_or_default();
    let resolved = model::resolve(&spec).unwrap();
    let mut out = params.as_object().cloned().unwrap_or_default();
    for key in resolved.params.as_object().unwrap().keys() {
        if key.contains("dropout") {
            out.insert(key.clone(), serde_json::json!(p));
        }
    }
    serde_json::Value::Object(out)
}
