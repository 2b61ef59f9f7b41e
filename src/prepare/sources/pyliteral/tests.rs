use super::*;
use proptest::prelude::*;

fn s(v: &str) -> PyValue {
    PyValue::Str(v.to_string())
}

fn err(text: &str) -> LiteralError {
    parse_literal(text).expect_err(text)
}

#[test]
fn amazon_meta_line() {
    let line = r#"{'asin': '0558925278', 'title': 'Eco Friendly Ecotools Bamboo \'Brush\' Set', 'price': 8.99, 'imUrl': 'http://ecx.images-amazon.com/images/I/51L%2BzYCQWSL._SX300_.jpg', 'related': {'also_bought': ['B000', "B00'1"], 'bought_together': []}, 'salesRank': {'Beauty': 402875}, 'categories': [['Beauty', 'Tools & Accessories']], 'flag': True, 'none': None}"#;
    let v = parse_literal(line).unwrap();
    assert_eq!(v.get("asin"), Some(&s("0558925278")));
    assert_eq!(
        v.get("title"),
        Some(&s("Eco Friendly Ecotools Bamboo 'Brush' Set"))
    );
    assert_eq!(v.get("price"), Some(&PyValue::Float(8.99)));
    assert_eq!(
        v.get("related").and_then(|r| r.get("also_bought")),
        Some(&PyValue::List(vec![s("B000"), s("B00'1")]))
    );
    assert_eq!(
        v.get("salesRank").and_then(|r| r.get("Beauty")),
        Some(&PyValue::Int(402875))
    );
    assert_eq!(v.get("flag"), Some(&PyValue::Bool(true)));
    assert_eq!(v.get("none"), Some(&PyValue::None));
    // Selecting fields gives the same values for them and drops the rest.
    let selected = parse_dict_fields(line, &["asin", "salesRank"]).unwrap();
    let PyValue::Dict(entries) = &selected else {
        panic!("a dict")
    };
    assert_eq!(entries.len(), 2);
    assert_eq!(selected.get("salesRank"), v.get("salesRank"));
}

#[test]
fn escapes_follow_python_3() {
    assert_eq!(
        parse_literal(r"'a\tb\n\\ \x41\101\u00e9\U0001F600 \q'").unwrap(),
        s("a\tb\n\\ AAé😀 \\q")
    );
    assert_eq!(parse_literal(r"'caf\xe9'").unwrap(), s("café"));
    assert_eq!(parse_literal(r"'\ud83d\ude00'").unwrap(), s("😀"));
    assert_eq!(parse_literal(r"'\ud83d'").unwrap(), s("\u{FFFD}"));
    assert_eq!(parse_literal(r"r'a\'b\n'").unwrap(), s(r"a\'b\n"));
    assert_eq!(parse_literal(r#"u"it's""#).unwrap(), s("it's"));
    assert_eq!(
        parse_literal(r"b'\xff\x00a'").unwrap(),
        PyValue::Bytes(vec![0xff, 0, b'a'])
    );
    assert_eq!(
        parse_literal(r"rb'\x'").unwrap(),
        PyValue::Bytes(b"\\x".to_vec())
    );
    assert_eq!(parse_literal("'''a'b''c'''").unwrap(), s("a'b''c"));
    assert_eq!(parse_literal("'a' \"b\" 'c'").unwrap(), s("abc"));
    assert_eq!(parse_literal("'Ünïcödé ✓'").unwrap(), s("Ünïcödé ✓"));
}

#[test]
fn numbers() {
    let cases = [
        ("0", PyValue::Int(0)),
        ("-17", PyValue::Int(-17)),
        ("+ 3", PyValue::Int(3)),
        ("1_000", PyValue::Int(1000)),
        ("0x1F", PyValue::Int(31)),
        ("-0o17", PyValue::Int(-15)),
        ("0b101", PyValue::Int(5)),
        ("1.5", PyValue::Float(1.5)),
        ("-.5", PyValue::Float(-0.5)),
        ("2.", PyValue::Float(2.0)),
        ("1e3", PyValue::Float(1000.0)),
        ("1.5E-2", PyValue::Float(0.015)),
        ("-9223372036854775808", PyValue::Int(i64::MIN)),
        (
            "123456789012345678901234567890",
            PyValue::BigInt("123456789012345678901234567890".into()),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(parse_literal(text).unwrap(), want, "{text}");
    }
}

#[test]
fn containers() {
    assert_eq!(parse_literal("[]").unwrap(), PyValue::List(vec![]));
    assert_eq!(parse_literal("()").unwrap(), PyValue::Tuple(vec![]));
    assert_eq!(parse_literal("(1)").unwrap(), PyValue::Int(1));
    assert_eq!(
        parse_literal("(1,)").unwrap(),
        PyValue::Tuple(vec![PyValue::Int(1)])
    );
    assert_eq!(
        parse_literal("1, 'a'").unwrap(),
        PyValue::Tuple(vec![PyValue::Int(1), s("a")])
    );
    assert_eq!(parse_literal("{}").unwrap(), PyValue::Dict(vec![]));
    assert_eq!(
        parse_literal("{1, 2,}").unwrap(),
        PyValue::Set(vec![PyValue::Int(1), PyValue::Int(2)])
    );
    assert_eq!(
        parse_literal("{(1, 'a'): [None, {}], }").unwrap(),
        PyValue::Dict(vec![(
            PyValue::Tuple(vec![PyValue::Int(1), s("a")]),
            PyValue::List(vec![PyValue::None, PyValue::Dict(vec![])])
        )])
    );
    // The last duplicate key wins, as in Python.
    assert_eq!(
        parse_literal("{'k': 1, 'k': 2}").unwrap().get("k"),
        Some(&PyValue::Int(2))
    );
}

#[test]
fn malformed_input_gives_clear_errors() {
    let cases = [
        ("", "column 1: unexpected end of the line, expected a value"),
        (
            "{'a': 1",
            "column 8: unexpected end of the line, expected ',' or '}'",
        ),
        (
            "{'a' 1}",
            "column 6: unexpected '1', expected ':', ',' or '}'",
        ),
        ("{'a': 1, 'b' 2}", "column 14: unexpected '2', expected ':'"),
        ("['a' 'b', c]", "column 11: name \"c\" is not a literal"),
        (
            "__import__('os')",
            "column 1: name \"__import__\" is not a literal",
        ),
        ("{'a': 'x}", "column 7: unterminated string literal"),
        ("'abc", "column 1: unterminated string literal"),
        (r"'\x4'", "column 2: truncated \\xXX escape"),
        (
            r"'\N{DASH}'",
            "column 2: \\N{...} named escapes are not supported",
        ),
        (
            "b'é'",
            "column 3: bytes literals may only contain ASCII characters",
        ),
        ("'a' b'b'", "column 5: cannot mix bytes and str literals"),
        ("f'x'", "column 1: invalid string prefix \"f\""),
        ("012", "column 1: invalid number \"012\": leading zeros"),
        (
            "1j",
            "column 1: invalid number \"1j\": complex numbers are not supported",
        ),
        ("1__0", "column 1: invalid number \"1__0\": misplaced '_'"),
        ("- x", "column 1: a sign must be followed by a number"),
        ("{[1]: 2}", "column 2: unhashable dict key"),
        ("{[1], 2}", "column 2: unhashable set element"),
        (
            "[1] x",
            "column 5: unexpected 'x' after the end of the literal",
        ),
        (
            "{'é': 'ü' ;}",
            "column 11: unexpected ';', expected ',' or '}'",
        ),
    ];
    for (text, want) in cases {
        let got = err(text).to_string();
        assert!(
            got.starts_with(want),
            "{text:?}: got {got:?}, want {want:?}"
        );
    }
    let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
    assert!(err(&deep).to_string().contains("nested deeper than 64"));
    let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
    assert!(parse_literal(&ok).is_ok());
    assert_eq!(
        parse_dict_fields("['a']", &["a"]).unwrap_err().to_string(),
        "column 1: expected a dict literal `{...}`, found '['"
    );
    assert_eq!(
        parse_dict_fields("{'a', 'b'}", &["a"])
            .unwrap_err()
            .to_string(),
        "column 2: expected a dict, found a set"
    );
}

/// Python's `repr` of a value, for round trips.
fn repr(v: &PyValue) -> String {
    let join = |items: &[PyValue]| items.iter().map(repr).collect::<Vec<_>>().join(", ");
    match v {
        PyValue::None => "None".into(),
        PyValue::Bool(b) => if *b { "True" } else { "False" }.into(),
        PyValue::Int(i) => i.to_string(),
        PyValue::BigInt(d) => d.clone(),
        PyValue::Float(f) => format!("{f:?}"),
        PyValue::Str(t) => {
            let mut out = String::from("'");
            for c in t.chars() {
                match c {
                    '\'' => out.push_str("\\'"),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    c if (c as u32) < 0x20 || c == '\u{7f}' => {
                        out.push_str(&format!("\\x{:02x}", c as u32))
                    }
                    c => out.push(c),
                }
            }
            out + "'"
        }
        PyValue::Bytes(b) => {
            let body: String = b.iter().map(|x| format!("\\x{x:02x}")).collect();
            format!("b'{body}'")
        }
        PyValue::List(items) => format!("[{}]", join(items)),
        PyValue::Tuple(items) if items.len() == 1 => format!("({},)", repr(&items[0])),
        PyValue::Tuple(items) => format!("({})", join(items)),
        PyValue::Set(items) => format!("{{{}}}", join(items)),
        PyValue::Dict(entries) => {
            let body: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", repr(k), repr(v)))
                .collect();
            format!("{{{}}}", body.join(", "))
        }
    }
}

fn arb_value() -> impl Strategy<Value = PyValue> {
    let leaf = prop_oneof![
        Just(PyValue::None),
        any::<bool>().prop_map(PyValue::Bool),
        any::<i64>().prop_map(PyValue::Int),
        (-1e12f64..1e12).prop_map(PyValue::Float),
        ".{0,12}".prop_map(PyValue::Str),
        proptest::collection::vec(any::<u8>(), 0..6).prop_map(PyValue::Bytes),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(PyValue::List),
            proptest::collection::vec(inner.clone(), 0..5).prop_map(PyValue::Tuple),
            proptest::collection::vec((".{0,6}".prop_map(PyValue::Str), inner), 0..5)
                .prop_map(PyValue::Dict),
        ]
    })
}

/// Fragments that tend to make malformed but nearly valid lines.
const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    ",",
    ":",
    "'",
    "\"",
    "'''",
    "\\",
    "\\x",
    "\\u12",
    "\\U0010ffff",
    "\\N{",
    "-",
    "+",
    "1",
    "0x",
    "1e",
    ".",
    "_",
    "None",
    "True",
    "Fals",
    "b'",
    "r'",
    "rb\"",
    "é",
    "\u{1F600}",
    " ",
    "\t",
    "asin",
    "'asin': ",
    "'title': ",
    "j",
    "#",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any value Python would print parses back to itself.
    #[test]
    fn repr_round_trips(v in arb_value()) {
        let text = repr(&v);
        prop_assert_eq!(parse_literal(&text).unwrap(), v);
    }

    /// Arbitrary text never panics; an error always says where.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
        if let Err(e) = parse_literal(&text) {
            prop_assert!(e.column.is_some());
            prop_assert!(!e.message.is_empty());
        }
        let _ = parse_meta_fields(&text);
    }

    /// Valid meta lines with a random cut, a random insertion or random fragments glued
    /// together: no panic, and an error message with a column.
    #[test]
    fn mutated_meta_lines_never_panic(
        v in arb_value(),
        cut in any::<prop::sample::Index>(),
        insert in prop::sample::select(FRAGMENTS),
        glue in proptest::collection::vec(prop::sample::select(FRAGMENTS), 0..20),
    ) {
        let line = format!("{{'asin': 'B000', 'title': 'x', 'v': {}}}", repr(&v));
        let chars: Vec<char> = line.chars().collect();
        let at = cut.index(chars.len() + 1);
        let truncated: String = chars[..at].iter().collect();
        let inserted: String = chars[..at].iter().chain(insert.chars().collect::<Vec<_>>().iter()).chain(chars[at..].iter()).collect();
        for text in [truncated, inserted, glue.concat()] {
            match parse_dict_fields(&text, &["asin", "title"]) {
                Ok(d) => prop_assert!(matches!(d, PyValue::Dict(_))),
                Err(e) => {
                    let column = e.column.unwrap_or(0);
                    prop_assert!(column >= 1 && column <= text.chars().count() + 1, "{e} in {text:?}");
                }
            }
        }
    }
}

fn parse_meta_fields(text: &str) -> Result<PyValue, LiteralError> {
    parse_dict_fields(text, &["asin", "title"])
}
