//! A deterministic built-in text encoder for item titles that needs no network or model weights:
//! TF-IDF over words and character n-grams, then a seeded sparse random projection.
//!
//! Algorithm (version [`ENCODER_VERSION`]):
//!
//! 1. **Tokens.** The title is lowercased (Unicode) and split into words at every character that
//!    is not alphanumeric. Each word gives one *word feature* and the *character n-grams*
//!    (n = 3, 4, 5, over characters) of the word wrapped in boundary markers, `<word>` (so `"ab"`
//!    gives `<ab`, `ab>`, `<ab>`; fastText-style).
//! 2. **Hashing.** Each feature is hashed (FNV-1a 64 over a kind tag and its UTF-8 bytes, then
//!    the splitmix64 finaliser) into one of 2^[`HASH_BITS`] buckets: a fixed vocabulary, so memory
//!    is bounded and no vocabulary has to be stored.
//! 3. **TF-IDF.** Over the titles given (one corpus per call): `df[b]` = titles containing bucket
//!    `b`; `idf[b] = ln((1 + N) / (1 + df[b])) + 1` with N titles that have a feature; a feature's
//!    weight is `(1 + ln tf) · idf`. The word block and the n-gram block are L2-normalised
//!    separately and added with weight `sqrt(1/2)` each, so the cosine of two titles is the mean of
//!    their word cosine and their n-gram cosine (n-grams make misspellings and inflections close).
//! 4. **Projection.** A very sparse random projection (Johnson–Lindenstrauss; Kane–Nelson
//!    block construction): bucket `b` maps to [`NONZEROS`] output coordinates, one in each of
//!    `NONZEROS` equal blocks of the `dim` outputs, each with a random sign and magnitude
//!    `1/sqrt(NONZEROS)`. Coordinates and signs come from a ChaCha8 stream seeded with `seed` and
//!    set to stream `b`, so they are identical on every platform. Inner products are preserved in
//!    expectation; similar titles stay close.
//! 5. The result is L2-normalised. Items without a title, or whose title has no alphanumeric
//!    character, get no vector (`present = false`, zero row).
//!
//! Every title is computed independently in a fixed order, so the output is bit-identical for the
//! same input, `dim` and `seed`, whatever the number of threads. Work is parallel (rayon); about
//! 250k short titles take a few seconds on two cores.

use std::sync::atomic::{AtomicU32, Ordering};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use thiserror::Error;

use crate::modality::FeatureTable;

/// Bumped whenever the output for the same input changes.
pub const ENCODER_VERSION: u32 = 1;
pub const DEFAULT_DIM: usize = 768;
pub const HASH_BITS: u32 = 21;
pub const BUCKETS: usize = 1 << HASH_BITS;
/// Output coordinates per hashed feature.
pub const NONZEROS: usize = 8;
pub const NGRAM_MIN: usize = 3;
pub const NGRAM_MAX: usize = 5;
/// Largest supported output dimension (coordinates are packed into 31 bits).
pub const MAX_DIM: usize = 1 << 24;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TextEncoderError {
    #[error(
        "text encoder dimension {0} is out of range: use 1..={MAX_DIM} (default {DEFAULT_DIM})"
    )]
    Dim(usize),
}

const WORD_TAG: u8 = b'w';
const NGRAM_TAG: u8 = b'c';

fn bucket(tag: u8, bytes: &[u8]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in std::iter::once(&tag).chain(bytes) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64 finaliser: FNV's high bits alone are poorly mixed.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h >> (64 - HASH_BITS)) as u32
}

/// Which features a document gives: titles give words and n-grams; bags of attribute tokens give
/// words only (the n-grams of `a12` and `a123` would make unrelated attributes look alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tokens {
    WordsAndNgrams,
    WordsOnly,
}

#[cfg(test)]
/// Bucket ids of a title's word features and n-gram features (unsorted, with repeats).
fn features(title: &str, words: &mut Vec<u32>, ngrams: &mut Vec<u32>) {
    features_of(title, Tokens::WordsAndNgrams, words, ngrams)
}

fn features_of(title: &str, tokens: Tokens, words: &mut Vec<u32>, ngrams: &mut Vec<u32>) {
    words.clear();
    ngrams.clear();
    let lower = title.to_lowercase();
    let mut bounded = String::new();
    let mut starts: Vec<usize> = Vec::new();
    for word in lower.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        words.push(bucket(WORD_TAG, word.as_bytes()));
        if tokens == Tokens::WordsOnly {
            continue;
        }
        bounded.clear();
        bounded.push('<');
        bounded.push_str(word);
        bounded.push('>');
        starts.clear();
        starts.extend(bounded.char_indices().map(|(i, _)| i));
        starts.push(bounded.len());
        let chars = starts.len() - 1;
        for n in NGRAM_MIN..=NGRAM_MAX {
            for s in 0..(chars + 1).saturating_sub(n) {
                let gram = &bounded[starts[s]..starts[s + n]];
                ngrams.push(bucket(NGRAM_TAG, gram.as_bytes()));
            }
        }
    }
}

/// Sorted distinct buckets with their term counts.
fn counts(buckets: &mut [u32]) -> Vec<(u32, u32)> {
    buckets.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(buckets.len());
    for &b in buckets.iter() {
        match out.last_mut() {
            Some((last, n)) if *last == b => *n += 1,
            _ => out.push((b, 1)),
        }
    }
    out
}

/// The projection of one bucket: `NONZEROS` entries, coordinate in the low 31 bits, sign in the
/// top bit.
fn projection(base: &ChaCha8Rng, bucket: u32, dim: usize) -> [u32; NONZEROS] {
    let mut rng = base.clone();
    rng.set_stream(u64::from(bucket));
    rng.set_word_pos(0);
    let blocks = NONZEROS.min(dim);
    let mut out = [u32::MAX; NONZEROS];
    for (j, slot) in out.iter_mut().enumerate().take(blocks) {
        let lo = j * dim / blocks;
        let hi = (j + 1) * dim / blocks;
        let r = rng.next_u32();
        let offset = ((u64::from(r & 0x7fff_ffff) * (hi - lo) as u64) >> 31) as u32;
        *slot = (lo as u32 + offset) | (r & 0x8000_0000);
    }
    out
}

/// Encodes titles into L2-normalised `dim`-dimensional vectors; `titles[i - 1]` belongs to item
/// `i` (row `i` of the table; row 0 is padding). See the module documentation.
pub fn encode_titles(
    titles: &[Option<String>],
    dim: usize,
    seed: u64,
) -> Result<FeatureTable, TextEncoderError> {
    encode_documents(titles, Tokens::WordsAndNgrams, dim, seed)
}

/// Encodes bags of attribute tokens (`"a4 a17 a230"`, one bag per item) as [`encode_titles`]
/// does, but on whole tokens only: two items are close when they share attributes, not digits.
pub fn encode_attribute_bags(
    bags: &[Option<String>],
    dim: usize,
    seed: u64,
) -> Result<FeatureTable, TextEncoderError> {
    let mut table = encode_documents(bags, Tokens::WordsOnly, dim, seed)?;
    table.source = format!(
        "attribute bags, TF-IDF of whole tokens, sparse random projection to {dim}-d, seed {seed}"
    );
    Ok(table)
}

fn encode_documents(
    titles: &[Option<String>],
    tokens: Tokens,
    dim: usize,
    seed: u64,
) -> Result<FeatureTable, TextEncoderError> {
    if dim == 0 || dim > MAX_DIM {
        return Err(TextEncoderError::Dim(dim));
    }
    let mut table = FeatureTable::empty(
        titles.len(),
        dim,
        format!(
            "built-in text encoder v{ENCODER_VERSION} (TF-IDF of words and char {NGRAM_MIN}-{NGRAM_MAX}-grams, sparse random projection to {dim}-d, seed {seed})"
        ),
    );

    // Pass 1: document frequencies.
    let df: Vec<AtomicU32> = (0..BUCKETS).map(|_| AtomicU32::new(0)).collect();
    let documents: u32 = titles
        .par_iter()
        .map_init(
            || (Vec::new(), Vec::new()),
            |(words, ngrams), title| {
                let Some(title) = title else { return 0 };
                features_of(title, tokens, words, ngrams);
                if words.is_empty() {
                    return 0;
                }
                for list in [words, ngrams] {
                    for (b, _) in counts(list) {
                        df[b as usize].fetch_add(1, Ordering::Relaxed);
                    }
                }
                1
            },
        )
        .sum();
    let n = f64::from(documents);
    let idf: Vec<f32> = df
        .par_iter()
        .map(|d| {
            let d = f64::from(d.load(Ordering::Relaxed));
            (((1.0 + n) / (1.0 + d)).ln() + 1.0) as f32
        })
        .collect();

    // The projection of every bucket that occurs.
    let base = ChaCha8Rng::seed_from_u64(seed);
    let proj: Vec<[u32; NONZEROS]> = df
        .par_iter()
        .enumerate()
        .map(|(b, d)| {
            if d.load(Ordering::Relaxed) > 0 {
                projection(&base, b as u32, dim)
            } else {
                [u32::MAX; NONZEROS]
            }
        })
        .collect();
    drop(df);
    let scale = 1.0 / (NONZEROS.min(dim) as f32).sqrt();

    // Pass 2: one row per title.
    let rows = &mut table.values[dim..];
    let present: Vec<bool> = rows
        .par_chunks_mut(dim)
        .zip(titles.par_iter())
        .map_init(
            || (Vec::new(), Vec::new(), Vec::new()),
            |(words, ngrams, weights), (row, title)| {
                let Some(title) = title else { return false };
                features_of(title, tokens, words, ngrams);
                if words.is_empty() {
                    return false;
                }
                for list in [words, ngrams] {
                    if list.is_empty() {
                        continue;
                    }
                    weights.clear();
                    weights.extend(
                        counts(list)
                            .into_iter()
                            .map(|(b, tf)| (b, (1.0 + (tf as f32).ln()) * idf[b as usize])),
                    );
                    let norm = weights.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
                    let block = std::f32::consts::FRAC_1_SQRT_2 / norm;
                    for &(b, w) in weights.iter() {
                        let value = w * block * scale;
                        for &entry in proj[b as usize].iter().filter(|&&e| e != u32::MAX) {
                            let coordinate = (entry & 0x7fff_ffff) as usize;
                            row[coordinate] += if entry >> 31 == 1 { -value } else { value };
                        }
                    }
                }
                let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
                if norm > 0.0 && norm.is_finite() {
                    row.iter_mut().for_each(|v| *v /= norm);
                    true
                } else {
                    row.iter_mut().for_each(|v| *v = 0.0);
                    false
                }
            },
        )
        .collect();
    table.present[1..].copy_from_slice(&present);
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(t: &FeatureTable, a: usize, b: usize) -> f32 {
        let (x, y) = (t.row(a).unwrap(), t.row(b).unwrap());
        x.iter().zip(y).map(|(p, q)| p * q).sum()
    }

    fn titles(list: &[Option<&str>]) -> Vec<Option<String>> {
        list.iter().map(|t| t.map(str::to_string)).collect()
    }

    #[test]
    fn ngrams_use_boundary_markers_and_chars() {
        let (mut w, mut g) = (Vec::new(), Vec::new());
        features("Ab, é!", &mut w, &mut g);
        // "ab": <ab ab> <ab> ; "é": <é>
        assert_eq!(w.len(), 2);
        assert_eq!(g.len(), 4);
        assert_eq!(g[0], bucket(NGRAM_TAG, "<ab".as_bytes()));
        assert_eq!(g[3], bucket(NGRAM_TAG, "<é>".as_bytes()));
        features(" -- ", &mut w, &mut g);
        assert!(w.is_empty() && g.is_empty());
    }

    #[test]
    fn similar_titles_are_closer_and_output_is_deterministic() {
        let list = titles(&[
            Some("Neutrogena Hydro Boost Water Gel Moisturizer, 1.7 oz"),
            Some("Neutrogena Hydro Boost Gel Moisturiser 1.7oz"),
            Some("Stainless Steel Chef Knife 8 inch"),
            None,
            Some("NEUTROGENA hydro boost water gel moisturizer, 1.7 OZ"),
            Some("!!!"),
            Some("Kids Wooden Train Set with Tracks"),
        ]);
        let t = encode_titles(&list, 256, 7).unwrap();
        assert_eq!(
            t.present,
            [false, true, true, true, false, true, false, true]
        );
        for i in [1, 2, 3, 5, 7] {
            let norm: f32 = t.row(i).unwrap().iter().map(|v| v * v).sum();
            assert!((norm - 1.0).abs() < 1e-5);
        }
        assert_eq!(t.row(1), t.row(5), "case does not matter");
        let similar = cosine(&t, 1, 2);
        assert!(similar > 0.5, "{similar}");
        assert!(similar > cosine(&t, 1, 3) + 0.3);
        assert!(cosine(&t, 1, 3).abs() < 0.3 && cosine(&t, 3, 7).abs() < 0.3);

        let again = encode_titles(&list, 256, 7).unwrap();
        let bytes = |t: &FeatureTable| {
            t.values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
        };
        assert_eq!(bytes(&t), bytes(&again));
        let other_seed = encode_titles(&list, 256, 8).unwrap();
        assert_ne!(bytes(&t), bytes(&other_seed));
        // Same geometry with another seed, up to projection noise.
        assert!((cosine(&other_seed, 1, 2) - similar).abs() < 0.2);
    }

    #[test]
    fn attribute_bags_match_on_whole_tokens_only() {
        let bags = titles(&[
            Some("a12 a40"),
            Some("a12 a40"),
            Some("a123 a401"),
            Some("a12 a7"),
            None,
        ]);
        let t = encode_attribute_bags(&bags, 512, 3).unwrap();
        assert!((cosine(&t, 1, 2) - 1.0).abs() < 1e-5);
        // Shared digits are not shared attributes (a title encoder's n-grams would say they are).
        assert!(cosine(&t, 1, 3).abs() < 0.2, "{}", cosine(&t, 1, 3));
        assert!(cosine(&t, 1, 4) > 0.3 && cosine(&t, 1, 4) < 0.9);
        assert!(!t.present[5]);
        let titles_cosine = encode_titles(&bags, 512, 3)
            .map(|t| cosine(&t, 1, 3))
            .unwrap();
        assert!(titles_cosine > cosine(&t, 1, 3) + 0.1, "{titles_cosine}");
        assert!(t.source.starts_with("attribute bags"));
    }

    #[test]
    fn small_and_invalid_dims() {
        let list = titles(&[Some("red shoe"), Some("blue shoe")]);
        let t = encode_titles(&list, 3, 1).unwrap();
        assert_eq!(t.values.len(), 9);
        assert!(t.present[1] && t.present[2]);
        assert_eq!(
            encode_titles(&list, 0, 1).unwrap_err(),
            TextEncoderError::Dim(0)
        );
        let empty = encode_titles(&[], 16, 1).unwrap();
        assert_eq!(empty.coverage(), 0);
    }
}
