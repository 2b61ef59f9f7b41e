//! Property-based fuzzing of every parser that reads user files: the Python-literal meta parser,
//! the ratings, reviews, sequence and RecBole item readers, the image-features reader, the
//! official sample pickles, the evaluator's input and the YAML experiment config. Arbitrary
//! bytes, and valid inputs with random edits, must end in a value or an error, never a panic;
//! large adversarial inputs (deep or exploding pickles among them) must be read in linear time
//! (a generous wall-clock bound).
//!
//! CI runs proptest's default 256 cases per target. The long run is the same tests with more
//! cases: `PROPTEST_CASES=20000 cargo test --release --test fuzz`.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use mmsr_bench::config::ExperimentConfig;
use mmsr_bench::dataset::official::read_sample_lists;
use mmsr_bench::eval::contract::evaluate_reader;
use mmsr_bench::eval::{EvaluatorOptions, InputFormat};
use mmsr_bench::prepare::sequence_file::read_sequence_file;
use mmsr_bench::prepare::sources::image_features::ImageFeatureReader;
use mmsr_bench::prepare::sources::meta::parse_meta_line;
use mmsr_bench::prepare::sources::pyliteral::parse_literal;
use mmsr_bench::prepare::sources::ratings::for_each_rating;
use mmsr_bench::prepare::sources::recbole::read_item_fields;
use mmsr_bench::prepare::sources::reviews::for_each_review;
use proptest::prelude::*;

use crate::hostile_pickles;

const META: &str = "{'asin': '0558925278', 'title': 'Eco Friendly \\'Ecotools\\' set', 'imUrl': 'http://x/y.jpg', 'salesRank': {'Beauty': 402875}, 'categories': [['Beauty', 'Tools'], []], 'price': 3.5, 'related': {'also_bought': ['B1', 'B2']}, 'flag': True, 'none': None, 'tuple': (1, 2.5e3, -4)}";
const RATINGS: &str =
    "A39HTATAQ9V7YF,0205616461,5.0,1369699200\nA3JM6GV9MNOF9X,0558925278,3.0,1355443200\n";
const REVIEWS: &str = "{\"reviewerID\": \"A1YJEY40YUW4SE\", \"asin\": \"7806397051\", \"overall\": 1.0, \"unixReviewTime\": 1391040000}\n{\"reviewerID\": \"A60XNB876KYML\", \"asin\": \"7806397051\", \"overall\": 3.0, \"unixReviewTime\": 1397779200}\n";
const SEQUENCES: &str = "u1 a b c d e\nu2 b c d e f\n";
const ITEMS: &str = "item_id:token\ttitle:token_seq\tbrand:token\na\tRed lipstick\tX\nb\tBlue\tY\n";
const EVAL_JSONL: &str =
    "{\"target\": 2, \"scores\": [0.1, 0.9, 0.3]}\n{\"target\": 1, \"rank\": 3}\n";
const EVAL_CSV: &str = "target,rank\n1,2\n3,1\n";
const YAML: &str = "models:\n  - pop\n  - {name: gcn, dim: 64}\ndatasets: [synthetic]\nseeds: [1, 2]\ntrain:\n  max_epochs: 3\n  batch_size: 64\neval:\n  ks: [5, 20]\nsynthetic:\n  users: 300\n  codes: {clusters: 8}\n";

/// Random byte edits: (position, byte, kind) with kind 0 replace, 1 insert, 2 delete.
fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 0..12)
}

fn edited(mut bytes: Vec<u8>, edits: Vec<(usize, u8, u8)>) -> Vec<u8> {
    for (position, byte, kind) in edits {
        let at = if bytes.is_empty() {
            0
        } else {
            position % bytes.len()
        };
        match kind {
            0 if !bytes.is_empty() => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            _ if !bytes.is_empty() => {
                bytes.remove(at);
            }
            _ => {}
        }
    }
    bytes
}

/// A valid input with random byte edits.
fn mutated(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    edits().prop_map(move |edits| edited(base.as_bytes().to_vec(), edits))
}

/// A pickle of `hostile_pickles`' corpus (Python-written pickles of protocols 0 to 5, a minimal
/// official folder's, small hostile ones) with random byte edits.
fn mutated_pickle() -> impl Strategy<Value = Vec<u8>> {
    (prop::sample::select(hostile_pickles::corpus()), edits())
        .prop_map(|(base, edits)| edited(base, edits))
}

/// Arbitrary bytes, or a mutated valid input.
fn input(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..2048), mutated(base)]
}

fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(bytes).unwrap();
    file.flush().unwrap();
    file
}

fn evaluate(bytes: &[u8], format: InputFormat) {
    let options = EvaluatorOptions {
        ks: vec![1, 5],
        zero_based: false,
        num_items: Some(5),
    };
    let _ = evaluate_reader(bytes, Path::new("fuzz"), format, &options);
}

proptest! {
    #[test]
    fn python_literals_and_meta_lines(bytes in input(META)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_literal(&text);
        let _ = parse_meta_line(&text);
    }

    #[test]
    fn ratings_csv(bytes in input(RATINGS)) {
        let file = file_with(&bytes);
        let _ = for_each_rating(file.path(), |_| {});
    }

    #[test]
    fn reviews_json_lines(bytes in input(REVIEWS)) {
        let file = file_with(&bytes);
        let _ = for_each_review(file.path(), |_| {});
    }

    #[test]
    fn sequence_files(bytes in input(SEQUENCES)) {
        let file = file_with(&bytes);
        let _ = read_sequence_file(file.path());
    }

    #[test]
    fn recbole_item_files(bytes in input(ITEMS)) {
        let file = file_with(&bytes);
        let _ = read_item_fields(file.path(), &["title", "brand"]);
    }

    #[test]
    fn image_features(bytes in prop::collection::vec(any::<u8>(), 0..40_000)) {
        let mut reader = ImageFeatureReader::new(bytes.as_slice(), Path::new("fuzz.b"));
        while let Ok(Some(record)) = reader.next_record() {
            let _ = record.vector();
        }
    }

    #[test]
    fn official_sample_pickles(
        bytes in prop_oneof![prop::collection::vec(any::<u8>(), 0..4096), mutated_pickle()]
    ) {
        let file = file_with(&bytes);
        let _ = read_sample_lists(file.path());
    }

    #[test]
    fn evaluator_input(jsonl in input(EVAL_JSONL), csv in input(EVAL_CSV)) {
        evaluate(&jsonl, InputFormat::Jsonl);
        evaluate(&csv, InputFormat::Csv);
    }

    #[test]
    fn yaml_experiment_files(bytes in input(YAML)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(config) = ExperimentConfig::from_yaml(&text, Path::new("fuzz.yaml")) {
            let _ = config.validate();
        }
    }
}

/// Large adversarial inputs finish quickly: quadratic work on megabytes would take minutes.
#[test]
fn large_adversarial_inputs_are_read_in_linear_time() {
    let limit = Duration::from_secs(10);
    let timed = |what: &str, f: &dyn Fn()| {
        let start = Instant::now();
        f();
        let took = start.elapsed();
        assert!(took < limit, "{what} took {took:?}");
    };
    let deep = "[".repeat(200_000);
    timed("200,000-deep nesting", &|| {
        assert!(parse_literal(&deep).is_err());
    });
    let long = format!("{{'asin': '{}'}}", "x".repeat(2_000_000));
    timed("a 2 MB meta line", &|| {
        let _ = parse_meta_line(&long);
    });
    let escapes = format!("'{}'", "\\'".repeat(500_000));
    timed("500,000 escapes", &|| {
        let _ = parse_literal(&escapes);
    });
    let ratings = RATINGS.repeat(40_000);
    timed("80,000 rating rows", &|| {
        let file = file_with(ratings.as_bytes());
        let mut n = 0;
        for_each_rating(file.path(), |_| n += 1).unwrap();
        assert_eq!(n, 80_000);
    });
    let line = format!("{}\n", "a ".repeat(1_000_000));
    timed("a sequence line of a million items", &|| {
        let file = file_with(format!("u{line}").as_bytes());
        let _ = read_sequence_file(file.path());
    });
    let scores: Vec<String> = (0..200_000).map(|i| format!("{}", i % 7)).collect();
    let jsonl = format!("{{\"target\": 3, \"scores\": [{}]}}\n", scores.join(", ")).repeat(10);
    timed("10 samples of 200,000 scores", &|| {
        let options = EvaluatorOptions {
            ks: vec![20],
            zero_based: false,
            num_items: None,
        };
        evaluate_reader(
            jsonl.as_bytes(),
            Path::new("big"),
            InputFormat::Jsonl,
            &options,
        )
        .unwrap();
    });
    for (what, pickle) in [
        (
            "a 100,000-deep pickle",
            hostile_pickles::deep_lists(100_000),
        ),
        (
            "a 2 KB pickle doubling 250 times through the memo",
            hostile_pickles::memo_doubling(250),
        ),
        (
            "a 2 KB pickle doubling 1,000 times by DUP",
            hostile_pickles::dup_doubling(1_000),
        ),
    ] {
        timed(what, &|| {
            let file = file_with(&pickle);
            assert!(read_sample_lists(file.path()).is_err());
        });
    }
    let yaml = format!("seeds: [{}]\n", vec!["1"; 200_000].join(", "));
    timed("a YAML list of 200,000 seeds", &|| {
        ExperimentConfig::from_yaml(&yaml, Path::new("big.yaml")).unwrap();
    });
}
