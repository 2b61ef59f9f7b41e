//! The code is formatted as `cargo fmt` formats it (the style the project keeps; `cargo clippy
//! -- -D warnings` is run by hand, as it needs a second build of everything).

use std::path::Path;
use std::process::Command;

#[test]
fn the_sources_are_formatted_as_cargo_fmt_formats_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let installed = Command::new(&cargo)
        .args(["fmt", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !installed {
        eprintln!("rustfmt is not installed (rustup component add rustfmt): format not checked");
        return;
    }
    let out = Command::new(&cargo)
        .args(["fmt", "--all", "--", "--check", "--files-with-diff"])
        .current_dir(root)
        .output()
        .expect("cargo fmt runs");
    assert!(
        out.status.success(),
        "files not formatted as `cargo fmt` would (run it):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
