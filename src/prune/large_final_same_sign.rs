//! Large-final-same-sign pruning (Zhou et al. 2019, Sec. 5, the supermask
//! criterion "large_final_same_sign"): score = `|w_final|` where
//! `sign(w_final) = sign(w_init)` (θ0), and every weight whose sign changed
//! is pruned before any weight whose sign did not. The authors' code
//! (`get_weight_init.py`) sets the changed-sign scores to 0; here they are
//! `−1` so that they rank strictly below even a same-sign weight of exactly 0.

use crate::params::{Array, ParamSet};
use crate::Result;

/// `|w_final|` if the sign is kept, else `−1`, for each listed layer.
pub fn scores(init: &ParamSet, trained: &ParamSet, layers: &[String]) -> Result<ParamSet> {
    let mut s = ParamSet::new();
    for k in layers {
        let (w0, w) = (init.get(k)?, trained.get(k)?);
        w0.check_shape(&w.shape, &format!("init of `{k}`"))?;
        let data = w
            .data
            .iter()
            .zip(&w0.data)
            .map(|(f, i)| if f.signum() == i.signum() { f.abs() } else { -1.0 })
            .collect();
        s.insert(
            k.clone(),
            Array {
                shape: w.shape.clone(),
                data,
            },
        );
    }
    Ok(s)
}
