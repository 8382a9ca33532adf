//! CIFAR-10 / CIFAR-100 in their binary format, on small files written here
//! in that exact format: a good directory (channel-major images, labels,
//! both label kinds of CIFAR-100), a wrong size, a missing batch, a label
//! out of range, per-channel standardization, and a conv net trained on
//! 32×32×3 images from the command line.

use std::path::Path;
use std::process::Command;

use lottery_tangent::data::cifar::{self, Cifar, IMAGE_BYTES};
use lottery_tangent::data::Preprocess;

/// Image `i`'s pixels: channel c, position p holds (i + 7c + p) mod 256.
fn pixels(n: usize, offset: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| (0..IMAGE_BYTES).map(move |j| ((i + offset + 7 * (j / 1024) + j % 1024) % 256) as u8))
        .collect()
}

fn write_cifar10(dir: &Path, per_batch: usize) {
    for b in 1..=5 {
        let labels: Vec<(u8, u8)> = (0..per_batch).map(|i| (0, ((b + i) % 10) as u8)).collect();
        cifar::write_file(
            &dir.join(format!("data_batch_{b}.bin")),
            Cifar::Ten,
            &labels,
            &pixels(per_batch, b),
        )
        .unwrap();
    }
    let labels: Vec<(u8, u8)> = (0..4).map(|i| (0, i as u8)).collect();
    cifar::write_file(&dir.join("test_batch.bin"), Cifar::Ten, &labels, &pixels(4, 100)).unwrap();
}

#[test]
fn a_cifar10_directory_loads_channel_major_images_and_labels() {
    let d = tempfile::tempdir().unwrap();
    write_cifar10(d.path(), 3);
    let s = cifar::load_dir(d.path(), Cifar::Ten).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (15, 4));
    assert_eq!(s.train.shape, [3, 32, 32]);
    assert_eq!(s.train.num_classes, 10);
    // Batch 1, image 0: label (1 + 0) % 10; green plane starts at 1024.
    assert_eq!(s.train.labels[0], 1);
    assert_eq!(s.train.x[0], 1.0);
    assert_eq!(s.train.x[1024], 8.0);
    assert_eq!(s.train.labels[3], 2, "batch 2 follows batch 1");
    assert_eq!(s.test.labels, vec![0, 1, 2, 3]);
}

#[test]
fn cifar100_reads_fine_or_coarse_labels() {
    let d = tempfile::tempdir().unwrap();
    let labels = [(3u8, 77u8), (19, 99)];
    cifar::write_file(
        &d.path().join("train.bin"),
        Cifar::Hundred { coarse: false },
        &labels,
        &pixels(2, 0),
    )
    .unwrap();
    cifar::write_file(
        &d.path().join("test.bin"),
        Cifar::Hundred { coarse: false },
        &labels[..1],
        &pixels(1, 0),
    )
    .unwrap();
    let fine = cifar::load_dir(d.path(), Cifar::Hundred { coarse: false }).unwrap();
    assert_eq!((fine.train.labels.clone(), fine.train.num_classes), (vec![77, 99], 100));
    let coarse = cifar::load_dir(d.path(), Cifar::Hundred { coarse: true }).unwrap();
    assert_eq!(
        (coarse.train.labels.clone(), coarse.train.num_classes),
        (vec![3, 19], 20)
    );
}

#[test]
fn bad_files_are_errors_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    write_cifar10(d.path(), 2);
    // Wrong size: one byte short.
    let p = d.path().join("data_batch_2.bin");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes.pop();
    std::fs::write(&p, &bytes).unwrap();
    let e = cifar::load_dir(d.path(), Cifar::Ten).unwrap_err().to_string();
    assert!(e.contains("data_batch_2.bin") && e.contains("multiple of 3073"), "{e}");
    // Missing batch.
    write_cifar10(d.path(), 2);
    std::fs::remove_file(d.path().join("data_batch_4.bin")).unwrap();
    let e = cifar::load_dir(d.path(), Cifar::Ten).unwrap_err().to_string();
    assert!(e.contains("data_batch_4.bin") && e.contains("missing"), "{e}");
    // Label out of range.
    write_cifar10(d.path(), 2);
    let p = d.path().join("test_batch.bin");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[3073] = 10;
    std::fs::write(&p, &bytes).unwrap();
    let e = cifar::load_dir(d.path(), Cifar::Ten).unwrap_err().to_string();
    assert!(
        e.contains("test_batch.bin") && e.contains("record 1") && e.contains("label 10"),
        "{e}"
    );
    // Not a directory.
    let e = cifar::load_dir(&d.path().join("nope"), Cifar::Ten)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn channels_are_standardized_on_their_own() {
    let d = tempfile::tempdir().unwrap();
    write_cifar10(d.path(), 3);
    let s = cifar::load_dir(d.path(), Cifar::Ten)
        .unwrap()
        .preprocess(Preprocess::StandardizeChannels);
    for c in 0..3 {
        let v: Vec<f64> = s
            .train
            .x
            .chunks_exact(IMAGE_BYTES)
            .flat_map(|r| r[c * 1024..(c + 1) * 1024].iter().map(|&x| x as f64))
            .collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt();
        assert!(
            m.abs() < 1e-4 && (sd - 1.0).abs() < 1e-4,
            "channel {c}: mean {m}, sd {sd}"
        );
    }
}

#[test]
fn ltk_trains_a_conv_net_on_cifar10_files() {
    let d = tempfile::tempdir().unwrap();
    write_cifar10(d.path(), 4);
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ltk"))
        .args(["train", "--data", "cifar10", "--data-dir"])
        .arg(d.path())
        .args([
            "--model",
            "conv2",
            "--iterations",
            "3",
            "--batch-size",
            "4",
            "--quiet",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("cifar10 (20 train / 4 test)"), "{text}");
    let cfg = std::fs::read_to_string(out.path().join("train/config.toml")).unwrap();
    assert!(
        cfg.contains("source = \"cifar10\"") && cfg.contains("standardize_channels"),
        "{cfg}"
    );
}
