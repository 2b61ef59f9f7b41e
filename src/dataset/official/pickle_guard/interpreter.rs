//! The scan's stack machine: one step per opcode, on sizes only (what each opcode pushes,
//! pops, copies or shares), as serde-pickle would run it.

use super::*;

impl Scan<'_> {
    /// Runs the opcode stream to its STOP.
    pub(super) fn run(mut self) -> Result<Summary, GuardError> {
        loop {
            self.at = self.pos;
            if self.pos >= self.bytes.len() {
                self.op = 0;
                return Err(GuardError::Malformed {
                    offset: self.pos,
                    problem: "the file ends before STOP (truncated?)".to_string(),
                });
            }
            self.op = self.bytes[self.pos];
            self.pos += 1;
            match self.op {
                0x80 => {
                    let version = self.u8()?;
                    if version > 5 {
                        return Err(self.malformed(format!(
                            "protocol {version} is newer than 5, the newest Python writes"
                        )));
                    }
                }
                0x95 => {
                    self.le_u64()?;
                }
                b'.' => {
                    let root = self.pop()?.item;
                    let elements = self.work.saturating_add(self.size(root));
                    if elements > self.limits.max_elements {
                        return Err(self.elements_limit("the decoded value"));
                    }
                    return Ok(Summary {
                        depth: self.depth(root),
                        decoded: self.size(root),
                        elements,
                    });
                }
                b'(' => {
                    if self.frames.len() as u64 >= u64::from(self.limits.max_depth) {
                        return Err(self.limit(format!(
                            "more than {} MARKs are open (the authors' pickles open at most 4; each costs the decoder a 4 KB stack)",
                            self.limits.max_depth
                        )));
                    }
                    let below = std::mem::take(&mut self.stack);
                    self.frames.push(below);
                }
                b'0' => {
                    if self.stack.is_empty() {
                        self.pop_mark()?;
                    } else {
                        self.pop()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    // serde-pickle copies the top (Python would share it: shared here).
                    let top = self.top()?.item;
                    self.charge(self.size(top))?;
                    self.stack.push(Entry::owned(top));
                }
                b'p' => {
                    let id = self.memo_id_line()?;
                    self.memoize(id)?;
                }
                b'q' => {
                    let id = self.u8()?;
                    self.memoize(id.into())?;
                }
                b'r' => {
                    let id = self.le_u32()?;
                    self.memoize(id)?;
                }
                0x94 => {
                    let id = self.memo.len() as u32;
                    self.memoize(id)?;
                }
                b'g' => {
                    let id = self.memo_id_line()?;
                    self.get(id)?;
                }
                b'h' => {
                    let id = self.u8()?;
                    self.get(id.into())?;
                }
                b'j' => {
                    let id = self.le_u32()?;
                    self.get(id)?;
                }
                b'N' | 0x88 | 0x89 => self.push_small()?,
                b'I' | b'L' | b'F' => {
                    self.number_line()?;
                    self.push_small()?;
                }
                b'S' | b'V' => {
                    let n = self.line()?.len() as u64;
                    self.push_content(n)?;
                }
                b'G' => {
                    self.take(8)?;
                    self.push_small()?;
                }
                b'J' => {
                    self.take(4)?;
                    self.push_small()?;
                }
                b'K' => {
                    self.take(1)?;
                    self.push_small()?;
                }
                b'M' => {
                    self.take(2)?;
                    self.push_small()?;
                }
                0x8a | b'C' | b'U' | 0x8c => {
                    let n = u64::from(self.u8()?);
                    self.take(n)?;
                    self.push_content(n)?;
                }
                0x8b | b'T' => {
                    let n = self.le_i32_len()?;
                    self.take(n)?;
                    self.push_content(n)?;
                }
                b'B' | b'X' => {
                    let n = u64::from(self.le_u32()?);
                    self.take(n)?;
                    self.push_content(n)?;
                }
                0x8e | 0x8d | 0x96 => {
                    let n = self.le_u64()?;
                    self.take(n)?;
                    self.push_content(n)?;
                }
                b')' => self.push_small()?,
                0x85..=0x87 => {
                    let n = usize::from(self.op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    self.push_container_of(&items)?;
                }
                b't' | b'l' | b'd' | 0x91 => {
                    let items = self.pop_mark()?;
                    self.push_container_of(&items)?;
                }
                b']' | b'}' | 0x8f => {
                    self.charge(1)?;
                    let item = self.new_node(1, 1, true)?;
                    self.stack.push(Entry::owned(item));
                }
                b'a' => {
                    let value = self.pop()?;
                    let target = self.top()?.item;
                    self.extend(target, &[value])?;
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    let target = self.top()?.item;
                    self.extend(target, &[key, value])?;
                }
                b'e' | b'u' | 0x90 => {
                    let items = self.pop_mark()?;
                    let target = self.top()?.item;
                    self.extend(target, &items)?;
                }
                b'c' => {
                    self.line()?;
                    self.line()?;
                    self.push_small()?;
                }
                0x93 => {
                    // Module and name, copied out of the memo when they are references.
                    for _ in 0..2 {
                        let name = self.pop()?;
                        self.resolve(name)?;
                    }
                    self.push_small()?;
                }
                b'R' => {
                    // The result holds the arguments: set(list), list(...), a reconstructor's
                    // state, or the argument tuple kept as the object's state. serde-pickle
                    // copies the tuple out of the memo, then the arguments inside it.
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.resolve(args)?;
                    self.resolve(callable)?;
                    self.charge(self.size(args.item))?;
                    self.push_container_of(&[args])?;
                }
                b'i' => {
                    self.line()?;
                    self.line()?;
                    let args = self.pop_mark()?;
                    self.push_container_of(&args)?;
                }
                b'o' => {
                    let args = self.pop_mark()?;
                    self.pop()?;
                    self.push_container_of(&args)?;
                }
                0x81 => {
                    let args = self.pop()?;
                    self.pop()?;
                    self.stack.push(args);
                }
                0x92 => {
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    self.pop()?;
                    self.push_container_of(&[args, kwargs])?;
                }
                b'b' => {
                    // serde-pickle replaces the object by its state.
                    let state = self.pop()?;
                    self.pop()?;
                    self.stack.push(state);
                }
                b'P' | b'Q' | 0x82..=0x84 | 0x97 | 0x98 => {
                    return Err(self.malformed(
                        "not supported (persistent ids, the extension registry and out-of-band buffers need code the importer does not run)",
                    ));
                }
                _ => return Err(self.malformed("unknown opcode")),
            }
        }
    }
}
