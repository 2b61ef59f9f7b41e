//! A parser for Python literals: the subset of Python 3 that `ast.literal_eval` accepts. It
//! builds data and never evaluates anything (a name other than `None`, `True`, `False` is an
//! error). Used for the `meta_<Cat>.json.gz` lines of the Amazon-2014 data (see [`super::meta`]).
//!
//! Supported: `str` and `bytes` literals with `'`, `"`, `'''`, `"""` quotes, the prefixes
//! `r u b br rb` (any case), every escape of Python 3 except `\N{name}`, adjacent-literal
//! concatenation; `int` (decimal, `0x`, `0o`, `0b`, underscores; decimal beyond `i64` as
//! [`PyValue::BigInt`]), `float`, one unary sign; lists, tuples, dicts, sets, trailing commas,
//! a bare top-level tuple (`1, 2`).
//!
//! Deviations, all on inputs the Amazon files do not contain: complex numbers, `...` and
//! comments are rejected; a surrogate pair written as two `\u` escapes is joined into one
//! character and a lone surrogate becomes U+FFFD (Rust strings hold no surrogates); nesting deeper
//! than [`MAX_DEPTH`] is rejected (so hostile input cannot overflow the stack). Errors carry the
//! 1-based character column.
//!
//! [`parse_dict_fields`] parses a whole dict but materialises only the requested top-level
//! entries; the rest is validated without allocating.

mod scalars;

use thiserror::Error;

/// Nesting limit for containers (the Amazon meta lines nest at most 3 deep).
pub const MAX_DEPTH: usize = 64;

/// A Python literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    None,
    Bool(bool),
    Int(i64),
    /// A decimal integer outside the `i64` range, as its decimal digits (with a leading `-`).
    BigInt(String),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<PyValue>),
    Tuple(Vec<PyValue>),
    Set(Vec<PyValue>),
    /// Entries in source order; lookups take the last occurrence of a key, as Python does.
    Dict(Vec<(PyValue, PyValue)>),
}

impl PyValue {
    pub fn type_name(&self) -> &'static str {
        match self {
            PyValue::None => "None",
            PyValue::Bool(_) => "bool",
            PyValue::Int(_) | PyValue::BigInt(_) => "int",
            PyValue::Float(_) => "float",
            PyValue::Str(_) => "str",
            PyValue::Bytes(_) => "bytes",
            PyValue::List(_) => "list",
            PyValue::Tuple(_) => "tuple",
            PyValue::Set(_) => "set",
            PyValue::Dict(_) => "dict",
        }
    }

    /// `self[key]` for a dict with string keys.
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Dict(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| matches!(k, PyValue::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// A malformed literal: what is wrong and where (1-based character column, when it is about a
/// position).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}{message}", column.map(|c| format!("column {c}: ")).unwrap_or_default())]
pub struct LiteralError {
    pub column: Option<usize>,
    pub message: String,
}

/// Parses one complete Python literal (surrounding whitespace allowed; `1, 2` is a tuple).
pub fn parse_literal(text: &str) -> Result<PyValue, LiteralError> {
    let mut p = Parser::new(text);
    let (_, first) = p.value(true, None)?;
    let first = first.ok_or_else(|| p.err(0, "internal: value not built"))?;
    p.skip_ws();
    if p.peek() == Some(b',') {
        // A bare top-level tuple, as `ast.literal_eval("1, 2")` accepts.
        let mut items = vec![first];
        while p.eat(b',') {
            p.skip_ws();
            if p.at_end() {
                break;
            }
            let (_, v) = p.value(true, None)?;
            items.extend(v);
            p.skip_ws();
        }
        p.finish()?;
        return Ok(PyValue::Tuple(items));
    }
    p.finish()?;
    Ok(first)
}

/// Parses a line that must be a dict literal and returns a dict of only the entries whose
/// (string) keys are in `keys`; everything else is validated but not built.
pub fn parse_dict_fields(text: &str, keys: &[&str]) -> Result<PyValue, LiteralError> {
    let mut p = Parser::new(text);
    p.skip_ws();
    if p.peek() != Some(b'{') {
        let found = if p.at_end() {
            "an empty line".to_string()
        } else {
            format!("{:?}", p.current_char())
        };
        return Err(p.err(
            p.pos,
            format!("expected a dict literal `{{...}}`, found {found}"),
        ));
    }
    let (_, dict) = p.brace(false, Some(keys))?;
    p.finish()?;
    dict.ok_or_else(|| p.err(0, "internal: dict not built"))
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

/// A parsed value: whether it is hashable (may be a dict key / set member) and the value when it
/// was requested.
type Parsed = (bool, Option<PyValue>);

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            depth: 0,
        }
    }

    fn err(&self, at: usize, message: impl Into<String>) -> LiteralError {
        let at = at.min(self.text.len());
        // `at` is always on a char boundary: the parser only stops at ASCII bytes.
        let column = self.text.get(..at).map_or(at, |s| s.chars().count()) + 1;
        LiteralError {
            column: Some(column),
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn current_char(&self) -> char {
        self.text
            .get(self.pos..)
            .and_then(|s| s.chars().next())
            .unwrap_or('\u{FFFD}')
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') = self.peek() {
            self.pos += 1;
        }
    }

    fn finish(&mut self) -> Result<(), LiteralError> {
        self.skip_ws();
        if self.at_end() {
            Ok(())
        } else {
            Err(self.err(
                self.pos,
                format!(
                    "unexpected {:?} after the end of the literal",
                    self.current_char()
                ),
            ))
        }
    }

    fn enter(&mut self) -> Result<(), LiteralError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(
                self.pos,
                format!("containers nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    /// One value; built only when `build` (or, for a dict, when `select` names its keys).
    fn value(&mut self, build: bool, select: Option<&[&str]>) -> Result<Parsed, LiteralError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            None => Err(self.err(start, "unexpected end of the line, expected a value")),
            Some(b'{') => self.brace(build, select),
            Some(b'[') => {
                let items = self.sequence(b']', build)?;
                Ok((false, items.map(PyValue::List)))
            }
            Some(b'(') => self.paren(build),
            Some(b'\'' | b'"') => self.strings(build),
            Some(b'0'..=b'9' | b'.' | b'-' | b'+') => self.number(build),
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => {
                let end = self.bytes[start..]
                    .iter()
                    .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))
                    .map_or(self.bytes.len(), |i| start + i);
                let word = &self.text[start..end];
                if matches!(self.bytes.get(end), Some(b'\'' | b'"')) {
                    return self.strings(build);
                }
                let value = match word {
                    "None" => PyValue::None,
                    "True" => PyValue::Bool(true),
                    "False" => PyValue::Bool(false),
                    _ => {
                        return Err(self.err(
                            start,
                            format!("name {word:?} is not a literal (only None, True and False are; nothing is evaluated)"),
                        ))
                    }
                };
                self.pos = end;
                Ok((true, build.then_some(value)))
            }
            Some(_) => Err(self.err(
                start,
                format!("unexpected {:?}, expected a value", self.current_char()),
            )),
        }
    }

    /// `[...]` or the rest of a tuple/set: comma-separated values up to `close`.
    fn sequence(&mut self, close: u8, build: bool) -> Result<Option<Vec<PyValue>>, LiteralError> {
        self.enter()?;
        self.pos += 1; // the opening bracket
        let mut items = build.then(Vec::new);
        self.elements(close, build, &mut items, &mut true)?;
        self.depth -= 1;
        Ok(items)
    }

    /// Comma-separated values up to and including `close`; `hashable` is and-ed with theirs.
    fn elements(
        &mut self,
        close: u8,
        build: bool,
        items: &mut Option<Vec<PyValue>>,
        hashable: &mut bool,
    ) -> Result<(), LiteralError> {
        loop {
            self.skip_ws();
            if self.eat(close) {
                return Ok(());
            }
            let (h, v) = self.value(build, None)?;
            *hashable &= h;
            if let (Some(items), Some(v)) = (items.as_mut(), v) {
                items.push(v);
            }
            self.skip_ws();
            if self.eat(b',') {
                continue;
            }
            if self.eat(close) {
                return Ok(());
            }
            return Err(self.expected_separator(close));
        }
    }

    fn expected_separator(&self, close: u8) -> LiteralError {
        if self.at_end() {
            self.err(
                self.pos,
                format!(
                    "unexpected end of the line, expected ',' or '{}'",
                    close as char
                ),
            )
        } else {
            self.err(
                self.pos,
                format!(
                    "unexpected {:?}, expected ',' or '{}'",
                    self.current_char(),
                    close as char
                ),
            )
        }
    }

    /// `(...)`: empty tuple, a parenthesised value, or a tuple.
    fn paren(&mut self, build: bool) -> Result<Parsed, LiteralError> {
        self.enter()?;
        self.pos += 1;
        self.skip_ws();
        if self.eat(b')') {
            self.depth -= 1;
            return Ok((true, build.then(|| PyValue::Tuple(Vec::new()))));
        }
        let (first_hashable, first) = self.value(build, None)?;
        self.skip_ws();
        if self.eat(b')') {
            self.depth -= 1;
            return Ok((first_hashable, first));
        }
        if !self.eat(b',') {
            return Err(self.expected_separator(b')'));
        }
        let mut items = build.then(|| first.into_iter().collect::<Vec<_>>());
        let mut hashable = first_hashable;
        self.elements(b')', build, &mut items, &mut hashable)?;
        self.depth -= 1;
        Ok((hashable, items.map(PyValue::Tuple)))
    }

    /// `{...}`: a dict or a set. With `select`, keys are always built and only the selected
    /// entries are kept (and a set is an error).
    fn brace(&mut self, build: bool, select: Option<&[&str]>) -> Result<Parsed, LiteralError> {
        self.enter()?;
        self.pos += 1;
        self.skip_ws();
        let collect = build || select.is_some();
        if self.eat(b'}') {
            self.depth -= 1;
            return Ok((false, collect.then(|| PyValue::Dict(Vec::new()))));
        }
        let mut key_start = self.pos;
        let (mut key_hashable, mut key) = self.value(collect, None)?;
        self.skip_ws();
        if !self.eat(b':') {
            if select.is_some() {
                return Err(self.err(key_start, "expected a dict, found a set"));
            }
            // A set literal.
            if !key_hashable {
                return Err(self.err(key_start, "unhashable set element (a list, dict or set)"));
            }
            let mut items = build.then(|| key.into_iter().collect::<Vec<_>>());
            if !self.eat(b'}') {
                if !self.eat(b',') {
                    return Err(if self.at_end() {
                        self.err(
                            self.pos,
                            "unexpected end of the line, expected ':', ',' or '}'",
                        )
                    } else {
                        self.err(
                            self.pos,
                            format!(
                                "unexpected {:?}, expected ':', ',' or '}}'",
                                self.current_char()
                            ),
                        )
                    });
                }
                let mut hashable = true;
                self.elements(b'}', build, &mut items, &mut hashable)?;
                if !hashable {
                    return Err(self.err(key_start, "unhashable set element (a list, dict or set)"));
                }
            }
            self.depth -= 1;
            return Ok((false, items.map(PyValue::Set)));
        }
        let mut entries = collect.then(Vec::new);
        loop {
            if !key_hashable {
                return Err(self.err(key_start, "unhashable dict key (a list, dict or set)"));
            }
            let want = build
                || match (select, &key) {
                    (Some(wanted), Some(PyValue::Str(k))) => wanted.contains(&k.as_str()),
                    _ => false,
                };
            let (_, value) = self.value(want, None)?;
            if let (Some(entries), Some(k), Some(v)) = (entries.as_mut(), key.take(), value) {
                entries.push((k, v));
            }
            self.skip_ws();
            if self.eat(b',') {
                self.skip_ws();
                if self.eat(b'}') {
                    break;
                }
            } else if self.eat(b'}') {
                break;
            } else {
                return Err(self.expected_separator(b'}'));
            }
            key_start = self.pos;
            (key_hashable, key) = self.value(collect, None)?;
            self.skip_ws();
            if !self.eat(b':') {
                return Err(if self.at_end() {
                    self.err(self.pos, "unexpected end of the line, expected ':'")
                } else {
                    self.err(
                        self.pos,
                        format!("unexpected {:?}, expected ':'", self.current_char()),
                    )
                });
            }
        }
        self.depth -= 1;
        Ok((false, entries.map(PyValue::Dict)))
    }
}

#[cfg(test)]
mod tests;
