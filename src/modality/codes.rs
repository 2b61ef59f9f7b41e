//! Modality codes as runs read them (spec §2.4–2.6): per modality, `C` codes with their centres
//! and every item's `K` linked codes, plus the global node-id layout. How codes are computed
//! (autoencoder, k-means, linking) lives in `prepare::codes`.

use serde::{Deserialize, Serialize};

use super::Modality;

/// How items are linked to codes (spec §2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkMetric {
    /// Top-K cosine similarity to the centres (the design card's and reportedly the paper's).
    Cosine,
    /// K nearest centres by Euclidean distance (the official code's choice).
    Euclidean,
}

/// How item features are reduced to `reduced_dim` before clustering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reduction {
    /// The official linear autoencoder with a sigmoid bottleneck (spec §2.3), trained with
    /// libtorch: its output depends on the CPU's kernels in the last bits.
    Autoencoder,
    /// A seeded random linear projection of the centred features, squashed into (0, 1) with
    /// `0.5 + 0.5 y / (1 + |y|)`: plain Rust arithmetic, the same bits on every CPU. The default
    /// of the embedded `synthetic` dataset, whose bytes must not depend on the machine.
    Projection,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodeConfig {
    /// Codes per modality (`C`).
    pub clusters: usize,
    /// Codes linked to each item per modality (`K`).
    pub links: usize,
    pub metric: LinkMetric,
    pub reduction: Reduction,
    /// Dimension of the reduced features and centres (the official autoencoder bottleneck, 128).
    pub reduced_dim: usize,
    pub autoencoder_max_epochs: usize,
    pub autoencoder_learning_rate: f64,
    pub autoencoder_batch_size: usize,
    pub kmeans_iterations: usize,
    pub seed: u64,
}

impl Default for CodeConfig {
    fn default() -> Self {
        Self {
            clusters: 30,
            links: 3,
            metric: LinkMetric::Cosine,
            reduction: Reduction::Autoencoder,
            reduced_dim: 128,
            autoencoder_max_epochs: 500,
            autoencoder_learning_rate: 1e-3,
            autoencoder_batch_size: 256,
            kmeans_iterations: 100,
            seed: crate::DEFAULT_SEED,
        }
    }
}

/// The codes of one modality.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeBook {
    pub num_codes: usize,
    /// Row-major `[num_codes, centre_dim]` centres in the reduced space (they initialise the code
    /// embeddings); empty when the codes came without centres.
    pub centres: Vec<f32>,
    pub centre_dim: usize,
    /// Per item id (index 0 = padding): linked code indices `0..num_codes`, nearest first;
    /// empty for items without the modality.
    pub links: Vec<Vec<u32>>,
    /// The items' reduced features (what was clustered), row-major `[num_items + 1,
    /// reduced_dim]` by item id, zero rows for the padding and for items without the modality;
    /// empty when the codes came without them (official pickles, older prepared datasets).
    /// The fusion baselines read them as item vectors.
    pub reduced: Vec<f32>,
    /// Width of `reduced` (0: not stored).
    pub reduced_dim: usize,
}

impl CodeBook {
    pub fn linked_items(&self) -> usize {
        self.links.iter().filter(|l| !l.is_empty()).count()
    }

    /// The reduced feature vector of `item` (1-based), if stored and the item has the modality.
    pub fn reduced_vector(&self, item: usize) -> Option<&[f32]> {
        let dim = self.reduced_dim;
        let has = self.links.get(item).is_some_and(|l| !l.is_empty());
        (has && dim > 0 && self.reduced.len() >= (item + 1) * dim)
            .then(|| &self.reduced[item * dim..(item + 1) * dim])
    }
}

/// Global code ids linked to every item (index = item id; index 0 and items without the
/// modality have empty lists): what the graph builder reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ItemBundles {
    pub image: Vec<Vec<u32>>,
    pub text: Vec<Vec<u32>>,
}

/// Both modalities' codes of a dataset plus how they were made.
#[derive(Debug, Clone, PartialEq)]
pub struct ModalityCodes {
    pub config: CodeConfig,
    pub image: Option<CodeBook>,
    pub text: Option<CodeBook>,
}

/// The global node-id layout of spec §2.6: 0 padding, 1..=I items, then the image codes, then
/// the text codes (always offset by `C_img`, whatever the linking).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLayout {
    pub num_items: usize,
    pub image_codes: usize,
    pub text_codes: usize,
}

impl NodeLayout {
    pub fn image_offset(&self) -> usize {
        self.num_items + 1
    }

    pub fn text_offset(&self) -> usize {
        self.num_items + 1 + self.image_codes
    }

    pub fn table_rows(&self) -> usize {
        self.num_items + 1 + self.image_codes + self.text_codes
    }
}

impl ModalityCodes {
    pub fn book(&self, modality: Modality) -> Option<&CodeBook> {
        match modality {
            Modality::Image => self.image.as_ref(),
            Modality::Text => self.text.as_ref(),
        }
    }

    pub fn layout(&self, num_items: usize) -> NodeLayout {
        NodeLayout {
            num_items,
            image_codes: self.image.as_ref().map_or(0, |b| b.num_codes),
            text_codes: self.text.as_ref().map_or(0, |b| b.num_codes),
        }
    }

    /// Global code ids linked to each item, for the graph builder.
    pub fn item_bundles(&self, num_items: usize) -> ItemBundles {
        let layout = self.layout(num_items);
        let global = |book: Option<&CodeBook>, offset: usize| -> Vec<Vec<u32>> {
            (0..=num_items)
                .map(|item| {
                    book.and_then(|b| b.links.get(item))
                        .map(|links| links.iter().map(|&c| c + offset as u32).collect())
                        .unwrap_or_default()
                })
                .collect()
        };
        ItemBundles {
            image: global(self.image.as_ref(), layout.image_offset()),
            text: global(self.text.as_ref(), layout.text_offset()),
        }
    }
}
