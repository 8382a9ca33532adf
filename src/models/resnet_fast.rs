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

use rayon::prelude::*;

use super::conv_fast::{conv_backward, conv_forward};
use super::dense::{dot_f64, matmul_nn, matmul_nt, matmul_tn, relu_backward, sq_dev_f64, sum_f64};
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
    /// Per convolution (in [`ResNet::convs`] order): its normalized output x̂
    /// (CNHW), the per-channel 1/sqrt(σ² + ε), and its im2col columns (its
    /// padded input for a direct layer).
    xhat: Vec<Vec<f32>>,
    inv: Vec<Vec<f32>>,
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
    dcols: Vec<f32>,
    dpool: Vec<f32>,
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

/// Convolution then BatchNorm (then ReLU when `relu`) of `inp`, written to
/// `y`; keeps x̂ and 1/sqrt(σ² + ε) for the backward pass.
#[allow(clippy::too_many_arguments)]
pub(super) fn conv_bn(
    c: &ResConv,
    p: &ParamSet,
    inp: &[f32],
    n: usize,
    fixed: Option<&BnStats>,
    record: Option<&mut BnStats>,
    relu: bool,
    xhat: &mut Vec<f32>,
    inv: &mut Vec<f32>,
    cols: &mut Vec<f32>,
    y: &mut Vec<f32>,
) -> Result<()> {
    conv_forward(&c.layer, inp, n, param(p, &format!("{}.weight", c.name))?, xhat, cols);
    let gamma = param(p, &format!("{}.weight", c.bn))?;
    let beta = param(p, &format!("{}.bias", c.bn))?;
    let m = n * c.ho * c.wo;
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
            let mv: Vec<(f32, f32)> = xhat
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
    inv.clear();
    inv.extend(stat.var.iter().map(|v| 1.0 / (v + BN_EPS).sqrt()));
    y.resize(xhat.len(), 0.0);
    xhat.par_chunks_mut(m)
        .zip(y.par_chunks_mut(m))
        .enumerate()
        .for_each(|(ch, (zc, yc))| {
            let (mu, s, g, b) = (stat.mean[ch], inv[ch], gamma[ch], beta[ch]);
            for (zv, yv) in zc.iter_mut().zip(yc) {
                let xh = (*zv - mu) * s;
                *zv = xh;
                let v = g * xh + b;
                *yv = if relu { v.max(0.0) } else { v };
            }
        });
    if let Some(r) = record {
        r.0.insert(c.bn.clone(), stat);
    }
    Ok(())
}

/// BatchNorm backward: `dy` (CNHW) to `dz`, writing the scale and shift gradients.
#[allow(clippy::too_many_arguments)]
pub(super) fn bn_backward(
    c: &ResConv,
    p: &ParamSet,
    n: usize,
    dy: &[f32],
    xhat: &[f32],
    inv: &[f32],
    grads: &mut ParamSet,
    dz: &mut Vec<f32>,
) -> Result<()> {
    let m = n * c.ho * c.wo;
    let gamma = param(p, &format!("{}.weight", c.bn))?;
    let sums: Vec<(f64, f64)> = dy
        .par_chunks(m)
        .zip(xhat.par_chunks(m))
        .map(|(d, x)| (sum_f64(d), dot_f64(d, x)))
        .collect();
    for (g, s) in grads.get_mut(&format!("{}.weight", c.bn))?.data.iter_mut().zip(&sums) {
        *g = s.1 as f32;
    }
    for (g, s) in grads.get_mut(&format!("{}.bias", c.bn))?.data.iter_mut().zip(&sums) {
        *g = s.0 as f32;
    }
    dz.resize(dy.len(), 0.0);
    dz.par_chunks_mut(m)
        .zip(dy.par_chunks(m).zip(xhat.par_chunks(m)))
        .enumerate()
        .for_each(|(ch, (o, (d, x)))| {
            let k = gamma[ch] * inv[ch] / m as f32;
            let (db, dg) = (sums[ch].0 as f32, sums[ch].1 as f32);
            for ((o, &d), &x) in o.iter_mut().zip(d).zip(x) {
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

/// `a += b`, in parallel chunks.
fn add_into(a: &mut [f32], b: &[f32]) {
    a.par_chunks_mut(1 << 14)
        .zip(b.par_chunks(1 << 14))
        .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(a, &b)| *a += b));
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
        ws.xhat.resize(convs.len(), Vec::new());
        ws.inv.resize(convs.len(), Vec::new());
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
            true,
            &mut ws.xhat[0],
            &mut ws.inv[0],
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
                true,
                &mut ws.xhat[ci],
                &mut ws.inv[ci],
                &mut ws.cols[ci],
                mid,
            )?;
            conv_bn(
                &b.conv2,
                p,
                mid,
                n,
                stats,
                record.as_deref_mut(),
                false,
                &mut ws.xhat[ci + 1],
                &mut ws.inv[ci + 1],
                &mut ws.cols[ci + 1],
                out,
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
                        false,
                        &mut ws.xhat[ci + 2],
                        &mut ws.inv[ci + 2],
                        &mut ws.cols[ci + 2],
                        &mut ws.short,
                    )?;
                    &ws.short
                }
                None => inp,
            };
            out.par_chunks_mut(1 << 14)
                .zip(short.par_chunks(1 << 14))
                .for_each(|(o, s)| o.iter_mut().zip(s).for_each(|(o, &s)| *o = (*o + s).max(0.0)));
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
        let mut ci = convs.len();
        for (bi, b) in blocks.iter().enumerate().rev() {
            ci -= 2 + b.shortcut.is_some() as usize;
            let (c1, c2) = (ci, ci + 1);
            // Through the final ReLU: ws.d is now the gradient of the sum.
            relu_backward(&mut ws.d, &ws.act[2 * bi + 2]);
            let inp = &ws.act[2 * bi];
            // Main branch: bn2, conv2, ReLU, bn1, conv1.
            bn_backward(&b.conv2, p, n, &ws.d, &ws.xhat[c2], &ws.inv[c2], grads, &mut ws.dz)?;
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
            relu_backward(&mut ws.dmid, &ws.act[2 * bi + 1]);
            bn_backward(&b.conv1, p, n, &ws.dmid, &ws.xhat[c1], &ws.inv[c1], grads, &mut ws.dz)?;
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
            // Shortcut: the identity adds ws.d; a projection adds its backward.
            match &b.shortcut {
                None => add_into(&mut ws.dinp, &ws.d),
                Some(sc) => {
                    let cs = ci + 2;
                    bn_backward(sc, p, n, &ws.d, &ws.xhat[cs], &ws.inv[cs], grads, &mut ws.dz)?;
                    conv_backward(
                        &sc.layer,
                        inp,
                        n,
                        param(p, &format!("{}.weight", sc.name))?,
                        &ws.dz,
                        &mut grads.get_mut(&format!("{}.weight", sc.name))?.data,
                        Some(&mut ws.dmid),
                        &mut ws.cols[cs],
                        &mut ws.dcols,
                    );
                    add_into(&mut ws.dinp, &ws.dmid);
                }
            }
            std::mem::swap(&mut ws.d, &mut ws.dinp);
        }
        // The stem: ReLU, bn, conv (no input gradient needed).
        let stem = self.stem();
        relu_backward(&mut ws.d, &ws.act[0]);
        bn_backward(&stem, p, n, &ws.d, &ws.xhat[0], &ws.inv[0], grads, &mut ws.dz)?;
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
