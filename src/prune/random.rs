//! Random pruning: uniform random scores from a seed (the control of
//! Frankle & Carbin 2019, Sec. 2).

use rand::Rng;

use crate::params::{Array, ParamSet};
use crate::Result;

/// Uniform `[0, 1)` scores for each listed layer (stream "prune-random").
pub fn scores(trained: &ParamSet, layers: &[String], seed: u64) -> Result<ParamSet> {
    let mut rng = crate::rng::stream(seed, "prune-random");
    let mut s = ParamSet::new();
    for k in layers {
        let w = trained.get(k)?;
        s.insert(
            k.clone(),
            Array {
                shape: w.shape.clone(),
                data: (0..w.len()).map(|_| rng.gen::<f32>()).collect(),
            },
        );
    }
    Ok(s)
}
