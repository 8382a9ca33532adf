//! The structured empirical NTK of an MLP ([`super::empirical`]) as tensor
//! code on a device: per block of examples the layer inputs `h_l` and the
//! back-propagated output derivatives `δ_l` (`[n·C, fan_out]`, all C outputs
//! at once) are computed there, and each kernel block is a few GEMMs,
//!
//! `Θ_l((x,c),(x',c')) = (w² ⟨h_l(x), h_l(x')⟩ + b²) · ⟨δ_l(x,c), δ_l(x',c')⟩`
//!
//! (Jacot et al. 2018, Eq. 1, factored per dense layer). A masked layer
//! contributes `w² Σ_a δ_a δ'_a Σ_b m_ab h_b h'_b`, computed for chunks of
//! output units as batched GEMMs. Only each finished block comes back to
//! the host. On candle's CPU device this runs the same tensor code as on a
//! GPU; the CPU's own kernel is [`super::mlp_ntk`] (hand-written GEMMs),
//! against which this one is tested.

use candle_core::{DType, Device, Tensor};

use super::empirical::{check_inputs, Kernel, KernelKind};
use crate::models::Mlp;
use crate::params::{Mask, ParamSet};
use crate::{Error, Result};

/// Entries of the largest intermediate of a masked layer's chunk of units.
const MASKED_CHUNK_ENTRIES: usize = 1 << 26;

/// Layer inputs and output derivatives of a block of examples, on the device.
struct Features {
    n: usize,
    /// `[n, fan_in]` per layer.
    h: Vec<Tensor>,
    /// `[n·C, fan_out]` per layer.
    delta: Vec<Tensor>,
}

fn features(mlp: &Mlp, w: &[(Tensor, Tensor)], x: &Tensor) -> Result<Features> {
    let n = x.dim(0)?;
    let c = mlp.output_dim;
    let layers = mlp.layers();
    let mut h = vec![x.clone()];
    let mut z = Vec::with_capacity(layers.len());
    for (l, d) in layers.iter().enumerate() {
        let (wt, bt) = &w[l];
        let zl = (h[l].matmul(&wt.t()?)? * d.w_mult as f64)?.broadcast_add(&(bt * d.b_mult as f64)?)?;
        if l + 1 < layers.len() {
            h.push(mlp.activation.apply_tensor(&zl)?);
        }
        z.push(zl);
    }
    // Output layer: δ_L(x, c) = e_c, rows (example, output).
    let eye = Tensor::eye(c, DType::F32, x.device())?;
    let mut d = eye.unsqueeze(0)?.broadcast_as((n, c, c))?.reshape((n * c, c))?;
    let mut delta = vec![Tensor::zeros(1, DType::F32, x.device())?; layers.len()];
    for l in (0..layers.len()).rev() {
        if l > 0 {
            let ld = layers[l];
            let prev = (d.matmul(&w[l].0)? * ld.w_mult as f64)?;
            let dz = mlp.activation.derivative_tensor(&z[l - 1])?;
            let prev = prev
                .reshape((n, c, ld.fan_in))?
                .broadcast_mul(&dz.unsqueeze(1)?)?
                .reshape((n * c, ld.fan_in))?;
            delta[l] = std::mem::replace(&mut d, prev);
        } else {
            delta[l] = d.clone();
        }
    }
    Ok(Features { n, h, delta })
}

/// The kernel block between feature blocks `a` and `b`: `[na·per, nb·per]`.
fn block(mlp: &Mlp, mask: &[Option<Tensor>], a: &Features, b: &Features, kind: KernelKind) -> Result<Tensor> {
    let c = mlp.output_dim;
    let (na, nb) = (a.n, b.n);
    let mut out: Option<Tensor> = None;
    let mut add = |t: Tensor| -> Result<()> {
        out = Some(match out.take() {
            Some(o) => (o + t)?,
            None => t,
        });
        Ok(())
    };
    for (l, d) in mlp.layers().iter().enumerate() {
        let (w2, b2) = ((d.w_mult * d.w_mult) as f64, (d.b_mult * d.b_mult) as f64);
        let (ha, hb) = (&a.h[l], &b.h[l]);
        let (da, db) = (&a.delta[l], &b.delta[l]);
        // Scale of the delta Gram per example pair: w²<h,h'> + b² (unmasked weights).
        let gram_h = match &mask[l] {
            None => ha.matmul(&hb.t()?)?.affine(w2, b2)?,
            Some(_) => Tensor::full(b2 as f32, (na, nb), ha.device())?,
        };
        match kind {
            KernelKind::Traced => {
                let g = (da
                    .reshape((na, c * d.fan_out))?
                    .matmul(&db.reshape((nb, c * d.fan_out))?.t()?)?
                    / c as f64)?;
                add((gram_h * g)?)?;
            }
            KernelKind::Full => {
                let g = da.matmul(&db.t()?)?.reshape((na, c, nb, c))?;
                let s = gram_h.reshape((na, 1, nb, 1))?;
                add(g.broadcast_mul(&s)?.reshape((na * c, nb * c))?)?;
            }
        }
        if let Some(m) = &mask[l] {
            add(masked(d.fan_in, d.fan_out, w2, m, ha, hb, da, db, c, kind)?)?;
        }
    }
    out.ok_or_else(|| Error::invalid("MLP for the NTK", "at least one layer", 0))
}

/// `w² Σ_a δ_a δ'_a Σ_b m_ab h_b h'_b` for a masked layer, in chunks of output units.
#[allow(clippy::too_many_arguments)]
fn masked(
    fan_in: usize,
    fan_out: usize,
    w2: f64,
    m: &Tensor,
    ha: &Tensor,
    hb: &Tensor,
    da: &Tensor,
    db: &Tensor,
    c: usize,
    kind: KernelKind,
) -> Result<Tensor> {
    let (na, nb) = (ha.dim(0)?, hb.dim(0)?);
    let per_unit = match kind {
        KernelKind::Traced => na * nb + na * fan_in,
        KernelKind::Full => na * c * nb * c + na * fan_in,
    };
    let chunk = (MASKED_CHUNK_ENTRIES / per_unit.max(1)).clamp(1, fan_out);
    // δ per unit: [fan_out, n, C].
    let ua = da.reshape((na, c, fan_out))?.permute((2, 0, 1))?.contiguous()?;
    let ub = db.reshape((nb, c, fan_out))?.permute((2, 0, 1))?.contiguous()?;
    let (rows, cols) = match kind {
        KernelKind::Traced => (na, nb),
        KernelKind::Full => (na * c, nb * c),
    };
    let mut acc = Tensor::zeros((rows, cols), DType::F32, ha.device())?;
    let hbt = hb.t()?.unsqueeze(0)?;
    let mut u0 = 0;
    while u0 < fan_out {
        let u = chunk.min(fan_out - u0);
        let mu = m.narrow(0, u0, u)?;
        // G_a = (h ⊙ m_a) h'^T: [u, na, nb].
        let hm = ha.unsqueeze(0)?.broadcast_mul(&mu.unsqueeze(1)?)?;
        let g = hm.broadcast_matmul(&hbt)?;
        let (xa, xb) = (ua.narrow(0, u0, u)?, ub.narrow(0, u0, u)?);
        let part = match kind {
            KernelKind::Traced => {
                // Σ_k δ_a(i,k) δ_a(j,k): [u, na, nb].
                let dd = xa.matmul(&xb.transpose(1, 2)?)?;
                ((g * dd)?.sum(0)? * (w2 / c as f64))?
            }
            KernelKind::Full => {
                // δ_a(i,k) δ_a(j,k') G_a(i,j): [u, na, C, nb, C].
                let dd = xa
                    .reshape((u, na * c, 1))?
                    .broadcast_mul(&xb.reshape((u, 1, nb * c))?)?
                    .reshape((u, na, c, nb, c))?;
                let s = g.reshape((u, na, 1, nb, 1))?;
                (dd.broadcast_mul(&s)?.sum(0)?.reshape((rows, cols))? * w2)?
            }
        };
        acc = (acc + part)?;
        u0 += u;
    }
    Ok(acc)
}

/// The structured empirical NTK of an MLP between `x1` (`[n1, d]`) and `x2`
/// (`[n2, d]`) computed on `device` in blocks of `block` examples, over all
/// parameters or, with `mask`, only unmasked weights: the kernel of
/// [`super::mlp_ntk`] (same layout and conventions).
#[allow(clippy::too_many_arguments)]
pub fn mlp_ntk_on(
    device: &Device,
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
    mlp.check_params(params)?;
    let d = mlp.input_dim;
    check_inputs(mlp, x1, n1, "x1")?;
    check_inputs(mlp, x2, n2, "x2")?;
    if let Some(m) = mask {
        m.validate(params)?;
    }
    let block = block.max(1);
    let c = mlp.output_dim;
    let per = if kind == KernelKind::Full { c } else { 1 };
    let (rows, cols) = (n1 * per, n2 * per);
    let mut w = Vec::new();
    let mut masks = Vec::new();
    for l in 0..mlp.layers().len() {
        let (wn, bn) = mlp.layer_names(l);
        w.push((params.get(wn)?.to_tensor(device)?, params.get(bn)?.to_tensor(device)?));
        masks.push(match mask.and_then(|m| m.0 .0.get(wn)) {
            Some(a) => Some(a.to_tensor(device)?),
            None => None,
        });
    }
    let feats = |x: &[f32], n: usize| -> Result<Vec<Features>> {
        (0..n)
            .step_by(block)
            .map(|s| {
                let e = (s + block).min(n);
                let t = Tensor::from_slice(&x[s * d..e * d], (e - s, d), device)?;
                features(mlp, &w, &t)
            })
            .collect()
    };
    let same = std::ptr::eq(x1.as_ptr(), x2.as_ptr()) && n1 == n2;
    let left = feats(x1, n1)?;
    let right_own = if same { Vec::new() } else { feats(x2, n2)? };
    let right = if same { &left } else { &right_own };
    let mut out = vec![0.0f32; rows * cols];
    for (bi, a) in left.iter().enumerate() {
        for (bj, b) in right.iter().enumerate() {
            if same && bj < bi {
                continue;
            }
            let k = block_kernel(mlp, &masks, a, b, kind)?;
            let (r0, c0) = (bi * block * per, bj * block * per);
            let (br, bc) = (a.n * per, b.n * per);
            for i in 0..br {
                out[(r0 + i) * cols + c0..(r0 + i) * cols + c0 + bc].copy_from_slice(&k[i * bc..(i + 1) * bc]);
            }
        }
    }
    if same {
        // Blocks on and above the diagonal were computed: mirror them, as the CPU kernel does.
        super::empirical::mirror_upper_to_lower(&mut out, rows);
    }
    Ok(Kernel {
        data: out,
        rows,
        cols,
        kind,
    })
}

/// One block, copied to the host (row-major).
fn block_kernel(mlp: &Mlp, masks: &[Option<Tensor>], a: &Features, b: &Features, kind: KernelKind) -> Result<Vec<f32>> {
    Ok(block(mlp, masks, a, b, kind)?.flatten_all()?.to_vec1::<f32>()?)
}

/// The structured empirical NTK on `device`: the CPU's hand-written kernel
/// ([`super::mlp_ntk`], blocks of `cpu_block` examples) on the CPU, the
/// tensor kernel ([`mlp_ntk_on`], blocks of 1024) on a GPU. What the
/// tangent-space experiments call with their `--device`.
#[allow(clippy::too_many_arguments)]
pub fn mlp_ntk_for(
    device: &Device,
    mlp: &Mlp,
    params: &ParamSet,
    x1: &[f32],
    n1: usize,
    x2: &[f32],
    n2: usize,
    kind: KernelKind,
    mask: Option<&Mask>,
    cpu_block: usize,
) -> Result<Kernel> {
    if device.is_cpu() {
        super::mlp_ntk(mlp, params, x1, n1, x2, n2, kind, mask, cpu_block)
    } else {
        mlp_ntk_on(device, mlp, params, x1, n1, x2, n2, kind, mask, 1024)
    }
}
