//! The UCI optical recognition of handwritten digits data set, embedded in the
//! crate so experiments run without any download.
//!
//! 1797 examples of 8x8 grey-level images (integer pixels 0..=16) of the
//! digits 0..=9. Data: E. Alpaydin, C. Kaynak (1998), Optical Recognition of
//! Handwritten Digits, UCI Machine Learning Repository, CC BY 4.0; as
//! redistributed by scikit-learn.
//!
//! The embedded file is a gzipped CSV without header: one example per line,
//! 64 pixel values (row-major) followed by the label.

use super::{Dataset, Split};
use crate::{Error, Result};
use rand::seq::SliceRandom;
use std::io::Read;

/// Number of examples in the data set.
pub const NUM_EXAMPLES: usize = 1797;

/// Name used in error messages for the embedded file.
const FILE: &str = "data/digits.csv.gz (embedded)";
const PIXELS: usize = 64;
const MAX_PIXEL: u32 = 16;
const NUM_CLASSES: usize = 10;

static DIGITS_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// All 1797 examples in file order: name `"digits"`, shape `[1, 8, 8]`,
/// `x` is `[1797, 64]` raw pixel values 0..=16 as `f32`, 10 classes.
pub fn load_all() -> Result<Dataset> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_GZ)
        .read_to_string(&mut text)
        .map_err(|e| Error::data(FILE, format!("cannot decompress: {e}")))?;
    parse_csv(&text, FILE)
}

/// A deterministic train/test split: the examples are shuffled with the
/// stream `"digits-split"` of `seed`, then the first
/// `round((1 - test_fraction) * 1797)` go to train (in shuffled order) and
/// the rest to test. No validation set.
///
/// `test_fraction` must be in (0, 1) and leave at least one example on each side.
pub fn load(test_fraction: f64, seed: u64) -> Result<Split> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(Error::invalid(
            "digits test fraction",
            "a number in (0, 1)",
            test_fraction,
        ));
    }
    let all = load_all()?;
    let n = all.len();
    let n_test = (test_fraction * n as f64).round() as usize;
    if n_test == 0 || n_test >= n {
        return Err(Error::invalid(
            "digits test fraction",
            format!("a fraction leaving at least one of the {n} examples in train and in test"),
            test_fraction,
        ));
    }
    let mut perm: Vec<usize> = (0..n).collect();
    perm.shuffle(&mut crate::rng::stream(seed, "digits-split"));
    let (train_idx, test_idx) = perm.split_at(n - n_test);
    Ok(Split {
        train: all.subset(train_idx)?,
        test: all.subset(test_idx)?,
        validation: None,
    })
}

/// Parses the digits CSV, checking the number of rows and every value.
fn parse_csv(text: &str, file: &str) -> Result<Dataset> {
    let mut x = Vec::with_capacity(NUM_EXAMPLES * PIXELS);
    let mut labels = Vec::with_capacity(NUM_EXAMPLES);
    for (k, line) in text.lines().enumerate() {
        let lineno = k + 1;
        let line = line.trim();
        if line.is_empty() {
            return Err(Error::data(file, format!("line {lineno}: empty line")));
        }
        let mut fields = 0usize;
        for (j, field) in line.split(',').enumerate() {
            fields += 1;
            if j > PIXELS {
                continue; // counted, reported below
            }
            let value: u32 = field.trim().parse().map_err(|_| {
                Error::data(
                    file,
                    format!(
                        "line {lineno}, column {}: expected a non-negative integer, got `{}`",
                        j + 1,
                        field.trim()
                    ),
                )
            })?;
            if j < PIXELS {
                if value > MAX_PIXEL {
                    return Err(Error::data(
                        file,
                        format!(
                            "line {lineno}, column {}: pixel value {value} is out of range 0..={MAX_PIXEL}",
                            j + 1
                        ),
                    ));
                }
                x.push(value as f32);
            } else {
                if value as usize >= NUM_CLASSES {
                    return Err(Error::data(
                        file,
                        format!("line {lineno}: label {value} is out of range 0..=9"),
                    ));
                }
                labels.push(value);
            }
        }
        if fields != PIXELS + 1 {
            return Err(Error::data(
                file,
                format!(
                    "line {lineno}: expected {} comma-separated values (64 pixels and a label), got {fields}",
                    PIXELS + 1
                ),
            ));
        }
    }
    if labels.len() != NUM_EXAMPLES {
        return Err(Error::data(
            file,
            format!("expected {NUM_EXAMPLES} rows, got {}", labels.len()),
        ));
    }
    Ok(Dataset {
        name: "digits".to_string(),
        x,
        labels,
        targets: None,
        target_dim: NUM_CLASSES,
        shape: [1, 8, 8],
        num_classes: NUM_CLASSES,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pixel: &str, label: &str) -> String {
        let mut v = vec!["0"; PIXELS];
        v[3] = pixel;
        v.push(label);
        v.join(",")
    }

    #[test]
    fn bad_rows_name_the_line() {
        let good = row("5", "3");
        let cases = [
            (row("17", "3"), "out of range"),
            (row("x", "3"), "non-negative integer"),
            (row("-1", "3"), "non-negative integer"),
            (row("5", "10"), "label 10"),
            (format!("{good},0"), "expected 65"),
            ("0,1,2".to_string(), "expected 65"),
            (String::new(), "empty line"),
        ];
        for (bad, what) in cases {
            let text = format!("{good}\n{bad}\n{good}\n");
            let err = parse_csv(&text, "t.csv").unwrap_err().to_string();
            assert!(err.contains("t.csv"), "{err}");
            assert!(err.contains("line 2"), "{err}");
            assert!(err.contains(what), "{err} should mention {what}");
        }
    }

    #[test]
    fn wrong_row_count_is_an_error() {
        let text = format!("{}\n", row("1", "1"));
        let err = parse_csv(&text, "t.csv").unwrap_err().to_string();
        assert!(err.contains("expected 1797 rows, got 1"), "{err}");
    }

    #[test]
    fn bad_fraction_is_an_error() {
        for f in [0.0, 1.0, -0.5, 1.5, f64::NAN, 1e-9] {
            assert!(load(f, 0).is_err(), "fraction {f}");
        }
    }
}
