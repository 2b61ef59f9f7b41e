//! A bounded pre-scan of a pickle's opcode stream, run before serde-pickle sees the bytes.
//!
//! serde-pickle decodes in two steps: it runs the opcodes on a stack machine whose memo holds
//! references, then expands the result into a tree by recursion, copying out every memo
//! reference. A hostile file can therefore
//!
//! * nest deeper than the recursion's stack allows (`]` then `a`, repeated: 2 bytes a level, so
//!   a 200 KB file nests 100,000 lists and aborts the process);
//! * decode to a tree far larger than the file: DUP copies the stack top while the stream is
//!   read, so DUP + TUPLE2 doubles the value in 2 bytes (64 bytes exhaust 2 GB and abort); a
//!   list referenced n times through the memo is expanded n times (a 2 MB list of 10^6
//!   references to a 64-element list aborts under 2 GB; serde-pickle's reference counts stop
//!   the exponential form, a level of two references to the level below, only with a misleading
//!   "recursive structure found");
//! * open MARKs without closing them: serde-pickle reserves a 128-entry stack (4 KB) for each.
//!
//! The scan runs the same stack machine on sizes only (linear time, memory proportional to the
//! number of containers in the file) and refuses the file when the decoded value would nest
//! deeper than [`MAX_DEPTH`], when more than [`MAX_DEPTH`] MARKs are open, or when the elements
//! the decoder creates (every value the stream pushes, every copy DUP, a memo store or a
//! reduce makes, and the fully expanded result) exceed [`Limits::for_file`]: 4 per byte of the
//! file and at least 2^20. The authors' pickles need far less: every pickle of
//! `official-beauty` and `mmsr-sample` nests at most 4 deep and counts at most 0.68 elements a
//! byte (`train.txt`, 30 MB: 0.62; the numpy centre pickles 0.13), a margin of 5.9 or more;
//! importing official-beauty (46 MB of pickles) peaks at 310 MB, so a file at the limit costs
//! about 6 times that share of memory, and a small file at most 2^20 elements (tens of MB).
//!
//! Sharing is modelled as Python does it (a memo GET or DUP is the same object); a container
//! that is changed after it was put into another, or put into itself, is refused: Python's
//! pickler never writes that outside recursive structures, which serde-pickle rejects anyway,
//! and forbidding it makes every container's size final when it is first shared, so the sizes
//! the scan adds up are exact upper bounds. Opcodes of protocols 0 to 5 that serde-pickle
//! decodes are accepted; persistent ids, the extension registry and out-of-band buffers are
//! refused, as is anything unknown.

use std::collections::HashMap;
use std::fmt;

mod interpreter;
mod stream;
use stream::opcode_name;

/// The deepest nesting of the decoded value, and the most MARKs open at once. The official
/// pickles nest 4 deep (list of lists of lists of lists of ids) and open at most 4 MARKs.
pub const MAX_DEPTH: u32 = 64;
/// Decoded elements allowed per byte of the file.
pub const ELEMENTS_PER_BYTE: u64 = 4;
/// Decoded elements allowed for any file, however small (2^20).
pub const MIN_ELEMENTS: u64 = 1 << 20;
/// A string or byte string counts one element per this many bytes of content, plus one.
const CONTENT_BYTES_PER_ELEMENT: u64 = 16;
/// The longest decimal number line (INT, LONG, FLOAT, PUT, GET) of protocol 0: 64-bit numbers
/// need 21 characters; big-integer parsing is quadratic in the length.
const MAX_NUMBER_LINE: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_depth: u32,
    pub max_elements: u64,
}

impl Limits {
    /// The limits for a file of `len` bytes (see the module documentation).
    pub fn for_file(len: usize) -> Self {
        Self {
            max_depth: MAX_DEPTH,
            max_elements: (len as u64)
                .saturating_mul(ELEMENTS_PER_BYTE)
                .max(MIN_ELEMENTS),
        }
    }
}

/// What an accepted pickle decodes to, as far as the scan can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Nesting depth of the decoded value (a list of numbers: 1).
    pub depth: u32,
    /// Elements of the decoded value (an upper bound; long strings count one per 16 bytes).
    pub decoded: u64,
    /// Elements the decoder creates (an upper bound), the quantity [`Limits::max_elements`]
    /// bounds.
    pub elements: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardError {
    /// Not a pickle the decoder could read (truncated, unknown opcode, stack underflow).
    Malformed { offset: usize, problem: String },
    /// A readable pickle beyond a limit.
    Limit { offset: usize, problem: String },
}

impl fmt::Display for GuardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuardError::Malformed { offset, problem } => {
                write!(f, "not a readable pickle: at byte {offset}: {problem}")
            }
            GuardError::Limit { offset, problem } => {
                write!(
                    f,
                    "pickle refused before decoding: at byte {offset}: {problem}"
                )
            }
        }
    }
}

impl std::error::Error for GuardError {}

/// Scans `bytes` (one pickle, up to its STOP) against `limits`.
pub fn check(bytes: &[u8], limits: &Limits) -> Result<Summary, GuardError> {
    Scan {
        bytes,
        pos: 0,
        at: 0,
        op: 0,
        limits: *limits,
        nodes: Vec::new(),
        stack: Vec::new(),
        frames: Vec::new(),
        memo: HashMap::new(),
        work: 0,
    }
    .run()
}

/// A stack entry: a one-element immutable value (number, None, short string, global), or a
/// node of the arena (containers, long strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Small,
    Node(u32),
}

/// A stack entry: the value, and whether serde-pickle holds it as a memo reference (which it
/// copies out when it stores it again or passes it to REDUCE / STACK_GLOBAL).
#[derive(Debug, Clone, Copy)]
struct Entry {
    item: Item,
    is_ref: bool,
}

impl Entry {
    fn owned(item: Item) -> Self {
        Self {
            item,
            is_ref: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Node {
    /// Elements of the decoded value, every shared part counted at each place it occurs.
    size: u64,
    depth: u32,
    container: bool,
    /// Placed inside another value: its size is final.
    sealed: bool,
}

struct Scan<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Offset and byte of the opcode being run.
    at: usize,
    op: u8,
    limits: Limits,
    nodes: Vec<Node>,
    stack: Vec<Entry>,
    /// The stacks below the open MARKs (serde-pickle's layout: MARK starts a new stack).
    frames: Vec<Vec<Entry>>,
    memo: HashMap<u32, Item>,
    /// Elements created so far: pushed values and copies.
    work: u64,
}

impl<'a> Scan<'a> {
    fn op_label(&self) -> String {
        format!(
            "{} (0x{:02x})",
            opcode_name(self.op).unwrap_or("?"),
            self.op
        )
    }

    fn malformed(&self, problem: impl Into<String>) -> GuardError {
        GuardError::Malformed {
            offset: self.at,
            problem: format!("{}: {}", self.op_label(), problem.into()),
        }
    }

    fn limit(&self, problem: impl Into<String>) -> GuardError {
        GuardError::Limit {
            offset: self.at,
            problem: problem.into(),
        }
    }

    fn elements_limit(&self, what: &str) -> GuardError {
        self.limit(format!(
            "{what} would exceed {} elements, the limit for a file of {} bytes ({ELEMENTS_PER_BYTE} per byte, at least {MIN_ELEMENTS}; the authors' pickles decode to under 1 per byte): memo references (GET) or DUP repeat containers",
            self.limits.max_elements,
            self.bytes.len()
        ))
    }

    fn depth_limit(&self) -> GuardError {
        self.limit(format!(
            "the value nests deeper than {} levels (the authors' pickles nest 4 deep; deeper nesting would overflow the decoder's stack)",
            self.limits.max_depth
        ))
    }

    fn size(&self, item: Item) -> u64 {
        match item {
            Item::Small => 1,
            Item::Node(i) => self.nodes[i as usize].size,
        }
    }

    fn depth(&self, item: Item) -> u32 {
        match item {
            Item::Small => 0,
            Item::Node(i) => self.nodes[i as usize].depth,
        }
    }

    /// Counts `n` created elements.
    fn charge(&mut self, n: u64) -> Result<(), GuardError> {
        self.work = self.work.saturating_add(n);
        if self.work > self.limits.max_elements {
            return Err(self.elements_limit("the values the stream creates"));
        }
        Ok(())
    }

    fn new_node(&mut self, size: u64, depth: u32, container: bool) -> Result<Item, GuardError> {
        if size > self.limits.max_elements {
            return Err(self.elements_limit("a decoded value"));
        }
        if depth > self.limits.max_depth {
            return Err(self.depth_limit());
        }
        let index = u32::try_from(self.nodes.len())
            .map_err(|_| self.limit("more than 2^32 containers and strings"))?;
        self.nodes.push(Node {
            size,
            depth,
            container,
            sealed: false,
        });
        Ok(Item::Node(index))
    }

    /// Pushes a new string, byte string or big number of `content` bytes.
    fn push_content(&mut self, content: u64) -> Result<(), GuardError> {
        let size = 1 + content / CONTENT_BYTES_PER_ELEMENT;
        self.charge(size)?;
        let item = if size == 1 {
            Item::Small
        } else {
            self.new_node(size, 0, false)?
        };
        self.stack.push(Entry::owned(item));
        Ok(())
    }

    fn push_small(&mut self) -> Result<(), GuardError> {
        self.charge(1)?;
        self.stack.push(Entry::owned(Item::Small));
        Ok(())
    }

    fn seal(&mut self, entries: &[Entry]) {
        for entry in entries {
            if let Item::Node(i) = entry.item {
                self.nodes[i as usize].sealed = true;
            }
        }
    }

    /// Pushes a new container holding `children` (which become part of it).
    fn push_container_of(&mut self, children: &[Entry]) -> Result<(), GuardError> {
        let size = children
            .iter()
            .fold(1u64, |acc, c| acc.saturating_add(self.size(c.item)));
        let depth = 1 + children
            .iter()
            .map(|c| self.depth(c.item))
            .max()
            .unwrap_or(0);
        self.charge(1)?;
        let item = self.new_node(size, depth, true)?;
        self.seal(children);
        self.stack.push(Entry::owned(item));
        Ok(())
    }

    /// The elements serde-pickle copies when it resolves `entry` (a memo reference).
    fn resolve(&mut self, entry: Entry) -> Result<(), GuardError> {
        if entry.is_ref {
            self.charge(self.size(entry.item))?;
        }
        Ok(())
    }

    /// Adds `children` to the container `target` (APPEND, SETITEM, ADDITEMS and their batches).
    fn extend(&mut self, target: Item, children: &[Entry]) -> Result<(), GuardError> {
        let Item::Node(t) = target else {
            return Err(self.malformed("the stack item it adds to is not a list, dict or set"));
        };
        let node = self.nodes[t as usize];
        if !node.container {
            return Err(self.malformed("the stack item it adds to is not a list, dict or set"));
        }
        if node.sealed {
            return Err(self.limit(
                "a container is changed after it was put into another value (only recursive structures do that; they are not supported)",
            ));
        }
        if children.iter().any(|c| c.item == target) {
            return Err(
                self.limit("a container is put into itself (a recursive structure; not supported)")
            );
        }
        let size = children
            .iter()
            .fold(node.size, |acc, c| acc.saturating_add(self.size(c.item)));
        let depth = children
            .iter()
            .map(|c| self.depth(c.item) + 1)
            .fold(node.depth, u32::max);
        if size > self.limits.max_elements {
            return Err(self.elements_limit("a decoded value"));
        }
        if depth > self.limits.max_depth {
            return Err(self.depth_limit());
        }
        self.nodes[t as usize].size = size;
        self.nodes[t as usize].depth = depth;
        self.seal(children);
        Ok(())
    }

    fn pop(&mut self) -> Result<Entry, GuardError> {
        self.stack
            .pop()
            .ok_or_else(|| self.malformed("the stack (above the last MARK) is empty"))
    }

    fn top(&self) -> Result<Entry, GuardError> {
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.malformed("the stack (above the last MARK) is empty"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Entry>, GuardError> {
        let below = self
            .frames
            .pop()
            .ok_or_else(|| self.malformed("no MARK is open"))?;
        Ok(std::mem::replace(&mut self.stack, below))
    }

    fn memoize(&mut self, id: u32) -> Result<(), GuardError> {
        // The value moves into the memo (copied out first if it is a reference); the stack
        // keeps a reference.
        let entry = self.pop()?;
        self.resolve(entry)?;
        self.memo.insert(id, entry.item);
        self.stack.push(Entry {
            item: entry.item,
            is_ref: true,
        });
        Ok(())
    }

    fn get(&mut self, id: u32) -> Result<(), GuardError> {
        let item = *self
            .memo
            .get(&id)
            .ok_or_else(|| self.malformed(format!("memo id {id} was never stored")))?;
        self.charge(1)?;
        self.stack.push(Entry { item, is_ref: true });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
