//! The graphs of a prepared dataset's three splits, shared by every run on it and built on
//! first request: whole graphs, the receptive fields (`graph::receptive`) that models with a
//! reach read instead, and the structure encodings.
//!
//! A receptive field is cut from the split's whole graphs, which are kept only if a run has
//! asked for them: a model that reads receptive fields alone never holds whole validation and
//! test graphs (133 MB on Beauty), nor whole training graphs when it trains on receptive fields.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use super::set::{GraphSet, GraphStats};
use super::structure::StructureSet;
use crate::dataset::missing::{DropPattern, MissingModality, Stream};
use crate::dataset::PreparedDataset;
use crate::modality::ItemBundles;

/// A built graph set, the seconds its building took (with the whole graphs it was cut from),
/// and the statistics of those whole graphs (what a result reports, whatever the run read).
pub struct BuiltGraphs {
    pub graphs: GraphSet,
    pub seconds: f64,
    pub whole_stats: GraphStats,
}

/// The graphs of one dataset (with or without code nodes, under at most one missing-modality
/// condition and seed), built on request.
pub struct SplitGraphs {
    dataset: Rc<PreparedDataset>,
    bundles: Option<ItemBundles>,
    missing: Option<(MissingModality, u64)>,
    /// Train, validation, test.
    whole: [OnceCell<BuiltGraphs>; 3],
    /// Keyed by reach and split.
    receptive: RefCell<HashMap<(usize, usize), Rc<BuiltGraphs>>>,
    structure: OnceCell<SplitStructures>,
}

/// Distances and degrees of every graph of the three splits.
pub struct SplitStructures {
    pub train: StructureSet,
    pub valid: StructureSet,
    pub test: StructureSet,
    pub build_seconds: f64,
}

/// One split's graphs as a run reads them.
pub enum SplitView<'a> {
    Whole(&'a BuiltGraphs),
    Receptive(Rc<BuiltGraphs>),
}

impl SplitView<'_> {
    fn built(&self) -> &BuiltGraphs {
        match self {
            SplitView::Whole(built) => built,
            SplitView::Receptive(built) => built,
        }
    }

    pub fn graphs(&self) -> &GraphSet {
        &self.built().graphs
    }

    pub fn seconds(&self) -> f64 {
        self.built().seconds
    }

    pub fn whole_stats(&self) -> GraphStats {
        self.built().whole_stats
    }
}

/// The graphs one run reads, per split.
pub struct RunGraphs<'a> {
    views: [SplitView<'a>; 3],
}

impl RunGraphs<'_> {
    pub fn split(&self, split: Stream) -> &SplitView<'_> {
        &self.views[index(split)]
    }

    /// Seconds spent building what the run reads (whenever it was built).
    pub fn build_seconds(&self) -> f64 {
        self.views.iter().map(SplitView::seconds).sum()
    }
}

fn index(split: Stream) -> usize {
    match split {
        Stream::Train => 0,
        Stream::Valid => 1,
        Stream::Test => 2,
    }
}

impl SplitGraphs {
    /// Nothing is built yet. `with_codes`: MSGraphs with code nodes (needs the dataset's codes);
    /// otherwise item-only graphs. `missing`: the condition and seed of the missing-modality
    /// study, whose drop patterns (one stream per split) leave bundles out.
    pub fn new(
        dataset: Rc<PreparedDataset>,
        with_codes: bool,
        missing: Option<(MissingModality, u64)>,
    ) -> Self {
        let bundles = match (with_codes, &dataset.codes) {
            (true, Some(codes)) => Some(codes.item_bundles(dataset.num_items())),
            _ => None,
        };
        Self {
            dataset,
            bundles,
            missing,
            whole: Default::default(),
            receptive: RefCell::new(HashMap::new()),
            structure: OnceCell::new(),
        }
    }

    fn build(&self, split: Stream) -> BuiltGraphs {
        let start = Instant::now();
        let splits = &self.dataset.splits;
        let samples = match split {
            Stream::Train => &splits.train,
            Stream::Valid => &splits.valid,
            Stream::Test => &splits.test,
        };
        let pattern = self
            .missing
            .map(|(condition, seed)| DropPattern::new(condition, seed, split));
        let graphs = GraphSet::build_missing(samples, self.bundles.as_ref(), pattern.as_ref());
        BuiltGraphs {
            whole_stats: graphs.stats(),
            graphs,
            seconds: start.elapsed().as_secs_f64(),
        }
    }

    /// The split's whole graphs, built (and kept) on the first call.
    pub fn whole(&self, split: Stream) -> &GraphSet {
        &self.whole_built(split).graphs
    }

    fn whole_built(&self, split: Stream) -> &BuiltGraphs {
        self.whole[index(split)].get_or_init(|| self.build(split))
    }

    /// The split's graphs cut to reach `reach`, made on the first call for that reach: from the
    /// kept whole graphs if a run has asked for them, else from whole graphs built for the cut
    /// and dropped after it.
    pub fn receptive_field(&self, split: Stream, reach: usize) -> Rc<BuiltGraphs> {
        let key = (reach, index(split));
        if let Some(built) = self.receptive.borrow().get(&key) {
            return Rc::clone(built);
        }
        let cut = |whole: &BuiltGraphs| {
            let start = Instant::now();
            BuiltGraphs {
                graphs: whole.graphs.receptive_field(reach),
                seconds: whole.seconds + start.elapsed().as_secs_f64(),
                whole_stats: whole.whole_stats,
            }
        };
        let built = Rc::new(match self.whole[index(split)].get() {
            Some(whole) => cut(whole),
            None => cut(&self.build(split)),
        });
        self.receptive.borrow_mut().insert(key, Rc::clone(&built));
        built
    }

    /// What a run reads of `split`: the receptive field when the model gives a reach, else the
    /// whole graphs.
    pub fn view(&self, split: Stream, reach: Option<usize>) -> SplitView<'_> {
        match reach {
            Some(reach) => SplitView::Receptive(self.receptive_field(split, reach)),
            None => SplitView::Whole(self.whole_built(split)),
        }
    }

    /// What a run reads of the three splits: training graphs cut to `training_reach`, validation
    /// and test graphs to `evaluation_reach`, each whole where its reach is `None`.
    pub fn for_run(
        &self,
        training_reach: Option<usize>,
        evaluation_reach: Option<usize>,
    ) -> RunGraphs<'_> {
        RunGraphs {
            views: [
                self.view(Stream::Train, training_reach),
                self.view(Stream::Valid, evaluation_reach),
                self.view(Stream::Test, evaluation_reach),
            ],
        }
    }

    /// The structure encodings of the whole graphs, computed once (in parallel) on the first
    /// call.
    pub fn structure(&self) -> &SplitStructures {
        self.structure.get_or_init(|| {
            let [train, valid, test] =
                [Stream::Train, Stream::Valid, Stream::Test].map(|s| self.whole(s));
            let start = Instant::now();
            let (train, (valid, test)) = rayon::join(
                || StructureSet::build(train),
                || rayon::join(|| StructureSet::build(valid), || StructureSet::build(test)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::split::SplitConfig;
    use crate::dataset::synthetic::{generate, SyntheticConfig};

    fn graphs() -> SplitGraphs {
        let data = generate(&SyntheticConfig::default(), &SplitConfig::default());
        SplitGraphs::new(Rc::new(data), true, None)
    }

    #[test]
    fn a_receptive_field_is_cut_without_keeping_the_whole_graphs() {
        let reference = graphs();
        let lazy = graphs();
        for split in [Stream::Train, Stream::Valid, Stream::Test] {
            let cut = lazy.receptive_field(split, 1);
            assert!(lazy.whole[index(split)].get().is_none(), "{split:?}");
            let whole = reference.whole(split);
            assert!(whole.len() > 10, "{split:?}");
            assert_eq!(cut.graphs, whole.receptive_field(1), "{split:?}");
            assert_ne!(cut.graphs, *whole, "{split:?}: nothing was cut");
            assert_eq!(cut.whole_stats, whole.stats(), "{split:?}");
            // Made once per reach and split.
            assert!(Rc::ptr_eq(&cut, &lazy.receptive_field(split, 1)));
            assert!(!Rc::ptr_eq(&cut, &lazy.receptive_field(split, 0)));
        }
    }

    #[test]
    fn kept_whole_graphs_are_cut_in_place_and_views_pick_by_reach() {
        let g = graphs();
        let whole = g.whole(Stream::Test).clone();
        assert_eq!(
            g.receptive_field(Stream::Test, 0).graphs,
            whole.receptive_field(0)
        );
        assert!(matches!(g.view(Stream::Test, None), SplitView::Whole(_)));
        let view = g.view(Stream::Valid, Some(2));
        assert!(matches!(view, SplitView::Receptive(_)));
        assert_eq!(view.graphs().len(), g.whole(Stream::Valid).len());
        let run = g.for_run(None, Some(1));
        assert!(matches!(run.split(Stream::Train), SplitView::Whole(_)));
        for split in [Stream::Valid, Stream::Test] {
            assert!(matches!(run.split(split), SplitView::Receptive(_)));
        }
        assert!(run.build_seconds() > 0.0);
    }
}
