//! Turns sample indices into device tensors of the kind a model asked for.

use tch::{Device, Tensor};

use crate::dataset::SampleSet;
use crate::graph::{DenseGraphBatch, GraphLayout, GraphSet, SparseGraphBatch};
use crate::model::{Batch, BatchInput, InputKind};

/// One split's samples (and their prebuilt graphs), ready to be cut into batches.
pub struct BatchSource<'a> {
    samples: &'a SampleSet,
    graphs: Option<&'a GraphSet>,
    kind: InputKind,
    device: Device,
}

impl<'a> BatchSource<'a> {
    /// `graphs` must hold the graphs of `samples` (same order) when `kind` is a graph kind.
    pub fn new(
        samples: &'a SampleSet,
        graphs: Option<&'a GraphSet>,
        kind: InputKind,
        device: Device,
    ) -> Self {
        if let InputKind::Graph { .. } = kind {
            let count = graphs.map(GraphSet::len);
            assert_eq!(
                count,
                Some(samples.len()),
                "graph models need one graph per sample"
            );
        }
        Self {
            samples,
            graphs,
            kind,
            device,
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The order in which an evaluation pass visits the samples. Dense batches are padded to
    /// their largest graph, so grouping graphs of similar size removes most of the padding (on
    /// Beauty's test split: 7 s instead of 16 s). Sparse batches cost what their edges cost;
    /// there the input order is faster, because sorted batches of the largest graphs no longer
    /// fit in cache. Metrics are means over samples, so the order does not change them.
    pub fn evaluation_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        if let (
            InputKind::Graph {
                layout: GraphLayout::Dense,
                ..
            },
            Some(graphs),
        ) = (self.kind, self.graphs)
        {
            order.sort_by_key(|&g| graphs.graph(g).num_nodes());
        }
        order
    }

    pub fn batch(&self, indices: &[usize]) -> Batch {
        let targets: Vec<i64> = indices
            .iter()
            .map(|&s| i64::from(self.samples.targets[s]) - 1)
            .collect();
        let input = match (self.kind, self.graphs) {
            (InputKind::None, _) => BatchInput::None,
            (InputKind::Graph { layout, .. }, Some(graphs)) => match layout {
                GraphLayout::Dense => {
                    BatchInput::Dense(DenseGraphBatch::assemble(graphs, indices, self.device))
                }
                GraphLayout::Sparse => {
                    BatchInput::Sparse(SparseGraphBatch::assemble(graphs, indices, self.device))
                }
            },
            (InputKind::Graph { .. }, None) => unreachable!("checked in new()"),
        };
        Batch {
            size: indices.len(),
            targets: Tensor::from_slice(&targets).to_device(self.device),
            input,
        }
    }
}
