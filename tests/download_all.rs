//! `download all` + `prepare` for each of the six categories, as a user with network runs them
//! (docs/paper.md), against raw-format fixtures served on 127.0.0.1.
//!
//! Each category gets its own small raw files under the registry's real file names: a ratings
//! CSV in item order (the raw files' order) holding a 5-core of hand-laid sequences plus rows
//! the 5-core must remove, a gzipped Python-literal meta file (some titles missing), and an
//! image-feature file covering part of the items. The registry entries are the committed ones
//! with sizes and checksums blanked (the fixtures are not the published files) and the expected
//! counts set to the fixture's, computed here by hand from the sequences and the split rule
//! (spec §1.3), so `prepare` must reach them without a count warning.

use crate::common;
use crate::common::http_server::{Behavior, TestServer};

use std::io::Write;
use std::path::Path;

use mmsr_bench::dataset::store;
use mmsr_bench::prepare::sources::image_features::{write_record, FEATURE_DIM};

/// The six datasets and their Amazon-2014 category stems (the registry's file names).
const CATEGORIES: [(&str, &str); 6] = [
    ("beauty", "Beauty"),
    ("clothing", "Clothing_Shoes_and_Jewelry"),
    ("sport", "Sports_and_Outdoors"),
    ("toy", "Toys_and_Games"),
    ("kitchen", "Home_and_Kitchen"),
    ("phone", "Cell_Phones_and_Accessories"),
];

const WORDS: [&str; 12] = [
    "red", "compact", "steel", "cotton", "travel", "classic", "mini", "pro", "soft", "family",
    "outdoor", "glass",
];

/// The counts `prepare` must report for a fixture: 5-core survivors and the user-ratio split
/// (per user of n items: floor(0.2 n) test targets, n - 1 - floor(0.2 n) training targets
/// before the validation carve-out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expected {
    users: usize,
    items: usize,
    interactions: usize,
    train_samples: usize,
    test_samples: usize,
}

struct Fixture {
    name: &'static str,
    stem: &'static str,
    ratings: Vec<u8>,
    meta: Vec<u8>,
    images: Vec<u8>,
    /// The 5-core's sequences by user key, oldest first, in item keys.
    sequences: Vec<(String, Vec<String>)>,
    with_title: usize,
    with_image: usize,
    expected: Expected,
}

fn asin(category: usize, item: usize) -> String {
    format!("B{category:02}{item:07}")
}

/// A fixture of `users` users over `items` items (items prime, stride 3: no repeats in a
/// history of up to `items` items), histories of 5 to 10 items that differ per category.
fn build(category: usize, users: usize, items: usize) -> Fixture {
    let (name, stem) = CATEGORIES[category];
    let mut sequences: Vec<(String, Vec<String>)> = Vec::new();
    let mut rows: Vec<(String, String, i64)> = Vec::new();
    let mut item_uses = vec![0usize; items];
    for u in 0..users {
        let user = format!("A{category}{u:012}");
        let n = 5 + (u * 7 + category) % 6;
        let start = (u * 5 + category) % items;
        let history: Vec<usize> = (0..n).map(|j| (start + 3 * j) % items).collect();
        for (j, &item) in history.iter().enumerate() {
            item_uses[item] += 1;
            rows.push((
                user.clone(),
                asin(category, item),
                1_300_000_000 + j as i64 * 86_400 + u as i64,
            ));
        }
        sequences.push((user, history.iter().map(|&i| asin(category, i)).collect()));
    }
    assert!(
        item_uses.iter().all(|&c| c >= 5),
        "the laid-out sequences are a 5-core: {item_uses:?}"
    );
    let interactions: usize = sequences.iter().map(|(_, s)| s.len()).sum();
    let test: usize = sequences.iter().map(|(_, s)| s.len() / 5).sum();
    let expected = Expected {
        users,
        items,
        interactions,
        train_samples: interactions - test - users,
        test_samples: test,
    };

    // Rows the 5-core removes: users with 3 ratings, items rated once (by kept users).
    for noise in 0..4 {
        for k in 0..3 {
            rows.push((
                format!("AX{category}{noise:011}"),
                asin(category, (noise * 4 + k) % items),
                1_400_000_000 + k as i64,
            ));
        }
    }
    for (k, (user, _)) in sequences.iter().take(3).enumerate() {
        rows.push((user.clone(), format!("Z{category:02}{k:07}"), 1_500_000_000));
    }
    rows.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    let mut ratings = Vec::new();
    for (user, item, t) in &rows {
        writeln!(ratings, "{user},{item},{}.0,{t}", 1 + t % 5).unwrap();
    }

    let mut meta = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut with_title = 0;
    for item in 0..items {
        let mut line = format!("{{'asin': '{}'", asin(category, item));
        if item % 7 != 3 {
            with_title += 1;
            line.push_str(&format!(
                ", 'title': \"{} {} {stem} item's {item}\"",
                WORDS[item % WORDS.len()],
                WORDS[(item * 5 + category) % WORDS.len()],
            ));
        }
        line.push_str(&format!(
            ", 'salesRank': {{'{stem}': {}}}, 'categories': [['{stem}']], 'related': {{'also_bought': ['{}']}}}}",
            1000 + item,
            asin(category, (item + 1) % items)
        ));
        writeln!(meta, "{line}").unwrap();
    }
    writeln!(
        meta,
        "{{'asin': 'Z{category:02}0000000', 'title': 'rated once', 'imUrl': None}}"
    )
    .unwrap();
    let meta = meta.finish().unwrap();

    let mut images = Vec::new();
    let mut with_image = 0;
    for item in (0..items).filter(|i| i % 4 != 1) {
        with_image += 1;
        let vector: Vec<f32> = (0..FEATURE_DIM)
            .map(|j| (((item * 31 + j * 7 + category) % 97) as f32 - 48.0) / 48.0)
            .collect();
        write_record(&mut images, &asin(category, item), &vector).unwrap();
    }
    write_record(
        &mut images,
        &format!("Z{category:02}0000001"),
        &vec![0.5; FEATURE_DIM],
    )
    .unwrap();

    Fixture {
        name,
        stem,
        ratings,
        meta,
        images,
        sequences,
        with_title,
        with_image,
        expected,
    }
}

/// The committed registry entry of `name` with sizes and checksums blanked and the expected
/// counts set to `expected`.
fn fixture_registry(dir: &Path, name: &str, expected: Expected) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("datasets/{name}.yaml")),
    )
    .unwrap();
    let counts = [
        ("users:", expected.users),
        ("items:", expected.items),
        ("interactions:", expected.interactions),
        ("train_samples:", expected.train_samples),
        ("test_samples:", expected.test_samples),
    ];
    let mut replaced = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let t = line.trim_start();
            let indent = &line[..line.len() - t.len()];
            if t.starts_with("size:") {
                format!("{indent}size: null")
            } else if t.starts_with("sha256:") {
                format!("{indent}sha256: null")
            } else if let Some((key, value)) = counts.iter().find(|(key, _)| t.starts_with(key)) {
                replaced += 1;
                format!("{indent}{key} {value}")
            } else {
                line.to_string()
            }
        })
        .collect();
    assert_eq!(replaced, 5, "{name}.yaml has the five expected counts");
    std::fs::write(dir.join(format!("{name}.yaml")), lines.join("\n") + "\n").unwrap();
}

#[test]
fn download_all_then_prepare_each_of_the_six_categories() {
    let fixtures: Vec<Fixture> = (0..CATEGORIES.len())
        .map(|c| build(c, 40 + 4 * c, [31, 37, 41, 43, 47, 53][c]))
        .collect();
    let work = tempfile::tempdir().unwrap();
    let registry = work.path().join("registry");
    std::fs::create_dir(&registry).unwrap();
    let mut routes = Vec::new();
    for f in &fixtures {
        fixture_registry(&registry, f.name, f.expected);
        // One file of each kind fails once and must be retried or resumed.
        let flaky = |kind: &str| match (f.name, kind) {
            ("clothing", "ratings") => Behavior::DropAfter {
                bytes: f.ratings.len() / 2,
                times: 1,
            },
            ("phone", "meta") => Behavior::Status {
                code: 503,
                times: 1,
            },
            _ => Behavior::Normal,
        };
        let stem = f.stem;
        routes.push((
            format!("/categoryFiles/ratings_{stem}.csv"),
            f.ratings.clone(),
            flaky("ratings"),
        ));
        routes.push((
            format!("/categoryFiles/meta_{stem}.json.gz"),
            f.meta.clone(),
            flaky("meta"),
        ));
        routes.push((
            format!("/image_features/categoryFiles/image_features_{stem}.b"),
            f.images.clone(),
            Behavior::Normal,
        ));
    }
    let server = TestServer::start(
        routes
            .iter()
            .map(|(path, body, behavior)| (path.as_str(), body.clone(), behavior.clone()))
            .collect(),
    );
    let (reg, data) = (
        registry.to_str().unwrap(),
        work.path().join("data").to_str().unwrap().to_string(),
    );

    let out = common::mmsr(
        work.path(),
        &[
            "-q",
            "download",
            "all",
            "--mirror",
            &server.url(),
            "--registry",
            reg,
            "--data-dir",
            &data,
            "--retries",
            "3",
        ],
    );
    assert!(
        out.status.success(),
        "download all: {}",
        common::stderr(&out)
    );
    let requests = server.requests();
    for f in &fixtures {
        let raw = work.path().join("data/raw").join(f.name);
        for (file, body) in [
            (format!("ratings_{}.csv", f.stem), &f.ratings),
            (format!("meta_{}.json.gz", f.stem), &f.meta),
            (format!("image_features_{}.b", f.stem), &f.images),
        ] {
            assert_eq!(&std::fs::read(raw.join(&file)).unwrap(), body, "{file}");
        }
        assert!(
            !requests.iter().any(|r| r.path.contains("reviews_")),
            "the optional reviews files are not fetched by default"
        );
    }
    let resumed = requests
        .iter()
        .filter(|r| r.path.ends_with("ratings_Clothing_Shoes_and_Jewelry.csv") && r.range.is_some())
        .count();
    assert_eq!(
        resumed, 1,
        "the dropped clothing ratings resumed with a Range request"
    );
    let phone_meta = requests
        .iter()
        .filter(|r| r.path.ends_with("meta_Cell_Phones_and_Accessories.json.gz"))
        .count();
    assert_eq!(
        phone_meta, 2,
        "the 503 on phone's meta file was retried once"
    );

    for f in &fixtures {
        let out = common::mmsr(
            work.path(),
            &[
                "prepare",
                f.name,
                "--registry",
                reg,
                "--data-dir",
                &data,
                "--ae-max-epochs",
                "3",
                "--clusters",
                "4",
                "--device",
                "cpu",
            ],
        );
        let (stdout, stderr) = (common::stdout(&out), common::stderr(&out));
        assert!(out.status.success(), "prepare {}: {stderr}", f.name);
        let e = f.expected;
        let line = format!(
            "prepared {}: {} users, {} items, {} interactions; {} train / {} validation / {} test samples",
            f.name,
            e.users,
            e.items,
            e.interactions,
            e.train_samples - e.users,
            e.users,
            e.test_samples
        );
        assert!(
            stdout.contains(&line),
            "{}: want {line:?} in {stdout}",
            f.name
        );
        assert!(
            !stderr.contains("WARNING"),
            "{}: the counts match the registry: {stderr}",
            f.name
        );

        let prepared = store::load(&work.path().join("data/prepared").join(f.name)).unwrap();
        let keys = &prepared.interactions.item_keys;
        let by_user: std::collections::HashMap<&str, &Vec<String>> = f
            .sequences
            .iter()
            .map(|(user, items)| (user.as_str(), items))
            .collect();
        assert_eq!(prepared.interactions.user_keys.len(), f.sequences.len());
        for (u, user) in prepared.interactions.user_keys.iter().enumerate() {
            let got: Vec<&str> = prepared.interactions.sequences[u]
                .iter()
                .map(|&i| keys[i as usize - 1].as_str())
                .collect();
            let want: Vec<&str> = by_user[user.as_str()].iter().map(String::as_str).collect();
            assert_eq!(got, want, "{}: user {user}", f.name);
        }
        let side = &prepared.side;
        assert_eq!(
            side.text.as_ref().unwrap().coverage(),
            f.with_title,
            "{}",
            f.name
        );
        assert_eq!(
            side.image.as_ref().unwrap().coverage(),
            f.with_image,
            "{}",
            f.name
        );
        let codes = prepared.codes.as_ref().unwrap();
        assert_eq!(codes.text.as_ref().unwrap().linked_items(), f.with_title);
        assert_eq!(codes.image.as_ref().unwrap().linked_items(), f.with_image);
    }
}
