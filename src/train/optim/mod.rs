//! Optimizers. Each is one file and one variant of [`OptimizerConfig`] /
//! [`Optimizer`]; each also implements candle's `Optimizer` trait for use with
//! `Var`s. The trainer drives them through named parameter sets.

pub mod adam;
pub mod sgd;

use serde::{Deserialize, Serialize};

pub use adam::{Adam, AdamConfig};
pub use sgd::{Sgd, SgdConfig};

use std::collections::BTreeMap;

use crate::params::{Array, Mask, ParamSet};
use crate::{Error, Result};

/// Elementwise updates of large tensors are split into chunks of this many
/// entries and run on rayon's threads (each entry is updated independently,
/// so the result does not depend on the split).
const CHUNK: usize = 32 * 1024;

/// Values per block of the optimizers' subnormal-aware updates
/// ([`sgd`]'s momentum step, [`adam`]'s update): one check for subnormal
/// state per block (blocks of 64 cost the plain step more).
const BLOCK: usize = 256;
/// 2^52: a non-negative f64 below it plus this is rounded to an integer.
const TWO_52: f64 = 4_503_599_627_370_496.0;

/// Whether `x` is subnormal (nonzero, exponent field zero), tested on its bits.
#[inline(always)]
fn subnormal(x: f32) -> bool {
    (x.to_bits() & 0x7fff_ffff).wrapping_sub(1) < 0x007f_ffff
}

/// Whether any of `x` is subnormal: the smallest of `|bits| − 1`
/// (wrapping) is then below the smallest normal's bits minus one (one
/// vector minimum per value, no mask operations).
#[inline(always)]
fn any_subnormal(x: &[f32]) -> bool {
    x.iter()
        .fold(u32::MAX, |lo, &v| lo.min((v.to_bits() & 0x7fff_ffff).wrapping_sub(1)))
        < 0x007f_ffff
}

/// `x` with a subnormal value replaced by a zero of its sign, so that no
/// vector lane takes the CPU's slow path. The test is on the exponent field
/// alone (zeros pass it unchanged), not [`subnormal`]: where a caller then
/// selects another value for exactly the subnormal lanes, the compiler would
/// otherwise see that the lanes cleared are those the select drops, and
/// multiply the subnormals after all.
#[inline(always)]
fn flush_subnormal(x: f32) -> f32 {
    let bits = x.to_bits();
    f32::from_bits(bits & if bits & 0x7f80_0000 == 0 { 0x8000_0000 } else { u32::MAX })
}

/// `c · x + add` in f32 for a subnormal (or zero) `x`, `0 ≤ c ≤ 1` and a zero
/// `add`, computed from the bits without the CPU's slow path: `x` is
/// `k · 2⁻¹⁴⁹` for its mantissa `k`, and `c · k` is exact in f64 (`c` is an
/// f32, `k < 2²³`), so the integer it rounds to, ties to even, is the
/// result's bit pattern (`2²³` being the smallest normal). Adding 2⁵²
/// rounds it into the low bits of the sum (a float to integer cast would
/// not vectorize). Rounded to zero, the result is a zero of `x`'s sign plus
/// `add`, as in the plain update.
#[inline(always)]
fn scale_subnormal(x: f32, c: f64, add: f32) -> f32 {
    let bits = x.to_bits();
    let k = (c * (bits & 0x007f_ffff) as i32 as f64 + TWO_52).to_bits() as u32;
    let sign = bits & 0x8000_0000;
    if k == 0 {
        f32::from_bits(sign) + add
    } else {
        f32::from_bits(sign | k)
    }
}

/// The largest mantissa `K` below 2²³ such that [`scale_subnormal`] by `c`
/// leaves every subnormal of mantissa `1..=K` as it is (`c · k` rounds to
/// `k`; 0 when `c` is outside `[0, 1]`): the stuck values, which a cheaper
/// loop keeps without recomputing. Those `k` are a prefix (`k − c·k` grows
/// with `k`), bounded near `0.5 / (1 − c)`.
fn fixed_mantissas(c: f32) -> u32 {
    if !(0.0..=1.0).contains(&c) {
        return 0;
    }
    let c = c as f64;
    let fixed = |k: u32| k == 0 || (c * k as f64 + TWO_52) - TWO_52 == k as f64;
    let max = 0x7f_ffff;
    let mut k = (0.5 / (1.0 - c)).min(max as f64) as u32;
    while !fixed(k) {
        k -= 1;
    }
    while k < max && fixed(k + 1) {
        k += 1;
    }
    k
}

fn par_zip2(a: &mut [f32], b: &[f32], f: impl Fn(&mut [f32], &[f32]) + Sync) {
    use rayon::prelude::*;
    if a.len() <= CHUNK {
        return f(a, b);
    }
    a.par_chunks_mut(CHUNK)
        .zip(b.par_chunks(CHUNK))
        .for_each(|(a, b)| f(a, b));
}

fn par_zip3(a: &mut [f32], b: &[f32], c: &mut [f32], f: impl Fn(&mut [f32], &[f32], &mut [f32]) + Sync) {
    use rayon::prelude::*;
    if a.len() <= CHUNK {
        return f(a, b, c);
    }
    a.par_chunks_mut(CHUNK)
        .zip(b.par_chunks(CHUNK))
        .zip(c.par_chunks_mut(CHUNK))
        .for_each(|((a, b), c)| f(a, b, c));
}

/// Four slices and a bitmap `e` with one bit per [`BLOCK`] values, in
/// chunks of [`CHUNK`] values (and their bits) run on rayon's threads.
fn par_zip4(
    a: &mut [f32],
    b: &[f32],
    c: &mut [f32],
    d: &mut [f32],
    e: &mut [u64],
    f: impl Fn(&mut [f32], &[f32], &mut [f32], &mut [f32], &mut [u64]) + Sync,
) {
    use rayon::prelude::*;
    const WORDS: usize = CHUNK / BLOCK / 64;
    const _: () = assert!(CHUNK.is_multiple_of(BLOCK * 64), "a chunk's bits are whole words");
    if a.len() <= CHUNK {
        return f(a, b, c, d, e);
    }
    a.par_chunks_mut(CHUNK)
        .zip(b.par_chunks(CHUNK))
        .zip(c.par_chunks_mut(CHUNK))
        .zip(d.par_chunks_mut(CHUNK))
        .zip(e.par_chunks_mut(WORDS))
        .for_each(|((((a, b), c), d), e)| f(a, b, c, d, e));
}

/// candle's `Optimizer::step` for our optimizers: applies `update(name, w, g)`
/// (names `var0`, `var1`, ... in the order the `Var`s were given) to every
/// variable that has a gradient, through host copies.
fn step_vars(
    vars: &[candle_core::Var],
    grads: &candle_core::backprop::GradStore,
    mut update: impl FnMut(&str, &mut [f32], &[f32]),
) -> candle_core::Result<()> {
    use candle_core::DType;
    for (i, var) in vars.iter().enumerate() {
        if let Some(g) = grads.get(var) {
            let mut w = var.as_tensor().flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
            let g = g.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
            update(&format!("var{i}"), &mut w, &g);
            let t = candle_core::Tensor::from_vec(w, var.shape().clone(), var.device())?.to_dtype(var.dtype())?;
            var.set(&t)?;
        }
    }
    Ok(())
}

/// An optimizer as written in `[train.optimizer]` (`kind = "sgd"`, `"adam"` or `"adamw"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerConfig {
    Sgd(SgdConfig),
    Adam(AdamConfig),
    /// Adam with decoupled weight decay (Loshchilov & Hutter 2019).
    Adamw(AdamConfig),
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Sgd(SgdConfig {
            lr: 0.1,
            momentum: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        })
    }
}

impl OptimizerConfig {
    /// The base learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerConfig::Sgd(c) => c.lr,
            OptimizerConfig::Adam(c) | OptimizerConfig::Adamw(c) => c.lr,
        }
    }

    /// A copy with another base learning rate.
    pub fn with_lr(&self, lr: f64) -> Self {
        let mut c = self.clone();
        match &mut c {
            OptimizerConfig::Sgd(s) => s.lr = lr,
            OptimizerConfig::Adam(a) | OptimizerConfig::Adamw(a) => a.lr = lr,
        }
        c
    }

    /// Errors on a non-positive rate or out-of-range coefficients.
    pub fn validate(&self) -> Result<()> {
        let lr = self.lr();
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::config("train.optimizer.lr", "a finite value > 0", lr));
        }
        let in01 = |field: &str, v: f64| -> Result<()> {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::config(field, "a value in [0, 1)", v))
            }
        };
        match self {
            OptimizerConfig::Sgd(c) => {
                in01("train.optimizer.momentum", c.momentum)?;
                if !(c.weight_decay >= 0.0 && c.weight_decay.is_finite()) {
                    return Err(Error::config(
                        "train.optimizer.weight_decay",
                        "a finite value >= 0",
                        c.weight_decay,
                    ));
                }
                if c.nesterov && c.momentum == 0.0 {
                    return Err(Error::config(
                        "train.optimizer.nesterov",
                        "momentum > 0 with nesterov = true",
                        c.momentum,
                    ));
                }
            }
            OptimizerConfig::Adam(c) | OptimizerConfig::Adamw(c) => {
                in01("train.optimizer.beta1", c.beta1)?;
                in01("train.optimizer.beta2", c.beta2)?;
                if !(c.eps > 0.0) {
                    return Err(Error::config("train.optimizer.eps", "a value > 0", c.eps));
                }
                if !(c.weight_decay >= 0.0 && c.weight_decay.is_finite()) {
                    return Err(Error::config(
                        "train.optimizer.weight_decay",
                        "a finite value >= 0",
                        c.weight_decay,
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A live optimizer.
#[derive(Debug)]
pub enum Optimizer {
    Sgd(Sgd),
    Adam(Adam),
}

impl Optimizer {
    /// A fresh optimizer from its config.
    pub fn new(config: &OptimizerConfig) -> Self {
        match config {
            OptimizerConfig::Sgd(c) => Optimizer::Sgd(Sgd::new(c.clone())),
            OptimizerConfig::Adam(c) => Optimizer::Adam(Adam::new(c.clone())),
            OptimizerConfig::Adamw(c) => Optimizer::Adam(Adam::decoupled(c.clone())),
        }
    }

    /// One update of every parameter with gradient `grads` and learning rate `lr`.
    /// With a mask, gradients of pruned weights are zeroed first and pruned
    /// weights are set to exactly zero after the update.
    pub fn step(&mut self, params: &mut ParamSet, grads: &mut ParamSet, lr: f32, mask: Option<&Mask>) -> Result<()> {
        self.step_with_fill(params, grads, lr, mask, None)
    }

    /// As [`Optimizer::step`], but pruned weights are set to the matching
    /// entries of `fill` (when given) instead of zero: Zhou et al. 2019's
    /// variant where pruned weights stay frozen at their initial values.
    pub fn step_with_fill(
        &mut self,
        params: &mut ParamSet,
        grads: &mut ParamSet,
        lr: f32,
        mask: Option<&Mask>,
        fill: Option<&ParamSet>,
    ) -> Result<()> {
        if let Some(m) = mask {
            for (k, mk) in m.0.iter() {
                let g = grads.get_mut(k)?;
                for (gi, &b) in g.data.iter_mut().zip(&mk.data) {
                    if b == 0.0 {
                        *gi = 0.0;
                    }
                }
            }
        }
        for (k, w) in params.0.iter_mut() {
            let g = grads.0.get(k).ok_or_else(|| Error::Param {
                what: format!("no gradient for `{k}`"),
            })?;
            match self {
                Optimizer::Sgd(o) => o.update(k, &mut w.data, &g.data, lr),
                Optimizer::Adam(o) => o.update(k, &mut w.data, &g.data, lr),
            }
        }
        match (mask, fill) {
            (Some(m), Some(f)) => m.apply_fill(params, f)?,
            (Some(m), None) => m.apply(params)?,
            _ => {}
        }
        Ok(())
    }

    /// The optimizer's state (for checkpoints and resuming).
    pub fn state(&self) -> ParamSet {
        match self {
            Optimizer::Sgd(o) => o.state(),
            Optimizer::Adam(o) => o.state(),
        }
    }

    /// Restores a state from [`Optimizer::state`].
    pub fn load_state(&mut self, s: &ParamSet) -> Result<()> {
        match self {
            Optimizer::Sgd(o) => o.load_state(s),
            Optimizer::Adam(o) => o.load_state(s),
        }
    }
}

/// Which entries of a parameter train on a device: a `u8` mask (1 = kept)
/// and the values the others hold (zero, or frozen initial values).
#[derive(Clone, Debug)]
pub struct DeviceMask {
    pub keep: candle_core::Tensor,
    pub fill: candle_core::Tensor,
}

/// An optimizer whose state lives on a device as tensors, for the trainer's
/// device-resident path. Its updates are [`Sgd::update_tensor`] and
/// [`Adam::update_tensor`] (the host updates in the same f32 operations);
/// its state converts to and from the host [`Optimizer::state`] layout, so a
/// run saved on one path resumes on the other.
#[derive(Debug)]
pub struct TensorOptimizer {
    config: OptimizerConfig,
    /// Per parameter: SGD's momentum buffer, or Adam's `(m, v)`.
    first: BTreeMap<String, candle_core::Tensor>,
    second: BTreeMap<String, candle_core::Tensor>,
    /// Adam's step count per parameter.
    steps: BTreeMap<String, u64>,
}

impl TensorOptimizer {
    /// A fresh optimizer from its config.
    pub fn new(config: &OptimizerConfig) -> Self {
        TensorOptimizer {
            config: config.clone(),
            first: BTreeMap::new(),
            second: BTreeMap::new(),
            steps: BTreeMap::new(),
        }
    }

    /// One update of every variable with its gradient in `grads` (zero when
    /// it has none) at rate `lr`. A masked parameter's pruned entries get a
    /// zero gradient before the update and their fill values after it, as
    /// in [`Optimizer::step_with_fill`].
    pub fn step(
        &mut self,
        vars: &BTreeMap<String, candle_core::Var>,
        grads: &candle_core::backprop::GradStore,
        lr: f32,
        masks: &BTreeMap<String, DeviceMask>,
    ) -> Result<()> {
        for (k, var) in vars {
            let w = var.as_tensor();
            let g = match grads.get(w) {
                Some(g) => g.clone(),
                None => w.zeros_like()?,
            };
            let mask = masks.get(k);
            let g = match mask {
                Some(m) => m.keep.where_cond(&g, &g.zeros_like()?)?,
                None => g,
            };
            let new = match &self.config {
                OptimizerConfig::Sgd(c) => {
                    let (w, b) = Sgd::update_tensor(c, w, &g, self.first.get(k), lr)?;
                    if let Some(b) = b {
                        self.first.insert(k.clone(), b);
                    }
                    w
                }
                OptimizerConfig::Adam(c) | OptimizerConfig::Adamw(c) => {
                    let decoupled = matches!(self.config, OptimizerConfig::Adamw(_));
                    let t = self.steps.entry(k.clone()).or_insert(0);
                    *t += 1;
                    let (w, m, v) =
                        Adam::update_tensor(c, decoupled, w, &g, self.first.get(k), self.second.get(k), *t, lr)?;
                    self.first.insert(k.clone(), m);
                    self.second.insert(k.clone(), v);
                    w
                }
            };
            let new = match mask {
                Some(m) => m.keep.where_cond(&new, &m.fill)?,
                None => new,
            };
            var.set(&new)?;
        }
        Ok(())
    }

    /// The state in the host layout of [`Optimizer::state`] (copied to the host).
    pub fn state(&self) -> Result<ParamSet> {
        let flat = |t: &candle_core::Tensor| -> Result<Array> {
            let a = Array::from_tensor(t)?;
            Ok(Array {
                shape: vec![a.data.len()],
                data: a.data,
            })
        };
        let mut s = ParamSet::new();
        match &self.config {
            OptimizerConfig::Sgd(_) => {
                for (k, b) in &self.first {
                    s.insert(format!("momentum.{k}"), flat(b)?);
                }
            }
            OptimizerConfig::Adam(_) | OptimizerConfig::Adamw(_) => {
                for (k, m) in &self.first {
                    s.insert(format!("adam_m.{k}"), flat(m)?);
                    s.insert(format!("adam_v.{k}"), flat(&self.second[k])?);
                    let t = self.steps.get(k).copied().unwrap_or(0);
                    s.insert(
                        format!("adam_t.{k}"),
                        Array {
                            shape: vec![2],
                            data: vec![(t >> 24) as f32, (t & 0xff_ffff) as f32],
                        },
                    );
                }
            }
        }
        Ok(s)
    }

    /// Restores a state in the host layout onto the device of `vars`,
    /// shaped like them. Errors on an entry that names no variable or has
    /// the wrong size.
    pub fn load_state(&mut self, s: &ParamSet, vars: &BTreeMap<String, candle_core::Var>) -> Result<()> {
        // The host optimizer checks names and counts; reuse it.
        let mut host = Optimizer::new(&self.config);
        host.load_state(s)?;
        self.first.clear();
        self.second.clear();
        self.steps.clear();
        let upload = |name: &str, a: &Array| -> Result<candle_core::Tensor> {
            let var = vars.get(name).ok_or_else(|| Error::Param {
                what: format!("optimizer state for `{name}`, which is not a parameter"),
            })?;
            if a.data.len() != var.elem_count() {
                return Err(Error::Param {
                    what: format!(
                        "optimizer state for `{name}` has {} entries, expected {}",
                        a.data.len(),
                        var.elem_count()
                    ),
                });
            }
            Ok(candle_core::Tensor::from_slice(&a.data, var.shape(), var.device())?)
        };
        for (k, a) in s.iter() {
            if let Some(name) = k.strip_prefix("momentum.") {
                self.first.insert(name.to_string(), upload(name, a)?);
            } else if let Some(name) = k.strip_prefix("adam_m.") {
                self.first.insert(name.to_string(), upload(name, a)?);
            } else if let Some(name) = k.strip_prefix("adam_v.") {
                self.second.insert(name.to_string(), upload(name, a)?);
            } else if let Some(name) = k.strip_prefix("adam_t.") {
                self.steps
                    .insert(name.to_string(), ((a.data[0] as u64) << 24) | (a.data[1] as u64));
            }
        }
        Ok(())
    }
}
