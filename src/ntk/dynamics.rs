//! Closed-form training dynamics of the linearized network under MSE
//! (Lee et al. 2019, Eq. 8-9), from the NTK at initialization.
//!
//! With `L = (1/2N) Σ_i ||f(x_i) − y_i||²` and full-batch gradient descent at
//! rate η, the linearized network's train outputs follow
//! `f_k(X) = y + (I − ηΘ/N)^k (f_0(X) − y)`, and on other inputs
//! `f_k(x*) = f_0(x*) − Θ(x*, X) Θ^{-1} (I − (I − ηΘ/N)^k) (f_0(X) − y)`,
//! the discrete-time form of Lee et al.'s `e^{−ηΘt/N}` (identical in the small-η
//! limit with t = k). With `Θ = V Λ V^T` both are diagonal in the eigenbasis:
//! mode i decays as `(1 − ηλ_i/N)^k` and contributes `(1 − (1 − ηλ_i/N)^k)/λ_i`
//! to the test prediction (→ `kη/N` as `λ_i → 0`, so singular kernels are fine).
//!
//! The kernel is the output-traced kernel applied to every output (the
//! infinite-width NTK is `Θ ⊗ I_C`; at finite width this is an approximation).

use super::empirical::{Kernel, KernelKind};
use super::spectrum;
use crate::{Error, Result};

/// The eigendecomposed train kernel and initial residual.
#[derive(Clone, Debug)]
pub struct KernelDynamics {
    n: usize,
    c: usize,
    /// Eigenvalues of Θ(X, X), descending.
    pub eigenvalues: Vec<f64>,
    /// Eigenvectors, column j for eigenvalue j, `[n, n]` row-major.
    vectors: Vec<f64>,
    /// `V^T (f_0(X) − y)`, `[n, c]`.
    resid_eig: Vec<f64>,
    y: Vec<f64>,
}

impl KernelDynamics {
    /// `theta`: traced kernel on the train inputs (`[n, n]`); `f0`, `y`: initial
    /// outputs and targets on them, `[n, c]`.
    pub fn new(theta: &Kernel, f0: &[f32], y: &[f32], c: usize) -> Result<Self> {
        let n = theta.rows;
        if theta.kind != KernelKind::Traced || theta.cols != n {
            return Err(Error::invalid(
                "train kernel",
                "a square traced kernel",
                format!("{:?} {}x{}", theta.kind, theta.rows, theta.cols),
            ));
        }
        if f0.len() != n * c || y.len() != n * c {
            return Err(Error::Shape {
                what: "initial outputs / targets".into(),
                expected: vec![n, c],
                got: vec![f0.len(), y.len()],
            });
        }
        let (eigenvalues, vectors) = spectrum::eigh(&theta.to_f64(), n)?;
        let mut resid_eig = vec![0.0f64; n * c];
        for j in 0..n {
            for k in 0..c {
                resid_eig[j * c + k] = (0..n)
                    .map(|i| vectors[i * n + j] * (f0[i * c + k] as f64 - y[i * c + k] as f64))
                    .sum();
            }
        }
        Ok(KernelDynamics {
            n,
            c,
            eigenvalues,
            vectors,
            resid_eig,
            y: y.iter().map(|&v| v as f64).collect(),
        })
    }

    /// The largest stable learning rate of full-batch GD, `2N / λ_max`.
    pub fn max_stable_lr(&self) -> f64 {
        2.0 * self.n as f64 / self.eigenvalues.first().copied().unwrap_or(0.0).max(f64::MIN_POSITIVE)
    }

    fn decay(&self, lam: f64, lr: f64, steps: usize) -> f64 {
        (1.0 - lr * lam / self.n as f64).powi(steps as i32)
    }

    /// Predicted train outputs `[n, c]` after `steps` GD steps at rate `lr`.
    pub fn train_outputs(&self, lr: f64, steps: usize) -> Vec<f64> {
        let (n, c) = (self.n, self.c);
        let mut scaled = self.resid_eig.clone();
        for j in 0..n {
            let d = self.decay(self.eigenvalues[j], lr, steps);
            scaled[j * c..(j + 1) * c].iter_mut().for_each(|v| *v *= d);
        }
        let mut out = self.y.clone();
        for i in 0..n {
            for j in 0..n {
                let v = self.vectors[i * n + j];
                for k in 0..c {
                    out[i * c + k] += v * scaled[j * c + k];
                }
            }
        }
        out
    }

    /// Predicted outputs `[m, c]` on other inputs, given `Θ(x*, X)` (`[m, n]`,
    /// traced) and their initial outputs `f0_test` (`[m, c]`).
    pub fn test_outputs(&self, theta_test: &Kernel, f0_test: &[f32], lr: f64, steps: usize) -> Result<Vec<f64>> {
        let (n, c) = (self.n, self.c);
        let m = theta_test.rows;
        if theta_test.cols != n || f0_test.len() != m * c {
            return Err(Error::Shape {
                what: "test kernel / outputs".into(),
                expected: vec![m, n, c],
                got: vec![theta_test.cols, f0_test.len()],
            });
        }
        // g = diag((1 − decay)/λ) V^T (f0 − y), [n, c]
        let mut g = self.resid_eig.clone();
        for j in 0..n {
            let lam = self.eigenvalues[j];
            let x = lr * lam / n as f64;
            let w = if x.abs() < 1e-12 {
                steps as f64 * lr / n as f64
            } else {
                (1.0 - self.decay(lam, lr, steps)) / lam
            };
            g[j * c..(j + 1) * c].iter_mut().for_each(|v| *v *= w);
        }
        // h = V g, [n, c]
        let mut h = vec![0.0f64; n * c];
        for i in 0..n {
            for j in 0..n {
                let v = self.vectors[i * n + j];
                for k in 0..c {
                    h[i * c + k] += v * g[j * c + k];
                }
            }
        }
        let mut out: Vec<f64> = f0_test.iter().map(|&v| v as f64).collect();
        for r in 0..m {
            for i in 0..n {
                let t = theta_test.data[r * n + i] as f64;
                for k in 0..c {
                    out[r * c + k] -= t * h[i * c + k];
                }
            }
        }
        Ok(out)
    }
}

/// Outputs of the linearized network at one step of [`exact_linear_gd`].
#[derive(Clone, Debug, PartialEq)]
pub struct LinearSnapshot {
    pub step: usize,
    /// Train outputs, `[n, c]`.
    pub train: Vec<f64>,
    /// Test outputs, `[m, c]`.
    pub test: Vec<f64>,
}

/// Full-batch gradient descent of the linearized network on
/// `L = (1/2N) Σ_i ||f(x_i) − y_i||²`, exactly, from the **full** NTK at init
/// (`[N·C, N·C]`, row `i·C + c`; not the traced kernel ⊗ I).
///
/// The linearized network is linear in θ, so one GD step moves its outputs by
/// `−(η/N) Θ(x, X) (f_k(X) − y)` exactly, with the full kernel at init:
///
/// ```text
/// r_{k+1}   = (I − (η/N) Θ(X, X)) r_k,          r_k = f_k(X) − y
/// f_k(x*)   = f_0(x*) − (η/N) Θ(x*, X) Σ_{j<k} r_j
/// ```
///
/// (Lee et al. 2019, Eq. 7-9 in discrete time). This is the trajectory the
/// trained [`super::linearize::Linearized`] network follows under full-batch
/// GD, up to float rounding, without training it. The matrix powers are
/// evaluated in a Krylov basis of `Θ(X, X)` from `r_0` grown until the result
/// no longer changes at `1e-10` relative (see `krylov_gd_coefficients`): a
/// few dozen `[N·C]²` products instead of one per step, and one
/// `[M·C, N·C]` product per requested step. `steps` must be
/// ascending; `theta_test` is the full kernel `Θ(x*, X)`, `[M·C, N·C]`.
#[allow(clippy::too_many_arguments)]
pub fn exact_linear_gd(
    theta_train: &Kernel,
    theta_test: &Kernel,
    f0_train: &[f32],
    f0_test: &[f32],
    y: &[f32],
    n: usize,
    lr: f64,
    steps: &[usize],
) -> Result<Vec<LinearSnapshot>> {
    let nc = theta_train.rows;
    if theta_train.kind != KernelKind::Full || theta_train.cols != nc || n == 0 || !nc.is_multiple_of(n) {
        return Err(Error::invalid(
            "train kernel for the exact linearized dynamics",
            format!("a square full kernel [N·C, N·C] with N = {n}"),
            format!("{:?} {}x{}", theta_train.kind, theta_train.rows, theta_train.cols),
        ));
    }
    let mc = theta_test.rows;
    if theta_test.kind != KernelKind::Full || theta_test.cols != nc {
        return Err(Error::invalid(
            "test kernel for the exact linearized dynamics",
            format!("a full kernel [M·C, {nc}]"),
            format!("{:?} {}x{}", theta_test.kind, theta_test.rows, theta_test.cols),
        ));
    }
    if f0_train.len() != nc || y.len() != nc || f0_test.len() != mc {
        return Err(Error::Shape {
            what: "initial outputs / targets of the exact linearized dynamics".into(),
            expected: vec![nc, nc, mc],
            got: vec![f0_train.len(), y.len(), f0_test.len()],
        });
    }
    if steps.windows(2).any(|w| w[0] > w[1]) {
        return Err(Error::invalid("evaluation steps", "ascending", format!("{steps:?}")));
    }
    for (k, what) in [(theta_train, "train"), (theta_test, "test")] {
        if let Some(i) = k.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                format!("{what} kernel for the exact linearized dynamics"),
                "finite entries",
                format!("{} at entry [{}, {}]", k.data[i], i / k.cols, i % k.cols),
            ));
        }
    }
    if !(lr.is_finite() && lr > 0.0) {
        return Err(Error::invalid(
            "learning rate of the exact linearized dynamics",
            "a finite value > 0",
            lr,
        ));
    }
    let h = lr / n as f64;
    let r0: Vec<f64> = f0_train.iter().zip(y).map(|(&f, &t)| f as f64 - t as f64).collect();
    let (basis, coefs) = krylov_gd_coefficients(&theta_train.data, nc, &r0, h, steps)?;
    let mut out = Vec::with_capacity(steps.len());
    let mut test = vec![0.0f64; mc];
    for (&s, (c, g)) in steps.iter().zip(&coefs) {
        // r_s = V c, Σ_{j<s} r_j = V g.
        let combine = |w: &[f64]| -> Vec<f64> {
            let mut v = vec![0.0f64; nc];
            for (b, &wi) in basis.iter().zip(w) {
                v.iter_mut().zip(b).for_each(|(a, &x)| *a += wi * x);
            }
            v
        };
        let r = combine(c);
        let sum = combine(g);
        spectrum::matvec(&theta_test.data, mc, nc, &sum, &mut test);
        let test_out = test.iter().zip(f0_test).map(|(t, &f0)| f0 as f64 - h * t).collect();
        let train = r.iter().zip(y).map(|(ri, &t)| ri + t as f64).collect();
        out.push(LinearSnapshot {
            step: s,
            train,
            test: test_out,
        });
    }
    Ok(out)
}

/// The Krylov (Lanczos) evaluation of `r_s = (I − hA)^s r_0` and
/// `Σ_{j<s} r_j` at every step `s`: an orthonormal basis `V` of the Krylov
/// space of `A` (`[nc, nc]`, f32, symmetric) from `r_0`, with full
/// reorthogonalization, and for each step the coefficients `(c_s, g_s)` with
/// `r_s = V c_s`, `Σ_{j<s} r_j = V g_s`, from the eigendecomposition of the
/// tridiagonal `T = Vᵀ A V` (`c = β_0 Q diag(q^s) Qᵀ e_1`, `q = 1 − hθ`, and
/// the geometric sum for `g`). The basis grows 8 vectors at a time until the
/// coefficients at the last step change by less than `1e-10` (relative to
/// `β_0`, and to `s·β_0` for the sum), or spans an invariant subspace: then it
/// is exact. A smooth function of a kernel with a fast-decaying spectrum needs
/// a few dozen products instead of one per step.
#[allow(clippy::type_complexity)]
fn krylov_gd_coefficients(
    a: &[f32],
    nc: usize,
    r0: &[f64],
    h: f64,
    steps: &[usize],
) -> Result<(Vec<Vec<f64>>, Vec<(Vec<f64>, Vec<f64>)>)> {
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
    let beta0 = dot(r0, r0).sqrt();
    if !beta0.is_finite() {
        return Err(Error::invalid("initial residual", "finite values", beta0));
    }
    if beta0 == 0.0 {
        let zero = (vec![0.0], vec![0.0]);
        return Ok((vec![vec![0.0; nc]], vec![zero; steps.len()]));
    }
    let last = steps.last().copied().unwrap_or(0);
    let mut basis: Vec<Vec<f64>> = vec![r0.iter().map(|v| v / beta0).collect()];
    let mut alpha: Vec<f64> = Vec::new();
    let mut beta: Vec<f64> = Vec::new();
    let mut w = vec![0.0f64; nc];
    let mut previous: Option<(Vec<f64>, Vec<f64>)> = None;
    loop {
        let j = basis.len() - 1;
        spectrum::matvec(a, nc, nc, &basis[j], &mut w);
        let aj = dot(&basis[j], &w);
        alpha.push(aj);
        // Full reorthogonalization, twice (Gram-Schmidt "twice is enough").
        for _ in 0..2 {
            for b in &basis {
                let c = dot(b, &w);
                w.iter_mut().zip(b).for_each(|(x, &y)| *x -= c * y);
            }
        }
        let bj = dot(&w, &w).sqrt();
        let m = alpha.len();
        let scale = alpha
            .iter()
            .fold(0.0f64, |acc, v| acc.max(v.abs()))
            .max(f64::MIN_POSITIVE);
        let invariant = bj <= 1e-12 * scale || m == nc;
        if invariant || m % 8 == 0 {
            let now = tridiagonal_coefficients(&alpha, &beta, beta0, h, &[last])?.swap_remove(0);
            let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
            let converged = previous.as_ref().is_some_and(|(pc, pg)| {
                let change = |new: &[f64], old: &[f64]| {
                    new.iter()
                        .enumerate()
                        .map(|(i, v)| (v - old.get(i).copied().unwrap_or(0.0)).powi(2))
                        .sum::<f64>()
                        .sqrt()
                };
                // Relative to the coefficients' own size when they grow
                // (a rate above the stable one: the residual grows
                // geometrically and only its relative accuracy matters).
                change(&now.0, pc) <= 1e-10 * beta0.max(norm(&now.0))
                    && change(&now.1, pg) <= 1e-10 * (beta0 * last.max(1) as f64).max(norm(&now.1))
            });
            // Coefficients that overflow: the dynamics diverge; more basis
            // vectors cannot make them finite, and the caller reports the
            // divergence from the non-finite outputs.
            let overflow = !now.0.iter().chain(&now.1).all(|v| v.is_finite());
            if invariant || converged || overflow {
                let coefs = tridiagonal_coefficients(&alpha, &beta, beta0, h, steps)?;
                return Ok((basis, coefs));
            }
            previous = Some(now);
        }
        beta.push(bj);
        basis.push(w.iter().map(|v| v / bj).collect());
    }
}

/// For the symmetric tridiagonal `T` (diagonal `alpha`, off-diagonal `beta`)
/// and each step `s`: `c = β_0 (I − hT)^s e_1` and `g = β_0 Σ_{j<s} (I − hT)^j e_1`.
fn tridiagonal_coefficients(
    alpha: &[f64],
    beta: &[f64],
    beta0: f64,
    h: f64,
    steps: &[usize],
) -> Result<Vec<(Vec<f64>, Vec<f64>)>> {
    let m = alpha.len();
    if !alpha.iter().chain(beta).all(|v| v.is_finite()) {
        return Err(Error::invalid(
            "Lanczos tridiagonal matrix of the linearized dynamics",
            "finite entries",
            "NaN or inf",
        ));
    }
    let t = nalgebra::DMatrix::from_fn(m, m, |i, j| {
        if i == j {
            alpha[i]
        } else if i + 1 == j {
            beta[i]
        } else if j + 1 == i {
            beta[j]
        } else {
            0.0
        }
    });
    // Bounded iterations: no input makes the decomposition loop forever.
    let eig = nalgebra::SymmetricEigen::try_new(t, f64::EPSILON, 100_000).ok_or_else(|| {
        Error::invalid(
            "eigendecomposition of the Lanczos tridiagonal matrix",
            "convergence within 100000 QR iterations",
            format!("no convergence for a {m}x{m} matrix"),
        )
    })?;
    Ok(steps
        .iter()
        .map(|&s| {
            let mut c = vec![0.0f64; m];
            let mut g = vec![0.0f64; m];
            for (i, &theta) in eig.eigenvalues.iter().enumerate() {
                let q = 1.0 - h * theta;
                let e = eig.eigenvectors[(0, i)] * beta0;
                let qs = q.powi(s.min(i32::MAX as usize) as i32);
                // Σ_{j<s} q^j = (1 − q^s) / (hθ), written with expm1/ln_1p
                // for small hθ (slow modes) so it keeps its precision.
                let x = h * theta;
                let geo = if x == 0.0 {
                    s as f64
                } else if x.abs() < 1e-3 {
                    -(s as f64 * (-x).ln_1p()).exp_m1() / x
                } else {
                    (1.0 - qs) / x
                };
                for k in 0..m {
                    let v = eig.eigenvectors[(k, i)] * e;
                    c[k] += v * qs;
                    g[k] += v * geo;
                }
            }
            (c, g)
        })
        .collect())
}
