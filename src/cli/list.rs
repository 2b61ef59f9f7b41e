//! `mmsr-bench datasets` and `mmsr-bench models`.

use std::process::ExitCode;

use anyhow::Result;

use crate::config::ModelSpec;
use crate::dataset::registry::{self, SYNTHETIC};
use crate::dataset::store;
use crate::model::{self, ModelEntry, REGISTRY};
use crate::report::table::new_table;

use super::Cli;

pub fn datasets(cli: &Cli) -> Result<ExitCode> {
    let mut table = new_table(false);
    table.set_header(vec!["dataset", "status", "users", "items", "interactions"]);
    let mut names = registry::known_names(&cli.data_dir);
    for recipe in crate::prepare::offline::names() {
        if !names.iter().any(|n| n == recipe) {
            names.push(recipe.to_string());
        }
    }
    for name in names {
        let dir = registry::prepared_dir(&cli.data_dir, &name);
        let row = match store::read_manifest(&dir) {
            Ok(m) => vec![
                name,
                format!("prepared in {}", dir.display()),
                m.counts.users.to_string(),
                m.counts.items.to_string(),
                m.counts.interactions.to_string(),
            ],
            Err(_) if name == SYNTHETIC => vec![
                name,
                "embedded (generated in-process)".into(),
                String::new(),
                String::new(),
                String::new(),
            ],
            Err(_) => vec![
                name.clone(),
                if crate::prepare::offline::names().contains(&name.as_str()) {
                    format!("not prepared (offline recipe: mmsr-bench prepare {name})")
                } else {
                    "not prepared".into()
                },
                String::new(),
                String::new(),
                String::new(),
            ],
        };
        table.add_row(row);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}

/// Ablation presets are listed apart from the models (their summary says so).
fn is_ablation(entry: &ModelEntry) -> bool {
    entry.summary.starts_with("ablation: ")
}

/// Pipes in table cells would end the cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The registered models as a Markdown table (what `models --markdown` prints first and the
/// README's `models` snippet shows).
pub fn models_markdown() -> String {
    let mut out = String::from("| model | family | type | what |\n|---|---|---|---|\n");
    for entry in REGISTRY.iter().filter(|e| !is_ablation(e)) {
        out.push_str(&format!(
            "| `{}` | {} | `{}` | {} |\n",
            entry.name,
            entry.family.group(),
            entry.family.name,
            cell(entry.summary)
        ));
    }
    out
}

/// The HAN-GNN ablation presets as a Markdown table, with the parameters each fixes.
pub fn ablations_markdown() -> String {
    let mut out = String::from("| ablation | fixes | what |\n|---|---|---|\n");
    for entry in REGISTRY.iter().filter(|e| is_ablation(e)) {
        let fixes: Vec<String> = entry
            .preset()
            .iter()
            .map(|(k, v)| format!("`{k}: {}`", v.to_string().trim_matches('"')))
            .collect();
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            entry.name,
            fixes.join(", "),
            cell(entry.summary.trim_start_matches("ablation: "))
        ));
    }
    out
}

pub fn models(args: &ModelsArgs) -> Result<ExitCode> {
    if args.markdown {
        print!("{}\n{}", models_markdown(), ablations_markdown());
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = new_table(false);
    if !args.params {
        table.set_header(vec!["model", "family", "type", "description"]);
        for entry in REGISTRY {
            table.add_row(vec![
                entry.name,
                entry.family.group(),
                entry.family.name,
                entry.summary,
            ]);
        }
        println!("{table}");
        return Ok(ExitCode::SUCCESS);
    }
    table.set_header(vec!["model", "parameter", "default"]);
    for entry in REGISTRY {
        let resolved = model::resolve(&ModelSpec::named(entry.name))?;
        let preset = entry.preset();
        let params = resolved.params.as_object().cloned().unwrap_or_default();
        if params.is_empty() {
            table.add_row(vec![entry.name.to_string(), "(none)".into(), String::new()]);
        }
        for (i, (name, value)) in params.iter().enumerate() {
            let mut shown = value.to_string().trim_matches('"').to_string();
            if preset.contains_key(name) {
                shown.push_str(&format!(
                    "  (fixed by this preset of {})",
                    entry.family.name
                ));
            }
            let model = if i == 0 { entry.name } else { "" };
            table.add_row(vec![model.to_string(), name.clone(), shown]);
        }
        for name in entry.family.optional_parameters {
            table.add_row(vec![
                String::new(),
                name.to_string(),
                "false  (stored only when set)".into(),
            ]);
        }
    }
    println!("{table}");
    println!(
        "Set a parameter with --set model.<model>.<parameter>=<value>, or per model in an experiment file."
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    /// Print every model's parameters with their defaults.
    #[arg(long, conflicts_with = "markdown")]
    pub params: bool,
    /// Print the models and the ablation presets as Markdown tables (the README's tables).
    #[arg(long)]
    pub markdown: bool,
}
