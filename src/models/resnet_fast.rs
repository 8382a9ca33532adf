//! The CPU training path of [`ResNet`]: the convolutions of
//! [`super::conv_fast`] (direct for the 3x3 stride-1 ones with at least 4
//! input channels; im2col + GEMM for the others: the stem on 1-channel
//! images, the strided ones and the 1x1 projections), hand-written BatchNorm, ReLU, residual
//! sums, global average pooling and the output layer, forward and backward,
//! on slices in the channel-major CNHW layout (one BatchNorm channel is one
//! contiguous run of `n·h·w` values). Candle's autodiff ([`ResNet::forward_tensor`])
//! is the reference it is tested against (tests/resnet.rs) and the path on
//! other devices.
//!
//! BatchNorm backward (training mode, batch statistics; Ioffe & Szegedy 2015,
//! Sec. 3): with `x̂ = (z − μ)·s`, `s = 1/sqrt(σ² + ε)`, `y = γ x̂ + β` over
//! the `M = n·h·w` values of a channel,
//! `∂β = Σ dy`, `∂γ = Σ dy·x̂`, `dz = γ s / M · (M·dy − ∂β − x̂·∂γ)`.
//!
//! The elementwise passes are fused where the data allow it, with the same
//! f32 operations in the same order (so the same bits as one pass per
//! operation): x̂ is not stored but recomputed from `z`, μ and s; a block's
//! second BatchNorm, its residual sum and the ReLU are one pass; a ReLU's
//! backward mask, the residual gradient's sum and BatchNorm's two sums are
//! one pass per channel.

use rayon::prelude::*;

use super::conv_fast::{conv_backward, conv_forward};
use super::dense::{matmul_nn, matmul_nt, matmul_tn, sq_dev_f64, sum_and_dot_centered_f64, sum_f64};
use super::resnet::{BnStat, BnStats, ResConv, ResNet, BN_EPS};
use crate::params::ParamSet;
use crate::{Error, Result};

/// Buffers of the forward and backward passes, kept between steps.
#[derive(Clone, Debug, Default)]
pub struct ResNetWorkspace {
    /// Batch size of the last forward pass.
    pub n: usize,
    /// The input in CNHW.
    x: Vec<f32>,
    /// Per convolution (in [`ResNet::convs`] order): what its BatchNorm
    /// keeps, and its im2col columns (its padded input for a direct layer).
    bn: Vec<BnSaved>,
    cols: Vec<Vec<f32>>,
    /// Post-ReLU activations: the stem's, then per block its middle and its output.
    act: Vec<Vec<f32>>,
    /// A projection shortcut's BatchNorm output (scratch).
    short: Vec<f32>,
    /// Globally pooled features `[n, features]`.
    pooled: Vec<f32>,
    /// The network output `[n, outputs]`.
    out: Vec<f32>,
    // Backward scratch.
    d: Vec<f32>,
    dz: Vec<f32>,
    dmid: Vec<f32>,
    dinp: Vec<f32>,
    /// The shortcut's part of the gradient of a block's input, added in the
    /// next backward pass over it.
    dshort: Vec<f32>,
    dcols: Vec<f32>,
    dpool: Vec<f32>,
}

/// What a BatchNorm keeps for its backward pass: the convolution's output
/// `z` (CNHW) and per channel μ and s = 1/sqrt(σ² + ε); x̂ = (z − μ)·s is
/// recomputed from them (one write less per layer than keeping x̂).
#[derive(Clone, Debug, Default)]
pub(super) struct BnSaved {
    z: Vec<f32>,
    mean: Vec<f32>,
    inv: Vec<f32>,
}

/// What follows a BatchNorm in the forward pass.
#[derive(Clone, Copy, Debug)]
pub(super) enum After<'a> {
    /// Nothing (a projection shortcut).
    Nothing,
    /// A ReLU.
    Relu,
    /// A residual sum with these values, then a ReLU.
    AddRelu(&'a [f32]),
}

/// What the gradient reaching a BatchNorm's output passed through, undone
/// in its backward pass (in place, in `dy`).
#[derive(Clone, Copy, Debug)]
pub(super) enum Before<'a> {
    /// Nothing: `dy` is the gradient of the BatchNorm's output.
    Nothing,
    /// A ReLU whose output was this: `dy` is zeroed where it is not positive.
    Relu(&'a [f32]),
    /// As `Relu`, after adding these values to `dy` (the other branch's
    /// part of the gradient of a residual block's input).
    AddRelu(&'a [f32], &'a [f32]),
}

impl ResNetWorkspace {
    /// The network output `[n, outputs]` of the last forward pass.
    pub fn output(&self) -> &[f32] {
        &self.out
    }
}

fn param<'a>(p: &'a ParamSet, name: &str) -> Result<&'a [f32]> {
    Ok(&p.get(name)?.data)
}

/// Convolution then BatchNorm of `inp`, then `after`, written to `y`;
/// keeps what the backward pass needs in `saved`.
#[allow(clippy::too_many_arguments)]
pub(super) fn conv_bn(
    c: &ResConv,
    p: &ParamSet,
    inp: &[f32],
    n: usize,
    fixed: Option<&BnStats>,
    record: Option<&mut BnStats>,
    after: After,
    saved: &mut BnSaved,
    cols: &mut Vec<f32>,
    y: &mut Vec<f32>,
) -> Result<()> {
    conv_forward(
        &c.layer,
        inp,
        n,
        param(p, &format!("{}.weight", c.name))?,
        &mut saved.z,
        cols,
    );
    let gamma = param(p, &format!("{}.weight", c.bn))?;
    let beta = param(p, &format!("{}.bias", c.bn))?;
    let m = n * c.ho * c.wo;
    let z = &saved.z;
    let stat: BnStat = match fixed {
        Some(s) => {
            let st = s.0.get(&c.bn).ok_or_else(|| Error::Param {
                what: format!("BatchNorm statistics for `{}` missing", c.bn),
            })?;
            if st.mean.len() != c.c_out || st.var.len() != c.c_out {
                return Err(Error::Shape {
                    what: format!("BatchNorm statistics of `{}`", c.bn),
                    expected: vec![c.c_out],
                    got: vec![st.mean.len()],
                });
            }
            st.clone()
        }
        None => {
            let mv: Vec<(f32, f32)> = z
                .par_chunks(m)
                .map(|z| {
                    let mean = (sum_f64(z) / m as f64) as f32;
                    (mean, (sq_dev_f64(z, mean) / m as f64) as f32)
                })
                .collect();
            BnStat {
                mean: mv.iter().map(|v| v.0).collect(),
                var: mv.iter().map(|v| v.1).collect(),
            }
        }
    };
    saved.inv.clear();
    saved.inv.extend(stat.var.iter().map(|v| 1.0 / (v + BN_EPS).sqrt()));
    saved.mean.clone_from(&stat.mean);
    let inv = &saved.inv;
    if let After::AddRelu(r) = after {
        if r.len() != z.len() {
            return Err(Error::Shape {
                what: format!("residual added after `{}`", c.bn),
                expected: vec![z.len()],
                got: vec![r.len()],
            });
        }
    }
    y.resize(z.len(), 0.0);
    z.par_chunks(m)
        .zip(y.par_chunks_mut(m))
        .enumerate()
        .for_each(|(ch, (zc, yc))| {
            let (mu, s, g, b) = (stat.mean[ch], inv[ch], gamma[ch], beta[ch]);
            let bn = |zv: f32| g * ((zv - mu) * s) + b;
            match after {
                After::Nothing => yc.iter_mut().zip(zc).for_each(|(yv, &zv)| *yv = bn(zv)),
                After::Relu => yc.iter_mut().zip(zc).for_each(|(yv, &zv)| *yv = bn(zv).max(0.0)),
                After::AddRelu(r) => yc
                    .iter_mut()
                    .zip(zc)
                    .zip(&r[ch * m..][..m])
                    .for_each(|((yv, &zv), &rv)| *yv = (bn(zv) + rv).max(0.0)),
            }
        });
    if let Some(r) = record {
        r.0.insert(c.bn.clone(), stat);
    }
    Ok(())
}

/// BatchNorm backward: undoes `before` on `dy` in place (see [`Before`]),
/// then writes the scale and shift gradients and `dz` (CNHW).
#[allow(clippy::too_many_arguments)]
pub(super) fn bn_backward(
    c: &ResConv,
    p: &ParamSet,
    n: usize,
    dy: &mut [f32],
    before: Before,
    saved: &BnSaved,
    grads: &mut ParamSet,
    dz: &mut Vec<f32>,
) -> Result<()> {
    let m = n * c.ho * c.wo;
    let gamma = param(p, &format!("{}.weight", c.bn))?;
    let (z, mean, inv) = (&saved.z, &saved.mean, &saved.inv);
    let len = dy.len();
    let ok = |v: &[f32]| v.len() == len;
    let lens_ok = z.len() == len
        && match before {
            Before::Nothing => true,
            Before::Relu(a) => ok(a),
            Before::AddRelu(add, a) => ok(add) && ok(a),
        };
    if !lens_ok || m == 0 || len % m != 0 || mean.len() != len / m || inv.len() != len / m {
        return Err(Error::Shape {
            what: format!("gradient reaching BatchNorm `{}`", c.bn),
            expected: vec![z.len()],
            got: vec![len],
        });
    }
    let sums: Vec<(f64, f64)> = dy
        .par_chunks_mut(m)
        .zip(z.par_chunks(m))
        .enumerate()
        .map(|(ch, (d, zc))| {
            let at = ch * m..(ch + 1) * m;
            match before {
                Before::Nothing => {}
                Before::Relu(a) => d
                    .iter_mut()
                    .zip(&a[at])
                    .for_each(|(d, &a)| *d = if a > 0.0 { *d } else { 0.0 }),
                Before::AddRelu(add, a) => d
                    .iter_mut()
                    .zip(&add[at.clone()])
                    .zip(&a[at])
                    .for_each(|((d, &e), &a)| {
                        // The sum first, whatever the mask: a select, not a branch.
                        let v = *d + e;
                        *d = if a > 0.0 { v } else { 0.0 };
                    }),
            }
            sum_and_dot_centered_f64(d, zc, mean[ch], inv[ch])
        })
        .collect();
    for (g, s) in grads.get_mut(&format!("{}.weight", c.bn))?.data.iter_mut().zip(&sums) {
        *g = s.1 as f32;
    }
    for (g, s) in grads.get_mut(&format!("{}.bias", c.bn))?.data.iter_mut().zip(&sums) {
        *g = s.0 as f32;
    }
    dz.resize(len, 0.0);
    dz.par_chunks_mut(m)
        .zip(dy.par_chunks(m).zip(z.par_chunks(m)))
        .enumerate()
        .for_each(|(ch, (o, (d, zc)))| {
            let (mu, s) = (mean[ch], inv[ch]);
            let k = gamma[ch] * s / m as f32;
            let (db, dg) = (sums[ch].0 as f32, sums[ch].1 as f32);
            for ((o, &d), &zv) in o.iter_mut().zip(d).zip(zc) {
                let x = (zv - mu) * s;
                *o = k * (m as f32 * d - db - x * dg);
            }
        });
    Ok(())
}

/// The input `x` (`[n, c·h·w]`, NCHW) in CNHW, in `out`; errors on a wrong size.
pub(super) fn to_cnhw(shape: [usize; 3], x: &[f32], n: usize, what: &str, out: &mut Vec<f32>) -> Result<()> {
    let [c0, h0, w0] = shape;
    if n == 0 || x.len() != n * c0 * h0 * w0 {
        return Err(Error::Shape {
            what: what.into(),
            expected: vec![n.max(1), c0 * h0 * w0],
            got: vec![x.len()],
        });
    }
    let hw = h0 * w0;
    out.resize(x.len(), 0.0);
    for i in 0..n {
        for c in 0..c0 {
            out[(c * n + i) * hw..][..hw].copy_from_slice(&x[(i * c0 + c) * hw..][..hw]);
        }
    }
    Ok(())
}

/// Global average pool of the last feature map (CNHW `[f, n, h, w]`) into
/// `pooled` `[n, f]`, then the output layer `fc` into `out` `[n, outputs]`.
pub(super) fn pool_fc_forward(
    p: &ParamSet,
    last: &[f32],
    n: usize,
    f: usize,
    outputs: usize,
    pooled: &mut Vec<f32>,
    out: &mut Vec<f32>,
) -> Result<()> {
    let phw = last.len() / (f * n);
    pooled.resize(n * f, 0.0);
    for c in 0..f {
        for i in 0..n {
            pooled[i * f + c] = (sum_f64(&last[(c * n + i) * phw..][..phw]) / phw as f64) as f32;
        }
    }
    let (wt, bias) = (param(p, "fc.weight")?, param(p, "fc.bias")?);
    out.resize(n * outputs, 0.0);
    matmul_nt(pooled, wt, out, n, outputs, f, 1.0, false);
    for row in out.chunks_exact_mut(outputs) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
    Ok(())
}

/// The backward pass of [`pool_fc_forward`]: writes the `fc` gradients and
/// the gradient of the last feature map (`last_len` values, CNHW) into `d`;
/// `dpool` is scratch.
#[allow(clippy::too_many_arguments)]
pub(super) fn pool_fc_backward(
    p: &ParamSet,
    dout: &[f32],
    n: usize,
    f: usize,
    o: usize,
    pooled: &[f32],
    last_len: usize,
    grads: &mut ParamSet,
    dpool: &mut Vec<f32>,
    d: &mut Vec<f32>,
) -> Result<()> {
    let dout = &dout[..n * o];
    matmul_tn(dout, pooled, &mut grads.get_mut("fc.weight")?.data, o, f, n, 1.0, false);
    let gb = &mut grads.get_mut("fc.bias")?.data;
    gb.fill(0.0);
    for row in dout.chunks_exact(o) {
        for (g, v) in gb.iter_mut().zip(row) {
            *g += v;
        }
    }
    dpool.resize(n * f, 0.0);
    matmul_nn(dout, param(p, "fc.weight")?, dpool, n, f, o, 1.0, false);
    let phw = last_len / (f * n);
    d.resize(last_len, 0.0);
    for c in 0..f {
        for i in 0..n {
            let g = dpool[i * f + c] / phw as f32;
            d[(c * n + i) * phw..][..phw].fill(g);
        }
    }
    Ok(())
}

impl ResNet {
    /// Slice forward pass. `x`: `[n, c·h·w]`; the output is `ws.output()`.
    /// `stats`: None normalizes each BatchNorm by the batch's statistics
    /// (training; then [`ResNet::backward_fast`] may follow), Some by those
    /// given (evaluation). With `record`, the statistics used are written there.
    pub fn forward_fast(
        &self,
        p: &ParamSet,
        x: &[f32],
        n: usize,
        stats: Option<&BnStats>,
        mut record: Option<&mut BnStats>,
        ws: &mut ResNetWorkspace,
    ) -> Result<()> {
        to_cnhw(self.input_shape, x, n, "ResNet input", &mut ws.x)?;
        ws.n = n;
        let convs = self.convs();
        let blocks = self.blocks();
        ws.bn.resize(convs.len(), BnSaved::default());
        ws.cols.resize(convs.len(), Vec::new());
        ws.act.resize(1 + 2 * blocks.len(), Vec::new());
        let stem = self.stem();
        conv_bn(
            &stem,
            p,
            &ws.x,
            n,
            stats,
            record.as_deref_mut(),
            After::Relu,
            &mut ws.bn[0],
            &mut ws.cols[0],
            &mut ws.act[0],
        )?;
        let mut ci = 1;
        for (bi, b) in blocks.iter().enumerate() {
            let (done, rest) = ws.act.split_at_mut(1 + 2 * bi);
            let inp = &done[2 * bi];
            let (mid, out) = rest.split_at_mut(1);
            let (mid, out) = (&mut mid[0], &mut out[0]);
            conv_bn(
                &b.conv1,
                p,
                inp,
                n,
                stats,
                record.as_deref_mut(),
                After::Relu,
                &mut ws.bn[ci],
                &mut ws.cols[ci],
                mid,
            )?;
            let short: &[f32] = match &b.shortcut {
                Some(sc) => {
                    conv_bn(
                        sc,
                        p,
                        inp,
                        n,
                        stats,
                        record.as_deref_mut(),
                        After::Nothing,
                        &mut ws.bn[ci + 2],
                        &mut ws.cols[ci + 2],
                        &mut ws.short,
                    )?;
                    &ws.short
                }
                None => inp,
            };
            conv_bn(
                &b.conv2,
                p,
                mid,
                n,
                stats,
                record.as_deref_mut(),
                After::AddRelu(short),
                &mut ws.bn[ci + 1],
                &mut ws.cols[ci + 1],
                out,
            )?;
            ci += 2 + b.shortcut.is_some() as usize;
        }
        let last = &ws.act[2 * blocks.len()];
        pool_fc_forward(
            p,
            last,
            n,
            self.features(),
            self.output_dim,
            &mut ws.pooled,
            &mut ws.out,
        )?;
        Ok(())
    }

    /// Slice backward pass after a training-mode [`ResNet::forward_fast`]
    /// (`stats` None) on the same input and `p`: `dout` is the loss gradient
    /// with respect to the outputs `[n, outputs]`; every gradient in `grads`
    /// is overwritten.
    pub fn backward_fast(
        &self,
        p: &ParamSet,
        dout: &[f32],
        ws: &mut ResNetWorkspace,
        grads: &mut ParamSet,
    ) -> Result<()> {
        let n = ws.n;
        let (f, o) = (self.features(), self.output_dim);
        let blocks = self.blocks();
        let convs = self.convs();
        let last_len = ws.act[2 * blocks.len()].len();
        pool_fc_backward(p, dout, n, f, o, &ws.pooled, last_len, grads, &mut ws.dpool, &mut ws.d)?;
        // The gradient of a block's output is ws.d, plus ws.dshort after the
        // last block (the shortcut's part, added in the next pass over it).
        let mut pending = false;
        let mut ci = convs.len();
        for (bi, b) in blocks.iter().enumerate().rev() {
            ci -= 2 + b.shortcut.is_some() as usize;
            let (c1, c2) = (ci, ci + 1);
            let inp = &ws.act[2 * bi];
            // Through the final ReLU (ws.d is then the gradient of the sum), bn2,
            // conv2, ReLU, bn1, conv1.
            let out = &ws.act[2 * bi + 2];
            let before = if pending {
                Before::AddRelu(&ws.dshort, out)
            } else {
                Before::Relu(out)
            };
            bn_backward(&b.conv2, p, n, &mut ws.d, before, &ws.bn[c2], grads, &mut ws.dz)?;
            conv_backward(
                &b.conv2.layer,
                &ws.act[2 * bi + 1],
                n,
                param(p, &format!("{}.weight", b.conv2.name))?,
                &ws.dz,
                &mut grads.get_mut(&format!("{}.weight", b.conv2.name))?.data,
                Some(&mut ws.dmid),
                &mut ws.cols[c2],
                &mut ws.dcols,
            );
            let before = Before::Relu(&ws.act[2 * bi + 1]);
            bn_backward(&b.conv1, p, n, &mut ws.dmid, before, &ws.bn[c1], grads, &mut ws.dz)?;
            conv_backward(
                &b.conv1.layer,
                inp,
                n,
                param(p, &format!("{}.weight", b.conv1.name))?,
                &ws.dz,
                &mut grads.get_mut(&format!("{}.weight", b.conv1.name))?.data,
                Some(&mut ws.dinp),
                &mut ws.cols[c1],
                &mut ws.dcols,
            );
            // Shortcut: the identity passes ws.d on; a projection its backward.
            match &b.shortcut {
                None => std::mem::swap(&mut ws.dshort, &mut ws.d),
                Some(sc) => {
                    let cs = ci + 2;
                    bn_backward(sc, p, n, &mut ws.d, Before::Nothing, &ws.bn[cs], grads, &mut ws.dz)?;
                    conv_backward(
                        &sc.layer,
                        inp,
                        n,
                        param(p, &format!("{}.weight", sc.name))?,
                        &ws.dz,
                        &mut grads.get_mut(&format!("{}.weight", sc.name))?.data,
                        Some(&mut ws.dshort),
                        &mut ws.cols[cs],
                        &mut ws.dcols,
                    );
                }
            }
            std::mem::swap(&mut ws.d, &mut ws.dinp);
            pending = true;
        }
        // The stem: ReLU, bn, conv (no input gradient needed).
        let stem = self.stem();
        let before = if pending {
            Before::AddRelu(&ws.dshort, &ws.act[0])
        } else {
            Before::Relu(&ws.act[0])
        };
        bn_backward(&stem, p, n, &mut ws.d, before, &ws.bn[0], grads, &mut ws.dz)?;
        conv_backward(
            &stem.layer,
            &ws.x,
            n,
            param(p, "conv.weight")?,
            &ws.dz,
            &mut grads.get_mut("conv.weight")?.data,
            None,
            &mut ws.cols[0],
            &mut ws.dcols,
        );
        Ok(())
    }
}
