//! Computing modality codes (spec §2.3–2.5): per modality, a reduction (the linear autoencoder of
//! the official pipeline, or a seeded projection) maps the item features to `reduced_dim`,
//! k-means (k-means++ initialisation) clusters them into `C` codes, and every item is linked to
//! its `K` nearest codes. The resulting types are in [`super::codes`].

pub mod autoencoder;
pub mod kmeans;
pub mod projection;

use tch::Device;

use super::codes::{CodeBook, CodeConfig, ModalityCodes, Reduction};
use super::{FeatureTable, ItemSideInfo};
/// Builds the codes of one modality: reduction -> k-means -> top-K links. `None` when no item
/// has the modality (nothing to cluster): the modality is dropped, which callers report.
pub fn build_codebook(
    features: &FeatureTable,
    config: &CodeConfig,
    device: Device,
    stream: u64,
) -> Option<CodeBook> {
    let present: Vec<usize> = (0..features.present.len())
        .filter(|&i| features.present[i])
        .collect();
    if present.is_empty() {
        return None;
    }
    let rows: Vec<f32> = present
        .iter()
        .flat_map(|&i| features.row(i).expect("present").iter().copied())
        .collect();
    let seed = config.seed.wrapping_add(stream);
    let reduced = match config.reduction {
        Reduction::Autoencoder => autoencoder::reduce(&rows, features.dim, config, device, seed),
        Reduction::Projection => projection::reduce(&rows, features.dim, config.reduced_dim, seed),
    };
    let dim = config.reduced_dim;
    let clusters = config.clusters.min(present.len()).max(1);
    let centres = kmeans::kmeans(&reduced, dim, clusters, config.kmeans_iterations, seed);
    let mut links = vec![Vec::new(); features.present.len()];
    let mut by_item = vec![0f32; features.present.len() * dim];
    for (row, &item) in present.iter().enumerate() {
        let point = &reduced[row * dim..(row + 1) * dim];
        by_item[item * dim..(item + 1) * dim].copy_from_slice(point);
        links[item] = kmeans::nearest(
            point,
            &centres,
            dim,
            config.links.min(clusters),
            config.metric,
        );
    }
    Some(CodeBook {
        num_codes: clusters,
        centres,
        centre_dim: dim,
        links,
        reduced: by_item,
        reduced_dim: dim,
    })
}

/// Codes for every modality that some item has. Image and text use separate seed streams.
pub fn build_codes(side: &ItemSideInfo, config: &CodeConfig, device: Device) -> ModalityCodes {
    ModalityCodes {
        config: config.clone(),
        image: side
            .image
            .as_ref()
            .and_then(|f| build_codebook(f, config, device, 1)),
        text: side
            .text
            .as_ref()
            .and_then(|f| build_codebook(f, config, device, 2)),
    }
}
