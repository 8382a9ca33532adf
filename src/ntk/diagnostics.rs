//! Summary statistics of a kernel matrix on n examples: its spectrum, its
//! effective rank and its alignment with the labels.
//!
//! - Effective rank (Roy & Vetterli 2007, "The effective rank: a measure of
//!   effective dimensionality", Def. 1): `exp(H(p))` with `p_i = λ_i / Σ λ`
//!   over the eigenvalues (negative round-off clipped to 0): n for a
//!   multiple of the identity, 1 for a rank-one kernel.
//! - Centered kernel-target alignment (Cortes, Mohri & Rostamizadeh 2012,
//!   "Algorithms for learning kernels based on centered alignment", Def. 1
//!   and 2): `⟨Kc, Lc⟩_F / (||Kc||_F ||Lc||_F)` with `L = Y Yᵀ` for the
//!   one-hot labels Y and `Kc = H K H`, `H = I − 11ᵀ/n`. 1 when the
//!   centered kernel is a positive multiple of the centered label kernel.
//! - Kernel regression (the predictor of Arora et al. 2019, "On exact
//!   computation with an infinitely wide neural net", with a small ridge):
//!   `f(x) = K(x, X)(K(X, X) + λI)⁻¹ Y`, one-hot Y, classified by argmax.

use serde::{Deserialize, Serialize};

use super::empirical::Kernel;
use super::spectrum;
use crate::data::Dataset;
use crate::{Error, Result};

/// What [`kernel_stats`] measures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelStats {
    /// The largest eigenvalues, descending.
    pub top_eigenvalues: Vec<f64>,
    /// Sum of the eigenvalues.
    pub trace: f64,
    pub effective_rank: f64,
    /// Centered kernel-target alignment with the one-hot labels.
    pub alignment: f64,
}

/// Roy & Vetterli's effective rank of a spectrum (see the module docs);
/// errors on an empty or all-zero spectrum.
pub fn effective_rank(eigenvalues: &[f64]) -> Result<f64> {
    let pos: Vec<f64> = eigenvalues.iter().map(|&l| l.max(0.0)).collect();
    let total: f64 = pos.iter().sum();
    if pos.is_empty() || !(total > 0.0) || !total.is_finite() {
        return Err(Error::invalid(
            "spectrum for an effective rank",
            "finite eigenvalues with a positive sum",
            format!("{} eigenvalues summing to {total}", pos.len()),
        ));
    }
    let h: f64 = pos
        .iter()
        .filter(|&&l| l > 0.0)
        .map(|&l| {
            let p = l / total;
            -p * p.ln()
        })
        .sum();
    Ok(h.exp())
}

/// `H A H` of a row-major `[n, n]` matrix.
fn centered(a: &[f64], n: usize) -> Vec<f64> {
    let rows: Vec<f64> = (0..n)
        .map(|i| a[i * n..(i + 1) * n].iter().sum::<f64>() / n as f64)
        .collect();
    let cols: Vec<f64> = (0..n)
        .map(|j| (0..n).map(|i| a[i * n + j]).sum::<f64>() / n as f64)
        .collect();
    let all = rows.iter().sum::<f64>() / n as f64;
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] = a[i * n + j] - rows[i] - cols[j] + all;
        }
    }
    out
}

/// Centered kernel-target alignment of the `[n, n]` kernel `k` with the
/// labels (see the module docs). Errors on a shape mismatch, a label
/// `>= classes`, or a kernel or label kernel that centers to zero (e.g. a
/// single class).
pub fn centered_alignment(k: &[f64], n: usize, labels: &[u32], classes: usize) -> Result<f64> {
    if n.checked_mul(n) != Some(k.len()) || labels.len() != n {
        return Err(Error::Shape {
            what: "kernel and labels for an alignment".into(),
            expected: vec![n, n],
            got: vec![k.len(), labels.len()],
        });
    }
    if let Some(&y) = labels.iter().find(|&&y| y as usize >= classes) {
        return Err(Error::invalid("label", format!("< {classes} classes"), y));
    }
    let l: Vec<f64> = (0..n * n)
        .map(|ij| f64::from(u8::from(labels[ij / n] == labels[ij % n])))
        .collect();
    let (kc, lc) = (centered(k, n), centered(&l, n));
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let (nk, nl) = (dot(&kc, &kc).sqrt(), dot(&lc, &lc).sqrt());
    if !(nk > 0.0 && nl > 0.0) {
        return Err(Error::invalid(
            "kernel-target alignment",
            "a kernel and labels that do not center to zero (two classes or more)",
            format!("||Kc|| = {nk:.3e}, ||Lc|| = {nl:.3e}"),
        ));
    }
    Ok(dot(&kc, &lc) / (nk * nl))
}

/// The spectrum (`top` largest eigenvalues), trace, effective rank and
/// centered label alignment of a square kernel on examples with `labels`.
pub fn kernel_stats(k: &Kernel, labels: &[u32], classes: usize, top: usize) -> Result<KernelStats> {
    if k.rows != k.cols {
        return Err(Error::Shape {
            what: "kernel for its statistics (square)".into(),
            expected: vec![k.rows, k.rows],
            got: vec![k.rows, k.cols],
        });
    }
    let a = k.to_f64();
    let ev = spectrum::eigenvalues(&a, k.rows)?;
    Ok(KernelStats {
        top_eigenvalues: ev.iter().take(top).copied().collect(),
        trace: ev.iter().sum(),
        effective_rank: effective_rank(&ev)?,
        alignment: centered_alignment(&a, k.rows, labels, classes)?,
    })
}

/// What [`kernel_regression`] measures.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    /// The absolute ridge λ used.
    pub ridge: f64,
}

/// The most training examples the experiments hand to kernel regression:
/// `Θ(X, X)` is `n²` f64 (8,000 examples: 512 MB).
pub const MAX_KERNEL_EXAMPLES: usize = 8000;

/// Kernel regression on `train`, evaluated on `train` and `test`, with the
/// kernel `k(a, na, b, nb)` (row-major `[na, nb]`): `λ = ridge · tr K / n`,
/// grown 10x (at most 6 times) until `K + λI` is positive definite. The test
/// kernel is computed in blocks of 2,000 rows, so memory stays at 2,000 · n.
/// Errors on an empty training set, a bad ridge, a kernel with a zero or
/// non-finite trace, or one that no ridge makes positive definite.
pub fn kernel_regression(
    k: impl Fn(&[f32], usize, &[f32], usize) -> Result<Vec<f32>>,
    train: &Dataset,
    test: &Dataset,
    ridge: f64,
) -> Result<Regression> {
    let (n, c) = (train.len(), train.num_classes);
    if n == 0 || c == 0 || !(ridge > 0.0 && ridge.is_finite()) {
        return Err(Error::invalid(
            "kernel regression",
            "training examples, classes and a finite ridge > 0",
            format!("{n} examples, {c} classes, ridge {ridge}"),
        ));
    }
    let ktt = k(&train.x, n, &train.x, n)?;
    let trace: f64 = (0..n).map(|i| ktt[i * n + i] as f64).sum();
    if !(trace > 0.0 && trace.is_finite()) {
        return Err(Error::invalid(
            "kernel for kernel regression",
            "a finite kernel with a positive trace",
            format!("trace {trace}"),
        ));
    }
    let mut lambda = ridge * trace / n as f64;
    let y = nalgebra::DMatrix::from_fn(n, c, |i, j| f64::from(u8::from(train.labels[i] as usize == j)));
    let mut chol = None;
    for attempt in 0..7 {
        if attempt > 0 {
            lambda *= 10.0;
        }
        let m = nalgebra::DMatrix::from_fn(n, n, |i, j| {
            let v = 0.5 * (ktt[i * n + j] as f64 + ktt[j * n + i] as f64);
            if i == j {
                v + lambda
            } else {
                v
            }
        });
        if let Some(ch) = m.cholesky() {
            chol = Some(ch);
            break;
        }
    }
    let chol = chol.ok_or_else(|| {
        Error::invalid(
            "kernel for kernel regression",
            "a kernel positive definite with a ridge",
            format!("none up to λ = {lambda:.3e}"),
        )
    })?;
    let alpha = chol.solve(&y);
    let correct = |kx: &[f32], m: usize, labels: &[u32]| -> usize {
        (0..m)
            .filter(|&i| {
                let row = &kx[i * n..(i + 1) * n];
                let score = |j: usize| -> f64 { row.iter().enumerate().map(|(r, &v)| v as f64 * alpha[(r, j)]).sum() };
                let best = (0..c).max_by(|&a, &b| score(a).total_cmp(&score(b))).unwrap_or(0);
                best == labels[i] as usize
            })
            .count()
    };
    let train_accuracy = correct(&ktt, n, &train.labels) as f64 / n as f64;
    let block = 2000;
    let mut right = 0;
    for s in (0..test.len()).step_by(block) {
        let e = (s + block).min(test.len());
        let kx = k(&test.x[s * test.dim()..e * test.dim()], e - s, &train.x, n)?;
        right += correct(&kx, e - s, &test.labels[s..e]);
    }
    Ok(Regression {
        train_accuracy,
        test_accuracy: right as f64 / test.len().max(1) as f64,
        ridge: lambda,
    })
}
