//! `mmsr-bench docs`: regenerates (or, with `--check`, verifies) the generated blocks of the
//! Markdown documents (README.md, docs/, leaderboard/) from the model registry and the
//! committed result files, so that no table in the docs is copied by hand.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use super::list::{ablations_markdown, models_markdown};
use crate::record::write_atomically;
use crate::report::snippets::{self, Spec};
use crate::scaling::report::fits_table;
use crate::scaling::Study;

#[derive(Debug, Args)]
pub struct DocsArgs {
    /// Verify instead of writing: exit 1 naming the first block whose text differs.
    #[arg(long)]
    pub check: bool,
    /// The repository root (documents and result folders are found below it).
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// The model every other is tested against in generated leaderboard tables.
    #[arg(long, default_value = "han-gnn")]
    pub reference: String,
}

/// The documents that may hold generated blocks: README.md, docs/*.md, leaderboard/README.md
/// and leaderboard/*/README.md (those present), sorted.
pub fn documents(root: &Path) -> Result<Vec<PathBuf>> {
    let mut found = vec![root.join("README.md"), root.join("leaderboard/README.md")];
    for dir in [root.join("docs"), root.join("leaderboard")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry
                .with_context(|| format!("reading {}", dir.display()))?
                .path();
            if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            } else if path.join("README.md").is_file() {
                found.push(path.join("README.md"));
            }
        }
    }
    found.retain(|p| p.is_file());
    found.sort();
    found.dedup();
    Ok(found)
}

/// The text of one block.
pub fn render(root: &Path, spec: &str, reference: &str) -> Result<String> {
    Ok(match Spec::parse(spec)? {
        Spec::Models => models_markdown(),
        Spec::Ablations => ablations_markdown(),
        Spec::Board { folder, dataset } => snippets::board(root, &folder, &dataset, reference)?,
        Spec::Grid { folder, metric } => snippets::grid(root, &folder, &metric, reference)?,
        Spec::Missing { folder, dataset } => snippets::missing_study(root, &folder, &dataset)?,
        Spec::Reproduction { folder } => snippets::reproduction_tables(root, &folder)?,
        Spec::Published { folder } => snippets::published_tables(root, &folder)?,
        Spec::Scaling { folder } => {
            let path = root.join(&folder).join("scaling.json");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let study: Study = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a scaling study", path.display()))?;
            format!(
                "{}\nTraining time against each factor (log–log fits, 95 % intervals). Generated from [`{folder}`]({{root}}{folder}/scaling.md) by `mmsr-bench docs`.\n",
                fits_table(&study)
            )
        }
    })
}

/// A document with its blocks regenerated.
pub fn regenerate(root: &Path, document: &Path, reference: &str) -> Result<(String, String)> {
    let text = std::fs::read_to_string(document)
        .with_context(|| format!("reading {}", document.display()))?;
    let fresh = snippets::fill(&text, |spec| {
        render(root, spec, reference).map(|body| snippets::relative_links(&body, document, root))
    })
    .with_context(|| format!("{}", document.display()))?;
    Ok((text, fresh))
}

pub fn execute(args: &DocsArgs) -> Result<ExitCode> {
    let mut stale = 0;
    let mut blocks = 0;
    for document in documents(&args.root)? {
        let (text, fresh) = regenerate(&args.root, &document, &args.reference)?;
        blocks += snippets::blocks(&text)?.len();
        if text == fresh {
            continue;
        }
        if args.check {
            stale += 1;
            let (line, ours, generated) =
                snippets::first_difference(&text, &fresh).expect("texts differ");
            eprintln!(
                "{}:{line}: differs from its generated text\n  committed: {ours}\n  generated: {generated}",
                document.display()
            );
        } else {
            write_atomically(&document, fresh.as_bytes())?;
            println!("rewrote {}", document.display());
        }
    }
    if stale > 0 {
        eprintln!("{stale} document(s) are stale: run `mmsr-bench docs` and commit the result");
        return Ok(ExitCode::from(1));
    }
    println!(
        "{blocks} generated block(s) {}",
        if args.check { "up to date" } else { "written" }
    );
    Ok(ExitCode::SUCCESS)
}
