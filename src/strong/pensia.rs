//! Pensia et al. 2020's construction (Sec. 3, Thm. 1): a random ReLU network
//! of twice the depth, pruned (never trained) so that it approximates a
//! target network, each target weight realized by a subset sum of random
//! path weights.
//!
//! Target layer `W` (`[d_out, d_in]`, no bias) becomes two random layers:
//! `U` (`[n·d_in, d_in]`) and `V` (`[d_out, n·d_in]`), entries Uniform[−1, 1],
//! except that the entry linking hidden unit `(j, i)` to input `j` has
//! |u| ~ Uniform[0, 1] with a positive sign for the first ⌈n/2⌉ paths of each
//! input and a negative one for the rest. Pruning keeps in `U` only the entry linking hidden unit
//! `(j, i)` (row `j·n + i`) to input `j`, so that unit computes
//! `relu(u_ji x_j)`. With `relu(ux) = ux` for `ux > 0`, output `k` is
//! `Σ_j Σ_i m_kji v_kji relu(u_ji x_j)`, i.e. `x_j · Σ_{i: u_ji > 0} m v u` for
//! `x_j > 0` and `x_j · Σ_{i: u_ji < 0} m v u` for `x_j < 0` (the identity
//! `x = relu(x) − relu(−x)` of the paper). Both sums must approximate `w_kj`:
//! two subset-sum problems per target weight, each over the ⌈n/2⌉ candidates
//! `v_kji u_ji` with positive (resp. negative) `u_ji`. The random network has ReLU after every
//! layer but the last, so the target's ReLUs are reproduced.

use std::time::Instant;

use candle_core::Device;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::subset_sum;
use crate::models::{Activation, Mlp, Parameterization};
use crate::params::{Array, Mask, ParamSet};
use crate::{Error, Result};

/// The pruned random network and how well it matches the target.
#[derive(Clone, Debug)]
pub struct Construction {
    /// Architecture of the random network (depth 2l).
    pub mlp: Mlp,
    /// All random weights (biases are zero).
    pub random: ParamSet,
    /// The pruning mask over the random weights.
    pub mask: Mask,
    pub stats: ConstructionStats,
}

/// Sizes and errors of a construction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConstructionStats {
    /// Random paths per target weight (hidden units per input unit).
    pub paths: usize,
    pub target_weights: usize,
    pub random_weights: usize,
    pub kept_weights: usize,
    /// Largest and mean |realized − target| over all target weights and both input signs.
    pub max_weight_error: f64,
    pub mean_weight_error: f64,
    pub subset_sum_problems: usize,
    pub solve_seconds: f64,
    pub total_seconds: f64,
}

impl ConstructionStats {
    /// Random weights per target weight.
    pub fn overparameterization(&self) -> f64 {
        self.random_weights as f64 / self.target_weights.max(1) as f64
    }
}

impl Construction {
    /// The pruned network's parameters: `random ⊙ mask` (no weight changed).
    pub fn pruned(&self) -> Result<ParamSet> {
        let mut p = self.random.clone();
        self.mask.apply(&mut p)?;
        Ok(p)
    }
}

/// Builds and prunes the random network for `target` (a bias-free ReLU MLP in
/// standard parameterization; its biases must be exactly zero) with `paths`
/// random paths per weight, solving the subset sums on `device` (see [`solve_all`]).
pub fn construct(target: &Mlp, params: &ParamSet, paths: usize, seed: u64, device: &Device) -> Result<Construction> {
    let start = Instant::now();
    target.check_params(params)?;
    if target.activation != Activation::Relu || target.parameterization != Parameterization::Standard {
        return Err(Error::invalid(
            "target network",
            "a ReLU MLP in standard parameterization",
            target_desc(target),
        ));
    }
    if !(1..=64).contains(&paths) {
        return Err(Error::invalid("paths per weight", "1..=64", paths));
    }
    for l in 0..target.depth() {
        let b = params.get(target.layer_names(l).1)?;
        if b.data.iter().any(|&v| v != 0.0) {
            return Err(Error::invalid(
                format!("target bias `{}`", target.layer_names(l).1),
                "all zeros (the construction has no biases: train the target with its biases masked)",
                "nonzero entries",
            ));
        }
    }
    let layers = target.layers();
    let mut hidden = Vec::new();
    for (l, d) in layers.iter().enumerate() {
        hidden.push(paths * d.fan_in);
        if l + 1 < layers.len() {
            hidden.push(d.fan_out);
        }
    }
    let mlp = Mlp::new(
        target.input_dim,
        hidden,
        target.output_dim,
        Activation::Relu,
        Parameterization::Standard,
        1.0,
        0.0,
    )?;
    let mut rng = crate::rng::stream(seed, "pensia-random-network");
    let mut random = ParamSet::new();
    let mut mask = ParamSet::new();
    for (name, shape) in mlp.param_shapes() {
        let n: usize = shape.iter().product();
        let data = if name.ends_with(".weight") {
            (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
        } else {
            vec![0.0; n]
        };
        if name.ends_with(".weight") {
            mask.insert(name.clone(), Array::zeros(&shape));
        }
        random.insert(name, Array { shape, data });
    }
    // Sign split of the kept first-layer entries: paths 0..half of each input
    // get positive, the others negative weights (|u| stays Uniform[0, 1]), so
    // each of the two subset-sum problems of a weight has half the paths as
    // candidates (Pensia et al.'s relu(x) - relu(-x) = x construction).
    let half = paths.div_ceil(2);
    for (l, d) in layers.iter().enumerate() {
        let u = random.get_mut(mlp.layer_names(2 * l).0)?;
        for j in 0..d.fan_in {
            for i in 0..paths {
                let e = &mut u.data[(j * paths + i) * d.fan_in + j];
                *e = if i < half { e.abs() } else { -e.abs() };
            }
        }
    }

    let (mut max_err, mut sum_err, mut count, mut problems, mut solve_seconds) =
        (0.0f64, 0.0f64, 0usize, 0usize, 0.0f64);
    for (l, d) in layers.iter().enumerate() {
        let w = &params.get(target.layer_names(l).0)?.data;
        let (uname, vname) = (
            mlp.layer_names(2 * l).0.to_string(),
            mlp.layer_names(2 * l + 1).0.to_string(),
        );
        let u = random.get(&uname)?.data.clone();
        let v = random.get(&vname)?.data.clone();
        let (d_in, d_out, width) = (d.fan_in, d.fan_out, paths * d.fan_in);
        let u_of = |j: usize, i: usize| u[(j * paths + i) * d_in + j];
        // Problems in order (k, j, sign): candidates v_kji u_ji over the `half`
        // paths of that sign (the negative group is zero-padded when `paths` is odd).
        let np = d_out * d_in * 2;
        let mut cand = vec![0.0f32; np * half];
        let mut targets = vec![0.0f32; np];
        for k in 0..d_out {
            for j in 0..d_in {
                for s in 0..2 {
                    let p = (k * d_in + j) * 2 + s;
                    targets[p] = w[k * d_in + j];
                    for t in 0..half {
                        let i = s * half + t;
                        if i < paths {
                            cand[p * half + t] = v[k * width + j * paths + i] * u_of(j, i);
                        }
                    }
                }
            }
        }
        let t0 = Instant::now();
        let sol = solve_all(&cand, &targets, half, device)?;
        solve_seconds += t0.elapsed().as_secs_f64();
        problems += np;
        let mut used = vec![false; width];
        let vm = &mut mask.get_mut(&vname)?.data;
        for k in 0..d_out {
            for j in 0..d_in {
                for s in 0..2 {
                    let p = (k * d_in + j) * 2 + s;
                    let mut realized = 0.0f64;
                    for t in 0..half {
                        let (i, c) = (s * half + t, cand[p * half + t]);
                        if i < paths && c != 0.0 && (sol[p].subset >> t) & 1 == 1 {
                            vm[k * width + j * paths + i] = 1.0;
                            used[j * paths + i] = true;
                            realized += c as f64;
                        }
                    }
                    let e = (realized - targets[p] as f64).abs();
                    max_err = max_err.max(e);
                    sum_err += e;
                    count += 1;
                }
            }
        }
        let um = &mut mask.get_mut(&uname)?.data;
        for j in 0..d_in {
            for i in 0..paths {
                if used[j * paths + i] {
                    um[(j * paths + i) * d_in + j] = 1.0;
                }
            }
        }
    }
    let mask = Mask(mask);
    let stats = ConstructionStats {
        paths,
        target_weights: layers.iter().map(|d| d.fan_in * d.fan_out).sum(),
        random_weights: mask.0.numel(),
        kept_weights: mask.kept().values().sum(),
        max_weight_error: max_err,
        mean_weight_error: sum_err / count.max(1) as f64,
        subset_sum_problems: problems,
        solve_seconds,
        total_seconds: start.elapsed().as_secs_f64(),
    };
    Ok(Construction {
        mlp,
        random,
        mask,
        stats,
    })
}

/// All subset-sum problems: on the CPU the exact meet-in-the-middle solver on
/// rayon's threads (measured 3.5-4x faster per problem than the tensor solver
/// there); on other devices the batched tensor solver.
fn solve_all(cand: &[f32], targets: &[f32], n: usize, device: &Device) -> Result<Vec<subset_sum::Solution>> {
    use rayon::prelude::*;
    if !device.is_cpu() {
        return subset_sum::batched(cand, targets, n, device);
    }
    targets
        .par_iter()
        .enumerate()
        .map(|(p, &z)| {
            let c: Vec<f64> = cand[p * n..(p + 1) * n].iter().map(|&v| v as f64).collect();
            subset_sum::exact(&c, z as f64)
        })
        .collect()
}

fn target_desc(m: &Mlp) -> String {
    format!(
        "{} activation, {:?} parameterization",
        m.activation.name(),
        m.parameterization
    )
}

/// Rescales each layer of a bias-free ReLU MLP so that its largest |weight| is
/// `max_abs` (Pensia et al. assume |w| <= 1). By positive homogeneity
/// (`relu(c z) = c relu(z)` for c > 0) the rescaled network computes
/// `S · f(x)` with `S = Π_l max_abs / max_l |W_l|`, so its predictions
/// (argmax) are the target's. Returns the rescaled parameters and `S`.
pub fn rescale_layers(target: &Mlp, params: &ParamSet, max_abs: f64) -> Result<(ParamSet, f64)> {
    if !(max_abs > 0.0 && max_abs.is_finite()) {
        return Err(Error::invalid("rescaled largest weight", "a finite value > 0", max_abs));
    }
    let mut p = params.clone();
    let mut scale = 1.0f64;
    for l in 0..target.depth() {
        let w = p.get_mut(target.layer_names(l).0)?;
        let m = w.data.iter().fold(0.0f32, |a, v| a.max(v.abs())) as f64;
        if m > 0.0 {
            let c = max_abs / m;
            w.data.iter_mut().for_each(|v| *v = (*v as f64 * c) as f32);
            scale *= c;
        }
    }
    Ok((p, scale))
}

/// A mask that keeps all weights and no bias of `mlp` (train a bias-free target with it).
pub fn bias_free_mask(mlp: &Mlp, params: &ParamSet) -> Result<Mask> {
    let mut m = ParamSet::new();
    for l in 0..mlp.depth() {
        let b = mlp.layer_names(l).1;
        m.insert(b, Array::zeros(&params.get(b)?.shape));
    }
    Ok(Mask(m))
}
