//! Reading the opcode stream: the opcode table (names for errors) and the argument readers
//! (lengths, lines, numbers), each bounds-checked against the bytes left.

use super::*;

pub(super) fn opcode_name(op: u8) -> Option<&'static str> {
    Some(match op {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => return None,
    })
}

impl<'a> Scan<'a> {
    pub(super) fn take(&mut self, n: u64) -> Result<&'a [u8], GuardError> {
        let left = (self.bytes.len() - self.pos) as u64;
        if n > left {
            return Err(self.malformed(format!(
                "needs {n} bytes, the file has {left} left (truncated?)"
            )));
        }
        let (bytes, start) = (self.bytes, self.pos);
        self.pos += n as usize;
        Ok(&bytes[start..self.pos])
    }

    pub(super) fn u8(&mut self) -> Result<u8, GuardError> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn le_u32(&mut self) -> Result<u32, GuardError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(super) fn le_u64(&mut self) -> Result<u64, GuardError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(super) fn le_i32_len(&mut self) -> Result<u64, GuardError> {
        let n = self.le_u32()? as i32;
        if n < 0 {
            return Err(self.malformed(format!("negative length {n}")));
        }
        Ok(n as u64)
    }

    /// A newline-terminated argument (protocol 0), without its line end.
    pub(super) fn line(&mut self) -> Result<&'a [u8], GuardError> {
        let bytes = self.bytes;
        let rest = &bytes[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return Err(self.malformed("the line argument has no newline (truncated?)"));
        };
        self.pos += end + 1;
        let line = &rest[..end];
        Ok(line.strip_suffix(b"\r").unwrap_or(line))
    }

    pub(super) fn number_line(&mut self) -> Result<&'a [u8], GuardError> {
        let line = self.line()?;
        if line.len() > MAX_NUMBER_LINE {
            let n = line.len();
            return Err(self.limit(format!(
                "a decimal number of {n} characters (at most {MAX_NUMBER_LINE}: 64-bit numbers need 21, and parsing longer ones is quadratic)"
            )));
        }
        Ok(line)
    }

    pub(super) fn memo_id_line(&mut self) -> Result<u32, GuardError> {
        let line = self.number_line()?;
        let id = std::str::from_utf8(line).ok().and_then(|s| s.parse().ok());
        id.ok_or_else(|| self.malformed("the memo id is not a number"))
    }
}
