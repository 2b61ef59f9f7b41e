//! The graphs of a prepared dataset's three splits, built once and shared by every run on it,
//! and their structure encodings, built on first request.

use std::sync::OnceLock;
use std::time::Instant;

use super::set::GraphSet;
use super::structure::StructureSet;
use crate::dataset::PreparedDataset;

pub struct SplitGraphs {
    pub train: GraphSet,
    pub valid: GraphSet,
    pub test: GraphSet,
    pub build_seconds: f64,
    structure: OnceLock<SplitStructures>,
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
    /// graphs.
    pub fn build(dataset: &PreparedDataset, with_codes: bool) -> Self {
        let start = Instant::now();
        let bundles = match (with_codes, &dataset.codes) {
            (true, Some(codes)) => Some(codes.item_bundles(dataset.num_items())),
            _ => None,
        };
        let splits = &dataset.splits;
        let (train, (valid, test)) = rayon::join(
            || GraphSet::build(&splits.train, bundles.as_ref()),
            || {
                rayon::join(
                    || GraphSet::build(&splits.valid, bundles.as_ref()),
                    || GraphSet::build(&splits.test, bundles.as_ref()),
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
