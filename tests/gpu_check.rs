//! The GPU check's plumbing, up to the GPU itself (issue 25): `ci/pack-gpu.sh --quick` packs the
//! stripped binary and the data under the 64 MiB limit, and `ci/gpu-check.sh --quick --device cpu`
//! runs every step end to end on this CPU from that pack (synthetic data for the Beauty and
//! scaling steps; the full CPU dry run on Beauty is a manual step, see docs/cuda.md).

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_gpu_check_packs_under_the_limit_and_runs_end_to_end_on_the_cpu() {
    let bin = env!("CARGO_BIN_EXE_mmsr-bench");
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("pack");
    let out = Command::new(root().join("ci/pack-gpu.sh"))
        .args(["--quick", bin])
        .env("MMSR_PACK_DIR", &pack)
        .env("MMSR_PACK_PREPARE_BIN", bin)
        .env("MMSR_SHARED_DATA", crate::common::shared_data(""))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    let size: u64 = ["mmsr-bench.xz", "data.tar.xz", "MANIFEST"]
        .iter()
        .map(|f| std::fs::metadata(pack.join(f)).unwrap().len())
        .sum();
    assert!(size < 64 << 20, "the pack is {size} bytes");
    let manifest = std::fs::read_to_string(pack.join("MANIFEST")).unwrap();
    assert!(
        manifest.contains("data.tar.xz") && manifest.contains("sha256"),
        "{manifest}"
    );

    let results = dir.path().join("out");
    let out = Command::new(root().join("ci/gpu-check.sh"))
        .args(["--quick", "--device", "cpu", "--bin", bin])
        .arg("--pack")
        .arg(&pack)
        .arg("--out")
        .arg(&results)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    let steps = std::fs::read_to_string(results.join("steps.tsv")).unwrap();
    let names: Vec<(&str, &str)> = steps
        .lines()
        .skip(1)
        .map(|l| {
            let mut f = l.split('\t');
            (f.next().unwrap(), f.next().unwrap())
        })
        .collect();
    assert_eq!(
        names,
        [
            ("smoke", "0"),
            ("parity", "0"),
            ("beauty", "0"),
            ("scaling", "0"),
            ("env", "0")
        ],
        "{steps}"
    );
    let parity: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("parity.json")).unwrap())
            .unwrap();
    assert_eq!(parity["passed"], true);
    assert!(parity["comparisons"].as_array().unwrap().len() >= 40);
    let mut runs = Vec::new();
    mmsr_bench::record::read::collect_json(&results.join("beauty/runs"), &mut runs).unwrap();
    assert_eq!(
        runs.len(),
        4,
        "han-gnn, kv-attention, gcn, sasrec: {runs:?}"
    );
    assert!(results.join("scaling/scaling.json").is_file());
    let check = crate::common::mmsr(
        dir.path(),
        &["check", results.join("beauty").to_str().unwrap()],
    );
    assert!(check.status.success(), "{}", crate::common::stdout(&check));
}
