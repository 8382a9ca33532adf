//! Synthetic teacher-student data.
//!
//! Inputs are i.i.d. standard normal vectors `x ~ N(0, I_dim)`; outputs come
//! from a fixed random one-hidden-layer teacher network without biases,
//! `f(x) = W2 tanh(W1 x)`, with `W1: [hidden, dim] ~ N(0, 1/dim)` and
//! `W2: [out_dim, hidden] ~ N(0, 1/hidden)` (variance `1/fan_in`).
//!
//! Random streams (all derived from `seed`): `"teacher-weights"` for the
//! teacher, `"teacher-train-x"` and `"teacher-test-x"` for the inputs. So the
//! test set does not depend on `n_train`, a larger training set extends a
//! smaller one with the same seed, and the regression and classification
//! variants share the same teacher and inputs (the classification labels equal
//! the regression labels for equal arguments).

use super::{Dataset, Split};
use crate::{Error, Result};
use rand::Rng as _;
use rand_distr::StandardNormal;

/// Regression data from a random tanh teacher.
///
/// Train/test `x` are `[n, dim]`, `targets` are the teacher outputs
/// `[n, out_dim]` (`target_dim = out_dim`), `labels` are the argmax of the
/// targets, `num_classes = out_dim`, shape `[1, 1, dim]`, name
/// `"teacher-regression"`. All sizes must be positive.
pub fn teacher_regression(
    n_train: usize,
    n_test: usize,
    dim: usize,
    out_dim: usize,
    hidden: usize,
    seed: u64,
) -> Result<Split> {
    check_sizes(n_train, n_test, dim, out_dim, hidden, 1)?;
    Ok(generate(
        n_train,
        n_test,
        dim,
        out_dim,
        hidden,
        seed,
        "teacher-regression",
        true,
    ))
}

/// Classification data from a random tanh teacher: as
/// [`teacher_regression`] (same teacher and inputs for the same arguments),
/// but `targets` is `None` (one-hot of the labels, `target_dim = out_dim`)
/// and the name is `"teacher-classification"`. All sizes must be positive
/// and `out_dim >= 2`.
pub fn teacher_classification(
    n_train: usize,
    n_test: usize,
    dim: usize,
    out_dim: usize,
    hidden: usize,
    seed: u64,
) -> Result<Split> {
    check_sizes(n_train, n_test, dim, out_dim, hidden, 2)?;
    Ok(generate(
        n_train,
        n_test,
        dim,
        out_dim,
        hidden,
        seed,
        "teacher-classification",
        false,
    ))
}

fn check_sizes(n_train: usize, n_test: usize, dim: usize, out_dim: usize, hidden: usize, min_out: usize) -> Result<()> {
    for (what, v, min) in [
        ("teacher n_train", n_train, 1),
        ("teacher n_test", n_test, 1),
        ("teacher input dim", dim, 1),
        ("teacher out_dim", out_dim, min_out),
        ("teacher hidden width", hidden, 1),
    ] {
        if v < min {
            return Err(Error::invalid(what, format!("at least {min}"), v));
        }
    }
    // Guard against sizes whose buffers cannot even be addressed.
    let fits = n_train
        .checked_add(n_test)
        .and_then(|n| n.checked_mul(dim.max(out_dim)))
        .is_some()
        && hidden.checked_mul(dim.max(out_dim)).is_some();
    if !fits {
        return Err(Error::invalid(
            "teacher data size",
            "sizes whose products fit in memory",
            format!("n_train={n_train}, n_test={n_test}, dim={dim}, out_dim={out_dim}, hidden={hidden}"),
        ));
    }
    Ok(())
}

struct Teacher {
    dim: usize,
    hidden: usize,
    out_dim: usize,
    w1: Vec<f64>, // [hidden, dim]
    w2: Vec<f64>, // [out_dim, hidden]
}

impl Teacher {
    fn new(dim: usize, hidden: usize, out_dim: usize, seed: u64) -> Self {
        let mut rng = crate::rng::stream(seed, "teacher-weights");
        let s1 = (1.0 / dim as f64).sqrt();
        let s2 = (1.0 / hidden as f64).sqrt();
        let w1 = (0..hidden * dim)
            .map(|_| s1 * rng.sample::<f64, _>(StandardNormal))
            .collect();
        let w2 = (0..out_dim * hidden)
            .map(|_| s2 * rng.sample::<f64, _>(StandardNormal))
            .collect();
        Teacher {
            dim,
            hidden,
            out_dim,
            w1,
            w2,
        }
    }

    /// `out` (`[out_dim]`) = `W2 tanh(W1 x)`.
    fn forward(&self, x: &[f32], h: &mut [f64], out: &mut [f64]) {
        for (j, hj) in h.iter_mut().enumerate() {
            let row = &self.w1[j * self.dim..(j + 1) * self.dim];
            let z: f64 = row.iter().zip(x).map(|(w, &v)| w * v as f64).sum();
            *hj = z.tanh();
        }
        for (k, ok) in out.iter_mut().enumerate() {
            let row = &self.w2[k * self.hidden..(k + 1) * self.hidden];
            *ok = row.iter().zip(h.iter()).map(|(w, v)| w * v).sum();
        }
    }

    fn dataset(&self, n: usize, seed: u64, stream: &str, name: &str, regression: bool) -> Dataset {
        let mut rng = crate::rng::stream(seed, stream);
        let x: Vec<f32> = (0..n * self.dim)
            .map(|_| rng.sample::<f32, _>(StandardNormal))
            .collect();
        let mut h = vec![0.0; self.hidden];
        let mut out = vec![0.0; self.out_dim];
        let mut labels = Vec::with_capacity(n);
        let mut targets = Vec::with_capacity(if regression { n * self.out_dim } else { 0 });
        for i in 0..n {
            self.forward(&x[i * self.dim..(i + 1) * self.dim], &mut h, &mut out);
            labels.push(argmax(&out) as u32);
            if regression {
                targets.extend(out.iter().map(|&v| v as f32));
            }
        }
        Dataset {
            name: name.to_string(),
            x,
            labels,
            targets: regression.then_some(targets),
            target_dim: self.out_dim,
            shape: [1, 1, self.dim],
            num_classes: self.out_dim,
        }
    }
}

/// Index of the largest value (the first one on ties).
fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

#[allow(clippy::too_many_arguments)]
fn generate(
    n_train: usize,
    n_test: usize,
    dim: usize,
    out_dim: usize,
    hidden: usize,
    seed: u64,
    name: &str,
    regression: bool,
) -> Split {
    let teacher = Teacher::new(dim, hidden, out_dim, seed);
    Split {
        train: teacher.dataset(n_train, seed, "teacher-train-x", name, regression),
        test: teacher.dataset(n_test, seed, "teacher-test-x", name, regression),
        validation: None,
    }
}
