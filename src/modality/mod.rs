//! Item modalities (spec §2): per-item feature tables, the modality codes clustered from them
//! and linked to items, and the computation of those codes (`compute`: reduction, k-means,
//! top-K links). Both `dataset` (the synthetic generator, the importer, the store) and `prepare`
//! build on it, so it sits below both.
pub mod codes;
pub mod compute;

use serde::{Deserialize, Serialize};

pub use codes::{
    CodeBook, CodeConfig, ItemBundles, LinkMetric, ModalityCodes, NodeLayout, Reduction,
};

/// The two modalities of MMSR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    Image,
    Text,
}

impl Modality {
    pub const ALL: [Modality; 2] = [Modality::Image, Modality::Text];

    pub fn name(self) -> &'static str {
        match self {
            Modality::Image => "image",
            Modality::Text => "text",
        }
    }
}

/// Per-item feature vectors of one modality. Row `i` belongs to item id `i`; row 0 is padding.
/// Items without the modality have `present[i] == false` and a zero row.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureTable {
    pub dim: usize,
    pub values: Vec<f32>,
    pub present: Vec<bool>,
    /// Where the vectors come from (e.g. "synthetic generator", "caffe fc7 from image_features_Beauty.b").
    pub source: String,
}

impl FeatureTable {
    /// An all-missing table for `num_items` items.
    pub fn empty(num_items: usize, dim: usize, source: impl Into<String>) -> Self {
        Self {
            dim,
            values: vec![0.0; (num_items + 1) * dim],
            present: vec![false; num_items + 1],
            source: source.into(),
        }
    }

    pub fn set(&mut self, item: usize, vector: &[f32]) {
        assert_eq!(vector.len(), self.dim, "feature dimension mismatch");
        self.values[item * self.dim..(item + 1) * self.dim].copy_from_slice(vector);
        self.present[item] = true;
    }

    pub fn row(&self, item: usize) -> Option<&[f32]> {
        self.present[item].then(|| &self.values[item * self.dim..(item + 1) * self.dim])
    }

    pub fn coverage(&self) -> usize {
        self.present.iter().filter(|&&p| p).count()
    }
}

/// Optional side information per item (aligned with item ids).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ItemSideInfo {
    /// `titles[i - 1]` for item `i`; empty when the source has no titles.
    pub titles: Vec<Option<String>>,
    pub image: Option<FeatureTable>,
    pub text: Option<FeatureTable>,
}

impl ItemSideInfo {
    pub fn features(&self, modality: Modality) -> Option<&FeatureTable> {
        match modality {
            Modality::Image => self.image.as_ref(),
            Modality::Text => self.text.as_ref(),
        }
    }
}
