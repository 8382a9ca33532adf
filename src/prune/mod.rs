//! Pruning: which weights a mask removes (Frankle & Carbin 2019, Sec. 2;
//! Zhou et al. 2019, Sec. 3 for the alternative criteria).
//!
//! Zhou et al.'s criteria compare the trained weights `w_final` with the
//! weights at **initialization** `w_init` (θ0), also when IMP rewinds to a
//! later step k (their definitions; `get_weight_init.py` of
//! uber-research/deconstructing-lottery-tickets reads `all_weights[0]`).
//!
//! Layer-wise pruning prunes the output layer at half the rate of the other
//! layers unless `layer_rates` names it (Frankle & Carbin 2019, Sec. 2 and
//! Fig. 2's caption: "20% of hidden weights and 10% of output weights per
//! round" for LeNet-300-100); [`PruneSpec::resolved`] makes that explicit.
//!
//! A [`Criterion`] scores every weight (higher = keep); [`prune`] removes
//! the lowest-scoring fraction of the weights that are still kept, per layer
//! or globally. Each criterion is one file and one variant.
//!
//! Invariants (checked by the property tests): masks are 0/1 and only shrink;
//! a pruned weight is never counted or removed again; layer-wise pruning
//! removes `round(p · kept)` weights of each layer, global pruning exactly
//! `round(p · kept)` weights in all; excluded layers stay as they are; ties are
//! broken deterministically (lower flat index is pruned first).

pub mod large_final_same_sign;
pub mod large_init;
pub mod large_init_large_final;
pub mod magnitude;
pub mod magnitude_increase;
pub mod movement;
pub mod random;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::params::{Array, Mask, ParamSet};
use crate::{Error, Result};

/// How weights are scored (higher scores are kept); `w_init` is θ0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// `|w_final|` (Frankle & Carbin 2019; Zhou et al.'s "large_final").
    #[default]
    #[serde(alias = "large_final")]
    Magnitude,
    /// `|w_init|` (Zhou et al. 2019, "large_init").
    LargeInit,
    /// Large at init and after training (Zhou et al. 2019, "large_init_large_final").
    LargeInitLargeFinal,
    /// `|w_final| − |w_init|` (Zhou et al. 2019, "magnitude_increase").
    MagnitudeIncrease,
    /// `|w_final|` among weights that kept their sign; sign changes pruned
    /// first (Zhou et al. 2019, "large_final_same_sign", the supermask criterion).
    LargeFinalSameSign,
    /// `|w_final − w_init|` (Zhou et al. 2019, "movement").
    Movement,
    /// Uniform random scores (the random-pruning control).
    Random,
}

impl Criterion {
    /// Every criterion, in declaration order.
    pub const ALL: [Criterion; 7] = [
        Criterion::Magnitude,
        Criterion::LargeInit,
        Criterion::LargeInitLargeFinal,
        Criterion::MagnitudeIncrease,
        Criterion::LargeFinalSameSign,
        Criterion::Movement,
        Criterion::Random,
    ];

    /// The snake_case name used in configs and reports (Zhou et al.'s names;
    /// `magnitude` is their `large_final`).
    pub fn name(self) -> &'static str {
        match self {
            Criterion::Magnitude => "large_final",
            Criterion::LargeInit => "large_init",
            Criterion::LargeInitLargeFinal => "large_init_large_final",
            Criterion::MagnitudeIncrease => "magnitude_increase",
            Criterion::LargeFinalSameSign => "large_final_same_sign",
            Criterion::Movement => "movement",
            Criterion::Random => "random",
        }
    }
}

/// Per-layer or global ranking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Each layer loses its own fraction of its kept weights.
    #[default]
    Layerwise,
    /// One ranking over all prunable layers; `rate` is the global fraction.
    Global,
}

/// What to prune and how much per round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneSpec {
    #[serde(default)]
    pub criterion: Criterion,
    #[serde(default)]
    pub scope: Scope,
    /// Fraction of the remaining weights removed per round, in [0, 1).
    #[serde(default = "default_rate")]
    pub rate: f64,
    /// Per-layer rates (layer-wise scope), e.g. `{ "fc3.weight" = 0.1 }`.
    #[serde(default)]
    pub layer_rates: BTreeMap<String, f64>,
    /// Layers never pruned.
    #[serde(default)]
    pub exclude: Vec<String>,
}

fn default_rate() -> f64 {
    0.2
}

impl Default for PruneSpec {
    fn default() -> Self {
        PruneSpec {
            criterion: Criterion::default(),
            scope: Scope::default(),
            rate: 0.2,
            layer_rates: BTreeMap::new(),
            exclude: Vec::new(),
        }
    }
}

impl PruneSpec {
    /// Errors on rates outside [0, 1), or layer names that are not in `prunable`.
    pub fn validate(&self, prunable: &[String]) -> Result<()> {
        let check = |field: String, v: f64| -> Result<()> {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::config(field, "a pruning rate in [0, 1)", v))
            }
        };
        check("prune.rate".into(), self.rate)?;
        for (k, &v) in &self.layer_rates {
            check(format!("prune.layer_rates.{k}"), v)?;
        }
        for k in self.layer_rates.keys().chain(&self.exclude) {
            if !prunable.contains(k) {
                return Err(Error::config("prune layer name", format!("one of {prunable:?}"), k));
            }
        }
        if self.scope == Scope::Global && !self.layer_rates.is_empty() {
            return Err(Error::config(
                "prune.layer_rates",
                "no per-layer rates with scope = \"global\"",
                format!("{:?}", self.layer_rates),
            ));
        }
        Ok(())
    }

    /// The spec with the default output-layer rate written out: with a
    /// layer-wise scope, the last of `prunable` (the output layer) gets half
    /// of `rate` unless `layer_rates` or `exclude` name it (Frankle & Carbin
    /// 2019's FC recipe). A global scope is returned unchanged (open_lth's
    /// `sparse_global` has no per-layer rates).
    pub fn resolved(&self, prunable: &[String]) -> PruneSpec {
        let mut out = self.clone();
        if self.scope == Scope::Layerwise {
            if let Some(last) = prunable.last() {
                if !self.layer_rates.contains_key(last) && !self.exclude.contains(last) {
                    out.layer_rates.insert(last.clone(), self.rate / 2.0);
                }
            }
        }
        out
    }

    /// The overall density (kept fraction of `counts`' weights) after each of
    /// `rounds` rounds, starting from `kept` weights per layer out of `counts`
    /// (index 0 = before pruning). Errors when a round would leave a pruned
    /// layer (layer-wise) or all layers (global) without a weight, naming the
    /// layer, the round and the rate, so that a run fails before training.
    pub fn planned_densities(
        &self,
        kept: &BTreeMap<String, usize>,
        counts: &BTreeMap<String, usize>,
        rounds: usize,
    ) -> Result<Vec<f64>> {
        let total: usize = counts.values().sum::<usize>().max(1);
        let mut kept = kept.clone();
        let mut out = vec![kept.values().sum::<usize>() as f64 / total as f64];
        for round in 1..=rounds {
            match self.scope {
                Scope::Layerwise => {
                    for (k, n) in kept.iter_mut() {
                        let remove = (self.rate_of(k) * *n as f64).round() as usize;
                        if remove > 0 && remove >= *n {
                            return Err(Error::config(
                                format!("prune rate of `{k}`"),
                                format!("a rate that leaves `{k}` at least one weight after round {round}"),
                                format!("{} removes all {n} remaining weights", self.rate_of(k)),
                            ));
                        }
                        *n -= remove;
                    }
                }
                Scope::Global => {
                    let prunable: usize = kept
                        .iter()
                        .filter(|(k, _)| !self.exclude.contains(k))
                        .map(|(_, n)| *n)
                        .sum();
                    let remove = (self.rate * prunable as f64).round() as usize;
                    if remove > 0 && remove >= prunable {
                        return Err(Error::config(
                            "prune.rate",
                            format!("a rate that leaves at least one weight after round {round}"),
                            format!("{} removes all {prunable} remaining weights", self.rate),
                        ));
                    }
                    // Spread over layers in proportion (only the total is exact).
                    let frac = 1.0 - remove as f64 / prunable.max(1) as f64;
                    for (k, n) in kept.iter_mut() {
                        if !self.exclude.contains(k) {
                            *n = (*n as f64 * frac).round() as usize;
                        }
                    }
                }
            }
            out.push(kept.values().sum::<usize>() as f64 / total as f64);
        }
        Ok(out)
    }

    /// For each target density, the round (≥ 1) whose planned density is
    /// closest to it in log scale, with that density; planning stops at the
    /// smallest target, after `max_rounds`, or before a round would empty a
    /// layer. A target farther than `max(0.5, ln 1/(1 − rate))` in log
    /// density from every reachable round is an error naming `field`.
    pub fn rounds_for_densities(
        &self,
        counts: &BTreeMap<String, usize>,
        targets: &[f64],
        max_rounds: usize,
        field: &str,
    ) -> Result<Vec<(usize, f64)>> {
        let smallest = targets.iter().copied().fold(1.0, f64::min);
        let mut planned = vec![1.0];
        for r in 1..=max_rounds {
            match self.planned_densities(counts, counts, r) {
                Ok(p) => planned = p,
                Err(e) if r == 1 => return Err(e),
                Err(_) => break,
            }
            if planned[r] < smallest {
                break;
            }
        }
        let tolerance = 0.5f64.max((1.0 / (1.0 - self.rate)).ln());
        targets
            .iter()
            .map(|&t| {
                let (r, d) = planned
                    .iter()
                    .enumerate()
                    .skip(1)
                    .min_by(|a, b| (a.1.ln() - t.ln()).abs().total_cmp(&(b.1.ln() - t.ln()).abs()))
                    .map(|(r, &d)| (r, d))
                    .unwrap_or((0, 1.0));
                if r == 0 || (d.ln() - t.ln()).abs() > tolerance {
                    return Err(Error::config(
                        field,
                        format!(
                            "densities reachable at rate {} before a layer empties (closest: {d:.4})",
                            self.rate
                        ),
                        t,
                    ));
                }
                Ok((r, d))
            })
            .collect()
    }

    /// The rate applied to `layer`.
    pub fn rate_of(&self, layer: &str) -> f64 {
        if self.exclude.iter().any(|e| e == layer) {
            0.0
        } else {
            self.layer_rates.get(layer).copied().unwrap_or(self.rate)
        }
    }
}

/// Scores of the masked layers under `criterion`; `init` (θ0 for Zhou et
/// al.'s criteria) and `trained` have the same layout, `seed` drives the
/// random criterion.
pub fn scores(
    criterion: Criterion,
    init: &ParamSet,
    trained: &ParamSet,
    layers: &[String],
    seed: u64,
) -> Result<ParamSet> {
    match criterion {
        Criterion::Magnitude => magnitude::scores(trained, layers),
        Criterion::LargeInit => large_init::scores(init, layers),
        Criterion::LargeInitLargeFinal => large_init_large_final::scores(init, trained, layers),
        Criterion::MagnitudeIncrease => magnitude_increase::scores(init, trained, layers),
        Criterion::LargeFinalSameSign => large_final_same_sign::scores(init, trained, layers),
        Criterion::Movement => movement::scores(init, trained, layers),
        Criterion::Random => random::scores(trained, layers, seed),
    }
}

/// One pruning round: removes the lowest-scoring fraction of the kept weights.
/// `scores` must cover every layer of `mask`.
pub fn prune(spec: &PruneSpec, mask: &Mask, scores: &ParamSet) -> Result<Mask> {
    let layers: Vec<String> = mask.0.names().cloned().collect();
    spec.validate(&layers)?;
    for k in &layers {
        let (m, s) = (mask.0.get(k)?, scores.get(k)?);
        if m.shape != s.shape {
            return Err(Error::Shape {
                what: format!("scores of `{k}`"),
                expected: m.shape.clone(),
                got: s.shape.clone(),
            });
        }
        if let Some(v) = s.data.iter().find(|v| v.is_nan()) {
            return Err(Error::invalid(format!("pruning score in `{k}`"), "a number", v));
        }
    }
    mask.validate_binary()?;
    let mut out = mask.clone();
    match spec.scope {
        Scope::Layerwise => {
            for k in &layers {
                let m = mask.0.get(k)?;
                let kept: Vec<usize> = (0..m.len()).filter(|&i| m.data[i] != 0.0).collect();
                let remove = (spec.rate_of(k) * kept.len() as f64).round() as usize;
                let sk = &scores.get(k)?.data;
                let order = lowest(kept.iter().map(|&i| (sk[i], 0usize, i)).collect(), remove);
                let o = out.0.get_mut(k)?;
                for &(_, _, i) in &order {
                    o.data[i] = 0.0;
                }
            }
        }
        Scope::Global => {
            let mut all = Vec::new();
            for (li, k) in layers.iter().enumerate() {
                if spec.exclude.contains(k) {
                    continue;
                }
                let (m, s) = (mask.0.get(k)?, scores.get(k)?);
                all.extend((0..m.len()).filter(|&i| m.data[i] != 0.0).map(|i| (s.data[i], li, i)));
            }
            let remove = (spec.rate * all.len() as f64).round() as usize;
            let order = lowest(all, remove);
            for &(_, li, i) in &order {
                out.0.get_mut(&layers[li])?.data[i] = 0.0;
            }
        }
    }
    // A layer with no weight left disconnects the network: every later
    // training run would be meaningless, so this is an error, not a warning.
    for k in &layers {
        let before = mask.0.get(k)?.data.iter().filter(|&&v| v != 0.0).count();
        let after = out.0.get(k)?.data.iter().filter(|&&v| v != 0.0).count();
        if before > 0 && after == 0 {
            return Err(Error::LayerCollapse {
                layer: k.clone(),
                before,
            });
        }
    }
    Ok(out)
}

/// The `count` lowest candidates under the order (score, layer, index)
/// ascending, the deterministic tie-break; a strict order, so the set is
/// unique. Selection, not a sort: linear time (pruning at initialization
/// and SynFlow's 100 rounds rank a whole network each time).
fn lowest(mut v: Vec<(f32, usize, usize)>, count: usize) -> Vec<(f32, usize, usize)> {
    let count = count.min(v.len());
    if count > 0 && count < v.len() {
        v.select_nth_unstable_by(count, |a, b| {
            a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
        });
    }
    v.truncate(count);
    v
}

/// A random mask with exactly the per-layer kept counts of `mask`
/// (the random-pruning control of Frankle & Carbin 2019).
pub fn random_like(mask: &Mask, seed: u64) -> Result<Mask> {
    let mut rng = crate::rng::stream(seed, "random-mask");
    let mut out = ParamSet::new();
    for (k, m) in mask.0.iter() {
        let kept = m.data.iter().filter(|&&v| v != 0.0).count();
        let mut idx: Vec<usize> = (0..m.len()).collect();
        rand::seq::SliceRandom::shuffle(idx.as_mut_slice(), &mut rng);
        let mut data = vec![0.0f32; m.len()];
        for &i in idx.iter().take(kept) {
            data[i] = 1.0;
        }
        out.insert(
            k.clone(),
            Array {
                shape: m.shape.clone(),
                data,
            },
        );
    }
    Ok(Mask(out))
}

/// Zhou et al. 2019's sign-only reinitialization: each kept weight becomes
/// `sign(w_init) · σ_l`, with `σ_l` the standard deviation of layer l's
/// initial weights; masked weights are 0; other parameters keep `init`.
pub fn sign_constant(init: &ParamSet, mask: &Mask) -> Result<ParamSet> {
    let mut p = init.clone();
    for (k, m) in mask.0.iter() {
        let w = p.get_mut(k)?;
        let n = w.len().max(1) as f64;
        let mean = w.data.iter().map(|&v| v as f64).sum::<f64>() / n;
        let std = (w.data.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt() as f32;
        for (v, &b) in w.data.iter_mut().zip(&m.data) {
            *v = if b == 0.0 { 0.0 } else { std * v.signum() };
        }
    }
    Ok(p)
}

/// Per-layer density (kept fraction) of a mask.
pub fn densities(mask: &Mask) -> BTreeMap<String, f64> {
    mask.0
        .iter()
        .map(|(k, m)| {
            (
                k.clone(),
                m.data.iter().filter(|&&v| v != 0.0).count() as f64 / m.len().max(1) as f64,
            )
        })
        .collect()
}
