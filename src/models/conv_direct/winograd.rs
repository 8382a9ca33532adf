//! Winograd minimal filtering F(2x2, 3x3) for the forward, input-gradient
//! and weight-gradient passes of the direct layers (Lavin & Gray 2016, "Fast Algorithms for
//! Convolutional Neural Networks", §4.1: `Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A` for
//! a 4x4 input tile `d`, stride 2, giving a 2x2 output tile; §5 sums the
//! element-wise products over channels).
//!
//! Per tile and channel pair it multiplies 16 times instead of 36. Summed
//! over channels, the 16 element-wise products become 16 independent
//! products `M_ξ [m, tiles] = U_ξ [m, k] · V_ξ [k, tiles]` (`U_ξ` the
//! transformed weights, `V_ξ` the transformed input tiles), computed by the
//! direct path's register tile with a single tap. Each parallel task takes
//! [`TB`] tiles: it transforms their input (`16·k·TB` values, kept in L2),
//! forms the 16 products and transforms them back to 2x2 outputs. The
//! transforms use only 0, ±1 and ±1/2; results differ from the direct sum
//! by rounding only (the tests hold both to 1e-4 of the largest value).
//!
//! On a map of odd height or width the last tile row or column reaches one
//! past the map's padding: its patches read zeros there (not the next
//! image's first row, which the shared padding puts there) and only its
//! outputs inside the map are written. Only layers with at least
//! [`MIN_CHANNELS`] input and output channels take it (the transforms cost
//! the same per tile and channel whatever the width of the product).
//! The weight gradient goes through the same tiles ([`wgrad`]) when both
//! channel counts reach [`MIN_WGRAD_CHANNELS`]. `LTK_CONV_WINOGRAD=off`
//! turns all of it off (to compare with the direct sum on one machine).

use rayon::prelude::*;

use super::{blocks, tile, Block, Geom, SharedMut, Simd, TAPS, TILE_ROWS};
use crate::models::conv::ConvLayer;

/// Tiles per parallel task (a multiple of every kernel width).
const TB: usize = 64;
/// Lanes of the transforms' fixed-size loops.
const L: usize = 16;
/// Components of a transformed 4x4 tile.
const XI: usize = 16;
/// Row length of the gathered patches: [`TB`] and room for whole vectors
/// written past a block's last tile (unmasked stores: masked ones are
/// microcoded and slow on AMD's AVX2 cores).
const DW: usize = TB + L;
/// Row length of the output rows: `2·TB` and room for the whole vector the
/// last copy of a row reads.
const YW: usize = 2 * TB + L;
/// Fewer input or output channels than this keep the direct kernel. At 16
/// (ResNet-20's first stage, 28x28 in the bench, included) on a 2-core AMD EPYC (Zen 4,
/// AVX-512), `train_step_conv_b128/resnet20_fast`, 8 runs each in ABBA
/// rounds: median 651 samples/s against 618 with the bound at 32, ahead in 3
/// of 4 rounds; 32 -> 32 at 14x14 alone: forward 2.0-2.3 ms against 2.9 ms.
const MIN_CHANNELS: usize = 16;

/// Fewer input or output channels than this keep the direct weight
/// gradient: its 16 products per block of [`TB`] tiles are `gemm` crate
/// calls, whose fixed cost per call outweighs the saving at 16 channels. On
/// a 2-core AMD EPYC (Zen 4, AVX-512), batch 128, the speed test: 64 -> 64 at
/// 28x28 27-31 ms against 49-50 ms direct, 128 -> 128 at 14x14 25-27 ms
/// against 58-60 ms, 16 -> 16 at 28x28 3.9-4.6 ms against 3.5-4.3 ms;
/// `train_step_conv_b128/resnet20_fast`, 6 runs each in ABBA rounds: median
/// 640 samples/s with the bound at 32, 606 at 16.
const MIN_WGRAD_CHANNELS: usize = 32;

/// Whether a layer that [`applies`] also takes the weight gradient here.
pub(super) fn applies_wgrad(l: &ConvLayer) -> bool {
    l.c_in.min(l.c_out) >= MIN_WGRAD_CHANNELS
}

/// Whether a layer the direct path takes goes through Winograd.
pub(super) fn applies(l: &ConvLayer) -> bool {
    l.c_in.min(l.c_out) >= MIN_CHANNELS && enabled()
}

/// False when `LTK_CONV_WINOGRAD=off` (read once).
fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| crate::env::choice("LTK_CONV_WINOGRAD", &[("on", true), ("off", false)], true))
}

/// `G g Gᵀ` of a 3x3 kernel `g` (row-major), `G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]`.
fn transform_kernel(g: &[f32; TAPS]) -> [f32; XI] {
    let col = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    let mut gg = [[0f32; 3]; 4];
    for x in 0..3 {
        let c = col(g[x], g[3 + x], g[6 + x]);
        for (row, v) in gg.iter_mut().zip(c) {
            row[x] = v;
        }
    }
    let mut u = [0f32; XI];
    for (i, row) in gg.iter().enumerate() {
        u[i * 4..i * 4 + 4].copy_from_slice(&col(row[0], row[1], row[2]));
    }
    u
}

/// The transformed weights packed for [`tile`] with one tap: `len` values
/// per component, per block of [`blocks`] `[k_row][size]` from `b.at / TAPS`.
/// Forward: blocks of output channels, rows the input channels; `flip`: blocks of
/// input channels, rows the output channels, kernels rotated by 180° (the
/// input-gradient pass).
fn pack(wt: &[f32], c_out: usize, c_in: usize, flip: bool, simd: Simd) -> (Vec<Block>, Vec<f32>, usize) {
    let (m, k_rows) = if flip { (c_in, c_out) } else { (c_out, c_in) };
    let plan = blocks(m, k_rows, simd);
    let len = plan.last().map_or(0, |b| (b.at + b.size * k_rows * TAPS) / TAPS);
    let mut p = vec![0.0; XI * len];
    for b in &plan {
        for r in 0..k_rows {
            for i in 0..b.rows {
                let j = b.start + i;
                let (co, ci) = if flip { (r, j) } else { (j, r) };
                let w = &wt[(co * c_in + ci) * TAPS..][..TAPS];
                let g: [f32; TAPS] = std::array::from_fn(|t| if flip { w[TAPS - 1 - t] } else { w[t] });
                for (x, v) in transform_kernel(&g).into_iter().enumerate() {
                    p[x * len + b.at / TAPS + r * b.size + i] = v;
                }
            }
        }
    }
    (plan, p, len)
}

/// `dst [m, n·h·w]` (dense CNHW, every element overwritten) = the 3x3 "same"
/// convolution of the padded planes of `src` with `wt [c_out, c_in, 3, 3]`:
/// forward (`src` holds `c_in` planes, `m = c_out`) or, with `flip`, the
/// input gradient (`src` the `c_out` planes of the output gradient,
/// `m = c_in`).
#[allow(clippy::too_many_arguments)]
pub(super) fn conv(
    g: &Geom,
    src: &[f32],
    wt: &[f32],
    c_out: usize,
    c_in: usize,
    flip: bool,
    dst: &mut [f32],
    simd: Simd,
) {
    let (m, k_rows) = if flip { (c_in, c_out) } else { (c_out, c_in) };
    let (plan, u, ulen) = pack(wt, c_out, c_in, flip, simd);
    let nt = g.n * g.h.div_ceil(2) * g.w.div_ceil(2);
    let nhw = g.n * g.h * g.w;
    assert!(g.guard > g.wp);
    assert!(src.len() >= k_rows * g.plane && dst.len() >= m * nhw && wt.len() >= c_out * c_in * TAPS);
    let out = SharedMut(dst.as_mut_ptr());
    let width = simd.width();
    // Component strides: one cache line more than the rows, so that the 16
    // components of a tile do not all map to one L1 set.
    let (xv, xm) = (k_rows * TB + L, m * TB + L);
    (0..nt.div_ceil(TB)).into_par_iter().for_each(|blk| {
        SCRATCH.with_borrow_mut(|sc| {
            sc.fit(XI * xv, XI * xm + TILE_ROWS * TB);
            segments(g, blk, &mut sc.segs);
            let span = patch_span(&sc.segs, g.wp);
            for r in 0..k_rows {
                prefetch_ahead(src, g.plane, k_rows, r, &span);
                let plane = &src[r * g.plane..][..g.plane];
                input_channel(simd, plane, g.wp, &sc.segs, &mut sc.d, &mut sc.v[r * TB..], xv);
            }
            for x in 0..XI {
                let vx = &sc.v[x * xv..][..k_rows * TB];
                let ux = &u[x * ulen..][..ulen];
                for b in &plan {
                    assert!(b.at / TAPS + b.size * k_rows <= ulen);
                    let row0 = x * xm + b.start * TB;
                    assert!(row0 + b.size * TB <= sc.m.len());
                    for j in (0..TB).step_by(width) {
                        // SAFETY: reads vx[r·TB + j + lane] for r < k_rows, lane < width
                        // (j + width <= TB) and size·k_rows weights from b.at / TAPS (checked);
                        // writes `size` rows of `width` values from m[row0 + j], row stride TB:
                        // in m (checked; m has TILE_ROWS rows of slack after the last
                        // component), rows past b.rows are overwritten later or unused.
                        unsafe {
                            tile::<1>(
                                simd,
                                b.size,
                                vx.as_ptr().add(j),
                                TB,
                                &[0],
                                k_rows,
                                ux.as_ptr().add(b.at / TAPS),
                                sc.m.as_mut_ptr().add(row0 + j),
                                TB,
                            )
                        };
                    }
                }
            }
            for co in 0..m {
                // SAFETY: channel co's outputs of this block's tiles: in dst (checked above,
                // every segment inside one image row pair), and no other task writes them.
                unsafe {
                    output_channel(
                        simd,
                        &sc.m[co * TB..],
                        xm,
                        &mut sc.y,
                        &sc.segs,
                        out.ptr().add(co * nhw),
                        g.w,
                    )
                };
            }
        })
    });
}

/// The segments of block `blk` (tiles `blk·TB ..` of the batch's
/// `n·⌈h/2⌉·⌈w/2⌉` tiles, in (image, tile row, tile column) order).
fn segments(g: &Geom, blk: usize, segs: &mut Vec<Seg>) {
    let (th, tw) = (g.h.div_ceil(2), g.w.div_ceil(2));
    let nt = g.n * th * tw;
    let (t0, t1) = (blk * TB, ((blk + 1) * TB).min(nt));
    segs.clear();
    let mut t = t0;
    while t < t1 {
        let (row, a) = (t / tw, t % tw);
        let b = tw.min(a + t1 - t);
        let (e, ty) = (row / th, row % th);
        segs.push(Seg {
            lane: t - t0,
            // Top-left of tile a's 4x4 patch: row 2ty − 1, column 2a − 1 (guard > wp).
            src: g.guard + (e * g.hp + 2 * ty) * g.wp + 2 * a - g.wp - 1,
            dst: (e * g.h + 2 * ty) * g.w + 2 * a,
            len: b - a,
            rows: (g.h - 2 * ty).min(2),
            cols: (2 * b).min(g.w) - 2 * a,
        });
        t += b - a;
    }
}

/// `gw [c_out, c_in, 3, 3]` (overwritten) = the weight gradient of the
/// convolution of the `c_in` padded planes `in_p` whose output gradient is
/// `dz` (dense CNHW `[c_out, n, h, w]`), through the same tiles: per tile
/// `dM = A dY Aᵀ` (the adjoint of the output transform), per component
/// `dU_ξ = Σ_tiles dM_ξ · V_ξᵀ`, then `Gᵀ dU G` (the adjoint of the kernel
/// transform). The products run through the `gemm` crate per block of
/// [`TB`] tiles into one partial sum per task; the tasks split the tiles by
/// the thread count, and their sums are added in task order.
pub(super) fn wgrad(g: &Geom, in_p: &[f32], dz: &[f32], c_out: usize, c_in: usize, gw: &mut [f32], simd: Simd) {
    let nt = g.n * g.h.div_ceil(2) * g.w.div_ceil(2);
    let nhw = g.n * g.h * g.w;
    assert!(g.guard > g.wp);
    assert!(in_p.len() >= c_in * g.plane && dz.len() >= c_out * nhw && gw.len() >= c_out * c_in * TAPS);
    let nblocks = nt.div_ceil(TB);
    let splits = rayon::current_num_threads().clamp(1, nblocks.max(1));
    let per = nblocks.div_ceil(splits);
    let (xv, xm) = (c_in * TB + L, c_out * TB + L);
    let du = XI * c_out * c_in;
    let mut part = vec![0f32; splits * du];
    part.par_chunks_mut(du).enumerate().for_each(|(s, p)| {
        let (mut v, mut dm) = (vec![0f32; XI * xv], vec![0f32; XI * xm]);
        let mut d = Box::new([[0f32; DW]; XI]);
        let mut segs = Vec::new();
        for blk in s * per..((s + 1) * per).min(nblocks) {
            segments(g, blk, &mut segs);
            let span = patch_span(&segs, g.wp);
            for r in 0..c_in {
                prefetch_ahead(in_p, g.plane, c_in, r, &span);
                input_channel(
                    simd,
                    &in_p[r * g.plane..][..g.plane],
                    g.wp,
                    &segs,
                    &mut d,
                    &mut v[r * TB..],
                    xv,
                );
            }
            for co in 0..c_out {
                grad_channel(simd, &dz[co * nhw..][..nhw], g.w, &segs, &mut d, &mut dm[co * TB..], xm);
            }
            // Lanes past the last tile hold stale values: zero gradients add nothing.
            let valid = (nt - blk * TB).min(TB);
            if valid < TB {
                for x in 0..XI {
                    for co in 0..c_out {
                        dm[x * xm + co * TB + valid..x * xm + co * TB + TB].fill(0.0);
                    }
                }
            }
            for x in 0..XI {
                // SAFETY: p[x·c_out·c_in ..] holds c_out x c_in (row stride c_in); dm holds
                // c_out rows of TB from x·xm, v c_in rows of TB from x·xv (read transposed).
                unsafe {
                    gemm::gemm(
                        c_out,
                        c_in,
                        TB,
                        p.as_mut_ptr().add(x * c_out * c_in),
                        1,
                        c_in as isize,
                        true,
                        dm.as_ptr().add(x * xm),
                        1,
                        TB as isize,
                        v.as_ptr().add(x * xv),
                        TB as isize,
                        1,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    )
                };
            }
        }
    });
    for co in 0..c_out {
        for ci in 0..c_in {
            let du_x: [f32; XI] =
                std::array::from_fn(|x| (0..splits).map(|sp| part[sp * du + (x * c_out + co) * c_in + ci]).sum());
            gw[(co * c_in + ci) * TAPS..][..TAPS].copy_from_slice(&kernel_grad(&du_x));
        }
    }
}

/// `Gᵀ X G` (3x3) of a 4x4 `X` (row-major): the adjoint of [`transform_kernel`].
fn kernel_grad(x: &[f32; XI]) -> [f32; TAPS] {
    let col = |a: f32, b: f32, c: f32, d: f32| [a + 0.5 * (b + c), 0.5 * (b - c), 0.5 * (b + c) + d];
    let mut gx = [[0f32; 4]; 3];
    for c in 0..4 {
        let v = col(x[c], x[4 + c], x[8 + c], x[12 + c]);
        for (row, y) in gx.iter_mut().zip(v) {
            row[c] = y;
        }
    }
    let mut out = [0f32; TAPS];
    for (i, row) in gx.iter().enumerate() {
        out[i * 3..i * 3 + 3].copy_from_slice(&col(row[0], row[1], row[2], row[3]));
    }
    out
}

/// `dM = A dY Aᵀ` of the block's tiles from one dense channel of the output
/// gradient (rows `w` long), `dm[ξ·xs + tile]`; `d` is scratch.
#[inline]
fn grad_channel(simd: Simd, plane: &[f32], w: usize, segs: &[Seg], d: &mut [[f32; DW]; XI], dm: &mut [f32], xs: usize) {
    assert!(dm.len() >= 15 * xs + TB);
    assert!(segs
        .iter()
        .all(|s| s.lane + s.len <= TB && s.dst + (s.rows - 1) * w + s.cols <= plane.len()));
    #[cfg(target_arch = "x86_64")]
    match simd {
        // SAFETY: the CPU has the feature (Simd::detect); bounds checked above.
        Simd::Avx512 => return unsafe { grad_avx512(plane, w, segs, d, dm, xs) },
        Simd::Avx2 => return unsafe { grad_avx2(plane, w, segs, d, dm, xs) },
        Simd::Portable => {}
    }
    let _ = simd;
    for s in segs {
        for a in 0..2 {
            // Outside the map (an odd map's last row or column): zeros.
            let row = if a < s.rows {
                &plane[s.dst + a * w..][..s.cols]
            } else {
                &[]
            };
            for k in 0..s.len {
                d[2 * a][s.lane + k] = row.get(2 * k).copied().unwrap_or(0.0);
                d[2 * a + 1][s.lane + k] = row.get(2 * k + 1).copied().unwrap_or(0.0);
            }
        }
    }
    grad_body(d, dm, xs)
}

/// `dm[ξ·xs + tile] = (A dY Aᵀ)[ξ]` over all lanes of `d [2·row + column][tile]`
/// (the 2x2 output gradient), `A = [1 0; 1 1; 1 −1; 0 −1]`.
#[inline(always)]
fn grad_body(d: &[[f32; DW]; XI], dm: &mut [f32], xs: usize) {
    for l in 0..TB {
        let (p0, q0, p1, q1) = (d[0][l], d[1][l], d[2][l], d[3][l]);
        let r0 = [p0, p0 + q0, p0 - q0, -q0];
        let r1 = [p1, p1 + q1, p1 - q1, -q1];
        for c in 0..4 {
            let m = [r0[c], r0[c] + r1[c], r0[c] - r1[c], -r1[c]];
            for (i, v) in m.into_iter().enumerate() {
                dm[(i * 4 + c) * xs + l] = v;
            }
        }
    }
}

/// One tile row's part of a block: its first lane, the offset of its first
/// patch in a padded plane, of its first output in a dense channel, its
/// number of tiles, and the output rows (2, or 1 on an odd map's last tile
/// row) and columns (`2·len`, less one where it ends an odd map's row) that
/// lie in the map.
#[derive(Clone, Copy, Debug)]
struct Seg {
    lane: usize,
    src: usize,
    dst: usize,
    len: usize,
    rows: usize,
    cols: usize,
}

impl Seg {
    /// Values of patch row `i` that lie in the padded map (the rest read as
    /// zero): none for the row below an odd map's last tile row, and
    /// `cols + 2` columns.
    fn patch_row(&self, i: usize) -> usize {
        if i == 3 && self.rows < 2 {
            0
        } else {
            self.cols + 2
        }
    }
}

/// A task's buffers: the transformed input `v [ξ][k][TB]`, the products
/// `m [ξ][m][TB]` (plus one register tile of rows), the gathered patches
/// `d [4·row + column][tile]`, the output rows `y [row][2·tile + column]`
/// and the block's segments.
struct Scratch {
    v: Vec<f32>,
    m: Vec<f32>,
    d: Box<[[f32; DW]; XI]>,
    y: Box<[[f32; YW]; 2]>,
    segs: Vec<Seg>,
}

impl Scratch {
    fn new() -> Self {
        Self {
            v: Vec::new(),
            m: Vec::new(),
            d: Box::new([[0f32; DW]; XI]),
            y: Box::new([[0f32; YW]; 2]),
            segs: Vec::new(),
        }
    }

    /// At least `v` and `m` values in `v` and `m`. Their contents are
    /// stale: every block writes what it reads.
    fn fit(&mut self, v: usize, m: usize) {
        if self.v.len() < v {
            self.v.resize(v, 0.0);
        }
        if self.m.len() < m {
            self.m.resize(m, 0.0);
        }
    }
}

thread_local! {
    /// Each thread's [`Scratch`], kept between calls: allocating and zeroing
    /// it per parallel task (half a megabyte at 64 channels) had been 1-3%
    /// of ResNet-20's training step.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::new());
}

/// The positions of a padded plane that the patches of `segs` read: one
/// contiguous run, since a block's tiles are consecutive in (image, tile
/// row, tile column) order.
fn patch_span(segs: &[Seg], wp: usize) -> std::ops::Range<usize> {
    match (segs.first(), segs.last()) {
        (Some(a), Some(b)) => a.src..b.src + 3 * wp + 2 * b.len + 2,
        _ => 0..0,
    }
}

/// Channels ahead of the one being transformed whose patches are
/// prefetched. 3 measured no better than 1.
const AHEAD: usize = 1;

/// Before the transform of channel `r` of `rows` planes of `plane` values
/// in `src`: prefetches `span` of the channel [`AHEAD`] of it (and, at the
/// first channel, of the channels before that one).
#[inline]
fn prefetch_ahead(src: &[f32], plane: usize, rows: usize, r: usize, span: &std::ops::Range<usize>) {
    let first = if r == 0 { 0 } else { r + AHEAD };
    for a in first..(r + AHEAD + 1).min(rows) {
        prefetch(&src[a * plane..][span.clone()]);
    }
}

/// Asks for `x` in L1, one request per cache line. The patches of one
/// channel are a short run at a distant offset (the planes are `n·h·w`
/// apart), which the hardware prefetchers do not guess: the gather of the
/// input transform waited on its loads. On a 2-core Xeon (Sapphire Rapids,
/// AVX-512) the input transform's share of ResNet-20's training step
/// (`train_step_conv_b128/resnet20_fast`, `perf`) fell from 15.4% to 12.7%.
#[inline]
fn prefetch(x: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in x.chunks(16) {
        // SAFETY: a prefetch of a valid address; it never faults or writes.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// The 16 components `Bᵀ d B` of the block's tiles in one padded `plane`
/// (rows `wp` apart), `v[ξ·xs + tile]`; `d` is scratch.
#[inline]
fn input_channel(
    simd: Simd,
    plane: &[f32],
    wp: usize,
    segs: &[Seg],
    d: &mut [[f32; DW]; XI],
    v: &mut [f32],
    xs: usize,
) {
    assert!(v.len() >= 15 * xs + TB);
    assert!(segs
        .iter()
        .all(|s| s.lane + s.len <= TB && s.src + 3 * wp + 2 * s.len + 2 <= plane.len()));
    #[cfg(target_arch = "x86_64")]
    match simd {
        // SAFETY: the CPU has the feature (Simd::detect); bounds checked above.
        Simd::Avx512 => return unsafe { input_avx512(plane, wp, segs, d, v, xs) },
        Simd::Avx2 => return unsafe { input_avx2(plane, wp, segs, d, v, xs) },
        Simd::Portable => {}
    }
    let _ = simd;
    for s in segs {
        for i in 0..4 {
            let row = &plane[s.src + i * wp..][..s.patch_row(i)];
            gather_body(row, s.len, &mut d[i * 4..i * 4 + 4], s.lane);
        }
    }
    input_body(d, v, xs)
}

/// The 2x2 outputs `Aᵀ m A` of the block's tiles from their components
/// `m[ξ·xs + tile]`, written to the dense channel at `dst` (rows `w` long);
/// `y` is scratch.
///
/// # Safety
/// `dst.add(s.dst + row·w + c)` writable for every segment, row < `s.rows`, c < `s.cols`.
#[inline]
unsafe fn output_channel(
    simd: Simd,
    m: &[f32],
    xs: usize,
    y: &mut [[f32; YW]; 2],
    segs: &[Seg],
    dst: *mut f32,
    w: usize,
) {
    assert!(m.len() >= 15 * xs + TB && segs.iter().all(|s| s.lane + s.len <= TB));
    #[cfg(target_arch = "x86_64")]
    match simd {
        Simd::Avx512 => return output_avx512(m, xs, y, segs, dst, w),
        Simd::Avx2 => return output_avx2(m, xs, y, segs, dst, w),
        Simd::Portable => {}
    }
    let _ = simd;
    output_body(m, xs, y);
    for s in segs {
        for (row, ya) in y.iter().enumerate().take(s.rows) {
            std::ptr::copy_nonoverlapping(ya.as_ptr().add(2 * s.lane), dst.add(s.dst + row * w), s.cols);
        }
    }
}

/// The AVX2 and AVX-512 transforms: the same adds as the portable bodies,
/// with the even/odd splits and interleaves as shuffles and masked loads at
/// the ends of rows (the compiler's own vectors of the portable bodies
/// spilled and fell back to scalar code there). Stores are whole vectors
/// into rows with slack, and only the last partial vector of an output row
/// is masked (AVX-512) or goes through the stack (AVX2): AVX2's masked store
/// is microcoded on AMD cores, and with it ResNet-20 ran at 468 samples/s
/// with Winograd against 631 without (`LTK_CONV_SIMD=avx2`, 2-core Zen 4,
/// 6 interleaved runs each); without it, 607-736 against 540-657. With
/// AVX-512 the same change took Conv-4 from 519 to 552 and ResNet-20 from
/// 613 to 660 samples/s (medians of 6 interleaved runs).
macro_rules! simd_transforms {
    ($feature:literal, $input:ident, $output:ident, $grad:ident, $w:literal, $v:ty,
     $load:ident, $store:ident, $add:ident, $sub:ident, $mask:ident, $maskload:ident, $storetail:ident,
     $split:ident, $join:ident) => {
        /// See [`input_channel`].
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        unsafe fn $input(plane: &[f32], wp: usize, segs: &[Seg], d: &mut [[f32; DW]; XI], v: &mut [f32], xs: usize) {
            // Gather: d[4i + c][lane] = column c of patch row i, the columns split into
            // even and odd ones (tile k reads even[k], odd[k], even[k + 1], odd[k + 1]).
            for s in segs {
                for i in 0..4 {
                    let row = &plane[s.src + i * wp..][..s.patch_row(i)];
                    let p = row.as_ptr();
                    let mut k = 0;
                    while k < s.len {
                        let vals = |off: usize| {
                            let n = row.len() - (2 * k + off).min(row.len());
                            // Lanes past the row are masked off (and never read).
                            let lo = $maskload(p.wrapping_add(2 * k + off), $mask(n));
                            let hi = $maskload(p.wrapping_add(2 * k + off + $w), $mask(n.saturating_sub($w)));
                            $split(lo, hi)
                        };
                        let (e0, o0) = vals(0);
                        let (e1, o1) = vals(2);
                        // Whole vectors: lanes past the segment are rewritten by the next
                        // one (segments run in lane order) or land in the rows' slack.
                        for (c, x) in [e0, o0, e1, o1].into_iter().enumerate() {
                            $store(d[i * 4 + c].as_mut_ptr().add(s.lane + k), x);
                        }
                        k += $w;
                    }
                }
            }
            // Bᵀ d B over all lanes.
            let vp = v.as_mut_ptr();
            for l0 in (0..TB).step_by($w) {
                let ld = |r: usize| $load(d[r].as_ptr().add(l0));
                let mut u: [[$v; 4]; 4] = std::mem::zeroed();
                for c in 0..4 {
                    let (d0, d1, d2, d3) = (ld(c), ld(4 + c), ld(8 + c), ld(12 + c));
                    u[0][c] = $sub(d0, d2);
                    u[1][c] = $add(d1, d2);
                    u[2][c] = $sub(d2, d1);
                    u[3][c] = $sub(d1, d3);
                }
                for (i, ui) in u.iter().enumerate() {
                    let o = [
                        $sub(ui[0], ui[2]),
                        $add(ui[1], ui[2]),
                        $sub(ui[2], ui[1]),
                        $sub(ui[1], ui[3]),
                    ];
                    for (c, x) in o.into_iter().enumerate() {
                        $store(vp.add((i * 4 + c) * xs + l0), x);
                    }
                }
            }
        }

        /// See [`grad_channel`].
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        unsafe fn $grad(plane: &[f32], w: usize, segs: &[Seg], d: &mut [[f32; DW]; XI], dm: &mut [f32], xs: usize) {
            // Gather: d[2a + b][lane] = column b of output-gradient row a of the tile.
            for s in segs {
                for a in 0..2 {
                    // Outside the map (an odd map's last row or column): zeros.
                    let row: &[f32] = if a < s.rows {
                        &plane[s.dst + a * w..][..s.cols]
                    } else {
                        &[]
                    };
                    let p = row.as_ptr();
                    let mut k = 0;
                    while k < s.len {
                        let n = row.len().saturating_sub(2 * k);
                        // Lanes past the row are masked off (and never read).
                        let lo = $maskload(p.wrapping_add(2 * k), $mask(n));
                        let hi = $maskload(p.wrapping_add(2 * k + $w), $mask(n.saturating_sub($w)));
                        let (e, o) = $split(lo, hi);
                        // Whole vectors, as in the input gather.
                        $store(d[2 * a].as_mut_ptr().add(s.lane + k), e);
                        $store(d[2 * a + 1].as_mut_ptr().add(s.lane + k), o);
                        k += $w;
                    }
                }
            }
            // A dY Aᵀ over all lanes.
            let mp = dm.as_mut_ptr();
            let zero: $v = std::mem::zeroed();
            for l0 in (0..TB).step_by($w) {
                let ld = |r: usize| $load(d[r].as_ptr().add(l0));
                let (p0, q0, p1, q1) = (ld(0), ld(1), ld(2), ld(3));
                let r0 = [p0, $add(p0, q0), $sub(p0, q0), $sub(zero, q0)];
                let r1 = [p1, $add(p1, q1), $sub(p1, q1), $sub(zero, q1)];
                for c in 0..4 {
                    let m = [r0[c], $add(r0[c], r1[c]), $sub(r0[c], r1[c]), $sub(zero, r1[c])];
                    for (i, x) in m.into_iter().enumerate() {
                        $store(mp.add((i * 4 + c) * xs + l0), x);
                    }
                }
            }
        }

        /// See [`output_channel`].
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        unsafe fn $output(m: &[f32], xs: usize, y: &mut [[f32; YW]; 2], segs: &[Seg], dst: *mut f32, w: usize) {
            let mp = m.as_ptr();
            for l0 in (0..TB).step_by($w) {
                let ld = |x: usize| $load(mp.add(x * xs + l0));
                let mut s: [[$v; 4]; 2] = std::mem::zeroed();
                for c in 0..4 {
                    let (m0, m1, m2, m3) = (ld(c), ld(4 + c), ld(8 + c), ld(12 + c));
                    s[0][c] = $add($add(m0, m1), m2);
                    s[1][c] = $sub($sub(m1, m2), m3);
                }
                for (sa, ya) in s.iter().zip(y.iter_mut()) {
                    let y0 = $add($add(sa[0], sa[1]), sa[2]);
                    let y1 = $sub($sub(sa[1], sa[2]), sa[3]);
                    let (lo, hi) = $join(y0, y1);
                    $store(ya.as_mut_ptr().add(2 * l0), lo);
                    $store(ya.as_mut_ptr().add(2 * l0 + $w), hi);
                }
            }
            for s in segs {
                for (row, ya) in y.iter().enumerate().take(s.rows) {
                    let (src, to, n) = (ya.as_ptr().add(2 * s.lane), dst.add(s.dst + row * w), s.cols);
                    let mut k = 0;
                    while k + $w <= n {
                        $store(to.add(k), $load(src.add(k)));
                        k += $w;
                    }
                    if k < n {
                        $storetail(to.add(k), n - k, $load(src.add(k)));
                    }
                }
            }
        }
    };
}

/// AVX2 helpers: a mask of the first `n` of 8 lanes; even and odd lanes of
/// `(a, b)` (16 consecutive values); `(a, b)` interleaved.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    #[inline(always)]
    pub(super) unsafe fn mask(n: usize) -> __m256i {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n.min(8) as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }

    /// The first `n` < 8 lanes of `x` to `p`, through the stack (no masked store).
    #[inline(always)]
    pub(super) unsafe fn storetail(p: *mut f32, n: usize, x: __m256) {
        let mut t = [0f32; 8];
        _mm256_storeu_ps(t.as_mut_ptr(), x);
        std::ptr::copy_nonoverlapping(t.as_ptr(), p, n);
    }

    #[inline(always)]
    pub(super) unsafe fn split(a: __m256, b: __m256) -> (__m256, __m256) {
        // [a0 a2 b0 b2 | a4 a6 b4 b6] -> 64-bit pairs in order 0, 2, 1, 3.
        let e = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
        let o = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
        let fix = |x: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(x)));
        (fix(e), fix(o))
    }

    #[inline(always)]
    pub(super) unsafe fn join(a: __m256, b: __m256) -> (__m256, __m256) {
        let lo = _mm256_unpacklo_ps(a, b);
        let hi = _mm256_unpackhi_ps(a, b);
        (
            _mm256_permute2f128_ps::<0x20>(lo, hi),
            _mm256_permute2f128_ps::<0x31>(lo, hi),
        )
    }
}

/// AVX-512 helpers, as [`avx2`] with 16 lanes.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    #[inline(always)]
    pub(super) unsafe fn mask(n: usize) -> __mmask16 {
        if n >= 16 {
            0xffff
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    }

    #[inline(always)]
    pub(super) unsafe fn maskload(p: *const f32, k: __mmask16) -> __m512 {
        _mm512_maskz_loadu_ps(k, p)
    }

    #[inline(always)]
    pub(super) unsafe fn storetail(p: *mut f32, n: usize, x: __m512) {
        _mm512_mask_storeu_ps(p, mask(n), x)
    }

    #[inline(always)]
    pub(super) unsafe fn split(a: __m512, b: __m512) -> (__m512, __m512) {
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        (_mm512_permutex2var_ps(a, even, b), _mm512_permutex2var_ps(a, odd, b))
    }

    #[inline(always)]
    pub(super) unsafe fn join(a: __m512, b: __m512) -> (__m512, __m512) {
        let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        (_mm512_permutex2var_ps(a, lo, b), _mm512_permutex2var_ps(a, hi, b))
    }
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

simd_transforms!(
    "avx2,fma",
    input_avx2,
    output_avx2,
    grad_avx2,
    8,
    __m256,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_add_ps,
    _mm256_sub_ps,
    avx2_mask,
    _mm256_maskload_ps,
    avx2_storetail,
    avx2_split,
    avx2_join
);
simd_transforms!(
    "avx512f",
    input_avx512,
    output_avx512,
    grad_avx512,
    16,
    __m512,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_add_ps,
    _mm512_sub_ps,
    avx512_mask,
    avx512_maskload,
    avx512_storetail,
    avx512_split,
    avx512_join
);

#[cfg(target_arch = "x86_64")]
use avx2::{join as avx2_join, mask as avx2_mask, split as avx2_split, storetail as avx2_storetail};
#[cfg(target_arch = "x86_64")]
use avx512::{
    join as avx512_join, mask as avx512_mask, maskload as avx512_maskload, split as avx512_split,
    storetail as avx512_storetail,
};

/// Splits the patch row of `len` tiles into the four columns of each tile,
/// `d[c][j + k] = row[2k + c]` (zero past the end of `row`).
#[inline(always)]
fn gather_body(row: &[f32], len: usize, d: &mut [[f32; DW]], j: usize) {
    for k in 0..len {
        for (c, dc) in d.iter_mut().take(4).enumerate() {
            dc[j + k] = row.get(2 * k + c).copied().unwrap_or(0.0);
        }
    }
}

/// `v[ξ·xs + tile] = (Bᵀ d B)[ξ]` over all lanes of `d [4·row + column][tile]`, with `Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]`.
#[inline(always)]
fn input_body(d: &[[f32; DW]; XI], v: &mut [f32], xs: usize) {
    for l0 in (0..TB).step_by(L) {
        // Bᵀ d: combine rows (d[4·row + column]).
        let mut u = [[[0f32; L]; 4]; 4];
        for c in 0..4 {
            let (d0, d1, d2, d3) = (
                &d[c][l0..][..L],
                &d[4 + c][l0..][..L],
                &d[8 + c][l0..][..L],
                &d[12 + c][l0..][..L],
            );
            for l in 0..L {
                u[0][c][l] = d0[l] - d2[l];
                u[1][c][l] = d1[l] + d2[l];
                u[2][c][l] = d2[l] - d1[l];
                u[3][c][l] = d1[l] - d3[l];
            }
        }
        // (Bᵀ d) B: combine columns.
        for (i, ui) in u.iter().enumerate() {
            let mut o = [[0f32; L]; 4];
            for l in 0..L {
                o[0][l] = ui[0][l] - ui[2][l];
                o[1][l] = ui[1][l] + ui[2][l];
                o[2][l] = ui[2][l] - ui[1][l];
                o[3][l] = ui[1][l] - ui[3][l];
            }
            for (c, oc) in o.iter().enumerate() {
                v[(i * 4 + c) * xs + l0..][..L].copy_from_slice(oc);
            }
        }
    }
}

/// `y[row][2·tile + column] = (Aᵀ m A)` over all lanes of `m[ξ·xs + tile]`, with `Aᵀ = [1 1 1 0; 0 1 −1 −1]`.
#[inline(always)]
fn output_body(m: &[f32], xs: usize, y: &mut [[f32; YW]; 2]) {
    for l0 in (0..TB).step_by(L) {
        let mv: [&[f32]; XI] = std::array::from_fn(|x| &m[x * xs + l0..][..L]);
        // Aᵀ m: combine rows (component ξ = 4·row + column).
        let mut s = [[[0f32; L]; 4]; 2];
        for c in 0..4 {
            let (m0, m1, m2, m3) = (mv[c], mv[4 + c], mv[8 + c], mv[12 + c]);
            for l in 0..L {
                s[0][c][l] = m0[l] + m1[l] + m2[l];
                s[1][c][l] = m1[l] - m2[l] - m3[l];
            }
        }
        // (Aᵀ m) A: combine columns, interleaved.
        for (sa, ya) in s.iter().zip(y.iter_mut()) {
            let ya = &mut ya[2 * l0..][..2 * L];
            for l in 0..L {
                ya[2 * l] = sa[0][l] + sa[1][l] + sa[2][l];
                ya[2 * l + 1] = sa[1][l] - sa[2][l] - sa[3][l];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `kernel_grad` is the adjoint of `transform_kernel`, and the gradient
    /// transform of one tile the adjoint of its output transform.
    #[test]
    fn gradient_transforms_are_adjoints() {
        let g: [f32; 9] = [0.3, -1.2, 0.7, 2.0, 0.1, -0.4, 1.1, 0.9, -2.2];
        let x: [f32; XI] = std::array::from_fn(|i| ((i * 7 % 11) as f32 - 5.0) * 0.25);
        let lhs: f32 = transform_kernel(&g).iter().zip(&x).map(|(a, b)| a * b).sum();
        let rhs: f32 = g.iter().zip(&kernel_grad(&x)).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-5, "{lhs} vs {rhs}");
        // <output transform of m, dy> = <m, gradient transform of dy>.
        let dy = [0.5f32, -1.5, 2.0, 0.75];
        let mut d = [[0f32; DW]; XI];
        for (r, v) in dy.iter().enumerate() {
            d[r][0] = *v;
        }
        let mut dm = vec![0f32; XI * TB];
        grad_body(&d, &mut dm, TB);
        let m: Vec<f32> = (0..XI * TB)
            .map(|i| if i % TB == 0 { x[i / TB] } else { 0.0 })
            .collect();
        let mut y = [[0f32; YW]; 2];
        output_body(&m, TB, &mut y);
        let lhs = y[0][0] * dy[0] + y[0][1] * dy[1] + y[1][0] * dy[2] + y[1][1] * dy[3];
        let rhs: f32 = (0..XI).map(|i| x[i] * dm[i * TB]).sum();
        assert!((lhs - rhs).abs() < 1e-5, "{lhs} vs {rhs}");
    }

    /// The transforms of one tile against the direct 3x3 correlation.
    #[test]
    fn one_tile_matches_the_direct_sum() {
        let g: [f32; 9] = [0.3, -1.2, 0.7, 2.0, 0.1, -0.4, 1.1, 0.9, -2.2];
        let p: [[f32; 4]; 4] = [
            [1.0, -2.0, 0.5, 3.0],
            [0.25, 1.5, -1.0, 2.0],
            [-0.75, 0.0, 2.5, -1.5],
            [1.25, -0.5, 0.75, 1.0],
        ];
        let u = transform_kernel(&g);
        let mut d = [[0f32; DW]; XI];
        for (i, row) in p.iter().enumerate() {
            gather_body(row, 1, &mut d[i * 4..i * 4 + 4], 0);
        }
        let mut v = vec![0f32; XI * TB];
        input_body(&d, &mut v, TB);
        let m: Vec<f32> = v.iter().enumerate().map(|(i, x)| u[i / TB] * x).collect();
        let mut y = [[0f32; YW]; 2];
        output_body(&m, TB, &mut y);
        for a in 0..2 {
            for b in 0..2 {
                let want: f32 = (0..9).map(|t| g[t] * p[a + t / 3][b + t % 3]).sum();
                assert!((y[a][b] - want).abs() < 1e-5, "({a}, {b}): {} vs {want}", y[a][b]);
            }
        }
    }
}
