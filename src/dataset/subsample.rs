//! A seeded share of a dataset's users: `NAME@N` (or `NAME@N:SEED`) names the dataset made of N
//! users of NAME drawn uniformly with the seed (default [`DEFAULT_SEED`]). Every drawn user keeps
//! its whole history, so its train, validation and test samples are exactly those of the full
//! dataset; items are re-numbered to the ones the drawn users touch (full ranking is over those),
//! and the item features and modality codes are carried over unchanged (the codes were computed on
//! all items, as a user of the full dataset would have them).
//!
//! `NAME@NxK` first keeps only the K most frequent items (ties: lower id) in every history, then
//! draws the N users among those left with at least [`MIN_HISTORY`] items. A uniform draw of a
//! few hundred users leaves about one interaction per item, from which no id-based model learns;
//! the item cut keeps the interactions per item near the full dataset's. Used by reduced protocols
//! (`baselines/quick.yaml`) to keep every model's cost down on equal terms.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

use super::log::InteractionDataset;
use super::prepared::{PreparedDataset, Provenance};
use crate::modality::codes::{CodeBook, ModalityCodes};
use crate::modality::{FeatureTable, ItemSideInfo};

/// The draw's seed when the name gives none.
pub use crate::DEFAULT_SEED;
/// Shortest history a user needs after the item cut (the 5-core's per-user minimum).
pub const MIN_HISTORY: usize = 5;

/// A parsed `NAME@N[:SEED]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSample {
    pub base: String,
    pub users: usize,
    /// Keep only this many of the most frequent items first.
    pub top_items: Option<usize>,
    pub seed: u64,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SubsampleError {
    #[error("dataset name {name:?}: after '@' give the number of users to draw, optionally 'xK' to keep the K most frequent items first and ':SEED' (e.g. beauty-offline@2000, beauty-offline@800x1000 or beauty-offline@2000:7)")]
    Syntax { name: String },
    #[error(
        "{name:?} draws {users} users, but {base:?} has {available}: ask for at most {available}"
    )]
    TooMany {
        name: String,
        base: String,
        users: usize,
        available: usize,
    },
}

impl UserSample {
    /// None for a plain name; the parsed sample for `NAME@N[:SEED]`.
    pub fn parse(name: &str) -> Option<Result<Self, SubsampleError>> {
        let (base, rest) = name.split_once('@')?;
        let syntax = || SubsampleError::Syntax {
            name: name.to_string(),
        };
        let (counts, seed) = match rest.split_once(':') {
            Some((counts, seed)) => (counts, seed.parse::<u64>().ok()),
            None => (rest, Some(DEFAULT_SEED)),
        };
        let (users, top_items) = match counts.split_once('x') {
            Some((users, items)) => (users, Some(items.parse::<usize>().ok())),
            None => (counts, None),
        };
        Some(match (users.parse::<usize>(), top_items, seed) {
            (_, Some(None | Some(0)), _) => Err(syntax()),
            (Ok(users), top_items, Some(seed)) if users > 0 && !base.is_empty() => Ok(Self {
                base: base.to_string(),
                users,
                top_items: top_items.flatten(),
                seed,
            }),
            _ => Err(syntax()),
        })
    }

    /// The drawn users (0-based indices into `num_users`), ascending.
    pub fn draw(&self, num_users: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..num_users).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let (drawn, _) = all.partial_shuffle(&mut rng, self.users.min(num_users));
        let mut drawn = drawn.to_vec();
        drawn.sort_unstable();
        drawn
    }

    /// Every user's history, cut to the most frequent items when asked.
    fn histories<'a>(&self, full: &'a PreparedDataset) -> Vec<std::borrow::Cow<'a, [u32]>> {
        let sequences = &full.interactions.sequences;
        let Some(k) = self.top_items else {
            return sequences.iter().map(|s| s.as_slice().into()).collect();
        };
        let mut frequency = vec![0usize; full.num_items() + 1];
        for &item in sequences.iter().flatten() {
            frequency[item as usize] += 1;
        }
        let mut order: Vec<usize> = (1..frequency.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(frequency[i]), i));
        let mut kept = vec![false; frequency.len()];
        for &i in order.iter().take(k) {
            kept[i] = true;
        }
        sequences
            .iter()
            .map(|s| {
                s.iter()
                    .copied()
                    .filter(|&i| kept[i as usize])
                    .collect::<Vec<_>>()
                    .into()
            })
            .collect()
    }

    /// The dataset of the drawn users, named `name`.
    pub fn apply(
        &self,
        name: &str,
        full: &PreparedDataset,
    ) -> Result<PreparedDataset, SubsampleError> {
        let histories = self.histories(full);
        let eligible: Vec<usize> = (0..histories.len())
            .filter(|&u| {
                histories[u].len() >= MIN_HISTORY.min(full.interactions.sequences[u].len())
            })
            .collect();
        let available = eligible.len();
        if self.users > available {
            return Err(SubsampleError::TooMany {
                name: name.to_string(),
                base: self.base.clone(),
                users: self.users,
                available,
            });
        }
        let users: Vec<usize> = self
            .draw(available)
            .into_iter()
            .map(|i| eligible[i])
            .collect();
        // New item ids: the touched items in their old order, so the map is monotone.
        let mut new_id = vec![0u32; full.num_items() + 1];
        for &u in &users {
            for &item in histories[u].iter() {
                new_id[item as usize] = 1;
            }
        }
        let mut kept_items = vec![0usize]; // old id of each new id; 0 = padding
        for (old, id) in new_id.iter_mut().enumerate().skip(1) {
            if *id == 1 {
                kept_items.push(old);
                *id = (kept_items.len() - 1) as u32;
            }
        }
        let interactions = InteractionDataset {
            user_keys: users
                .iter()
                .map(|&u| full.interactions.user_keys[u].clone())
                .collect(),
            item_keys: kept_items[1..]
                .iter()
                .map(|&i| full.interactions.item_keys[i - 1].clone())
                .collect(),
            sequences: users
                .iter()
                .map(|&u| histories[u].iter().map(|&i| new_id[i as usize]).collect())
                .collect(),
        };
        let side = ItemSideInfo {
            titles: kept_items[1..]
                .iter()
                .map(|&i| full.side.titles.get(i - 1).cloned().flatten())
                .collect(),
            image: full.side.image.as_ref().map(|t| rows(t, &kept_items)),
            text: full.side.text.as_ref().map(|t| rows(t, &kept_items)),
        };
        let provenance = Provenance {
            source: format!(
                "{}{} users of {} drawn (seed {}), items re-numbered to the {} they touch; {}",
                self.top_items.map_or(String::new(), |k| format!(
                    "histories cut to the {k} most frequent items, then {MIN_HISTORY}+ items: "
                )),
                self.users,
                full.name,
                self.seed,
                kept_items.len() - 1,
                full.provenance.source
            ),
            ..full.provenance.clone()
        };
        let mut dataset =
            PreparedDataset::new(name, provenance, interactions, full.split_config, side);
        dataset.codes = full.codes.as_ref().map(|codes| ModalityCodes {
            config: codes.config.clone(),
            image: codes.image.as_ref().map(|b| book(b, &kept_items)),
            text: codes.text.as_ref().map(|b| book(b, &kept_items)),
        });
        Ok(dataset)
    }
}

fn rows(table: &FeatureTable, kept: &[usize]) -> FeatureTable {
    let dim = table.dim;
    FeatureTable {
        dim,
        values: kept
            .iter()
            .flat_map(|&i| table.values[i * dim..(i + 1) * dim].iter().copied())
            .collect(),
        present: kept.iter().map(|&i| table.present[i]).collect(),
        source: table.source.clone(),
    }
}

fn book(book: &CodeBook, kept: &[usize]) -> CodeBook {
    let dim = book.reduced_dim;
    CodeBook {
        links: kept.iter().map(|&i| book.links[i].clone()).collect(),
        reduced: if book.reduced.is_empty() {
            Vec::new()
        } else {
            kept.iter()
                .flat_map(|&i| book.reduced[i * dim..(i + 1) * dim].iter().copied())
                .collect()
        },
        ..book.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::synthetic::{generate, SyntheticConfig};
    use crate::dataset::SplitConfig;

    #[test]
    fn names_parse_with_and_without_a_seed() {
        assert_eq!(UserSample::parse("beauty-offline"), None);
        assert_eq!(
            UserSample::parse("beauty-offline@2000"),
            Some(Ok(UserSample {
                base: "beauty-offline".into(),
                users: 2000,
                top_items: None,
                seed: DEFAULT_SEED
            }))
        );
        assert_eq!(UserSample::parse("x@5:7").unwrap().unwrap().seed, 7);
        let cut = UserSample::parse("x@800x1000:3").unwrap().unwrap();
        assert_eq!((cut.users, cut.top_items, cut.seed), (800, Some(1000), 3));
        for bad in [
            "x@", "x@0", "x@-3", "x@5:", "x@5:a", "@5", "x@five", "x@5x", "x@5x0", "x@x5",
        ] {
            assert!(
                matches!(
                    UserSample::parse(bad),
                    Some(Err(SubsampleError::Syntax { .. }))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn drawn_users_keep_their_samples_and_items_their_features_and_codes() {
        let full = generate(&SyntheticConfig::default(), &SplitConfig::default());
        let sample = UserSample::parse("synthetic@300").unwrap().unwrap();
        let part = sample.apply("synthetic@300", &full).unwrap();
        assert_eq!(part.interactions.num_users(), 300);
        assert!(part.num_items() < full.num_items());
        // Same draw for the same seed; another seed draws other users.
        assert_eq!(sample.draw(1000), sample.draw(1000));
        let other = UserSample {
            seed: 9,
            ..sample.clone()
        };
        assert_ne!(sample.draw(1000), other.draw(1000));

        let key = |d: &PreparedDataset, i: u32| d.interactions.item_keys[i as usize - 1].clone();
        let user_of =
            |d: &PreparedDataset, u: u32| d.interactions.user_keys[u as usize - 1].clone();
        // Every test sample of a drawn user is the full dataset's, item for item.
        let full_test: std::collections::HashSet<(String, Vec<String>, String)> = full
            .splits
            .test
            .iter()
            .map(|(u, input, t)| {
                (
                    user_of(&full, u),
                    input.iter().map(|&i| key(&full, i)).collect(),
                    key(&full, t),
                )
            })
            .collect();
        let mut drawn_users = std::collections::HashSet::new();
        for (u, input, t) in part.splits.test.iter() {
            drawn_users.insert(user_of(&part, u));
            let sample = (
                user_of(&part, u),
                input.iter().map(|&i| key(&part, i)).collect(),
                key(&part, t),
            );
            assert!(full_test.contains(&sample));
        }
        let expected_tests = full
            .splits
            .test
            .iter()
            .filter(|(u, _, _)| drawn_users.contains(&user_of(&full, *u)))
            .count();
        assert_eq!(part.splits.test.len(), expected_tests);
        // Features and codes follow their items.
        let old = |new: usize| {
            let k = &part.interactions.item_keys[new - 1];
            full.interactions
                .item_keys
                .iter()
                .position(|x| x == k)
                .unwrap()
                + 1
        };
        let (pc, fc) = (part.codes.as_ref().unwrap(), full.codes.as_ref().unwrap());
        for new in [1, part.num_items() / 2, part.num_items()] {
            let o = old(new);
            assert_eq!(
                part.side.image.as_ref().unwrap().row(new),
                full.side.image.as_ref().unwrap().row(o)
            );
            assert_eq!(
                pc.text.as_ref().unwrap().links[new],
                fc.text.as_ref().unwrap().links[o]
            );
            assert_eq!(
                pc.image.as_ref().unwrap().reduced_vector(new),
                fc.image.as_ref().unwrap().reduced_vector(o)
            );
        }
        assert_eq!(
            pc.image.as_ref().unwrap().centres,
            fc.image.as_ref().unwrap().centres
        );
        assert!(part
            .provenance
            .source
            .starts_with("300 users of synthetic drawn (seed 2023)"));
        // The item cut: only the most frequent items remain, every kept history has 5+ of them.
        let cut = UserSample::parse("synthetic@50x100").unwrap().unwrap();
        let small = cut.apply("synthetic@50x100", &full).unwrap();
        assert!(small.num_items() <= 100);
        assert!(small
            .interactions
            .sequences
            .iter()
            .all(|s| s.len() >= MIN_HISTORY));
        let mut frequency = std::collections::HashMap::new();
        for &i in full.interactions.sequences.iter().flatten() {
            *frequency.entry(key(&full, i)).or_insert(0usize) += 1;
        }
        let mut counts: Vec<usize> = frequency.values().copied().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let threshold = counts[99];
        for k in &small.interactions.item_keys {
            assert!(
                frequency[k] >= threshold,
                "{k} is not among the 100 most frequent"
            );
        }
        assert!(small
            .provenance
            .source
            .starts_with("histories cut to the 100 most frequent items"));
        let too_many = UserSample {
            users: 5000,
            ..sample
        };
        assert!(matches!(
            too_many.apply("synthetic@5000", &full),
            Err(SubsampleError::TooMany { available, .. }) if available == full.interactions.num_users()
        ));
    }
}
