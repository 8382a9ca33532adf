//! The papers' settings (experiments/*_cifar10.toml) and their
//! Fashion-MNIST stand-ins (experiments/*_fashion32.toml) run end to end
//! on tiny data in their formats: a few random images written as CIFAR-10
//! binary batches, or as IDX files for the stand-ins; lengths, seeds, k and
//! rounds cut by flags, everything else (models, optimizers, schedules in
//! epochs, augmentation, pruning scopes, padding) as written.

use std::path::Path;
use std::process::Command;

use lottery_tangent::data::cifar::{self, Cifar, IMAGE_BYTES};
use lottery_tangent::data::idx;
use rand::{Rng, SeedableRng};

fn rng() -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::seed_from_u64(11)
}

/// 20 training images (5 batches of 4) and 6 test images.
fn write_cifar10(dir: &Path) {
    let mut r = rng();
    let mut write = |name: String, n: usize| {
        let labels: Vec<(u8, u8)> = (0..n).map(|i| (0, (i % 10) as u8)).collect();
        let pixels: Vec<u8> = (0..n * IMAGE_BYTES).map(|_| r.gen()).collect();
        cifar::write_file(&dir.join(name), Cifar::Ten, &labels, &pixels).unwrap();
    };
    for b in 1..=5 {
        write(format!("data_batch_{b}.bin"), 4);
    }
    write("test_batch.bin".into(), 6);
}

/// Fashion-MNIST-shaped IDX files: 20 training and 6 test images of 28x28.
fn write_idx(dir: &Path) {
    let mut r = rng();
    for (images, labels, n) in [
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 20),
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 6),
    ] {
        let px: Vec<u8> = (0..n * 784).map(|_| r.gen()).collect();
        idx::write_images(&dir.join(images), 28, 28, &px).unwrap();
        let y: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        idx::write_labels(&dir.join(labels), &y).unwrap();
    }
}

/// Runs `ltk <cmd> --config experiments/<config>.toml` on `data`, two steps
/// of batch 4, with `sets`; returns the summary.
fn run(cmd: &str, config: &str, data: &Path, sets: &[&str]) -> serde_json::Value {
    let out = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_ltk"));
    c.args([cmd, "--config", &format!("experiments/{config}.toml"), "--data-dir"])
        .arg(data)
        .args(["--iterations", "2", "--batch-size", "4", "--quiet", "--out"])
        .arg(out.path())
        .args(["--set", "train.eval_every=1", "--set", "data.validation_size=0"]);
    for s in sets {
        c.args(["--set", s]);
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{config}: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    let text = std::fs::read_to_string(out.path().join(config).join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

const LMC: [&str; 4] = ["lmc.ks=[0, 1]", "lmc.pairs=1", "lmc.points=3", "lmc.train_eval_size=8"];

#[test]
fn frankle_2020_lmc_settings_run_on_cifar10_files() {
    let d = tempfile::tempdir().unwrap();
    write_cifar10(d.path());
    for config in ["lmc_resnet20_cifar10", "lmc_vgg16_cifar10"] {
        let mut sets = LMC.to_vec();
        sets.push("lmc.imp.densities=[0.8]");
        let s = run("lmc", config, d.path(), &sets);
        assert!(s.to_string().contains("instability"), "{config}: {s}");
    }
}

#[test]
fn frankle_carbin_2019_imp_settings_run_on_cifar10_files() {
    let d = tempfile::tempdir().unwrap();
    write_cifar10(d.path());
    for config in [
        "imp_conv2_cifar10",
        "imp_conv4_cifar10",
        "imp_conv6_cifar10",
        "imp_vgg19_cifar10",
        "imp_vgg19_cifar10_warmup",
    ] {
        let s = run(
            "imp",
            config,
            d.path(),
            &["imp.rounds=1", "imp.seeds=[0]", "train.schedule.warmup_steps=1"]
                [..if config.starts_with("imp_vgg19") { 3 } else { 2 }],
        );
        assert!(s.to_string().contains("random_reinit"), "{config}: {s}");
    }
}

#[test]
fn fort_2020_kernel_velocity_setting_runs_on_cifar10_files() {
    let d = tempfile::tempdir().unwrap();
    write_cifar10(d.path());
    let s = run(
        "kernel-velocity",
        "kernel_velocity_resnet20_cifar10",
        d.path(),
        &[
            "kernel_velocity.seeds=[0]",
            "kernel_velocity.ks=[0, 1]",
            "kernel_velocity.pairs=1",
            "kernel_velocity.points=3",
            "kernel_velocity.kernel_points=2",
            "kernel_velocity.delta=1",
            "kernel_velocity.ntk_examples=3",
        ],
    );
    assert!(s.to_string().contains("velocity"), "{s}");
}

#[test]
fn chen_2021_elastic_setting_runs_on_cifar10_files() {
    let d = tempfile::tempdir().unwrap();
    write_cifar10(d.path());
    // ResNet-14 <-> ResNet-20 (2 and 3 blocks per stage) for speed.
    let s = run(
        "elastic",
        "elastic_resnet32_cifar10",
        d.path(),
        &[
            "model.depth=14",
            "elastic.blocks=2",
            "elastic.densities=[0.8]",
            "elastic.seeds=[0]",
        ],
    );
    assert!(s.to_string().contains("ResNet-20"), "{s}");
}

#[test]
fn fashion_mnist_stand_ins_run_padded_to_32() {
    let d = tempfile::tempdir().unwrap();
    write_idx(d.path());
    for config in ["lmc_resnet20_fashion32", "lmc_vgg16_fashion32"] {
        let s = run("lmc", config, d.path(), &LMC);
        assert!(s.to_string().contains("instability"), "{config}: {s}");
    }
}
