//! Link fixes that tch's own build script applies only to its examples (cargo:rustc-link-arg does
//! not propagate to dependents; tch-rs issues #980, #907), a libtorch version check (torch-sys does
//! none when LIBTORCH points at a pip wheel), and build provenance for result files.
use std::{env, fs, path::Path, path::PathBuf, process::Command};

const EXPECTED_TORCH: &str = "2.11.";

fn main() {
    println!("cargo:rerun-if-env-changed=TCH_LINK_CUDA");
    println!("cargo:rerun-if-changed=build.rs");
    let lib = PathBuf::from(
        env::var_os("DEP_TCH_LIBTORCH_LIB").expect("torch-sys must be a direct dependency"),
    );

    // 1. rpath: binaries, tests and benches run without LD_LIBRARY_PATH.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());

    // 2. Keep libtorch.so (-> libtorch_cuda.so) as DT_NEEDED; otherwise --as-needed drops it and
    //    Cuda::is_available() is always false. Auto: only when the CUDA wheels sit next to torch.
    let cuda_wheels =
        lib.join("libtorch_cuda.so").exists() && lib.join("../../nvidia/cudnn/lib").exists();
    let link_cuda = match env::var("TCH_LINK_CUDA").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => cuda_wheels,
    };
    if link_cuda {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    }
    println!("cargo:rustc-env=MMSR_CUDA_LINKED={link_cuda}");

    // 3. libtorch version (the pip wheel ships torch/version.py next to torch/lib).
    let version_py = lib.join("../version.py");
    println!("cargo:rerun-if-changed={}", version_py.display());
    let torch_version = fs::read_to_string(&version_py)
        .ok()
        .and_then(|text| parse_torch_version(&text))
        .unwrap_or_else(|| "unknown".to_string());
    if torch_version != "unknown" && !torch_version.starts_with(EXPECTED_TORCH) {
        panic!(
            "libtorch {torch_version} found at {}, but tch 0.24 needs torch {EXPECTED_TORCH}x; \
             run ci/setup-libtorch.sh (it installs torch==2.11.0 into .torch)",
            lib.display()
        );
    }
    println!("cargo:rustc-env=MMSR_TORCH_VERSION={torch_version}");

    // 4. The C++ kernels (the fused edge kernels, the evaluation's target ranks, the product
    //    counter of the FLOP floors), compiled
    //    against libtorch's headers, OpenMP through torch's own libgomp as libtorch's CPU
    //    kernels use.
    compile_native_kernels(&lib);

    // 5. Git commit for provenance (absent outside a checkout).
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    // The sources too: otherwise an edit after the last commit keeps the clean label of that
    // commit (results made by uncommitted code were once labelled with the previous commit).
    for watched in [".git/HEAD", ".git/index", "src", "Cargo.toml", "Cargo.lock"] {
        if manifest_dir.join(watched).exists() {
            println!("cargo:rerun-if-changed={watched}");
        }
    }
    println!(
        "cargo:rustc-env=MMSR_GIT_COMMIT={}",
        git_commit(&manifest_dir)
    );
}

fn compile_native_kernels(lib: &Path) {
    const SOURCES: [&str; 3] = [
        "src/model/layers/edge_kernels.cpp",
        "src/train/target_ranks.cpp",
        "src/scaling/products.cpp",
    ];
    for source in SOURCES {
        println!("cargo:rerun-if-changed={source}");
    }
    torch_build(lib)
        .files(SOURCES)
        .compile("mmsr_native_kernels");
    // Adam's one-pass step must round as libtorch's kernels do: no contracted multiply-adds.
    const EXACT_SOURCES: [&str; 1] = ["src/optim/adam.cpp"];
    for source in EXACT_SOURCES {
        println!("cargo:rerun-if-changed={source}");
    }
    torch_build(lib)
        .files(EXACT_SOURCES)
        .flag("-ffp-contract=off")
        .compile("mmsr_exact_kernels");
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-lib=dylib:+verbatim=libgomp.so.1");
}

/// A C++17 build against libtorch's headers, with OpenMP as libtorch uses it.
fn torch_build(lib: &Path) -> cc::Build {
    let include = lib.join("../include");
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-fopenmp")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .flag_if_supported("-Wno-unused-parameter")
        .opt_level(3)
        .warnings(false);
    build
}

fn parse_torch_version(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix("__version__ = "))
        .map(|v| v.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
}

fn git_commit(dir: &Path) -> String {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "HEAD"]) {
        Some(commit) => {
            // --no-optional-locks: a plain `git status` rewrites .git/index to refresh its stat
            // cache, which is watched above, so the next cargo command (e.g. the first `cargo
            // run` after a fresh clone's build) re-ran this script and recompiled the crate.
            let dirty = run(&[
                "--no-optional-locks",
                "status",
                "--porcelain",
                "--untracked-files=no",
            ])
            .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{commit}-dirty")
            } else {
                commit
            }
        }
        None => "unknown".to_string(),
    }
}
