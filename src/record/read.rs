//! Reading a results folder that may come from a stranger (`check`, `leaderboard`, `merge`):
//! symbolic links are never followed, files above [`MAX_INPUT_BYTES`] are not read, a result
//! whose dataset or model name is unsafe as a file name is refused, and no message echoes more
//! than [`ECHO_BYTES`] of any value read from a file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::result::{file_name_component, path_name_fields, NAME_RULE};
use super::RunResult;

/// The most bytes of one value [`abbreviate`] leaves whole.
pub const ECHO_BYTES: usize = 320;
const ECHO_HEAD: usize = 200;
const ECHO_TAIL: usize = 64;

fn push_escaped(c: char, out: &mut String) {
    if c.is_control() {
        out.extend(c.escape_debug());
    } else {
        out.push(c);
    }
}

/// A value from a submitted file made fit for one line of a message: control characters
/// escaped (`\n`, `\u{1b}`: no value forges a line or drives a terminal) and, when that is
/// longer than [`ECHO_BYTES`], only its first 200 and last 64 bytes around a marker with the
/// value's length in bytes (`…[52428800 bytes in all]…`). The result is never longer than
/// [`ECHO_BYTES`], so abbreviating it again changes nothing. Costs one pass over the head and
/// tail only, whatever the value's size.
pub fn abbreviate(value: &str) -> String {
    let mut head = String::new();
    let mut cut = None;
    for (i, c) in value.char_indices() {
        let before = head.len();
        push_escaped(c, &mut head);
        if head.len() > ECHO_BYTES {
            head.truncate(before);
            cut = Some(i);
            break;
        }
    }
    let Some(cut) = cut else {
        return head;
    };
    // Longer than ECHO_BYTES escaped: keep ECHO_HEAD bytes of the head (whole characters) and
    // ECHO_TAIL of the tail, which cannot overlap (ECHO_HEAD + ECHO_TAIL < ECHO_BYTES), around
    // a marker of at most 41 bytes (ECHO_HEAD + 41 + ECHO_TAIL <= ECHO_BYTES).
    let mut keep = 0;
    let mut short = String::new();
    for c in value[..cut].chars() {
        let before = short.len();
        push_escaped(c, &mut short);
        if short.len() > ECHO_HEAD {
            short.truncate(before);
            break;
        }
        keep += c.len_utf8();
    }
    let mut tail: Vec<String> = Vec::new();
    let mut tail_bytes = 0;
    for c in value[keep..].chars().rev() {
        let mut piece = String::new();
        push_escaped(c, &mut piece);
        if tail_bytes + piece.len() > ECHO_TAIL {
            break;
        }
        tail_bytes += piece.len();
        tail.push(piece);
    }
    tail.reverse();
    format!("{short}…[{} bytes in all]…{}", value.len(), tail.concat())
}

/// The largest file of a results folder that is read, in bytes (16 MiB): result files,
/// `summary.json`, `leaderboard.json`, `index.html`. The largest committed one is under 1 MiB;
/// a larger file is refused from its metadata, before a byte of it is read.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// Why a file of a results folder is not read.
#[derive(Debug)]
pub enum Unread {
    /// A symbolic link (holding this target): never followed, since it may point anywhere
    /// outside the folder, at a huge or endless file, or at itself.
    Link(PathBuf),
    /// Neither a regular file nor a folder (a FIFO, socket or device).
    Special,
    /// Its size in bytes, above [`MAX_INPUT_BYTES`].
    TooLarge(u64),
    Io(std::io::Error),
}

impl std::fmt::Display for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unread::Link(target) => write!(
                f,
                "a symbolic link (to {}), not followed: a results folder holds its files itself",
                abbreviate(&target.display().to_string())
            ),
            Unread::Special => write!(f, "not a regular file (a FIFO, socket or device), not read"),
            Unread::TooLarge(bytes) => write!(
                f,
                "{bytes} bytes, above the limit of {MAX_INPUT_BYTES} bytes (16 MiB) for one file of a results folder; not read"
            ),
            Unread::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Whether `path` may be read: a regular file itself (not a link to one) of at most
/// [`MAX_INPUT_BYTES`], judged from its metadata alone.
pub fn readable_input(path: &Path) -> Result<(), Unread> {
    let meta = std::fs::symlink_metadata(path).map_err(Unread::Io)?;
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Err(Unread::Link(std::fs::read_link(path).unwrap_or_default()));
    }
    if !kind.is_file() {
        return Err(Unread::Special);
    }
    if meta.len() > MAX_INPUT_BYTES {
        return Err(Unread::TooLarge(meta.len()));
    }
    Ok(())
}

/// The bytes of a file of a results folder, after [`readable_input`] and never more than
/// [`MAX_INPUT_BYTES`] of them (a file that grows meanwhile is refused as too large).
pub fn read_input(path: &Path) -> Result<Vec<u8>, Unread> {
    use std::io::Read;
    readable_input(path)?;
    let file = std::fs::File::open(path).map_err(Unread::Io)?;
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(Unread::Io)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(Unread::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The `.json` files below a folder, found without following symbolic links, and what was
/// not walked or read.
#[derive(Debug, Default)]
pub struct Walk {
    /// Regular `.json` files, sorted.
    pub files: Vec<PathBuf>,
    /// Symbolic links (to files or folders, loops included; the folder itself when it is one)
    /// and special files, each with why it was left alone, sorted by path.
    pub unread: Vec<(PathBuf, Unread)>,
}

/// Walks `dir` without following any symbolic link: a link is listed in `unread`, never
/// opened, so links out of the folder, to `/`, or in loops cost nothing.
pub fn walk_json(dir: &Path) -> Result<Walk> {
    let mut walk = Walk::default();
    let meta =
        std::fs::symlink_metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(dir).unwrap_or_default();
        walk.unread.push((dir.to_path_buf(), Unread::Link(target)));
        return Ok(walk);
    }
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            let path = entry.path();
            // The entry's own type: a link is a link, whatever it points at.
            let kind = entry
                .file_type()
                .with_context(|| format!("reading {}", path.display()))?;
            if kind.is_symlink() {
                let target = std::fs::read_link(&path).unwrap_or_default();
                walk.unread.push((path, Unread::Link(target)));
            } else if kind.is_dir() {
                pending.push(path);
            } else if !kind.is_file() {
                walk.unread.push((path, Unread::Special));
            } else if path.extension().is_some_and(|e| e == "json") {
                walk.files.push(path);
            }
        }
    }
    walk.files.sort();
    walk.unread.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(walk)
}

/// The problems of a result's names that become file names (see
/// [`crate::record::result::file_name_component`]): each field with what was found there (the
/// value quoted and why it is refused, abbreviated).
pub fn name_problems(r: &RunResult) -> Vec<(&'static str, String)> {
    path_name_fields(r)
        .into_iter()
        .filter_map(|(field, name)| {
            file_name_component(name)
                .err()
                .map(|why| (field, abbreviate(&format!("{name:?} ({why})"))))
        })
        .collect()
}

/// Every result file under `dir/runs/` (sorted by path), each with its path. Refused, before
/// anything is made from them: a symbolic link or special file anywhere under `runs/` (links
/// are never followed), a file above [`MAX_INPUT_BYTES`], and a result whose dataset or model
/// name is not safe as a file name. Messages quote at most a few hundred bytes of any value.
pub fn load_results(dir: &Path) -> Result<Vec<(PathBuf, RunResult)>> {
    let runs = dir.join("runs");
    anyhow::ensure!(
        runs.is_dir(),
        "{} has no runs/ folder: not a results directory (run-all writes results/runs/...)",
        dir.display()
    );
    let walk = walk_json(&runs)?;
    if let Some((path, why)) = walk.unread.first() {
        anyhow::bail!(
            "{}: {why}{}",
            abbreviate(&path.display().to_string()),
            match walk.unread.len() {
                1 => String::new(),
                n => format!(
                    " (and {} more such entries under {})",
                    n - 1,
                    runs.display()
                ),
            }
        );
    }
    let mut results = Vec::with_capacity(walk.files.len());
    for path in walk.files {
        let shown = abbreviate(&path.display().to_string());
        readable_input(&path).map_err(|why| anyhow::anyhow!("{shown}: {why}"))?;
        // Each message of the chain abbreviated: a parser's message may quote a huge value.
        let r = RunResult::load(&path).map_err(|e| {
            let chain: Vec<String> = e.chain().map(|c| abbreviate(&c.to_string())).collect();
            anyhow::anyhow!("{}", chain.join(": "))
        })?;
        if let Some((field, found)) = name_problems(&r).into_iter().next() {
            anyhow::bail!(
                "{shown}: {field}: expected {NAME_RULE}; found {found}; not read, since names become file names"
            );
        }
        results.push((path, r));
    }
    Ok(results)
}

/// The `.json` files below `dir`, recursively, without following symbolic links: a link or
/// special file below `dir` is an error (see [`walk_json`] for a walk that lists them).
pub fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let walk = walk_json(dir)?;
    if let Some((path, why)) = walk.unread.first() {
        anyhow::bail!("{}: {why}", path.display());
    }
    out.extend(walk.files);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abbreviate_keeps_short_values_and_bounds_long_ones() {
        assert_eq!(abbreviate("synthetic"), "synthetic");
        assert_eq!(abbreviate(""), "");
        assert_eq!(abbreviate("a\nb\u{1b}[2J"), "a\\nb\\u{1b}[2J");
        let exact = "x".repeat(ECHO_BYTES);
        assert_eq!(abbreviate(&exact), exact);

        let long = format!("{}{}", "h".repeat(50_000_000), "TAIL");
        let short = abbreviate(&long);
        assert!(short.len() <= ECHO_BYTES, "{} bytes", short.len());
        assert_eq!(abbreviate(&short), short);
        assert!(short.starts_with(&"h".repeat(ECHO_HEAD)), "{short}");
        assert!(short.contains("…[50000004 bytes in all]…"), "{short}");
        assert!(short.ends_with("hTAIL"), "{short}");

        // Multi-byte characters are never split, escapes never grow the result past the bound.
        for unit in ["é", "日本", "\u{1b}", "\0", "a\n"] {
            let long = unit.repeat(10_000);
            let short = abbreviate(&long);
            assert!(short.len() <= ECHO_BYTES, "{unit:?}: {} bytes", short.len());
            assert_eq!(abbreviate(&short), short);
            assert!(short.contains(&format!("[{} bytes in all]", long.len())));
            assert!(!short.chars().any(char::is_control), "{short}");
        }
        let just_over = "é".repeat(ECHO_BYTES / 2 + 1);
        assert!(abbreviate(&just_over).contains("bytes in all"));
    }
}
