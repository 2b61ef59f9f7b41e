//! The data of one study point: a nested, seeded subset of the training users, the inputs cut
//! to the sequence cap, and the codes re-clustered or re-linked for `C` and `K`. Graphs are built
//! once per distinct (users, K, C, m) and shared by every model measured there.

use std::collections::HashSet;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

use super::config::ScalingPoint;
use crate::dataset::split::{SampleSet, Splits};
use crate::dataset::PreparedDataset;
use crate::graph::{GraphSet, GraphStats, StructureSet};
use crate::modality::codes::{CodeBook, ModalityCodes};
use crate::modality::compute::kmeans;
use crate::modality::ItemSideInfo;

#[derive(Debug, Error)]
pub enum VariantError {
    #[error("{dataset} has no modality codes: the study's K and C factors need them (prepare it with features)")]
    NoCodes { dataset: String },
    #[error("{dataset}'s {modality} codes carry no reduced features to re-cluster for C = {clusters} (re-prepare the dataset, or leave `factors.clusters` empty)")]
    NoReducedFeatures {
        dataset: String,
        modality: &'static str,
        clusters: usize,
    },
    #[error("{dataset} has no training samples for {users} users")]
    NoSamples { dataset: String, users: usize },
}

/// The part of a point that decides its graphs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GraphKey {
    pub users: f64,
    pub links: usize,
    pub clusters: usize,
    pub max_len: usize,
}

impl GraphKey {
    pub fn of(point: &ScalingPoint) -> Self {
        Self {
            users: point.users,
            links: point.links,
            clusters: point.clusters,
            max_len: point.max_len,
        }
    }
}

/// The training users in a seeded order, cut to the base size: every share takes a prefix,
/// so smaller shares are subsets of larger ones.
pub fn user_order(train: &SampleSet, base_users: Option<usize>, seed: u64) -> Vec<u32> {
    let mut seen = HashSet::new();
    let mut users: Vec<u32> = train
        .users
        .iter()
        .copied()
        .filter(|u| seen.insert(*u))
        .collect();
    users.sort_unstable();
    users.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5ca1_ab1e));
    if let Some(base) = base_users {
        users.truncate(base);
    }
    users
}

/// How many of `base` users a share keeps (at least one).
pub fn users_for_share(base: usize, share: f64) -> usize {
    ((base as f64 * share).round() as usize).clamp(1, base.max(1))
}

/// The samples of `users`, each input cut to its last `max_len` items.
pub fn select(samples: &SampleSet, users: Option<&HashSet<u32>>, max_len: usize) -> SampleSet {
    let mut out = SampleSet::new();
    for (user, input, target) in samples.iter() {
        if users.is_none_or(|set| set.contains(&user)) {
            out.push(user, &input[input.len().saturating_sub(max_len)..], target);
        }
    }
    out
}

/// The first `count` samples (the inference set), cut like the training ones.
pub fn first_samples(samples: &SampleSet, count: usize, max_len: usize) -> SampleSet {
    let mut out = SampleSet::new();
    for (user, input, target) in samples.iter().take(count) {
        out.push(user, &input[input.len().saturating_sub(max_len)..], target);
    }
    out
}

/// One modality's codes for `clusters` codes and `links` links per item: the same book when
/// nothing changes, re-linked to the same centres when only `K` changes, re-clustered from the
/// stored reduced features otherwise.
fn rebook(
    book: &CodeBook,
    clusters: usize,
    links: usize,
    codes: &ModalityCodes,
    iterations: usize,
    stream: u64,
) -> Option<CodeBook> {
    let current_links = book.links.iter().map(Vec::len).max().unwrap_or(0);
    if clusters == book.num_codes && links == current_links {
        return Some(book.clone());
    }
    let dim = book.reduced_dim;
    let present: Vec<usize> = (0..book.links.len())
        .filter(|&i| !book.links[i].is_empty())
        .collect();
    if dim == 0 || book.reduced.len() < book.links.len() * dim {
        return None;
    }
    let clusters = clusters.min(present.len()).max(1);
    let centres = if clusters == book.num_codes && book.centre_dim == dim {
        book.centres.clone()
    } else {
        let rows: Vec<f32> = present
            .iter()
            .flat_map(|&i| book.reduced[i * dim..(i + 1) * dim].iter().copied())
            .collect();
        kmeans::kmeans(
            &rows,
            dim,
            clusters,
            iterations,
            codes.config.seed.wrapping_add(stream),
        )
    };
    let mut new_links = vec![Vec::new(); book.links.len()];
    for &item in &present {
        new_links[item] = kmeans::nearest(
            &book.reduced[item * dim..(item + 1) * dim],
            &centres,
            dim,
            links.min(clusters),
            codes.config.metric,
        );
    }
    Some(CodeBook {
        num_codes: clusters,
        centres,
        centre_dim: dim,
        links: new_links,
        reduced: book.reduced.clone(),
        reduced_dim: dim,
    })
}

/// The codes of a point (`None` when the dataset has none).
pub fn codes_for(
    data: &PreparedDataset,
    clusters: usize,
    links: usize,
    iterations: usize,
) -> Result<Option<ModalityCodes>, VariantError> {
    let Some(codes) = &data.codes else {
        return Ok(None);
    };
    let mut books = [None, None];
    for (slot, (book, name, stream)) in books
        .iter_mut()
        .zip([(&codes.image, "image", 1), (&codes.text, "text", 2)])
    {
        if let Some(book) = book {
            *slot = Some(
                rebook(book, clusters, links, codes, iterations, stream).ok_or(
                    VariantError::NoReducedFeatures {
                        dataset: data.name.clone(),
                        modality: name,
                        clusters,
                    },
                )?,
            );
        }
    }
    let [image, text] = books;
    let mut config = codes.config.clone();
    config.clusters = clusters;
    config.links = links;
    Ok(Some(ModalityCodes {
        config,
        image,
        text,
    }))
}

/// The data and graphs of one graph key.
pub struct Variant {
    pub key: GraphKey,
    /// The dataset the models are built on: the subset as training split, the inference
    /// samples as test split, the point's codes, no item features (no graph model reads them).
    pub data: PreparedDataset,
    pub users: usize,
    pub with_codes: Option<Graphs>,
    pub items_only: Option<Graphs>,
    pub build_seconds: f64,
}

pub struct Graphs {
    pub train: GraphSet,
    pub inference: GraphSet,
    pub train_stats: GraphStats,
    /// Distances and degrees, computed for the models that read them.
    pub structure: Option<(StructureSet, StructureSet)>,
}

impl Graphs {
    fn build(data: &PreparedDataset, with_codes: bool, structure: bool) -> Self {
        let bundles = with_codes
            .then(|| {
                data.codes
                    .as_ref()
                    .map(|c| c.item_bundles(data.num_items()))
            })
            .flatten();
        let train = GraphSet::build(&data.splits.train, bundles.as_ref());
        let inference = GraphSet::build(&data.splits.test, bundles.as_ref());
        let structure =
            structure.then(|| (StructureSet::build(&train), StructureSet::build(&inference)));
        Self {
            train_stats: train.stats(),
            train,
            inference,
            structure,
        }
    }

    /// Σ n over the training graphs.
    pub fn total_nodes(&self) -> usize {
        (self.train_stats.mean_nodes * self.train_stats.graphs as f64).round() as usize
    }
}

/// What a variant must hold: graphs with codes and/or item-only graphs, structure or not.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    pub with_codes: bool,
    pub items_only: bool,
    pub structure: bool,
}

/// Builds the variant of `key` from the loaded dataset and the base user order.
pub fn build_variant(
    base: &PreparedDataset,
    order: &[u32],
    key: GraphKey,
    inference_samples: usize,
    kmeans_iterations: usize,
    needs: Needs,
) -> Result<Variant, VariantError> {
    let start = std::time::Instant::now();
    let keep = users_for_share(order.len(), key.users);
    let users: HashSet<u32> = order[..keep.min(order.len())].iter().copied().collect();
    let train = select(&base.splits.train, Some(&users), key.max_len);
    if train.is_empty() {
        return Err(VariantError::NoSamples {
            dataset: base.name.clone(),
            users: users.len(),
        });
    }
    let codes = if needs.with_codes {
        let codes = codes_for(base, key.clusters, key.links, kmeans_iterations)?;
        if codes.is_none() {
            return Err(VariantError::NoCodes {
                dataset: base.name.clone(),
            });
        }
        codes
    } else {
        None
    };
    let data = PreparedDataset {
        name: base.name.clone(),
        provenance: base.provenance.clone(),
        split_config: base.split_config,
        interactions: base.interactions.clone(),
        splits: Splits {
            train,
            valid: SampleSet::new(),
            test: first_samples(&base.splits.test, inference_samples, key.max_len),
        },
        side: ItemSideInfo::default(),
        codes,
    };
    let with_codes = needs
        .with_codes
        .then(|| Graphs::build(&data, true, needs.structure));
    let items_only = needs
        .items_only
        .then(|| Graphs::build(&data, false, needs.structure));
    Ok(Variant {
        key,
        users: users.len(),
        data,
        with_codes,
        items_only,
        build_seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> SampleSet {
        let mut s = SampleSet::new();
        for user in 1..=10u32 {
            for j in 1..4u32 {
                let input: Vec<u32> = (1..=j + 3).collect();
                s.push(user, &input, j);
            }
        }
        s
    }

    #[test]
    fn user_shares_are_nested_seeded_prefixes() {
        let s = samples();
        let order = user_order(&s, Some(8), 7);
        assert_eq!(order.len(), 8);
        assert_eq!(order, user_order(&s, Some(8), 7));
        assert_ne!(order, user_order(&s, Some(8), 8));
        let small: HashSet<u32> = order[..users_for_share(8, 0.25)].iter().copied().collect();
        let large: HashSet<u32> = order[..users_for_share(8, 0.5)].iter().copied().collect();
        assert_eq!((small.len(), large.len()), (2, 4));
        assert!(small.is_subset(&large));
        assert_eq!(users_for_share(8, 0.01), 1);
    }

    #[test]
    fn selection_keeps_the_users_samples_and_the_last_items() {
        let s = samples();
        let users: HashSet<u32> = [2, 5].into_iter().collect();
        let cut = select(&s, Some(&users), 2);
        assert_eq!(cut.len(), 6);
        assert!(cut.users.iter().all(|u| users.contains(u)));
        for (i, (_, input, target)) in cut.iter().enumerate() {
            let original = s
                .iter()
                .filter(|(u, _, _)| users.contains(u))
                .nth(i)
                .unwrap();
            assert_eq!(input, &original.1[original.1.len() - 2..]);
            assert_eq!(target, original.2);
        }
        assert_eq!(first_samples(&s, 4, 50).len(), 4);
    }
}
