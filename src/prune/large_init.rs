//! Large-init pruning (Zhou et al. 2019, Sec. 3, "large_init"): score =
//! `|w_init|`, with `w_init` the weights at θ0. The mask ignores training.

use crate::params::ParamSet;
use crate::Result;

/// `|w_init|` for each listed layer of `init` (the magnitude score of θ0).
pub fn scores(init: &ParamSet, layers: &[String]) -> Result<ParamSet> {
    super::magnitude::scores(init, layers)
}
