//! Direct 3x3 "same" convolution on padded CNHW planes, forward and
//! backward, for the CPU fast paths of [`super::conv::ConvNet`] and
//! [`super::resnet::ResNet`] (dispatched from [`super::conv_fast`]).
//!
//! Why by hand: im2col + GEMM (the path it replaces for these layers)
//! copies every input 9 times and then repacks the copy inside the GEMM;
//! on a 2-core machine the GEMMs alone ran at 50-107 GFLOP/s, slower than
//! PyTorch's whole step (measured on the 2-core reference machine). This is the
//! "implicit GEMM" / direct convolution oneDNN uses, reduced to one register
//! tile: no copy larger than one padded activation, no packing.
//!
//! Layout ("shared padding"): each channel is one plane holding the batch's
//! images one after another, each row followed by one zero column and each
//! image by one zero row, so a row's right pad is the next row's left pad
//! and an image's bottom pad is the next image's top pad. A zero guard of
//! `wp + 1` values sits before and after. With `wp = w + 1`, pixel
//! `(e, y, x)` lives at `guard + (e·(h+1) + y)·wp + x`, and its 3x3
//! neighbour `(dy, dx)` at that index plus `dy·wp + dx`: one constant offset
//! per tap for the whole batch. Outputs are computed at every padded
//! position `q` (the pad positions are discarded), which costs
//! `(h+1)(w+1)/(hw)` of the useful work: 7% at 28x28, 15% at 14x14, 31% at
//! 7x7.
//!
//! Kernels, with `K = c_in·9` for the forward pass:
//! - forward: `out[co, q] = Σ_{ci,t} W[co, ci, t] · in_p[ci, q + off_t]`,
//!   a register tile of [`MR`] output channels × 2 vectors of positions (16
//!   with AVX2, [`NR`] with AVX-512; 12 accumulators, per step 2 loads, 6
//!   broadcasts, 12 FMAs); with AVX-512 and channels a multiple of 8, tiles
//!   of [`MR8`] channels (16 accumulators), so 16, 32 and 64 channels fill
//!   every tile (6 + 6 + 4 left a third of one 16-channel tile's rows to a
//!   narrower kernel). Measured on a 2-core AVX-512 machine, 9 interleaved
//!   rounds of the training benches: ResNet-20 and Conv-4 faster in 6 of 9
//!   each, by a median of 2%;
//! - input gradient: the same kernel on the padded output gradient with
//!   `W[co, ci, 8 − t]` (the flipped kernel: `−off_t = off_{8−t}`);
//! - weight gradient: `dW[co, ci, t] = Σ_q dz_p[co, q] · in_p[ci, q + off_t]`,
//!   [`WR`] output channels × 3 taps of one kernel row in 12 vector
//!   accumulators over chunks of [`QC`] positions, lanes summed at the end;
//! - layers with at least 16 input and output channels: Winograd F(2x2, 3x3) ([`winograd`]) for the forward
//!   pass and the input gradient, and at 32 or more channels also for the
//!   weight gradient: 16 multiplications per 2x2 outputs instead of 36, on
//!   the same padded planes and (forward, input gradient) the same register
//!   tile. On a 2-core AMD EPYC (Zen 4, AVX-512), batch 128 (the speed test
//!   below), direct against Winograd: 64 -> 64 at 28x28 forward 39 -> 23-25
//!   ms, input gradient 38 -> 21-25 ms, weight gradient 49 -> 27-31 ms;
//!   128 -> 128 at 14x14 forward 40-41 -> 22 ms, weight gradient 58-60 ->
//!   25-27 ms. `train_step_conv_b128/conv4_fast`, interleaved runs: median
//!   355 samples/s direct (`LTK_CONV_WINOGRAD=off`), 461 with the forward
//!   and input gradient through Winograd (6 runs each), about 620 with the
//!   weight gradient too (against 495, 6 runs each).
//!
//! The kernels are chosen at run time: AVX-512F (tiles of 32 positions),
//! else AVX2 + FMA (16), else a portable loop with the same order of work.
//! `LTK_CONV_SIMD=avx2|portable` caps the choice (to compare them on one
//! machine), as `LTK_SIMD` caps every kernel of the crate. Tests compare
//! every one the machine has with the im2col path (which is itself tested
//! against candle's autodiff).

use rayon::prelude::*;

use super::conv::ConvLayer;

mod winograd;

/// Output channels per register tile of the forward and input-gradient
/// passes; a last block of at most 4 channels takes a 4-channel tile.
const MR: usize = 6;
/// Output channels per register tile with AVX-512 when they are a multiple
/// of 8 (16 accumulators of the 32 registers): no part-empty tile at 16, 32
/// or 64 channels.
const MR8: usize = 8;
/// Rows of the largest tile.
const TILE_ROWS: usize = MR8;
/// Padded positions per register tile, at most: 2 vectors, 16 positions
/// with AVX2 (6 x 16 keeps the 12 accumulators, 2 input vectors and a
/// broadcast in the 16 AVX registers; a 4 x 24 tile made the compiler
/// spill), 32 with AVX-512.
const NR: usize = 32;
/// Lanes of the weight-gradient partial sums (the widest vector).
const LANES: usize = 16;
/// Output channels per tile of the weight-gradient pass.
const WR: usize = 4;
/// Positions per parallel task of the forward and input-gradient passes.
const STRIP: usize = NR * 12;
/// Positions per chunk of the weight-gradient pass (its rows stay in L1).
const QC: usize = 512;
/// Taps of a 3x3 kernel.
const TAPS: usize = 9;
/// Fewer input channels than this stay on im2col (its 9-row expansion is
/// small there, and the tile would reload its accumulators too often).
const MIN_C_IN: usize = 4;
/// Layers with at least [`WIDE_C_IN`] input channels on maps smaller than
/// this (pixels) stay on im2col: the direct weight-gradient tiles run over
/// too few pixels per plane there. Measured on VGG-16 at 32x32x3, batch 128,
/// 2-core AMD EPYC (AVX2), `cargo bench --bench train_throughput --
/// train_step_cifar_b128`: 20.6 samples/s with every such layer direct,
/// 42.4 with the 4x4 and 2x2 maps on im2col, 48.9 with the 8x8 ones too, 45.2
/// with 16x16 as well; ResNet-20 (at most 64 channels) keeps its direct path.
/// The bound lies between VGG's 8x8 maps (im2col) and Conv-4's 14x14 ones
/// at 28x28 inputs (128 -> 128 channels, direct): on a 2-core AMD EPYC
/// (Zen 4, AVX-512), `train_step_conv_b128/conv4_fast`, 12 interleaved runs
/// each, median 332 samples/s with that layer direct against 305 on im2col
/// (the module's speed test: 129 ms against 165 ms per batch-128 layer
/// forward and backward).
const MIN_WIDE_MAP: usize = 128;
/// See [`MIN_WIDE_MAP`].
const WIDE_C_IN: usize = 128;

/// Whether `l` takes this path: 3x3, padding 1, stride 1, output the size
/// of the input, at least [`MIN_C_IN`] input channels, and not a wide layer
/// on a small map ([`MIN_WIDE_MAP`]).
pub(crate) fn applies(l: &ConvLayer) -> bool {
    l.k == 3
        && l.pad == 1
        && l.stride == 1
        && l.ho == l.h
        && l.wo == l.w
        && l.c_in >= MIN_C_IN
        && l.c_out > 0
        && l.h > 0
        && l.w > 0
        && (l.h * l.w >= MIN_WIDE_MAP || l.c_in < WIDE_C_IN)
}

/// The padded geometry of a batch of `n` images of `h x w`.
#[derive(Clone, Copy, Debug)]
struct Geom {
    n: usize,
    h: usize,
    w: usize,
    /// Row length with its pad column, `w + 1`.
    wp: usize,
    /// Rows per image with the pad row, `h + 1`.
    hp: usize,
    /// Zeros before the first image (and at least as many after the last).
    guard: usize,
    /// Padded positions of the batch, `n·hp·wp`.
    q: usize,
    /// `q` rounded up to a whole number of tiles.
    qpad: usize,
    /// Values per channel plane, `guard + qpad + guard`.
    plane: usize,
}

impl Geom {
    fn new(l: &ConvLayer, n: usize) -> Self {
        let (wp, hp) = (l.w + 1, l.h + 1);
        let guard = wp + 1;
        let q = n * hp * wp;
        let qpad = q.div_ceil(NR) * NR;
        Self {
            n,
            h: l.h,
            w: l.w,
            wp,
            hp,
            guard,
            q,
            qpad,
            plane: guard + qpad + guard,
        }
    }

    /// Offset of tap `t = 3·ky + kx` from the output position.
    fn offsets(&self) -> [isize; TAPS] {
        let mut o = [0isize; TAPS];
        for (t, v) in o.iter_mut().enumerate() {
            *v = (t / 3) as isize * self.wp as isize - self.wp as isize + (t % 3) as isize - 1;
        }
        o
    }
}

/// Writes `rows` padded planes of CNHW `src` (`c` real channels `[c, n, h, w]`;
/// rows past `c` are zero) to `dst`, overwriting it.
fn pad_into(g: &Geom, src: &[f32], c: usize, rows: usize, dst: &mut Vec<f32>) {
    dst.resize(rows * g.plane, 0.0);
    let hw = g.h * g.w;
    dst.par_chunks_mut(g.plane).enumerate().for_each(|(r, d)| {
        if r >= c {
            d.fill(0.0);
            return;
        }
        d[..g.guard].fill(0.0);
        for e in 0..g.n {
            let img = &src[(r * g.n + e) * hw..][..hw];
            let base = g.guard + e * g.hp * g.wp;
            for (y, line) in img.chunks_exact(g.w).enumerate() {
                let o = base + y * g.wp;
                d[o..o + g.w].copy_from_slice(line);
                d[o + g.w] = 0.0;
            }
            d[base + g.h * g.wp..base + g.hp * g.wp].fill(0.0);
        }
        d[g.guard + g.q..].fill(0.0);
    });
}

/// The runs of image positions in padded positions `q0..q1`:
/// `(first q, end q, dense index of the first)`, dense being `(e·h + y)·w + x`.
fn segments(g: &Geom, q0: usize, q1: usize, out: &mut Vec<(usize, usize, usize)>) {
    out.clear();
    let img = g.hp * g.wp;
    let q1 = q1.min(g.q);
    let mut q = q0;
    while q < q1 {
        let (e, r) = (q / img, q % img);
        let (y, x) = (r / g.wp, r % g.wp);
        if y >= g.h {
            q += img - r;
        } else if x >= g.w {
            q += g.wp - x;
        } else {
            let end = (q + g.w - x).min(q1);
            out.push((q, end, (e * g.h + y) * g.w + x));
            q = end;
        }
    }
}

/// A block of output rows of one register tile.
#[derive(Clone, Copy, Debug)]
struct Block {
    /// First row.
    start: usize,
    /// Rows of the tile ([`MR8`], [`MR`] or 4).
    size: usize,
    /// Real rows (the others are zero weights).
    rows: usize,
    /// Offset of its packed weights.
    at: usize,
}

/// The tiles covering `m` rows: with AVX-512 and `m` a multiple of 8,
/// blocks of [`MR8`]; otherwise blocks of [`MR`], the rest in one tile of 4
/// when it fits, else of [`MR`].
fn blocks(m: usize, k_rows: usize, simd: Simd) -> Vec<Block> {
    let mut out = Vec::new();
    let (mut start, mut at) = (0, 0);
    let eights = simd == Simd::Avx512 && m % MR8 == 0;
    while start < m {
        let left = m - start;
        let size = if eights {
            MR8
        } else if left >= MR || left > 4 {
            MR
        } else {
            4
        };
        let rows = size.min(left);
        out.push(Block { start, size, rows, at });
        start += rows;
        at += size * k_rows * TAPS;
    }
    out
}

/// Weights `[c_out, c_in, 3, 3]` packed for the tile kernel, per block of
/// [`blocks`] as `[k_row][tap][size]`. Forward: blocks of output channels,
/// rows the input channels. `flip`: blocks of input channels, rows the
/// output channels, taps reversed (the input-gradient pass). Missing
/// channels of the last block are zero.
fn pack(wt: &[f32], c_out: usize, c_in: usize, flip: bool, simd: Simd) -> (Vec<Block>, Vec<f32>) {
    let (m, k_rows) = if flip { (c_in, c_out) } else { (c_out, c_in) };
    let plan = blocks(m, k_rows, simd);
    let len = plan.last().map_or(0, |b| b.at + b.size * k_rows * TAPS);
    let mut p = vec![0.0; len];
    for b in &plan {
        for r in 0..k_rows {
            for t in 0..TAPS {
                for i in 0..b.rows {
                    let j = b.start + i;
                    let (co, ci, tap) = if flip { (r, j, TAPS - 1 - t) } else { (j, r, t) };
                    p[b.at + (r * TAPS + t) * b.size + i] = wt[(co * c_in + ci) * TAPS + tap];
                }
            }
        }
    }
    (plan, p)
}

/// A raw pointer that rayon tasks writing disjoint elements may share.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
// SAFETY: every user writes only elements no other task writes (see conv_tiles).
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The pointer (a method, so closures capture the wrapper, not its field).
    fn ptr(&self) -> *mut f32 {
        self.0
    }
}

/// The kernels' instruction set, detected at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
enum Simd {
    /// Plain loops (any target).
    Portable,
    /// AVX2 + FMA: 256-bit vectors.
    Avx2,
    /// AVX-512F: 512-bit vectors.
    Avx512,
}

impl Simd {
    /// The best the CPU has, capped by `LTK_SIMD` ([`crate::simd::max_level`])
    /// and by `LTK_CONV_SIMD` (read once).
    fn detect() -> Self {
        static LEVEL: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
        *LEVEL.get_or_init(|| {
            let conv = crate::env::choice("LTK_CONV_SIMD", &[("avx2", 1), ("portable", 0)], 2);
            match (Self::best(), crate::simd::max_level().min(conv)) {
                (_, 0) => Simd::Portable,
                (Simd::Avx512, 1) => Simd::Avx2,
                (best, _) => best,
            }
        })
    }

    /// The best the CPU has.
    fn best() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Simd::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Simd::Avx2;
            }
        }
        Simd::Portable
    }

    /// Positions per register tile of the forward kernel.
    fn width(self) -> usize {
        if self == Simd::Avx512 {
            NR
        } else {
            NR / 2
        }
    }
}

/// `dst [m, n·h·w]` (dense CNHW, every element overwritten) =
/// `Σ_{r,t} wpk[·, r, t] · src[r, q + off_t]` over the `k_rows` padded planes
/// of `src`, `(plan, wpk)` from [`pack`].
fn conv_tiles(
    g: &Geom,
    src: &[f32],
    k_rows: usize,
    (plan, wpk): &(Vec<Block>, Vec<f32>),
    m: usize,
    dst: &mut [f32],
    simd: Simd,
) {
    let nhw = g.n * g.h * g.w;
    assert!(src.len() >= k_rows * g.plane && dst.len() >= m * nhw);
    assert!(plan
        .iter()
        .all(|b| b.start + b.rows <= m && b.at + b.size * k_rows * TAPS <= wpk.len()));
    let offs = g.offsets();
    let out = SharedMut(dst.as_mut_ptr());
    let strips = g.qpad.div_ceil(STRIP);
    (0..strips).into_par_iter().for_each_init(Vec::new, |segs, s| {
        let (q0, q1) = (s * STRIP, ((s + 1) * STRIP).min(g.qpad));
        segments(g, q0, q1, segs);
        let mut buf = [0f32; TILE_ROWS * NR];
        for b in plan {
            let w = &wpk[b.at..][..b.size * k_rows * TAPS];
            let tw = simd.width();
            for tq in (q0..q1).step_by(tw) {
                let first = segs.partition_point(|sg| sg.1 <= tq);
                if first == segs.len() || segs[first].0 >= tq + tw {
                    continue; // only pad positions
                }
                // SAFETY: tq + tw <= qpad (qpad and STRIP are multiples of NR, a multiple
                // of tw), so every read src[r·plane + guard + tq + off + j] (|off| <= guard,
                // j < tw, r < k_rows) lies in src (checked above).
                unsafe {
                    tile(
                        simd,
                        b.size,
                        src.as_ptr().add(g.guard + tq),
                        g.plane,
                        &offs,
                        k_rows,
                        w.as_ptr(),
                        buf.as_mut_ptr(),
                        NR,
                    )
                };
                for &(a, e, d) in &segs[first..] {
                    if a >= tq + tw {
                        break;
                    }
                    let (lo, hi) = (a.max(tq), e.min(tq + tw));
                    let d = d + (lo - a);
                    for i in 0..b.rows {
                        // SAFETY: (b.start + i) < m and d + (hi − lo) <= nhw: in dst. Each dense
                        // position belongs to one q, each q to one strip, so no two tasks
                        // write the same element.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                buf.as_ptr().add(i * NR + lo - tq),
                                out.ptr().add((b.start + i) * nhw + d),
                                hi - lo,
                            );
                        }
                    }
                }
            }
        }
    });
}

/// The AVX2 and AVX-512 kernels: one body per kernel, instantiated for each
/// vector type (`$w` floats per vector).
macro_rules! simd_kernels {
    ($feature:literal, $tile:ident, $wtile:ident, $w:literal, $zero:ident, $load:ident, $store:ident,
     $set1:ident, $fmadd:ident, $add:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        unsafe fn $tile<const M: usize, const T: usize>(
            x: *const f32,
            plane: usize,
            offs: &[isize; T],
            k_rows: usize,
            w: *const f32,
            out: *mut f32,
            ld: usize,
        ) {
            use std::arch::x86_64::*;
            let mut a = [[$zero(); 2]; M];
            for r in 0..k_rows {
                let xr = x.add(r * plane);
                let wr = w.add(r * T * M);
                for (t, &o) in offs.iter().enumerate() {
                    let p = xr.offset(o);
                    let x0 = $load(p);
                    let x1 = $load(p.add($w));
                    let wt = wr.add(t * M);
                    for (i, ai) in a.iter_mut().enumerate() {
                        let b = $set1(*wt.add(i));
                        ai[0] = $fmadd(x0, b, ai[0]);
                        ai[1] = $fmadd(x1, b, ai[1]);
                    }
                }
            }
            for (i, ai) in a.iter().enumerate() {
                for (j, v) in ai.iter().enumerate() {
                    $store(out.add(i * ld + $w * j), *v);
                }
            }
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        unsafe fn $wtile(dz: *const f32, plane: usize, x: *const f32, len: usize, acc: &mut [f32]) {
            use std::arch::x86_64::*;
            let ap = acc.as_mut_ptr();
            let mut a = [[$zero(); 3]; WR];
            let mut v = 0;
            while v < len {
                let x0 = $load(x.add(v));
                let x1 = $load(x.add(v + 1));
                let x2 = $load(x.add(v + 2));
                for (i, ai) in a.iter_mut().enumerate() {
                    let d = $load(dz.add(i * plane + v));
                    ai[0] = $fmadd(d, x0, ai[0]);
                    ai[1] = $fmadd(d, x1, ai[1]);
                    ai[2] = $fmadd(d, x2, ai[2]);
                }
                v += $w;
            }
            for (i, ai) in a.iter().enumerate() {
                for (kx, v) in ai.iter().enumerate() {
                    let p = ap.add((i * 3 + kx) * LANES);
                    $store(p, $add($load(p), *v));
                }
            }
        }
    };
}

simd_kernels!(
    "avx2,fma",
    tile_avx2,
    wtile_avx2,
    8,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_add_ps
);
simd_kernels!(
    "avx512f",
    tile_avx512,
    wtile_avx512,
    16,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_add_ps
);

/// One register tile of `size` rows ([`MR8`], [`MR`] or 4) and `simd.width()`
/// positions: `out[i·ld + j] = Σ_{r<k_rows, t<T} w[r][t][i] · x[r·plane + off_t + j]`
/// (`T` = [`TAPS`] for the direct convolution, 1 for a plain product).
///
/// # Safety
/// `x.offset(r·plane + off_t + j)` must be readable for r < k_rows, every
/// tap, j < `simd.width()`; `w` must hold `k_rows·T·size` values.
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn tile<const T: usize>(
    simd: Simd,
    size: usize,
    x: *const f32,
    plane: usize,
    offs: &[isize; T],
    k_rows: usize,
    w: *const f32,
    out: *mut f32,
    ld: usize,
) {
    #[cfg(target_arch = "x86_64")]
    match (simd, size) {
        (Simd::Avx512, MR8) => return tile_avx512::<MR8, T>(x, plane, offs, k_rows, w, out, ld),
        (Simd::Avx512, MR) => return tile_avx512::<MR, T>(x, plane, offs, k_rows, w, out, ld),
        (Simd::Avx512, _) => return tile_avx512::<4, T>(x, plane, offs, k_rows, w, out, ld),
        (Simd::Avx2, MR) => return tile_avx2::<MR, T>(x, plane, offs, k_rows, w, out, ld),
        (Simd::Avx2, _) => return tile_avx2::<4, T>(x, plane, offs, k_rows, w, out, ld),
        (Simd::Portable, _) => {}
    }
    let _ = simd;
    const W: usize = NR / 2;
    let mut acc = [[0f32; W]; TILE_ROWS];
    for r in 0..k_rows {
        let xr = x.add(r * plane);
        let wr = w.add(r * T * size);
        for (t, &o) in offs.iter().enumerate() {
            let xs = std::slice::from_raw_parts(xr.offset(o), W);
            for (i, a) in acc.iter_mut().take(size).enumerate() {
                let wv = *wr.add(t * size + i);
                for (av, &xv) in a.iter_mut().zip(xs) {
                    *av = wv.mul_add(xv, *av);
                }
            }
        }
    }
    for (i, a) in acc.iter().take(size).enumerate() {
        std::ptr::copy_nonoverlapping(a.as_ptr(), out.add(i * ld), W);
    }
}

/// `gw [c_out, c_in, 3, 3]` (overwritten) `= Σ_q dz_p[co, q] · in_p[ci, q + off_t]`,
/// `dz_p` holding `c_out` rounded up to [`WR`] planes (the extra ones zero).
fn wgrad(g: &Geom, dz_p: &[f32], c_out: usize, in_p: &[f32], c_in: usize, gw: &mut [f32], simd: Simd) {
    let blocks = c_out.div_ceil(WR);
    assert!(dz_p.len() >= blocks * WR * g.plane && in_p.len() >= c_in * g.plane && gw.len() >= c_out * c_in * TAPS);
    // Per block, per (ci, kernel row): WR x 3 taps x LANES lanes of partial sums.
    let per_row = WR * 3 * LANES;
    let per_block = c_in * 3 * per_row;
    // Tasks: groups of blocks and, when there are more threads than blocks,
    // also ranges of positions, each with its own partial sums.
    let threads = rayon::current_num_threads().max(1);
    let groups = threads.min(blocks);
    let blocks_per = blocks.div_ceil(groups);
    let groups = blocks.div_ceil(blocks_per);
    let splits = (threads / groups).max(1);
    let span = (g.qpad / LANES).div_ceil(splits) * LANES;
    // Per split: `groups` chunks of `blocks_per` blocks (the last may be short of real blocks).
    let whole = groups * blocks_per * per_block;
    let mut part = vec![0f32; splits * whole];
    part.par_chunks_mut(blocks_per * per_block)
        .enumerate()
        .for_each(|(task, pg)| {
            let (split, gi) = (task / groups, task % groups);
            let mut qa = split * span;
            let q_end = ((split + 1) * span).min(g.qpad);
            while qa < q_end {
                let len = QC.min(q_end - qa);
                for (bi, pb) in pg.chunks_mut(per_block).enumerate() {
                    let b = gi * blocks_per + bi;
                    if b >= blocks {
                        break;
                    }
                    let dz = dz_p[b * WR * g.plane + g.guard + qa..].as_ptr();
                    for ci in 0..c_in {
                        for ky in 0..3 {
                            // Tap (ky, kx) reads in_p at q + (ky − 1)·wp + kx − 1.
                            let x = in_p[ci * g.plane + g.guard + qa + ky * g.wp - g.wp - 1..].as_ptr();
                            let acc = &mut pb[(ci * 3 + ky) * per_row..][..per_row];
                            // SAFETY: len is a multiple of LANES (qpad, span and QC are) and
                            // qa + len <= qpad: the dz reads (WR planes from block b, which
                            // dz_p holds) end at guard + qpad, the x reads at
                            // guard + qpad + wp < plane (guard = wp + 1).
                            unsafe { wtile(simd, dz, g.plane, x, len, acc) };
                        }
                    }
                }
                qa += len;
            }
        });
    for co in 0..c_out {
        let (b, i) = (co / WR, co % WR);
        for ci in 0..c_in {
            for ky in 0..3 {
                let at = b * per_block + (ci * 3 + ky) * per_row + i * 3 * LANES;
                for kx in 0..3 {
                    gw[(co * c_in + ci) * TAPS + ky * 3 + kx] = (0..splits)
                        .map(|sp| part[sp * whole + at + kx * LANES..][..LANES].iter().sum::<f32>())
                        .sum();
                }
            }
        }
    }
}

/// `acc[(i·3 + kx)·LANES + lane] += Σ_{v ≡ lane (mod w), v < len} dz[i·plane + v] · x[v + kx]`
/// with `w` the vector width (lanes past it untouched). The chunk is summed
/// from zero and then added, so no f32 chain runs longer than `len / w` terms.
///
/// # Safety
/// `dz.add(i·plane + v)` for i < WR and `x.add(v + kx)` for kx < 3 must be
/// readable for v < len; `len` a multiple of [`LANES`].
#[inline]
unsafe fn wtile(simd: Simd, dz: *const f32, plane: usize, x: *const f32, len: usize, acc: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    match simd {
        Simd::Avx512 => return wtile_avx512(dz, plane, x, len, acc),
        Simd::Avx2 => return wtile_avx2(dz, plane, x, len, acc),
        Simd::Portable => {}
    }
    let _ = simd;
    let mut part = [0f32; WR * 3 * 8];
    for v in (0..len).step_by(8) {
        for l in 0..8 {
            for i in 0..WR {
                let d = *dz.add(i * plane + v + l);
                for kx in 0..3 {
                    let a = &mut part[(i * 3 + kx) * 8 + l];
                    *a = d.mul_add(*x.add(v + l + kx), *a);
                }
            }
        }
    }
    for (j, p) in part.chunks_exact(8).enumerate() {
        for (a, v) in acc[j * LANES..][..8].iter_mut().zip(p) {
            *a += v;
        }
    }
}

/// Forward pass of a layer that [`applies`]: `out` (CNHW `[c_out, n, h, w]`,
/// resized and overwritten) = `inp` (CNHW `[c_in, n, h, w]`) convolved with
/// `wt [c_out, c_in, 3, 3]`; `inp_p` keeps the padded input for [`backward`].
pub(crate) fn forward(l: &ConvLayer, inp: &[f32], n: usize, wt: &[f32], out: &mut Vec<f32>, inp_p: &mut Vec<f32>) {
    forward_with(l, inp, n, wt, out, inp_p, Simd::detect());
}

fn forward_with(
    l: &ConvLayer,
    inp: &[f32],
    n: usize,
    wt: &[f32],
    out: &mut Vec<f32>,
    inp_p: &mut Vec<f32>,
    simd: Simd,
) {
    let g = Geom::new(l, n);
    pad_into(&g, inp, l.c_in, l.c_in, inp_p);
    out.resize(l.c_out * n * l.h * l.w, 0.0);
    if winograd::applies(l) {
        winograd::conv(&g, inp_p, wt, l.c_out, l.c_in, false, out, simd);
    } else {
        let wpk = pack(wt, l.c_out, l.c_in, false, simd);
        conv_tiles(&g, inp_p, l.c_in, &wpk, l.c_out, out, simd);
    }
}

/// Backward pass of [`forward`] with its `inp_p`: `dz` is the gradient of
/// its output (CNHW); writes `gw` (overwritten) and, when given, `dinp`
/// (resized and overwritten, CNHW). `dz_p` is scratch. `inp_p` is padded
/// again from `inp` when its length is not this layer's (a forward pass of
/// another batch size ran in between).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    l: &ConvLayer,
    inp: &[f32],
    inp_p: &mut Vec<f32>,
    n: usize,
    wt: &[f32],
    dz: &[f32],
    gw: &mut [f32],
    dinp: Option<&mut Vec<f32>>,
    dz_p: &mut Vec<f32>,
) {
    let g = Geom::new(l, n);
    if inp_p.len() != l.c_in * g.plane {
        pad_into(&g, inp, l.c_in, l.c_in, inp_p);
    }
    backward_with(l, inp_p, n, wt, dz, gw, dinp, dz_p, Simd::detect());
}

#[allow(clippy::too_many_arguments)]
fn backward_with(
    l: &ConvLayer,
    inp_p: &[f32],
    n: usize,
    wt: &[f32],
    dz: &[f32],
    gw: &mut [f32],
    dinp: Option<&mut Vec<f32>>,
    dz_p: &mut Vec<f32>,
    simd: Simd,
) {
    let g = Geom::new(l, n);
    let wino = winograd::applies(l);
    if wino && winograd::applies_wgrad(l) {
        winograd::wgrad(&g, inp_p, dz, l.c_out, l.c_in, gw, simd);
        if dinp.is_some() {
            pad_into(&g, dz, l.c_out, l.c_out, dz_p);
        }
    } else {
        pad_into(&g, dz, l.c_out, l.c_out.div_ceil(WR) * WR, dz_p);
        wgrad(&g, dz_p, l.c_out, inp_p, l.c_in, gw, simd);
    }
    if let Some(d) = dinp {
        d.resize(l.c_in * n * l.h * l.w, 0.0);
        if wino {
            winograd::conv(&g, dz_p, wt, l.c_out, l.c_in, true, d, simd);
        } else {
            let wpk = pack(wt, l.c_out, l.c_in, true, simd);
            conv_tiles(&g, dz_p, l.c_out, &wpk, l.c_in, d, simd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::conv_fast::{conv_backward_im2col, conv_forward_im2col};
    use rand::{Rng, SeedableRng};

    fn layer(c_in: usize, c_out: usize, h: usize, w: usize) -> ConvLayer {
        ConvLayer {
            c_in,
            c_out,
            h,
            w,
            ho: h,
            wo: w,
            k: 3,
            pad: 1,
            stride: 1,
            pool: false,
        }
    }

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        let scale = b.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-4 * scale, "{what}[{i}]: {x} vs {y} (scale {scale})");
        }
    }

    /// The direct path (SIMD and portable; 1, 2 and 5 threads, which split
    /// the weight gradient differently) against im2col + GEMM on odd shapes:
    /// channels not multiples of the tile, widths 1, images whose padded
    /// batch is not a whole number of tiles or strips, and layers on the
    /// Winograd path whose tiles are not a whole number of blocks.
    #[test]
    fn direct_matches_im2col() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for &(c_in, c_out, h, w, n) in &[
            (4, 4, 5, 7, 3),
            (5, 6, 9, 9, 2),
            (7, 3, 1, 1, 5),
            (4, 9, 3, 1, 4),
            (16, 8, 28, 28, 2),
            (16, 16, 4, 6, 3),
            (6, 5, 13, 11, 9),
            // Winograd F(2x2, 3x3) (at least 16 channels; the weight gradient from 32),
            // on even maps, odd heights and widths, and 1x1 maps.
            (32, 40, 6, 4, 3),
            (36, 33, 2, 8, 2),
            (32, 32, 5, 7, 2),
            (16, 24, 7, 7, 3),
            (33, 32, 1, 1, 3),
            (40, 32, 3, 6, 2),
            (32, 36, 6, 3, 2),
            (64, 128, 16, 16, 2),
            (128, 128, 16, 16, 2),
        ] {
            let l = layer(c_in, c_out, h, w);
            assert!(applies(&l));
            let inp: Vec<f32> = (0..c_in * n * h * w).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let wt: Vec<f32> = (0..c_out * c_in * 9).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let dz: Vec<f32> = (0..c_out * n * h * w).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let (mut out_ref, mut cols) = (Vec::new(), Vec::new());
            conv_forward_im2col(&l, &inp, n, &wt, &mut out_ref, &mut cols);
            let mut gw_ref = vec![0.0; wt.len()];
            let (mut din_ref, mut dcols) = (Vec::new(), Vec::new());
            conv_backward_im2col(
                &l,
                &inp,
                n,
                &wt,
                &dz,
                &mut gw_ref,
                Some(&mut din_ref),
                &mut cols,
                &mut dcols,
            );
            let mut runs = vec![(Simd::Portable, 2)];
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                runs.extend([(Simd::Avx2, 1), (Simd::Avx2, 2), (Simd::Avx2, 5)]);
            }
            if Simd::best() == Simd::Avx512 {
                runs.extend([(Simd::Avx512, 1), (Simd::Avx512, 2), (Simd::Avx512, 5)]);
            }
            for (simd, threads) in runs {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| {
                    let what = format!("c_in {c_in} c_out {c_out} {h}x{w} n {n} simd {simd:?} threads {threads}");
                    // Stale contents in the reused buffers must not leak through.
                    let (mut out, mut inp_p) = (vec![9.0; 3], vec![9.0; 11]);
                    forward_with(&l, &inp, n, &wt, &mut out, &mut inp_p, simd);
                    close(&out, &out_ref, &format!("forward, {what}"));
                    let mut gw = vec![9.0; wt.len()];
                    let (mut din, mut dz_p) = (vec![9.0; 5], vec![9.0; 1 << 16]);
                    backward_with(&l, &inp_p, n, &wt, &dz, &mut gw, Some(&mut din), &mut dz_p, simd);
                    close(&gw, &gw_ref, &format!("weight gradient, {what}"));
                    close(&din, &din_ref, &format!("input gradient, {what}"));
                });
            }
            // A padded input of the wrong length (another batch size ran in between) is rebuilt.
            let (mut gw, mut stale, mut dz_p) = (vec![0.0; wt.len()], vec![1.0; 7], Vec::new());
            backward(&l, &inp, &mut stale, n, &wt, &dz, &mut gw, None, &mut dz_p);
            close(&gw, &gw_ref, "weight gradient after re-padding");
        }
    }

    #[test]
    fn applies_only_to_same_3x3() {
        assert!(!applies(&layer(3, 8, 8, 8)));
        let mut l = layer(8, 8, 8, 8);
        l.stride = 2;
        l.ho = 4;
        l.wo = 4;
        assert!(!applies(&l));
        let mut l = layer(8, 8, 8, 8);
        l.k = 5;
        l.pad = 2;
        assert!(!applies(&l));
        // Wide layers: direct on Conv-4's 14x14 maps, im2col on VGG's 8x8 ones.
        assert!(applies(&layer(128, 128, 14, 14)));
        assert!(!applies(&layer(256, 256, 8, 8)));
        assert!(applies(&layer(64, 64, 8, 8)));
    }
}

/// Per-layer timings at batch 128 against im2col (ignored; the numbers in
/// reports/reference/conv_throughput_cpu.md):
/// `cargo test --release --lib speed -- --ignored --nocapture`.
#[cfg(test)]
mod speed {
    use super::*;
    use crate::models::conv_fast::{conv_backward_im2col, conv_forward_im2col};

    #[test]
    #[ignore]
    fn speed() {
        for &(c_in, c_out, h) in &[
            (64usize, 64usize, 28usize),
            (128, 128, 14),
            (16, 16, 28),
            (32, 32, 14),
            (64, 64, 7),
        ] {
            let n = 128;
            let l = ConvLayer {
                c_in,
                c_out,
                h,
                w: h,
                ho: h,
                wo: h,
                k: 3,
                pad: 1,
                stride: 1,
                pool: false,
            };
            let inp: Vec<f32> = (0..c_in * n * h * h).map(|i| (i % 7) as f32 * 0.1).collect();
            let wt: Vec<f32> = (0..c_out * c_in * 9).map(|i| (i % 5) as f32 * 0.1).collect();
            let dz: Vec<f32> = (0..c_out * n * h * h).map(|i| (i % 3) as f32 * 0.1).collect();
            let flop = 2.0 * (c_in * c_out * 9 * n * h * h) as f64;
            let (mut out, mut ip, mut gw, mut din, mut dzp) =
                (Vec::new(), Vec::new(), vec![0.0; wt.len()], Vec::new(), Vec::new());
            let mut best = [f64::MAX; 6];
            for _ in 0..5 {
                let t = std::time::Instant::now();
                forward(&l, &inp, n, &wt, &mut out, &mut ip);
                best[0] = best[0].min(t.elapsed().as_secs_f64());
                let t = std::time::Instant::now();
                backward(&l, &inp, &mut ip, n, &wt, &dz, &mut gw, None, &mut dzp);
                best[1] = best[1].min(t.elapsed().as_secs_f64());
                let t = std::time::Instant::now();
                backward(&l, &inp, &mut ip, n, &wt, &dz, &mut gw, Some(&mut din), &mut dzp);
                best[2] = best[2].min(t.elapsed().as_secs_f64());
                let t = std::time::Instant::now();
                conv_forward_im2col(&l, &inp, n, &wt, &mut out, &mut ip);
                best[3] = best[3].min(t.elapsed().as_secs_f64());
                let t = std::time::Instant::now();
                let mut dc = Vec::new();
                conv_backward_im2col(&l, &inp, n, &wt, &dz, &mut gw, Some(&mut din), &mut ip, &mut dc);
                best[4] = best[4].min(t.elapsed().as_secs_f64());
            }
            let g = |t: f64| flop / t / 1e9;
            println!(
                "{c_in}->{c_out} {h}x{h}: direct fwd {:.1} ms {:.0} GF/s, wgrad {:.1} ms {:.0} GF/s, dgrad {:.1} ms {:.0} GF/s | im2col fwd {:.1} ms {:.0}, bwd {:.1} ms {:.0}",
                best[0] * 1e3, g(best[0]), best[1] * 1e3, g(best[1]), (best[2] - best[1]) * 1e3, g(best[2] - best[1]),
                best[3] * 1e3, g(best[3]), best[4] * 1e3, g(best[4] / 2.0)
            );
        }
    }
}
