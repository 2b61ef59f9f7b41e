//! `mmsr-bench parity`: HAN-GNN (compat) against the official model's outputs and gradients on
//! the golden fixture, on any device (the GPU check runs it on CUDA; the test suite on the CPU).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use crate::device::{self, DeviceChoice};
use crate::model::graph::han_gnn::parity::{compare, tolerance_scale};
use crate::record::result::write_atomically;

#[derive(Debug, Args)]
pub struct ParityArgs {
    /// The fixture folder (batch.json, weights/outputs/grads .safetensors).
    #[arg(long, default_value = "../shared/data/mmsr-parity")]
    pub fixture: PathBuf,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Also write every comparison as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn execute(args: &ParityArgs) -> Result<ExitCode> {
    let device = args.device.resolve()?;
    let mut all = Vec::new();
    for layout in ["dense", "sparse"] {
        all.extend(
            compare(&args.fixture, layout, device)
                .with_context(|| format!("{} ({layout})", args.fixture.display()))?,
        );
    }
    let failed: Vec<_> = all.iter().filter(|c| !c.passed()).collect();
    for c in &all {
        println!(
            "{} {:>6}: {:<52} max |Δ| {:.3e} (tolerance {:.1e})",
            if c.passed() { "ok  " } else { "FAIL" },
            c.layout,
            c.name,
            c.max_abs_diff,
            c.tolerance
        );
    }
    println!(
        "{} of {} comparisons within tolerance on {} ({}; tolerances ×{} the CPU's)",
        all.len() - failed.len(),
        all.len(),
        device::label(device),
        device::kind(device),
        tolerance_scale(device)
    );
    if let Some(out) = &args.out {
        let report = serde_json::json!({
            "device": device::label(device),
            "device_kind": device::kind(device),
            "tolerance_scale": tolerance_scale(device),
            "passed": failed.is_empty(),
            "comparisons": all,
        });
        let mut bytes = serde_json::to_vec_pretty(&report)?;
        bytes.push(b'\n');
        write_atomically(out, &bytes)?;
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
