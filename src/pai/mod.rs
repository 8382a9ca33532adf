//! Pruning at initialization: a mask chosen at θ0, before any training, at a
//! requested density (the fraction of prunable weights kept). One file and
//! one [`PaiMethod`] arm per method:
//!
//! - [`random`]: uniform random, the same density in every layer;
//! - [`magnitude`]: keep the largest `|θ0|`;
//! - [`snip`]: SNIP (Lee et al. 2019, Eq. 6), `|∂L/∂θ ⊙ θ|` on a batch;
//! - [`grasp`]: GraSP (Wang et al. 2020, Eq. 8), keep the largest `θ ⊙ H g`;
//! - [`synflow`]: SynFlow (Tanaka et al. 2020, Alg. 1), iterative and data-free;
//! - [`phew`]: PHEW (Patil & Dovrolis 2021), biased random walks input to output, data-free.
//!
//! Scores, scopes and schedules follow the authors' code: ganguli-lab/Synaptic-Flow
//! `Pruners/pruners.py` (SNIP, GraSP, SynFlow, magnitude, random; `prune.py`'s
//! exponential SynFlow schedule over 100 iterations; global scope by
//! default; the SNIP/GraSP batch is 10 examples per class) and
//! ShreyasMalakarjunPatil/PHEW `Prune/phew_utils.py` (PHEW). Differences,
//! each named in its file: masks keep exactly the requested number of
//! weights (ties broken by lower layer then lower index, as in
//! [`crate::prune`]) where the authors threshold with `<=`; every random
//! choice comes from a seed; GraSP's Hessian-gradient product is a central
//! difference of gradients instead of double backpropagation.

pub mod grasp;
pub mod magnitude;
pub mod phew;
pub mod random;
pub mod snip;
pub mod synflow;

use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::models::Network;
use crate::params::{Mask, ParamSet};
use crate::prune::{PruneSpec, Scope};
use crate::train::Loss;
use crate::{Error, Result};

/// A pruning-at-initialization method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PaiMethod {
    Random,
    Magnitude,
    Snip,
    Grasp,
    Synflow,
    Phew,
}

impl PaiMethod {
    /// Every method, in declaration order.
    pub const ALL: [PaiMethod; 6] = [
        PaiMethod::Random,
        PaiMethod::Magnitude,
        PaiMethod::Snip,
        PaiMethod::Grasp,
        PaiMethod::Synflow,
        PaiMethod::Phew,
    ];

    /// The snake_case name used in configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            PaiMethod::Random => "random",
            PaiMethod::Magnitude => "magnitude",
            PaiMethod::Snip => "snip",
            PaiMethod::Grasp => "grasp",
            PaiMethod::Synflow => "synflow",
            PaiMethod::Phew => "phew",
        }
    }

    /// Whether the method looks at training data.
    pub fn uses_data(self) -> bool {
        matches!(self, PaiMethod::Snip | PaiMethod::Grasp)
    }

    /// The ranking scope the method is defined with: random pruning keeps the
    /// density in every layer, PHEW's walks fill one global budget, the
    /// scored methods rank globally (Synaptic-Flow's default).
    pub fn default_scope(self) -> Scope {
        match self {
            PaiMethod::Random => Scope::Layerwise,
            _ => Scope::Global,
        }
    }
}

/// How to prune at initialization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaiSpec {
    pub method: PaiMethod,
    /// Fraction of the prunable weights kept, in (0, 1).
    pub density: f64,
    /// Ranking scope; None = the method's own ([`PaiMethod::default_scope`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Training examples SNIP and GraSP score on (default 10 per class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_examples: Option<usize>,
    /// SynFlow's pruning iterations (default 100).
    #[serde(default = "default_synflow_iterations")]
    pub synflow_iterations: usize,
    /// Seed of the method's random choices (random scores, data subset, walks).
    #[serde(default)]
    pub seed: u64,
}

fn default_synflow_iterations() -> usize {
    100
}

impl PaiSpec {
    /// A spec with the method's defaults.
    pub fn new(method: PaiMethod, density: f64, seed: u64) -> Self {
        PaiSpec {
            method,
            density,
            scope: None,
            data_examples: None,
            synflow_iterations: default_synflow_iterations(),
            seed,
        }
    }

    /// The scope used.
    pub fn scope(&self) -> Scope {
        self.scope.unwrap_or(self.method.default_scope())
    }

    /// Errors on a density outside (0, 1), a scope the method is not
    /// defined with, zero SynFlow iterations or zero data examples.
    pub fn validate(&self) -> Result<()> {
        if !(self.density > 0.0 && self.density < 1.0) {
            return Err(Error::config(
                "pai.density",
                "a fraction of weights kept in (0, 1)",
                self.density,
            ));
        }
        if self.method == PaiMethod::Phew && self.scope() != Scope::Global {
            return Err(Error::config(
                "pai.scope",
                "\"global\" for phew (its walks fill one budget for the whole network)",
                "layerwise",
            ));
        }
        if self.synflow_iterations == 0 {
            return Err(Error::config("pai.synflow_iterations", ">= 1", 0));
        }
        if self.data_examples == Some(0) {
            return Err(Error::config("pai.data_examples", ">= 1", 0));
        }
        Ok(())
    }
}

/// The mask of `spec.method` for `net` at parameters `theta0`, keeping
/// `spec.density` of the prunable weights (exactly, rounded, per layer or
/// globally by scope; PHEW may keep up to `layers − 1` more, see [`phew`]).
/// `train` supplies SNIP's and GraSP's batch; `loss` is the training loss.
/// Errors before any work on a bad spec, and when the mask would leave a
/// layer without weights.
pub fn prune_at_init(net: &Network, theta0: &ParamSet, train: &Dataset, loss: Loss, spec: &PaiSpec) -> Result<Mask> {
    spec.validate()?;
    net.check_params(theta0)?;
    let layers = net.prunable();
    let full = Mask::ones(theta0, &layers)?;
    match spec.method {
        PaiMethod::Random => keep_top(
            &full,
            &random::scores(theta0, &layers, spec.seed)?,
            spec.density,
            spec.scope(),
        ),
        PaiMethod::Magnitude => keep_top(&full, &magnitude::scores(theta0, &layers)?, spec.density, spec.scope()),
        PaiMethod::Snip => {
            let batch = batch(train, spec)?;
            keep_top(
                &full,
                &snip::scores(net, theta0, &batch, loss, &layers)?,
                spec.density,
                spec.scope(),
            )
        }
        PaiMethod::Grasp => {
            let batch = batch(train, spec)?;
            keep_top(
                &full,
                &grasp::scores(net, theta0, &batch, loss, &layers)?,
                spec.density,
                spec.scope(),
            )
        }
        PaiMethod::Synflow => synflow::mask(net, theta0, &full, spec.density, spec.synflow_iterations, spec.scope()),
        PaiMethod::Phew => phew::mask(net, theta0, spec.density, spec.seed),
    }
}

/// `f(a, b)` element by element over the listed layers of `a` and `b` (same layout).
pub(crate) fn elementwise(
    a: &ParamSet,
    b: &ParamSet,
    layers: &[String],
    f: impl Fn(f32, f32) -> f32,
) -> Result<ParamSet> {
    let mut s = ParamSet::new();
    for k in layers {
        let (x, y) = (a.get(k)?, b.get(k)?);
        x.check_shape(&y.shape, k)?;
        let data = x.data.iter().zip(&y.data).map(|(&p, &q)| f(p, q)).collect();
        s.insert(k.clone(), crate::params::Array::new(x.shape.clone(), data)?);
    }
    Ok(s)
}

/// The seeded random subset of `train` SNIP and GraSP score on.
fn batch(train: &Dataset, spec: &PaiSpec) -> Result<Dataset> {
    let want = spec.data_examples.unwrap_or(10 * train.num_classes).min(train.len());
    if want == 0 {
        return Err(Error::invalid("training set for SNIP/GraSP", "at least one example", 0));
    }
    let mut idx: Vec<usize> = (0..train.len()).collect();
    let mut rng = crate::rng::stream(spec.seed, "pai-data");
    rand::seq::SliceRandom::shuffle(idx.as_mut_slice(), &mut rng);
    idx.truncate(want);
    train.subset(&idx)
}

/// Keeps, of the weights `mask` keeps, the `round(density · n)` highest
/// scores (n: all weights of the network for a global scope, of each layer
/// for a layer-wise one). Exact counts; ties as [`crate::prune::prune`]; a
/// layer left without weights is an error.
pub fn keep_top(mask: &Mask, scores: &ParamSet, density: f64, scope: Scope) -> Result<Mask> {
    let target = |n: usize| ((density * n as f64).round() as usize).max(1);
    let kept = |m: &crate::params::Array| m.data.iter().filter(|&&v| v != 0.0).count();
    let spec = |rate: f64, layer_rates| PruneSpec {
        scope,
        rate,
        layer_rates,
        ..PruneSpec::default()
    };
    // A rate of (kept − keep) / kept removes exactly kept − keep weights.
    let rate_of = |have: usize, keep: usize| {
        if have == 0 || keep >= have {
            0.0
        } else {
            (have - keep) as f64 / have as f64
        }
    };
    let p = match scope {
        Scope::Global => {
            let total: usize = mask.0.iter().map(|(_, m)| m.len()).sum();
            let have: usize = mask.0.iter().map(|(_, m)| kept(m)).sum();
            spec(rate_of(have, target(total)), Default::default())
        }
        Scope::Layerwise => {
            let rates = mask
                .0
                .iter()
                .map(|(k, m)| (k.clone(), rate_of(kept(m), target(m.len()))))
                .collect();
            spec(0.0, rates)
        }
    };
    crate::prune::prune(&p, mask, scores)
}
