//! Turns sample indices into device tensors of the kind a model asked for.

use tch::{Device, Tensor};

use crate::data::SampleSet;
use crate::model::{Batch, BatchInput, InputKind};

/// One split's samples, ready to be cut into batches.
pub struct BatchSource<'a> {
    samples: &'a SampleSet,
    kind: InputKind,
    device: Device,
}

impl<'a> BatchSource<'a> {
    pub fn new(samples: &'a SampleSet, kind: InputKind, device: Device) -> Self {
        Self {
            samples,
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

    pub fn batch(&self, indices: &[usize]) -> Batch {
        let targets: Vec<i64> = indices
            .iter()
            .map(|&s| i64::from(self.samples.targets[s]) - 1)
            .collect();
        let input = match self.kind {
            InputKind::None => BatchInput::None,
        };
        Batch {
            size: indices.len(),
            targets: Tensor::from_slice(&targets).to_device(self.device),
            input,
        }
    }
}
