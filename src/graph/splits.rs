//! The graphs of a prepared dataset's three splits, built once and shared by every run on it,
//! and their structure encodings, built on first request.

use std::sync::OnceLock;
use std::time::Instant;

use super::set::GraphSet;
use super::structure::StructureSet;
use crate::dataset::missing::{DropPattern, MissingModality, Stream};
use crate::dataset::PreparedDataset;

pub struct SplitGraphs {
    pub train: GraphSet,
    pub valid: GraphSet,
    pub test: GraphSet,
    pub build_seconds: f64,
    structure: OnceLock<SplitStructures>,
}

/// The splits' graphs cut to a receptive field (`graph::receptive`); the training split only when
/// the model trains on receptive fields.
pub struct ReceptiveFields {
    pub train: Option<GraphSet>,
    pub valid: GraphSet,
    pub test: GraphSet,
}

/// Distances and degrees of every graph of the three splits.
pub struct SplitStructures {
    pub train: StructureSet,
    pub valid: StructureSet,
    pub test: StructureSet,
    pub build_seconds: f64,
}

impl SplitGraphs {
    /// `with_codes`: MSGraphs with code nodes (needs the dataset's codes); otherwise item-only
    /// graphs. `missing`: the condition and seed of the missing-modality study, whose drop
    /// patterns (one stream per split) leave bundles out.
    pub fn build(
        dataset: &PreparedDataset,
        with_codes: bool,
        missing: Option<(MissingModality, u64)>,
    ) -> Self {
        let start = Instant::now();
        let bundles = match (with_codes, &dataset.codes) {
            (true, Some(codes)) => Some(codes.item_bundles(dataset.num_items())),
            _ => None,
        };
        let splits = &dataset.splits;
        let pattern = |stream| missing.map(|(c, seed)| DropPattern::new(c, seed, stream));
        let build = |samples, stream| {
            GraphSet::build_missing(samples, bundles.as_ref(), pattern(stream).as_ref())
        };
        let (train, (valid, test)) = rayon::join(
            || build(&splits.train, Stream::Train),
            || {
                rayon::join(
                    || build(&splits.valid, Stream::Valid),
                    || build(&splits.test, Stream::Test),
                )
            },
        );
        Self {
            train,
            valid,
            test,
            build_seconds: start.elapsed().as_secs_f64(),
            structure: OnceLock::new(),
        }
    }

    /// The graphs cut to reach `reach` (in parallel; a run's own copy, as the reach is the
    /// model's).
    pub fn receptive_fields(&self, reach: usize, train: bool) -> ReceptiveFields {
        let (train, (valid, test)) = rayon::join(
            || train.then(|| self.train.receptive_field(reach)),
            || {
                rayon::join(
                    || self.valid.receptive_field(reach),
                    || self.test.receptive_field(reach),
                )
            },
        );
        ReceptiveFields { train, valid, test }
    }

    /// The structure encodings, computed once (in parallel) on the first call.
    pub fn structure(&self) -> &SplitStructures {
        self.structure.get_or_init(|| {
            let start = Instant::now();
            let (train, (valid, test)) = rayon::join(
                || StructureSet::build(&self.train),
                || {
                    rayon::join(
                        || StructureSet::build(&self.valid),
                        || StructureSet::build(&self.test),
                    )
                },
            );
            SplitStructures {
                train,
                valid,
                test,
                build_seconds: start.elapsed().as_secs_f64(),
            }
        })
    }
}
