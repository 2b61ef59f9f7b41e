//! String and number literals of the Python literal parser.

use super::{LiteralError, Parsed, Parser, PyValue};

impl Parser<'_> {
    /// The string prefix at the current position and the position of its quote, if the current
    /// position starts a string literal.
    fn string_prefix(&self) -> Option<(bool, bool, usize)> {
        let start = self.pos;
        let mut end = start;
        while end < self.bytes.len() && self.bytes[end].is_ascii_alphabetic() {
            end += 1;
        }
        if !matches!(self.bytes.get(end), Some(b'\'' | b'"')) {
            return None;
        }
        let prefix = self.text[start..end].to_ascii_lowercase();
        match prefix.as_str() {
            "" | "u" => Some((false, false, end)),
            "r" => Some((true, false, end)),
            "b" => Some((false, true, end)),
            "br" | "rb" => Some((true, true, end)),
            _ => None,
        }
    }

    /// One or more adjacent string literals, concatenated.
    pub(super) fn strings(&mut self, build: bool) -> Result<Parsed, LiteralError> {
        let start = self.pos;
        let Some((_, is_bytes, _)) = self.string_prefix() else {
            let end = self.bytes[start..]
                .iter()
                .position(|&b| b == b'\'' || b == b'"')
                .map_or(self.bytes.len(), |i| start + i);
            return Err(self.err(
                start,
                format!(
                    "invalid string prefix {:?} (allowed: r, u, b, br, rb; f-strings are not literals)",
                    &self.text[start..end]
                ),
            ));
        };
        let mut sink = match (build, is_bytes) {
            (false, _) => Sink::Skip,
            (true, false) => Sink::Text(String::new()),
            (true, true) => Sink::Bytes(Vec::new()),
        };
        loop {
            let literal_start = self.pos;
            let Some((raw, bytes, quote_pos)) = self.string_prefix() else {
                break;
            };
            if bytes != is_bytes {
                return Err(self.err(literal_start, "cannot mix bytes and str literals"));
            }
            self.pos = quote_pos;
            self.string_body(raw, bytes, &mut sink)?;
            let after = self.pos;
            self.skip_ws();
            if self.string_prefix().is_none() {
                self.pos = after;
                break;
            }
        }
        let value = match sink {
            Sink::Skip => None,
            Sink::Text(t) => Some(PyValue::Str(t)),
            Sink::Bytes(b) => Some(PyValue::Bytes(b)),
        };
        Ok((true, value))
    }

    /// A quoted body starting at the opening quote.
    fn string_body(&mut self, raw: bool, bytes: bool, out: &mut Sink) -> Result<(), LiteralError> {
        let start = self.pos;
        let quote = self.bytes[self.pos];
        let triple = self.bytes[self.pos..].starts_with(&[quote, quote, quote]);
        self.pos += if triple { 3 } else { 1 };
        let unterminated = |p: &Self| p.err(start, "unterminated string literal");
        loop {
            let rest = &self.bytes[self.pos..];
            let Some(i) = rest
                .iter()
                .position(|&b| b == quote || b == b'\\' || b == b'\n' || b == b'\r')
            else {
                return Err(unterminated(self));
            };
            let run = &self.text[self.pos..self.pos + i];
            if bytes && !run.is_ascii() {
                let at = self.pos + run.bytes().position(|b| !b.is_ascii()).unwrap_or(0);
                return Err(self.err(at, "bytes literals may only contain ASCII characters"));
            }
            out.push_str(run);
            self.pos += i;
            let b = self.bytes[self.pos];
            if b == quote {
                if !triple {
                    self.pos += 1;
                    return Ok(());
                }
                if self.bytes[self.pos..].starts_with(&[quote, quote, quote]) {
                    self.pos += 3;
                    return Ok(());
                }
                out.push_unit(quote);
                self.pos += 1;
                continue;
            }
            if b != b'\\' {
                if !triple {
                    return Err(unterminated(self));
                }
                out.push_unit(b);
                self.pos += 1;
                continue;
            }
            // A backslash.
            let escape_start = self.pos;
            self.pos += 1;
            let Some(e) = self.peek() else {
                return Err(unterminated(self));
            };
            if raw {
                // Raw strings keep the backslash and the character after it (which therefore
                // never ends the string).
                out.push_unit(b'\\');
                let c = self.current_char();
                if bytes && !c.is_ascii() {
                    return Err(
                        self.err(self.pos, "bytes literals may only contain ASCII characters")
                    );
                }
                out.push_char(c);
                self.pos += c.len_utf8();
                continue;
            }
            self.pos += 1;
            let simple = match e {
                b'\n' => None, // line continuation
                b'\r' => {
                    self.eat(b'\n');
                    None
                }
                b'\\' | b'\'' | b'"' => Some(e),
                b'a' => Some(0x07),
                b'b' => Some(0x08),
                b'f' => Some(0x0c),
                b'n' => Some(b'\n'),
                b'r' => Some(b'\r'),
                b't' => Some(b'\t'),
                b'v' => Some(0x0b),
                b'0'..=b'7' => {
                    let mut value = u32::from(e - b'0');
                    for _ in 0..2 {
                        match self.peek() {
                            Some(d @ b'0'..=b'7') => {
                                value = value * 8 + u32::from(d - b'0');
                                self.pos += 1;
                            }
                            _ => break,
                        }
                    }
                    if bytes {
                        let byte = u8::try_from(value).map_err(|_| {
                            self.err(escape_start, "octal escape above \\377 in a bytes literal")
                        })?;
                        out.push_unit(byte);
                    } else {
                        out.push_char(char::from_u32(value).unwrap_or('\u{FFFD}'));
                    }
                    continue;
                }
                b'x' => {
                    let value = self.hex_digits(2, escape_start, "\\xXX")?;
                    // Two hex digits: always a byte / a Latin-1 code point.
                    out.push_unit(value as u8);
                    continue;
                }
                b'u' | b'U' if !bytes => {
                    let (n, form) = if e == b'u' {
                        (4, "\\uXXXX")
                    } else {
                        (8, "\\UXXXXXXXX")
                    };
                    let mut value = self.hex_digits(n, escape_start, form)?;
                    if value > 0x10FFFF {
                        return Err(
                            self.err(escape_start, format!("{form} escape beyond U+10FFFF"))
                        );
                    }
                    if (0xD800..0xDC00).contains(&value)
                        && self.bytes[self.pos..].starts_with(b"\\u")
                    {
                        let save = self.pos;
                        self.pos += 2;
                        match self.hex_digits(4, save, "\\uXXXX") {
                            Ok(low) if (0xDC00..0xE000).contains(&low) => {
                                value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00);
                            }
                            _ => self.pos = save,
                        }
                    }
                    out.push_char(char::from_u32(value).unwrap_or('\u{FFFD}'));
                    continue;
                }
                b'N' if !bytes => {
                    return Err(self.err(escape_start, "\\N{...} named escapes are not supported"))
                }
                _ => {
                    // Unknown escapes keep their backslash, as in Python.
                    self.pos -= 1;
                    let c = self.current_char();
                    if bytes && !c.is_ascii() {
                        return Err(
                            self.err(self.pos, "bytes literals may only contain ASCII characters")
                        );
                    }
                    out.push_unit(b'\\');
                    out.push_char(c);
                    self.pos += c.len_utf8();
                    continue;
                }
            };
            if let Some(byte) = simple {
                out.push_unit(byte);
            }
        }
    }

    fn hex_digits(
        &mut self,
        n: usize,
        escape_start: usize,
        form: &str,
    ) -> Result<u32, LiteralError> {
        let digits = self.bytes.get(self.pos..self.pos + n);
        match digits {
            Some(d) if d.iter().all(u8::is_ascii_hexdigit) => {
                self.pos += n;
                // All ASCII hex digits, at most 8: always a valid u32.
                Ok(d.iter().fold(0u32, |acc, &b| {
                    acc * 16 + (b as char).to_digit(16).unwrap_or(0)
                }))
            }
            _ => Err(self.err(escape_start, format!("truncated {form} escape"))),
        }
    }

    /// A number with at most one unary sign.
    pub(super) fn number(&mut self, build: bool) -> Result<Parsed, LiteralError> {
        let start = self.pos;
        let negative = match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                true
            }
            Some(b'+') => {
                self.pos += 1;
                false
            }
            _ => false,
        };
        if negative || self.bytes[start] == b'+' {
            self.skip_ws();
            if !matches!(self.peek(), Some(b'0'..=b'9' | b'.')) {
                return Err(self.err(start, "a sign must be followed by a number"));
            }
        }
        let token_start = self.pos;
        let mut end = token_start;
        while end < self.bytes.len() {
            let b = self.bytes[end];
            let exponent_sign = (b == b'+' || b == b'-')
                && matches!(self.bytes[end - 1], b'e' | b'E')
                && !self.text[token_start..end].starts_with("0x")
                && !self.text[token_start..end].starts_with("0X");
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || exponent_sign {
                end += 1;
            } else {
                break;
            }
        }
        let token = &self.text[token_start..end];
        let bad = |p: &Self, why: &str| p.err(start, format!("invalid number {token:?}: {why}"));
        if !valid_underscores(token) {
            return Err(bad(self, "misplaced '_'"));
        }
        let digits: String = token.chars().filter(|&c| c != '_').collect();
        let lower = digits.to_ascii_lowercase();
        let value = if let Some((radix, body)) = lower
            .strip_prefix("0x")
            .map(|b| (16, b))
            .or_else(|| lower.strip_prefix("0o").map(|b| (8, b)))
            .or_else(|| lower.strip_prefix("0b").map(|b| (2, b)))
        {
            let signed = format!("{}{body}", if negative { "-" } else { "" });
            if body.is_empty() || body.starts_with(['+', '-']) {
                return Err(bad(self, "no digits"));
            }
            PyValue::Int(i64::from_str_radix(&signed, radix).map_err(|e| {
                bad(
                    self,
                    &format!("{e} (non-decimal integers beyond 64 bits are not supported)"),
                )
            })?)
        } else if lower.ends_with('j') {
            return Err(bad(self, "complex numbers are not supported"));
        } else if lower.contains(['.', 'e']) {
            if !lower
                .bytes()
                .all(|b| b.is_ascii_digit() || b"+-.e".contains(&b))
                || !lower.bytes().any(|b| b.is_ascii_digit())
            {
                return Err(bad(self, "not a float"));
            }
            let value: f64 = lower.parse().map_err(|_| bad(self, "not a float"))?;
            PyValue::Float(if negative { -value } else { value })
        } else {
            if !lower.bytes().all(|b| b.is_ascii_digit()) || lower.is_empty() {
                return Err(bad(self, "not a number"));
            }
            if lower.len() > 1 && lower.starts_with('0') && lower.bytes().any(|b| b != b'0') {
                return Err(bad(
                    self,
                    "leading zeros are not permitted in decimal integers",
                ));
            }
            let signed = format!("{}{lower}", if negative { "-" } else { "" });
            match signed.parse::<i64>() {
                Ok(v) => PyValue::Int(v),
                Err(_) => {
                    let trimmed = lower.trim_start_matches('0');
                    PyValue::BigInt(format!("{}{trimmed}", if negative { "-" } else { "" }))
                }
            }
        };
        self.pos = end;
        Ok((true, build.then_some(value)))
    }
}

/// Python allows `_` only between two digits (`1_000`, `0x_ff`).
fn valid_underscores(token: &str) -> bool {
    let b = token.as_bytes();
    b.iter().enumerate().all(|(i, &c)| {
        c != b'_'
            || (i > 0
                && i + 1 < b.len()
                && (b[i - 1].is_ascii_hexdigit() || matches!(b[i - 1], b'x' | b'o' | b'X' | b'O'))
                && b[i + 1].is_ascii_hexdigit())
    })
}

/// Output of a string literal being parsed: nothing (validation only), text, or bytes.
enum Sink {
    Skip,
    Text(String),
    Bytes(Vec<u8>),
}

impl Sink {
    /// Unescaped source text (ASCII-checked beforehand for bytes literals).
    fn push_str(&mut self, s: &str) {
        match self {
            Sink::Skip => {}
            Sink::Text(t) => t.push_str(s),
            Sink::Bytes(b) => b.extend_from_slice(s.as_bytes()),
        }
    }

    /// One character (ASCII-checked beforehand for bytes literals).
    fn push_char(&mut self, c: char) {
        match self {
            Sink::Skip => {}
            Sink::Text(t) => t.push(c),
            Sink::Bytes(b) => {
                let mut buf = [0u8; 4];
                b.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }

    /// An escaped code unit: the byte in a bytes literal, the code point U+00XX in a str.
    fn push_unit(&mut self, unit: u8) {
        match self {
            Sink::Skip => {}
            Sink::Text(t) => t.push(char::from(unit)),
            Sink::Bytes(b) => b.push(unit),
        }
    }
}
