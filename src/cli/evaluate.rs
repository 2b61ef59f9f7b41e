//! `mmsr-bench evaluate`: the evaluator contract as a command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::eval::{evaluate_file, EvaluatorOptions, InputFormat};
use crate::record::result::write_atomically;
use crate::report::table;

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// JSON lines ({"target": id, "scores": [...]} or {"target": id, "rank": r}) or CSV
    /// (header target,rank or target,<one column per item>).
    #[arg(long)]
    pub input: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    pub format: InputFormat,
    /// Cut-offs K.
    #[arg(long, value_delimiter = ',', default_value = "5,10,20")]
    pub ks: Vec<usize>,
    /// Item ids in the file start at 0 (default: 1, as in prepared datasets).
    #[arg(long)]
    pub zero_based: bool,
    /// Number of items, to bound-check rank-only input.
    #[arg(long)]
    pub num_items: Option<usize>,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON to this file.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

pub fn execute(args: &EvaluateArgs) -> Result<ExitCode> {
    anyhow::ensure!(
        args.ks
            .iter()
            .all(|k| (1..=crate::config::MAX_K).contains(k)),
        "--ks must be cut-offs between 1 and {}",
        crate::config::MAX_K
    );
    let options = EvaluatorOptions {
        ks: args.ks.clone(),
        zero_based: args.zero_based,
        num_items: args.num_items,
    };
    let metrics = evaluate_file(&args.input, args.format, &options)?;
    let json = serde_json::to_string_pretty(&metrics)?;
    if args.json {
        println!("{json}");
    } else {
        println!(
            "{} samples from {}",
            metrics.num_samples,
            args.input.display()
        );
        println!("{}", table::evaluator_table(&metrics));
        println!("NDCG_official reproduces the original MMSR normaliser (spec §7.2), for cross-checks only.");
    }
    if let Some(path) = &args.output {
        write_atomically(path, format!("{json}\n").as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}
