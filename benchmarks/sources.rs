//! Raw-source throughput on Beauty-sized generated files (`cargo bench --bench sources`): the
//! meta parser (Python literals, 259,204 products), the ratings reader (2,023,070 rows), the
//! image-feature reader (20,000 records of 4,096 floats, 1 in 20 wanted) and the title encoder
//! (250,000 titles to 768 dimensions). The files (about 500 MB) are written once into a
//! temporary folder before the timed loops and removed after.

use std::io::Write;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mmsr_bench::prepare::features::text::encode_titles;
use mmsr_bench::prepare::sources::amazon::{
    image_features_for_items, read_interactions, titles_for_items,
};
use mmsr_bench::prepare::sources::image_features::{write_record, FEATURE_DIM};
use mmsr_bench::prepare::sources::registry::FileRole;

const PRODUCTS: usize = 259_204;
const RATINGS: usize = 2_023_070;
const IMAGES: usize = 20_000;
const TITLES: usize = 250_000;

fn write_meta(path: &Path) -> u64 {
    let mut enc = flate2::write::GzEncoder::new(
        std::io::BufWriter::new(std::fs::File::create(path).unwrap()),
        flate2::Compression::default(),
    );
    let mut bytes = 0u64;
    for i in 0..PRODUCTS {
        let related: Vec<String> = (0..40)
            .map(|k| format!("'B{:09}'", (i * 13 + k * 7919) % PRODUCTS))
            .collect();
        // Lines shaped like the real ones: related lists, categories, salesRank, escapes.
        let line = format!(
            "{{'asin': 'B{i:09}', 'title': 'Product {i} Hydrating \\'Gel\\' Cream with Vitamin E, 1.7 oz', 'price': 12.99, 'imUrl': 'http://ecx.images-amazon.com/images/I/51L%2BzYCQWSL._SX300_.jpg', 'related': {{'also_bought': [{}], 'also_viewed': [{}]}}, 'salesRank': {{'Beauty': {}}}, 'categories': [['Beauty', 'Skin Care', 'Face', 'Creams & Moisturizers']], 'description': 'A long description \\xe9 with escapes\\n and more text to make the line realistic in size.'}}\n",
            related.join(", "),
            related[..20].join(", "),
            i * 3
        );
        bytes += line.len() as u64;
        enc.write_all(line.as_bytes()).unwrap();
    }
    enc.finish().unwrap();
    bytes
}

fn write_ratings(path: &Path) -> u64 {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for r in 0..RATINGS {
        writeln!(
            w,
            "A{:013},B{:09},5.0,{}",
            (r * 7) % 1_210_271,
            (r * 13) % 249_274,
            1_300_000_000 + r
        )
        .unwrap();
    }
    drop(w);
    std::fs::metadata(path).unwrap().len()
}

fn write_images(path: &Path) -> u64 {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let vector: Vec<f32> = (0..FEATURE_DIM).map(|j| (7 + j) as f32 * 0.001).collect();
    for i in 0..IMAGES {
        write_record(&mut w, &format!("B{i:09}"), &vector).unwrap();
    }
    drop(w);
    std::fs::metadata(path).unwrap().len()
}

fn titles() -> Vec<Option<String>> {
    let words = [
        "hydrating",
        "gel",
        "cream",
        "vitamin",
        "serum",
        "oil",
        "brush",
        "matte",
        "lipstick",
        "shampoo",
        "organic",
        "argan",
        "nail",
        "polish",
        "eye",
        "liner",
        "waterproof",
        "mascara",
        "face",
        "mask",
    ];
    (0..TITLES)
        .map(|i| {
            let n = 4 + i % 8;
            let text: Vec<&str> = (0..n)
                .map(|k| words[(i * 7 + k * 13 + k * k) % words.len()])
                .collect();
            Some(format!("{} {} oz", text.join(" "), i % 17))
        })
        .collect()
}

fn sources(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let meta = dir.path().join("meta_Gen.json.gz");
    let ratings = dir.path().join("ratings_Gen.csv");
    let images = dir.path().join("image_features_Gen.b");
    let meta_bytes = write_meta(&meta);
    let ratings_bytes = write_ratings(&ratings);
    let image_bytes = write_images(&images);
    let meta_keys: Vec<String> = (0..PRODUCTS)
        .step_by(20)
        .map(|i| format!("B{i:09}"))
        .collect();
    let image_keys: Vec<String> = (0..IMAGES)
        .step_by(20)
        .map(|i| format!("B{i:09}"))
        .collect();

    let mut group = c.benchmark_group("sources");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(meta_bytes));
    group.bench_function("meta_titles_259204_products", |b| {
        b.iter(|| titles_for_items(&meta, &meta_keys).unwrap())
    });
    group.throughput(Throughput::Bytes(ratings_bytes));
    group.bench_function("ratings_2023070_rows", |b| {
        b.iter(|| read_interactions(&ratings, FileRole::Ratings).unwrap())
    });
    group.throughput(Throughput::Bytes(image_bytes));
    group.bench_function("image_features_20000_records", |b| {
        b.iter(|| image_features_for_items(&images, &image_keys).unwrap())
    });
    let titles = titles();
    group.throughput(Throughput::Elements(TITLES as u64));
    group.bench_function("encode_250000_titles_768d", |b| {
        b.iter(|| encode_titles(&titles, 768, mmsr_bench::DEFAULT_SEED).unwrap())
    });
    group.finish();
}

criterion_group!(benches, sources);
criterion_main!(benches);
