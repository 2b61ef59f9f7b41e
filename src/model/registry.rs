//! The models the harness can run, by name. An entry is a model type plus a preset: named
//! variants and ablations (`han-gnn-fixed`, `han-gnn-no-homo`, ...) fix some parameters of their
//! model type instead of copying it. Entries resolve and validate parameters and report their
//! input kind without building any weights, so a matrix is checked (and stored results are found)
//! before anything is built.

use serde_json::{Map, Value};
use tch::nn;

use super::fusion::{SasRecEarly, SasRecLate};
use super::graph::gat::GatLayer;
use super::graph::gcn::GcnLayer;
use super::graph::graphormer::GraphormerLayer;
use super::graph::graphsage::SageLayer;
use super::graph::han_gnn::HanLayer;
use super::graph::hgt::HgtLayer;
use super::graph::hgt_lang::HgtLangLayer;
use super::graph::kv_attention::KvAttentionLayer;
use super::graph::rgat::RgatLayer;
use super::graph::GraphRecommender;
use super::pop::Popularity;
use super::sequence::gru4rec::Gru4Rec;
use super::sequence::sasrec::SasRec;
use super::{count_parameters, InputKind, Model, ModelContext, ModelError, Recommender};
use crate::config::ModelSpec;

type BuildFn = fn(&nn::Path, &Value, &ModelContext) -> Result<Box<dyn Recommender>, String>;

/// A model type's entry points, monomorphised from its [`Model`] impl.
pub struct Family {
    /// The model type's own name (presets share it), e.g. `han-gnn` for `han-gnn-fixed`.
    pub name: &'static str,
    /// The model type's implementation version ([`Model::VERSION`]).
    pub version: u32,
    /// [`Model::OPTIONAL_PARAMETERS`].
    pub optional_parameters: &'static [&'static str],
    resolve: fn(&Map<String, Value>) -> Result<Value, String>,
    input_kind: fn(&Value) -> InputKind,
    build: BuildFn,
    type_name: fn() -> &'static str,
}

impl Family {
    /// The family of models this type belongs to, from the folder its file is in (`graph/`,
    /// `sequence/`, `fusion.rs`, `pop.rs`): the folder tree and the model tables agree by
    /// construction.
    pub fn group(&self) -> &'static str {
        let path = (self.type_name)();
        // The outer type decides: GraphRecommender<...> is a graph model whatever its layer.
        let outer = path.split('<').next().unwrap_or(path);
        [
            ("::model::graph::", "graph"),
            ("::model::sequence::", "sequence"),
            ("::model::fusion::", "fusion"),
            ("::model::pop::", "popularity"),
        ]
        .iter()
        .find(|(module, _)| outer.contains(module))
        .map_or("other", |(_, group)| group)
    }
}

const fn family<M: Model>(name: &'static str) -> Family {
    Family {
        name,
        version: M::VERSION,
        optional_parameters: M::OPTIONAL_PARAMETERS,
        resolve: resolve_config::<M>,
        input_kind: input_kind_of::<M>,
        build: build_model::<M>,
        type_name: std::any::type_name::<M>,
    }
}

/// The parameter names of a config type, from its defaults.
pub fn parameter_names<C: serde::Serialize + Default>() -> Vec<String> {
    match serde_json::to_value(C::default()) {
        Ok(Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

fn resolve_config<M: Model>(params: &Map<String, Value>) -> Result<Value, String> {
    let mut known = parameter_names::<M::Config>();
    known.extend(M::OPTIONAL_PARAMETERS.iter().map(|name| name.to_string()));
    if let Some(unknown) = params.keys().find(|k| !known.contains(k)) {
        let listed = if known.is_empty() {
            "it has no parameters".to_string()
        } else {
            format!("its parameters are: {}", known.join(", "))
        };
        return Err(format!("has no parameter `{unknown}`; {listed}"));
    }
    let config: M::Config =
        serde_json::from_value(Value::Object(params.clone())).map_err(|e| e.to_string())?;
    M::validate(&config)?;
    serde_json::to_value(&config).map_err(|e| e.to_string())
}

fn parse<M: Model>(resolved: &Value) -> M::Config {
    serde_json::from_value(resolved.clone()).expect("resolved parameters parse")
}

fn input_kind_of<M: Model>(resolved: &Value) -> InputKind {
    M::input_kind(&parse::<M>(resolved))
}

fn build_model<M: Model>(
    path: &nn::Path,
    resolved: &Value,
    context: &ModelContext,
) -> Result<Box<dyn Recommender>, String> {
    Ok(Box::new(M::new(path, &parse::<M>(resolved), context)?))
}

pub struct ModelEntry {
    pub name: &'static str,
    pub summary: &'static str,
    pub family: Family,
    /// The parameters this entry fixes, as a JSON object (`{}` for a model type's own entry).
    pub preset: &'static str,
}

impl ModelEntry {
    pub fn preset(&self) -> Map<String, Value> {
        match serde_json::from_str(self.preset) {
            Ok(Value::Object(map)) => map,
            _ => panic!("preset of {} is not a JSON object", self.name),
        }
    }
}

const fn entry(
    name: &'static str,
    summary: &'static str,
    family: Family,
    preset: &'static str,
) -> ModelEntry {
    ModelEntry {
        name,
        summary,
        family,
        preset,
    }
}

const HAN: &str = "han-gnn";
type Graph<L> = GraphRecommender<L>;

/// Every model the harness can run.
pub const REGISTRY: &[ModelEntry] = &[
    entry("pop", "item popularity in the training interactions (non-personalised reference)", family::<Popularity>("pop"), "{}"),
    entry("han-gnn", "MMSR's HAN-GNN, compat mode: the official computation with its quirks (spec §4.3, §4.7)", family::<Graph<HanLayer>>(HAN), "{}"),
    entry("han-gnn-fixed", "HAN-GNN, fixed mode: separate W_K/W_V, a homo-first branch that uses phase 1 (spec §4.7)", family::<Graph<HanLayer>>(HAN), r#"{"mode": "fixed"}"#),
    entry("items-only", "HAN-GNN on the item sub-graph, no code nodes: the no-modality reference", family::<Graph<HanLayer>>(HAN), r#"{"codes": false}"#),
    entry("gcn", "GCN: symmetric-normalised binary adjacency with self-loops, ReLU (spec §5.2; compat: the official unnormalised sum)", family::<Graph<GcnLayer>>("gcn"), "{}"),
    entry("graphsage", "GraphSAGE: ReLU(W [h_i ‖ mean of neighbours]) (spec §5.2; compat: the official sum over A including i)", family::<Graph<SageLayer>>("graphsage"), "{}"),
    entry("gat", "GAT on the binary adjacency, LeakyReLU 0.2, masked softmax; one head by default (spec §5.2)", family::<Graph<GatLayer>>("gat"), "{}"),
    entry("rgat", "relational GAT of the official aggregator.py: per-relation attention vectors and amplifiers (spec §5.1)", family::<Graph<RgatLayer>>("rgat"), "{}"),
    entry("kv-attention", "type-aware key-query attention over all edges, official compat form K = V = Q (spec §5.1)", family::<Graph<KvAttentionLayer>>("kv-attention"), "{}"),
    entry("kv-attention-fixed", "kv-attention with its own W_K and W_V (spec §5.2)", family::<Graph<KvAttentionLayer>>("kv-attention"), r#"{"mode": "fixed"}"#),
    entry("graphormer", "Graphormer-style transformer over each graph's nodes: degree, shortest-path and relation encodings (spec §5.3)", family::<Graph<GraphormerLayer>>("graphormer"), "{}"),
    entry("hgt", "HGT (Hu et al. 2020): per-type Q/K/V/output, per-relation attention and message matrices and priors, gated skip; sparse", family::<Graph<HgtLayer>>("hgt"), "{}"),
    entry("hgt-lang", "HGT whose type and relation parameters are generated from one-line descriptions encoded by all-MiniLM-L6-v2 (the HiGPT idea); sparse", family::<Graph<HgtLangLayer>>("hgt-lang"), "{}"),
    // Sequence models on item ids (spec §5.4), same samples, loss and evaluator.
    entry("sasrec", "SASRec: causal self-attention over the item sequence, learned positions, 2 blocks, 2 heads (RecBole form)", family::<SasRec>("sasrec"), "{}"),
    entry("gru4rec", "GRU4Rec: one GRU layer over the item sequence (RecBole form)", family::<Gru4Rec>("gru4rec"), "{}"),
    // Fusion references (the styles graph fusion is argued against), on the same item vectors.
    entry("sasrec-early", "early fusion: per item, Linear([item ‖ image ‖ text]) into SASRec, scored against the fused items", family::<SasRecEarly>("sasrec-early"), "{}"),
    entry("sasrec-late", "late fusion: one SASRec per channel (items, image, text), the channels' scores summed", family::<SasRecLate>("sasrec-late"), "{}"),
    // HAN-GNN ablations (spec §4.6): one naming scheme, `han-gnn-<what changes>`.
    entry("han-gnn-no-homo", "ablation: without the homogeneous branch (phase-1 heterogeneous update only)", family::<Graph<HanLayer>>(HAN), r#"{"fusion": "hete"}"#),
    entry("han-gnn-no-hete", "ablation: without the heterogeneous branch (phase-1 homogeneous update only)", family::<Graph<HanLayer>>(HAN), r#"{"fusion": "homo"}"#),
    entry("han-gnn-hohe", "ablation: the homo-then-hetero update order alone (no gate)", family::<Graph<HanLayer>>(HAN), r#"{"fusion": "hohe"}"#),
    entry("han-gnn-heho", "ablation: the hetero-then-homo update order alone (no gate)", family::<Graph<HanLayer>>(HAN), r#"{"fusion": "heho"}"#),
    entry("han-gnn-concat", "ablation: concatenation instead of the gate (the official `cat` fusion of the two phase-1 updates)", family::<Graph<HanLayer>>(HAN), r#"{"fusion": "concat"}"#),
    entry("han-gnn-no-type", "ablation: without the node-type embedding", family::<Graph<HanLayer>>(HAN), r#"{"node_type_embedding": false}"#),
    entry("han-gnn-no-pos", "ablation: without the position embedding", family::<Graph<HanLayer>>(HAN), r#"{"position_embedding": false}"#),
    entry("han-gnn-invasive", "ablation: invasive fusion (phase 2 propagates the phase-1 updates instead of the original values)", family::<Graph<HanLayer>>(HAN), r#"{"invasive": true}"#),
];

pub fn model_names() -> Vec<String> {
    REGISTRY.iter().map(|e| e.name.to_string()).collect()
}

pub fn find(name: &str) -> Result<&'static ModelEntry, ModelError> {
    REGISTRY
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| ModelError::Unknown {
            name: name.to_string(),
            valid: model_names(),
        })
}

/// A model spec with every parameter resolved and checked; nothing built yet.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    pub entry: &'static ModelEntry,
    /// Every parameter, defaults filled in (stored in results and hashed into run ids).
    pub params: Value,
    pub kind: InputKind,
    /// The model type's implementation version.
    pub version: u32,
}

impl std::fmt::Debug for ModelEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Resolves a spec: the entry's preset, then the user's parameters (which may not contradict
/// the preset), then the model type's defaults and range checks.
pub fn resolve(spec: &ModelSpec) -> Result<ResolvedModel, ModelError> {
    let entry = find(&spec.name)?;
    let error = |message: String| ModelError::Params {
        model: entry.name.to_string(),
        message,
    };
    let mut params = entry.preset();
    for (key, value) in &spec.params {
        match params.get(key) {
            Some(fixed) if fixed != value => {
                return Err(error(format!(
                    "`{key}` is fixed to {fixed} by this preset of {}; set it on {} instead",
                    entry.family.name, entry.family.name
                )))
            }
            _ => {
                params.insert(key.clone(), value.clone());
            }
        }
    }
    let params = (entry.family.resolve)(&params).map_err(error)?;
    let kind = (entry.family.input_kind)(&params);
    Ok(ResolvedModel {
        entry,
        params,
        kind,
        version: entry.family.version,
    })
}

/// A model built in a var store the caller owns.
pub struct BuiltModel {
    pub model: Box<dyn Recommender>,
    pub num_parameters: usize,
}

/// Builds a resolved model under the root of `vs` (seed torch first for reproducible weights).
pub fn build(
    resolved: &ResolvedModel,
    vs: &nn::VarStore,
    context: &ModelContext,
) -> Result<BuiltModel, ModelError> {
    let model =
        (resolved.entry.family.build)(&vs.root(), &resolved.params, context).map_err(|reason| {
            ModelError::Unsupported {
                model: resolved.entry.name.to_string(),
                dataset: context.dataset.name.clone(),
                reason,
            }
        })?;
    Ok(BuiltModel {
        model,
        num_parameters: count_parameters(vs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_resolves_with_its_preset_and_names_are_unique() {
        let mut names = model_names();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len());
        for entry in REGISTRY {
            let resolved = resolve(&ModelSpec::named(entry.name)).unwrap();
            for (key, value) in entry.preset() {
                assert_eq!(resolved.params[&key], value, "{}: {key}", entry.name);
            }
        }
    }

    #[test]
    fn unknown_parameters_and_preset_conflicts_are_errors_naming_the_model() {
        let mut spec = ModelSpec::named("gcn");
        spec.params.insert("heads".into(), serde_json::json!(2));
        let e = resolve(&spec).unwrap_err().to_string();
        assert!(
            e.contains("\"gcn\"") && e.contains("no parameter `heads`"),
            "{e}"
        );
        assert!(e.contains("compat"), "lists the parameters: {e}");

        let mut spec = ModelSpec::named("han-gnn-fixed");
        spec.params
            .insert("mode".into(), serde_json::json!("compat"));
        let e = resolve(&spec).unwrap_err().to_string();
        assert!(
            e.contains("fixed to \"fixed\"") && e.contains("set it on han-gnn"),
            "{e}"
        );
        spec.params
            .insert("mode".into(), serde_json::json!("fixed"));
        resolve(&spec).unwrap();

        let mut spec = ModelSpec::named("han-gnn");
        spec.params.insert("dropout".into(), serde_json::json!(1.5));
        let e = resolve(&spec).unwrap_err().to_string();
        assert!(e.contains("dropout = 1.5") && e.contains("[0, 1)"), "{e}");
    }

    #[test]
    fn presets_change_the_input_kind_without_building() {
        let kind = |name: &str| resolve(&ModelSpec::named(name)).unwrap().kind;
        let InputKind::Graph(han) = kind("han-gnn") else {
            panic!()
        };
        let InputKind::Graph(items) = kind("items-only") else {
            panic!()
        };
        let InputKind::Graph(graphormer) = kind("graphormer") else {
            panic!()
        };
        assert!(han.codes && !items.codes);
        assert!(graphormer.structure && !han.structure);
        assert_eq!(graphormer.layout, crate::graph::GraphLayout::Dense);
        assert_eq!(kind("pop"), InputKind::None);
    }
}
