//! Turns sample indices into device tensors of the kind a model asked for.

use tch::{Device, Tensor};

use crate::config::{Candidates, EvaluationOrder};
use crate::dataset::missing::DropPattern;
use crate::dataset::SampleSet;
use crate::graph::{
    DenseGraphBatch, GraphBatch, GraphLayout, GraphSet, SparseGraphBatch, StructureSet,
};
use crate::model::{Batch, BatchInput, GraphInput, InputKind, SequenceBatch};

/// The prebuilt per-sample data of one split that graph models read.
#[derive(Clone, Copy)]
pub struct SplitInputs<'a> {
    pub graphs: &'a GraphSet,
    /// Distances and degrees of the same graphs, when the model asked for them.
    pub structure: Option<&'a StructureSet>,
}

impl<'a> SplitInputs<'a> {
    /// `pruned` (the same graphs cut to a receptive field, which carry no structure encodings)
    /// when there is one, else `self`.
    pub fn or_pruned(self, pruned: Option<&'a GraphSet>) -> Self {
        match pruned {
            Some(graphs) => Self {
                graphs,
                structure: None,
            },
            None => self,
        }
    }
}

/// One split's samples (and their prebuilt graphs), ready to be cut into batches.
pub struct BatchSource<'a> {
    samples: &'a SampleSet,
    inputs: Option<SplitInputs<'a>>,
    kind: InputKind,
    device: Device,
    /// The missing-modality pattern of this split, for models that read item vectors (graph
    /// models get it through their prebuilt graphs).
    missing: Option<DropPattern>,
    order: EvaluationOrder,
    candidates: Candidates,
}

impl<'a> BatchSource<'a> {
    /// `inputs` must hold the graphs (and, when the kind asks, the structure) of `samples`, in
    /// the same order, when `kind` is a graph kind.
    pub fn new(
        samples: &'a SampleSet,
        inputs: Option<SplitInputs<'a>>,
        kind: InputKind,
        device: Device,
    ) -> Self {
        if let InputKind::Graph(graph) = kind {
            let inputs = inputs.expect("graph models need their graphs");
            assert_eq!(inputs.graphs.len(), samples.len(), "one graph per sample");
            if graph.structure {
                let structure = inputs
                    .structure
                    .expect("structure encodings were requested");
                assert_eq!(structure.len(), samples.len(), "one structure per graph");
            }
        }
        Self {
            samples,
            inputs,
            kind,
            device,
            missing: None,
            order: EvaluationOrder::Input,
            candidates: Candidates::AllItems,
        }
    }

    /// Sequence batches carry where `pattern` hides a modality.
    pub fn with_missing(mut self, pattern: Option<DropPattern>) -> Self {
        self.missing = pattern;
        self
    }

    /// The order [`Self::evaluation_order`] follows (`eval.order`).
    pub fn with_order(mut self, order: EvaluationOrder) -> Self {
        self.order = order;
        self
    }

    pub fn order(&self) -> EvaluationOrder {
        self.order
    }

    /// The items an evaluation pass ranks the targets among (`eval.candidates`).
    pub fn with_candidates(mut self, candidates: Candidates) -> Self {
        self.candidates = candidates;
        self
    }

    /// The distinct (row, 0-based item) pairs of a batch of `indices` that its ranking leaves
    /// out: with `not-in-input`, each sample's input items other than its target, an item
    /// the user had twice once; `None` when every item is ranked.
    pub fn left_out_items(&self, indices: &[usize]) -> Option<(Tensor, Tensor)> {
        if self.candidates == Candidates::AllItems {
            return None;
        }
        let (mut rows, mut items) = (Vec::new(), Vec::new());
        let mut seen: Vec<u32> = Vec::new();
        for (row, &s) in indices.iter().enumerate() {
            let target = self.samples.targets[s];
            seen.clear();
            seen.extend_from_slice(self.samples.input(s));
            seen.sort_unstable();
            seen.dedup();
            for &item in seen.iter().filter(|&&i| i != target) {
                rows.push(row as i64);
                items.push(i64::from(item) - 1);
            }
        }
        let tensor = |v: &[i64]| Tensor::from_slice(v).to_device(self.device);
        Some((tensor(&rows), tensor(&items)))
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn samples(&self) -> &'a SampleSet {
        self.samples
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The order in which an evaluation pass visits the samples. Dense batches are padded to
    /// their largest graph, so grouping graphs of similar size removes most of the padding (on
    /// Beauty's test split: 7 s instead of 16 s). Sparse batches cost what their edges cost;
    /// there the input order is faster, because sorted batches of the largest graphs no longer
    /// fit in cache. Sequence models follow `eval.order` (by length: stable, shortest first).
    /// Metrics are means over samples, so the order changes them only through the last bits
    /// of scores computed in other batches.
    pub fn evaluation_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        match (self.kind, self.inputs) {
            (
                InputKind::Graph(GraphInput {
                    layout: GraphLayout::Dense,
                    ..
                }),
                Some(inputs),
            ) => order.sort_by_key(|&g| inputs.graphs.graph(g).num_nodes()),
            (InputKind::Sequence, _) if self.order == EvaluationOrder::ByLength => {
                order.sort_by_key(|&s| self.samples.input(s).len())
            }
            _ => {}
        }
        order
    }

    pub fn batch(&self, indices: &[usize]) -> Batch {
        let targets: Vec<i64> = indices
            .iter()
            .map(|&s| i64::from(self.samples.targets[s]) - 1)
            .collect();
        let input = match (self.kind, self.inputs) {
            (InputKind::None, _) => BatchInput::None,
            (InputKind::Sequence, _) => BatchInput::Sequence(SequenceBatch::assemble_missing(
                self.samples,
                indices,
                self.missing.as_ref(),
                self.device,
            )),
            (InputKind::Graph(graph), Some(inputs)) => BatchInput::Graph(match graph.layout {
                GraphLayout::Dense => GraphBatch::Dense(DenseGraphBatch::assemble(
                    inputs.graphs,
                    inputs.structure.filter(|_| graph.structure),
                    indices,
                    self.device,
                )),
                GraphLayout::Sparse => GraphBatch::Sparse(SparseGraphBatch::assemble(
                    inputs.graphs,
                    indices,
                    graph.edge_lists,
                    self.device,
                )),
            }),
            (InputKind::Graph(_), None) => unreachable!("checked in new()"),
        };
        Batch {
            size: indices.len(),
            targets: Tensor::from_slice(&targets).to_device(self.device),
            input,
        }
    }
}
