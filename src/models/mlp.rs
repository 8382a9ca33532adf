//! Fully connected networks of any depth and width, in standard or NTK
//! parameterization (Jacot et al. 2018; Lee et al. 2019, Eq. 1; the W_std,
//! b_std convention of neural-tangents).
//!
//! Layer `l` (1-based) has `fc{l}.weight` of shape `[out, in]` and `fc{l}.bias`
//! of shape `[out]`; it computes `z = w_mult · h W^T + b_mult · b`, followed by
//! the activation on every layer but the last:
//! - standard: `W ~ N(0, W_std²/fan_in)`, `b ~ N(0, b_std²)`, `w_mult = b_mult = 1`;
//! - NTK: `W ~ N(0, 1)`, `b ~ N(0, 1)`, `w_mult = W_std/sqrt(fan_in)`, `b_mult = b_std`.
//!
//! Besides the candle forward (differentiable by autodiff, the reference), the
//! MLP has a hand-written forward/backward on slices ([`MlpWorkspace`]) used
//! for training, evaluation, the structured NTK and the linearization.

use std::collections::BTreeMap;

use candle_core::Tensor;
use rand_distr::{Distribution, StandardNormal};

use super::{dense, Activation, Parameterization};
use crate::params::{Array, ParamSet};
use crate::{Error, Result};

/// A multilayer perceptron.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    pub input_dim: usize,
    pub hidden: Vec<usize>,
    pub output_dim: usize,
    pub activation: Activation,
    pub parameterization: Parameterization,
    pub w_std: f32,
    pub b_std: f32,
    names: Vec<(String, String)>,
}

/// One dense layer's sizes and forward multipliers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerDims {
    pub fan_in: usize,
    pub fan_out: usize,
    pub w_mult: f32,
    pub b_mult: f32,
}

impl Mlp {
    /// Builds an MLP; errors on a zero size or a non-finite/negative std.
    pub fn new(
        input_dim: usize,
        hidden: Vec<usize>,
        output_dim: usize,
        activation: Activation,
        parameterization: Parameterization,
        w_std: f32,
        b_std: f32,
    ) -> Result<Self> {
        if input_dim == 0 || output_dim == 0 {
            return Err(Error::config(
                "model input/output size",
                "> 0",
                format!("{input_dim}/{output_dim}"),
            ));
        }
        if let Some(w) = hidden.iter().find(|&&w| w == 0) {
            return Err(Error::config("model.hidden", "widths > 0", w));
        }
        if !(w_std.is_finite() && w_std > 0.0) {
            return Err(Error::config("model.w_std", "a finite value > 0", w_std));
        }
        if !(b_std.is_finite() && b_std >= 0.0) {
            return Err(Error::config("model.b_std", "a finite value >= 0", b_std));
        }
        let layers = hidden.len() + 1;
        let names = (1..=layers)
            .map(|l| (format!("fc{l}.weight"), format!("fc{l}.bias")))
            .collect();
        Ok(Mlp {
            input_dim,
            hidden,
            output_dim,
            activation,
            parameterization,
            w_std,
            b_std,
            names,
        })
    }

    /// The same network with hidden widths `hidden` (activation, parameterization and init kept).
    pub fn with_hidden(&self, hidden: Vec<usize>) -> Result<Self> {
        Mlp::new(
            self.input_dim,
            hidden,
            self.output_dim,
            self.activation,
            self.parameterization,
            self.w_std,
            self.b_std,
        )
    }

    /// The same network with every hidden width multiplied by `factor`
    /// (rounded, at least 1); errors on a factor that is not finite and > 0.
    pub fn scaled(&self, factor: f64) -> Result<Self> {
        if !(factor.is_finite() && factor > 0.0) {
            return Err(Error::config("width factor", "a finite value > 0", factor));
        }
        self.with_hidden(
            self.hidden
                .iter()
                .map(|&h| ((h as f64 * factor).round() as usize).max(1))
                .collect(),
        )
    }

    /// LeNet-300-100 (LeCun et al. 1998; Frankle & Carbin 2019): 300 and 100
    /// ReLU units, standard parameterization with Kaiming-normal weights and zero biases.
    pub fn lenet_300_100(input_dim: usize, output_dim: usize) -> Result<Self> {
        Mlp::new(
            input_dim,
            vec![300, 100],
            output_dim,
            Activation::Relu,
            Parameterization::Standard,
            std::f32::consts::SQRT_2,
            0.0,
        )
    }

    /// Number of dense layers.
    pub fn depth(&self) -> usize {
        self.hidden.len() + 1
    }

    /// `(weight name, bias name)` of layer `l` (0-based).
    pub fn layer_names(&self, l: usize) -> (&str, &str) {
        let (w, b) = &self.names[l];
        (w, b)
    }

    /// Sizes and multipliers of every layer, input first.
    pub fn layers(&self) -> Vec<LayerDims> {
        let mut dims = vec![self.input_dim];
        dims.extend(&self.hidden);
        dims.push(self.output_dim);
        dims.windows(2)
            .map(|w| {
                let (fan_in, fan_out) = (w[0], w[1]);
                let (w_mult, b_mult) = match self.parameterization {
                    Parameterization::Standard => (1.0, 1.0),
                    Parameterization::Ntk => (self.w_std / (fan_in as f32).sqrt(), self.b_std),
                };
                LayerDims {
                    fan_in,
                    fan_out,
                    w_mult,
                    b_mult,
                }
            })
            .collect()
    }

    /// Names and shapes of all parameters.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for (l, d) in self.layers().iter().enumerate() {
            let (w, b) = self.layer_names(l);
            out.push((w.to_string(), vec![d.fan_out, d.fan_in]));
            out.push((b.to_string(), vec![d.fan_out]));
        }
        out
    }

    /// Weight matrices (what pruning acts on).
    pub fn prunable(&self) -> Vec<String> {
        (0..self.depth()).map(|l| self.layer_names(l).0.to_string()).collect()
    }

    /// Draws parameters from the init distribution (layer by layer, weights then bias).
    pub fn init(&self, rng: &mut crate::rng::Rng) -> ParamSet {
        let mut p = ParamSet::new();
        for (l, d) in self.layers().iter().enumerate() {
            let (ws, bs) = match self.parameterization {
                Parameterization::Standard => (self.w_std / (d.fan_in as f32).sqrt(), self.b_std),
                Parameterization::Ntk => (1.0, 1.0),
            };
            let mut draw = |n: usize, s: f32| -> Vec<f32> {
                (0..n)
                    .map(|_| {
                        let z: f32 = StandardNormal.sample(rng);
                        z * s
                    })
                    .collect()
            };
            let w = draw(d.fan_in * d.fan_out, ws);
            let b = if bs == 0.0 {
                vec![0.0; d.fan_out]
            } else {
                draw(d.fan_out, bs)
            };
            let (wn, bn) = self.layer_names(l);
            p.insert(
                wn,
                Array {
                    shape: vec![d.fan_out, d.fan_in],
                    data: w,
                },
            );
            p.insert(
                bn,
                Array {
                    shape: vec![d.fan_out],
                    data: b,
                },
            );
        }
        p
    }

    /// Forward pass in candle ops (differentiable). `x`: `[n, input_dim]` (or
    /// `[n, c, h, w]`, flattened); returns `[n, output_dim]`.
    pub fn forward_tensor(&self, p: &BTreeMap<String, Tensor>, x: &Tensor) -> Result<Tensor> {
        self.forward_layers(p, x.flatten_from(1)?, false)
    }

    /// The dense layers on `h` (`[n, input_dim]`, or `[K, n, input_dim]`
    /// with parameters stacked over `K` networks when `stacked`).
    fn forward_layers(&self, p: &BTreeMap<String, Tensor>, mut h: Tensor, stacked: bool) -> Result<Tensor> {
        let layers = self.layers();
        for (l, d) in layers.iter().enumerate() {
            let (wn, bn) = self.layer_names(l);
            let w = p.get(wn).ok_or_else(|| Error::Param {
                what: format!("missing `{wn}`"),
            })?;
            let b = p.get(bn).ok_or_else(|| Error::Param {
                what: format!("missing `{bn}`"),
            })?;
            let z = if stacked {
                h.broadcast_matmul(&w.transpose(1, 2)?)?
            } else {
                h.matmul(&w.t()?)?
            };
            let z = if d.w_mult != 1.0 { (z * d.w_mult as f64)? } else { z };
            let bias = if d.b_mult != 1.0 {
                (b * d.b_mult as f64)?
            } else {
                b.clone()
            };
            let bias = if stacked { bias.unsqueeze(1)? } else { bias };
            let z = z.broadcast_add(&bias)?;
            h = if l + 1 < layers.len() {
                self.activation.apply_tensor(&z)?
            } else {
                z
            };
        }
        Ok(h)
    }

    /// Forward pass of `K` networks of this architecture at once, in candle
    /// ops (differentiable): `p` holds each parameter stacked over the
    /// networks (`[K, ...shape]`), `x` is `[K, n, input_dim]` (each network's
    /// own batch) or `[1, n, input_dim]` (one batch for all). Returns
    /// `[K, n, output_dim]`; network `k`'s slice equals
    /// [`Mlp::forward_tensor`] with its own parameters (batched GEMMs).
    pub fn forward_stacked(&self, p: &BTreeMap<String, Tensor>, x: &Tensor) -> Result<Tensor> {
        self.forward_layers(p, x.flatten_from(2)?, true)
    }
}

/// Buffers for the slice forward/backward of an [`Mlp`]; reused across
/// batches so a training step allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct MlpWorkspace {
    /// Pre-activations per layer, `[n, fan_out]`.
    pub z: Vec<Vec<f32>>,
    /// Activations of hidden layers, `[n, fan_out]` (`h[l] = phi(z[l])`).
    pub h: Vec<Vec<f32>>,
    delta: Vec<f32>,
    delta_prev: Vec<f32>,
    /// Tangents `ż` of the pre-activations (forward-mode derivative), `[n, fan_out]`.
    pub zdot: Vec<Vec<f32>>,
    hdot: Vec<f32>,
    /// Transposes for the sparse first-layer kernels.
    scratch: Vec<f32>,
    /// Batch size of the last forward pass.
    pub n: usize,
}

impl MlpWorkspace {
    /// The network output `[n, output_dim]` of the last forward pass.
    pub fn output(&self) -> &[f32] {
        self.z.last().map(|v| v.as_slice()).unwrap_or(&[])
    }
}

impl Mlp {
    /// Checks that `p` has this network's names and shapes.
    pub fn check_params(&self, p: &ParamSet) -> Result<()> {
        super::check_shapes(p, self.param_shapes())
    }

    /// Errors unless `x` holds `n` inputs.
    fn check_input(&self, x: &[f32], n: usize) -> Result<()> {
        if x.len() != n * self.input_dim {
            return Err(Error::Shape {
                what: "MLP input".into(),
                expected: vec![n, self.input_dim],
                got: vec![x.len()],
            });
        }
        Ok(())
    }

    /// Slice forward pass. `x`: `[n, input_dim]`. The output is `ws.output()`.
    /// Assumes `p` passed [`Mlp::check_params`].
    pub fn forward_fast(&self, p: &ParamSet, x: &[f32], n: usize, ws: &mut MlpWorkspace) -> Result<()> {
        self.check_input(x, n)?;
        let layers = self.layers();
        ws.z.resize(layers.len(), Vec::new());
        ws.h.resize(layers.len() - 1, Vec::new());
        ws.n = n;
        // A mostly-zero input (one-hot operands) takes the sparse first layer.
        let sparse = dense::sparse_rows(x, n, self.input_dim);
        for (l, d) in layers.iter().enumerate() {
            let (wn, bn) = self.layer_names(l);
            let w = &p.get(wn)?.data;
            let b = &p.get(bn)?.data;
            let mut z = std::mem::take(&mut ws.z[l]);
            z.resize(n * d.fan_out, 0.0);
            if d.b_mult == 1.0 {
                z.chunks_exact_mut(d.fan_out).for_each(|row| row.copy_from_slice(b));
            } else {
                for row in z.chunks_exact_mut(d.fan_out) {
                    for (o, &bi) in row.iter_mut().zip(b) {
                        *o = d.b_mult * bi;
                    }
                }
            }
            match (l, &sparse) {
                (0, Some(sp)) => dense::sparse_matmul_nt(sp, w, &mut z, d.fan_out, d.fan_in, d.w_mult, &mut ws.scratch),
                _ => {
                    let input: &[f32] = if l == 0 { x } else { &ws.h[l - 1] };
                    dense::matmul_nt(input, w, &mut z, n, d.fan_out, d.fan_in, d.w_mult, true);
                }
            }
            if l + 1 < layers.len() {
                let h = &mut ws.h[l];
                h.resize(n * d.fan_out, 0.0);
                self.activation.apply_slice(&z, h);
            }
            ws.z[l] = z;
        }
        Ok(())
    }

    /// Slice backward pass after [`Mlp::forward_fast`] on the same `x`:
    /// given `dout = dL/df` (`[n, output_dim]`), writes dL/dtheta into `grads`
    /// (which must have this network's layout).
    pub fn backward_fast(
        &self,
        p: &ParamSet,
        x: &[f32],
        dout: &[f32],
        ws: &mut MlpWorkspace,
        grads: &mut ParamSet,
    ) -> Result<()> {
        let n = ws.n;
        let layers = self.layers();
        if dout.len() != n * self.output_dim {
            return Err(Error::Shape {
                what: "dL/df".into(),
                expected: vec![n, self.output_dim],
                got: vec![dout.len()],
            });
        }
        self.check_input(x, n)?;
        let sparse = dense::sparse_rows(x, n, self.input_dim);
        let mut delta = std::mem::take(&mut ws.delta);
        let mut prev = std::mem::take(&mut ws.delta_prev);
        delta.clear();
        delta.extend_from_slice(dout);
        for l in (0..layers.len()).rev() {
            let d = layers[l];
            let (wn, bn) = self.layer_names(l);
            {
                let gw = &mut grads.get_mut(wn)?.data;
                match (l, &sparse) {
                    (0, Some(sp)) => {
                        dense::sparse_matmul_tn(&delta, sp, gw, d.fan_out, d.fan_in, d.w_mult, &mut ws.scratch)
                    }
                    _ => {
                        let input: &[f32] = if l == 0 { x } else { &ws.h[l - 1] };
                        dense::matmul_tn(&delta, input, gw, d.fan_out, d.fan_in, n, d.w_mult, false);
                    }
                }
            }
            {
                let gb = &mut grads.get_mut(bn)?.data;
                gb.iter_mut().for_each(|v| *v = 0.0);
                for row in delta.chunks_exact(d.fan_out) {
                    for (g, &r) in gb.iter_mut().zip(row) {
                        *g += r;
                    }
                }
                if d.b_mult != 1.0 {
                    gb.iter_mut().for_each(|v| *v *= d.b_mult);
                }
            }
            if l > 0 {
                let w = &p.get(wn)?.data;
                prev.resize(n * d.fan_in, 0.0);
                dense::matmul_nn(&delta, w, &mut prev, n, d.fan_in, d.fan_out, d.w_mult, false);
                self.activation.mul_derivative_slice(&ws.z[l - 1], &mut prev);
                std::mem::swap(&mut delta, &mut prev);
            }
        }
        ws.delta = delta;
        ws.delta_prev = prev;
        Ok(())
    }

    /// Forward-mode derivative (JVP) after [`Mlp::forward_fast`] at `p` on the
    /// same `x`: the directional derivative `J(x; p) · tangent` of the outputs,
    /// `[n, output_dim]`, returned as `ws.zdot.last()`. Per layer
    /// `ż_l = w_mult (ḣ_{l-1} W_l^T + h_{l-1} Ẇ_l^T) + b_mult ḃ_l`, `ḣ_l = φ'(z_l) ⊙ ż_l`, `ḣ_0 = 0`.
    pub fn jvp_fast(&self, p: &ParamSet, tangent: &ParamSet, x: &[f32], ws: &mut MlpWorkspace) -> Result<()> {
        let n = ws.n;
        let layers = self.layers();
        ws.zdot.resize(layers.len(), Vec::new());
        self.check_input(x, n)?;
        let sparse = dense::sparse_rows(x, n, self.input_dim);
        for (l, d) in layers.iter().enumerate() {
            let (wn, bn) = self.layer_names(l);
            let tw = &tangent.get(wn)?.data;
            let tb = &tangent.get(bn)?.data;
            let mut zd = std::mem::take(&mut ws.zdot[l]);
            zd.resize(n * d.fan_out, 0.0);
            for row in zd.chunks_exact_mut(d.fan_out) {
                for (o, &bi) in row.iter_mut().zip(tb) {
                    *o = d.b_mult * bi;
                }
            }
            match (l, &sparse) {
                (0, Some(sp)) => {
                    dense::sparse_matmul_nt(sp, tw, &mut zd, d.fan_out, d.fan_in, d.w_mult, &mut ws.scratch)
                }
                _ => {
                    let input: &[f32] = if l == 0 { x } else { &ws.h[l - 1] };
                    dense::matmul_nt(input, tw, &mut zd, n, d.fan_out, d.fan_in, d.w_mult, true);
                }
            }
            if l > 0 {
                // ḣ_{l-1} = φ'(z_{l-1}) ⊙ ż_{l-1}
                let mut hd = std::mem::take(&mut ws.hdot);
                hd.clear();
                hd.extend_from_slice(&ws.zdot[l - 1]);
                self.activation.mul_derivative_slice(&ws.z[l - 1], &mut hd);
                let w = &p.get(wn)?.data;
                dense::matmul_nt(&hd, w, &mut zd, n, d.fan_out, d.fan_in, d.w_mult, true);
                ws.hdot = hd;
            }
            ws.zdot[l] = zd;
        }
        Ok(())
    }
}
