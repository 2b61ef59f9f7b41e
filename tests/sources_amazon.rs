//! The raw-source building blocks of `prepare`, on generated Amazon-format fixtures: ratings ->
//! k-core -> ids, then titles and image features of the surviving items only; parse errors name
//! the file and line. Throughput on Beauty-sized files is a benchmark (`cargo bench --bench sources`).

use std::io::Write;
use std::path::{Path, PathBuf};

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

    let text = encode_titles(&titles, 64, mmsr_bench::DEFAULT_SEED).unwrap();
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
