//! Large-init-large-final pruning (Zhou et al. 2019, Sec. 3,
//! "large_init_large_final"): keep the weights that are large both at θ0 and
//! after training.
//!
//! The authors' code (uber-research/deconstructing-lottery-tickets,
//! `get_weight_init.py`, method `large_init_large_final`) keeps, per layer,
//! the weights with `|w_init| ≥ P_q(|w_init|)` and `|w_final| ≥ P_q(|w_final|)`
//! for one percentile q found by bisection so that the requested count is
//! pruned. Keeping both percentile ranks above q is the same as keeping
//! `min(rank(|w_init|), rank(|w_final|))` above q, so the score here is that
//! minimum of the two within-layer ranks (normalized to [0, 1]); ranking by
//! it prunes exactly the requested count without a bisection. With a global
//! scope the normalized ranks are compared across layers (a deviation: the
//! authors' code is layer-wise only).

use crate::params::{Array, ParamSet};
use crate::Result;

/// Normalized ascending ranks of `v` (ties by position), in [0, 1].
fn ranks(v: &[f32]) -> Vec<f32> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]).then(a.cmp(&b)));
    let n = (v.len().max(2) - 1) as f32;
    let mut r = vec![0.0f32; v.len()];
    for (pos, &i) in idx.iter().enumerate() {
        r[i] = pos as f32 / n;
    }
    r
}

/// `min(rank |w_init|, rank |w_final|)` for each listed layer.
pub fn scores(init: &ParamSet, trained: &ParamSet, layers: &[String]) -> Result<ParamSet> {
    let mut s = ParamSet::new();
    for k in layers {
        let (w0, w) = (init.get(k)?, trained.get(k)?);
        w0.check_shape(&w.shape, &format!("init of `{k}`"))?;
        let ri = ranks(&w0.data.iter().map(|v| v.abs()).collect::<Vec<_>>());
        let rf = ranks(&w.data.iter().map(|v| v.abs()).collect::<Vec<_>>());
        s.insert(
            k.clone(),
            Array {
                shape: w.shape.clone(),
                data: ri.iter().zip(&rf).map(|(a, b)| a.min(*b)).collect(),
            },
        );
    }
    Ok(s)
}
