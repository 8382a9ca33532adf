//! Large-init pruning (Zhou et al. 2019, Sec. 3, "large_init"): score =
//! `|w_init|`, with `w_init` the weights at θ0. The mask ignores training.

use crate::params::{Array, ParamSet};
use crate::Result;

/// `|w_init|` for each listed layer of `init`.
pub fn scores(init: &ParamSet, layers: &[String]) -> Result<ParamSet> {
    let mut s = ParamSet::new();
    for k in layers {
        let w = init.get(k)?;
        s.insert(
            k.clone(),
            Array {
                shape: w.shape.clone(),
                data: w.data.iter().map(|v| v.abs()).collect(),
            },
        );
    }
    Ok(s)
}
