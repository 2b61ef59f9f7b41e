//! The raw-source building blocks of `prepare`, on generated Amazon-format fixtures: ratings ->
//! k-core -> ids, then titles and image features of the surviving items only; parse errors name
//! the file and line. An ignored test measures throughput on Beauty-sized generated files
//! (`cargo test --release --test sources_amazon -- --ignored --nocapture`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mmsr_bench::prepare::features::text::encode_titles;
use mmsr_bench::prepare::sources::amazon::{
    image_features_for_items, read_interactions, titles_for_items,
};
use mmsr_bench::prepare::sources::image_features::{write_record, FEATURE_DIM};
use mmsr_bench::prepare::sources::meta::for_each_meta;
use mmsr_bench::prepare::sources::registry::FileRole;

fn gz(path: &Path, text: &str) {
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
}

fn vector(seed: usize) -> Vec<f32> {
    (0..FEATURE_DIM)
        .map(|j| (seed * 7 + j) as f32 * 0.001)
        .collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    ratings: PathBuf,
    meta: PathBuf,
    images: PathBuf,
}

/// 4 users × items B..1-B..4 (2-core keeps them), plus B..9 rated once (dropped by the 2-core).
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ratings = dir.path().join("ratings_Test.csv");
    let mut csv = String::new();
    for u in 1..=4 {
        for i in 1..=4 {
            if (u + i) % 4 != 0 {
                csv.push_str(&format!("U{u},B00000000{i},5.0,{}\n", 1000 - u * 10 - i));
            }
        }
    }
    csv.push_str("U1,B000000009,1.0,5\n");
    std::fs::write(&ratings, csv).unwrap();

    let meta = dir.path().join("meta_Test.json.gz");
    gz(
        &meta,
        concat!(
            "{'asin': 'B000000009', 'title': 'Dropped by the k-core'}\n",
            "{'asin': 'B000000002', 'title': 'Salt &amp; Pepper \\'Mill\\'', 'related': {'also_bought': ['B000000001']}, 'salesRank': {'Home': 12}}\n",
            "{'asin': 'B000000001', 'imUrl': 'http://x/y.jpg', 'categories': [['Home', 'Kitchen']]}\n",
            "\n",
            "{'asin': 'B000000003', 'title': \"Chef's Knife\", 'price': 19.99}\n",
            "{'asin': 'B000000003', 'title': 'a duplicate, ignored'}\n",
            "{'asin': 'B000000004', 'title': None}\n",
            "{'asin': 'B000000777', 'title': 'not rated'}\n",
        ),
    );

    let images = dir.path().join("image_features_Test.b");
    let mut b = Vec::new();
    for (asin, seed) in [
        ("B000000777", 7),
        ("B000000003", 3),
        ("B000000001", 1),
        ("B000000009", 9),
        ("B000000003", 33),
    ] {
        write_record(&mut b, asin, &vector(seed)).unwrap();
    }
    let mut bad = vector(4);
    bad[17] = f32::NAN;
    write_record(&mut b, "B000000004", &bad).unwrap();
    std::fs::write(&images, b).unwrap();
    Fixture {
        _dir: dir,
        ratings,
        meta,
        images,
    }
}

#[test]
fn ratings_to_titles_and_image_features_of_surviving_items() {
    let f = fixture();
    let mut log = read_interactions(&f.ratings, FileRole::Ratings).unwrap();
    assert_eq!(log.rows.len(), 13);
    log.k_core(2);
    let data = log.into_dataset();
    assert_eq!(
        data.item_keys,
        ["B000000001", "B000000002", "B000000003", "B000000004"]
    );

    let (titles, tc) = titles_for_items(&f.meta, &data.item_keys).unwrap();
    assert_eq!(
        titles,
        [
            None,
            Some("Salt & Pepper 'Mill'".to_string()),
            Some("Chef's Knife".to_string()),
            None
        ]
    );
    assert_eq!(
        (
            tc.items,
            tc.in_meta,
            tc.with_title,
            tc.meta_products,
            tc.duplicates
        ),
        (4, 4, 2, 7, 1)
    );

    let (table, ic) = image_features_for_items(&f.images, &data.item_keys).unwrap();
    assert_eq!(table.dim, FEATURE_DIM);
    assert_eq!(table.present, [false, true, false, true, false]);
    assert_eq!(table.row(1).unwrap(), &vector(1)[..]);
    assert_eq!(
        table.row(3).unwrap(),
        &vector(3)[..],
        "the first record wins"
    );
    assert!(table.source.contains("image_features_Test.b"));
    assert_eq!(
        (
            ic.items,
            ic.with_vector,
            ic.records,
            ic.duplicates,
            ic.non_finite
        ),
        (4, 2, 6, 1, 1)
    );

    let text = encode_titles(&titles, 64, 2023).unwrap();
    assert_eq!(text.present, [false, false, true, true, false]);
}

#[test]
fn a_malformed_meta_line_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let meta = dir.path().join("meta_Bad.json.gz");
    gz(
        &meta,
        "{'asin': 'A', 'title': 'ok'}\n{'asin': 'B', 'title': 'broken}\n",
    );
    let e = for_each_meta(&meta, |_| {}).unwrap_err().to_string();
    assert!(
        e.contains(
            "meta_Bad.json.gz:2: not a valid meta record (column 24: unterminated string literal)"
        ),
        "{e}"
    );
    gz(&meta, "{'title': 'no asin'}\n");
    let e = for_each_meta(&meta, |_| {}).unwrap_err().to_string();
    assert!(
        e.contains("meta_Bad.json.gz:1: not a valid meta record (the dict has no 'asin' key)"),
        "{e}"
    );
    gz(
        &meta,
        "{'asin': 'A', 'title': __import__('os').system('true')}\n",
    );
    let e = for_each_meta(&meta, |_| {}).unwrap_err().to_string();
    assert!(e.contains("name \"__import__\" is not a literal"), "{e}");
}

/// Throughput on Beauty-sized generated files; prints the figures.
#[test]
#[ignore = "measurement: writes ~500 MB of generated files; run with --ignored --nocapture"]
fn throughput_on_generated_beauty_sized_files() {
    let dir = tempfile::tempdir().unwrap();
    let products = 259_204usize;
    // Meta: lines shaped like the real ones (related lists, categories, salesRank).
    let meta = dir.path().join("meta_Gen.json.gz");
    {
        let mut enc = flate2::write::GzEncoder::new(
            std::io::BufWriter::new(std::fs::File::create(&meta).unwrap()),
            flate2::Compression::default(),
        );
        for i in 0..products {
            let related: Vec<String> = (0..40)
                .map(|k| format!("'B{:09}'", (i * 13 + k * 7919) % products))
                .collect();
            writeln!(
                enc,
                "{{'asin': 'B{i:09}', 'title': 'Product {i} Hydrating \\'Gel\\' Cream with Vitamin E, 1.7 oz', 'price': 12.99, 'imUrl': 'http://ecx.images-amazon.com/images/I/51L%2BzYCQWSL._SX300_.jpg', 'related': {{'also_bought': [{}], 'also_viewed': [{}]}}, 'salesRank': {{'Beauty': {}}}, 'categories': [['Beauty', 'Skin Care', 'Face', 'Creams & Moisturizers']], 'description': 'A long description \\xe9 with escapes\\n and more text to make the line realistic in size.'}}",
                related.join(", "),
                related[..20].join(", "),
                i * 3
            )
            .unwrap();
        }
        enc.finish().unwrap();
    }
    let raw_len: u64 = {
        let mut r = flate2::read::MultiGzDecoder::new(std::fs::File::open(&meta).unwrap());
        std::io::copy(&mut r, &mut std::io::sink()).unwrap()
    };
    let keys: Vec<String> = (0..products)
        .step_by(20)
        .map(|i| format!("B{i:09}"))
        .collect();
    let t = Instant::now();
    let (_, cov) = titles_for_items(&meta, &keys).unwrap();
    let s = t.elapsed().as_secs_f64();
    println!(
        "meta: {products} lines, {:.0} MB decompressed, {:.2} s = {:.0} MB/s, {:.0}k lines/s ({} titles kept)",
        raw_len as f64 / 1e6,
        s,
        raw_len as f64 / 1e6 / s,
        products as f64 / 1e3 / s,
        cov.with_title
    );
    assert_eq!(cov.with_title, keys.len());

    // Ratings: 2,023,070 rows like ratings_Beauty.csv.
    let ratings = dir.path().join("ratings_Gen.csv");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&ratings).unwrap());
        for r in 0..2_023_070usize {
            writeln!(
                w,
                "A{:013},B{:09},5.0,{}",
                (r * 7) % 1_210_271,
                (r * 13) % 249_274,
                1_300_000_000 + r
            )
            .unwrap();
        }
    }
    let len = std::fs::metadata(&ratings).unwrap().len();
    let t = Instant::now();
    let log = read_interactions(&ratings, FileRole::Ratings).unwrap();
    let s = t.elapsed().as_secs_f64();
    println!(
        "ratings: {} rows, {:.0} MB, {:.2} s = {:.0} MB/s",
        log.rows.len(),
        len as f64 / 1e6,
        s,
        len as f64 / 1e6 / s
    );

    // Image features: 20,000 records (328 MB); 1 in 20 wanted.
    let images = dir.path().join("image_features_Gen.b");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&images).unwrap());
        let v = vector(1);
        for i in 0..20_000usize {
            write_record(&mut w, &format!("B{i:09}"), &v).unwrap();
        }
    }
    let len = std::fs::metadata(&images).unwrap().len();
    let keys: Vec<String> = (0..20_000)
        .step_by(20)
        .map(|i| format!("B{i:09}"))
        .collect();
    let t = Instant::now();
    let (_, ic) = image_features_for_items(&images, &keys).unwrap();
    let s = t.elapsed().as_secs_f64();
    println!(
        "image features: {} records, {:.0} MB, {:.2} s = {:.0} MB/s (page cache warm)",
        ic.records,
        len as f64 / 1e6,
        s,
        len as f64 / 1e6 / s
    );

    // Text encoder: 250k titles.
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
    let titles: Vec<Option<String>> = (0..250_000usize)
        .map(|i| {
            let n = 4 + i % 8;
            Some(
                (0..n)
                    .map(|k| words[(i * 7 + k * 13 + k * k) % words.len()])
                    .collect::<Vec<_>>()
                    .join(" ")
                    + &format!(" {} oz", i % 17),
            )
        })
        .collect();
    let t = Instant::now();
    let table = encode_titles(&titles, 768, 2023).unwrap();
    println!(
        "text encoder: {} titles -> 768-d in {:.2} s ({} threads)",
        table.coverage(),
        t.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
    drop(titles);
}
