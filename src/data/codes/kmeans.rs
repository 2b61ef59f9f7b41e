//! k-means with k-means++ initialisation (seeded), with tensor ops for the distance work, and
//! the top-K linking of items to centres.

use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use super::LinkMetric;

/// Squared Euclidean distances [n, c] between rows of `points` [n, d] and `centres` [c, d].
fn squared_distances(points: &Tensor, centres: &Tensor) -> Tensor {
    let pp = points.square().sum_dim_intlist(1, true, Kind::Float);
    let cc = centres
        .square()
        .sum_dim_intlist(1, true, Kind::Float)
        .transpose(0, 1);
    (pp - points.matmul(&centres.transpose(0, 1)) * 2.0 + cc).clamp_min(0.0)
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.to_kind(Kind::Float).contiguous().view([-1])).expect("float tensor")
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
    let points = Tensor::from_slice(data).view([n as i64, dim as i64]);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);

    // k-means++: the first centre uniformly, each further one with probability ∝ D².
    let mut chosen = vec![rng.random_range(0..n)];
    let mut nearest = to_vec(
        &squared_distances(&points, &points.get(chosen[0] as i64).unsqueeze(0)).squeeze_dim(1),
    );
    while chosen.len() < k {
        let next = match WeightedIndex::new(nearest.iter().map(|&d| f64::from(d))) {
            Ok(dist) => dist.sample(&mut rng),
            // All remaining distances are zero (duplicate points): take any unchosen point.
            Err(_) => (0..n).find(|i| !chosen.contains(i)).expect("k <= n"),
        };
        chosen.push(next);
        let d = to_vec(
            &squared_distances(&points, &points.get(next as i64).unsqueeze(0)).squeeze_dim(1),
        );
        for (a, b) in nearest.iter_mut().zip(d) {
            *a = a.min(b);
        }
    }
    let index = Tensor::from_slice(&chosen.iter().map(|&i| i as i64).collect::<Vec<_>>());
    let mut centres = points.index_select(0, &index);

    let mut assignment: Option<Tensor> = None;
    for _ in 0..max_iterations {
        let distances = squared_distances(&points, &centres);
        let (closest, labels) = distances.min_dim(1, false);
        if assignment.as_ref().is_some_and(|a| a.equal(&labels)) {
            break;
        }
        let sums = Tensor::zeros([k as i64, dim as i64], (Kind::Float, Device::Cpu))
            .index_add(0, &labels, &points);
        let counts = Tensor::zeros([k as i64], (Kind::Float, Device::Cpu)).index_add(
            0,
            &labels,
            &Tensor::ones([n as i64], (Kind::Float, Device::Cpu)),
        );
        let counts_vec = to_vec(&counts);
        let new_centres = sums / counts.clamp_min(1.0).unsqueeze(1);
        let mut far = to_vec(&closest);
        for (cluster, &count) in counts_vec.iter().enumerate() {
            if count == 0.0 {
                let farthest = far
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
                    .map(|(i, _)| i)
                    .expect("n >= 1");
                far[farthest] = -1.0;
                new_centres
                    .get(cluster as i64)
                    .copy_(&points.get(farthest as i64));
            }
        }
        centres = new_centres;
        assignment = Some(labels);
    }
    to_vec(&centres)
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
