//! Sets `cfg(fashion_mnist)` when Debian's dataset-fashion-mnist is
//! installed, so that the tests needing it are marked "ignored" with the
//! reason in the test output (not passed silently) when it is missing.

fn main() {
    const DIR: &str = "/usr/share/datasets/fashion-mnist";
    println!("cargo::rustc-check-cfg=cfg(fashion_mnist)");
    println!("cargo::rerun-if-changed={DIR}");
    if std::path::Path::new(DIR).is_dir() {
        println!("cargo::rustc-cfg=fashion_mnist");
    }
}
