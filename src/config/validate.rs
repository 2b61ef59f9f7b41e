//! Validation of an experiment before anything runs: every setting in its range, and every
//! count that sizes a loop or an allocation bounded from above as well as below (the limits and
//! their reasons are in the messages).

use super::*;

impl ExperimentConfig {
    /// Rejects settings no run could use, naming the field, its value and the allowed range
    /// (model parameters are checked by each model's resolver).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (t, e) = (&self.train, &self.eval);
        let batch = format!(
            "between 1 and {MAX_BATCH_SIZE} (the official batch is 128; a batch scores every item at once, [batch, items] floats: 0.8 GB on Beauty at the limit)"
        );
        require(
            (1..=MAX_BATCH_SIZE).contains(&t.batch_size),
            "train.batch_size",
            t.batch_size,
            &batch,
        )?;
        require(
            (1..=MAX_BATCH_SIZE).contains(&e.batch_size),
            "eval.batch_size",
            e.batch_size,
            &batch,
        )?;
        require(
            (1..=MAX_EPOCHS).contains(&t.max_epochs),
            "train.max_epochs",
            t.max_epochs,
            &format!("between 1 and {MAX_EPOCHS} (the official Beauty run stopped after 19 epochs; each epoch is a full pass over the training samples)"),
        )?;
        require(
            (1..=MAX_EPOCHS).contains(&t.patience),
            "train.patience",
            t.patience,
            &format!("between 1 and {MAX_EPOCHS} (the limit of train.max_epochs; the official patience is 8)"),
        )?;
        require(t.lr_step >= 1, "train.lr_step", t.lr_step, "at least 1")?;
        require(
            positive(t.learning_rate),
            "train.learning_rate",
            t.learning_rate,
            "a positive number",
        )?;
        require(
            positive(t.lr_gamma),
            "train.lr_gamma",
            t.lr_gamma,
            "a positive number",
        )?;
        require(
            non_negative(t.weight_decay),
            "train.weight_decay",
            t.weight_decay,
            "0 or more",
        )?;
        require(
            !e.ks.is_empty() && e.ks.iter().all(|k| (1..=MAX_K).contains(k)),
            "eval.ks",
            format!("{:?}", e.ks),
            &format!("a non-empty list of cut-offs between 1 and {MAX_K}"),
        )?;
        require(
            e.ks.len() <= MAX_KS,
            "eval.ks",
            format!("a list of {} cut-offs", e.ks.len()),
            &format!("at most {MAX_KS} cut-offs (the default has 3; each is three metrics of every sample and every result)"),
        )?;
        for (field, len) in [
            ("models", self.models.len()),
            ("datasets", self.datasets.len()),
            ("seeds", self.seeds.len()),
        ] {
            require(
                len <= MAX_MATRIX_LIST,
                field,
                format!("a list of {len}"),
                &format!("at most {MAX_MATRIX_LIST} entries (the runs are models × datasets × seeds: more is a typo, not an experiment)"),
            )?;
        }
        if let Some(official) = &self.official {
            require(
                (0.0..1.0).contains(&official.validation_share),
                "official.validation_share",
                official.validation_share,
                "a share in [0, 1) (0.1 holds out 10 %)",
            )?;
        }
        if t.protocol == crate::config::Protocol::Official {
            require(
                e.ks.contains(&5) && e.ks.contains(&20),
                "eval.ks",
                format!("{:?}", e.ks),
                "a list holding 5 and 20 under protocol official (its stopping rule watches both)",
            )?;
        }
        require(
            e.ks.contains(&t.selection_k),
            "train.selection_k",
            t.selection_k,
            &format!("one of eval.ks {:?}", e.ks),
        )?;
        if let Some(sweep) = &self.missing_modality {
            require(
                (1..=3).contains(&sweep.drop.len()),
                "missing_modality.drop",
                format!("a list of {}", sweep.drop.len()),
                "a non-empty list of image, text, both (at most 3 entries)",
            )?;
            require(
                sweep.rates.len() <= MAX_MATRIX_LIST,
                "missing_modality.rates",
                format!("a list of {}", sweep.rates.len()),
                &format!("at most {MAX_MATRIX_LIST} rates (every rate repeats every run)"),
            )?;
            require(
                !sweep.rates.is_empty()
                    && sweep
                        .rates
                        .iter()
                        .all(|&r| MissingModality::rate_is_valid(r)),
                "missing_modality.rates",
                format!("{:?}", sweep.rates),
                "a non-empty list of drop rates in [0, 1]",
            )?;
            if let Some(train) = sweep.train_rate {
                require(
                    MissingModality::rate_is_valid(train),
                    "missing_modality.train_rate",
                    train,
                    "a drop rate in [0, 1]",
                )?;
            }
        }
        self.validate_synthetic()
    }

    fn validate_synthetic(&self) -> Result<(), ConfigError> {
        let s = &self.synthetic;
        let population = format!("between 1 and {MAX_SYNTHETIC_POPULATION} (Amazon's largest 5-core category, Books, has 600,000 users; the generator holds everything in memory)");
        require(
            (1..=MAX_SYNTHETIC_POPULATION).contains(&s.users),
            "synthetic.users",
            s.users,
            &population,
        )?;
        require(
            (1..=MAX_SYNTHETIC_TOPICS).contains(&s.topics),
            "synthetic.topics",
            s.topics,
            &format!("between 1 and {MAX_SYNTHETIC_TOPICS} (the topic transitions are a topics × topics table)"),
        )?;
        require(
            (s.topics..=MAX_SYNTHETIC_POPULATION).contains(&s.items),
            "synthetic.items",
            s.items,
            &format!(
                "at least synthetic.topics ({}) and at most {MAX_SYNTHETIC_POPULATION} (Amazon's largest 5-core category, Books, has 370,000 items; the generator holds everything in memory)",
                s.topics
            ),
        )?;
        for (field, value) in [
            ("synthetic.latent_dim", s.latent_dim),
            ("synthetic.image_dim", s.image_dim),
            ("synthetic.text_dim", s.text_dim),
        ] {
            require(
                (1..=MAX_DIM).contains(&value),
                field,
                value,
                &format!("between 1 and {MAX_DIM} (the Amazon image features have 4096)"),
            )?;
        }
        let features = s.items.saturating_mul(s.image_dim + s.text_dim);
        require(
            features <= MAX_SYNTHETIC_FEATURES,
            "synthetic.items × (image_dim + text_dim)",
            features,
            &format!("at most {MAX_SYNTHETIC_FEATURES} (the feature tables hold that many floats: 1 GiB)"),
        )?;
        require(
            (1..=MAX_SEQUENCE_LEN).contains(&s.min_len),
            "synthetic.min_len",
            s.min_len,
            &format!("between 1 and {MAX_SEQUENCE_LEN} (the limit of synthetic.max_len)"),
        )?;
        require(
            (s.min_len..=MAX_SEQUENCE_LEN).contains(&s.max_len),
            "synthetic.max_len",
            s.max_len,
            &format!(
                "at least synthetic.min_len ({}) and at most {MAX_SEQUENCE_LEN} (Beauty's longest history has 204 items)",
                s.min_len
            ),
        )?;
        let log = s.users.saturating_mul(s.max_len);
        require(
            log <= MAX_SYNTHETIC_INTERACTIONS,
            "synthetic.users × max_len",
            log,
            &format!("at most {MAX_SYNTHETIC_INTERACTIONS} (the generated log holds up to that many interactions)"),
        )?;
        require(
            non_negative(s.mean_extra_len) && s.mean_extra_len <= MAX_SEQUENCE_LEN as f64,
            "synthetic.mean_extra_len",
            s.mean_extra_len,
            &format!("a number between 0 and {MAX_SEQUENCE_LEN} (the lengths are capped at synthetic.max_len anyway)"),
        )?;
        for (field, value) in [
            ("synthetic.item_spread", s.item_spread),
            ("synthetic.image_noise", s.image_noise),
            ("synthetic.text_noise", s.text_noise),
            ("synthetic.popularity_exponent", s.popularity_exponent),
        ] {
            require(
                non_negative(value),
                field,
                value,
                "a finite number, 0 or more",
            )?;
        }
        for (field, value) in [
            ("synthetic.missing_share", s.missing_share),
            ("synthetic.follow_prob", s.follow_prob),
        ] {
            require(
                (0.0..=1.0).contains(&value),
                field,
                value,
                "between 0 and 1",
            )?;
        }
        let c = &s.codes;
        require(
            (1..=s.items).contains(&c.clusters),
            "synthetic.codes.clusters",
            c.clusters,
            &format!(
                "between 1 and synthetic.items ({}) (k-means makes at most one cluster per item)",
                s.items
            ),
        )?;
        require(
            (1..=c.clusters).contains(&c.links),
            "synthetic.codes.links",
            c.links,
            &format!("between 1 and synthetic.codes.clusters ({})", c.clusters),
        )?;
        require(
            (1..=MAX_DIM).contains(&c.reduced_dim),
            "synthetic.codes.reduced_dim",
            c.reduced_dim,
            &format!("between 1 and {MAX_DIM} (the official bottleneck is 128)"),
        )?;
        require(
            (1..=MAX_ITERATIONS).contains(&c.kmeans_iterations),
            "synthetic.codes.kmeans_iterations",
            c.kmeans_iterations,
            &format!("between 1 and {MAX_ITERATIONS} (k-means converges in tens)"),
        )?;
        require(
            c.autoencoder_max_epochs <= MAX_ITERATIONS,
            "synthetic.codes.autoencoder_max_epochs",
            c.autoencoder_max_epochs,
            &format!("at most {MAX_ITERATIONS} (the official autoencoder trains 500)"),
        )?;
        require(
            (1..=1 << 24).contains(&c.autoencoder_batch_size),
            "synthetic.codes.autoencoder_batch_size",
            c.autoencoder_batch_size,
            "between 1 and 16777216",
        )?;
        require(
            positive(c.autoencoder_learning_rate),
            "synthetic.codes.autoencoder_learning_rate",
            c.autoencoder_learning_rate,
            "a positive number",
        )
    }
}

/// The largest cut-off K accepted (the official NDCG's normaliser costs O(K)).
pub const MAX_K: usize = 1_000_000;
/// The most cut-offs in `eval.ks` (the default has 3: 5, 10, 20).
pub const MAX_KS: usize = 32;
/// The most epochs (and the largest patience): the official Beauty run stopped after 19.
pub const MAX_EPOCHS: usize = 10_000;
/// The largest training and evaluation batch (the official batch is 128).
pub const MAX_BATCH_SIZE: usize = 16_384;
/// The most models, datasets, seeds or missing-modality rates of one experiment.
pub const MAX_MATRIX_LIST: usize = 1_000;
/// The most synthetic users, and items.
pub const MAX_SYNTHETIC_POPULATION: usize = 1_000_000;
/// The most synthetic topics (a topics × topics transition table).
pub const MAX_SYNTHETIC_TOPICS: usize = 4_096;
/// The largest feature, latent and reduced dimension of the synthetic generator.
pub const MAX_DIM: usize = 4_096;
/// The most floats of the synthetic feature tables, items × (image_dim + text_dim): 2^28.
pub const MAX_SYNTHETIC_FEATURES: usize = 1 << 28;
/// The longest synthetic history.
pub const MAX_SEQUENCE_LEN: usize = 10_000;
/// The most interactions of the synthetic log, users × max_len.
pub const MAX_SYNTHETIC_INTERACTIONS: usize = 50_000_000;
/// The most k-means iterations and autoencoder epochs of the code construction.
pub const MAX_ITERATIONS: usize = 10_000;
/// The most modality codes per modality (`prepare --clusters`; k-means keeps clusters × features
/// centres and items × clusters distances).
pub const MAX_CLUSTERS: usize = 10_000;

fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

fn non_negative(x: f64) -> bool {
    x.is_finite() && x >= 0.0
}

/// One range check: `field = value` must be `allowed`; the error names all three.
pub fn require(
    ok: bool,
    field: &str,
    value: impl std::fmt::Display,
    allowed: &str,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid(format!(
            "{field} = {value} is out of range: it must be {allowed}"
        )))
    }
}
