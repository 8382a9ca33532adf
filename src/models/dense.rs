//! Dense-layer kernels on row-major `f32` slices, calling the `gemm` crate
//! directly. Candle's autodiff costs several times the arithmetic for small
//! dense networks (per-op allocation and graph bookkeeping); these kernels are
//! what makes MLP training, the structured NTK and the linearization fast.
//! Candle's autodiff stays the reference they are tested against.

use gemm::{gemm, Parallelism};
use rayon::prelude::*;

/// Below this many multiply-adds a product runs on one thread.
const PARALLEL_MIN_WORK: usize = 64 * 64 * 64;

#[derive(Clone, Copy)]
struct Ptr(*mut f32);
// SAFETY: each parallel task writes a disjoint block of the output and only reads the inputs.
unsafe impl Send for Ptr {}
unsafe impl Sync for Ptr {}

impl Ptr {
    // A method call captures the whole `Ptr` (not its raw field) in closures.
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// `dst[m,n] = (accumulate ? dst : 0) + alpha · lhs[m,k] · rhs[k,n]` for arbitrary
/// strides (`*_rs` row stride, `*_cs` column stride). Large products are split
/// into column (or row) blocks run on rayon's threads, each block a
/// single-threaded gemm: for the skinny products of mini-batch training this
/// beats gemm's own threading, which packs and synchronizes per call.
///
/// # Safety
/// Every index `i*rs + j*cs` in range of the three matrices must be in bounds.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_blocked(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: isize,
    dst_cs: isize,
    lhs: *const f32,
    lhs_rs: isize,
    lhs_cs: isize,
    rhs: *const f32,
    rhs_rs: isize,
    rhs_cs: isize,
    alpha: f32,
    accumulate: bool,
) {
    // The `gemm` crate computes a row-major destination as its transpose, so
    // its left operand is then `rhs` (else `lhs`), packed by gathering one
    // value from each row of a panel per step (64 rows with AVX-512). Rows
    // whose stride is a multiple of `ALIAS_STRIDE` floats fall into a few
    // cache sets and evict each other during that gather; such an operand is
    // first copied to rows `k + ALIAS_PAD` apart (see `ALIAS_STRIDE`).
    let transposed = dst_cs.unsigned_abs() < dst_rs.unsigned_abs();
    let (g_ptr, g_rows, g_rs, g_cs) = if transposed {
        (rhs, n, rhs_cs, rhs_rs)
    } else {
        (lhs, m, lhs_rs, lhs_cs)
    };
    let mut padded = Vec::new();
    let (mut lhs, mut lhs_rs, mut rhs, mut rhs_cs) = (lhs, lhs_rs, rhs, rhs_cs);
    if g_cs == 1 && g_rs > 0 && g_rs as usize % ALIAS_STRIDE == 0 && g_rows > 1 && g_rows * k >= ALIAS_MIN_COPY {
        let ld = k + ALIAS_PAD;
        padded = SCRATCH.with(|s| s.take());
        // Only grown: each row's first k values are copied below and the
        // product reads no others, so a longer buffer needs no refill.
        if padded.len() < g_rows * ld {
            padded.resize(g_rows * ld, 0.0);
        }
        let src = Ptr(g_ptr as *mut f32);
        padded[..g_rows * ld]
            .par_chunks_mut(ld * 64)
            .enumerate()
            .for_each(|(b, chunk)| {
                for (r, row) in chunk.chunks_mut(ld).enumerate() {
                    let i = b * 64 + r;
                    // SAFETY: row i < g_rows of the operand: k values from i·g_rs, in bounds by the caller's contract.
                    let s = unsafe { std::slice::from_raw_parts(src.get().offset(i as isize * g_rs), k) };
                    row[..k].copy_from_slice(s);
                }
            });
        if transposed {
            (rhs, rhs_cs) = (padded.as_ptr(), ld as isize);
        } else {
            (lhs, lhs_rs) = (padded.as_ptr(), ld as isize);
        }
    }
    let threads = rayon::current_num_threads();
    let run = |m: usize, n: usize, d: Ptr, l: Ptr, r: Ptr| {
        gemm(
            m,
            n,
            k,
            d.get(),
            dst_cs,
            dst_rs,
            accumulate,
            l.get() as *const f32,
            lhs_cs,
            lhs_rs,
            r.get() as *const f32,
            rhs_cs,
            rhs_rs,
            1.0,
            alpha,
            false,
            false,
            false,
            Parallelism::None,
        )
    };
    let (d, l, r) = (Ptr(dst), Ptr(lhs as *mut f32), Ptr(rhs as *mut f32));
    if threads <= 1 || m * n * k < PARALLEL_MIN_WORK {
        run(m, n, d, l, r);
    } else {
        // SAFETY: the caller's bounds, passed on.
        unsafe { split(m, n, threads, d, l, r, dst_rs, dst_cs, lhs_rs, rhs_cs, &run) };
    }
    if !padded.is_empty() && padded.capacity() <= SCRATCH_MAX {
        SCRATCH.with(|s| s.set(padded));
    }
}

/// Runs `run` over blocks of columns (or rows) of the destination `d` on
/// rayon's threads, offsetting `d` and `r` (or `l`) by the given strides.
///
/// # Safety
/// As [`gemm_blocked`], for the matrices `d`, `l`, `r` with these strides.
#[allow(clippy::too_many_arguments)]
unsafe fn split(
    m: usize,
    n: usize,
    threads: usize,
    d: Ptr,
    l: Ptr,
    r: Ptr,
    dst_rs: isize,
    dst_cs: isize,
    lhs_rs: isize,
    rhs_cs: isize,
    run: &(impl Fn(usize, usize, Ptr, Ptr, Ptr) + Sync),
) {
    let split_n = n >= m;
    let len = if split_n { n } else { m };
    let block = len.div_ceil(threads).next_multiple_of(16).max(16);
    let blocks = len.div_ceil(block);
    let run_block = |b: usize| {
        let start = b * block;
        let size = block.min(len - start);
        let st = start as isize;
        // SAFETY: blocks are disjoint column (or row) ranges of dst, inside the bounds checked by the caller.
        unsafe {
            if split_n {
                run(
                    m,
                    size,
                    Ptr(d.get().offset(st * dst_cs)),
                    l,
                    Ptr(r.get().offset(st * rhs_cs)),
                );
            } else {
                run(
                    size,
                    n,
                    Ptr(d.get().offset(st * dst_rs)),
                    Ptr(l.get().offset(st * lhs_rs)),
                    r,
                );
            }
        }
    };
    // Fork-join over the blocks (rayon's join is cheaper than a scope for the
    // few blocks of small products).
    fn fork(lo: usize, hi: usize, f: &(impl Fn(usize) + Sync)) {
        if hi - lo == 1 {
            f(lo);
        } else {
            let mid = (lo + hi) / 2;
            rayon::join(|| fork(lo, mid, f), || fork(mid, hi, f));
        }
    }
    fork(0, blocks, &run_block);
}

/// Row strides (floats) that [`gemm_blocked`] pads: a multiple of 128 floats
/// (512 bytes) sends the 64 rows of one packing step into at most 8 of the 64
/// sets of a 32 KB, 8-way L1. Measured with `c = a·bᵀ`, `a, b` of 256 rows,
/// 2 threads, 2-core AMD EPYC (Zen 4, AVX-512): 127-130 GFLOP/s at k = 5120
/// against 184 at k = 5136, 137 at k = 512 against 179 at k = 528.
const ALIAS_STRIDE: usize = 128;
/// The padding added to such a stride (one cache line).
const ALIAS_PAD: usize = 16;
/// Operands smaller than this (values) are packed as they are.
const ALIAS_MIN_COPY: usize = 64 * 1024;
/// Padded copies larger than this (values, 64 MB) are freed after the call
/// instead of kept for the next.
const SCRATCH_MAX: usize = 16 << 20;

thread_local! {
    /// The padded copy's buffer, reused across calls on a thread (taken, so a
    /// nested call on the same thread allocates its own).
    static SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A good band height for [`matmul_nt_upper`] (rows): the full empirical NTK
/// of 784-512-512-10 at N = 512 took 121 ms with bands of 320 rows, 139 ms
/// with 120 and 146 ms unbanded (2-core AMD EPYC, AVX-512; `cargo bench
/// --bench ntk`): each band re-packs its columns in the `gemm` crate, so
/// thinner bands save arithmetic and lose it to packing.
pub const UPPER_BAND: usize = 320;

/// `c[m,m] = alpha · a[m,k] · a[m,k]^T` on and above the diagonal, in bands of
/// `band` rows: band `r0..r0+band` gets columns `r0..m`, about half the
/// arithmetic of [`matmul_nt`] for a Gram matrix (with `band` near
/// [`UPPER_BAND`]). Entries left of a band's first column are not written:
/// the caller uses the upper triangle only (or mirrors it).
pub fn matmul_nt_upper(a: &[f32], c: &mut [f32], m: usize, k: usize, alpha: f32, band: usize) {
    assert!(
        a.len() >= m * k && c.len() >= m * m,
        "matmul_nt_upper: buffer too small"
    );
    let band = band.max(1);
    for r0 in (0..m).step_by(band) {
        let rows = band.min(m - r0);
        // SAFETY: rows r0..r0+rows and columns r0..m of c (row stride m) and rows
        // r0..m of a (row stride k) are in bounds by the assert above.
        unsafe {
            gemm_blocked(
                rows,
                m - r0,
                k,
                c.as_mut_ptr().add(r0 * m + r0),
                m as isize,
                1,
                a.as_ptr().add(r0 * k),
                k as isize,
                1,
                a.as_ptr().add(r0 * k),
                1,
                k as isize,
                alpha,
                false,
            )
        }
    }
}

/// `c[m,n] = (accumulate ? c : 0) + alpha · a[m,k] · b[n,k]^T`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_nt(a: &[f32], b: &[f32], c: &mut [f32], m: usize, n: usize, k: usize, alpha: f32, accumulate: bool) {
    assert!(
        a.len() >= m * k && b.len() >= n * k && c.len() >= m * n,
        "matmul_nt: buffer too small"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the assert above bounds every access made with these strides.
    unsafe {
        gemm_blocked(
            m,
            n,
            k,
            c.as_mut_ptr(),
            n as isize,
            1,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            1,
            k as isize,
            alpha,
            accumulate,
        )
    }
}

/// `c[m,n] = (accumulate ? c : 0) + alpha · a[k,m]^T · b[k,n]`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_tn(a: &[f32], b: &[f32], c: &mut [f32], m: usize, n: usize, k: usize, alpha: f32, accumulate: bool) {
    assert!(
        a.len() >= m * k && b.len() >= n * k && c.len() >= m * n,
        "matmul_tn: buffer too small"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the assert above bounds every access made with these strides.
    unsafe {
        gemm_blocked(
            m,
            n,
            k,
            c.as_mut_ptr(),
            n as isize,
            1,
            a.as_ptr(),
            1,
            m as isize,
            b.as_ptr(),
            n as isize,
            1,
            alpha,
            accumulate,
        )
    }
}

/// `c[m,n] = (accumulate ? c : 0) + alpha · a[m,k] · b[k,n]`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_nn(a: &[f32], b: &[f32], c: &mut [f32], m: usize, n: usize, k: usize, alpha: f32, accumulate: bool) {
    assert!(
        a.len() >= m * k && b.len() >= n * k && c.len() >= m * n,
        "matmul_nn: buffer too small"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the assert above bounds every access made with these strides.
    unsafe { gemm_nn(a, b, c.as_mut_ptr(), m, n, k, alpha, accumulate) }
}

/// [`matmul_nn`] into `c`, a row-major `[m, n]` destination.
///
/// # Safety
/// `a` holds `m·k` values, `b` `k·n`, and `c` points at room for `m·n`.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_nn(a: &[f32], b: &[f32], c: *mut f32, m: usize, n: usize, k: usize, alpha: f32, accumulate: bool) {
    gemm_blocked(
        m,
        n,
        k,
        c,
        n as isize,
        1,
        a.as_ptr(),
        k as isize,
        1,
        b.as_ptr(),
        n as isize,
        1,
        alpha,
        accumulate,
    )
}

/// `alpha · a[m,k] · b[k,n]` as a new `[m, n]` vector, written once by the
/// product (no zero fill before it: for the multi-megabyte back-propagated
/// derivatives of the structured NTK, the fill cost as much as a tenth of
/// the kernel's time).
pub fn matmul_nn_new(a: &[f32], b: &[f32], m: usize, n: usize, k: usize, alpha: f32) -> Vec<f32> {
    assert!(a.len() >= m * k && b.len() >= n * k, "matmul_nn_new: buffer too small");
    if m == 0 || n == 0 || k == 0 {
        return vec![0.0; m * n];
    }
    let mut c = Vec::with_capacity(m * n);
    // SAFETY: the assert above bounds every read; `c` has room for m·n values,
    // and the product without accumulation writes every one of them (each
    // parallel block of `gemm_blocked` a disjoint part, together all), so they
    // are initialized when the length is set.
    unsafe {
        gemm_nn(a, b, c.as_mut_ptr(), m, n, k, alpha, false);
        c.set_len(m * n);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for l in 0..k {
                    c[i * n + j] += a[i * k + l] * b[l * n + j];
                }
            }
        }
        c
    }

    fn transpose(a: &[f32], r: usize, c: usize) -> Vec<f32> {
        let mut t = vec![0.0; r * c];
        for i in 0..r {
            for j in 0..c {
                t[j * r + i] = a[i * c + j];
            }
        }
        t
    }

    /// Operands whose row stride is a multiple of [`ALIAS_STRIDE`] go through
    /// the padded copy, in both of the `gemm` crate's orientations.
    #[test]
    fn padded_copies_match_naive_product() {
        let (m, n, k) = (260, 300, 256);
        assert!(n * k >= ALIAS_MIN_COPY && m * k >= ALIAS_MIN_COPY && k % ALIAS_STRIDE == 0);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let want = naive(&a, &b, m, n, k);
        let close = |x: &[f32]| x.iter().zip(&want).all(|(p, q)| (p - q).abs() < 1e-3);
        // Row-major destination: the crate's left operand is bᵀ's rows (stride k).
        let mut c = vec![0.0; m * n];
        matmul_nt(&a, &transpose(&b, k, n), &mut c, m, n, k, 1.0, false);
        assert!(close(&c));
        // Column-major destination: its left operand is a's rows (stride k).
        let mut ct = vec![0.0; m * n];
        // SAFETY: c is [m, n] column-major (m·n values), a [m, k] and b [k, n] row-major.
        unsafe {
            gemm_blocked(
                m,
                n,
                k,
                ct.as_mut_ptr(),
                1,
                m as isize,
                a.as_ptr(),
                k as isize,
                1,
                b.as_ptr(),
                n as isize,
                1,
                1.0,
                false,
            )
        };
        assert!(close(&transpose(&ct, n, m)));
    }

    /// A padded copy smaller than the last one on this thread reuses its
    /// longer buffer, copying only its own rows.
    #[test]
    fn smaller_padded_copy_after_a_larger_one() {
        for (m, n, k) in [(8, 1000, 256), (64, 600, 128)] {
            assert!(n * k >= ALIAS_MIN_COPY && k % ALIAS_STRIDE == 0);
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            let want = naive(&a, &b, m, n, k);
            let mut c = vec![0.0; m * n];
            matmul_nt(&a, &transpose(&b, k, n), &mut c, m, n, k, 1.0, false);
            assert!(c.iter().zip(&want).all(|(p, q)| (p - q).abs() < 1e-3), "{m}x{n}x{k}");
        }
    }

    /// The fill-free product gives `matmul_nn`'s bits, single-threaded and
    /// in parallel blocks, and zeros for an empty inner dimension.
    #[test]
    fn matmul_nn_new_matches_matmul_nn() {
        for (m, n, k) in [(3, 4, 5), (200, 96, 80), (1280, 64, 48)] {
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            let mut want = vec![0.0; m * n];
            matmul_nn(&a, &b, &mut want, m, n, k, 0.5, false);
            let got = matmul_nn_new(&a, &b, m, n, k, 0.5);
            assert_eq!(got.len(), m * n);
            assert!(
                got.iter().zip(&want).all(|(p, q)| p.to_bits() == q.to_bits()),
                "{m}x{n}x{k}"
            );
        }
        assert_eq!(matmul_nn_new(&[], &[], 2, 3, 0, 1.0), vec![0.0; 6]);
    }

    #[test]
    fn three_layouts_match_naive_product() {
        let (m, n, k) = (7, 5, 9);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let want = naive(&a, &b, m, n, k);
        let mut c = vec![0.0; m * n];
        matmul_nn(&a, &b, &mut c, m, n, k, 1.0, false);
        let close = |x: &[f32]| x.iter().zip(&want).all(|(p, q)| (p - q).abs() < 1e-5);
        assert!(close(&c));
        matmul_nt(&a, &transpose(&b, k, n), &mut c, m, n, k, 1.0, false);
        assert!(close(&c));
        matmul_tn(&transpose(&a, m, k), &b, &mut c, m, n, k, 1.0, false);
        assert!(close(&c));
        // accumulate with alpha: c = c + 2 ab = 3 ab
        matmul_nn(&a, &b, &mut c, m, n, k, 2.0, true);
        assert!(c.iter().zip(&want).all(|(p, q)| (p - 3.0 * q).abs() < 1e-4));
    }
}

/// The nonzeros of a row-major `[m, k]` matrix, row by row (CSR): row `i`'s
/// are `col[start[i]..start[i + 1]]` with values `val[..]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SparseRows {
    pub start: Vec<usize>,
    pub col: Vec<u32>,
    pub val: Vec<f32>,
}

/// Density at or under which [`sparse_rows`] returns a sparse form (one-hot
/// inputs, e.g. the modular-arithmetic operands, are about 1%).
pub const SPARSE_MAX_DENSITY: f64 = 0.125;

/// `a` (`[m, k]`) as [`SparseRows`] when at most [`SPARSE_MAX_DENSITY`] of
/// its entries are nonzero, else None (the dense kernels are faster then).
pub fn sparse_rows(a: &[f32], m: usize, k: usize) -> Option<SparseRows> {
    let a = &a[..m * k];
    // Counting stops past the limit: a dense input costs a short scan only
    // (counted a block at a time, in vector lanes).
    let limit = (SPARSE_MAX_DENSITY * (m * k) as f64) as usize;
    let mut nnz = 0;
    for block in a.chunks(4096) {
        nnz += block.iter().map(|&v| usize::from(v != 0.0)).sum::<usize>();
        if nnz > limit {
            return None;
        }
    }
    if m == 0 || k == 0 {
        return None;
    }
    let mut s = SparseRows {
        start: Vec::with_capacity(m + 1),
        col: Vec::with_capacity(nnz),
        val: Vec::with_capacity(nnz),
    };
    s.start.push(0);
    for row in a.chunks_exact(k) {
        for (j, &v) in row.iter().enumerate().filter(|(_, &v)| v != 0.0) {
            s.col.push(j as u32);
            s.val.push(v);
        }
        s.start.push(s.col.len());
    }
    Some(s)
}

/// `c[m, n] += alpha · A[m, k] · Bᵀ` for sparse `A` ([`SparseRows`]) and
/// row-major `b` `[n, k]` (a weight matrix): [`matmul_nt`] with
/// `accumulate = true`, in O(nnz · n) after one transpose of `b` into
/// `scratch`. Written by hand: the gemm crate has no sparse operand, and a
/// one-hot first layer otherwise spends its time multiplying zeros.
pub fn sparse_matmul_nt(
    a: &SparseRows,
    b: &[f32],
    c: &mut [f32],
    n: usize,
    k: usize,
    alpha: f32,
    scratch: &mut Vec<f32>,
) {
    let m = a.start.len().saturating_sub(1);
    assert!(
        b.len() >= n * k && c.len() >= m * n,
        "sparse_matmul_nt: buffer too small"
    );
    scratch.resize(k * n, 0.0);
    for (o, row) in b[..n * k].chunks_exact(k).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            scratch[j * n + o] = v;
        }
    }
    for (i, out) in c[..m * n].chunks_exact_mut(n).enumerate() {
        for p in a.start[i]..a.start[i + 1] {
            let (j, v) = (a.col[p] as usize, alpha * a.val[p]);
            for (o, &w) in out.iter_mut().zip(&scratch[j * n..(j + 1) * n]) {
                *o += v * w;
            }
        }
    }
}

/// `c[n, k] = alpha · Δᵀ · A` for row-major `delta` `[m, n]` and sparse `A`
/// (`[m, k]`): [`matmul_tn`] with `accumulate = false` (a weight gradient),
/// in O(nnz · n), accumulating `[k, n]` in `scratch` and transposing once.
pub fn sparse_matmul_tn(
    delta: &[f32],
    a: &SparseRows,
    c: &mut [f32],
    n: usize,
    k: usize,
    alpha: f32,
    scratch: &mut Vec<f32>,
) {
    let m = a.start.len().saturating_sub(1);
    assert!(
        delta.len() >= m * n && c.len() >= n * k,
        "sparse_matmul_tn: buffer too small"
    );
    scratch.clear();
    scratch.resize(k * n, 0.0);
    for (i, d) in delta[..m * n].chunks_exact(n).enumerate() {
        for p in a.start[i]..a.start[i + 1] {
            let (j, v) = (a.col[p] as usize, a.val[p]);
            for (s, &x) in scratch[j * n..(j + 1) * n].iter_mut().zip(d) {
                *s += v * x;
            }
        }
    }
    for (o, row) in c[..n * k].chunks_exact_mut(k).enumerate() {
        for (j, out) in row.iter_mut().enumerate() {
            *out = alpha * scratch[j * n + o];
        }
    }
}

#[cfg(test)]
mod sparse_tests {
    use super::*;

    /// The sparse kernels equal the dense ones on a mostly-zero matrix.
    #[test]
    fn sparse_kernels_match_dense() {
        let (m, n, k) = (9, 7, 40);
        let a: Vec<f32> = (0..m * k)
            .map(|i| if i % 11 == 3 { (i % 5) as f32 - 1.5 } else { 0.0 })
            .collect();
        let b: Vec<f32> = (0..n * k).map(|i| ((i * 7) % 13) as f32 * 0.1 - 0.6).collect();
        let sp = sparse_rows(&a, m, k).expect("about 9% dense");
        let mut scratch = Vec::new();
        let (mut c1, mut c2) = (vec![0.5f32; m * n], vec![0.5f32; m * n]);
        matmul_nt(&a, &b, &mut c1, m, n, k, 0.7, true);
        sparse_matmul_nt(&sp, &b, &mut c2, n, k, 0.7, &mut scratch);
        assert!(
            c1.iter().zip(&c2).all(|(x, y)| (x - y).abs() < 1e-5),
            "{c1:?} vs {c2:?}"
        );
        let delta: Vec<f32> = (0..m * n).map(|i| ((i * 3) % 7) as f32 * 0.2 - 0.5).collect();
        let (mut g1, mut g2) = (vec![9.0f32; n * k], vec![9.0f32; n * k]);
        matmul_tn(&delta, &a, &mut g1, n, k, m, 1.3, false);
        sparse_matmul_tn(&delta, &sp, &mut g2, n, k, 1.3, &mut scratch);
        assert!(g1.iter().zip(&g2).all(|(x, y)| (x - y).abs() < 1e-5));
        let dense_input = vec![1.0f32; m * k];
        assert!(sparse_rows(&dense_input, m, k).is_none());
    }
}

/// Elements per block of the lane sums below: f32 partial sums over a block
/// (8 independent lanes, so the compiler vectorizes them and no add waits
/// on the previous one), blocks added in f64. A plain `iter().sum()` is one
/// dependent add per element, about 4x slower on these long rows.
const LANE_BLOCK: usize = 512;

/// Whole blocks summed side by side: each lane's adds wait on the previous
/// one, so one block runs at 8 adds per add latency; four give the core
/// four independent chains (same order within each block, so same bits).
const BLOCKS_AT_ONCE: usize = 4;

/// Values per run of [`BLOCKS_AT_ONCE`] blocks.
const RUN: usize = BLOCKS_AT_ONCE * LANE_BLOCK;

/// The sum of one block (at most [`LANE_BLOCK`] values) in 8 f32 lanes,
/// then the lanes and the tail in order.
#[inline(always)]
fn block_sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut v = x.chunks_exact(8);
    for v in &mut v {
        for l in 0..8 {
            acc[l] += v[l];
        }
    }
    let mut b: f32 = acc.iter().sum();
    for &t in v.remainder() {
        b += t;
    }
    b
}

/// Adds the blocks of `x` (a run or less, starting on a block) to `total`
/// in order, each summed as by [`block_sum`].
#[inline(always)]
fn add_run(total: &mut f64, x: &[f32]) {
    if x.len() == RUN {
        let (b0, rest) = x.split_at(LANE_BLOCK);
        let (b1, rest) = rest.split_at(LANE_BLOCK);
        let (b2, b3) = rest.split_at(LANE_BLOCK);
        let mut acc = [[0f32; 8]; BLOCKS_AT_ONCE];
        for (((v0, v1), v2), v3) in b0
            .chunks_exact(8)
            .zip(b1.chunks_exact(8))
            .zip(b2.chunks_exact(8))
            .zip(b3.chunks_exact(8))
        {
            for l in 0..8 {
                acc[0][l] += v0[l];
                acc[1][l] += v1[l];
                acc[2][l] += v2[l];
                acc[3][l] += v3[l];
            }
        }
        for acc in &acc {
            let b: f32 = acc.iter().sum();
            *total += b as f64;
        }
    } else {
        for block in x.chunks(LANE_BLOCK) {
            *total += block_sum(block) as f64;
        }
    }
}

/// `Σ x` in 8 f32 lanes per block of [`LANE_BLOCK`], blocks added in f64.
#[inline]
fn lane_sum_slice(x: &[f32]) -> f64 {
    let mut total = 0f64;
    for run in x.chunks(RUN) {
        add_run(&mut total, run);
    }
    total
}

/// Adds to `total` the values that `stage(start, run)` writes into each
/// run of `0..len` (a [`RUN`] at a time, in order), summed as by
/// [`lane_sum_slice`].
#[inline(always)]
fn add_staged(total: &mut f64, len: usize, mut stage: impl FnMut(usize, &mut [f32])) {
    let mut buf = [0f32; RUN];
    let mut s = 0;
    while s < len {
        let t = &mut buf[..RUN.min(len - s)];
        stage(s, t);
        add_run(total, t);
        s += RUN;
    }
}

/// `(Σ d, Σ d·(z − c)·s)` over the common length in one pass: the same
/// bits as [`sum_f64`] of `d` and of the products `d·x̂`, `x̂ = (z − c)·s`
/// rounded to f32 first.
pub(crate) fn sum_and_dot_centered_f64(d: &[f32], z: &[f32], c: f32, s: f32) -> (f64, f64) {
    let n = d.len().min(z.len());
    let (d, z) = (&d[..n], &z[..n]);
    let (mut sum, mut dot) = (0f64, 0f64);
    add_staged(&mut dot, n, |at, t| {
        let rd = &d[at..][..t.len()];
        add_run(&mut sum, rd);
        for ((t, &d), &z) in t.iter_mut().zip(rd).zip(&z[at..]) {
            *t = d * ((z - c) * s);
        }
    });
    (sum, dot)
}

/// `Σ x` (see [`LANE_BLOCK`]).
pub(crate) fn sum_f64(x: &[f32]) -> f64 {
    lane_sum_slice(x)
}

/// `Σ (x − c)²` (see [`LANE_BLOCK`]).
pub(crate) fn sq_dev_f64(x: &[f32], c: f32) -> f64 {
    let mut total = 0f64;
    add_staged(&mut total, x.len(), |at, t| {
        for (t, &x) in t.iter_mut().zip(&x[at..]) {
            *t = (x - c) * (x - c);
        }
    });
    total
}

#[cfg(test)]
mod lane_sum_tests {
    use super::*;

    /// One block at a time, 8 lanes each, blocks added in f64: the order
    /// every lane sum keeps.
    fn one_block_at_a_time(x: &[f32]) -> f64 {
        let mut total = 0f64;
        for block in x.chunks(LANE_BLOCK) {
            let mut acc = [0f32; 8];
            let whole = block.len() / 8 * 8;
            for v in block[..whole].chunks_exact(8) {
                for (a, &x) in acc.iter_mut().zip(v) {
                    *a += x;
                }
            }
            let mut b: f32 = acc.iter().sum();
            for &x in &block[whole..] {
                b += x;
            }
            total += b as f64;
        }
        total
    }

    /// The sums (blocks side by side, and the fused pair) give the bits of
    /// the plain order, on lengths around the lane, block and run sizes.
    #[test]
    fn fused_sums_give_the_bits_of_separate_ones() {
        let mut next = crate::simd::test_values(0x7f4a_7c15, 4.0);
        for len in [0, 1, 7, 8, 9, 511, 512, 513, 1030, 2047, 2048, 2049, 4100, 10_000] {
            let d: Vec<f32> = (0..len).map(|_| next()).collect();
            let z: Vec<f32> = (0..len).map(|_| next()).collect();
            let (c, s) = (0.3f32, 1.7f32);
            let xhat: Vec<f32> = z.iter().map(|&z| (z - c) * s).collect();
            let (sum, dot) = sum_and_dot_centered_f64(&d, &z, c, s);
            let prod: Vec<f32> = d.iter().zip(&xhat).map(|(a, b)| a * b).collect();
            let dev: Vec<f32> = z.iter().map(|&z| (z - c) * (z - c)).collect();
            assert_eq!(
                sum.to_bits(),
                one_block_at_a_time(&d).to_bits(),
                "fused sum, length {len}"
            );
            assert_eq!(
                dot.to_bits(),
                one_block_at_a_time(&prod).to_bits(),
                "fused dot, length {len}"
            );
            assert_eq!(
                sum_f64(&d).to_bits(),
                one_block_at_a_time(&d).to_bits(),
                "sum, length {len}"
            );
            assert_eq!(
                sq_dev_f64(&z, c).to_bits(),
                one_block_at_a_time(&dev).to_bits(),
                "deviations, length {len}"
            );
        }
    }
}

/// The ReLU backward pass: zeroes `d` where the post-ReLU activation `a` is
/// not positive (a select per element, in parallel chunks).
pub(crate) fn relu_backward(d: &mut [f32], a: &[f32]) {
    d.par_chunks_mut(1 << 14).zip(a.par_chunks(1 << 14)).for_each(|(d, a)| {
        for (d, &a) in d.iter_mut().zip(a) {
            *d = if a > 0.0 { *d } else { 0.0 };
        }
    });
}
