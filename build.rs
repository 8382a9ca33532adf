//! Sets `cfg(fashion_mnist)` when Debian's dataset-fashion-mnist is
//! installed, so that the tests needing it are marked "ignored" with the
//! reason in the test output (not passed silently) when it is missing.
//!
//! Cargo reruns a build script on every build when a path it watches is
//! missing, so only existing folders are watched: the data folder, or else
//! `/usr/share/datasets` (where installing the package adds it). Where
//! neither exists, `touch build.rs` after installing the package.
//!
//! Also records the git commit of a checkout (`LTK_GIT_COMMIT`, written
//! into every run's run.json).

use std::path::Path;

fn main() {
    const DIR: &str = "/usr/share/datasets/fashion-mnist";
    const PARENT: &str = "/usr/share/datasets";
    println!("cargo::rustc-check-cfg=cfg(fashion_mnist)");
    println!("cargo::rerun-if-changed=build.rs");
    if Path::new(DIR).is_dir() {
        println!("cargo::rerun-if-changed={DIR}");
        println!("cargo::rustc-cfg=fashion_mnist");
    } else if Path::new(PARENT).is_dir() {
        println!("cargo::rerun-if-changed={PARENT}");
    }
    git_commit();
}

/// `LTK_GIT_COMMIT`: the commit of a git checkout being built (recorded in
/// every run's run.json), rebuilt when HEAD moves.
fn git_commit() {
    for watched in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if Path::new(watched).exists() {
            println!("cargo::rerun-if-changed={watched}");
        }
    }
    let out = std::process::Command::new("git").args(["rev-parse", "HEAD"]).output();
    if let Some(o) = out.ok().filter(|o| o.status.success()) {
        let commit = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if !commit.is_empty() {
            println!("cargo::rustc-env=LTK_GIT_COMMIT={commit}");
        }
    }
}
