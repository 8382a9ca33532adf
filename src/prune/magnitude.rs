//! Magnitude pruning (Frankle & Carbin 2019): score = `|w_final|`.

use crate::params::{Array, ParamSet};
use crate::Result;

/// `|w|` for each listed layer of `trained`.
pub fn scores(trained: &ParamSet, layers: &[String]) -> Result<ParamSet> {
    let mut s = ParamSet::new();
    for k in layers {
        let w = trained.get(k)?;
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
