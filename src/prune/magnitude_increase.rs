//! Magnitude-increase pruning (Zhou et al. 2019): score = `|w_final| − |w_init|`.

use crate::params::{Array, ParamSet};
use crate::Result;

/// `|w_final| − |w_init|` for each listed layer.
pub fn scores(init: &ParamSet, trained: &ParamSet, layers: &[String]) -> Result<ParamSet> {
    let mut s = ParamSet::new();
    for k in layers {
        let (w0, w) = (init.get(k)?, trained.get(k)?);
        w0.check_shape(&w.shape, &format!("init of `{k}`"))?;
        let data = w.data.iter().zip(&w0.data).map(|(a, b)| a.abs() - b.abs()).collect();
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
