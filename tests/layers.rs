//! The module layers: every `crate::X` path in `src/` must point at the same top-level module
//! or one listed below it in [`LAYERS`], so data flows upwards only and no two top-level
//! modules import each other. `cargo test --release --test suite layers:: -- --nocapture`
//! prints the dependency listing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules from the bottom up; a module may import those on its own row or below
/// (`same row` only where two modules never import each other).
const LAYERS: &[&[&str]] = &[
    &[
        "allocator",
        "faults",
        "guard",
        "native",
        "openmp",
        "pool",
        "vml",
    ],
    &["optim"],
    &["device"],
    &["eval", "text"],
    &["modality"],
    &["dataset"],
    &["prepare", "graph"],
    &["config"],
    &["model"],
    &["record"],
    &["train"],
    &["experiment", "report"],
    &["scaling", "plan"],
    &["check"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|row| row.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None` for `lib.rs` and `main.rs`).
fn owner(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// Top-level modules named by `crate::NAME` paths in `text` (the crate's constants, such as
/// `crate::DEFAULT_SEED`, are not modules). Comment lines are skipped: doc links are not imports.
fn imported_modules(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                found.insert(name);
            }
            rest = after;
        }
    }
    found
}

fn dependencies() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut deps: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in files {
        let Some(module) = owner(&src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("source file is readable");
        let entry = deps.entry(module.clone()).or_default();
        for target in imported_modules(&text) {
            if target != module {
                let rel = file.strip_prefix(&src).unwrap().display().to_string();
                entry.entry(target).or_default().insert(rel);
            }
        }
    }
    deps
}

#[test]
fn no_module_imports_one_above_it() {
    let deps = dependencies();
    let mut listing = String::new();
    let mut violations = Vec::new();
    for (module, targets) in &deps {
        let names: Vec<&str> = targets.keys().map(String::as_str).collect();
        listing.push_str(&format!("{module} -> {}\n", names.join(", ")));
        let Some(own) = layer_of(module) else {
            violations.push(format!("top-level module {module} is not in LAYERS"));
            continue;
        };
        for (target, files) in targets {
            match layer_of(target) {
                None => violations.push(format!("{target} (imported by {module}) is not in LAYERS")),
                Some(layer) if layer > own => violations.push(format!(
                    "{module} imports {target}, a higher layer ({})",
                    files.iter().cloned().collect::<Vec<_>>().join(", ")
                )),
                Some(layer) if layer == own => violations.push(format!(
                    "{module} imports {target}, on the same layer ({}): give one of them its own row",
                    files.iter().cloned().collect::<Vec<_>>().join(", ")
                )),
                _ => {}
            }
        }
    }
    println!("{listing}");
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    // The check read the real tree: every layer's modules exist.
    let expected: usize = LAYERS.iter().map(|row| row.len()).sum();
    let seen: BTreeSet<&str> = LAYERS
        .iter()
        .flat_map(|row| row.iter().copied())
        .filter(|m| {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
            src.join(format!("{m}.rs")).exists() || src.join(m).join("mod.rs").exists()
        })
        .collect();
    assert_eq!(seen.len(), expected, "a module in LAYERS has no file");
}

#[test]
fn the_scanner_sees_imports_and_ignores_comments() {
    let text = "use crate::dataset::X;\n// crate::cli is a comment\nlet a = crate::DEFAULT_SEED;\n    crate::faults::point(|| x); crate::graph::y();\n";
    let found: Vec<String> = imported_modules(text).into_iter().collect();
    assert_eq!(found, ["dataset", "faults", "graph"]);
    assert_eq!(layer_of("cli"), Some(LAYERS.len() - 1));
    assert!(layer_of("record") > layer_of("model") && layer_of("record") < layer_of("train"));
}
