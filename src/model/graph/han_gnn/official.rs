//! The official PyTorch `VLGraph` state-dict names of HAN-GNN's parameters (spec §4.1), and
//! conversions both ways, so official weights (e.g. a `.safetensors` export of a state dict) can
//! be loaded into `han-gnn` and our gradients compared with the official ones.
//!
//! Official conventions: `nn.Linear` weights are `[out, in]` (used as `x Wᵀ`), every other
//! matrix is right-multiplied; the four homogeneous attention vectors are separate `[D, 1]`
//! parameters. Ours are right-multiplied matrices and one `[4, D]` table.

use std::collections::HashMap;

use tch::{nn, Tensor};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum OfficialWeightsError {
    #[error("the official state lacks {0:?}")]
    Missing(String),
    #[error("{name}: the official tensor has shape {official:?}, ours needs {ours:?}")]
    Shape {
        name: String,
        official: Vec<i64>,
        ours: Vec<i64>,
    },
    #[error("our variable {0:?} has no official counterpart")]
    Unmapped(String),
}

/// How one of our variables relates to official tensors.
enum Source {
    Same(&'static str),
    Transposed(&'static str),
    /// The four `local_agg.a_params.{0..3}` ([D, 1] each) as the rows of one [4, D] table.
    RelationVectors,
}

fn source_of(ours: &str) -> Option<Source> {
    use Source::*;
    Some(match ours {
        "input.embedding" => Same("embedding.weight"),
        "input.type_embedding" => Same("node_type_embedding.weight"),
        "input.position_embedding" => Same("pos_embedding.weight"),
        "input.input_projection" => Same("w_pos_type"),
        "layer.w_query" => Same("local_agg.W_Q"),
        "layer.w_key" => Same("local_agg.W_K"),
        "layer.w_value" => Same("local_agg.W_V"),
        "layer.relation_vectors" => RelationVectors,
        "layer.gate_w1" => Transposed("local_agg.projection.0.weight"),
        "layer.gate_b1" => Same("local_agg.projection.0.bias"),
        "layer.gate_w2" => Transposed("local_agg.projection.2.weight"),
        _ => return None,
    })
}

const RELATION_VECTORS: [&str; 4] = [
    "local_agg.a_params.0",
    "local_agg.a_params.1",
    "local_agg.a_params.2",
    "local_agg.a_params.3",
];

/// Our variable `ours` assembled from official tensors.
fn from_official(
    ours: &str,
    official: &HashMap<String, Tensor>,
) -> Result<Tensor, OfficialWeightsError> {
    let get = |name: &str| {
        official
            .get(name)
            .ok_or_else(|| OfficialWeightsError::Missing(name.to_string()))
    };
    match source_of(ours).ok_or_else(|| OfficialWeightsError::Unmapped(ours.to_string()))? {
        Source::Same(name) => Ok(get(name)?.shallow_clone()),
        Source::Transposed(name) => Ok(get(name)?.transpose(0, 1)),
        Source::RelationVectors => {
            let rows = RELATION_VECTORS
                .iter()
                .map(|name| Ok(get(name)?.view([-1])))
                .collect::<Result<Vec<_>, OfficialWeightsError>>()?;
            Ok(Tensor::stack(&rows, 0))
        }
    }
}

/// Copies official tensors (state-dict names) into every variable of a `han-gnn` var store.
/// Official parameters HAN-GNN does not use (spec §4.1) are ignored, and so is the gate's
/// `local_agg.projection.2.bias`, which cancels in the gate's softmax.
pub fn load_official(
    vs: &nn::VarStore,
    official: &HashMap<String, Tensor>,
) -> Result<(), OfficialWeightsError> {
    for (name, mut variable) in vs.variables() {
        let value = from_official(&name, official)?;
        if value.size() != variable.size() {
            return Err(OfficialWeightsError::Shape {
                name,
                official: value.size(),
                ours: variable.size(),
            });
        }
        tch::no_grad(|| variable.copy_(&value.to_device(variable.device())));
    }
    Ok(())
}

/// Our variables' current values (or gradients, via `pick`; an undefined gradient reads as
/// zeros) under the official names, with the official shapes.
pub fn to_official(vs: &nn::VarStore, pick: impl Fn(&Tensor) -> Tensor) -> HashMap<String, Tensor> {
    let mut out = HashMap::new();
    for (name, variable) in vs.variables() {
        let picked = pick(&variable);
        let value = if picked.defined() {
            picked
        } else {
            variable.zeros_like()
        };
        match source_of(&name) {
            Some(Source::Same(official)) => {
                out.insert(official.to_string(), value);
            }
            Some(Source::Transposed(official)) => {
                out.insert(official.to_string(), value.transpose(0, 1));
            }
            Some(Source::RelationVectors) => {
                for (r, official) in RELATION_VECTORS.iter().enumerate() {
                    out.insert(official.to_string(), value.get(r as i64).unsqueeze(1));
                }
            }
            None => {}
        }
    }
    out
}
