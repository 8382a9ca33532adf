//! Your own data as NumPy files: an `.npz` archive (as `np.savez` or
//! `np.savez_compressed` write it) or a directory of `.npy` files, holding
//! `x_train`, `y_train`, `x_test`, `y_test`.
//!
//! - `x_*`: `[n, d]` (vectors), `[n, h, w]` (greyscale images) or
//!   `[n, c, h, w]` (channel-major images); float32, float64 or uint8.
//! - `y_*`: `[n]` integer class labels (any integer type), `0..classes`.
//!
//! Shapes, dtypes and label ranges are checked, naming the array and file.
//! The `.npy` format (1.0–3.0) is read here: a magic string, a header dict
//! (`descr`, `fortran_order`, `shape`) and the raw data.

use std::io::Read;
use std::path::Path;

use super::{Dataset, Split};
use crate::{Error, Result};

/// One array: its shape and values as f64 (labels are exact integers).
struct NpyArray {
    shape: Vec<usize>,
    data: Vec<f64>,
}

/// Parses one `.npy` byte string; `what` names it in errors.
fn parse_npy(bytes: &[u8], what: &str) -> Result<NpyArray> {
    let bad = |msg: String| Error::data(what, msg);
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy array: expected the magic \\x93NUMPY".into()));
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(format!(".npy format version {v}: expected 1, 2 or 3"))),
    };
    let header = bytes
        .get(start..start + hlen)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad("truncated or non-text .npy header".into()))?;
    let field = |key: &str| -> Option<&str> {
        let i = header.find(&format!("'{key}'"))?;
        let rest = header[i + key.len() + 2..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest)
    };
    let descr = field("descr")
        .and_then(|r| r.strip_prefix('\''))
        .and_then(|r| r.split('\'').next())
        .ok_or_else(|| bad(format!("no descr in the header `{}`", header.trim())))?;
    if field("fortran_order").is_some_and(|r| r.starts_with("True")) {
        return Err(bad(
            "Fortran-ordered array: expected C order (np.ascontiguousarray)".into()
        ));
    }
    let shape_text = field("shape")
        .and_then(|r| r.strip_prefix('('))
        .and_then(|r| r.split(')').next())
        .ok_or_else(|| bad(format!("no shape in the header `{}`", header.trim())))?;
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad(format!("shape `({shape_text})`"))))
        .collect::<Result<_>>()?;
    let n: usize = shape.iter().product();
    let raw = &bytes[start + hlen..];
    let (size, read): (usize, fn(&[u8]) -> f64) = match descr {
        "<f4" => (4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
        "<f8" => (8, |b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
        "|u1" | "<u1" => (1, |b| b[0] as f64),
        "|i1" | "<i1" => (1, |b| b[0] as i8 as f64),
        "<i2" => (2, |b| i16::from_le_bytes([b[0], b[1]]) as f64),
        "<u2" => (2, |b| u16::from_le_bytes([b[0], b[1]]) as f64),
        "<i4" => (4, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
        "<u4" => (4, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64),
        "<i8" => (8, |b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f64),
        "<u8" => (8, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f64),
        other => {
            return Err(bad(format!(
                "dtype `{other}`: expected little-endian float32/float64 or an integer type"
            )))
        }
    };
    if raw.len() != n * size {
        return Err(bad(format!(
            "{} data bytes: expected {} for shape {shape:?} of `{descr}`",
            raw.len(),
            n * size
        )));
    }
    Ok(NpyArray {
        shape,
        data: raw.chunks_exact(size).map(read).collect(),
    })
}

/// The four arrays from an `.npz` archive or a directory of `.npy` files.
fn read_arrays(path: &Path) -> Result<Vec<(String, NpyArray)>> {
    let names = ["x_train", "y_train", "x_test", "y_test"];
    let file = path.display().to_string();
    let mut out = Vec::new();
    if path.is_dir() {
        for n in names {
            let p = path.join(format!("{n}.npy"));
            let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
            out.push((n.to_string(), parse_npy(&bytes, &p.display().to_string())?));
        }
        return Ok(out);
    }
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut z = zip::ZipArchive::new(f).map_err(|e| Error::data(&file, format!("not an .npz (zip) archive: {e}")))?;
    for n in names {
        let mut entry = z.by_name(&format!("{n}.npy")).map_err(|_| {
            Error::data(
                &file,
                format!(
                    "no array `{n}`: expected x_train, y_train, x_test and y_test (np.savez(path, x_train=..., ...))"
                ),
            )
        })?;
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
        out.push((n.to_string(), parse_npy(&bytes, &format!("{file}: {n}"))?));
    }
    Ok(out)
}

/// Loads `x_train, y_train, x_test, y_test` from an `.npz` file or a
/// directory of `.npy` files; `classes` defaults to the largest label + 1.
pub fn load(path: &Path, classes: Option<usize>) -> Result<Split> {
    let file = path.display().to_string();
    let mut arrays = read_arrays(path)?;
    let shape_of = |x: &NpyArray, what: &str| -> Result<[usize; 3]> {
        match x.shape.as_slice() {
            [_, d] => Ok([1, 1, *d]),
            [_, h, w] => Ok([1, *h, *w]),
            [_, c, h, w] => Ok([*c, *h, *w]),
            s => Err(Error::data(
                &file,
                format!("`{what}` has shape {s:?}: expected [n, d], [n, h, w] or [n, c, h, w]"),
            )),
        }
    };
    let (yte, xte, ytr, xtr) = (arrays.pop(), arrays.pop(), arrays.pop(), arrays.pop());
    let (Some((_, xtr)), Some((_, ytr)), Some((_, xte)), Some((_, yte))) = (xtr, ytr, xte, yte) else {
        return Err(Error::data(&file, "expected four arrays".to_string()));
    };
    let shape = shape_of(&xtr, "x_train")?;
    if shape_of(&xte, "x_test")? != shape {
        return Err(Error::data(
            &file,
            format!(
                "`x_test` examples have shape {:?}, `x_train` ones {:?}",
                &xte.shape[1..],
                &xtr.shape[1..]
            ),
        ));
    }
    let labels = |y: &NpyArray, x: &NpyArray, what: &str| -> Result<Vec<u32>> {
        if y.shape.len() != 1 || y.shape[0] != x.shape[0] {
            return Err(Error::data(
                &file,
                format!(
                    "`{what}` has shape {:?}: expected [{}] (one label per example)",
                    y.shape, x.shape[0]
                ),
            ));
        }
        y.data
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if v >= 0.0 && v.fract() == 0.0 && v < u32::MAX as f64 {
                    Ok(v as u32)
                } else {
                    Err(Error::data(
                        &file,
                        format!("`{what}`[{i}] = {v}: expected a class label (an integer >= 0)"),
                    ))
                }
            })
            .collect()
    };
    let (ltr, lte) = (labels(&ytr, &xtr, "y_train")?, labels(&yte, &xte, "y_test")?);
    let top = ltr.iter().chain(&lte).copied().max().unwrap_or(0) as usize + 1;
    let classes = classes.unwrap_or(top.max(2));
    if let Some((what, &l)) = [("y_train", &ltr), ("y_test", &lte)]
        .iter()
        .find_map(|(w, v)| v.iter().find(|&&l| l as usize >= classes).map(|l| (*w, l)))
    {
        return Err(Error::data(
            &file,
            format!(
                "`{what}` has label {l}: expected 0..{} ({classes} classes)",
                classes - 1
            ),
        ));
    }
    if xtr.data.iter().chain(&xte.data).any(|v| !v.is_finite()) {
        return Err(Error::data(
            &file,
            "inputs must be finite (found NaN or infinity)".to_string(),
        ));
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "numpy".into());
    let make = |x: NpyArray, y: Vec<u32>| Dataset {
        name: name.clone(),
        x: x.data.into_iter().map(|v| v as f32).collect(),
        labels: y,
        targets: None,
        target_dim: classes,
        shape,
        num_classes: classes,
    };
    Ok(Split {
        train: make(xtr, ltr),
        test: make(xte, lte),
        validation: None,
    })
}
