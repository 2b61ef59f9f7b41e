//! `mmsr-bench datasets` and `mmsr-bench models`.

use std::process::ExitCode;

use anyhow::Result;

use crate::dataset::registry::{self, SYNTHETIC};
use crate::dataset::store;
use crate::model::REGISTRY;
use crate::report::table::new_table;

use super::Cli;

pub fn datasets(cli: &Cli) -> Result<ExitCode> {
    let mut table = new_table(false);
    table.set_header(vec!["dataset", "status", "users", "items", "interactions"]);
    for name in registry::known_names(&cli.data_dir) {
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
                name,
                "not prepared".into(),
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

pub fn models() -> Result<ExitCode> {
    let mut table = new_table(false);
    table.set_header(vec!["model", "description"]);
    for entry in REGISTRY {
        table.add_row(vec![entry.name, entry.summary]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}
