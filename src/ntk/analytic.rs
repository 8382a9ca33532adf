//! The infinite-width NNGP and NTK of a fully connected network in NTK
//! parameterization (Jacot et al. 2018; Lee et al. 2019, Eq. 4-5), and in
//! standard parameterization ([`InfiniteMlp::kernels_standard`],
//! neural-tangents' convention), with the
//! closed-form Gaussian expectations of ReLU (the arc-cosine kernel, Cho & Saul
//! 2009, as written in Arora et al. 2019) and erf (Williams 1997).
//!
//! # The network
//!
//! With inputs `x ∈ R^d`, widths `n_l` and all weights and biases drawn `N(0, 1)`:
//!
//! ```text
//! z^1     = (W_std / sqrt(d))   W^1     x   + b_std b^1
//! h^l     = phi(z^l)
//! z^{l+1} = (W_std / sqrt(n_l)) W^{l+1} h^l + b_std b^{l+1}
//! ```
//!
//! `depth` is the number of dense layers (hidden layers + the output layer);
//! the output is `f(x) = z^depth(x)`. This is [`crate::models::Mlp`] with
//! [`crate::models::Parameterization::Ntk`].
//!
//! # The recursion
//!
//! As all widths go to infinity, every output unit of `z^l` is a Gaussian
//! process with covariance `K^l` (the NNGP kernel), and gradient descent on the
//! parameters evolves `f` by the (deterministic) tangent kernel `Θ^l`:
//!
//! ```text
//! K^1(x, x')     = W_std² x·x' / d + b_std²
//! Θ^1(x, x')     = K^1(x, x')
//!
//! with (u, v) ~ N(0, Λ^l),  Λ^l = [[K^l(x, x),  K^l(x, x')],
//!                                  [K^l(x, x'), K^l(x', x')]]:
//! K^{l+1}(x, x') = W_std² E[phi(u) phi(v)]   + b_std²
//! K̇^{l+1}(x, x') = W_std² E[phi'(u) phi'(v)]
//! Θ^{l+1}(x, x') = K^{l+1}(x, x') + Θ^l(x, x') · K̇^{l+1}(x, x')
//! ```
//!
//! The outputs are `NNGP = K^depth` and `NTK = Θ^depth`, per output dimension:
//! the kernel over a network's `k` outputs is this times the `k × k` identity.
//! The diagonal terms `K^l(x, x)` are propagated per point through the same
//! recursion (each point's self-kernel), so `Λ^l` is exact at every layer.
//!
//! # Closed forms (write `K11 = K^l(x,x)`, `K22 = K^l(x',x')`, `K12 = K^l(x,x')`)
//!
//! - ReLU, with `c = K12 / sqrt(K11 K22)` clamped to `[-1, 1]` and `θ = acos(c)`:
//!   `E[phi(u)phi(v)] = sqrt(K11 K22) / (2π) · (sin θ + (π − θ) cos θ)`,
//!   `E[phi'(u)phi'(v)] = (π − θ) / (2π)`.
//!   When `K11 = 0` or `K22 = 0` that pre-activation is identically 0, and as
//!   `relu(0) = relu'(0) = 0` (the convention of [`Activation::derivative`])
//!   both expectations are 0.
//! - erf: `E[erf(u)erf(v)] = (2/π) asin(2 K12 / sqrt((1 + 2 K11)(1 + 2 K22)))`,
//!   `E[erf'(u)erf'(v)] = (4/π) / sqrt((1 + 2 K11)(1 + 2 K22) − 4 K12²)`.
//! - identity: `E[u v] = K12`, `E[1 · 1] = 1` (a deep linear network).
//! - tanh has no closed form and is rejected.
//!
//! Everything is computed in `f64`.

use nalgebra::DMatrix;
use rayon::prelude::*;

use crate::models::Activation;
use crate::{Error, Result};

/// A fully connected network of infinite width in NTK parameterization.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InfiniteMlp {
    /// Number of dense layers (hidden layers + 1 output layer), `>= 1`.
    pub depth: usize,
    /// The nonlinearity of the hidden layers: ReLU, erf or identity.
    pub activation: Activation,
    /// Weight standard deviation `W_std`.
    pub w_std: f64,
    /// Bias standard deviation `b_std`.
    pub b_std: f64,
}

/// The NNGP and NTK between two sets of inputs, each row-major `[n1, n2]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernels {
    /// `K^depth(x1_i, x2_j)` at `[i * n2 + j]`.
    pub nngp: Vec<f64>,
    /// `Θ^depth(x1_i, x2_j)` at `[i * n2 + j]`.
    pub ntk: Vec<f64>,
    pub n1: usize,
    pub n2: usize,
}

/// `(E[phi(u) phi(v)], E[phi'(u) phi'(v)])` for `(u, v) ~ N(0, [[k11, k12], [k12, k22]])`,
/// in closed form (see the module documentation). Errors for tanh (no closed
/// form) and for a covariance with a negative or non-finite variance.
pub fn gaussian_expectations(activation: Activation, k11: f64, k22: f64, k12: f64) -> Result<(f64, f64)> {
    check_activation(activation)?;
    if !(k11.is_finite() && k11 >= 0.0 && k22.is_finite() && k22 >= 0.0 && k12.is_finite()) {
        return Err(Error::invalid(
            "Gaussian covariance (k11, k22, k12)",
            "finite values with k11, k22 >= 0",
            format!("({k11}, {k22}, {k12})"),
        ));
    }
    Ok(expectations(activation, k11, k22, k12))
}

/// The closed forms, for a checked activation and covariance.
#[inline]
fn expectations(activation: Activation, k11: f64, k22: f64, k12: f64) -> (f64, f64) {
    use std::f64::consts::{FRAC_1_PI, PI};
    match activation {
        Activation::Relu => {
            let norm = (k11 * k22).sqrt();
            if norm <= 0.0 {
                // One pre-activation is identically 0 and relu(0) = relu'(0) = 0.
                return (0.0, 0.0);
            }
            let c = (k12 / norm).clamp(-1.0, 1.0);
            let theta = c.acos();
            let s = (1.0 - c * c).max(0.0).sqrt();
            let e = norm * 0.5 * FRAC_1_PI * (s + (PI - theta) * c);
            let ed = (PI - theta) * 0.5 * FRAC_1_PI;
            (e, ed)
        }
        Activation::Erf => {
            let a = 1.0 + 2.0 * k11;
            let b = 1.0 + 2.0 * k22;
            let arg = (2.0 * k12 / (a * b).sqrt()).clamp(-1.0, 1.0);
            let e = 2.0 * FRAC_1_PI * arg.asin();
            // >= 1 whenever k12² <= k11 k22; the floor guards rounding.
            let det = (a * b - 4.0 * k12 * k12).max(f64::MIN_POSITIVE);
            let ed = 4.0 * FRAC_1_PI / det.sqrt();
            (e, ed)
        }
        Activation::Identity => (k12, 1.0),
        // Excluded by `check_activation`; NaN rather than a panic if ever reached.
        Activation::Tanh | Activation::Sign => (f64::NAN, f64::NAN),
    }
}

fn check_activation(activation: Activation) -> Result<()> {
    match activation {
        Activation::Relu | Activation::Erf | Activation::Identity => Ok(()),
        Activation::Tanh | Activation::Sign => Err(Error::invalid(
            "activation for the analytic NNGP/NTK",
            "relu, erf or identity (tanh has no closed-form Gaussian expectation here; sign is for binary-activation tickets only)",
            activation.name(),
        )),
    }
}

impl InfiniteMlp {
    /// Errors on `depth == 0`, a non-finite or negative `w_std`/`b_std`, or an
    /// activation without closed-form expectations (tanh).
    pub fn new(depth: usize, activation: Activation, w_std: f64, b_std: f64) -> Result<Self> {
        if depth == 0 {
            return Err(Error::invalid(
                "depth of the infinite MLP",
                "at least 1 dense layer",
                depth,
            ));
        }
        if !(w_std.is_finite() && w_std >= 0.0) {
            return Err(Error::invalid("w_std", "a finite value >= 0", w_std));
        }
        if !(b_std.is_finite() && b_std >= 0.0) {
            return Err(Error::invalid("b_std", "a finite value >= 0", b_std));
        }
        check_activation(activation)?;
        Ok(InfiniteMlp {
            depth,
            activation,
            w_std,
            b_std,
        })
    }

    /// Re-checks the fields (they are public, so may have been changed after [`InfiniteMlp::new`]).
    fn validate(&self) -> Result<()> {
        InfiniteMlp::new(self.depth, self.activation, self.w_std, self.b_std).map(|_| ())
    }

    /// The NNGP and NTK between the rows of `x1` (`[n1, d]`, row-major) and
    /// those of `x2` (`[n2, d]`). Errors on empty inputs, a length that does not
    /// match `[n, d]`, or a non-finite input value.
    pub fn kernels(&self, x1: &[f32], n1: usize, x2: &[f32], n2: usize, d: usize) -> Result<Kernels> {
        self.kernels_impl(None, x1, n1, x2, n2, d)
    }

    /// The kernels of the same network in **standard parameterization**
    /// (`W ~ N(0, W_std²/fan_in)`, `b ~ N(0, b_std²)`, `z = W h + b`), in
    /// neural-tangents' convention (`stax.Dense(parameterization='standard')`,
    /// neural_tangents/_src/stax/linear.py): the NNGP is the same as in NTK
    /// parameterization, but each weight matrix contributes its fan-in times
    /// the kernel of its inputs to the NTK, so the NTK depends on the finite
    /// widths `hidden` (one per hidden layer, `depth − 1` of them):
    ///
    /// ```text
    /// Θ^1     = d · (x·x'/d) + 1
    /// Θ^{l+1} = n_l E[phi(u) phi(v)] + 1 + Θ^l · K̇^{l+1}
    /// ```
    ///
    /// (the `+ 1` is the bias gradient). It is the infinite-width limit of the
    /// empirical NTK divided by nothing: the empirical NTK of a standard
    /// network grows linearly with width, and this kernel tracks it.
    pub fn kernels_standard(
        &self,
        hidden: &[usize],
        x1: &[f32],
        n1: usize,
        x2: &[f32],
        n2: usize,
        d: usize,
    ) -> Result<Kernels> {
        if hidden.len() + 1 != self.depth || hidden.contains(&0) {
            return Err(Error::invalid(
                "hidden widths of the standard-parameterization kernel",
                format!("{} widths > 0 (depth − 1)", self.depth.saturating_sub(1)),
                format!("{hidden:?}"),
            ));
        }
        self.kernels_impl(Some(hidden), x1, n1, x2, n2, d)
    }

    fn kernels_impl(
        &self,
        standard: Option<&[usize]>,
        x1: &[f32],
        n1: usize,
        x2: &[f32],
        n2: usize,
        d: usize,
    ) -> Result<Kernels> {
        self.validate()?;
        check_input("x1", x1, n1, d)?;
        check_input("x2", x2, n2, d)?;

        let w2 = self.w_std * self.w_std;
        let b2 = self.b_std * self.b_std;
        let scale = w2 / d as f64;
        let m1 = DMatrix::from_row_iterator(n1, d, x1.iter().map(|&v| v as f64));
        let m2 = DMatrix::from_row_iterator(n2, d, x2.iter().map(|&v| v as f64));

        // Layer 1: cross kernel and each point's self-kernel.
        let gram = &m1 * m2.transpose(); // [n1, n2], column-major
        let mut nngp = vec![0.0; n1 * n2];
        for i in 0..n1 {
            for j in 0..n2 {
                nngp[i * n2 + j] = scale * gram[(i, j)] + b2;
            }
        }
        let self_kernel =
            |m: &DMatrix<f64>| -> Vec<f64> { m.row_iter().map(|r| scale * r.norm_squared() + b2).collect() };
        let mut k1 = self_kernel(&m1);
        let mut k2 = self_kernel(&m2);
        let mut ntk = match standard {
            // Θ^1 = x·x' + 1: the weight gradient is the raw input.
            Some(_) => (0..n1 * n2).map(|ij| gram[(ij / n2, ij % n2)] + 1.0).collect(),
            None => nngp.clone(),
        };

        // Layers 2..=depth.
        let act = self.activation;
        for l in 1..self.depth {
            // Standard parameterization: the weight block contributes fan_in · E[phi phi] + 1.
            let fan_in = standard.map(|h| h[l - 1] as f64);
            nngp.par_chunks_mut(n2)
                .zip(ntk.par_chunks_mut(n2))
                .zip(k1.par_iter())
                .for_each(|((k_row, t_row), &k11)| {
                    for ((k, t), &k22) in k_row.iter_mut().zip(t_row.iter_mut()).zip(&k2) {
                        let (e, ed) = expectations(act, k11, k22, *k);
                        let k_next = w2 * e + b2;
                        let own = match fan_in {
                            Some(n) => n * e + 1.0,
                            None => k_next,
                        };
                        *t = own + *t * (w2 * ed);
                        *k = k_next;
                    }
                });
            for k in k1.iter_mut().chain(k2.iter_mut()) {
                *k = w2 * expectations(act, *k, *k, *k).0 + b2;
            }
        }
        Ok(Kernels { nngp, ntk, n1, n2 })
    }
}

fn check_input(what: &str, x: &[f32], n: usize, d: usize) -> Result<()> {
    if n == 0 || d == 0 {
        return Err(Error::invalid(
            format!("{what} of the analytic kernel"),
            "at least one point of dimension >= 1",
            format!("[{n}, {d}]"),
        ));
    }
    if n.checked_mul(d) != Some(x.len()) {
        return Err(Error::Shape {
            what: format!("{what} of the analytic kernel"),
            expected: vec![n, d],
            got: vec![x.len()],
        });
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid(
            format!("{what}[{}, {}]", i / d, i % d),
            "a finite value",
            x[i],
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::cpu::erf::erf_f64;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.sample::<f32, _>(StandardNormal)).collect()
    }

    fn rel_close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-300)
    }

    #[test]
    fn depth_one_is_the_scaled_dot_product() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (n1, n2, d) = (4, 3, 7);
        let x1 = random(&mut rng, n1 * d);
        let x2 = random(&mut rng, n2 * d);
        for act in [Activation::Relu, Activation::Erf, Activation::Identity] {
            let net = InfiniteMlp::new(1, act, 1.3, 0.2).unwrap();
            let k = net.kernels(&x1, n1, &x2, n2, d).unwrap();
            assert_eq!((k.n1, k.n2), (n1, n2));
            for i in 0..n1 {
                for j in 0..n2 {
                    let dot: f64 = (0..d).map(|c| x1[i * d + c] as f64 * x2[j * d + c] as f64).sum();
                    let want = 1.3f64.powi(2) * dot / d as f64 + 0.04;
                    assert!(rel_close(k.nngp[i * n2 + j], want, 1e-12), "{act:?} nngp");
                    assert!(rel_close(k.ntk[i * n2 + j], want, 1e-12), "{act:?} ntk");
                }
            }
        }
    }

    #[test]
    fn relu_on_the_diagonal_halves_the_variance() {
        let x = [0.5f32, -1.0, 2.0, 0.25];
        let d = x.len();
        let (w, b) = (1.5f64, 0.3f64);
        let k1 = w * w * x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / d as f64 + b * b;
        let net = InfiniteMlp::new(2, Activation::Relu, w, b).unwrap();
        let k = net.kernels(&x, 1, &x, 1, d).unwrap();
        let k2 = w * w * k1 / 2.0 + b * b;
        let kdot = w * w / 2.0;
        assert!(rel_close(k.nngp[0], k2, 1e-12), "{} vs {k2}", k.nngp[0]);
        assert!(rel_close(k.ntk[0], k2 + k1 * kdot, 1e-12));
        // The expectations themselves at c = 1.
        let (e, ed) = gaussian_expectations(Activation::Relu, 2.0, 2.0, 2.0).unwrap();
        assert!(rel_close(e, 1.0, 1e-12) && rel_close(ed, 0.5, 1e-12));
    }

    /// Monte Carlo estimates (200k correlated Gaussian pairs) of the two
    /// expectations, with their standard errors.
    fn monte_carlo(act: Activation, k11: f64, k22: f64, k12: f64, seed: u64) -> [(f64, f64); 2] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = 200_000;
        let a = k11.sqrt();
        let c = k12 / a;
        let s = (k22 - c * c).max(0.0).sqrt();
        let mut sums = [0.0f64; 4]; // sum and sum of squares of each product
        for _ in 0..n {
            let z1: f64 = rng.sample(StandardNormal);
            let z2: f64 = rng.sample(StandardNormal);
            let (u, v) = (a * z1, c * z1 + s * z2);
            let (pu, pv, du, dv) = match act {
                Activation::Relu => (u.max(0.0), v.max(0.0), (u > 0.0) as u8 as f64, (v > 0.0) as u8 as f64),
                Activation::Erf => {
                    let g = std::f64::consts::FRAC_2_SQRT_PI;
                    (erf_f64(u), erf_f64(v), g * (-u * u).exp(), g * (-v * v).exp())
                }
                _ => unreachable!(),
            };
            let (e, ed) = (pu * pv, du * dv);
            sums[0] += e;
            sums[1] += e * e;
            sums[2] += ed;
            sums[3] += ed * ed;
        }
        let nf = n as f64;
        let stat = |s: f64, s2: f64| {
            let mean = s / nf;
            (mean, ((s2 / nf - mean * mean).max(0.0) / nf).sqrt())
        };
        [stat(sums[0], sums[1]), stat(sums[2], sums[3])]
    }

    #[test]
    fn closed_forms_match_monte_carlo() {
        // (K11, K22, K12) with expectations far enough from 0 for a 1% relative check.
        let cases = [
            (1.0, 1.0, 0.5),
            (2.0, 0.5, 0.3),
            (0.7, 1.5, 0.6),
            (1.2, 0.9, 0.95),
            (3.0, 2.0, 1.0),
        ];
        for act in [Activation::Relu, Activation::Erf] {
            for (s, &(k11, k22, k12)) in cases.iter().enumerate() {
                let (e, ed) = gaussian_expectations(act, k11, k22, k12).unwrap();
                let [(me, se), (med, sed)] = monte_carlo(act, k11, k22, k12, 100 + s as u64);
                let tag = format!("{act:?} K = ({k11}, {k22}, {k12})");
                assert!(rel_close(e, me, 0.01), "{tag}: E[phi phi] closed {e} vs MC {me} ± {se}");
                assert!(
                    rel_close(ed, med, 0.01),
                    "{tag}: E[phi' phi'] closed {ed} vs MC {med} ± {sed}"
                );
            }
        }
    }

    #[test]
    fn closed_forms_match_monte_carlo_for_any_correlation() {
        // Including negative and zero correlations, where a relative check is
        // meaningless: within 4 standard errors.
        let cases = [
            (1.0, 1.0, -0.5),
            (0.7, 1.5, -0.9),
            (3.0, 2.0, 0.0),
            (1.0, 4.0, -1.99),
            (0.5, 0.5, 0.5),
        ];
        for act in [Activation::Relu, Activation::Erf] {
            for (s, &(k11, k22, k12)) in cases.iter().enumerate() {
                let (e, ed) = gaussian_expectations(act, k11, k22, k12).unwrap();
                let [(me, se), (med, sed)] = monte_carlo(act, k11, k22, k12, 200 + s as u64);
                let tag = format!("{act:?} K = ({k11}, {k22}, {k12})");
                assert!(
                    (e - me).abs() <= 4.0 * se + 1e-12,
                    "{tag}: E[phi phi] closed {e} vs MC {me} ± {se}"
                );
                assert!(
                    (ed - med).abs() <= 4.0 * sed + 1e-12,
                    "{tag}: E[phi' phi'] closed {ed} vs MC {med} ± {sed}"
                );
            }
        }
    }

    fn min_max_eigen(k: &[f64], n: usize) -> (f64, f64) {
        let m = DMatrix::from_row_slice(n, n, k);
        let ev = m.symmetric_eigen().eigenvalues;
        (ev.min(), ev.max())
    }

    #[test]
    fn kernels_are_symmetric_and_psd() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (n, d) = (24, 6);
        let mut x = random(&mut rng, n * d);
        // A duplicated point and a zero point make the Gram matrix singular.
        let (first, rest) = x.split_at_mut(d);
        rest[..d].copy_from_slice(first);
        x[2 * d..3 * d].iter_mut().for_each(|v| *v = 0.0);
        for act in [Activation::Relu, Activation::Erf, Activation::Identity] {
            for (depth, b) in [(1, 0.0), (3, 0.1), (5, 0.0)] {
                let net = InfiniteMlp::new(depth, act, 1.4, b).unwrap();
                let k = net.kernels(&x, n, &x, n, d).unwrap();
                for (name, m) in [("nngp", &k.nngp), ("ntk", &k.ntk)] {
                    let tag = format!("{act:?} depth {depth} {name}");
                    assert!(m.iter().all(|v| v.is_finite()), "{tag}");
                    for i in 0..n {
                        for j in 0..n {
                            assert!(rel_close(m[i * n + j], m[j * n + i], 1e-12), "{tag} ({i}, {j})");
                        }
                    }
                    let (lo, hi) = min_max_eigen(m, n);
                    assert!(hi > 0.0, "{tag}");
                    assert!(lo >= -1e-9 * hi, "{tag}: eigenvalues in [{lo}, {hi}]");
                }
            }
        }
    }

    #[test]
    fn cross_kernel_matches_the_joint_kernel() {
        // kernels(x1, x2) is the off-diagonal block of kernels([x1; x2], [x1; x2]).
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (n1, n2, d) = (5, 4, 3);
        let x1 = random(&mut rng, n1 * d);
        let x2 = random(&mut rng, n2 * d);
        let joint: Vec<f32> = x1.iter().chain(&x2).copied().collect();
        let n = n1 + n2;
        let net = InfiniteMlp::new(4, Activation::Erf, 1.2, 0.5).unwrap();
        let k = net.kernels(&x1, n1, &x2, n2, d).unwrap();
        let kj = net.kernels(&joint, n, &joint, n, d).unwrap();
        for i in 0..n1 {
            for j in 0..n2 {
                assert!(rel_close(k.ntk[i * n2 + j], kj.ntk[i * n + n1 + j], 1e-12));
                assert!(rel_close(k.nngp[i * n2 + j], kj.nngp[i * n + n1 + j], 1e-12));
            }
        }
    }

    #[test]
    fn deep_linear_network_closed_form() {
        // Identity: K^l = w² K^{l-1} + b², Kdot = w², so with b = 0,
        // K^L = w^{2L} x·x'/d and Θ^L = L w^{2L} x·x'/d.
        let x1 = [1.0f32, 2.0, -1.0];
        let x2 = [0.5f32, -0.5, 3.0];
        let dot = (0.5 - 1.0 - 3.0) / 3.0;
        let (w, l) = (1.1f64, 4);
        let k = InfiniteMlp::new(l, Activation::Identity, w, 0.0)
            .unwrap()
            .kernels(&x1, 1, &x2, 1, 3)
            .unwrap();
        let wl = w.powi(2 * l as i32);
        assert!(rel_close(k.nngp[0], wl * dot, 1e-12));
        assert!(rel_close(k.ntk[0], l as f64 * wl * dot, 1e-12));
    }

    /// The analytic NTK matches the empirical NTK of wide finite networks from
    /// `models::Mlp` (NTK parameterization), averaged over initializations;
    /// this pins down the conventions (W_std, b_std, depth). With one hidden
    /// layer the average over initializations is exactly the analytic NTK at
    /// any width; with two it is off by O(1/width).
    #[test]
    fn matches_wide_finite_networks() {
        use crate::models::Parameterization;
        matches_wide_finite(Parameterization::Ntk);
    }

    /// The same for standard parameterization against `kernels_standard`
    /// (whose NTK grows with the widths, as the empirical one does).
    #[test]
    fn standard_parameterization_matches_wide_finite_networks() {
        use crate::models::Parameterization;
        matches_wide_finite(Parameterization::Standard);
    }

    fn matches_wide_finite(param: crate::models::Parameterization) {
        use crate::models::{Mlp, MlpWorkspace, Parameterization};
        let (d, n) = (5, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let x = random(&mut rng, n * d);
        let (w, b) = (1.5f32, 0.2f32);
        for (hidden, seeds, tol) in [(vec![4096], 16, 0.02), (vec![1024, 1024], 16, 0.04)] {
            for act in [Activation::Relu, Activation::Erf] {
                let depth = hidden.len() + 1;
                let mlp = Mlp::new(d, hidden.clone(), 1, act, param, w, b).unwrap();
                let mut emp = vec![0.0f64; n * n];
                for seed in 0..seeds {
                    let p = mlp.init(&mut crate::rng::indexed(5, "init", seed));
                    let mut ws = MlpWorkspace::default();
                    // Per-point parameter gradients of the scalar output.
                    let mut grads = Vec::new();
                    for i in 0..n {
                        let xi = &x[i * d..(i + 1) * d];
                        mlp.forward_fast(&p, xi, 1, &mut ws).unwrap();
                        let mut g = p.zeros_like();
                        mlp.backward_fast(&p, xi, &[1.0], &mut ws, &mut g).unwrap();
                        let flat: Vec<f32> = g.iter().flat_map(|(_, a)| a.data.iter().copied()).collect();
                        grads.push(flat);
                    }
                    for i in 0..n {
                        for j in 0..n {
                            let dot: f64 = grads[i].iter().zip(&grads[j]).map(|(&a, &b)| a as f64 * b as f64).sum();
                            emp[i * n + j] += dot / seeds as f64;
                        }
                    }
                }
                let net = InfiniteMlp::new(depth, act, w as f64, b as f64).unwrap();
                let k = match param {
                    Parameterization::Ntk => net.kernels(&x, n, &x, n, d).unwrap(),
                    Parameterization::Standard => net.kernels_standard(&hidden, &x, n, &x, n, d).unwrap(),
                };
                for i in 0..n {
                    for j in 0..n {
                        let (e, ana) = (emp[i * n + j], k.ntk[i * n + j]);
                        let scale = (k.ntk[i * n + i] * k.ntk[j * n + j]).sqrt();
                        let err = (e - ana).abs() / scale;
                        eprintln!("{param:?} {act:?} depth {depth} ({i}, {j}): empirical {e:.5} analytic {ana:.5} rel {err:.4}");
                        assert!(
                            err <= tol,
                            "{act:?} depth {depth} ({i}, {j}): empirical {e} vs analytic {ana}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(InfiniteMlp::new(0, Activation::Relu, 1.0, 0.0).is_err());
        assert!(InfiniteMlp::new(2, Activation::Relu, -1.0, 0.0).is_err());
        assert!(InfiniteMlp::new(2, Activation::Relu, 1.0, f64::NAN).is_err());
        assert!(InfiniteMlp::new(2, Activation::Relu, f64::INFINITY, 0.0).is_err());
        let e = InfiniteMlp::new(2, Activation::Tanh, 1.0, 0.0).unwrap_err();
        assert!(e.to_string().contains("closed-form"), "{e}");
        assert!(gaussian_expectations(Activation::Tanh, 1.0, 1.0, 0.0).is_err());
        assert!(gaussian_expectations(Activation::Relu, -1.0, 1.0, 0.0).is_err());

        let net = InfiniteMlp::new(2, Activation::Relu, 1.0, 0.0).unwrap();
        let x = [1.0f32; 6];
        assert!(net.kernels(&x, 2, &x, 2, 3).is_ok());
        assert!(net.kernels(&x, 2, &x, 3, 3).is_err()); // x2 too short
        assert!(net.kernels(&x[..4], 2, &x[..4], 2, 2).is_ok());
        assert!(net.kernels(&x, 3, &x, 2, 3).is_err());
        assert!(net.kernels(&[], 0, &x, 2, 3).is_err());
        assert!(net.kernels(&x, 2, &x, 2, 0).is_err());
        assert!(net.kernels(&[1.0, f32::NAN], 1, &x[..2], 1, 2).is_err());
        let bad = InfiniteMlp { depth: 0, ..net };
        assert!(bad.kernels(&x, 2, &x, 2, 3).is_err());
        let bad = InfiniteMlp {
            activation: Activation::Tanh,
            ..net
        };
        assert!(bad.kernels(&x, 2, &x, 2, 3).is_err());
        // Standard parameterization needs one width per hidden layer.
        assert!(net.kernels_standard(&[8], &x, 2, &x, 2, 3).is_ok());
        assert!(net.kernels_standard(&[], &x, 2, &x, 2, 3).is_err());
        assert!(net.kernels_standard(&[8, 8], &x, 2, &x, 2, 3).is_err());
        assert!(net.kernels_standard(&[0], &x, 2, &x, 2, 3).is_err());
    }
}
