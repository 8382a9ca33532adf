//! Reader for CIFAR-10 and CIFAR-100 in their distributed binary format
//! (Krizhevsky 2009; <https://www.cs.toronto.edu/~kriz/cifar.html>, "binary
//! version"). No download: users put the files in a directory.
//!
//! - CIFAR-10: `data_batch_1.bin` … `data_batch_5.bin` (training) and
//!   `test_batch.bin`; each record is one label byte (0–9) and 3,072 pixel
//!   bytes, the 32×32 red plane, then green, then blue (row-major).
//! - CIFAR-100: `train.bin` and `test.bin`; each record is a coarse label
//!   byte (0–19), a fine label byte (0–99), then the 3,072 pixel bytes.
//!
//! Images come out channel-major (`[3, 32, 32]` per example, the layout of
//! every conv path here), raw 0–255 values (preprocessing is the config's).
//! A file whose size is not a whole number of records, a missing batch, and a
//! label out of range are errors naming the file (and the record).

use std::path::{Path, PathBuf};

use super::{Dataset, Split};
use crate::{Error, Result};

/// Pixel bytes of one image: 3 channels of 32×32.
pub const IMAGE_BYTES: usize = 3 * 32 * 32;

/// Which CIFAR and, for CIFAR-100, which labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cifar {
    /// 10 classes.
    Ten,
    /// 100 fine classes, or the 20 coarse superclasses.
    Hundred { coarse: bool },
}

impl Cifar {
    fn label_bytes(self) -> usize {
        match self {
            Cifar::Ten => 1,
            Cifar::Hundred { .. } => 2,
        }
    }

    /// Number of classes of the labels read.
    pub fn classes(self) -> usize {
        match self {
            Cifar::Ten => 10,
            Cifar::Hundred { coarse: true } => 20,
            Cifar::Hundred { coarse: false } => 100,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cifar::Ten => "cifar10",
            Cifar::Hundred { .. } => "cifar100",
        }
    }

    /// The training files and the test file, in order.
    fn files(self) -> (Vec<&'static str>, &'static str) {
        match self {
            Cifar::Ten => (
                vec![
                    "data_batch_1.bin",
                    "data_batch_2.bin",
                    "data_batch_3.bin",
                    "data_batch_4.bin",
                    "data_batch_5.bin",
                ],
                "test_batch.bin",
            ),
            Cifar::Hundred { .. } => (vec!["train.bin"], "test.bin"),
        }
    }
}

/// Appends the images and labels of one binary file.
fn read_file(path: &Path, kind: Cifar, x: &mut Vec<f32>, labels: &mut Vec<u32>) -> Result<()> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let record = kind.label_bytes() + IMAGE_BYTES;
    if bytes.is_empty() || bytes.len() % record != 0 {
        return Err(Error::data(
            file,
            format!(
                "size {} bytes: expected a positive multiple of {record} bytes ({} label byte(s) and {IMAGE_BYTES} pixel bytes per image; {} images per file as distributed)",
                bytes.len(),
                kind.label_bytes(),
                match kind {
                    Cifar::Ten => "10,000",
                    Cifar::Hundred { .. } => "50,000 (train) or 10,000 (test)",
                }
            ),
        ));
    }
    let classes = kind.classes();
    for (i, r) in bytes.chunks_exact(record).enumerate() {
        let label = match kind {
            Cifar::Ten => r[0],
            Cifar::Hundred { coarse: true } => r[0],
            Cifar::Hundred { coarse: false } => r[1],
        };
        if label as usize >= classes {
            return Err(Error::data(
                &file,
                format!(
                    "record {i}: label {label}, expected 0..{} ({} classes)",
                    classes - 1,
                    classes
                ),
            ));
        }
        labels.push(label as u32);
        x.extend(r[kind.label_bytes()..].iter().map(|&b| f32::from(b)));
    }
    Ok(())
}

fn data_set(kind: Cifar, files: &[PathBuf]) -> Result<Dataset> {
    let mut x = Vec::new();
    let mut labels = Vec::new();
    for f in files {
        read_file(f, kind, &mut x, &mut labels)?;
    }
    Ok(Dataset {
        name: kind.name().into(),
        x,
        labels,
        targets: None,
        target_dim: kind.classes(),
        shape: [3, 32, 32],
        num_classes: kind.classes(),
    })
}

/// Loads CIFAR-10 or CIFAR-100 from `dir`. Errors name a missing file
/// (every training batch and the test batch must be there).
pub fn load_dir(dir: &Path, kind: Cifar) -> Result<Split> {
    if !dir.is_dir() {
        return Err(Error::data(
            dir.display().to_string(),
            format!(
                "not a directory: expected the {} binary files (README, \"Data\")",
                kind.name()
            ),
        ));
    }
    let (train_names, test_name) = kind.files();
    let path = |name: &str| -> Result<PathBuf> {
        let p = dir.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            Err(Error::data(
                p.display().to_string(),
                format!(
                    "missing: {} needs {} and {test_name} in {}",
                    kind.name(),
                    train_names.join(", "),
                    dir.display()
                ),
            ))
        }
    };
    let train_files = train_names.iter().map(|n| path(n)).collect::<Result<Vec<_>>>()?;
    let test_file = path(test_name)?;
    Ok(Split {
        train: data_set(kind, &train_files)?,
        test: data_set(kind, &[test_file])?,
        validation: None,
    })
}

/// Writes a binary file in the distributed format (for tests and for users
/// converting their own data): `labels` are `(coarse, fine)` for CIFAR-100
/// (`coarse` ignored for CIFAR-10), `pixels` `IMAGE_BYTES` per image.
pub fn write_file(path: &Path, kind: Cifar, labels: &[(u8, u8)], pixels: &[u8]) -> Result<()> {
    if pixels.len() != labels.len() * IMAGE_BYTES {
        return Err(Error::invalid(
            "CIFAR pixels",
            format!("{} bytes ({} images)", labels.len() * IMAGE_BYTES, labels.len()),
            pixels.len(),
        ));
    }
    let mut out = Vec::with_capacity(labels.len() * (kind.label_bytes() + IMAGE_BYTES));
    for (i, &(coarse, fine)) in labels.iter().enumerate() {
        match kind {
            Cifar::Ten => out.push(fine),
            Cifar::Hundred { .. } => {
                out.push(coarse);
                out.push(fine);
            }
        }
        out.extend_from_slice(&pixels[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES]);
    }
    crate::paths::write_atomic(path, &out)
}
