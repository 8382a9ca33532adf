//! The empirical neural tangent kernel `Θ(x, x') = J(x) J(x')^T`
//! (Jacot et al. 2018, Eq. 1 / Lee et al. 2019, Eq. 2), where `J(x)` is the
//! Jacobian of the outputs with respect to the parameters.
//!
//! Two kernels are offered: the **full** kernel, `[n1·C, n2·C]` with row
//! `i·C + c` for example `i` and output `c`, and the **traced** kernel,
//! `[n1, n2]`, the **mean** over outputs of the diagonal blocks
//! (`(1/C) Σ_c Θ_cc`, the convention of neural-tangents' `trace_axes`).
//!
//! The structured implementation never forms `J`. For a dense layer
//! `z = w·h W^T + b·b` the parameter block contributes
//! `Θ_l((x,c),(x',c')) = (w² ⟨h(x), h(x')⟩ + b²) · ⟨δ_l(x,c), δ_l(x',c')⟩`,
//! the product of the Gram matrix of the layer's inputs and the Gram matrix of
//! the back-propagated output derivatives `δ_l(x,c) = ∂f_c(x)/∂z_l`. The
//! derivatives of all C outputs are propagated at once as a `[n·C, fan_out]`
//! matrix. Features are computed once per block of examples; kernel blocks
//! are gemms over those features, so memory is the output plus
//! `O(n · C · Σ fan_out)` features, never `O(n · C · #params)`.
//!
//! With a mask, a masked layer contributes
//! `Σ_a δ_a(x,c) δ_a(x',c') Σ_b m_ab h_b(x) h_b(x')`, computed per output unit `a`.

use candle_core::{Device, Tensor, Var};
use rayon::prelude::*;

use crate::models::{dense, BnStats, Mlp, MlpWorkspace, Network};
use crate::params::{Mask, ParamSet};
use crate::{Error, Result};

/// Which kernel to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelKind {
    /// `[n1·C, n2·C]`.
    Full,
    /// `[n1, n2]`, mean over outputs.
    Traced,
}

/// A kernel matrix (row-major, f32).
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    pub data: Vec<f32>,
    pub rows: usize,
    pub cols: usize,
    pub kind: KernelKind,
}

impl Kernel {
    /// The traced kernel `(1/C) Σ_c Θ_cc` of a full kernel with `c` outputs
    /// (what [`KernelKind::Traced`] computes directly, without a second pass).
    pub fn traced(&self, c: usize) -> Result<Kernel> {
        if self.kind != KernelKind::Full || c == 0 || !self.rows.is_multiple_of(c) || !self.cols.is_multiple_of(c) {
            return Err(Error::invalid(
                "kernel to trace",
                format!("a full kernel whose sides are multiples of C = {c}"),
                format!("{:?} {}x{}", self.kind, self.rows, self.cols),
            ));
        }
        let (n1, n2) = (self.rows / c, self.cols / c);
        let mut data = vec![0.0f32; n1 * n2];
        for i in 0..n1 {
            for j in 0..n2 {
                let s: f32 = (0..c).map(|k| self.data[(i * c + k) * self.cols + j * c + k]).sum();
                data[i * n2 + j] = s / c as f32;
            }
        }
        Ok(Kernel {
            data,
            rows: n1,
            cols: n2,
            kind: KernelKind::Traced,
        })
    }

    /// The kernel in f64 (for eigendecompositions).
    pub fn to_f64(&self) -> Vec<f64> {
        self.data.iter().map(|&v| v as f64).collect()
    }

    /// Frobenius norm.
    pub fn frobenius(&self) -> f64 {
        self.data.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>().sqrt()
    }

    /// Errors unless `other` has this kernel's shape.
    fn check_same_shape(&self, other: &Kernel) -> Result<()> {
        if (self.rows, self.cols) != (other.rows, other.cols) {
            return Err(Error::Shape {
                what: "kernel".into(),
                expected: vec![self.rows, self.cols],
                got: vec![other.rows, other.cols],
            });
        }
        Ok(())
    }

    /// Fort et al. 2020's kernel distance `S = 1 − ⟨K1, K2⟩_F / (||K1||_F ||K2||_F)`:
    /// one minus the cosine between the kernels as vectors, 0 for kernels
    /// equal up to a positive scale, in [0, 2]; errors on a shape mismatch
    /// or a zero kernel.
    pub fn cosine_distance(&self, other: &Kernel) -> Result<f64> {
        self.check_same_shape(other)?;
        let (na, nb) = (self.frobenius(), other.frobenius());
        if !(na > 0.0 && nb > 0.0) {
            return Err(Error::invalid(
                "kernels for a cosine distance",
                "nonzero kernels",
                "a zero kernel",
            ));
        }
        let dot: f64 = self
            .data
            .iter()
            .zip(&other.data)
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum();
        Ok((1.0 - dot / (na * nb)).clamp(0.0, 2.0))
    }

    /// `||self - other||_F / ||self||_F`; errors on a shape mismatch.
    pub fn relative_distance(&self, other: &Kernel) -> Result<f64> {
        self.check_same_shape(other)?;
        let d: f64 = self
            .data
            .iter()
            .zip(&other.data)
            .map(|(&a, &b)| ((a - b) as f64).powi(2))
            .sum();
        Ok(d.sqrt() / self.frobenius().max(f64::MIN_POSITIVE))
    }
}

/// Per-layer features of a block of examples: layer inputs and output derivatives.
struct Features<'a> {
    n: usize,
    /// The block's inputs (layer 0's input), `[n, d]`.
    x: &'a [f32],
    /// `hidden[l]`: output of hidden layer `l` (input of layer `l + 1`), `[n, fan_out]`.
    hidden: Vec<Vec<f32>>,
    /// `delta[l]`: `∂f_c/∂z_l` for every (example, output), `[n·C, fan_out]`.
    delta: Vec<Vec<f32>>,
    /// `φ'(z)` of the last hidden layer, `[n, fan_out]` (empty without hidden
    /// layers): the traced kernel's Gram of that layer's derivatives is taken
    /// from it ([`TracedLast`]).
    dphi_last: Vec<f32>,
}

impl Features<'_> {
    /// Input of layer `l`, `[n, fan_in]`.
    fn h(&self, l: usize) -> &[f32] {
        if l == 0 {
            self.x
        } else {
            &self.hidden[l - 1]
        }
    }
}

fn features<'a>(mlp: &Mlp, p: &ParamSet, x: &'a [f32], n: usize, ws: &mut MlpWorkspace) -> Result<Features<'a>> {
    let c = mlp.output_dim;
    let layers = mlp.layers();
    mlp.forward_fast(p, x, n, ws)?;
    // The workspace's hidden outputs are moved out, not copied (the next
    // block's forward pass allocates its own).
    let hidden = std::mem::take(&mut ws.h);
    let mut delta = vec![Vec::new(); layers.len()];
    let mut dphi_last = Vec::new();
    // Output layer: δ_L(x, c) = e_c.
    let mut d = vec![0.0f32; n * c * c];
    for i in 0..n {
        for k in 0..c {
            d[(i * c + k) * c + k] = 1.0;
        }
    }
    let last = layers.len() - 1;
    for l in (0..layers.len()).rev() {
        if l > 0 {
            let ld = layers[l];
            let w = &p.get(mlp.layer_names(l).0)?.data;
            let z = &ws.z[l - 1];
            let prev = if l == last {
                dphi_last = z.iter().map(|&v| mlp.activation.derivative(v)).collect();
                // Below the output layer, whose δ rows are e_c, the rows of δ·W
                // are the rows of W: per example, its C rows times φ'(z),
                // written once into fresh memory.
                let len = n * c * ld.fan_in;
                let mut prev: Vec<f32> = Vec::with_capacity(len);
                prev.spare_capacity_mut()[..len]
                    .par_chunks_mut(c * ld.fan_in)
                    .zip(z.par_chunks(ld.fan_in))
                    .for_each(|(rows, zi)| {
                        for (k, row) in rows.chunks_exact_mut(ld.fan_in).enumerate() {
                            for (r, &wv) in row.iter_mut().zip(&w[k * ld.fan_in..(k + 1) * ld.fan_in]) {
                                r.write(ld.w_mult * wv);
                            }
                            // SAFETY: every value of `row` was written just above.
                            let row = unsafe { &mut *(row as *mut [std::mem::MaybeUninit<f32>] as *mut [f32]) };
                            mlp.activation.mul_derivative_slice(zi, row);
                        }
                    });
                // SAFETY: the chunks cover the first `len` values, each written above.
                unsafe { prev.set_len(len) };
                prev
            } else {
                // Per example: its C rows of δ·W times φ'(z).
                let mut prev = dense::matmul_nn_new(&d, w, n * c, ld.fan_in, ld.fan_out, ld.w_mult);
                prev.par_chunks_mut(c * ld.fan_in)
                    .zip(z.par_chunks(ld.fan_in))
                    .for_each(|(rows, zi)| {
                        for row in rows.chunks_exact_mut(ld.fan_in) {
                            mlp.activation.mul_derivative_slice(zi, row);
                        }
                    });
                prev
            };
            delta[l] = std::mem::replace(&mut d, prev);
        } else {
            delta[l] = std::mem::take(&mut d);
        }
    }
    Ok(Features {
        n,
        x,
        hidden,
        delta,
        dphi_last,
    })
}

/// The traced kernel's Gram of the last hidden layer's derivatives without
/// them: there `δ(x, c) = w·W_L[c, :] ⊙ φ'(z(x))` (`W_L` the output layer's
/// weights, `w` its multiplier), so
/// `(1/C) Σ_c ⟨δ(x, c), δ(x', c)⟩ = Σ_u s_u φ'_u(z(x)) φ'_u(z(x'))` with
/// `s_u = w² Σ_c W_L[c, u]² / C`: a Gram over the layer's width instead of
/// C times it.
struct TracedLast {
    /// The layer's index (the last hidden layer).
    layer: usize,
    /// `s_u`, one per unit.
    scale: Vec<f32>,
}

impl TracedLast {
    /// `None` for a network without hidden layers.
    fn new(mlp: &Mlp, p: &ParamSet) -> Result<Option<Self>> {
        let layers = mlp.layers();
        let last = layers.len() - 1;
        if last == 0 {
            return Ok(None);
        }
        let out = layers[last];
        let w = &p.get(mlp.layer_names(last).0)?.data;
        let c = out.fan_out;
        let w2 = out.w_mult * out.w_mult / c as f32;
        let scale = (0..out.fan_in)
            .map(|u| {
                w2 * (0..c)
                    .map(|k| w[k * out.fan_in + u] * w[k * out.fan_in + u])
                    .sum::<f32>()
            })
            .collect();
        Ok(Some(TracedLast { layer: last - 1, scale }))
    }
}

/// Errors unless `x` holds `n > 0` rows of the network's input size.
pub(super) fn check_inputs(mlp: &Mlp, x: &[f32], n: usize, what: &str) -> Result<()> {
    check_rows(mlp.input_dim, x, n, &format!("NTK inputs {what}")).map(|_| ())
}

/// `dim`, after checking that `x` holds `n > 0` rows of `dim` values.
fn check_rows(dim: usize, x: &[f32], n: usize, what: &str) -> Result<usize> {
    if n == 0 || x.len() != n * dim {
        return Err(Error::Shape {
            what: what.into(),
            expected: vec![n.max(1), dim],
            got: vec![x.len()],
        });
    }
    Ok(dim)
}

/// Scratch of [`accumulate_block`], reused across blocks and layers instead
/// of fresh multi-megabyte buffers per layer (each one's pages faulted in).
#[derive(Default)]
struct BlockScratch {
    gram_h: Vec<f32>,
    g: Vec<f32>,
    scaled: Vec<f32>,
}

/// Adds the kernel block between feature blocks `a` and `b` into `out`
/// (row stride `ld`, top-left corner at `(r0, c0)` in kernel coordinates).
/// `diag`: `a` is `b` on the kernel's diagonal; then only the block's entries
/// on and above the diagonal are right (the caller mirrors them), and the
/// delta Grams are computed for those only ([`dense::matmul_nt_upper`]).
#[allow(clippy::too_many_arguments)]
fn accumulate_block(
    mlp: &Mlp,
    mask: Option<&Mask>,
    a: &Features,
    b: &Features,
    diag: bool,
    kind: KernelKind,
    traced_last: Option<&TracedLast>,
    out: &mut [f32],
    ld: usize,
    r0: usize,
    c0: usize,
    scratch: &mut BlockScratch,
) -> Result<()> {
    let c = mlp.output_dim;
    let (na, nb) = (a.n, b.n);
    let BlockScratch { gram_h, g, scaled } = scratch;
    gram_h.resize(na * nb, 0.0);
    // On the diagonal, the first example column each example row needs.
    let first = |i: usize| if diag { i } else { 0 };
    for (l, d) in mlp.layers().iter().enumerate() {
        let (w2, b2) = (d.w_mult * d.w_mult, d.b_mult * d.b_mult);
        let layer_mask = mask.and_then(|m| m.0 .0.get(mlp.layer_names(l).0));
        let (da, db) = (&a.delta[l], &b.delta[l]);
        // Scale factor of the delta Gram per example pair: w²<h,h'> + b² (unmasked weights).
        if layer_mask.is_none() {
            dense::matmul_nt(a.h(l), b.h(l), gram_h, na, nb, d.fan_in, w2, false);
            gram_h.iter_mut().for_each(|v| *v += b2);
        } else {
            gram_h.iter_mut().for_each(|v| *v = b2);
        }
        match kind {
            KernelKind::Traced => {
                // Σ_c <δ(i,c), δ(j,c)> = rows of [n, C·fan_out] dotted.
                g.resize(na * nb, 0.0);
                if let Some(t) = traced_last.filter(|t| t.layer == l) {
                    // Σ_u s_u φ'_u(x) φ'_u(x') (see `TracedLast`).
                    scaled.resize(na * d.fan_out, 0.0);
                    for (srow, arow) in scaled
                        .chunks_exact_mut(d.fan_out)
                        .zip(a.dphi_last.chunks_exact(d.fan_out))
                    {
                        for ((o, &v), &s) in srow.iter_mut().zip(arow).zip(&t.scale) {
                            *o = v * s;
                        }
                    }
                    dense::matmul_nt(scaled, &b.dphi_last, g, na, nb, d.fan_out, 1.0, false);
                } else if diag {
                    dense::matmul_nt_upper(da, g, na, c * d.fan_out, 1.0 / c as f32, dense::UPPER_BAND);
                } else {
                    dense::matmul_nt(da, db, g, na, nb, c * d.fan_out, 1.0 / c as f32, false);
                }
                for i in 0..na {
                    let row = &mut out[(r0 + i) * ld + c0..(r0 + i) * ld + c0 + nb];
                    for j in first(i)..nb {
                        row[j] += gram_h[i * nb + j] * g[i * nb + j];
                    }
                }
            }
            KernelKind::Full => {
                g.resize(na * c * nb * c, 0.0);
                if diag {
                    // Bands of whole examples, so that row (i, k) has every column (j ≥ i, k').
                    let band = (dense::UPPER_BAND / c).max(1) * c;
                    dense::matmul_nt_upper(da, g, na * c, d.fan_out, 1.0, band);
                } else {
                    dense::matmul_nt(da, db, g, na * c, nb * c, d.fan_out, 1.0, false);
                }
                let (g, gram_h) = (&*g, &*gram_h);
                // Rows (i, k) of this block are disjoint slices of `out`: scale and add in parallel.
                let rows = &mut out[r0 * ld..(r0 + na * c) * ld];
                rows.par_chunks_mut(ld).enumerate().for_each(|(row, orow)| {
                    let i = row / c;
                    let gr = &g[row * nb * c..(row + 1) * nb * c];
                    let orow = &mut orow[c0..c0 + nb * c];
                    for j in first(i)..nb {
                        let s = gram_h[i * nb + j];
                        for (o, &v) in orow[j * c..(j + 1) * c].iter_mut().zip(&gr[j * c..(j + 1) * c]) {
                            *o += s * v;
                        }
                    }
                });
            }
        }
        if let Some(m) = layer_mask {
            masked_weight_block(d.fan_in, d.fan_out, w2, &m.data, a, b, l, c, kind, out, ld, r0, c0);
        }
    }
    Ok(())
}

/// Masked weight contribution `w² Σ_a δ_a δ'_a Σ_b m_ab h_b h'_b`.
#[allow(clippy::too_many_arguments)]
fn masked_weight_block(
    fan_in: usize,
    fan_out: usize,
    w2: f32,
    m: &[f32],
    a: &Features,
    b: &Features,
    l: usize,
    c: usize,
    kind: KernelKind,
    out: &mut [f32],
    ld: usize,
    r0: usize,
    c0: usize,
) {
    let (na, nb) = (a.n, b.n);
    let mut ha = vec![0.0f32; na * fan_in];
    let mut g = vec![0.0f32; na * nb];
    for unit in 0..fan_out {
        let mrow = &m[unit * fan_in..(unit + 1) * fan_in];
        if mrow.iter().all(|&v| v == 0.0) {
            continue;
        }
        for i in 0..na {
            for (t, (&hv, &mv)) in ha[i * fan_in..(i + 1) * fan_in]
                .iter_mut()
                .zip(a.h(l)[i * fan_in..].iter().zip(mrow))
            {
                *t = hv * mv;
            }
        }
        dense::matmul_nt(&ha, b.h(l), &mut g, na, nb, fan_in, w2, false);
        let (da, db) = (&a.delta[l], &b.delta[l]);
        for i in 0..na {
            for j in 0..nb {
                let gij = g[i * nb + j];
                if gij == 0.0 {
                    continue;
                }
                match kind {
                    KernelKind::Traced => {
                        let s: f32 = (0..c)
                            .map(|k| da[(i * c + k) * fan_out + unit] * db[(j * c + k) * fan_out + unit])
                            .sum();
                        out[(r0 + i) * ld + c0 + j] += gij * s / c as f32;
                    }
                    KernelKind::Full => {
                        for k in 0..c {
                            let dak = da[(i * c + k) * fan_out + unit] * gij;
                            let orow = (r0 + i * c + k) * ld + c0 + j * c;
                            for k2 in 0..c {
                                out[orow + k2] += dak * db[(j * c + k2) * fan_out + unit];
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
// SAFETY: used only by `mirror_upper_to_lower`, whose tasks write disjoint
// strictly-lower entries and read only strictly-upper ones.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Copies the strict upper triangle of the square `[n, n]` matrix onto the
/// strict lower one (making it exactly symmetric), in 64x64 tiles, bands of
/// rows in parallel.
pub(super) fn mirror_upper_to_lower(out: &mut [f32], n: usize) {
    const T: usize = 64;
    assert!(out.len() >= n * n, "mirror: buffer too small");
    let base = SharedMut(out.as_mut_ptr());
    (0..n.div_ceil(T)).into_par_iter().for_each(|band| {
        let p = base.get();
        let (r0, r1) = (band * T, ((band + 1) * T).min(n));
        for c0 in (0..r1).step_by(T) {
            for r in r0..r1 {
                for c in c0..(c0 + T).min(r) {
                    // SAFETY: c < r < n, so (r, c) is strictly lower (written only here,
                    // by this band) and (c, r) strictly upper (never written).
                    unsafe { *p.add(r * n + c) = *p.add(c * n + r) };
                }
            }
        }
    });
}

/// Structured empirical NTK of an MLP between `x1` (`[n1, d]`) and `x2`
/// (`[n2, d]`), over all parameters or, with `mask`, only unmasked weights
/// (masked-out weights contribute nothing). Examples are processed in blocks
/// of `block` rows.
#[allow(clippy::too_many_arguments)]
pub fn mlp_ntk(
    mlp: &Mlp,
    params: &ParamSet,
    x1: &[f32],
    n1: usize,
    x2: &[f32],
    n2: usize,
    kind: KernelKind,
    mask: Option<&Mask>,
    block: usize,
) -> Result<Kernel> {
    // On one of rayon's threads, so that the parallel kernels fork from a
    // worker instead of each being injected into the pool and waited on.
    if rayon::current_thread_index().is_none() {
        return rayon::scope(|_| mlp_ntk(mlp, params, x1, n1, x2, n2, kind, mask, block));
    }
    mlp.check_params(params)?;
    check_inputs(mlp, x1, n1, "x1")?;
    check_inputs(mlp, x2, n2, "x2")?;
    if let Some(m) = mask {
        m.validate(params)?;
    }
    let block = block.max(1);
    let c = mlp.output_dim;
    let d = mlp.input_dim;
    let per = if kind == KernelKind::Full { c } else { 1 };
    let (rows, cols) = (n1 * per, n2 * per);
    let mut out = vec![0.0f32; rows * cols];
    let mut ws = MlpWorkspace::default();
    let same = std::ptr::eq(x1.as_ptr(), x2.as_ptr()) && n1 == n2;
    let blocks2: Vec<Features> = if same {
        Vec::new()
    } else {
        (0..n2)
            .step_by(block)
            .map(|s| {
                let e = (s + block).min(n2);
                features(mlp, params, &x2[s * d..e * d], e - s, &mut ws)
            })
            .collect::<Result<_>>()?
    };
    let blocks1: Vec<Features> = (0..n1)
        .step_by(block)
        .map(|s| {
            let e = (s + block).min(n1);
            features(mlp, params, &x1[s * d..e * d], e - s, &mut ws)
        })
        .collect::<Result<_>>()?;
    let right = if same { &blocks1 } else { &blocks2 };
    let traced_last = match kind {
        KernelKind::Traced => TracedLast::new(mlp, params)?,
        KernelKind::Full => None,
    };
    let mut scratch = BlockScratch::default();
    for (bi, a) in blocks1.iter().enumerate() {
        for (bj, b) in right.iter().enumerate() {
            if same && bj < bi {
                continue;
            }
            accumulate_block(
                mlp,
                mask,
                a,
                b,
                same && bi == bj,
                kind,
                traced_last.as_ref(),
                &mut out,
                cols,
                bi * block * per,
                bj * block * per,
                &mut scratch,
            )?;
        }
    }
    if same {
        mirror_upper_to_lower(&mut out, rows);
    }
    Ok(Kernel {
        data: out,
        rows,
        cols,
        kind,
    })
}

/// Reference NTK from autodiff Jacobians (candle), for any [`Network`]:
/// one backward pass per (example, output) builds `J` explicitly (columns in
/// sorted parameter-name order, masked-out weights dropped), then `J1 J2^T`
/// in f64. Slow and memory-hungry by design: it is what the structured
/// kernel is tested against.
pub fn autodiff_ntk(
    net: &Network,
    params: &ParamSet,
    x1: &[f32],
    n1: usize,
    x2: &[f32],
    n2: usize,
    kind: KernelKind,
    mask: Option<&Mask>,
) -> Result<Kernel> {
    net.check_params(params)?;
    let j1 = jacobian(net, params, x1, n1, mask)?;
    let j2 = jacobian(net, params, x2, n2, mask)?;
    let c = net.output_dim();
    let pcount = j1.len() / (n1 * c).max(1);
    let dot = |a: usize, b: usize| -> f64 {
        j1[a * pcount..(a + 1) * pcount]
            .iter()
            .zip(&j2[b * pcount..(b + 1) * pcount])
            .map(|(&x, &y)| x as f64 * y as f64)
            .sum()
    };
    let (rows, cols, data) = match kind {
        KernelKind::Full => {
            let mut d = vec![0.0f32; n1 * c * n2 * c];
            for r in 0..n1 * c {
                for s in 0..n2 * c {
                    d[r * n2 * c + s] = dot(r, s) as f32;
                }
            }
            (n1 * c, n2 * c, d)
        }
        KernelKind::Traced => {
            let mut d = vec![0.0f32; n1 * n2];
            for i in 0..n1 {
                for j in 0..n2 {
                    d[i * n2 + j] = ((0..c).map(|k| dot(i * c + k, j * c + k)).sum::<f64>() / c as f64) as f32;
                }
            }
            (n1, n2, d)
        }
    };
    Ok(Kernel { data, rows, cols, kind })
}

/// The traced empirical NTK `(1/C) Σ_c J_c J_cᵀ` of any network on `x`
/// (`[n, input_dim]`) by autodiff, one output at a time (memory `n · P`:
/// `J_c` holds one output's per-example gradients), each `J_c J_cᵀ` one
/// GEMM. For a BatchNorm network (a ResNet or VGG) the kernel is the one of
/// the network in evaluation mode: BatchNorm normalizes by `stats` (the
/// statistics at `params`, from calibration data) held fixed, so each
/// example's output is a function of that example alone; `stats` is
/// required then. Cost: `n · C` single-example forward and backward passes.
pub fn autodiff_traced_ntk(
    net: &Network,
    params: &ParamSet,
    x: &[f32],
    n: usize,
    stats: Option<&BnStats>,
) -> Result<Kernel> {
    net.check_params(params)?;
    let dim = check_rows(net.input_dim(), x, n, "NTK inputs")?;
    let dev = Device::Cpu;
    let (vars, ts) = cpu_vars(params)?;
    let c = net.output_dim();
    let p = params.numel();
    let mut jc = vec![0.0f32; n * p];
    let mut kern = vec![0.0f32; n * n];
    for k in 0..c {
        for i in 0..n {
            let xi = Tensor::from_slice(&x[i * dim..(i + 1) * dim], (1, dim), &dev)?;
            let f = net.forward_tensor_eval(&ts, &xi, stats)?;
            let g = f.get(0)?.get(k)?.backward()?;
            let row = &mut jc[i * p..(i + 1) * p];
            let mut at = 0;
            for v in vars.values() {
                let len = v.elem_count();
                match g.get(v.as_tensor()) {
                    Some(t) => row[at..at + len].copy_from_slice(&t.flatten_all()?.to_vec1::<f32>()?),
                    None => row[at..at + len].fill(0.0),
                }
                at += len;
            }
        }
        dense::matmul_nt(&jc, &jc, &mut kern, n, n, p, 1.0 / c as f32, k > 0);
    }
    Ok(Kernel {
        data: kern,
        rows: n,
        cols: n,
        kind: KernelKind::Traced,
    })
}

/// The Jacobian `[n·C, P]` (row `i·C + c`) by autodiff, columns in sorted
/// parameter order, masked-out weights zeroed.
pub fn jacobian(net: &Network, params: &ParamSet, x: &[f32], n: usize, mask: Option<&Mask>) -> Result<Vec<f32>> {
    if net.has_batch_norm() {
        // One example at a time, batch statistics would be those of that
        // example alone (every output equal to the BatchNorm shift).
        return Err(Error::config(
            "model",
            "a network without BatchNorm for the empirical NTK (per-example Jacobians)",
            net.describe(),
        ));
    }
    let dim = check_rows(net.input_dim(), x, n, "Jacobian inputs")?;
    let dev = Device::Cpu;
    let (vars, ts) = cpu_vars(params)?;
    let c = net.output_dim();
    let p = params.numel();
    let mut j = Vec::with_capacity(n * c * p);
    for i in 0..n {
        let xi = Tensor::from_slice(&x[i * dim..(i + 1) * dim], (1, dim), &dev)?;
        let f = net.forward_tensor(&ts, &xi)?;
        for k in 0..c {
            let g = f.get(0)?.get(k)?.backward()?;
            for (name, v) in &vars {
                let grad = match g.get(v.as_tensor()) {
                    Some(t) => t.flatten_all()?.to_vec1::<f32>()?,
                    None => vec![0.0; v.elem_count()],
                };
                match mask.and_then(|m| m.0 .0.get(name)) {
                    Some(m) => j.extend(grad.iter().zip(&m.data).map(|(&g, &b)| g * b)),
                    None => j.extend(grad),
                }
            }
        }
    }
    Ok(j)
}

/// `params` as candle variables on the CPU, and their tensors by name.
type CpuVars = (
    std::collections::BTreeMap<String, Var>,
    std::collections::BTreeMap<String, Tensor>,
);
fn cpu_vars(params: &ParamSet) -> Result<CpuVars> {
    let mut vars = std::collections::BTreeMap::new();
    for (k, a) in params.iter() {
        vars.insert(k.clone(), Var::from_tensor(&a.to_tensor(&Device::Cpu)?)?);
    }
    let ts = vars
        .iter()
        .map(|(k, v): (&String, &Var)| (k.clone(), v.as_tensor().clone()))
        .collect();
    Ok((vars, ts))
}
