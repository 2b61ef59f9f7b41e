//! A portable alternative to the autoencoder: a seeded random projection of the centred
//! features, squashed into (0, 1). Only IEEE additions, multiplications and divisions in a fixed
//! order, so the output is bit-identical on every CPU (no libm, no BLAS).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Reduces `rows` (row-major `[n, dim_in]`) to `[n, dim_out]` values in (0, 1).
pub fn reduce(rows: &[f32], dim_in: usize, dim_out: usize, seed: u64) -> Vec<f32> {
    let n = rows.len() / dim_in.max(1);
    let mut means = vec![0f64; dim_in];
    for row in rows.chunks(dim_in) {
        for (m, &x) in means.iter_mut().zip(row) {
            *m += f64::from(x);
        }
    }
    for m in &mut means {
        *m /= n.max(1) as f64;
    }
    // Uniform weights with variance 1 / dim_in: the projection of a unit-variance row has unit
    // variance, which the squashing maps to a useful part of (0, 1).
    let bound = (3.0 / dim_in as f64).sqrt();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let weights: Vec<f64> = (0..dim_in * dim_out)
        .map(|_| rng.random_range(-bound..bound))
        .collect();
    let mut out = Vec::with_capacity(n * dim_out);
    for row in rows.chunks(dim_in) {
        for j in 0..dim_out {
            let y: f64 = row
                .iter()
                .zip(&means)
                .enumerate()
                .map(|(i, (&x, m))| (f64::from(x) - m) * weights[i * dim_out + j])
                .sum();
            out.push((0.5 + 0.5 * y / (1.0 + y.abs())) as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_into_the_open_unit_interval_and_distance_preserving_enough() {
        let rows: Vec<f32> = (0..30 * 8).map(|i| ((i * 37) % 11) as f32 / 5.0).collect();
        let a = reduce(&rows, 8, 16, 3);
        assert_eq!(a.len(), 30 * 16);
        assert_eq!(a, reduce(&rows, 8, 16, 3));
        assert_ne!(a, reduce(&rows, 8, 16, 4));
        assert!(a.iter().all(|&v| v > 0.0 && v < 1.0));
        // identical rows stay identical, different rows differ
        let twins = [1.0f32, 2.0, 1.0, 2.0, 5.0, -1.0];
        let r = reduce(&twins, 2, 4, 1);
        assert_eq!(r[0..4], r[4..8]);
        assert_ne!(r[0..4], r[8..12]);
    }
}
