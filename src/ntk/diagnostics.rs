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

use serde::{Deserialize, Serialize};

use super::empirical::Kernel;
use super::spectrum;
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
