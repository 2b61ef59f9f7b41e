//! The guard on hand-built opcode streams, Python-written pickles, and a property test against
//! serde-pickle's own decoding.

use super::*;

fn limits() -> Limits {
    Limits {
        max_depth: 64,
        max_elements: 1000,
    }
}

fn scan(bytes: &[u8]) -> Result<Summary, GuardError> {
    check(bytes, &limits())
}

fn problem(bytes: &[u8]) -> String {
    scan(bytes).unwrap_err().to_string()
}

/// `[[1, 2], [3]]` as Python's protocol 4 writes it (without the FRAME).
const NESTED: &[u8] = b"\x80\x04]\x94(]\x94(K\x01K\x02e]\x94K\x03ae.";

#[test]
fn python_style_pickles_pass_with_their_size_and_depth() {
    assert_eq!(
        scan(NESTED).unwrap(),
        // Created: 3 lists + 3 ints (the memo stores move them); decoded: 6 elements.
        Summary {
            depth: 2,
            decoded: 6,
            elements: 12
        }
    );
    // Protocol 0 text: (lp0\nI1\naI2\na.  -> [1, 2]
    assert_eq!(scan(b"(lp0\nI1\naI2\na.").unwrap().depth, 1);
    // A dict of a short string to a tuple, FRAME and MEMOIZE (protocol 4).
    let dict =
        b"\x80\x04\x95\x0c\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01K\x02\x86\x94s.";
    assert_eq!(scan(dict).unwrap().depth, 2);
    // Shared but unchanged: [x, x] with x = [1] counts x twice.
    let shared = b"\x80\x04]\x94K\x01a]\x94(h\x00h\x00e.";
    let summary = scan(shared).unwrap();
    assert_eq!(summary.depth, 2);
    assert!(summary.elements >= 5, "{summary:?}");
}

#[test]
fn deep_nesting_is_refused_by_lists_tuples_and_marks() {
    let mut lists = b"\x80\x04".to_vec();
    lists.extend(std::iter::repeat_n(b']', 100));
    lists.extend(std::iter::repeat_n(b'a', 99));
    lists.push(b'.');
    let e = problem(&lists);
    assert!(e.contains("nests deeper than 64 levels"), "{e}");
    assert!(
        e.starts_with("pickle refused before decoding: at byte"),
        "{e}"
    );
    // 64 levels pass.
    let mut ok = b"\x80\x04".to_vec();
    ok.extend(std::iter::repeat_n(b']', 64));
    ok.extend(std::iter::repeat_n(b'a', 63));
    ok.push(b'.');
    assert_eq!(scan(&ok).unwrap().depth, 64);
    // Tuples of tuples: K\x01 then \x85 (TUPLE1) repeated.
    let mut tuples = b"\x80\x04K\x01".to_vec();
    tuples.extend(std::iter::repeat_n(0x85, 65));
    tuples.push(b'.');
    assert!(problem(&tuples).contains("nests deeper than 64"));
    // MARKs that stay open.
    let mut marks = b"\x80\x04".to_vec();
    marks.extend(std::iter::repeat_n(b'(', 100_000));
    let e = problem(&marks);
    assert!(e.contains("more than 64 MARKs are open"), "{e}");
}

#[test]
fn memo_and_dup_doubling_is_refused() {
    // level 0 = [], level n+1 = (level n, level n) through memo GETs: 2^n elements.
    let mut memo = b"\x80\x04]\x94".to_vec();
    for level in 0..40u8 {
        memo.extend([b'h', level, b'h', level, 0x86, 0x94]);
    }
    memo.push(b'.');
    let e = problem(&memo);
    assert!(e.contains("would exceed 1000 elements"), "{e}");
    // DUP then TUPLE2, repeated: serde-pickle copies each level.
    let mut dup = b"\x80\x04]".to_vec();
    for _ in 0..40 {
        dup.extend([b'2', 0x86]);
    }
    dup.push(b'.');
    assert!(problem(&dup).contains("would exceed 1000 elements"));
    // Storing a memo reference again copies it: GET + MEMOIZE of a 600-element list.
    let mut restore = b"\x80\x04]\x94(".to_vec();
    restore.extend(std::iter::repeat_n(b'N', 600));
    restore.extend(b"e0");
    for _ in 0..3 {
        restore.extend([b'h', 0, 0x94, b'0']);
    }
    restore.extend(b"N.");
    assert!(problem(&restore).contains("would exceed 1000 elements"));
    // Long strings count by their content; memo GETs of one repeat it.
    let mut strings = b"\x80\x04B\x00\x01\x00\x00".to_vec();
    strings.extend(std::iter::repeat_n(b'x', 256));
    strings.extend(b"\x94](");
    for _ in 0..100 {
        strings.extend(b"h\x00");
    }
    strings.extend(b"e.");
    assert!(problem(&strings).contains("would exceed 1000 elements"));
}

#[test]
fn recursive_and_changed_after_sharing_containers_are_refused() {
    // l = []; l.append(l)
    let e = problem(b"\x80\x04]\x94h\x00a.");
    assert!(e.contains("put into itself"), "{e}");
    // a = []; b = [a]; a.append(1)  (a changed after it went into b)
    let e = problem(b"\x80\x04]\x94]h\x00a0h\x00K\x01a.");
    assert!(e.contains("changed after it was put into another"), "{e}");
    // DUP shares as Python does: [] DUP APPEND puts the list into itself.
    assert!(problem(b"\x80\x04]2a.").contains("put into itself"));
}

#[test]
fn malformed_streams_are_errors_naming_the_byte() {
    for (bytes, expected) in [
        (&b""[..], "at byte 0: the file ends before STOP"),
        (b"\x80\x04]", "at byte 3: the file ends before STOP"),
        (
            b"\x80\x06N.",
            "at byte 0: PROTO (0x80): protocol 6 is newer than 5",
        ),
        (
            b"\x80\x04a.",
            "at byte 2: APPEND (0x61): the stack (above the last MARK) is empty",
        ),
        (b"\x80\x04K\x01K\x02a.", "not a list, dict or set"),
        (b"\x80\x04h\x05.", "memo id 5 was never stored"),
        (b"\x80\x04e.", "no MARK is open"),
        (b"\x80\x04Pabc\n.", "PERSID (0x50): not supported"),
        (b"\x80\x04\x82\x01.", "EXT1 (0x82): not supported"),
        (b"\x80\x04\x97.", "NEXT_BUFFER (0x97): not supported"),
        (b"\x80\x04\xff.", "at byte 2: ? (0xff): unknown opcode"),
        (b"\x80\x04B\xff\xff\xff\x7fabc.", "needs 2147483647 bytes"),
        (b"\x80\x04T\xff\xff\xff\xff.", "negative length -1"),
        (
            b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xff.",
            "needs 18446744073709551615 bytes",
        ),
        (b"I12", "no newline"),
        (b"gx\n.", "the memo id is not a number"),
    ] {
        let e = problem(bytes);
        assert!(e.starts_with("not a readable pickle: "), "{bytes:?}: {e}");
        assert!(e.contains(expected), "{bytes:?}: {e}");
    }
    let long = format!("I{}\n.", "1".repeat(300));
    assert!(problem(long.as_bytes()).contains("a decimal number of 300 characters"));
}

#[test]
fn numpy_style_reduce_and_build_pass() {
    // numpy's reconstruct: STACK_GLOBAL, REDUCE, then BUILD with the state tuple.
    let array = b"\x80\x04\x8c\x05numpy\x94\x8c\x0c_reconstruct\x94\x93\x94\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93\x94K\x00\x85\x94C\x01b\x94\x87\x94R\x94(K\x01K\x02\x85\x94\x89C\x10aaaaaaaaaaaaaaaa\x94t\x94b.";
    let summary = scan(array).unwrap();
    assert_eq!(summary.depth, 2);
}

/// Elements and depth of a decoded value, counted as the scan counts them.
fn measure(value: &serde_pickle::Value) -> (u64, u32) {
    use serde_pickle::{HashableValue as H, Value as V};
    fn hashable(value: &H) -> (u64, u32) {
        match value {
            H::Tuple(items) => children(items.iter().map(hashable)),
            H::FrozenSet(items) => children(items.iter().map(hashable)),
            H::String(s) => (1 + s.len() as u64 / 16, 0),
            H::Bytes(b) => (1 + b.len() as u64 / 16, 0),
            _ => (1, 0),
        }
    }
    fn children(sizes: impl Iterator<Item = (u64, u32)>) -> (u64, u32) {
        sizes.fold((1, 1), |(n, d), (cn, cd)| (n + cn, d.max(cd + 1)))
    }
    match value {
        V::List(items) | V::Tuple(items) => children(items.iter().map(measure)),
        V::Set(items) | V::FrozenSet(items) => children(items.iter().map(hashable)),
        V::Dict(map) => children(map.iter().flat_map(|(k, v)| [hashable(k), measure(v)])),
        V::String(s) => (1 + s.len() as u64 / 16, 0),
        V::Bytes(b) => (1 + b.len() as u64 / 16, 0),
        _ => (1, 0),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    List,
    Dict,
    Set,
    Tuple,
    Atom,
}

/// A stream of opcodes that build, share, copy and nest containers, steered by `choices`
/// to mostly valid ones (each choice picks an opcode; inapplicable ones are skipped), so that
/// serde-pickle decodes most of them.
fn stream(choices: &[u16]) -> Vec<u8> {
    use Kind::*;
    let mut out = vec![0x80, 4];
    let (mut stack, mut frames, mut memo) =
        (Vec::<Kind>::new(), Vec::<Vec<Kind>>::new(), Vec::new());
    let below_top = |frames: &Vec<Vec<Kind>>| frames.last().and_then(|f| f.last().copied());
    for &c in choices {
        let n = stack.len();
        let atoms = |items: &[Kind]| items.iter().all(|&k| k == Atom);
        let pushed = match c % 20 {
            0 => Some((vec![b']'], List)),
            1 => Some((vec![b'}'], Dict)),
            2 => Some((vec![0x8f], Set)),
            3 => Some((vec![b'K', (c >> 8) as u8], Atom)),
            4 => Some((b"C\x14aaaaaaaaaaaaaaaaaaaa".to_vec(), Atom)),
            7 if n > 0 => Some((vec![b'2'], stack[n - 1])),
            _ => None,
        };
        if let Some((bytes, kind)) = pushed {
            out.extend(bytes);
            stack.push(kind);
            continue;
        }
        match c % 20 {
            5 if n > 0 => {
                out.push(0x94);
                memo.push(stack[n - 1]);
            }
            6 if !memo.is_empty() => {
                let id = (c >> 8) as usize % memo.len();
                out.extend([b'h', id as u8]);
                stack.push(memo[id]);
            }
            8 if frames.len() < 8 => {
                out.push(b'(');
                frames.push(std::mem::take(&mut stack));
            }
            9 if n >= 2 && stack[n - 2] == List => {
                out.push(b'a');
                stack.pop();
            }
            10 if below_top(&frames) == Some(List) => {
                out.push(b'e');
                stack = frames.pop().unwrap();
            }
            11 if n >= 3 && stack[n - 3] == Dict && stack[n - 2] == Atom => {
                out.push(b's');
                stack.truncate(n - 2);
            }
            12 if below_top(&frames) == Some(Dict)
                && n % 2 == 0
                && stack.iter().step_by(2).all(|&k| k == Atom) =>
            {
                out.push(b'u');
                stack = frames.pop().unwrap();
            }
            13 if below_top(&frames) == Some(Set) && atoms(&stack) => {
                out.push(0x90);
                stack = frames.pop().unwrap();
            }
            14 if n >= 1 => {
                let k = 1 + (c >> 8) as usize % n.min(3);
                out.push(0x84 + k as u8);
                stack.truncate(n - k);
                stack.push(Tuple);
            }
            15 | 16 if !frames.is_empty() => {
                out.push(if c % 20 == 15 { b't' } else { b'l' });
                stack = frames.pop().unwrap();
                stack.push(if c % 20 == 15 { Tuple } else { List });
            }
            17 if n > 0 => {
                out.push(b'0');
                stack.pop();
            }
            18 if !frames.is_empty() && atoms(&stack) => {
                out.push(0x91);
                stack = frames.pop().unwrap();
                stack.push(Atom);
            }
            19 if !frames.is_empty()
                && n % 2 == 0
                && stack.iter().step_by(2).all(|&k| k == Atom) =>
            {
                out.push(b'd');
                stack = frames.pop().unwrap();
                stack.push(Dict);
            }
            _ => {}
        }
    }
    if stack.is_empty() {
        out.extend([b'K', 0]);
    }
    out.push(b'.');
    out
}

proptest::proptest! {
    /// Whatever the scan accepts, serde-pickle decodes to at most the elements and depth
    /// the scan counted.
    #[test]
    fn accepted_streams_decode_within_the_counted_bounds(
        choices in proptest::collection::vec(proptest::prelude::any::<u16>(), 0..300)
    ) {
        let bytes = stream(&choices);
        let limits = Limits { max_depth: 64, max_elements: 100_000 };
        if let Ok(summary) = check(&bytes, &limits) {
            let options = serde_pickle::DeOptions::new()
                .replace_unresolved_globals()
                .keep_restore_state();
            if let Ok(value) = serde_pickle::value_from_slice(&bytes, options) {
                let (elements, depth) = measure(&value);
                proptest::prop_assert!(elements <= summary.decoded, "{elements} > {summary:?}");
                proptest::prop_assert!(depth <= summary.depth.max(1), "{depth} > {summary:?}");
            }
        }
    }
}

#[test]
fn the_limits_scale_with_the_file() {
    assert_eq!(Limits::for_file(10).max_elements, 1 << 20);
    assert_eq!(Limits::for_file(30_000_000).max_elements, 120_000_000);
    assert_eq!(Limits::for_file(usize::MAX).max_elements, u64::MAX);
    assert_eq!(Limits::for_file(0).max_depth, 64);
}
