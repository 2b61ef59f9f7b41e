//! A prepared dataset: ids, full histories, the fixed splits and optional item side information.

use serde::{Deserialize, Serialize};

use super::log::InteractionDataset;
use super::split::{split_sequences, SplitConfig, Splits};
use crate::modality::{ItemSideInfo, Modality, ModalityCodes};

/// How the interactions were filtered before the split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Human-readable description of the input (generator and seed, file names, ...).
    pub source: String,
    /// k of the iterative k-core filter that was applied (None: input used as is).
    pub k_core: Option<usize>,
    pub min_rating: Option<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PreparedDataset {
    pub name: String,
    pub provenance: Provenance,
    pub split_config: SplitConfig,
    pub interactions: InteractionDataset,
    pub splits: Splits,
    pub side: ItemSideInfo,
    /// Modality codes (graph code nodes); None until computed from the features.
    pub codes: Option<ModalityCodes>,
}

/// Summary counts, stored in the manifest and printed by `prepare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetCounts {
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    pub train_samples: usize,
    pub valid_samples: usize,
    pub test_samples: usize,
}

impl PreparedDataset {
    /// Splits `interactions` (already filtered and id-mapped) into train/validation/test.
    pub fn new(
        name: impl Into<String>,
        provenance: Provenance,
        interactions: InteractionDataset,
        split_config: SplitConfig,
        side: ItemSideInfo,
    ) -> Self {
        let splits = split_sequences(&interactions.sequences, &split_config);
        Self {
            name: name.into(),
            provenance,
            split_config,
            interactions,
            splits,
            side,
            codes: None,
        }
    }

    /// Where the data comes from and which modalities it has, as result files record it (so every
    /// table built from them can say when a modality is a stand-in or absent).
    /// The same dataset with its validation samples trained on (`--protocol official`), its
    /// source saying so; the content hash of the original still names the data.
    pub fn with_validation_trained(&self) -> PreparedDataset {
        let mut merged = self.clone();
        merged.splits = self.splits.with_validation_trained();
        merged.provenance.source = format!(
            "{}; its {} validation samples trained on (protocol official)",
            self.provenance.source,
            self.splits.valid.len()
        );
        merged
    }

    pub fn description(&self) -> String {
        let modalities: Vec<String> = Modality::ALL
            .iter()
            .filter_map(|&m| {
                let table = self.side.features(m)?;
                Some(format!("{} = {}", m.name(), table.source))
            })
            .collect();
        let books = self.codes.as_ref().map_or(0, |c| {
            usize::from(c.image.is_some()) + usize::from(c.text.is_some())
        });
        if modalities.is_empty() && books > 0 {
            format!(
                "{}; modalities: codes only ({books} code books, no feature vectors)",
                self.provenance.source
            )
        } else if modalities.is_empty() {
            format!(
                "{}; modalities: none (graph models run on the item sub-graph)",
                self.provenance.source
            )
        } else {
            format!(
                "{}; modalities: {}",
                self.provenance.source,
                modalities.join("; ")
            )
        }
    }

    pub fn num_items(&self) -> usize {
        self.interactions.num_items()
    }

    /// The part of each user's history a model may learn from: the train part without the
    /// validation target (so validation stays unseen), in time order.
    pub fn training_histories(&self) -> impl Iterator<Item = &[u32]> + '_ {
        self.interactions.sequences.iter().map(move |seq| {
            let train_len = seq.len() - self.split_config.test_len(seq.len());
            let visible = train_len.saturating_sub(usize::from(self.split_config.validation));
            &seq[..visible]
        })
    }

    pub fn counts(&self) -> DatasetCounts {
        DatasetCounts {
            users: self.interactions.num_users(),
            items: self.interactions.num_items(),
            interactions: self.interactions.num_interactions(),
            train_samples: self.splits.train.len(),
            valid_samples: self.splits.valid.len(),
            test_samples: self.splits.test.len(),
        }
    }
}
