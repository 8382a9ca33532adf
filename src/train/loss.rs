//! Losses on network outputs `f` `[n, c]`.
//!
//! - Cross-entropy: `L = (1/n) Σ_i [logsumexp(f_i) - f_i[y_i]]`.
//! - MSE: `L = (1/(2n)) Σ_i ||f_i - t_i||²` (sum over outputs, mean over examples,
//!   the convention of Lee et al. 2019, Eq. 3, under which gradient flow gives
//!   `df/dt = -(η/n) Θ (f - t)`).

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::Result;

/// A training loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    #[default]
    CrossEntropy,
    Mse,
}

impl Loss {
    /// Mean loss over the `n` rows and `dL/df` (written into `grad`, `[n, c]`).
    /// `t` holds targets (`[n, c]`, one-hot for classification), `y` labels.
    pub fn value_and_grad(self, f: &[f32], t: &[f32], y: &[u32], c: usize, grad: &mut [f32]) -> f32 {
        let n = y.len();
        let inv_n = 1.0 / n as f32;
        let mut total = 0.0f64;
        match self {
            Loss::CrossEntropy => {
                for i in 0..n {
                    let row = &f[i * c..(i + 1) * c];
                    let g = &mut grad[i * c..(i + 1) * c];
                    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut s = 0.0f32;
                    for (gj, &fj) in g.iter_mut().zip(row) {
                        let e = (fj - m).exp();
                        *gj = e;
                        s += e;
                    }
                    let lse = m + s.ln();
                    total += (lse - row[y[i] as usize]) as f64;
                    let inv_s = inv_n / s;
                    for gj in g.iter_mut() {
                        *gj *= inv_s;
                    }
                    g[y[i] as usize] -= inv_n;
                }
            }
            Loss::Mse => {
                for ((gj, &fj), &tj) in grad.iter_mut().zip(f).zip(t) {
                    let d = fj - tj;
                    total += 0.5 * (d as f64) * (d as f64);
                    *gj = d * inv_n;
                }
            }
        }
        (total / n as f64) as f32
    }

    /// Summed (not averaged) loss over the rows, in f64 (for evaluation over many batches).
    pub fn sum(self, f: &[f32], t: &[f32], y: &[u32], c: usize) -> f64 {
        let mut total = 0.0f64;
        match self {
            Loss::CrossEntropy => {
                for (i, row) in f.chunks_exact(c).enumerate() {
                    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let s: f32 = row.iter().map(|&v| (v - m).exp()).sum();
                    total += (m + s.ln() - row[y[i] as usize]) as f64;
                }
            }
            Loss::Mse => {
                for (&fj, &tj) in f.iter().zip(t) {
                    let d = (fj - tj) as f64;
                    total += 0.5 * d * d;
                }
            }
        }
        total
    }

    /// The mean loss as a differentiable candle scalar. `f`, `t`: `[n, c]`; `y`: `[n]` u32.
    pub fn tensor(self, f: &Tensor, t: &Tensor, y: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Loss::CrossEntropy => candle_nn::loss::cross_entropy(f, y)?,
            Loss::Mse => {
                let n = f.dim(0)? as f64;
                ((f - t)?.sqr()?.sum_all()? * (0.5 / n))?
            }
        })
    }

    /// Each network's mean loss, `[K]`, for the outputs `f` `[K, n, c]` of
    /// `K` networks on their own batches (targets `t` `[K, n, c]`, labels `y`
    /// `[K, n]`): [`Loss::tensor`] of each slice. Their sum's gradient with
    /// respect to a network's parameters is that network's own gradient.
    pub fn per_network(self, f: &Tensor, t: &Tensor, y: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Loss::CrossEntropy => {
                let ls = candle_nn::ops::log_softmax(f, candle_core::D::Minus1)?;
                let picked = ls.gather(&y.unsqueeze(2)?, 2)?.squeeze(2)?;
                picked.mean(1)?.neg()?
            }
            Loss::Mse => {
                let n = f.dim(1)? as f64;
                ((f - t)?.sqr()?.sum(2)?.sum(1)? * (0.5 / n))?
            }
        })
    }

    /// The name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            Loss::CrossEntropy => "cross_entropy",
            Loss::Mse => "mse",
        }
    }
}

/// Index of the largest entry of each row of `f` (`[n, c]`).
pub fn argmax_rows(f: &[f32], c: usize) -> impl Iterator<Item = usize> + '_ {
    f.chunks_exact(c).map(|row| {
        let mut best = 0;
        for (j, &v) in row.iter().enumerate() {
            if v > row[best] {
                best = j;
            }
        }
        best
    })
}
