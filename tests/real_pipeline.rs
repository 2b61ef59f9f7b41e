//! Download + prepare end to end on raw-format fixtures built from the real Amazon Beauty data:
//! the ASIN sequences become a ratings CSV (item order, increasing timestamps per user, plus
//! rows the 5-core must remove), the real titles a Python-literal meta file, and seeded vectors
//! a small image-feature file. They are served on 127.0.0.1 (the ratings with a dropped
//! connection), fetched with `download --mirror` and prepared with `prepare`.

use crate::common;
use crate::common::http_server;

use std::collections::HashMap;
use std::io::Write;

use http_server::{Behavior, TestServer};
use mmsr_bench::dataset::store;
use mmsr_bench::prepare::sequence_file::read_sequence_file;
use mmsr_bench::prepare::sources::image_features::write_record;
use mmsr_bench::prepare::sources::recbole::read_item_fields;
use rand::{Rng, SeedableRng};

/// Python's `repr` of a str, as the Amazon meta files were written.
fn python_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

struct Fixtures {
    ratings: Vec<u8>,
    meta: Vec<u8>,
    images: Vec<u8>,
    sequences: HashMap<String, Vec<String>>,
    with_image: usize,
}

fn build_fixtures() -> Fixtures {
    let text = std::fs::read_to_string(common::shared_data("OpenP5/data/Beauty/user_sequence.txt"))
        .unwrap();
    let mut sequences = HashMap::new();
    let mut rows: Vec<(String, String, i64)> = Vec::new();
    for line in text.lines() {
        let mut tokens = line.split_whitespace();
        let user = tokens.next().unwrap().to_string();
        let items: Vec<String> = tokens.map(str::to_string).collect();
        for (p, item) in items.iter().enumerate() {
            rows.push((
                user.clone(),
                item.clone(),
                1_300_000_000 + p as i64 * 86_400,
            ));
        }
        sequences.insert(user, items);
    }
    let mut all_items: Vec<String> = sequences.values().flatten().cloned().collect();
    all_items.sort();
    all_items.dedup();
    // Noise the 5-core must remove: users with 3 ratings, items rated once.
    for u in 0..40 {
        for k in 0..3 {
            rows.push((
                format!("NOISEUSER{u:04}"),
                all_items[(u * 7 + k) % all_items.len()].clone(),
                1_400_000_000 + k as i64,
            ));
        }
    }
    for (k, user) in sequences.keys().take(25).enumerate() {
        rows.push((user.clone(), format!("Z{k:09}"), 1_500_000_000));
    }
    rows.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0))); // item order, as in the raw files
    let mut ratings = Vec::new();
    for (user, item, t) in &rows {
        writeln!(ratings, "{user},{item},5.0,{t}").unwrap();
    }

    let fields = read_item_fields(
        &common::shared_data("RecBole_SAE/dataset/Amazon_Beauty/Amazon_Beauty.item"),
        &["title", "categories", "price"],
    )
    .unwrap();
    let mut meta = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut asins: Vec<&String> = fields.keys().collect();
    asins.sort();
    for asin in asins {
        let v = &fields[asin];
        let mut line = format!("{{'asin': {}", python_repr(asin));
        if !v[0].is_empty() {
            line.push_str(&format!(", 'title': {}", python_repr(&v[0])));
        }
        line.push_str(&format!(", 'categories': [[{}]]", v[1]));
        if let Ok(price) = v[2].parse::<f64>() {
            line.push_str(&format!(", 'price': {price}"));
        }
        line.push_str(", 'related': {'also_bought': ['B000000000']}, 'salesRank': {'Beauty': 1}}");
        writeln!(meta, "{line}").unwrap();
    }
    writeln!(
        meta,
        "{{'asin': 'X000000001', 'title': 'not in the 5-core', 'imUrl': None}}"
    )
    .unwrap();
    let meta = meta.finish().unwrap();

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let mut images = Vec::new();
    let with_image = 300;
    let extra = ["X000000001".to_string(), "X000000002".to_string()];
    for asin in all_items
        .iter()
        .step_by(all_items.len() / with_image)
        .take(with_image)
        .chain(&extra)
    {
        let vector: Vec<f32> = (0..4096).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        write_record(&mut images, asin, &vector).unwrap();
    }
    Fixtures {
        ratings,
        meta,
        images,
        sequences,
        with_image,
    }
}

#[test]
fn download_and_prepare_real_beauty_interactions() {
    let f = build_fixtures();
    let cut = f.ratings.len() / 3;
    let server = TestServer::start(vec![
        (
            "/categoryFiles/ratings_Beauty.csv",
            f.ratings.clone(),
            Behavior::DropAfter {
                bytes: cut,
                times: 1,
            },
        ),
        (
            "/categoryFiles/meta_Beauty.json.gz",
            f.meta.clone(),
            Behavior::Normal,
        ),
        (
            "/image_features/categoryFiles/image_features_Beauty.b",
            f.images.clone(),
            Behavior::Normal,
        ),
    ]);
    let work = tempfile::tempdir().unwrap();
    let registry = work.path().join("registry");
    std::fs::create_dir(&registry).unwrap();
    // The fixtures are not the published files: a registry without sizes or checksums.
    common::blank_registry(&registry);
    let (reg, data) = (registry.to_str().unwrap(), work.path().join("data"));
    let data = data.to_str().unwrap();

    let out = common::mmsr(
        work.path(),
        &[
            "-q",
            "download",
            "beauty",
            "--mirror",
            &server.url(),
            "--registry",
            reg,
            "--data-dir",
            data,
            "--retries",
            "3",
        ],
    );
    assert!(out.status.success(), "download: {}", common::stderr(&out));
    let ranged = server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("ratings_Beauty.csv") && r.range.is_some())
        .count();
    assert_eq!(
        ranged, 1,
        "the dropped ratings download resumed with a Range request"
    );
    assert_eq!(
        std::fs::read(work.path().join("data/raw/beauty/ratings_Beauty.csv")).unwrap(),
        f.ratings
    );

    let out = common::mmsr(
        work.path(),
        &[
            "prepare",
            "beauty",
            "--registry",
            reg,
            "--data-dir",
            data,
            "--ae-max-epochs",
            "3",
            "--clusters",
            "8",
            "--device",
            "cpu",
        ],
    );
    let (stdout, stderr) = (common::stdout(&out), common::stderr(&out));
    assert!(out.status.success(), "prepare: {stderr}");
    assert!(
        stdout.contains("prepared beauty: 22363 users, 12101 items, 198502 interactions; 119834 train / 22363 validation / 33942 test samples"),
        "{stdout}"
    );
    assert!(
        !stderr.contains("WARNING"),
        "counts match the registry: {stderr}"
    );

    let prepared = store::load(&work.path().join("data/prepared/beauty")).unwrap();
    let keys = &prepared.interactions.item_keys;
    for (u, user) in prepared.interactions.user_keys.iter().enumerate() {
        let got: Vec<&str> = prepared.interactions.sequences[u]
            .iter()
            .map(|&i| keys[i as usize - 1].as_str())
            .collect();
        assert_eq!(
            got,
            f.sequences[user]
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            "user {user}"
        );
    }
    let titles = prepared.side.titles.iter().filter(|t| t.is_some()).count();
    assert_eq!(titles, 12_101 - 7, "RecBole has 7 empty titles");
    assert_eq!(prepared.side.text.as_ref().unwrap().coverage(), titles);
    assert_eq!(
        prepared.side.image.as_ref().unwrap().coverage(),
        f.with_image
    );
    let codes = prepared.codes.as_ref().unwrap();
    assert_eq!(codes.image.as_ref().unwrap().linked_items(), f.with_image);
    assert_eq!(codes.text.as_ref().unwrap().linked_items(), titles);

    // The same interactions as the sequence-file route.
    let direct = read_sequence_file(&common::shared_data("OpenP5/data/Beauty/user_sequence.txt"))
        .unwrap()
        .into_dataset();
    assert_eq!(direct.item_keys, prepared.interactions.item_keys);
    assert_eq!(direct.sequences, prepared.interactions.sequences);
}
