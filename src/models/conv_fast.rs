//! The CPU training path of [`ConvNet`]: convolutions (3x3 "same" layers by
//! the direct kernels of [`super::conv_direct`], the others as im2col + GEMM
//! through the `gemm` crate), hand-written ReLU, 2x2 max-pool and fully
//! connected layers, forward and backward, on slices. Candle's autodiff
//! costs about 9x PyTorch's time on a LeNet-5-sized net here (per-op
//! allocation, NCHW convolutions one example at a time); this path batches
//! several examples into one GEMM per layer. Candle's autodiff stays the
//! reference it is tested against (tests/conv_fast.rs).
//!
//! Layout: activations are kept channel-major over the batch, `[c, n, h, w]`
//! (CNHW), so that one GEMM `W [c_out, K] · cols [K, B·h·w]` computes a
//! layer's output for B examples directly in that layout (Caffe's im2col with
//! the batch folded into the columns). The rows of `cols` are ordered
//! (c_in, ky, kx), the order of the weight tensor `[c_out, c_in, k, k]`, so
//! weights are used as stored. Features are flattened to `[n, c·h·w]` in
//! PyTorch's (channel, row, column) order before the dense layers.
//!
//! Memory: the im2col buffer of a layer holds at most [`COLS_BUDGET`] bytes;
//! larger batches are done in chunks of examples, recomputed in the backward
//! pass rather than stored (a batch that fits in one chunk keeps its columns).
//! A direct layer keeps its padded input instead (about the input's size,
//! not capped), and its backward pass pads the output gradient into the
//! shared scratch.
//!
//! Speed (benches/train_throughput.rs, batch 128, a 2-core AMD EPYC with
//! AVX2; PyTorch 2.15 CPU by benches/peers/pytorch_conv.py in the same
//! command, 2026-11-26): LeNet-5 11.1-11.4k samples/s (PyTorch 6.4-6.5k),
//! Conv-4 203-215/s (PyTorch 155-179/s), ResNet-20 331-342/s (PyTorch
//! 277-315/s). With im2col + GEMM for every layer Conv-4 had run at 136-168/s
//! and ResNet-20 at 192/s: the GEMMs ran at 50-107 GFLOP/s, the direct
//! kernels run at 77-133 (reports/reference/conv_throughput_cpu.md).

use rayon::prelude::*;

use super::conv::{ConvLayer, ConvNet};
use super::conv_direct;
use super::dense::{gemm_blocked, matmul_nn, matmul_nt, matmul_tn, relu_backward, sum_f64};
use crate::params::ParamSet;
use crate::{Error, Result};

/// Largest im2col buffer (bytes); 8 MiB keeps a chunk near the caches.
pub const COLS_BUDGET: usize = 8 << 20;

/// Buffers of the forward and backward passes, kept between steps so a
/// training step allocates no activation-sized buffer once the batch size
/// is stable (the direct convolutions allocate their packed weights and
/// weight-gradient partial sums per call: at most a few MB).
#[derive(Clone, Debug, Default)]
pub struct ConvWorkspace {
    /// Batch size of the last forward pass.
    pub n: usize,
    /// The input in CNHW.
    x: Vec<f32>,
    /// Per convolution: its post-ReLU output, CNHW `[c_out, n, ho, wo]`.
    conv: Vec<Vec<f32>>,
    /// Per convolution followed by a pool: the pooled output.
    pooled: Vec<Vec<f32>>,
    /// Dense layers: their inputs' activations; `dense[0]` is the flattened
    /// features `[n, flat]`, `dense[j]` the post-ReLU output of hidden layer j.
    dense: Vec<Vec<f32>>,
    /// The network output `[n, outputs]`.
    out: Vec<f32>,
    /// Per convolution: its im2col columns of the last chunk (when the
    /// whole batch is one chunk the backward pass uses them as they are),
    /// or for a direct layer its padded input.
    cols: Vec<Vec<f32>>,
    // Backward buffers.
    delta: Vec<f32>,
    delta_prev: Vec<f32>,
    dact: Vec<f32>,
    dact_prev: Vec<f32>,
    /// The im2col layers' column gradients (scratch, kept at its largest
    /// size: sharing `delta_prev`, whose length the dense layers set, made
    /// the backward pass zero-fill it afresh at every step).
    dcols: Vec<f32>,
}

impl ConvWorkspace {
    /// The network output `[n, outputs]` of the last forward pass.
    pub fn output(&self) -> &[f32] {
        &self.out
    }
}

fn param<'a>(p: &'a ParamSet, name: &str) -> Result<&'a [f32]> {
    Ok(&p.get(name)?.data)
}

/// Examples per im2col chunk for `l`.
pub(crate) fn chunk_examples(l: &ConvLayer, n: usize) -> usize {
    let per = l.c_in * l.k * l.k * l.ho * l.wo * std::mem::size_of::<f32>();
    (COLS_BUDGET / per.max(1)).clamp(1, n.max(1))
}

/// `cols [K, b·ho·wo]` of examples `s..s+b` of `inp` (CNHW `[c_in, n, h, w]`).
pub(crate) fn im2col(l: &ConvLayer, inp: &[f32], n: usize, s: usize, b: usize, cols: &mut [f32]) {
    let (h, w, ho, wo, k, pad) = (l.h, l.w, l.ho, l.wo, l.k, l.pad as isize);
    let row_len = b * ho * wo;
    if is_same(l) {
        // Each row is the chunk's planes of one channel shifted as a whole
        // (one contiguous copy), then the positions outside the image zeroed.
        let hw = h * w;
        cols[..l.c_in * k * k * row_len]
            .par_chunks_mut(row_len)
            .enumerate()
            .for_each(|(r, row)| {
                let (ci, ky, kx) = (r / (k * k), (r / k) % k, r % k);
                let src = &inp[(ci * n + s) * hw..][..row_len];
                let (dy, dx) = (ky as isize - pad, kx as isize - pad);
                let (lo, hi) = shifted_range(row_len, dy * w as isize + dx);
                let shift = dy * w as isize + dx;
                row[..lo].fill(0.0);
                row[lo..hi].copy_from_slice(&src[(lo as isize + shift) as usize..(hi as isize + shift) as usize]);
                row[hi..].fill(0.0);
                zero_outside(row, b, h, w, dy, dx);
            });
        return;
    }
    cols[..l.c_in * k * k * row_len]
        .par_chunks_mut(row_len)
        .enumerate()
        .for_each(|(r, row)| {
            let (ci, ky, kx) = (r / (k * k), (r / k) % k, r % k);
            if l.stride != 1 {
                // Strided (a ResNet's downsampling convolutions): per output row,
                // the columns inside the image read with a stride, the rest zeroed.
                let st = l.stride;
                let (lo, hi) = strided_cols(wo, w, st, kx as isize - pad);
                for e in 0..b {
                    let plane = &inp[(ci * n + s + e) * h * w..][..h * w];
                    let dst = &mut row[e * ho * wo..][..ho * wo];
                    for (oy, d) in dst.chunks_exact_mut(wo).enumerate() {
                        let iy = (oy * st + ky) as isize - pad;
                        if iy < 0 || iy >= h as isize || lo == hi {
                            d.iter_mut().for_each(|v| *v = 0.0);
                            continue;
                        }
                        let first = ((lo * st + kx) as isize - pad) as usize;
                        let src = plane[iy as usize * w + first..][..(hi - lo - 1) * st + 1]
                            .iter()
                            .step_by(st);
                        d[..lo].iter_mut().for_each(|v| *v = 0.0);
                        d[lo..hi].iter_mut().zip(src).for_each(|(v, &x)| *v = x);
                        d[hi..].iter_mut().for_each(|v| *v = 0.0);
                    }
                }
                return;
            }
            for e in 0..b {
                let plane = &inp[(ci * n + s + e) * h * w..][..h * w];
                let dst = &mut row[e * ho * wo..][..ho * wo];
                // ix = ox + kx − pad must lie in [0, w).
                let (lo, hi) = strided_cols(wo, w, 1, kx as isize - pad);
                let off = (lo as isize + kx as isize - pad) as usize;
                for oy in 0..ho {
                    let iy = oy as isize + ky as isize - pad;
                    let d = &mut dst[oy * wo..][..wo];
                    // Element loops, not copy_from_slice / fill: rows are a few
                    // dozen floats, where a memmove call costs more than the copy.
                    if iy < 0 || iy >= h as isize {
                        d.iter_mut().for_each(|v| *v = 0.0);
                        continue;
                    }
                    let src = &plane[iy as usize * w + off..][..hi - lo];
                    d[..lo].iter_mut().for_each(|v| *v = 0.0);
                    d[lo..hi].iter_mut().zip(src).for_each(|(v, &x)| *v = x);
                    d[hi..].iter_mut().for_each(|v| *v = 0.0);
                }
            }
        });
}

/// Adds `cols [K, b·ho·wo]` back into `dinp` (CNHW `[c_in, n, h, w]`),
/// examples `s..s+b` (the adjoint of [`im2col`]). With "same" stride-1
/// layers the entries of `cols` that stand for positions outside the image
/// are zeroed on the way (they are scratch).
pub(crate) fn col2im_mut(l: &ConvLayer, cols: &mut [f32], n: usize, s: usize, b: usize, dinp: &mut [f32]) {
    if !is_same(l) {
        return col2im(l, cols, n, s, b, dinp);
    }
    let (h, w, k, pad) = (l.h, l.w, l.k, l.pad as isize);
    let hw = h * w;
    let row_len = b * hw;
    dinp.par_chunks_mut(n * hw)
        .zip(cols[..l.c_in * k * k * row_len].par_chunks_mut(k * k * row_len))
        .for_each(|(planes, rows)| {
            let dst = &mut planes[s * hw..][..row_len];
            for (r, row) in rows.chunks_mut(row_len).enumerate() {
                let (dy, dx) = ((r / k) as isize - pad, (r % k) as isize - pad);
                zero_outside(row, b, h, w, dy, dx);
                let shift = dy * w as isize + dx;
                let (lo, hi) = shifted_range(row_len, shift);
                let d = &mut dst[(lo as isize + shift) as usize..(hi as isize + shift) as usize];
                for (a, v) in d.iter_mut().zip(&row[lo..hi]) {
                    *a += v;
                }
            }
        });
}

/// The output columns `lo..hi` (of `wo`) whose input column
/// `ox·stride + shift` lies in `0..w`.
fn strided_cols(wo: usize, w: usize, stride: usize, shift: isize) -> (usize, usize) {
    let st = stride as isize;
    let lo = ((-shift).max(0) + st - 1) / st;
    let last = w as isize - 1 - shift;
    let hi = if last < 0 { 0 } else { (last / st + 1).min(wo as isize) };
    (lo.min(hi) as usize, hi as usize)
}

/// Stride 1 with the output the size of the input ("same" padding).
fn is_same(l: &ConvLayer) -> bool {
    l.stride == 1 && l.ho == l.h && l.wo == l.w
}

/// The `j` in `0..len` with `j + shift` in `0..len`, as `lo..hi`.
fn shifted_range(len: usize, shift: isize) -> (usize, usize) {
    let lo = (-shift).clamp(0, len as isize) as usize;
    let hi = (len as isize - shift).clamp(lo as isize, len as isize) as usize;
    (lo, hi)
}

/// Zeroes, in `b` planes of `h x w` output positions, those whose input
/// position (row + dy, column + dx) lies outside the image.
fn zero_outside(row: &mut [f32], b: usize, h: usize, w: usize, dy: isize, dx: isize) {
    let (ry, rx) = (dy.unsigned_abs().min(h), dx.unsigned_abs().min(w));
    for d in row.chunks_exact_mut(h * w).take(b) {
        if dy < 0 {
            d[..ry * w].fill(0.0);
        } else if dy > 0 {
            d[(h - ry) * w..].fill(0.0);
        }
        if dx != 0 {
            for line in d.chunks_exact_mut(w) {
                if dx < 0 {
                    line[..rx].fill(0.0);
                } else {
                    line[w - rx..].fill(0.0);
                }
            }
        }
    }
}

/// [`col2im_mut`] for any layer, element by element.
pub(crate) fn col2im(l: &ConvLayer, cols: &[f32], n: usize, s: usize, b: usize, dinp: &mut [f32]) {
    let (h, w, ho, wo, k, pad) = (l.h, l.w, l.ho, l.wo, l.k, l.pad as isize);
    let row_len = b * ho * wo;
    dinp.par_chunks_mut(n * h * w).enumerate().for_each(|(ci, planes)| {
        for ky in 0..k {
            for kx in 0..k {
                let row = &cols[((ci * k + ky) * k + kx) * row_len..][..row_len];
                if l.stride != 1 {
                    let st = l.stride;
                    let (lo, hi) = strided_cols(wo, w, st, kx as isize - pad);
                    if lo == hi {
                        continue;
                    }
                    let first = ((lo * st + kx) as isize - pad) as usize;
                    for e in 0..b {
                        let plane = &mut planes[(s + e) * h * w..][..h * w];
                        let src = &row[e * ho * wo..][..ho * wo];
                        for (oy, sr) in src.chunks_exact(wo).enumerate() {
                            let iy = (oy * st + ky) as isize - pad;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            let d = plane[iy as usize * w + first..][..(hi - lo - 1) * st + 1]
                                .iter_mut()
                                .step_by(st);
                            d.zip(&sr[lo..hi]).for_each(|(a, &v)| *a += v);
                        }
                    }
                    continue;
                }
                let (lo, hi) = strided_cols(wo, w, 1, kx as isize - pad);
                let off = (lo as isize + kx as isize - pad) as usize;
                for e in 0..b {
                    let plane = &mut planes[(s + e) * h * w..][..h * w];
                    let src = &row[e * ho * wo..][..ho * wo];
                    for oy in 0..ho {
                        let iy = oy as isize + ky as isize - pad;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let d = &mut plane[iy as usize * w + off..][..hi - lo];
                        for (a, v) in d.iter_mut().zip(&src[oy * wo + lo..oy * wo + hi]) {
                            *a += v;
                        }
                    }
                }
            }
        }
    });
}

/// 2x2 max-pool of CNHW `[c, n, ho, wo]` planes (odd edges dropped, as
/// PyTorch and candle do). No argmax is kept: [`pool_relu_backward`] finds
/// each window's first maximum again from the activations (one pass over
/// the windows instead of a second array to write and read).
pub(crate) fn pool_forward(l: &ConvLayer, n: usize, a: &[f32], out: &mut Vec<f32>) {
    let (ho, wo) = (l.ho, l.wo);
    let (ph, pw) = (ho / 2, wo / 2);
    out.resize(l.c_out * n * ph * pw, 0.0);
    out.par_chunks_mut(ph * pw).enumerate().for_each(|(plane, o)| {
        let src = &a[plane * ho * wo..][..ho * wo];
        for (py, orow) in o.chunks_exact_mut(pw.max(1)).take(ph).enumerate() {
            let (r0, r1) = (&src[2 * py * wo..][..2 * pw], &src[(2 * py + 1) * wo..][..2 * pw]);
            for ((v, t), b) in orow.iter_mut().zip(r0.chunks_exact(2)).zip(r1.chunks_exact(2)) {
                *v = t[0].max(t[1]).max(b[0].max(b[1]));
            }
        }
    });
}

/// The backward pass of [`pool_forward`] followed by the ReLU that produced
/// its input: `da` (resized, every element written) gets each pooled
/// gradient at its window's first maximum of `a` (row by row, the position
/// PyTorch's and candle's argmax pick) where that activation is positive,
/// and zero elsewhere. `a` is the post-ReLU activation, `pooled` its pooling.
pub(crate) fn pool_relu_backward(
    l: &ConvLayer,
    n: usize,
    dpooled: &[f32],
    a: &[f32],
    pooled: &[f32],
    da: &mut Vec<f32>,
) {
    let (ho, wo) = (l.ho, l.wo);
    let (ph, pw) = (ho / 2, wo / 2);
    da.resize(l.c_out * n * ho * wo, 0.0);
    da.par_chunks_mut(ho * wo).enumerate().for_each(|(plane, d)| {
        let g = &dpooled[plane * ph * pw..][..ph * pw];
        let m = &pooled[plane * ph * pw..][..ph * pw];
        let src = &a[plane * ho * wo..][..ho * wo];
        for py in 0..ph {
            let (top, bottom) = d[2 * py * wo..][..2 * wo].split_at_mut(wo);
            let (s0, s1) = (&src[2 * py * wo..][..wo], &src[(2 * py + 1) * wo..][..wo]);
            let windows = top
                .chunks_exact_mut(2)
                .zip(bottom.chunks_exact_mut(2))
                .zip(s0.chunks_exact(2).zip(s1.chunks_exact(2)))
                .zip(m[py * pw..][..pw].iter().zip(&g[py * pw..][..pw]));
            for (((t, b), (r0, r1)), (&best, &gi)) in windows {
                // The first of the four (row by row) equal to the max, as bit
                // masks on integers: the compiler kept the comparisons of a
                // `&&` / `if` version as data-dependent jumps, mispredicted
                // about once a window (a random position holds the max).
                let mask = |e: bool| (e as u32).wrapping_neg();
                let m0 = mask(r0[0] == best);
                let m1 = mask(r0[1] == best) & !m0;
                let m2 = mask(r1[0] == best) & !(m0 | m1);
                let m3 = !(m0 | m1 | m2);
                let gv = gi.to_bits() & mask(best > 0.0);
                t[0] = f32::from_bits(gv & m0);
                t[1] = f32::from_bits(gv & m1);
                b[0] = f32::from_bits(gv & m2);
                b[1] = f32::from_bits(gv & m3);
            }
            // An odd last column is in no window.
            top[2 * pw..].fill(0.0);
            bottom[2 * pw..].fill(0.0);
        }
        // An odd last row is in no window.
        d[2 * ph * wo..].fill(0.0);
    });
}

impl ConvNet {
    /// The widths of the dense layers, input (flattened features) first.
    fn dense_dims(&self) -> Vec<usize> {
        let mut d = vec![self.flat_dim()];
        d.extend(&self.hidden);
        d.push(self.output_dim);
        d
    }

    /// Slice forward pass. `x`: `[n, c·h·w]` in (channel, row, column)
    /// order. The output is `ws.output()`. Assumes `p` has this network's
    /// names and shapes.
    pub fn forward_fast(&self, p: &ParamSet, x: &[f32], n: usize, ws: &mut ConvWorkspace) -> Result<()> {
        let [c0, h0, w0] = self.input_shape;
        if x.len() != n * c0 * h0 * w0 {
            return Err(Error::Shape {
                what: "conv net input".into(),
                expected: vec![n, c0 * h0 * w0],
                got: vec![x.len()],
            });
        }
        let layers = self.conv_layers();
        ws.n = n;
        // NCHW -> CNHW.
        ws.x.resize(x.len(), 0.0);
        let hw = h0 * w0;
        for i in 0..n {
            for c in 0..c0 {
                ws.x[(c * n + i) * hw..][..hw].copy_from_slice(&x[(i * c0 + c) * hw..][..hw]);
            }
        }
        ws.conv.resize(layers.len(), Vec::new());
        ws.pooled.resize(layers.len(), Vec::new());
        for (li, l) in layers.iter().enumerate() {
            let wt = param(p, &format!("conv{}.weight", li + 1))?;
            let bias = param(p, &format!("conv{}.bias", li + 1))?;
            let (before, rest) = ws.conv.split_at_mut(li);
            let out = &mut rest[0];
            let inp: &[f32] = if li == 0 {
                &ws.x
            } else if layers[li - 1].pool {
                &ws.pooled[li - 1]
            } else {
                &before[li - 1]
            };
            let howo = l.ho * l.wo;
            ws.cols.resize(layers.len(), Vec::new());
            conv_forward(l, inp, n, wt, out, &mut ws.cols[li]);
            out.par_chunks_mut(n * howo).zip(bias).for_each(|(row, &bv)| {
                for v in row {
                    *v = (*v + bv).max(0.0);
                }
            });
            if l.pool {
                pool_forward(l, n, out, &mut ws.pooled[li]);
            }
        }
        // CNHW -> [n, c·h·w].
        let dims = self.dense_dims();
        let (last, feats): (ConvLayer, &[f32]) = match layers.last() {
            Some(l) => (
                *l,
                if l.pool {
                    &ws.pooled[layers.len() - 1]
                } else {
                    &ws.conv[layers.len() - 1]
                },
            ),
            None => return Err(Error::config("model.channels", "at least one conv block", "none")),
        };
        let (fc, fhw) = (last.c_out, dims[0] / last.c_out);
        ws.dense.resize(dims.len() - 1, Vec::new());
        let flat = &mut ws.dense[0];
        flat.resize(n * dims[0], 0.0);
        for i in 0..n {
            for c in 0..fc {
                flat[i * dims[0] + c * fhw..][..fhw].copy_from_slice(&feats[(c * n + i) * fhw..][..fhw]);
            }
        }
        for j in 0..dims.len() - 1 {
            let (din, dout) = (dims[j], dims[j + 1]);
            let wt = param(p, &format!("fc{}.weight", j + 1))?;
            let bias = param(p, &format!("fc{}.bias", j + 1))?;
            let last_layer = j + 2 == dims.len();
            let mut z = if last_layer {
                std::mem::take(&mut ws.out)
            } else {
                std::mem::take(&mut ws.dense[j + 1])
            };
            z.resize(n * dout, 0.0);
            matmul_nt(&ws.dense[j], wt, &mut z, n, dout, din, 1.0, false);
            for row in z.chunks_exact_mut(dout) {
                for (v, &bv) in row.iter_mut().zip(bias) {
                    *v += bv;
                    if !last_layer {
                        *v = v.max(0.0);
                    }
                }
            }
            if last_layer {
                ws.out = z;
            } else {
                ws.dense[j + 1] = z;
            }
        }
        Ok(())
    }

    /// Slice backward pass after [`ConvNet::forward_fast`] on the same `x`
    /// and `p`: `dout` is the loss gradient with respect to the outputs
    /// `[n, outputs]`; every gradient in `grads` is overwritten.
    pub fn backward_fast(
        &self,
        p: &ParamSet,
        dout: &[f32],
        ws: &mut ConvWorkspace,
        grads: &mut ParamSet,
    ) -> Result<()> {
        let n = ws.n;
        let layers = self.conv_layers();
        let dims = self.dense_dims();
        ws.delta.clear();
        ws.delta.extend_from_slice(&dout[..n * dims[dims.len() - 1]]);
        // Dense layers, last first.
        for j in (0..dims.len() - 1).rev() {
            let (din, dz) = (dims[j], dims[j + 1]);
            let wt = param(p, &format!("fc{}.weight", j + 1))?;
            matmul_tn(
                &ws.delta,
                &ws.dense[j],
                &mut grads.get_mut(&format!("fc{}.weight", j + 1))?.data,
                dz,
                din,
                n,
                1.0,
                false,
            );
            let gb = &mut grads.get_mut(&format!("fc{}.bias", j + 1))?.data;
            gb.fill(0.0);
            for row in ws.delta.chunks_exact(dz) {
                for (g, v) in gb.iter_mut().zip(row) {
                    *g += v;
                }
            }
            ws.delta_prev.resize(n * din, 0.0);
            matmul_nn(&ws.delta, wt, &mut ws.delta_prev, n, din, dz, 1.0, false);
            if j > 0 {
                // Through the ReLU of hidden layer j.
                for (d, &a) in ws.delta_prev.iter_mut().zip(&ws.dense[j]) {
                    if a <= 0.0 {
                        *d = 0.0;
                    }
                }
            }
            std::mem::swap(&mut ws.delta, &mut ws.delta_prev);
        }
        // [n, c·h·w] -> CNHW gradient of the last conv block's output.
        let Some(last) = layers.last() else {
            return Err(Error::config("model.channels", "at least one conv block", "none"));
        };
        let fhw = dims[0] / last.c_out;
        ws.dact.resize(n * dims[0], 0.0);
        for i in 0..n {
            for c in 0..last.c_out {
                ws.dact[(c * n + i) * fhw..][..fhw].copy_from_slice(&ws.delta[i * dims[0] + c * fhw..][..fhw]);
            }
        }
        for (li, l) in layers.iter().enumerate().rev() {
            let howo = l.ho * l.wo;
            // ws.dact: gradient of this layer's output (pooled when it pools), taken
            // through the pooling and the ReLU (the stored output is post-ReLU).
            let a = &ws.conv[li];
            if l.pool {
                pool_relu_backward(l, n, &ws.dact, a, &ws.pooled[li], &mut ws.dact_prev);
                std::mem::swap(&mut ws.dact, &mut ws.dact_prev);
            } else {
                relu_backward(&mut ws.dact, a);
            }
            let gb = &mut grads.get_mut(&format!("conv{}.bias", li + 1))?.data;
            gb.par_iter_mut()
                .zip(ws.dact.par_chunks(n * howo))
                .for_each(|(g, row)| *g = sum_f64(row) as f32);
            let wt = param(p, &format!("conv{}.weight", li + 1))?;
            let inp: &[f32] = if li == 0 {
                &ws.x
            } else if layers[li - 1].pool {
                &ws.pooled[li - 1]
            } else {
                &ws.conv[li - 1]
            };
            let need_dinp = li > 0;
            let gw = &mut grads.get_mut(&format!("conv{}.weight", li + 1))?.data;
            conv_backward(
                l,
                inp,
                n,
                wt,
                &ws.dact,
                gw,
                need_dinp.then_some(&mut ws.dact_prev),
                &mut ws.cols[li],
                &mut ws.dcols,
            );
            if need_dinp {
                std::mem::swap(&mut ws.dact, &mut ws.dact_prev);
            }
        }
        Ok(())
    }
}

/// `out` (CNHW `[c_out, n, ho, wo]`, resized) = the convolution of `inp`
/// (CNHW `[c_in, n, h, w]`) with `wt` `[c_out, c_in, k, k]`, no bias. 3x3
/// "same" layers take the direct path ([`conv_direct`], `cols` then keeps
/// the padded input), the others im2col + GEMM ([`conv_forward_im2col`]).
pub(crate) fn conv_forward(l: &ConvLayer, inp: &[f32], n: usize, wt: &[f32], out: &mut Vec<f32>, cols: &mut Vec<f32>) {
    if conv_direct::applies(l) {
        conv_direct::forward(l, inp, n, wt, out, cols);
    } else {
        conv_forward_im2col(l, inp, n, wt, out, cols);
    }
}

/// [`conv_forward`] by im2col + GEMM, in chunks of [`chunk_examples`];
/// `cols` keeps the last chunk's columns.
pub(crate) fn conv_forward_im2col(
    l: &ConvLayer,
    inp: &[f32],
    n: usize,
    wt: &[f32],
    out: &mut Vec<f32>,
    cols: &mut Vec<f32>,
) {
    let kk = l.c_in * l.k * l.k;
    let howo = l.ho * l.wo;
    out.resize(l.c_out * n * howo, 0.0);
    let b = chunk_examples(l, n);
    cols.resize(kk * b * howo, 0.0);
    let mut s = 0;
    while s < n {
        let bb = b.min(n - s);
        im2col(l, inp, n, s, bb, cols);
        // out[:, s..s+bb] = W [c_out, K] · cols [K, bb·howo], rows of out strided by n·howo.
        // SAFETY: out has c_out rows of n·howo; columns s·howo..(s+bb)·howo are in range;
        // W is [c_out, kk]; cols holds kk rows of bb·howo.
        unsafe {
            gemm_blocked(
                l.c_out,
                bb * howo,
                kk,
                out.as_mut_ptr().add(s * howo),
                (n * howo) as isize,
                1,
                wt.as_ptr(),
                kk as isize,
                1,
                cols.as_ptr(),
                (bb * howo) as isize,
                1,
                1.0,
                false,
            );
        }
        s += bb;
    }
}

/// The backward pass of [`conv_forward`] on the same `inp` and `cols`:
/// `dz` is the gradient of its output (CNHW); writes `gw` (overwritten) and,
/// when given, `dinp` (resized and overwritten, CNHW like `inp`). `dcols` is scratch.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_backward(
    l: &ConvLayer,
    inp: &[f32],
    n: usize,
    wt: &[f32],
    dz: &[f32],
    gw: &mut [f32],
    dinp: Option<&mut Vec<f32>>,
    cols: &mut Vec<f32>,
    dcols: &mut Vec<f32>,
) {
    if conv_direct::applies(l) {
        conv_direct::backward(l, inp, cols, n, wt, dz, gw, dinp, dcols);
    } else {
        conv_backward_im2col(l, inp, n, wt, dz, gw, dinp, cols, dcols);
    }
}

/// [`conv_backward`] by im2col + GEMM, after [`conv_forward_im2col`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_backward_im2col(
    l: &ConvLayer,
    inp: &[f32],
    n: usize,
    wt: &[f32],
    dz: &[f32],
    gw: &mut [f32],
    mut dinp: Option<&mut Vec<f32>>,
    cols: &mut Vec<f32>,
    dcols: &mut Vec<f32>,
) {
    let kk = l.c_in * l.k * l.k;
    let howo = l.ho * l.wo;
    if let Some(d) = dinp.as_deref_mut() {
        d.clear();
        d.resize(l.c_in * n * l.h * l.w, 0.0);
        // Only grown: the product below writes every value before col2im
        // reads it, so a longer buffer from another layer needs no refill.
        let len = kk * chunk_examples(l, n) * howo;
        if dcols.len() < len {
            dcols.resize(len, 0.0);
        }
    }
    let b = chunk_examples(l, n);
    cols.resize(kk * b * howo, 0.0);
    let mut gwt = vec![0f32; kk * l.c_out];
    let mut s = 0;
    while s < n {
        let bb = b.min(n - s);
        if bb < n {
            // One chunk of several: recompute its columns (the
            // forward pass keeps only the last chunk's).
            im2col(l, inp, n, s, bb, cols);
        }
        // dWᵀ [K, c_out] += (dZ[:, s..s+bb] · colsᵀ)ᵀ into gwt, which is
        // column-major in (c_out, K): the GEMM then packs dZ's c_out rows
        // instead of the K rows of cols (for LeNet-5's second layer 16 x
        // 12,800 values instead of 150 x 12,800; that packing had been a
        // fifth of the training step).
        // SAFETY: dz has c_out rows of n·howo (chunk columns in range);
        // cols holds kk rows of bb·howo, read transposed; gwt holds kk·c_out.
        unsafe {
            gemm_blocked(
                l.c_out,
                kk,
                bb * howo,
                gwt.as_mut_ptr(),
                1,
                l.c_out as isize,
                dz.as_ptr().add(s * howo),
                (n * howo) as isize,
                1,
                cols.as_ptr(),
                1,
                (bb * howo) as isize,
                1.0,
                s > 0,
            );
        }
        if let Some(d) = dinp.as_deref_mut() {
            // dcols [K, bb·howo] = Wᵀ · dZ[:, s..s+bb].
            // SAFETY: W [c_out, kk] read transposed; dz chunk as above; dcols holds kk·bb·howo.
            unsafe {
                gemm_blocked(
                    kk,
                    bb * howo,
                    l.c_out,
                    dcols.as_mut_ptr(),
                    (bb * howo) as isize,
                    1,
                    wt.as_ptr(),
                    1,
                    kk as isize,
                    dz.as_ptr().add(s * howo),
                    (n * howo) as isize,
                    1,
                    1.0,
                    false,
                );
            }
            col2im_mut(l, dcols, n, s, bb, d);
        }
        s += bb;
    }
    for (co, g) in gw.chunks_exact_mut(kk).enumerate() {
        for (r, v) in g.iter_mut().enumerate() {
            *v = gwt[r * l.c_out + co];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The strided column range against a search over every column, for
    /// strides 1-3, kernel offsets and widths around the edges.
    #[test]
    fn strided_cols_match_a_search() {
        for w in 1..9usize {
            for stride in 1..4usize {
                for shift in -3isize..4 {
                    for wo in 0..9usize {
                        let inside: Vec<usize> = (0..wo)
                            .filter(|&ox| (0..w as isize).contains(&(ox as isize * stride as isize + shift)))
                            .collect();
                        let (lo, hi) = strided_cols(wo, w, stride, shift);
                        assert!(
                            lo <= hi && hi <= wo.max(lo),
                            "w {w} stride {stride} shift {shift} wo {wo}"
                        );
                        assert_eq!(
                            (lo..hi).collect::<Vec<_>>(),
                            inside,
                            "w {w} stride {stride} shift {shift} wo {wo}"
                        );
                    }
                }
            }
        }
    }

    /// Strided im2col and col2im against the definition, element by element,
    /// on a 3x3 stride-2 pad-1 layer and a 1x1 stride-2 one (odd and even sizes).
    #[test]
    fn strided_im2col_and_col2im_match_the_definition() {
        for &(k, pad, h) in &[(3usize, 1usize, 7usize), (3, 1, 8), (1, 0, 7), (1, 0, 6)] {
            let (c_in, n, st) = (2usize, 3usize, 2usize);
            let ho = (h + 2 * pad - k) / st + 1;
            let l = ConvLayer {
                c_in,
                c_out: 1,
                h,
                w: h,
                ho,
                wo: ho,
                k,
                pad,
                stride: st,
                pool: false,
            };
            let inp: Vec<f32> = (0..c_in * n * h * h).map(|i| i as f32 + 1.0).collect();
            let (s, b) = (1, 2);
            let row_len = b * ho * ho;
            let mut cols = vec![f32::NAN; c_in * k * k * row_len];
            im2col(&l, &inp, n, s, b, &mut cols);
            let mut back = vec![0f32; inp.len()];
            let mut expect_back = vec![0f32; inp.len()];
            for ci in 0..c_in {
                for ky in 0..k {
                    for kx in 0..k {
                        for e in 0..b {
                            for oy in 0..ho {
                                for ox in 0..ho {
                                    let r = (ci * k + ky) * k + kx;
                                    let at = r * row_len + (e * ho + oy) * ho + ox;
                                    let (iy, ix) = (
                                        (oy * st + ky) as isize - pad as isize,
                                        (ox * st + kx) as isize - pad as isize,
                                    );
                                    let inside = iy >= 0 && ix >= 0 && iy < h as isize && ix < h as isize;
                                    let src = (ci * n + s + e) * h * h + (iy.max(0) as usize) * h + ix.max(0) as usize;
                                    let want = if inside { inp[src] } else { 0.0 };
                                    assert_eq!(cols[at], want, "k {k} h {h} row {r} e {e} ({oy}, {ox})");
                                    if inside {
                                        expect_back[src] += cols[at];
                                    }
                                }
                            }
                        }
                    }
                }
            }
            col2im(&l, &cols, n, s, b, &mut back);
            assert_eq!(back, expect_back, "col2im, k {k} h {h}");
        }
    }
}
