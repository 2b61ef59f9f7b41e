//! k-means with k-means++ initialisation (seeded) and the top-K linking of items to centres.
//!
//! Plain Rust arithmetic in a fixed order (rows in parallel, every sum sequential), not libtorch:
//! BLAS kernels differ between CPUs (AVX2, AVX-512, MKL paths) and so would the codes, the
//! `synthetic` dataset's bytes and every content hash derived from them.

use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::modality::codes::LinkMetric;

fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// For every point, the nearest centre and its squared distance (ties: the lower index).
fn assign(data: &[f32], dim: usize, centres: &[f32]) -> Vec<(usize, f32)> {
    data.par_chunks(dim)
        .map(|point| {
            centres
                .chunks(dim)
                .map(|c| squared_distance(point, c))
                .enumerate()
                .fold(
                    (0, f32::INFINITY),
                    |best, (c, d)| {
                        if d < best.1 {
                            (c, d)
                        } else {
                            best
                        }
                    },
                )
        })
        .collect()
}

/// Lloyd's k-means on `data` (row-major `[n, dim]`) into `k` centres (row-major `[k, dim]`).
/// k-means++ seeding from a ChaCha stream; an empty cluster takes the point farthest from its
/// centre; stops when no assignment changes or after `max_iterations`.
pub fn kmeans(data: &[f32], dim: usize, k: usize, max_iterations: usize, seed: u64) -> Vec<f32> {
    let n = data.len() / dim;
    assert!(
        k >= 1 && k <= n,
        "k-means needs 1 <= k <= n (k = {k}, n = {n})"
    );
    let point = |i: usize| &data[i * dim..(i + 1) * dim];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);

    // k-means++: the first centre uniformly, each further one with probability ∝ D².
    let mut chosen = vec![rng.random_range(0..n)];
    let distances_to = |c: usize| -> Vec<f32> {
        data.par_chunks(dim)
            .map(|p| squared_distance(p, point(c)))
            .collect()
    };
    let mut nearest = distances_to(chosen[0]);
    while chosen.len() < k {
        let next = match WeightedIndex::new(nearest.iter().map(|&d| f64::from(d))) {
            Ok(dist) => dist.sample(&mut rng),
            // All remaining distances are zero (duplicate points): take any unchosen point.
            Err(_) => (0..n).find(|i| !chosen.contains(i)).expect("k <= n"),
        };
        chosen.push(next);
        for (a, b) in nearest.iter_mut().zip(distances_to(next)) {
            *a = a.min(b);
        }
    }
    let mut centres: Vec<f32> = chosen.iter().flat_map(|&i| point(i).to_vec()).collect();

    let mut previous: Option<Vec<usize>> = None;
    for _ in 0..max_iterations {
        let assigned = assign(data, dim, &centres);
        let labels: Vec<usize> = assigned.iter().map(|a| a.0).collect();
        if previous.as_ref() == Some(&labels) {
            break;
        }
        let mut sums = vec![0f64; k * dim];
        let mut counts = vec![0usize; k];
        for (i, &label) in labels.iter().enumerate() {
            counts[label] += 1;
            for (s, &x) in sums[label * dim..(label + 1) * dim]
                .iter_mut()
                .zip(point(i))
            {
                *s += f64::from(x);
            }
        }
        let mut far: Vec<f32> = assigned.iter().map(|a| a.1).collect();
        for cluster in 0..k {
            let centre = &mut centres[cluster * dim..(cluster + 1) * dim];
            if counts[cluster] == 0 {
                let farthest = far
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
                    .map(|(i, _)| i)
                    .expect("n >= 1");
                far[farthest] = -1.0;
                centre.copy_from_slice(point(farthest));
            } else {
                let count = counts[cluster] as f64;
                for (c, s) in centre
                    .iter_mut()
                    .zip(&sums[cluster * dim..(cluster + 1) * dim])
                {
                    *c = (s / count) as f32;
                }
            }
        }
        previous = Some(labels);
    }
    centres
}

/// The `k` centres closest to `point` under `metric`, nearest first (ties: lower index first).
pub fn nearest(
    point: &[f32],
    centres: &[f32],
    dim: usize,
    k: usize,
    metric: LinkMetric,
) -> Vec<u32> {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let point_norm = norm(point);
    let mut scored: Vec<(f32, u32)> = centres
        .chunks(dim)
        .enumerate()
        .map(|(c, centre)| {
            let score = match metric {
                LinkMetric::Euclidean => point
                    .iter()
                    .zip(centre)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>(),
                LinkMetric::Cosine => {
                    let dot: f32 = point.iter().zip(centre).map(|(a, b)| a * b).sum();
                    // Distance form (1 - cosine) so that smaller is nearer for both metrics.
                    1.0 - dot / (point_norm * norm(centre)).max(f32::MIN_POSITIVE)
                }
            };
            (score, c as u32)
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_well_separated_blobs() {
        let mut data = Vec::new();
        for blob in 0..3 {
            for i in 0..20 {
                data.push(blob as f32 * 10.0 + (i % 5) as f32 * 0.1);
                data.push(-(blob as f32) * 10.0 + (i % 3) as f32 * 0.1);
            }
        }
        let centres = kmeans(&data, 2, 3, 50, 1);
        assert_eq!(centres, kmeans(&data, 2, 3, 50, 1), "seeded");
        let mut xs: Vec<f32> = centres.chunks(2).map(|c| c[0]).collect();
        xs.sort_by(f32::total_cmp);
        for (x, expected) in xs.iter().zip([0.2f32, 10.2, 20.2]) {
            assert!((x - expected).abs() < 0.05, "{xs:?}");
        }
        for (i, point) in data.chunks(2).enumerate() {
            let c = nearest(point, &centres, 2, 1, LinkMetric::Euclidean)[0] as usize;
            assert!((centres[c * 2] - point[0]).abs() < 1.0, "point {i}");
        }
    }

    #[test]
    fn cosine_and_euclidean_rankings_can_differ() {
        let centres = [1.0f32, 0.0, 10.0, 1.0];
        let point = [2.0f32, 0.3];
        assert_eq!(
            nearest(&point, &centres, 2, 2, LinkMetric::Euclidean),
            vec![0, 1]
        );
        // cos(point, (10, 1)) > cos(point, (1, 0))
        assert_eq!(
            nearest(&point, &centres, 2, 2, LinkMetric::Cosine),
            vec![1, 0]
        );
        assert_eq!(nearest(&point, &centres, 2, 1, LinkMetric::Cosine), vec![1]);
    }
}
