//! Eigenvalues and eigenvectors of symmetric matrices (kernel spectra).
//!
//! [`eigenvalues`] and [`eigh`] validate their input (size, finiteness,
//! symmetry), symmetrize it as `(A + Aᵀ)/2` and dispatch to a backend:
//! [`lapack_backend`] (LAPACK `dsyev` through `ndarray-linalg`) when the crate
//! is built with the `lapack` feature, [`nalgebra_backend`] (nalgebra's
//! `SymmetricEigen`, pure Rust) otherwise. [`backend`] says which one is in.
//! Both backends can also be called directly; they read the lower triangle of
//! a row-major `[n, n]` matrix and do not check symmetry.
//!
//! Eigenvalues are returned in descending order; eigenvectors are the columns
//! of a row-major `[n, n]` matrix, column `j` for eigenvalue `j`.

use crate::{Error, Result};

/// Symmetry tolerance, relative to the largest |entry|.
const SYMMETRY_RTOL: f64 = 1e-6;

/// Which backend [`eigenvalues`] and [`eigh`] use: `"nalgebra"` or `"lapack"`.
pub fn backend() -> &'static str {
    if cfg!(feature = "lapack") {
        "lapack"
    } else {
        "nalgebra"
    }
}

/// Eigenvalues of the symmetric matrix `a` (`[n, n]` row-major), sorted
/// descending. Errors if `a.len() != n * n`, if an entry is not finite, or if
/// `a` is not symmetric to a relative `1e-6` of its largest |entry| (the
/// message names the worst pair).
pub fn eigenvalues(a: &[f64], n: usize) -> Result<Vec<f64>> {
    let s = symmetrized(a, n)?;
    #[cfg(feature = "lapack")]
    let ev = lapack_backend::eigenvalues(&s, n)?;
    #[cfg(not(feature = "lapack"))]
    let ev = nalgebra_backend::eigenvalues(&s, n);
    check_output(&ev, &[])?;
    Ok(ev)
}

/// Eigenvalues (descending) and eigenvectors of the symmetric matrix `a`
/// (`[n, n]` row-major): column `j` of the returned row-major `[n, n]` matrix
/// is the unit eigenvector of eigenvalue `j`, with its sign chosen so that its
/// (first) entry of largest magnitude is positive. Errors as [`eigenvalues`].
pub fn eigh(a: &[f64], n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let s = symmetrized(a, n)?;
    #[cfg(feature = "lapack")]
    let (ev, mut vecs) = lapack_backend::eigh(&s, n)?;
    #[cfg(not(feature = "lapack"))]
    let (ev, mut vecs) = nalgebra_backend::eigh(&s, n);
    check_output(&ev, &vecs)?;
    fix_signs(&mut vecs, n);
    Ok((ev, vecs))
}

/// Checks `a` and returns `(A + Aᵀ)/2`.
fn symmetrized(a: &[f64], n: usize) -> Result<Vec<f64>> {
    if n.checked_mul(n) != Some(a.len()) {
        return Err(Error::Shape {
            what: "symmetric matrix".into(),
            expected: vec![n, n],
            got: vec![a.len()],
        });
    }
    if let Some(k) = a.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid(
            format!("symmetric matrix entry [{}, {}]", k / n, k % n),
            "a finite value",
            a[k],
        ));
    }
    let amax = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let tol = SYMMETRY_RTOL * amax;
    let mut worst = (0.0f64, 0, 0);
    let mut s = a.to_vec();
    for i in 0..n {
        for j in 0..i {
            let (x, y) = (a[i * n + j], a[j * n + i]);
            let diff = (x - y).abs();
            if diff > worst.0 {
                worst = (diff, i, j);
            }
            let m = 0.5 * (x + y);
            s[i * n + j] = m;
            s[j * n + i] = m;
        }
    }
    if worst.0 > tol {
        let (diff, i, j) = worst;
        return Err(Error::invalid(
            "matrix for a symmetric eigendecomposition",
            format!("|a[i, j] - a[j, i]| <= {SYMMETRY_RTOL:e} * max|a| = {tol:e}"),
            format!(
                "a[{i}, {j}] = {} and a[{j}, {i}] = {} (difference {diff:e})",
                a[i * n + j],
                a[j * n + i]
            ),
        ));
    }
    Ok(s)
}

/// A backend that did not converge leaves non-finite values.
fn check_output(ev: &[f64], vecs: &[f64]) -> Result<()> {
    if ev.iter().chain(vecs).all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(Error::invalid(
            format!("symmetric eigendecomposition ({} backend)", backend()),
            "finite eigenvalues and eigenvectors",
            "non-finite values (no convergence)",
        ))
    }
}

/// Flips each column so that its first entry of largest magnitude is positive.
fn fix_signs(vecs: &mut [f64], n: usize) {
    for j in 0..n {
        let mut best = (0.0f64, 0.0f64);
        for i in 0..n {
            let v = vecs[i * n + j];
            if v.abs() > best.0 {
                best = (v.abs(), v);
            }
        }
        if best.1 < 0.0 {
            for i in 0..n {
                vecs[i * n + j] = -vecs[i * n + j];
            }
        }
    }
}

/// Indices that sort `ev` descending.
fn descending_order(ev: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..ev.len()).collect();
    idx.sort_by(|&a, &b| ev[b].total_cmp(&ev[a]));
    idx
}

/// Pure-Rust backend: nalgebra's `SymmetricEigen` (Householder
/// tridiagonalization + implicit symmetric QR). Always compiled.
pub mod nalgebra_backend {
    use nalgebra::{DMatrix, SymmetricEigen};

    fn check_len(a: &[f64], n: usize) {
        assert!(
            n.checked_mul(n) == Some(a.len()),
            "nalgebra_backend: matrix of {} entries is not [{n}, {n}]",
            a.len()
        );
    }

    /// Eigenvalues (descending) of the row-major `[n, n]` matrix `a`, reading
    /// its lower triangle. A non-finite entry gives all-NaN eigenvalues (the
    /// iteration would not terminate on one).
    ///
    /// # Panics
    /// If `a.len() != n * n` (use [`super::eigenvalues`] for checked input).
    pub fn eigenvalues(a: &[f64], n: usize) -> Vec<f64> {
        check_len(a, n);
        if n == 0 {
            return Vec::new();
        }
        if a.iter().any(|v| !v.is_finite()) {
            return vec![f64::NAN; n];
        }
        let m = DMatrix::from_row_slice(n, n, a);
        let mut ev: Vec<f64> = m.symmetric_eigenvalues().iter().copied().collect();
        ev.sort_by(|x, y| y.total_cmp(x));
        ev
    }

    /// Eigenvalues (descending) and eigenvectors (column `j` of the returned
    /// row-major `[n, n]` matrix for eigenvalue `j`) of the row-major matrix
    /// `a`, reading its lower triangle. A non-finite entry gives all-NaN output.
    ///
    /// # Panics
    /// If `a.len() != n * n` (use [`super::eigh`] for checked input).
    pub fn eigh(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
        check_len(a, n);
        if n == 0 {
            return (Vec::new(), Vec::new());
        }
        if a.iter().any(|v| !v.is_finite()) {
            return (vec![f64::NAN; n], vec![f64::NAN; n * n]);
        }
        let m = DMatrix::from_row_slice(n, n, a);
        let se = SymmetricEigen::new(m);
        let vals = se.eigenvalues.as_slice();
        let order = super::descending_order(vals);
        let ev = order.iter().map(|&k| vals[k]).collect();
        let mut vecs = vec![0.0; n * n];
        for (j, &k) in order.iter().enumerate() {
            for (i, &v) in se.eigenvectors.column(k).iter().enumerate() {
                vecs[i * n + j] = v;
            }
        }
        (ev, vecs)
    }
}

/// LAPACK backend (`dsyev` through `ndarray-linalg`, linked to OpenBLAS).
/// Compiled with the `lapack` feature.
#[cfg(feature = "lapack")]
pub mod lapack_backend {
    use ndarray::Array2;
    use ndarray_linalg::{Eigh, Lapack, MatrixLayout, UPLO};

    use crate::{Error, Result};

    /// Checks the size and copies `a` with its lower triangle mirrored into
    /// the upper one (so the result is exactly symmetric and the triangle
    /// LAPACK reads does not depend on the memory layout).
    fn lower_symmetric(a: &[f64], n: usize) -> Result<(Vec<f64>, i32)> {
        if n.checked_mul(n) != Some(a.len()) {
            return Err(Error::Shape {
                what: "symmetric matrix (lapack backend)".into(),
                expected: vec![n, n],
                got: vec![a.len()],
            });
        }
        let ni = i32::try_from(n).map_err(|_| Error::invalid("matrix size for LAPACK", "n <= i32::MAX", n))?;
        let mut s = a.to_vec();
        for i in 0..n {
            for j in 0..i {
                s[j * n + i] = s[i * n + j];
            }
        }
        Ok((s, ni))
    }

    fn lapack_error(e: impl std::fmt::Display) -> Error {
        Error::invalid("LAPACK symmetric eigendecomposition (dsyev)", "success", e)
    }

    /// Eigenvalues (descending) of the row-major `[n, n]` matrix `a`, reading
    /// its lower triangle (`UPLO::Lower`). Calls `dsyev` with `jobz = 'N'`
    /// directly: `ndarray-linalg`'s `EigValsh` computes the eigenvectors too.
    /// Errors on a wrong size or a LAPACK failure.
    pub fn eigenvalues(a: &[f64], n: usize) -> Result<Vec<f64>> {
        let (mut s, ni) = lower_symmetric(a, n)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        let layout = MatrixLayout::F { col: ni, lda: ni };
        let mut ev = <f64 as Lapack>::eigh(false, layout, UPLO::Lower, &mut s).map_err(lapack_error)?;
        ev.sort_by(|x, y| y.total_cmp(x));
        Ok(ev)
    }

    /// Eigenvalues (descending) and eigenvectors (column `j` of the returned
    /// row-major `[n, n]` matrix for eigenvalue `j`) of the row-major matrix
    /// `a`, reading its lower triangle, via `ndarray-linalg`'s [`Eigh`] with
    /// `UPLO::Lower`. Errors on a wrong size or a LAPACK failure.
    pub fn eigh(a: &[f64], n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        let (s, _) = lower_symmetric(a, n)?;
        if n == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let m = Array2::from_shape_vec((n, n), s).map_err(lapack_error)?;
        let (vals, vecs) = m.eigh(UPLO::Lower).map_err(lapack_error)?;
        let vals = vals.to_vec();
        let order = super::descending_order(&vals);
        let ev = order.iter().map(|&k| vals[k]).collect();
        let mut out = vec![0.0; n * n];
        for (j, &k) in order.iter().enumerate() {
            for (i, &v) in vecs.column(k).iter().enumerate() {
                out[i * n + j] = v;
            }
        }
        Ok((ev, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cases() {
        assert_eq!(eigenvalues(&[], 0).unwrap(), Vec::<f64>::new());
        assert_eq!(eigenvalues(&[3.0], 1).unwrap(), vec![3.0]);
        let (ev, v) = eigh(&[2.0, 1.0, 1.0, 2.0], 2).unwrap();
        assert!((ev[0] - 3.0).abs() < 1e-12 && (ev[1] - 1.0).abs() < 1e-12);
        let r = std::f64::consts::FRAC_1_SQRT_2;
        // Column 0 = (1, 1)/sqrt 2, sign fixed positive.
        assert!((v[0] - r).abs() < 1e-12 && (v[2] - r).abs() < 1e-12, "{v:?}");
    }

    #[test]
    fn slightly_asymmetric_is_accepted_and_badly_asymmetric_is_not() {
        assert!(eigenvalues(&[1.0, 0.5, 0.5 + 1e-9, 1.0], 2).is_ok());
        let e = eigenvalues(&[1.0, 0.5, 0.6, 1.0], 2).unwrap_err().to_string();
        assert!(e.contains("a[1, 0]") && e.contains("a[0, 1]"), "{e}");
    }

    #[test]
    fn backend_output_is_sorted_descending() {
        let a = [1.0, 0.0, 0.0, 0.0, -2.0, 0.0, 0.0, 0.0, 5.0];
        assert_eq!(nalgebra_backend::eigenvalues(&a, 3), vec![5.0, 1.0, -2.0]);
        let (ev, v) = nalgebra_backend::eigh(&a, 3);
        assert_eq!(ev, vec![5.0, 1.0, -2.0]);
        assert_eq!(v[2 * 3].abs(), 1.0); // eigenvector of 5 is e_3: entry [2, 0]
        assert!(nalgebra_backend::eigenvalues(&[f64::NAN], 1)[0].is_nan());
    }
}

/// `out = A x` for a row-major `[rows, cols]` f32 matrix and an f64 vector,
/// accumulated in f64, rows in parallel. Hand-written because it is the hot
/// loop of [`largest_eigenvalue`] and of the exact linearized dynamics
/// (a few hundred products with a matrix that stays in cache), and the
/// gemm crate has no mixed f32 × f64 product.
pub fn matvec(a: &[f32], rows: usize, cols: usize, x: &[f64], out: &mut [f64]) {
    use rayon::prelude::*;
    debug_assert!(a.len() == rows * cols && x.len() == cols && out.len() == rows);
    out.par_chunks_mut(64).enumerate().for_each(|(blk, o)| {
        for (r, ov) in o.iter_mut().enumerate() {
            let row = &a[(blk * 64 + r) * cols..(blk * 64 + r + 1) * cols];
            // Four partial sums so the loop vectorizes.
            let mut s = [0.0f64; 4];
            let mut chunks = row.chunks_exact(4).zip(x.chunks_exact(4));
            for (ra, xa) in &mut chunks {
                for k in 0..4 {
                    s[k] += ra[k] as f64 * xa[k];
                }
            }
            let tail = cols - cols % 4;
            let mut t = s[0] + s[1] + s[2] + s[3];
            for k in tail..cols {
                t += row[k] as f64 * x[k];
            }
            *ov = t;
        }
    });
}

/// The largest eigenvalue of a symmetric positive semi-definite `[n, n]`
/// row-major f32 matrix, by power iteration from the all-ones vector (which
/// overlaps the top eigenvector of a kernel matrix with positive entries),
/// stopped when the Rayleigh quotient changes by less than `1e-7` relative
/// (at most 10,000 products). Errors on a wrong size, a non-finite entry, or
/// no convergence.
pub fn largest_eigenvalue(a: &[f32], n: usize) -> Result<f64> {
    if n == 0 || n.checked_mul(n) != Some(a.len()) {
        return Err(Error::Shape {
            what: "square matrix for power iteration".into(),
            expected: vec![n, n],
            got: vec![a.len()],
        });
    }
    if a.iter().any(|v| !v.is_finite()) {
        return Err(Error::invalid(
            "matrix for power iteration",
            "finite entries",
            "NaN or inf",
        ));
    }
    let mut v = vec![1.0 / (n as f64).sqrt(); n];
    let mut w = vec![0.0f64; n];
    let mut lam = 0.0f64;
    for _ in 0..10_000 {
        matvec(a, n, n, &v, &mut w);
        let rq: f64 = v.iter().zip(&w).map(|(a, b)| a * b).sum();
        let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            return Ok(0.0);
        }
        v.iter_mut().zip(&w).for_each(|(vi, wi)| *vi = wi / norm);
        if (rq - lam).abs() <= 1e-7 * rq.abs() {
            return Ok(rq);
        }
        lam = rq;
    }
    Err(Error::invalid(
        "power iteration for the largest eigenvalue",
        "convergence within 10000 iterations",
        format!("last estimate {lam}"),
    ))
}
