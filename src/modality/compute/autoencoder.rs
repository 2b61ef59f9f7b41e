//! The linear autoencoder of spec §2.3: encoder `Linear(d_in -> r)` + sigmoid, decoder
//! `Linear(r -> d_in)`, MSE, Adam (lr 1e-3), mini-batches in item order (no shuffling), at most
//! `max_epochs`; every 10th epoch the summed loss is compared with the best so far and training
//! stops after 4 such checks without improvement. The reduced feature is the encoder output.
//!
//! Weights are drawn from a ChaCha stream (PyTorch's default Linear range, U(±1/sqrt(fan_in)))
//! instead of torch's global generator, so building codes never shifts a run's random stream.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{nn, Device, Kind, Tensor};

use crate::modality::codes::CodeConfig;
use crate::optim::Adam;

fn uniform(rng: &mut ChaCha8Rng, shape: &[i64], fan_in: i64, device: Device) -> Tensor {
    let bound = 1.0 / (fan_in as f64).sqrt();
    let count: i64 = shape.iter().product();
    let values: Vec<f32> = (0..count)
        .map(|_| rng.random_range(-bound..bound) as f32)
        .collect();
    Tensor::from_slice(&values).view(shape).to_device(device)
}

/// Reduces `rows` (row-major `[n, dim_in]`) to `[n, reduced_dim]` values in (0, 1).
pub fn reduce(
    rows: &[f32],
    dim_in: usize,
    config: &CodeConfig,
    device: Device,
    seed: u64,
) -> Vec<f32> {
    let n = (rows.len() / dim_in) as i64;
    let (d_in, r) = (dim_in as i64, config.reduced_dim as i64);
    let data = Tensor::from_slice(rows).view([n, d_in]).to_device(device);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let vs = nn::VarStore::new(device);
    let root = vs.root();
    let set = |name: &str, value: Tensor| root.var_copy(name, &value);
    let enc_w = set("enc_w", uniform(&mut rng, &[d_in, r], d_in, device));
    let enc_b = set("enc_b", uniform(&mut rng, &[r], d_in, device));
    let dec_w = set("dec_w", uniform(&mut rng, &[r, d_in], r, device));
    let dec_b = set("dec_b", uniform(&mut rng, &[d_in], r, device));
    let encode = |x: &Tensor| (x.matmul(&enc_w) + &enc_b).sigmoid();
    let mut adam = Adam::new(&vs, config.autoencoder_learning_rate, 0.0);
    let batch = config.autoencoder_batch_size.max(1) as i64;
    let (mut best, mut checks_without_gain) = (f64::INFINITY, 0);
    for epoch in 1..=config.autoencoder_max_epochs {
        let mut epoch_loss = 0.0;
        let mut start = 0;
        while start < n {
            let x = data.narrow(0, start, batch.min(n - start));
            let loss = (encode(&x).matmul(&dec_w) + &dec_b).mse_loss(&x, tch::Reduction::Mean);
            adam.backward_step(&loss);
            epoch_loss += loss.double_value(&[]);
            start += batch;
        }
        if epoch % 10 == 0 {
            if epoch_loss < best {
                best = epoch_loss;
                checks_without_gain = 0;
            } else {
                checks_without_gain += 1;
                if checks_without_gain >= 4 {
                    break;
                }
            }
        }
    }
    let reduced = tch::no_grad(|| encode(&data))
        .to_device(Device::Cpu)
        .to_kind(Kind::Float);
    Vec::<f32>::try_from(reduced.view([-1])).expect("float tensor")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduces_deterministically_into_the_unit_interval() {
        let rows: Vec<f32> = (0..40 * 6).map(|i| ((i * 37) % 11) as f32 / 5.0).collect();
        let config = CodeConfig {
            reduced_dim: 3,
            autoencoder_max_epochs: 30,
            ..CodeConfig::default()
        };
        let a = reduce(&rows, 6, &config, Device::Cpu, 5);
        let b = reduce(&rows, 6, &config, Device::Cpu, 5);
        assert_eq!(a.len(), 40 * 3);
        assert_eq!(a, b);
        assert!(a.iter().all(|&v| v > 0.0 && v < 1.0));
        assert_ne!(a, reduce(&rows, 6, &config, Device::Cpu, 6));
    }
}
