//! Modality codes (spec §2.3–2.6): per modality, a linear autoencoder reduces the item features,
//! k-means (k-means++ initialisation) clusters them into `C` codes, and every item is linked to
//! its `K` nearest codes. Codes become graph nodes with global ids laid out after the items.

pub mod autoencoder;
pub mod kmeans;

use serde::{Deserialize, Serialize};
use tch::Device;

use super::prepared::{FeatureTable, ItemSideInfo, Modality};
use crate::graph::ItemBundles;

/// How items are linked to codes (spec §2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkMetric {
    /// Top-K cosine similarity to the centres (the design card's and reportedly the paper's).
    Cosine,
    /// K nearest centres by Euclidean distance (the official code's choice).
    Euclidean,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodeConfig {
    /// Codes per modality (`C`).
    pub clusters: usize,
    /// Codes linked to each item per modality (`K`).
    pub links: usize,
    pub metric: LinkMetric,
    /// Autoencoder bottleneck (the official 128).
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
            reduced_dim: 128,
            autoencoder_max_epochs: 500,
            autoencoder_learning_rate: 1e-3,
            autoencoder_batch_size: 256,
            kmeans_iterations: 100,
            seed: 2023,
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
}

impl CodeBook {
    pub fn linked_items(&self) -> usize {
        self.links.iter().filter(|l| !l.is_empty()).count()
    }
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

/// Builds the codes of one modality: autoencoder -> k-means -> top-K links.
pub fn build_codebook(
    features: &FeatureTable,
    config: &CodeConfig,
    device: Device,
    stream: u64,
) -> CodeBook {
    let present: Vec<usize> = (0..features.present.len())
        .filter(|&i| features.present[i])
        .collect();
    let rows: Vec<f32> = present
        .iter()
        .flat_map(|&i| features.row(i).expect("present").iter().copied())
        .collect();
    let seed = config.seed.wrapping_add(stream);
    let reduced = autoencoder::reduce(&rows, features.dim, config, device, seed);
    let dim = config.reduced_dim;
    let clusters = config.clusters.min(present.len()).max(1);
    let centres = kmeans::kmeans(&reduced, dim, clusters, config.kmeans_iterations, seed);
    let mut links = vec![Vec::new(); features.present.len()];
    for (row, &item) in present.iter().enumerate() {
        let point = &reduced[row * dim..(row + 1) * dim];
        links[item] = kmeans::nearest(
            point,
            &centres,
            dim,
            config.links.min(clusters),
            config.metric,
        );
    }
    CodeBook {
        num_codes: clusters,
        centres,
        centre_dim: dim,
        links,
    }
}

/// Codes for every modality that has features. Image and text use separate seed streams.
pub fn build_codes(side: &ItemSideInfo, config: &CodeConfig, device: Device) -> ModalityCodes {
    ModalityCodes {
        config: config.clone(),
        image: side
            .image
            .as_ref()
            .map(|f| build_codebook(f, config, device, 1)),
        text: side
            .text
            .as_ref()
            .map(|f| build_codebook(f, config, device, 2)),
    }
}
