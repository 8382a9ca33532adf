//! Magnitude pruning at initialization: keep the largest `|θ0|`
//! (Synaptic-Flow `Pruners/pruners.py`, `Mag`; Frankle et al. 2021's
//! "magnitude at initialization"), global by default.

use crate::params::ParamSet;
use crate::Result;

/// `|θ0|` of each listed layer.
pub fn scores(theta0: &ParamSet, layers: &[String]) -> Result<ParamSet> {
    crate::prune::large_init::scores(theta0, layers)
}
