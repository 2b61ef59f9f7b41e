//! The embedded default dataset `synthetic`: generated in-process from a seed, no files.
//!
//! Generative model (also in `datasets/README.md`): items belong to latent topics; each item has a
//! latent vector near its topic centre; its image vector is a nonlinear and its text vector a
//! linear function of that latent vector, each with its own noise; a share of items misses one
//! modality. Users walk a sparse Markov chain over topics and pick popular items of the current
//! topic. The next item's topic is therefore predictable from the current item's topic, which the
//! modality vectors reveal (through codes), while item ids alone carry it only through sparse
//! co-occurrence. ChaCha8 makes the bytes identical on every platform for a given seed.

use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Geometric, Normal};
use serde::{Deserialize, Serialize};

use super::log::RawLog;
use super::prepared::{PreparedDataset, Provenance};
use super::split::SplitConfig;
use crate::modality::codes::{CodeConfig, Reduction};
use crate::modality::compute::build_codes;
use crate::modality::{FeatureTable, ItemSideInfo};

/// Bump when the generator's output changes for an unchanged config (the golden hash test pins it).
pub const GENERATOR_VERSION: u32 = 4;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticConfig {
    pub seed: u64,
    pub users: usize,
    pub items: usize,
    pub topics: usize,
    pub latent_dim: usize,
    pub image_dim: usize,
    pub text_dim: usize,
    /// Item latent = topic centre + `item_spread` * N(0, I).
    pub item_spread: f64,
    /// Standard deviation of the noise added to the image vectors.
    pub image_noise: f64,
    /// Standard deviation of the noise added to the text vectors (noisier than images).
    pub text_noise: f64,
    /// Share of items that miss exactly one modality (image or text, equally likely).
    pub missing_share: f64,
    /// Probability of moving to a topic's main successor; its second successor gets
    /// `(1 - follow) * 0.6`, staying `(1 - follow) * 0.25`, a random topic the rest.
    pub follow_prob: f64,
    /// Zipf exponent of item popularity inside a topic.
    pub popularity_exponent: f64,
    pub min_len: usize,
    /// Mean of the geometric number of interactions beyond `min_len`.
    pub mean_extra_len: f64,
    pub max_len: usize,
    /// Modality codes built from the generated features (projection, k-means, links).
    pub codes: CodeConfig,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            seed: crate::DEFAULT_SEED,
            users: 2000,
            items: 1000,
            topics: 25,
            latent_dim: 16,
            image_dim: 64,
            text_dim: 48,
            item_spread: 0.35,
            image_noise: 0.15,
            text_noise: 0.3,
            missing_share: 0.1,
            follow_prob: 0.6,
            popularity_exponent: 0.5,
            min_len: 5,
            mean_extra_len: 2.0,
            max_len: 40,
            // The portable reduction: the dataset's bytes (and content hash) must not depend on
            // the CPU's BLAS kernels, as the autoencoder's do.
            codes: CodeConfig {
                reduction: Reduction::Projection,
                ..CodeConfig::default()
            },
        }
    }
}

fn gaussian_matrix(rng: &mut ChaCha8Rng, rows: usize, cols: usize, std: f64) -> Vec<f64> {
    let normal = Normal::new(0.0, std).expect("finite std");
    (0..rows * cols).map(|_| normal.sample(rng)).collect()
}

fn mat_vec<'a>(matrix: &'a [f64], cols: usize, v: &'a [f64]) -> impl Iterator<Item = f64> + 'a {
    matrix
        .chunks(cols)
        .map(move |row| row.iter().zip(v).map(|(a, b)| a * b).sum())
}

struct Items {
    topic: Vec<usize>,
    image: Vec<Option<Vec<f32>>>,
    text: Vec<Option<Vec<f32>>>,
    /// Per topic: its items and their sampling distribution.
    by_topic: Vec<(Vec<usize>, WeightedIndex<f64>)>,
}

fn generate_items(c: &SyntheticConfig, rng: &mut ChaCha8Rng) -> Items {
    let centres = gaussian_matrix(rng, c.topics, c.latent_dim, 1.0);
    let image_map = gaussian_matrix(
        rng,
        c.image_dim,
        c.latent_dim,
        1.0 / (c.latent_dim as f64).sqrt(),
    );
    let text_map = gaussian_matrix(
        rng,
        c.text_dim,
        c.latent_dim,
        1.0 / (c.latent_dim as f64).sqrt(),
    );
    let mut topic: Vec<usize> = (0..c.items).map(|i| i % c.topics).collect();
    topic.shuffle(rng);
    let spread = Normal::new(0.0, c.item_spread).expect("finite");
    let image_noise = Normal::new(0.0, c.image_noise).expect("finite");
    let text_noise = Normal::new(0.0, c.text_noise).expect("finite");
    let (mut image, mut text) = (Vec::new(), Vec::new());
    for &t in &topic {
        let latent: Vec<f64> = centres[t * c.latent_dim..(t + 1) * c.latent_dim]
            .iter()
            .map(|m| m + spread.sample(rng))
            .collect();
        let img: Vec<f32> = mat_vec(&image_map, c.latent_dim, &latent)
            .map(|x| (x.tanh() + image_noise.sample(rng)) as f32)
            .collect();
        let txt: Vec<f32> = mat_vec(&text_map, c.latent_dim, &latent)
            .map(|x| (x + text_noise.sample(rng)) as f32)
            .collect();
        let (has_image, has_text) = if rng.random_bool(c.missing_share) {
            if rng.random_bool(0.5) {
                (false, true)
            } else {
                (true, false)
            }
        } else {
            (true, true)
        };
        image.push(has_image.then_some(img));
        text.push(has_text.then_some(txt));
    }
    let by_topic = (0..c.topics)
        .map(|t| {
            let mut members: Vec<usize> = (0..c.items).filter(|&i| topic[i] == t).collect();
            members.shuffle(rng); // popularity rank inside the topic
            let weights: Vec<f64> = (1..=members.len())
                .map(|r| (r as f64).powf(-c.popularity_exponent))
                .collect();
            let dist = WeightedIndex::new(&weights).expect("every topic has items");
            (members, dist)
        })
        .collect();
    Items {
        topic,
        image,
        text,
        by_topic,
    }
}

/// Sparse topic transitions: row `t` is the distribution of the next topic.
fn topic_transitions(c: &SyntheticConfig, rng: &mut ChaCha8Rng) -> Vec<WeightedIndex<f64>> {
    let mut order: Vec<usize> = (0..c.topics).collect();
    order.shuffle(rng);
    (0..c.topics)
        .map(|t| {
            let position = order.iter().position(|&x| x == t).expect("permutation");
            let main = order[(position + 1) % c.topics];
            let second = order[(position + 7) % c.topics];
            let rest = 1.0 - c.follow_prob;
            let mut w = vec![rest * 0.15 / c.topics as f64; c.topics];
            w[main] += c.follow_prob;
            w[second] += rest * 0.6;
            w[t] += rest * 0.25;
            WeightedIndex::new(&w).expect("positive weights")
        })
        .collect()
}

/// Generates the raw log and per-item features (indexed by generation order).
fn generate_log(c: &SyntheticConfig) -> (RawLog, Items) {
    let mut rng = ChaCha8Rng::seed_from_u64(c.seed);
    let items = generate_items(c, &mut rng);
    let transitions = topic_transitions(c, &mut rng);
    let extra = Geometric::new(1.0 / (1.0 + c.mean_extra_len)).expect("valid p");
    let mut log = RawLog::default();
    for u in 0..c.users {
        let user = format!("U{u:05}");
        let len = (c.min_len + extra.sample(&mut rng) as usize).min(c.max_len);
        let mut topic = rng.random_range(0..c.topics);
        let mut day: i64 = 16_000 + rng.random_range(0..1_000);
        for _ in 0..len {
            let (members, dist) = &items.by_topic[topic];
            let item = members[dist.sample(&mut rng)];
            log.push(&user, &format!("I{item:05}"), 5.0, day * 86_400);
            day += rng.random_range(1..4);
            topic = transitions[topic].sample(&mut rng);
        }
    }
    (log, items)
}

/// Builds the `synthetic` prepared dataset: generator -> 5-core -> ids -> split.
pub fn generate(config: &SyntheticConfig, split: &SplitConfig) -> PreparedDataset {
    let (mut log, items) = generate_log(config);
    let k_core = 5;
    log.k_core(k_core);
    let interactions = log.into_dataset();
    let num_items = interactions.num_items();
    let source = |what: &str| {
        format!(
            "synthetic generator v{GENERATOR_VERSION} ({what}, seed {})",
            config.seed
        )
    };
    let mut image = FeatureTable::empty(num_items, config.image_dim, source("image vectors"));
    let mut text = FeatureTable::empty(num_items, config.text_dim, source("text vectors"));
    for (index, key) in interactions.item_keys.iter().enumerate() {
        let generated: usize = key[1..].parse().expect("keys are I<number>");
        if let Some(v) = &items.image[generated] {
            image.set(index + 1, v);
        }
        if let Some(v) = &items.text[generated] {
            text.set(index + 1, v);
        }
    }
    debug_assert_eq!(items.topic.len(), config.items);
    let side = ItemSideInfo {
        titles: vec![None; num_items],
        image: Some(image),
        text: Some(text),
    };
    let provenance = Provenance {
        source: source(&format!(
            "{} users, {} items, {} topics",
            config.users, config.items, config.topics
        )),
        k_core: Some(k_core),
        min_rating: None,
    };
    let mut dataset = PreparedDataset::new("synthetic", provenance, interactions, *split, side);
    dataset.codes = Some(build_codes(&dataset.side, &config.codes, tch::Device::Cpu));
    dataset
}

/// The topic of every item id of a generated dataset (index = item id; 0 = padding -> None).
/// Only for tests and diagnostics: models never see topics.
pub fn item_topics(config: &SyntheticConfig, dataset: &PreparedDataset) -> Vec<Option<usize>> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let items = generate_items(config, &mut rng);
    std::iter::once(None)
        .chain(dataset.interactions.item_keys.iter().map(|k| {
            let generated: usize = k[1..].parse().ok()?;
            items.topic.get(generated).copied()
        }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::store::content_hash;

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let c = SyntheticConfig::default();
        let a = generate(&c, &SplitConfig::default());
        let b = generate(&c, &SplitConfig::default());
        assert_eq!(a, b);
        assert_eq!(content_hash(&a).unwrap(), content_hash(&b).unwrap());
        let other = generate(
            &SyntheticConfig {
                seed: 7,
                ..c.clone()
            },
            &SplitConfig::default(),
        );
        assert_ne!(content_hash(&a).unwrap(), content_hash(&other).unwrap());
    }

    #[test]
    fn shape_of_the_default_dataset() {
        let d = generate(&SyntheticConfig::default(), &SplitConfig::default());
        let counts = d.counts();
        assert!((1900..=2000).contains(&counts.users), "{counts:?}");
        assert!((900..=1000).contains(&counts.items), "{counts:?}");
        assert!(d.interactions.sequences.iter().all(|s| s.len() >= 5));
        let image = d.side.image.as_ref().unwrap();
        let text = d.side.text.as_ref().unwrap();
        // ~10 % of items miss exactly one modality; none miss both.
        let missing = counts.items * 2 - image.coverage() - text.coverage();
        assert!(
            missing > counts.items / 20 && missing < counts.items / 6,
            "{missing}"
        );
        assert!((1..=counts.items).all(|i| image.present[i] || text.present[i]));
        assert!(!image.present[0] && !text.present[0]);
    }

    /// Consecutive items follow the topic chain: the main successor topic is by far the most
    /// frequent next topic, which is what makes modality codes informative.
    #[test]
    fn transitions_follow_topics() {
        let c = SyntheticConfig::default();
        let d = generate(&c, &SplitConfig::default());
        let topics = item_topics(&c, &d);
        let mut counts = vec![vec![0usize; c.topics]; c.topics];
        for seq in &d.interactions.sequences {
            for w in seq.windows(2) {
                let (a, b) = (
                    topics[w[0] as usize].unwrap(),
                    topics[w[1] as usize].unwrap(),
                );
                counts[a][b] += 1;
            }
        }
        let concentrated = counts
            .iter()
            .filter(|row| {
                let total: usize = row.iter().sum();
                let max = *row.iter().max().unwrap();
                total > 0 && max * 2 > total
            })
            .count();
        assert!(
            concentrated >= c.topics * 4 / 5,
            "{concentrated} of {} topics",
            c.topics
        );
    }
}
