//! Hand-made raw Beauty files for `prepare` tests (ratings, meta titles, image features); the
//! including test declares `mod common`.

use std::io::Write;
use std::path::Path;

use mmsr_bench::prepare::sources::image_features::write_record;

/// Raw Beauty files in `<work>/data/raw/beauty`: `ratings` rows, titles for items B0..B5, and
/// image features for `image_asins`; plus a registry without checksums in `<work>/reg`.
pub fn raw_files(work: &Path, ratings: &str, image_asins: &[&str]) {
    let raw = work.join("data/raw/beauty");
    std::fs::create_dir_all(&raw).unwrap();
    std::fs::create_dir_all(work.join("reg")).unwrap();
    crate::common::blank_registry(&work.join("reg"));
    std::fs::write(raw.join("ratings_Beauty.csv"), ratings).unwrap();
    let mut meta = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for i in 0..6 {
        writeln!(
            meta,
            "{{'asin': 'B00000000{i}', 'title': 'Item number {i}'}}"
        )
        .unwrap();
    }
    std::fs::write(raw.join("meta_Beauty.json.gz"), meta.finish().unwrap()).unwrap();
    let mut b = Vec::new();
    for asin in image_asins {
        write_record(&mut b, asin, &[0.5; 8]).unwrap();
    }
    std::fs::write(raw.join("image_features_Beauty.b"), b).unwrap();
}
