//! Hostile official folders (issue 24): pickles that nest too deep or decode far beyond their
//! size, ids that would size tables of gigabytes, and a run configuration beyond its limits.
//! Each ends in an error that names the file (exit code 2 from `run --official-dir`), within
//! 10 seconds, with the binary held to a 2 GB address space, so that a regression fails the test
//! instead of exhausting the machine. The corpus builders are shared with `fuzz`.

use crate::common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use mmsr_bench::dataset::official::pickle_guard::{check, Limits, MAX_DEPTH};
use mmsr_bench::dataset::official::{import, read_sample_lists, BundleOrder, OfficialConfig};

/// The address-space limit of the binary in these tests: the minimal folder's run fits in
/// 0.5 GB on the CPU build; the rest is headroom for libtorch builds that map more.
const ADDRESS_SPACE: u64 = 2_000_000_000;
/// The wall-clock bound of each hostile case.
const TIME_BOUND: Duration = Duration::from_secs(10);

/// A Python value as the official pickles hold them.
#[derive(Debug, Clone)]
pub enum Py {
    Int(u64),
    List(Vec<Py>),
}

fn write(value: &Py, out: &mut Vec<u8>) {
    match value {
        Py::Int(n) if *n < 256 => out.extend([b'K', *n as u8]),
        Py::Int(n) if *n < 65_536 => {
            out.push(b'M');
            out.extend((*n as u16).to_le_bytes());
        }
        Py::Int(n) if *n <= i32::MAX as u64 => {
            out.push(b'J');
            out.extend((*n as i32).to_le_bytes());
        }
        // LONG1 of 8 bytes, little-endian two's complement (Python writes the fewest bytes).
        Py::Int(n) => {
            out.extend([0x8a, 8]);
            out.extend((*n as i64).to_le_bytes());
        }
        Py::List(items) => {
            out.push(b']');
            if !items.is_empty() {
                out.push(b'(');
                items.iter().for_each(|item| write(item, out));
                out.push(b'e');
            }
        }
    }
}

/// `value` as a protocol-2 pickle.
pub fn pickle(value: &Py) -> Vec<u8> {
    let mut out = vec![0x80, 2];
    write(value, &mut out);
    out.push(b'.');
    out
}

/// The sample 4-list of `samples` (inputs, targets): item `i` links image code
/// `codes_from + i % 3` (list [1]) and text code `codes_from + 3 + i % 3` (list [2]).
pub fn sample_lists(samples: &[(Vec<u64>, u64)], codes_from: u64) -> Py {
    let ids = |v: &[u64]| Py::List(v.iter().map(|&i| Py::Int(i)).collect());
    let bundles =
        |input: &[u64], base: u64| Py::List(input.iter().map(|&i| ids(&[base + i % 3])).collect());
    Py::List(vec![
        Py::List(samples.iter().map(|(input, _)| ids(input)).collect()),
        Py::List(
            samples
                .iter()
                .map(|(input, _)| bundles(input, codes_from))
                .collect(),
        ),
        Py::List(
            samples
                .iter()
                .map(|(input, _)| bundles(input, codes_from + 3))
                .collect(),
        ),
        ids(&samples.iter().map(|(_, t)| *t).collect::<Vec<_>>()),
    ])
}

/// Training samples of a minimal folder: items 1..=6, every prefix of four users' histories.
pub fn train_samples() -> Vec<(Vec<u64>, u64)> {
    let users: [&[u64]; 4] = [
        &[1, 2, 3, 4, 5, 6],
        &[2, 3, 4, 5, 6, 1],
        &[3, 4, 5, 6, 1, 2],
        &[6, 5, 4, 3, 2, 1],
    ];
    users
        .iter()
        .flat_map(|h| (1..h.len()).map(|j| (h[..j].to_vec(), h[j])))
        .collect()
}

pub fn test_samples() -> Vec<(Vec<u64>, u64)> {
    vec![(vec![1, 2, 3], 4), (vec![4, 5], 6), (vec![6], 1)]
}

/// The codes of the minimal folder start right after its 6 items.
pub const CODES_FROM: u64 = 7;

/// A minimal official folder in `dir` from the two sample pickles.
fn folder(dir: &Path, train: &[u8], test: &[u8]) -> PathBuf {
    std::fs::write(dir.join("train.txt"), train).unwrap();
    std::fs::write(dir.join("test.txt"), test).unwrap();
    dir.to_path_buf()
}

fn good_train() -> Vec<u8> {
    pickle(&sample_lists(&train_samples(), CODES_FROM))
}

fn good_test() -> Vec<u8> {
    pickle(&sample_lists(&test_samples(), CODES_FROM))
}

/// `]` then `a`, `levels` times: lists nested `levels` deep, 2 bytes a level.
pub fn deep_lists(levels: usize) -> Vec<u8> {
    let mut out = vec![0x80, 4];
    out.extend(std::iter::repeat_n(b']', levels));
    out.extend(std::iter::repeat_n(b'a', levels - 1));
    out.push(b'.');
    out
}

/// A list holding the previous level twice through memo GETs, `levels` times: 2^levels
/// elements decoded from 8 bytes a level (EMPTY_LIST, MEMOIZE, MARK, 2 BINGET, APPENDS).
pub fn memo_doubling(levels: u32) -> Vec<u8> {
    let mut out = vec![0x80, 4, b']', 0x94];
    for level in 0..levels {
        out.extend([b']', 0x94, b'(']);
        for _ in 0..2 {
            match u8::try_from(level) {
                Ok(id) => out.extend([b'h', id]),
                Err(_) => {
                    out.push(b'j');
                    out.extend(level.to_le_bytes());
                }
            }
        }
        out.push(b'e');
    }
    out.push(b'.');
    out
}

/// DUP then TUPLE2, `levels` times: serde-pickle copies each level while it reads the stream.
pub fn dup_doubling(levels: usize) -> Vec<u8> {
    let mut out = vec![0x80, 4, b']'];
    for _ in 0..levels {
        out.extend([b'2', 0x86]);
    }
    out.push(b'.');
    out
}

/// Python-written pickles of protocols 0 to 5 (`pickle.dumps`): the sample 4-list
/// `[[[1, 2], [3]], [[x, x], [x]], [[[14], [15]], [[16]]], [4, 5]]` with `x = [12, 13]` shared,
/// and a dict of every value kind the reader decodes (floats, big and negative ints, None,
/// bools, str, bytes, bytearray, set, frozenset, a shared list).
const PYTHON_SAMPLES: [&str; 6] = [
    "286c70300a286c70310a286c70320a49310a6149320a6161286c70330a49330a616161286c70340a286c70350a286c70360a4931320a614931330a616167360a6161286c70370a67360a616161286c70380a286c70390a286c7031300a4931340a6161286c7031310a4931350a616161286c7031320a286c7031330a4931360a61616161286c7031340a49340a6149350a61612e",
    "5d7100285d7101285d7102284b014b02655d71034b0361655d7104285d7105285d7106284b0c4b0d656806655d7107680661655d7108285d7109285d710a4b0e615d710b4b0f61655d710c5d710d4b106161655d710e284b044b0565652e",
    "80025d7100285d7101285d7102284b014b02655d71034b0361655d7104285d7105285d7106284b0c4b0d656806655d7107680661655d7108285d7109285d710a4b0e615d710b4b0f61655d710c5d710d4b106161655d710e284b044b0565652e",
    "80035d7100285d7101285d7102284b014b02655d71034b0361655d7104285d7105285d7106284b0c4b0d656806655d7107680661655d7108285d7109285d710a4b0e615d710b4b0f61655d710c5d710d4b106161655d710e284b044b0565652e",
    "8004954f000000000000005d94285d94285d94284b014b02655d944b0361655d94285d94285d94284b0c4b0d656806655d94680661655d94285d94285d944b0e615d944b0f61655d945d944b106161655d94284b044b0565652e",
    "8005954f000000000000005d94285d94285d94284b014b02655d944b0361655d94285d94285d94284b0c4b0d656806655d94680661655d94285d94285d944b0e615d944b0f61655d945d944b106161655d94284b044b0565652e",
];
const PYTHON_MIXED: [&str; 6] = [
    "286470300a56610a70310a2849310a46322e350a492d330a4c313138303539313632303731373431313330333432344c0a4e4930310a4930300a5668e96c6c6f0a70320a635f636f646563730a656e636f64650a70330a285678790a70340a566c6174696e310a70350a7470360a5270370a635f5f6275696c74696e5f5f0a7365740a70380a28286c70390a49310a6149320a61747031300a527031310a635f5f6275696c74696e5f5f0a66726f7a656e7365740a7031320a28286c7031330a49330a61747031340a527031350a286c7031360a4931320a614931330a616731360a747031370a7356620a7031380a635f5f6275696c74696e5f5f0a6279746561727261790a7031390a2867330a28567a0a7032300a67350a747032310a527032320a747032330a527032340a732e",
    "7d7100285801000000617101284b014740040000000000004afdffffff4c313138303539313632303731373431313330333432344c0a4e4930310a4930300a580600000068c3a96c6c6f7102635f636f646563730a656e636f64650a71032858020000007879710458060000006c6174696e317105747106527107635f5f6275696c74696e5f5f0a7365740a7108285d7109284b014b026574710a52710b635f5f6275696c74696e5f5f0a66726f7a656e7365740a710c285d710d4b036174710e52710f5d7110284b0c4b0d6568107471115801000000627112635f5f6275696c74696e5f5f0a6279746561727261790a71132868032858010000007a71146805747115527116747117527118752e",
    "80027d7100285801000000617101284b014740040000000000004afdffffff8a090000000000000000404e8889580600000068c3a96c6c6f7102635f636f646563730a656e636f64650a710358020000007879710458060000006c6174696e317105867106527107635f5f6275696c74696e5f5f0a7365740a71085d7109284b014b026585710a52710b635f5f6275696c74696e5f5f0a66726f7a656e7365740a710c5d710d4b036185710e52710f5d7110284b0c4b0d6568107471115801000000627112635f5f6275696c74696e5f5f0a6279746561727261790a7113680358010000007a71146805867115527116857117527118752e",
    "80037d7100285801000000617101284b014740040000000000004afdffffff8a090000000000000000404e8889580600000068c3a96c6c6f7102430278797103636275696c74696e730a7365740a71045d7105284b014b0265857106527107636275696c74696e730a66726f7a656e7365740a71085d71094b036185710a52710b5d710c284b0c4b0d65680c74710d580100000062710e636275696c74696e730a6279746561727261790a710f43017a7110857111527112752e",
    "80049574000000000000007d94288c016194284b014740040000000000004afdffffff8a090000000000000000404e88898c0668c3a96c6c6f9443027879948f94284b014b0290284b0391945d94284b0c4b0d65680674948c0162948c086275696c74696e73948c0962797465617272617994939443017a9485945294752e",
    "8005955e000000000000007d94288c016194284b014740040000000000004afdffffff8a090000000000000000404e88898c0668c3a96c6c6f9443027879948f94284b014b0290284b0391945d94284b0c4b0d65680674948c0162949601000000000000007a94752e",
];

/// Seeds for the fuzzer's mutations: the Python-written pickles, a minimal folder's pickles and
/// small hostile ones.
pub fn corpus() -> Vec<Vec<u8>> {
    let mut corpus: Vec<Vec<u8>> = PYTHON_SAMPLES
        .iter()
        .chain(&PYTHON_MIXED)
        .map(|h| hex::decode(h).unwrap())
        .collect();
    corpus.extend([
        good_train(),
        good_test(),
        deep_lists(100),
        memo_doubling(40),
        dup_doubling(40),
    ]);
    corpus
}

/// `run --official-dir DIR` (pop, one epoch) under the address-space limit, killed after a
/// minute at the latest; returns its output and wall time.
fn run_limited(dir: &Path, extra: &[&str]) -> (Output, Duration) {
    let work = tempfile::tempdir().unwrap();
    let mut args = vec![
        "-q",
        "run",
        "--model",
        "pop",
        "--official-dir",
        dir.to_str().unwrap(),
        "--bundle-order",
        "image-text",
        "--device",
        "cpu",
    ];
    args.extend(extra);
    if !extra.contains(&"--max-epochs") {
        args.extend(["--max-epochs", "1"]);
    }
    let mut command = common::mmsr_command(work.path(), &args);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            for (resource, value) in [(libc::RLIMIT_AS, ADDRESS_SPACE), (libc::RLIMIT_CPU, 60)] {
                let limit = libc::rlimit {
                    rlim_cur: value,
                    rlim_max: value,
                };
                if libc::setrlimit(resource, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = command.spawn().expect("the binary starts");
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    (output, start.elapsed())
}

/// The run fails cleanly (exit code 2, not a signal) within the time bound, and its error
/// names `file` and says `expected`.
fn assert_refused(dir: &Path, file: &str, expected: &str) {
    assert_refused_with(dir, &[], file, expected);
}

fn assert_refused_with(dir: &Path, extra: &[&str], file: &str, expected: &str) {
    let (out, took) = run_limited(dir, extra);
    let stderr = common::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{:?}: {stderr}", out.status);
    assert!(took < TIME_BOUND, "took {took:?}: {stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    if !file.is_empty() {
        let path = dir.join(file);
        assert!(
            error.starts_with(&format!("error: {}: ", path.display())),
            "{error}"
        );
    }
    assert!(error.contains(expected), "{error}");
}

fn official(dir: &Path) -> OfficialConfig {
    OfficialConfig {
        dir: dir.to_path_buf(),
        bundle_order: BundleOrder::ImageText,
        validation_share: 0.1,
        seed: 1,
    }
}

#[test]
fn the_minimal_folder_imports_and_runs_under_the_same_limits() {
    let dir = tempfile::tempdir().unwrap();
    folder(dir.path(), &good_train(), &good_test());
    let (data, _) = import(&official(dir.path())).unwrap();
    assert_eq!(data.num_items(), 6);
    assert_eq!(data.splits.train.len() + data.splits.valid.len(), 20);
    assert_eq!(data.splits.test.len(), 3);
    let (out, took) = run_limited(dir.path(), &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(took < TIME_BOUND, "{took:?}");
}

#[test]
fn deep_nesting_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // 200 KB, 100,000 levels: serde-pickle's recursion overflowed the stack and aborted.
    folder(dir.path(), &deep_lists(100_000), &good_test());
    assert_refused(
        dir.path(),
        "train.txt",
        "pickle refused before decoding: at byte 100065: the value nests deeper than 64 levels",
    );
    // MARKs left open, in the test file.
    let mut marks = vec![0x80, 4];
    marks.extend(std::iter::repeat_n(b'(', 1_000_000));
    folder(dir.path(), &good_train(), &marks);
    assert_refused(dir.path(), "test.txt", "more than 64 MARKs are open");
    // The limit itself: 64 levels are read (and then refused as not a 4-list).
    let path = dir.path().join("deep.txt");
    std::fs::write(&path, deep_lists(MAX_DEPTH as usize)).unwrap();
    let e = read_sample_lists(&path).unwrap_err().to_string();
    assert!(e.contains("expected 4 parallel lists, found 1"), "{e}");
}

#[test]
fn memo_and_dup_blowups_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // 2 KB that decode to 2^250 elements as Python reads them: each level a list of two memo
    // references to the level below (serde-pickle's reference counts stopped this one, but
    // with "recursive structure found").
    let memo = memo_doubling(250);
    assert_eq!(memo.len(), 2005);
    folder(dir.path(), &memo, &good_test());
    assert_refused(
        dir.path(),
        "train.txt",
        "would exceed 1048576 elements, the limit for a file of 2005 bytes (4 per byte, at least 1048576",
    );
    // 2 bytes a doubling, copied while the stream is read (aborted under 2 GB after 64 bytes).
    folder(dir.path(), &good_train(), &dup_doubling(1_000));
    assert_refused(dir.path(), "test.txt", "would exceed 1048576 elements");
    // A 2 MB list of 10^6 references to one 64-element list: 32 elements a byte (aborted under
    // 2 GB).
    let mut wide = vec![0x80, 4, b']', 0x94, b'('];
    wide.extend(std::iter::repeat_n([b'K', 1], 64).flatten());
    wide.extend([b'e', b']', b'(']);
    wide.extend(std::iter::repeat_n([b'h', 0], 1_000_000).flatten());
    wide.extend([b'e', b'.']);
    folder(dir.path(), &wide, &good_test());
    let limit = format!(
        "would exceed {} elements, the limit for a file of {} bytes",
        4 * wide.len(),
        wide.len()
    );
    assert_refused(dir.path(), "train.txt", &limit);
}

#[test]
fn a_huge_item_id_in_train_txt_is_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let mut train = train_samples();
    train[3].0[1] = 4_000_000_000;
    folder(
        dir.path(),
        &pickle(&sample_lists(&train, CODES_FROM)),
        &good_test(),
    );
    assert_refused(
        dir.path(),
        "train.txt",
        "sample 3: item id 4000000000 is beyond the item ids 1..=6 (items come before the codes, and the code ids of",
    );
}

#[test]
fn huge_code_ids_in_train_txt_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    // Codes far above the items: tables of 3 * 10^9 rows.
    folder(
        dir.path(),
        &pickle(&sample_lists(&train_samples(), 3_000_000_000)),
        &good_test(),
    );
    assert_refused(
        dir.path(),
        "train.txt",
        "code id 3000000005 in list [2] would size tables of 3000000006 rows, but the samples use 12 distinct item and code ids",
    );
    // An item id as huge, with the codes right above it: consistent, but as large.
    let mut train = train_samples();
    train[0].1 = 3_000_000_000;
    folder(
        dir.path(),
        &pickle(&sample_lists(&train, 3_000_000_001)),
        &pickle(&sample_lists(&test_samples(), 3_000_000_001)),
    );
    assert_refused(
        dir.path(),
        "train.txt",
        "ids must be about dense, as the official producer numbers them (at most 2 × distinct + 65536",
    );
}

#[test]
fn a_huge_item_id_in_test_txt_names_test_txt() {
    let dir = tempfile::tempdir().unwrap();
    let mut test = test_samples();
    test[1].0[0] = 4_000_000_000;
    folder(
        dir.path(),
        &good_train(),
        &pickle(&sample_lists(&test, CODES_FROM)),
    );
    assert_refused(
        dir.path(),
        "test.txt",
        "sample 1: item id 4000000000 is beyond the item ids 1..=6",
    );
}

/// Before, an item id just beyond the count in test.txt made the item count one larger, and
/// the error blamed train.txt ("bundle ids [1] overlap the item ids").
#[test]
fn an_item_id_just_beyond_the_count_in_test_txt_names_test_txt() {
    let dir = tempfile::tempdir().unwrap();
    let mut test = test_samples();
    test[2].1 = CODES_FROM;
    folder(
        dir.path(),
        &good_train(),
        &pickle(&sample_lists(&test, CODES_FROM)),
    );
    let message = import(&official(dir.path())).unwrap_err().to_string();
    let expected = format!(
        "{}: sample 2: item id 7 is beyond the item ids 1..=6 (items come before the codes, and the code ids of {} start at 7)",
        dir.path().join("test.txt").display(),
        dir.path().join("train.txt").display()
    );
    assert_eq!(message, expected);
    assert_refused(dir.path(), "test.txt", "sample 2: item id 7 is beyond");
}

#[test]
fn a_code_id_outside_the_training_codes_names_test_txt() {
    let dir = tempfile::tempdir().unwrap();
    // Text codes are 10..=12; item 6 of test sample 1 links text code 13 here.
    let mut test = sample_lists(&test_samples(), CODES_FROM);
    let Py::List(lists) = &mut test else {
        unreachable!()
    };
    let Py::List(second) = &mut lists[2] else {
        unreachable!()
    };
    second[1] = Py::List(vec![
        Py::List(vec![Py::Int(11)]),
        Py::List(vec![Py::Int(13)]),
    ]);
    folder(dir.path(), &good_train(), &pickle(&test));
    assert_refused(
        dir.path(),
        "test.txt",
        "sample 1: text code id 13 in list [2] is outside 10..=12, the text codes of",
    );
}

#[test]
fn max_epochs_beyond_the_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    folder(dir.path(), &good_train(), &good_test());
    assert_refused_with(
        dir.path(),
        &["--max-epochs", "100000000"],
        "",
        "train.max_epochs = 100000000 is out of range: it must be between 1 and 10000",
    );
}

/// Every pickle of the shared data and the fixtures passes the guard with a margin of 5 or more
/// on the element limit (the closest, `train.txt` of official-beauty, counts 0.62 elements a
/// byte against 4) and nests at most 4 deep (of 64); prints each file's depth and elements per
/// byte.
#[test]
fn every_real_pickle_passes_the_guard_with_a_margin() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/official");
    let mut files = Vec::new();
    for dir in [
        common::shared_data("official-beauty"),
        common::shared_data("mmsr-sample"),
        fixtures,
    ] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            if bytes.starts_with(&[0x80]) {
                files.push((path, bytes));
            }
        }
    }
    assert!(files.len() >= 14, "{}", files.len());
    for (path, bytes) in &files {
        let limits = Limits::for_file(bytes.len());
        let summary = check(bytes, &limits).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        eprintln!(
            "{}: {} bytes, depth {}, {:.3} elements per byte",
            path.display(),
            bytes.len(),
            summary.depth,
            summary.elements as f64 / bytes.len() as f64
        );
        assert!(summary.depth <= 4, "{}: {summary:?}", path.display());
        assert!(
            summary.elements * 5 <= limits.max_elements,
            "{}: {summary:?}",
            path.display()
        );
    }
}

#[test]
fn python_written_pickles_of_every_protocol_pass_and_decode() {
    let dir = tempfile::tempdir().unwrap();
    for (protocol, (samples, mixed)) in PYTHON_SAMPLES.iter().zip(&PYTHON_MIXED).enumerate() {
        for hex in [samples, mixed] {
            let bytes = hex::decode(hex).unwrap();
            check(&bytes, &Limits::for_file(bytes.len()))
                .unwrap_or_else(|e| panic!("protocol {protocol}: {e}"));
            let options = serde_pickle::DeOptions::new()
                .replace_unresolved_globals()
                .keep_restore_state();
            serde_pickle::value_from_slice(&bytes, options)
                .unwrap_or_else(|e| panic!("protocol {protocol}: {e}"));
        }
        let path = dir.path().join(format!("p{protocol}.txt"));
        std::fs::write(&path, hex::decode(samples).unwrap()).unwrap();
        let lists = read_sample_lists(&path).unwrap();
        assert_eq!(lists.inputs, vec![vec![1, 2], vec![3]], "{protocol}");
        assert_eq!(
            lists.first,
            vec![vec![vec![12, 13], vec![12, 13]], vec![vec![12, 13]]],
            "{protocol}"
        );
        assert_eq!(lists.targets, vec![4, 5], "{protocol}");
    }
}
