//! Adam (Kingma & Ba 2015, Algorithm 1) with coupled L2 weight decay, as in
//! PyTorch's `torch.optim.Adam`: `g ← g + λ w`; `m ← β1 m + (1−β1) g`;
//! `v ← β2 v + (1−β2) g²`; `w ← w − η m̂ / (sqrt(v̂) + ε)`. AdamW
//! (Loshchilov & Hutter 2019, Algorithm 2; `torch.optim.AdamW`) decouples
//! the decay instead: `w ← w (1 − η λ)` before the same update with the raw
//! gradient.

use std::collections::BTreeMap;

use candle_core::{backprop::GradStore, Tensor, Var};
use serde::{Deserialize, Serialize};

use super::{any_subnormal, fixed_mantissas, flush_subnormal, scale_subnormal, subnormal, BLOCK};
use crate::params::{Array, ParamSet};
use crate::{Error, Result};

fn b1() -> f64 {
    0.9
}
fn b2() -> f64 {
    0.999
}
fn eps() -> f64 {
    1e-8
}

/// Adam hyperparameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamConfig {
    pub lr: f64,
    #[serde(default = "b1")]
    pub beta1: f64,
    #[serde(default = "b2")]
    pub beta2: f64,
    #[serde(default = "eps")]
    pub eps: f64,
    #[serde(default)]
    pub weight_decay: f64,
}

/// The Adam optimizer; moments and step counts are keyed by parameter name.
#[derive(Debug)]
pub struct Adam {
    pub config: AdamConfig,
    /// AdamW: decoupled weight decay.
    pub decoupled: bool,
    moments: BTreeMap<String, Moments>,
    vars: Vec<Var>,
    lr: f64,
}

/// One parameter's moments and step count, and where its first moments held
/// subnormals at the last check.
#[derive(Debug, Default)]
struct Moments {
    m: Vec<f32>,
    v: Vec<f32>,
    t: u64,
    /// One bit per block of [`BLOCK`] values: a subnormal first moment was
    /// there when last checked (checked every [`RECHECK_STEPS`] steps, and
    /// when empty). Where the update runs depends on it, its result not.
    stuck: Vec<u64>,
}

/// Steps between checks of the first moments for subnormals: a check of
/// every block costs the update about a fifth where it finds none; between
/// checks a block turned subnormal runs the plain loop.
const RECHECK_STEPS: u64 = 16;

impl Adam {
    /// A fresh optimizer.
    pub fn new(config: AdamConfig) -> Self {
        let lr = config.lr;
        Adam {
            config,
            decoupled: false,
            moments: BTreeMap::new(),
            vars: Vec::new(),
            lr,
        }
    }

    /// AdamW: the same moments, weight decay decoupled from the gradient.
    pub fn decoupled(config: AdamConfig) -> Self {
        Adam {
            decoupled: true,
            ..Adam::new(config)
        }
    }

    /// Updates one named parameter slice in place with learning rate `lr`.
    pub fn update(&mut self, name: &str, w: &mut [f32], g: &[f32], lr: f32) {
        let c = &self.config;
        let (b1, b2, eps, wd) = (c.beta1 as f32, c.beta2 as f32, c.eps as f32, c.weight_decay as f32);
        let mo = self.moments.entry(name.to_string()).or_insert_with(|| Moments {
            m: vec![0.0; w.len()],
            v: vec![0.0; w.len()],
            ..Moments::default()
        });
        mo.t += 1;
        let t = mo.t;
        let bc1 = 1.0 - (c.beta1).powi(t as i32);
        let bc2 = 1.0 - (c.beta2).powi(t as i32);
        let step = (lr as f64 / bc1) as f32;
        let inv_sqrt_bc2 = (1.0 / bc2.sqrt()) as f32;
        let decoupled = self.decoupled;
        let decay = 1.0 - lr * wd;
        let decay = decoupled.then_some(decay);
        let words = w.len().div_ceil(BLOCK * 64);
        let recheck = mo.stuck.len() != words || t % RECHECK_STEPS == 1;
        mo.stuck.resize(words, 0);
        let coef = (b1, b2, eps, wd, step, inv_sqrt_bc2);
        super::par_zip4(w, g, &mut mo.m, &mut mo.v, &mut mo.stuck, |w, g, m, v, stuck| {
            adam_chunk(w, g, m, v, stuck, recheck, coef, decay)
        });
    }

    /// Moments and step counts as a parameter set (`adam_m.*`, `adam_v.*`, `adam_t.*`).
    /// The same update on device tensors (the trainer's device-resident
    /// path), in the same f32 operations and order as [`Adam::update`]:
    /// `t` is the step count after this step (1 for the first), `m`, `v`
    /// the moments (zero when missing). Returns the new `(w, m, v)`.
    #[allow(clippy::too_many_arguments)]
    pub fn update_tensor(
        config: &AdamConfig,
        decoupled: bool,
        w: &Tensor,
        g: &Tensor,
        m: Option<&Tensor>,
        v: Option<&Tensor>,
        t: u64,
        lr: f32,
    ) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let c = config;
        let (b1, b2, eps, wd) = (c.beta1 as f32, c.beta2 as f32, c.eps as f32, c.weight_decay as f32);
        let bc1 = 1.0 - (c.beta1).powi(t as i32);
        let bc2 = 1.0 - (c.beta2).powi(t as i32);
        let step = (lr as f64 / bc1) as f32;
        let inv_sqrt_bc2 = (1.0 / bc2.sqrt()) as f32;
        let (w, gd) = if decoupled {
            (w.affine((1.0 - lr * wd) as f64, 0.0)?, g.clone())
        } else if wd != 0.0 {
            (w.clone(), (g + w.affine(wd as f64, 0.0)?)?)
        } else {
            (w.clone(), g.clone())
        };
        let gm = gd.affine((1.0 - b1) as f64, 0.0)?;
        let m = match m {
            Some(m) => (m.affine(b1 as f64, 0.0)? + gm)?,
            None => gm,
        };
        let gv = (gd.affine((1.0 - b2) as f64, 0.0)? * &gd)?;
        let v = match v {
            Some(v) => (v.affine(b2 as f64, 0.0)? + gv)?,
            None => gv,
        };
        let denom = v.sqrt()?.affine(inv_sqrt_bc2 as f64, eps as f64)?;
        let w = (w - (m.affine(step as f64, 0.0)? / denom)?)?;
        Ok((w, m, v))
    }

    pub fn state(&self) -> ParamSet {
        let mut s = ParamSet::new();
        for (k, Moments { m, v, t, .. }) in &self.moments {
            s.insert(
                format!("adam_m.{k}"),
                Array {
                    shape: vec![m.len()],
                    data: m.clone(),
                },
            );
            s.insert(
                format!("adam_v.{k}"),
                Array {
                    shape: vec![v.len()],
                    data: v.clone(),
                },
            );
            // The step count is stored exactly as two 24-bit halves.
            let (hi, lo) = ((*t >> 24) as f32, (*t & 0xff_ffff) as f32);
            s.insert(
                format!("adam_t.{k}"),
                Array {
                    shape: vec![2],
                    data: vec![hi, lo],
                },
            );
        }
        s
    }

    /// Restores a state saved by [`Adam::state`].
    pub fn load_state(&mut self, s: &ParamSet) -> Result<()> {
        self.moments.clear();
        for (k, a) in s.iter() {
            if let Some(name) = k.strip_prefix("adam_m.") {
                let v = s.get(&format!("adam_v.{name}"))?;
                let t = s.get(&format!("adam_t.{name}"))?;
                if t.data.len() != 2 {
                    return Err(Error::Param {
                        what: format!("Adam step count for `{name}` has {} entries, expected 2", t.data.len()),
                    });
                }
                let steps = ((t.data[0] as u64) << 24) | (t.data[1] as u64);
                let moments = Moments {
                    m: a.data.clone(),
                    v: v.data.clone(),
                    t: steps,
                    stuck: Vec::new(),
                };
                self.moments.insert(name.to_string(), moments);
            } else if !(k.starts_with("adam_v.") || k.starts_with("adam_t.")) {
                return Err(Error::Param {
                    what: format!("Adam state entry `{k}` (expected adam_m./adam_v./adam_t.)"),
                });
            }
        }
        Ok(())
    }
}

impl candle_nn::Optimizer for Adam {
    type Config = AdamConfig;

    fn new(vars: Vec<Var>, config: AdamConfig) -> candle_core::Result<Self> {
        let mut s = Adam::new(config);
        s.vars = vars.into_iter().filter(|v| v.dtype().is_float()).collect();
        Ok(s)
    }

    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        let lr = self.lr as f32;
        let vars = self.vars.clone();
        super::step_vars(&vars, grads, |name, w, g| self.update(name, w, g, lr))
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }
}

crate::simd::wide_fn! {
    /// Adam's update of one chunk; `coef = (beta1, beta2, eps, weight decay,
    /// step, 1/sqrt(bias correction 2))`, `decay`: AdamW's `1 - lr wd`
    /// (decoupled; then `wd` is not added to the gradient). At the CPU's
    /// widest vector width ([`crate::simd`]; bit-identical to the portable
    /// loop [`adam_loop`]: `sqrt` and division are correctly rounded at
    /// every width), with the stuck subnormal moments of [`adam_blocked`]
    /// computed without the CPU's slow path.
    #[allow(clippy::too_many_arguments)]
    fn adam_chunk(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], stuck: &mut [u64], recheck: bool, coef: (f32, f32, f32, f32, f32, f32), decay: Option<f32>) {
        // A chunk the last check found clean runs the plain loop alone: in
        // the block loop it took 1.1-1.3x as long (its constants spilled).
        if !recheck && !stuck.is_empty() && stuck.iter().all(|&s| s == 0) {
            match decay {
                Some(decay) => adam_loop::<true>(w, g, m, v, coef, decay),
                None => adam_loop::<false>(w, g, m, v, coef, 1.0),
            }
        } else {
            match decay {
                Some(decay) => adam_blocked::<true>(w, g, m, v, stuck, recheck, coef, decay),
                None => adam_blocked::<false>(w, g, m, v, stuck, recheck, coef, 1.0),
            }
        }
    }
}

/// Adam's update of [`adam_loop`], block by block, giving its bits. A
/// weight whose gradient stays exactly zero (a ReLU unit dead on every
/// batch) has its first moment decay by `beta1` per step into the
/// subnormal range, where it sticks (`0.9 m` rounds back to `m` for the
/// smallest subnormals), and after many more steps its second moment by
/// `beta2`. Intel CPUs multiply, divide and take square roots of subnormals
/// in microcode. LeNet-300-100 after 1,700 Adam steps on Fashion-MNIST
/// holds 1.6% of its first moments stuck; on a 2-core Xeon (family 6, model
/// 167), 2 threads, the plain update of its 266,610 values took 341-376 µs
/// in that state and 97-109 µs with none stuck, this path 163-203 µs and
/// 91-104 µs (5 runs each, interleaved). Checking every block at every step
/// cost the update without subnormals about a fifth: the blocks found
/// holding subnormal first moments are kept in a map ([`Moments::stuck`]),
/// checked every [`RECHECK_STEPS`] steps.
///
/// A block whose first moments hold a subnormal computes the plain update
/// with the subnormal moments read as zeros, and their new values from
/// their bits ([`scale_subnormal`]), or keeps them where each is one its
/// decay leaves as it is ([`fixed_mantissas`]: mantissa up to 4 at `beta1`
/// 0.9, 500 at `beta2` 0.999). That gives the plain update's bits when, for
/// each subnormal moment, the gradient is zero and adds nothing (no coupled
/// weight decay), the weight is finite, the second moment not negative or
/// NaN, and:
/// - for a subnormal first moment, `|w| ≥ (|step| + 2⁻²⁴)/eps · 2⁻⁹⁹`
///   (twice that with AdamW's decay, itself at least 1/2): the update
///   `step · m / (sqrt(v̂) + eps)` is then under a quarter of the weight's
///   last place and leaves it as it is, as a zero `m` does;
/// - for a subnormal second moment, `eps ≥ 2⁻³⁷ / sqrt(bias correction 2)`:
///   `sqrt(v̂) < 2⁻⁶³ / sqrt(bias correction 2)` is then under half of
///   `eps`'s last place, so the denominator is `eps`, as with a zero `v`.
///
/// Other blocks (and every block when `beta1` or `beta2` is outside
/// `[+0, 1]`, -0 included, or `eps` is not positive) take the plain loop, as do blocks
/// whose only subnormals are second moments (with `beta2 > beta1` they
/// stick long after the first moments beside them). `DECOUPLED`: AdamW.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn adam_blocked<const DECOUPLED: bool>(
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    stuck: &mut [u64],
    recheck: bool,
    coef: (f32, f32, f32, f32, f32, f32),
    decay: f32,
) {
    let (b1, b2, eps, wd, step, inv_sqrt_bc2) = coef;
    let n = w.len().min(g.len()).min(m.len()).min(v.len());
    let (w, g, m, v) = (&mut w[..n], &g[..n], &mut m[..n], &mut v[..n]);
    // The pattern's scalar conditions (NaN fails them).
    let scale = match DECOUPLED {
        true if (0.5..=1.0).contains(&decay) => 2.0,
        false if wd == 0.0 => 1.0,
        _ => f64::NAN,
    };
    let min_w = (step.abs() as f64 + 2f64.powi(-24)) / eps as f64 * 2f64.powi(-99) * scale;
    // The betas in [+0, 1] by their bits: -0 (which `contains` lets in)
    // would turn `beta1 · m` into a zero of the other sign.
    let unit = |b: f32| b.to_bits() <= 1f32.to_bits();
    let exact = unit(b1)
        && unit(b2)
        && eps > 0.0
        && (0.0..f32::MAX as f64).contains(&min_w)
        && (0.0..=f32::MAX).contains(&inv_sqrt_bc2)
        && eps as f64 >= inv_sqrt_bc2 as f64 * 2f64.powi(-37);
    let min_w = (min_w as f32).max(f32::MIN_POSITIVE);
    let (b1_64, b2_64) = (b1 as f64, b2 as f64);
    let (fixed_m, fixed_v) = (fixed_mantissas(b1), fixed_mantissas(b2));
    let mut wc = w.chunks_mut(BLOCK);
    let mut gc = g.chunks(BLOCK);
    let mut mc = m.chunks_mut(BLOCK);
    let mut vc = v.chunks_mut(BLOCK);
    let mut block = 0;
    while let (Some(w), Some(g), Some(m), Some(v)) = (wc.next(), gc.next(), mc.next(), vc.next()) {
        let (word, bit) = (block / 64, 1u64 << (block % 64));
        block += 1;
        // Whether the block holds subnormal first moments: checked, or as
        // the last check found (checked where the map has no entry).
        let dirty = exact
            && match stuck.get_mut(word) {
                Some(s) if recheck => {
                    let dirty = any_subnormal(m);
                    *s = if dirty { *s | bit } else { *s & !bit };
                    dirty
                }
                Some(s) => *s & bit != 0,
                None => any_subnormal(m),
            };
        if !dirty {
            adam_loop::<DECOUPLED>(w, g, m, v, coef, decay);
            continue;
        }
        // Whether every subnormal moment fits the pattern, and whether each
        // is one that its decay leaves as it is.
        let (fits, fixed) =
            w.iter()
                .zip(g)
                .zip(m.iter().zip(v.iter()))
                .fold((true, true), |(all, fixed), ((&wi, &gi), (&mi, &vi))| {
                    let (ms, vs) = (subnormal(mi), subnormal(vi));
                    let wa = wi.abs();
                    let ok = (gi == 0.0) & (vi >= 0.0) & (wa <= f32::MAX) & (!ms | (wa >= min_w));
                    let stays =
                        (!ms | (mi.to_bits() & 0x7f_ffff <= fixed_m)) & (!vs | (vi.to_bits() & 0x7f_ffff <= fixed_v));
                    (all & (!(ms | vs) | ok), fixed & stays)
                });
        match (fits, fixed) {
            (false, _) => adam_loop::<DECOUPLED>(w, g, m, v, coef, decay),
            (true, true) => adam_flushed::<DECOUPLED, true>(w, g, m, v, coef, decay, (b1_64, b2_64)),
            (true, false) => adam_flushed::<DECOUPLED, false>(w, g, m, v, coef, decay, (b1_64, b2_64)),
        }
    }
}

/// [`adam_loop`] with the subnormal moments read as zeros, and their new
/// values computed from their bits ([`scale_subnormal`] by `beta = (beta1,
/// beta2)` in f64), or (`FIXED`: every subnormal moment is one its decay
/// leaves as it is) kept.
#[inline(always)]
fn adam_flushed<const DECOUPLED: bool, const FIXED: bool>(
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    coef: (f32, f32, f32, f32, f32, f32),
    decay: f32,
    beta: (f64, f64),
) {
    let (b1, b2, eps, wd, step, inv_sqrt_bc2) = coef;
    for (((wi, &gi), mi), vi) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let (ms, vs) = (subnormal(*mi), subnormal(*vi));
        let (mh, vh) = (flush_subnormal(*mi), flush_subnormal(*vi));
        let gd = decayed::<DECOUPLED>(wi, gi, wd, decay);
        let mn = b1 * mh + (1.0 - b1) * gd;
        let vn = b2 * vh + (1.0 - b2) * gd * gd;
        *wi -= step * mn / (vn.sqrt() * inv_sqrt_bc2 + eps);
        let (mt, vt) = if FIXED {
            (*mi, *vi)
        } else {
            (
                scale_subnormal(*mi, beta.0, (1.0 - b1) * gd),
                scale_subnormal(*vi, beta.1, (1.0 - b2) * gd * gd),
            )
        };
        *mi = if ms { mt } else { mn };
        *vi = if vs { vt } else { vn };
    }
}

/// The plain Adam update, AdamW's (`DECOUPLED`) or Adam's, in the order
/// every width reproduces.
#[inline(always)]
fn adam_loop<const DECOUPLED: bool>(
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    coef: (f32, f32, f32, f32, f32, f32),
    decay: f32,
) {
    let (b1, b2, eps, wd, step, inv_sqrt_bc2) = coef;
    for (((wi, &gi), mi), vi) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let gd = decayed::<DECOUPLED>(wi, gi, wd, decay);
        *mi = b1 * *mi + (1.0 - b1) * gd;
        *vi = b2 * *vi + (1.0 - b2) * gd * gd;
        *wi -= step * *mi / (vi.sqrt() * inv_sqrt_bc2 + eps);
    }
}

/// The gradient the moments see: `g + wd w` (Adam), or `g` after the weight's
/// decay `w ← decay · w` (AdamW, `DECOUPLED`).
#[inline(always)]
fn decayed<const DECOUPLED: bool>(w: &mut f32, g: f32, wd: f32, decay: f32) -> f32 {
    if DECOUPLED {
        *w *= decay;
        g
    } else {
        g + wd * *w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `steps` dispatched updates from `w0`, `m0`, `v0` give the bits of as
    /// many plain-loop updates, at every vector width the CPU has.
    #[allow(clippy::too_many_arguments)]
    fn assert_updates_match(
        w0: &[f32],
        g: &[f32],
        m0: &[f32],
        v0: &[f32],
        coef: (f32, f32, f32, f32, f32, f32),
        decay: Option<f32>,
        steps: usize,
        at: &str,
    ) {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let (mut w2, mut m2, mut v2) = (w0.to_vec(), m0.to_vec(), v0.to_vec());
        for _ in 0..steps {
            match decay {
                Some(d) => adam_loop::<true>(&mut w2, g, &mut m2, &mut v2, coef, d),
                None => adam_loop::<false>(&mut w2, g, &mut m2, &mut v2, coef, 1.0),
            }
        }
        // The map of stuck blocks changes where the update runs, not its
        // result: checked at every step, stale (all set, all clear, mixed)
        // and missing.
        let words = w0.len().div_ceil(BLOCK * 64);
        let maps = [
            (vec![0; words], true),
            (vec![u64::MAX; words], false),
            (vec![0; words], false),
            (vec![0x9e37_79b9_7f4a_7c15; words], false),
            (Vec::new(), false),
        ];
        for (map, recheck) in maps {
            crate::simd::at_each_width(|level| {
                let (mut w1, mut m1, mut v1, mut map) = (w0.to_vec(), m0.to_vec(), v0.to_vec(), map.clone());
                for _ in 0..steps {
                    adam_chunk(&mut w1, g, &mut m1, &mut v1, &mut map, recheck, coef, decay);
                }
                let at = format!(
                    "{at}, decay {decay:?}, {steps} steps, map {map:x?} (recheck {recheck}), width level {level}"
                );
                assert_eq!(bits(&w1), bits(&w2), "weights, {at}");
                assert_eq!(bits(&m1), bits(&m2), "first moment, {at}");
                assert_eq!(bits(&v1), bits(&v2), "second moment, {at}");
            });
        }
    }

    /// Moments stuck in the subnormal range (zero gradient) give the plain
    /// loop's bits at every width: blocks all stuck, mixed with normal
    /// moments, beside a tiny, zero or infinite weight, a nonzero gradient,
    /// a negative or NaN second moment (the plain path), subnormal second
    /// moments with normal or subnormal first moments, mantissas around
    /// those the decay leaves as they are, coupled and decoupled decay, and
    /// coefficients in and out of the pattern's conditions.
    #[test]
    fn subnormal_moments_give_the_plain_loop_bits() {
        let mut next = crate::simd::test_values(0x68e3_1da4, 1.0);
        let len = BLOCK * 16 + 9;
        let mut w0: Vec<f32> = (0..len).map(|_| next()).collect();
        let mut g: Vec<f32> = (0..len).map(|_| next() * 0.01).collect();
        let mut m0: Vec<f32> = (0..len).map(|_| next() * 0.01).collect();
        let mut v0: Vec<f32> = (0..len).map(|_| next().abs() * 1e-4).collect();
        let mut rnd = crate::simd::test_bits(0x2468_ace1);
        // Mantissas around the fixed ones of beta 0.9 (4) and 0.999 (500),
        // the smallest and the largest.
        let edges = [1, 2, 4, 5, 6, 499, 500, 501, 502, 0x7f_ffff, 0x7f_fffe];
        let sub = |k: u32, sign: u32| f32::from_bits(k | sign);
        for i in 0..len {
            let block = i / BLOCK;
            // Block 0 stays normal; 1-2 have every first moment subnormal;
            // 3-4 a third of them; 5-10 every fifth, beside (5) a tiny weight,
            // (6) a zero weight, (7) a nonzero gradient, (8) an infinite
            // weight, (9) a negative second moment, (10) a NaN one; 11-12
            // every fifth with edge mantissas; 13 subnormal second moments
            // beside normal first moments (and one negative), in a block
            // with subnormal first moments, 14 beside subnormal ones; 15 and
            // the tail edge mantissas in both.
            let (ms, vs) = match block {
                0 => (false, false),
                1 | 2 => (true, false),
                3 | 4 => (rnd().is_multiple_of(3), false),
                5..=12 => (i % 5 == 0, false),
                13 => (i % 3 == 1, i % 3 == 0),
                14 => (i % 3 == 0, i % 3 == 0),
                _ => (i % 4 == 0, i % 4 == 0),
            };
            let edge = matches!(block, 11 | 12 | 15 | 16);
            let k = |r: u32| {
                if edge {
                    edges[i % edges.len()]
                } else {
                    1 + r % 0x7f_ffff
                }
            };
            if ms {
                m0[i] = sub(k(rnd()), rnd() & 0x8000_0000);
            }
            if vs {
                v0[i] = sub(k(rnd()), 0);
            }
            if ms || vs {
                g[i] = if rnd().is_multiple_of(2) { 0.0 } else { -0.0 };
            }
        }
        let stuck_in = |blk: usize| (blk * BLOCK..).find(|i| i % 5 == 0).expect("an index");
        w0[stuck_in(5)] = 1e-35;
        w0[stuck_in(6)] = 0.0;
        g[stuck_in(7)] = 1e-3;
        w0[stuck_in(8)] = f32::INFINITY;
        v0[stuck_in(9)] = -1e-6;
        v0[stuck_in(10)] = f32::NAN;
        let neg = (13 * BLOCK..).find(|i| i % 3 == 0).expect("an index");
        v0[neg] = -v0[neg];
        // (beta1, beta2, eps, weight decay, step, 1/sqrt(bias correction 2)).
        let coefs = [
            ((0.9, 0.999, 1e-8, 0.0, 1e-3, 1.0), None),
            ((0.9, 0.999, 1e-8, 0.0, 1e-2, 31.6), None),
            ((0.9, 0.98, 1e-8, 0.0, 1e-3, 1.2), Some(0.999)),
            ((0.5, 0.5, 1e-6, 0.0, 0.1, 1.0), None),
            ((1.0, 1.0, 1e-8, 0.0, 1e-3, 1.0), None),
            ((0.0, 0.0, 1e-8, 0.0, 1e-3, 1.0), None),
            ((-0.0, -0.0, 1e-8, 0.0, 1e-3, 1.0), None),
            ((0.9, 0.999, 1e-8, 5e-4, 1e-3, 1.0), None),
            ((0.9, 0.999, 1e-8, 5e-4, 1e-3, 1.0), Some(0.3)),
            ((0.9, 0.999, 1e-12, 0.0, 1e-3, 1.0), None),
            ((0.9, 0.999, 0.0, 0.0, 1e-3, 1.0), None),
            ((0.9, 0.999, 1e-8, 0.0, 1e30, 1.0), None),
            ((1.5, 0.999, 1e-8, 0.0, 1e-3, 1.0), None),
        ];
        for (coef, decay) in coefs {
            // One step, then 30: the moments decay and stick.
            for steps in [1, 30] {
                assert_updates_match(&w0, &g, &m0, &v0, coef, decay, steps, &format!("coef {coef:?}"));
            }
        }
        // The stuck moments are there to test.
        assert!(m0.iter().filter(|v| v.is_subnormal()).count() > len / 5);
        assert!(v0.iter().filter(|v| v.is_subnormal()).count() > BLOCK / 2);
    }

    /// Through `Adam::update`: more values than one chunk (several words of
    /// the map per chunk, chunks on rayon's threads), stuck moments loaded
    /// from a state, and steps on both sides of a recheck give the plain
    /// loop's bits.
    #[test]
    fn update_with_its_map_gives_the_plain_loop_bits() {
        let len = 3 * super::super::CHUNK + 1000;
        let mut next = crate::simd::test_values(0x5bd1_e995, 1.0);
        let w0: Vec<f32> = (0..len).map(|_| next()).collect();
        let mut g: Vec<f32> = (0..len).map(|_| next() * 0.01).collect();
        let mut m0: Vec<f32> = (0..len).map(|_| next() * 0.01).collect();
        let v0: Vec<f32> = (0..len).map(|_| next().abs() * 1e-4).collect();
        for i in (0..len).filter(|i| i % 97 == 0 || (40_000..41_000).contains(i)) {
            m0[i] = f32::from_bits((1 + i as u32 % 9) | if i % 2 == 0 { 0 } else { 0x8000_0000 });
            g[i] = 0.0;
        }
        let config = AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        };
        let mut opt = Adam::new(config.clone());
        let mut state = ParamSet::new();
        state.insert("adam_m.p", Array::new(vec![len], m0.clone()).expect("m"));
        state.insert("adam_v.p", Array::new(vec![len], v0.clone()).expect("v"));
        state.insert("adam_t.p", Array::new(vec![2], vec![0.0, 10.0]).expect("t"));
        opt.load_state(&state).expect("state");
        let (mut w1, mut w2, mut m2, mut v2) = (w0.clone(), w0, m0, v0);
        for t in 11..=30u64 {
            opt.update("p", &mut w1, &g, 1e-3);
            let bc1 = 1.0 - 0.9f64.powi(t as i32);
            let bc2 = 1.0 - 0.999f64.powi(t as i32);
            let coef = (
                0.9,
                0.999,
                1e-8,
                0.0,
                (1e-3f32 as f64 / bc1) as f32,
                (1.0 / bc2.sqrt()) as f32,
            );
            adam_loop::<false>(&mut w2, &g, &mut m2, &mut v2, coef, 1.0);
            let s = opt.state();
            let first_diff = |a: &[f32], b: &[f32]| a.iter().zip(b).position(|(x, y)| x.to_bits() != y.to_bits());
            assert_eq!(first_diff(&w1, &w2), None, "weights at step {t}");
            assert_eq!(
                first_diff(&s.get("adam_m.p").expect("m").data, &m2),
                None,
                "first moment at step {t}"
            );
            assert_eq!(
                first_diff(&s.get("adam_v.p").expect("v").data, &v2),
                None,
                "second moment at step {t}"
            );
        }
    }

    /// `fixed_mantissas(c)` is the end of the prefix of mantissas `k` that
    /// `c · k` rounds back to, checked against the rounding of every `k` up
    /// to just past it.
    #[test]
    fn fixed_mantissas_end_the_prefix_that_stays() {
        for c in [
            0.0f32,
            0.3,
            0.5,
            0.75,
            0.9,
            0.95,
            0.98,
            0.99,
            0.999,
            0.9999,
            1.0,
            -0.5,
            1.5,
            f32::NAN,
        ] {
            let k0 = super::super::fixed_mantissas(c);
            let stays = |k: u32| (c as f64 * k as f64).round_ties_even() == k as f64;
            if !(0.0..=1.0).contains(&c) {
                assert_eq!(k0, 0, "c {c}");
                continue;
            }
            assert!((1..=k0.min(1 << 20)).all(stays), "c {c}: some k <= {k0} moves");
            assert!(k0 == 0x7f_ffff || !stays(k0 + 1), "c {c}: {} stays too", k0 + 1);
        }
        assert_eq!(super::super::fixed_mantissas(0.9), 4);
        assert_eq!(super::super::fixed_mantissas(0.999), 500);
    }

    /// Adam's chunk update gives the baseline loop's bits at every vector
    /// width the CPU has, coupled and decoupled, on lengths that are not
    /// multiples of a vector.
    #[test]
    fn adam_chunk_gives_the_same_bits_at_every_width() {
        let mut next = crate::simd::test_values(0x1b87_3593, 1.0);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for len in [1, 15, 16, 17, 1000] {
            let w0: Vec<f32> = (0..len).map(|_| next()).collect();
            let g: Vec<f32> = (0..len).map(|_| next()).collect();
            let m0: Vec<f32> = (0..len).map(|_| next() * 0.1).collect();
            let v0: Vec<f32> = (0..len).map(|_| next().abs() * 0.01).collect();
            for decay in [None, Some(0.999)] {
                let coef = (0.9, 0.999, 1e-8, 5e-4, 1e-3, 1.3);
                let mut want = None;
                crate::simd::at_each_width(|level| {
                    let (mut w, mut m, mut v) = (w0.clone(), m0.clone(), v0.clone());
                    adam_chunk(&mut w, &g, &mut m, &mut v, &mut [], false, coef, decay);
                    let got = (bits(&w), bits(&m), bits(&v));
                    match &want {
                        None => want = Some(got),
                        Some(want) => assert!(want == &got, "len {len}, decay {decay:?}, width level {level}"),
                    }
                });
            }
        }
    }
}
