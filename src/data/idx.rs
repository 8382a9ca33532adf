//! Reader and writer for the IDX format of MNIST and Fashion-MNIST.
//!
//! An IDX file is a big-endian header followed by the data:
//! - images: magic `0x00000803` (unsigned bytes, 3 dimensions), then `n`,
//!   `rows`, `cols` as `u32`, then `n * rows * cols` pixel bytes;
//! - labels: magic `0x00000801` (unsigned bytes, 1 dimension), then `n`,
//!   then `n` label bytes.
//!
//! Files may be stored raw or gzipped; gzip is detected by its magic bytes
//! (`1f 8b`), not by the file name. Every malformed input gives an
//! [`Error`] naming the file, never a panic.

use super::{Dataset, Split};
use crate::{Error, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// The classes of an IDX data set unless the config says otherwise: MNIST
/// and Fashion-MNIST have 10.
pub const DEFAULT_NUM_CLASSES: usize = 10;

/// Reads an IDX image file (raw or gzipped).
///
/// Returns `(n, rows, cols, pixels)` with `pixels` of length
/// `n * rows * cols` (`[n, rows, cols]` row-major).
pub fn read_images(path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    let mut data = read_maybe_gz(path)?;
    let file = path.display().to_string();
    check_magic(&data, IMAGES_MAGIC, 3, "images", &file)?;
    if data.len() < 16 {
        return Err(Error::data(
            file,
            format!("truncated header: expected at least 16 bytes, got {}", data.len()),
        ));
    }
    let n = be_u32(&data, 4) as usize;
    let rows = be_u32(&data, 8) as usize;
    let cols = be_u32(&data, 12) as usize;
    if n == 0 || rows == 0 || cols == 0 {
        return Err(Error::data(
            file,
            format!("dimensions must be nonzero, got {n} images of {rows}x{cols}"),
        ));
    }
    let expected = n
        .checked_mul(rows)
        .and_then(|v| v.checked_mul(cols))
        .and_then(|v| v.checked_add(16))
        .ok_or_else(|| Error::data(&file, format!("dimensions {n}x{rows}x{cols} are too large")))?;
    check_length(data.len(), expected, &file)?;
    data.drain(..16);
    Ok((n, rows, cols, data))
}

/// Reads an IDX label file (raw or gzipped); returns the `n` labels.
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let mut data = read_maybe_gz(path)?;
    let file = path.display().to_string();
    check_magic(&data, LABELS_MAGIC, 1, "labels", &file)?;
    if data.len() < 8 {
        return Err(Error::data(
            file,
            format!("truncated header: expected at least 8 bytes, got {}", data.len()),
        ));
    }
    let n = be_u32(&data, 4) as usize;
    if n == 0 {
        return Err(Error::data(file, "the label count is zero"));
    }
    let expected = n
        .checked_add(8)
        .ok_or_else(|| Error::data(&file, format!("label count {n} is too large")))?;
    check_length(data.len(), expected, &file)?;
    data.drain(..8);
    Ok(data)
}

/// Writes an uncompressed IDX image file of `pixels.len() / (rows * cols)`
/// images of `rows x cols` (`pixels` is `[n, rows, cols]` row-major).
///
/// Errors if `rows` or `cols` is zero, if `pixels.len()` is not a multiple
/// of `rows * cols`, or a dimension does not fit in a `u32`.
pub fn write_images(path: &Path, rows: usize, cols: usize, pixels: &[u8]) -> Result<()> {
    let size = rows.checked_mul(cols).unwrap_or(0);
    if size == 0 || !pixels.len().is_multiple_of(size) {
        return Err(Error::invalid(
            format!("image data for {}", path.display()),
            format!("nonzero rows and cols and a multiple of rows*cols = {size} pixels"),
            format!("{rows}x{cols} with {} pixels", pixels.len()),
        ));
    }
    let n = pixels.len() / size;
    let mut out = Vec::with_capacity(16 + pixels.len());
    out.extend_from_slice(&IMAGES_MAGIC.to_be_bytes());
    for d in [n, rows, cols] {
        out.extend_from_slice(&to_u32(d, path)?.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    write_file(path, &out)
}

/// Writes an uncompressed IDX label file.
pub fn write_labels(path: &Path, labels: &[u8]) -> Result<()> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&to_u32(labels.len(), path)?.to_be_bytes());
    out.extend_from_slice(labels);
    write_file(path, &out)
}

/// Loads an MNIST-style directory holding `train-images-idx3-ubyte`,
/// `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
/// `t10k-labels-idx1-ubyte`, each raw or with a `.gz` suffix (the raw name is
/// tried first).
///
/// Both data sets get raw pixel values 0..=255 as `f32`, `x` of shape
/// `[n, rows * cols]`, shape `[1, rows, cols]`, the declared `num_classes`
/// (10 for MNIST and Fashion-MNIST: the number of classes is a property of
/// the data set, never inferred from the labels) and the directory's file
/// name as name. No validation set.
///
/// Errors on a missing file (listing the names tried), a malformed file,
/// image/label count mismatches, different train/test image sizes, or a
/// label of either split `>= num_classes` (naming the file, the index and
/// the value).
pub fn load_dir(dir: &Path, num_classes: usize) -> Result<Split> {
    if num_classes < 2 || num_classes > 256 {
        return Err(Error::config(
            "data.num_classes",
            "between 2 and 256 for IDX labels (one byte each)",
            num_classes,
        ));
    }
    let train_images = find(dir, "train-images-idx3-ubyte")?;
    let train_labels = find(dir, "train-labels-idx1-ubyte")?;
    let test_images = find(dir, "t10k-images-idx3-ubyte")?;
    let test_labels = find(dir, "t10k-labels-idx1-ubyte")?;

    let (n_train, rows, cols, train_px) = read_images(&train_images)?;
    let train_y = read_labels(&train_labels)?;
    check_counts(n_train, &train_images, train_y.len(), &train_labels)?;
    check_label_range(&train_y, num_classes, &train_labels)?;
    let (n_test, test_rows, test_cols, test_px) = read_images(&test_images)?;
    if (test_rows, test_cols) != (rows, cols) {
        return Err(Error::data(
            test_images.display().to_string(),
            format!(
                "images are {test_rows}x{test_cols} but the training images in {} are {rows}x{cols}",
                train_images.display()
            ),
        ));
    }
    let test_y = read_labels(&test_labels)?;
    check_counts(n_test, &test_images, test_y.len(), &test_labels)?;
    check_label_range(&test_y, num_classes, &test_labels)?;

    let name = dir_name(dir);
    let make = |px: Vec<u8>, y: Vec<u8>| Dataset {
        name: name.clone(),
        x: px.into_iter().map(f32::from).collect(),
        labels: y.into_iter().map(u32::from).collect(),
        targets: None,
        target_dim: num_classes,
        shape: [1, rows, cols],
        num_classes,
    };
    Ok(Split {
        train: make(train_px, train_y),
        test: make(test_px, test_y),
        validation: None,
    })
}

/// Reads a file, decompressing it if it starts with the gzip magic bytes.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.len() >= 2 && raw[..2] == GZIP_MAGIC {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| {
                Error::data(
                    path.display().to_string(),
                    format!("corrupt or truncated gzip stream: {e}"),
                )
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn check_magic(data: &[u8], magic: u32, ndim: u8, kind: &str, file: &str) -> Result<()> {
    if data.len() < 4 {
        return Err(Error::data(
            file,
            format!(
                "too short for an IDX {kind} file: expected at least 4 bytes, got {}",
                data.len()
            ),
        ));
    }
    let got = be_u32(data, 0);
    if got != magic {
        return Err(Error::data(
            file,
            format!(
                "bad magic number 0x{got:08x}: expected 0x{magic:08x} (IDX {kind}: unsigned bytes, {ndim} dimension{})",
                if ndim == 1 { "" } else { "s" }
            ),
        ));
    }
    Ok(())
}

fn check_length(got: usize, expected: usize, file: &str) -> Result<()> {
    if got < expected {
        Err(Error::data(
            file,
            format!("truncated: expected {expected} bytes, got {got}"),
        ))
    } else if got > expected {
        Err(Error::data(
            file,
            format!("trailing data: expected {expected} bytes, got {got}"),
        ))
    } else {
        Ok(())
    }
}

/// Every label is below `num_classes`; the first that is not is named with
/// its index.
fn check_label_range(labels: &[u8], num_classes: usize, file: &Path) -> Result<()> {
    match labels.iter().position(|&l| l as usize >= num_classes) {
        None => Ok(()),
        Some(i) => Err(Error::data(
            file.display().to_string(),
            format!(
                "label {} at index {i} is out of range: the data set has {num_classes} classes (labels 0..={}); \
                 if it really has more, set `num_classes` in the config's [data] table",
                labels[i],
                num_classes - 1
            ),
        )),
    }
}

fn check_counts(n_images: usize, images: &Path, n_labels: usize, labels: &Path) -> Result<()> {
    if n_images != n_labels {
        return Err(Error::data(
            labels.display().to_string(),
            format!(
                "holds {n_labels} labels but {} holds {n_images} images",
                images.display()
            ),
        ));
    }
    Ok(())
}

/// `base` or `base.gz` in `dir`, whichever exists first.
fn find(dir: &Path, base: &str) -> Result<PathBuf> {
    let tried = [dir.join(base), dir.join(format!("{base}.gz"))];
    if let Some(p) = tried.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    let names: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(Error::data(
        dir.join(base).display().to_string(),
        format!("missing IDX file: tried {}", names.join(", ")),
    ))
}

/// The directory's file name, resolving `.` and `..` via the file system.
fn dir_name(dir: &Path) -> String {
    if let Some(name) = dir.file_name() {
        return name.to_string_lossy().into_owned();
    }
    dir.canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string())
}

fn be_u32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

fn to_u32(v: usize, path: &Path) -> Result<u32> {
    u32::try_from(v).map_err(|_| {
        Error::invalid(
            format!("IDX dimension for {}", path.display()),
            "a value that fits in 32 bits",
            v,
        )
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.flush().map_err(|e| Error::io(path, e))
}
