//! `ltk weight-agnostic`: masks evaluated with one shared weight (Gaier & Ha
//! 2019, "Weight agnostic neural networks", Sec. 3-4: every connection takes
//! the same value w, and a network is judged by its mean and best accuracy
//! over a range of w).
//!
//! Per seed (one unit): the IMP ticket of [`crate::experiments::imp`] (rewound to θ0) at
//! the round closest to each target density, and at the same per-layer
//! counts the supermask of Zhou et al. 2019 (`large_final_same_sign` from
//! θ0 and the dense θT, one-shot), a PHEW mask ([`crate::pai::phew`], same
//! global density), an edge-popup mask ([`crate::strong::edge_popup`],
//! trained on its own Kaiming-uniform weights, the same global density kept
//! in every layer; its signs come from those weights) and a random mask
//! (same per-layer counts). Each mask is
//! evaluated, without training, with every kept weight set to `w · s`: `s`
//! the sign of θ0 (`signs = "init"`) or +1 (`"positive"`, as WANNs), over
//! the configured w; biases are zero. Gaier & Ha evaluate w ∈ {±2, ±1, ±0.5}
//! (Sec. 4) and search the architecture for that; here the masks come from
//! pruning, which is the question: does a ticket's mask alone carry the
//! solution?
//!
//! With ReLU (or identity) activations and zero biases the network is
//! positively homogeneous in its weights, `f(c·θ) = c^L f(θ)` for c > 0, so
//! every positive w gives the same predictions (and every negative w): the
//! sweep then tests only the sign of w. Gaier & Ha's networks mix
//! activations; set `activation = "tanh"` (an MLP model) for a sweep in
//! which |w| matters. The report says which case a run is.
//!
//! The weight-agnostic mask search (`wann_search`): edge-popup on its own
//! random weights with every kept edge set to `w · sign(W)` and the loss
//! averaged over the configured w ([`EdgePopup::weight_agnostic`]), at the
//! ticket's global density kept in every layer, like `edge_popup`. It is
//! Gaier & Ha's objective (mean performance over shared weights, Sec. 3)
//! with edge-popup's topology search in place of their NEAT-style search.
//!
//! The verdicts ([`claims`]) are this project's hypotheses, not claims of
//! Gaier & Ha: the ticket's mask against a random mask, and the
//! weight-agnostic search against edge-popup, each a paired per-seed
//! difference at the sparsest configured target, decided as one family.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Experiment;
use crate::experiments::imp::{Imp, ImpConfig};
use crate::params::{Mask, ParamSet};
use crate::paths::{write_csv, write_text, RunDir};
use crate::prune::{self, Criterion, PruneSpec};
use crate::report::plot::{LineChart, Marker, Series, Spread};
use crate::report::verdict::protocol::{decide_family, Declared, Evidence, Hypothesis, Item, Side};
use crate::report::verdict::{self, Claim};
use crate::runner::UnitEnv;
use crate::stats;
use crate::strong::edge_popup::{EdgePopup, WeightInit};
use crate::train;
use crate::{Error, Result};

/// Where each kept weight's sign comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signs {
    /// sign(θ0).
    Init,
    /// All +1 (Gaier & Ha's shared weight).
    Positive,
}

/// `[weight_agnostic]` of an experiment TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightAgnosticConfig {
    /// Target densities (default 10% and 3.6%).
    #[serde(default = "default_densities")]
    pub densities: Vec<f64>,
    /// Shared weight values (default Gaier & Ha's ±0.5, ±1, ±2 and ±0.25, ±4).
    #[serde(default = "default_weights")]
    pub weights: Vec<f32>,
    #[serde(default = "default_signs")]
    pub signs: Vec<Signs>,
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// IMP's per-round pruning (it sets the per-layer counts of every mask).
    #[serde(default)]
    pub prune: PruneSpec,
}

fn default_densities() -> Vec<f64> {
    vec![0.1, 0.036]
}
fn default_weights() -> Vec<f32> {
    vec![-4.0, -2.0, -1.0, -0.5, -0.25, 0.25, 0.5, 1.0, 2.0, 4.0]
}
fn default_signs() -> Vec<Signs> {
    vec![Signs::Init, Signs::Positive]
}
fn default_seeds() -> Vec<u64> {
    vec![0, 1, 2]
}

impl Default for WeightAgnosticConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty [weight_agnostic] takes every default")
    }
}

/// The masks compared.
pub const MASKS: [&str; 6] = ["imp", "supermask", "phew", "edge_popup", "wann_search", "random"];

impl WeightAgnosticConfig {
    /// Checks everything before any training; returns (IMP round, density) per target.
    pub fn plan(&self, exp: &Experiment) -> Result<Vec<(usize, f64)>> {
        crate::runner::check_seeds(&self.seeds, "weight_agnostic.seeds")?;
        crate::runner::check_densities(&self.densities, "weight_agnostic.densities")?;
        if self.weights.is_empty() || self.weights.iter().any(|w| !w.is_finite() || *w == 0.0) {
            return Err(Error::config(
                "weight_agnostic.weights",
                "a non-empty list of finite, non-zero shared weights",
                format!("{:?}", self.weights),
            ));
        }
        if self.signs.is_empty() {
            return Err(Error::config(
                "weight_agnostic.signs",
                "at least one of \"init\", \"positive\"",
                "[]",
            ));
        }
        if !matches!(exp.net, crate::models::Network::Mlp(_)) {
            return Err(Error::config(
                "model",
                "a fully connected network (PHEW walks fully connected layers)",
                exp.net.describe(),
            ));
        }
        let layers = exp.net.prunable();
        self.prune.validate(&layers)?;
        if self.prune.rate == 0.0 {
            return Err(Error::config("weight_agnostic.prune.rate", "a rate in (0, 1)", 0.0));
        }
        let counts = exp.net.prunable_counts();
        self.prune
            .resolved(&layers)
            .rounds_for_densities(&counts, &self.densities, 60, "weight_agnostic.densities")
    }
}

/// One mask under one shared weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WaRecord {
    pub seed: u64,
    pub mask: String,
    pub target_density: f64,
    pub density: f64,
    pub signs: Signs,
    pub weight: f32,
    pub accuracy: f64,
}

/// The whole experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WaSummary {
    pub name: String,
    pub model: String,
    pub classes: usize,
    pub seeds: Vec<u64>,
    pub records: Vec<WaRecord>,
    /// Test examples (accuracies lie on a grid of 1/test_size; 0 when unknown).
    #[serde(default)]
    pub test_size: usize,
}

/// θ0's layout with every weight kept by `mask` set to `w · s`, all else zero.
pub fn shared_weight(theta0: &ParamSet, mask: &Mask, w: f32, signs: Signs) -> Result<ParamSet> {
    let mut p = theta0.zeros_like();
    for (k, m) in mask.0.iter() {
        let init = &theta0.get(k)?.data;
        let dst = p.get_mut(k)?;
        for ((d, &keep), &v) in dst.data.iter_mut().zip(&m.data).zip(init) {
            if keep != 0.0 {
                *d = match signs {
                    Signs::Positive => w,
                    Signs::Init if v < 0.0 => -w,
                    Signs::Init => w,
                };
            }
        }
    }
    Ok(p)
}

fn run_seed(exp: &Experiment, cfg: &WeightAgnosticConfig, seed: u64, env: &UnitEnv) -> Result<Vec<WaRecord>> {
    let plan = cfg.plan(exp)?;
    let layers = exp.net.prunable();
    let theta0 = exp.net.init(seed);
    let icfg = ImpConfig {
        rounds: plan.iter().map(|p| p.0).max().unwrap_or(1),
        prune: cfg.prune.clone(),
        seeds: vec![seed],
        controls: vec![],
        ..ImpConfig::default()
    };
    let dir = env.dir.child(&format!("imp_seed_{seed}"))?;
    crate::runner::run_in::<Imp>(exp, &icfg, &dir, env.device, env.progress, env.resume)?;
    let round = |r: usize| dir.child(&format!("seed_{seed}/round_{r:02}"));
    let theta_t = ParamSet::load(&round(0)?.file("final.safetensors"))?;
    let lfss = prune::scores(Criterion::LargeFinalSameSign, &theta0, &theta_t, &layers, seed)?;
    let spec = cfg.prune.resolved(&layers);
    let mut model = train::Supervised::new(exp.net.clone(), exp.config.train.loss, env.device);
    let mut out = Vec::new();
    for (i, (&target, &(r, _))) in cfg.densities.iter().zip(&plan).enumerate() {
        let ticket = Mask::load(&round(r)?.file("mask.safetensors"))?;
        let mut supermask = Mask::ones(&theta0, &layers)?;
        for _ in 0..r {
            supermask = prune::prune(&spec, &supermask, &lfss)?;
        }
        let phew = crate::pai::phew::mask(
            &exp.net,
            &theta0,
            ticket.density(),
            crate::rng::derive_seed(seed, "wa-phew", i as u64),
        )?;
        let random = prune::random_like(&ticket, crate::rng::derive_seed(seed, "wa-random", i as u64))?;
        // Edge-popup on its own fixed random weights, keeping the ticket's
        // global density in every layer; signs then come from those weights.
        let crate::models::Network::Mlp(mlp) = &exp.net else {
            return Err(Error::config("model", "a fully connected network", exp.net.describe()));
        };
        let (mut ep, scores0) = EdgePopup::new(
            mlp.clone(),
            WeightInit::KaimingUniform,
            ticket.density(),
            exp.config.train.loss,
            crate::rng::derive_seed(seed, "wa-edge-popup", i as u64),
        )?;
        let spec = crate::runner::unit_spec(exp, seed);
        let o = train::train(
            &mut ep,
            &scores0,
            &exp.split,
            &spec,
            &train::TrainOptions {
                progress: env.progress,
                ..Default::default()
            },
        )?;
        let edge_popup = Mask(ep.mask(&o.params)?);
        let ep_weights = ep.weights().clone();
        // The weight-agnostic search: the same edge-popup, its loss averaged
        // over the configured shared weights (signs from its own weights).
        let (wa, wa_scores0) = EdgePopup::new(
            mlp.clone(),
            WeightInit::KaimingUniform,
            ticket.density(),
            exp.config.train.loss,
            crate::rng::derive_seed(seed, "wa-search", i as u64),
        )?;
        let mut wa = wa.weight_agnostic(cfg.weights.clone())?;
        let o = train::train(
            &mut wa,
            &wa_scores0,
            &exp.split,
            &spec,
            &train::TrainOptions {
                progress: env.progress,
                ..Default::default()
            },
        )?;
        let wann_search = Mask(wa.mask(&o.params)?);
        let wa_weights = wa.weights().clone();
        for (name, m, signs_from) in [
            ("imp", &ticket, &theta0),
            ("supermask", &supermask, &theta0),
            ("phew", &phew, &theta0),
            ("edge_popup", &edge_popup, &ep_weights),
            ("wann_search", &wann_search, &wa_weights),
            ("random", &random, &theta0),
        ] {
            for &signs in &cfg.signs {
                for &w in &cfg.weights {
                    let p = shared_weight(signs_from, m, w, signs)?;
                    let accuracy = train::evaluate(&mut model, &p, &exp.split.test, exp.spec.eval_chunk)?.accuracy;
                    out.push(WaRecord {
                        seed,
                        mask: name.to_string(),
                        target_density: target,
                        density: m.density(),
                        signs,
                        weight: w,
                        accuracy,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// `ltk weight-agnostic` on the experiment layer: one unit per seed.
pub struct WeightAgnostic;

impl crate::runner::Experiment for WeightAgnostic {
    const NAME: &'static str = "weight_agnostic";
    type Base = Experiment;
    const ABOUT: &'static str = "Masks (IMP ticket, supermask, PHEW, edge-popup, a weight-agnostic search, random) evaluated with one shared weight value, no training (Gaier & Ha 2019)";
    const GROWS: &'static [&'static str] = &["seeds"];
    const FLAGS: &'static [crate::runner::flags::Flag] = &[
        crate::runner::flags::Flag::new("densities", "Target densities (fractions of weights kept)."),
        crate::runner::flags::Flag::new("seeds", "Replicates (init and data-order seeds)."),
        crate::runner::flags::Flag::new("weights", "Shared weight values."),
    ];
    type Config = WeightAgnosticConfig;
    type Unit = u64;
    type Record = Vec<WaRecord>;
    type Summary = WaSummary;

    fn resolve(base: &Experiment, cfg: &mut WeightAgnosticConfig) {
        cfg.prune = cfg.prune.resolved(&base.net.prunable());
    }
    fn banner(base: &Experiment, cfg: &WeightAgnosticConfig) -> String {
        format!(
            "{}: shared-weight evaluation of {} on {}, densities {:?}, w {:?}, seeds {:?}, {} steps per IMP run",
            base.config.name,
            base.net.describe(),
            base.split.train.name,
            cfg.densities,
            cfg.weights,
            cfg.seeds,
            base.spec.steps
        )
    }
    fn units(base: &Experiment, cfg: &WeightAgnosticConfig) -> Result<Vec<u64>> {
        cfg.plan(base)?;
        Ok(cfg.seeds.clone())
    }
    fn unit_key(seed: &u64) -> String {
        format!("seed_{seed}")
    }
    fn run_unit(base: &Experiment, cfg: &WeightAgnosticConfig, seed: &u64, env: &UnitEnv) -> Result<Vec<WaRecord>> {
        run_seed(base, cfg, *seed, env)
    }
    fn summarize(base: &Experiment, cfg: &WeightAgnosticConfig, records: Vec<Vec<WaRecord>>) -> Result<WaSummary> {
        Ok(WaSummary {
            name: base.config.name.clone(),
            model: base.net.describe(),
            classes: base.split.train.num_classes,
            seeds: cfg.seeds.clone(),
            records: records.into_iter().flatten().collect(),
            test_size: base.split.test.len(),
        })
    }
    fn write_report(dir: &RunDir, s: &WaSummary) -> Result<()> {
        write_summary(dir, s)
    }
    fn claims(s: &WaSummary) -> Vec<Claim> {
        claims(s)
    }
    fn console(s: &WaSummary) -> String {
        table(s)
    }
}

/// Per seed: (mean over w, best over w) of one (mask, target, signs).
fn per_seed(s: &WaSummary, mask: &str, target: f64, signs: Signs) -> BTreeMap<u64, (f64, f64)> {
    let mut by: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for r in s
        .records
        .iter()
        .filter(|r| r.mask == mask && r.target_density == target && r.signs == signs)
    {
        by.entry(r.seed).or_default().push(r.accuracy);
    }
    by.into_iter()
        .filter_map(|(k, v)| stats::mean_sd(&v).map(|(m, _)| (k, (m, v.iter().copied().fold(f64::MIN, f64::max)))))
        .collect()
}

fn targets(s: &WaSummary) -> Vec<(f64, f64)> {
    let mut t: Vec<(f64, f64)> = vec![];
    for r in s.records.iter().filter(|r| r.mask == "imp") {
        if !t.iter().any(|x| x.0 == r.target_density) {
            t.push((r.target_density, r.density));
        }
    }
    t
}

fn signs_of(s: &WaSummary) -> Vec<Signs> {
    let mut v: Vec<Signs> = s.records.iter().map(|r| r.signs).collect();
    v.sort();
    v.dedup();
    v
}

/// Tables: mean and best accuracy over w, masks × densities, per sign mode.
pub fn table(s: &WaSummary) -> String {
    let ts = targets(s);
    let mut out = String::new();
    for signs in signs_of(s) {
        out.push_str(&format!(
            "Test accuracy (%) with one shared weight w (signs: {signs:?}), mean over w / best over w, mean ± sd over {} seeds (chance {:.1}%)\n\n| mask | {} |\n|---|{}\n",
            s.seeds.len(),
            100.0 / s.classes.max(1) as f64,
            ts.iter().map(|t| format!("{:.2}% kept", 100.0 * t.1)).collect::<Vec<_>>().join(" | "),
            "---:|".repeat(ts.len())
        ));
        for m in MASKS {
            let cells: Vec<String> = ts
                .iter()
                .map(|t| {
                    let v = per_seed(s, m, t.0, signs);
                    let mean: Vec<f64> = v.values().map(|x| x.0).collect();
                    let best: Vec<f64> = v.values().map(|x| x.1).collect();
                    match (stats::mean_sd(&mean), stats::mean_sd(&best)) {
                        (Some((a, sa)), Some((b, sb))) => format!(
                            "{:.1} ± {:.1} / {:.1} ± {:.1}",
                            100.0 * a,
                            100.0 * sa,
                            100.0 * b,
                            100.0 * sb
                        ),
                        _ => "–".into(),
                    }
                })
                .collect();
            out.push_str(&format!("| {m} | {} |\n", cells.join(" | ")));
        }
        out.push('\n');
    }
    out
}

/// Writes summary.json, records.csv, report.md and a figure per sign mode.
pub fn write_summary(dir: &RunDir, s: &WaSummary) -> Result<()> {
    let rows: Vec<Vec<String>> = s
        .records
        .iter()
        .map(|r| {
            vec![
                r.seed.to_string(),
                r.mask.clone(),
                r.target_density.to_string(),
                r.density.to_string(),
                format!("{:?}", r.signs).to_lowercase(),
                r.weight.to_string(),
                r.accuracy.to_string(),
            ]
        })
        .collect();
    write_csv(
        &dir.file("records.csv"),
        &[
            "seed",
            "mask",
            "target_density",
            "density",
            "signs",
            "weight",
            "accuracy",
        ],
        &rows,
    )?;
    let ts = targets(s);
    if let Some(&(t, d)) = ts.iter().min_by(|a, b| a.1.total_cmp(&b.1)) {
        for signs in signs_of(s) {
            let mut c = LineChart::new(
                &format!(
                    "{}: one shared weight, {:.2}% kept, signs {:?}",
                    s.name,
                    100.0 * d,
                    signs
                ),
                "shared weight w",
                "test accuracy (%)",
            )
            .hline(100.0 / s.classes.max(1) as f64, "chance");
            for m in MASKS {
                let mut by_w: BTreeMap<i64, (f32, Vec<f64>)> = BTreeMap::new();
                for r in s
                    .records
                    .iter()
                    .filter(|r| r.mask == m && r.target_density == t && r.signs == signs)
                {
                    by_w.entry((r.weight * 1e6) as i64)
                        .or_insert((r.weight, vec![]))
                        .1
                        .push(r.accuracy);
                }
                let pts: Vec<(f64, f64, f64, f64)> = by_w
                    .values()
                    .filter_map(|(w, v)| {
                        let (mean, _) = stats::mean_sd(v)?;
                        let (lo, hi) = stats::sd_band(v);
                        Some((*w as f64, 100.0 * mean, 100.0 * lo, 100.0 * hi))
                    })
                    .collect();
                c.push(
                    Series::line(m, pts.iter().map(|p| (p.0, p.1)))
                        .with_marker(Marker::LinePoints)
                        .with_band(Spread::Sd("seeds"), pts.iter().map(|p| (p.0, p.2, p.3))),
                );
            }
            c.save(&dir.figure(&format!("weight_agnostic_{}", format!("{signs:?}").to_lowercase())))?;
        }
    }
    let homogeneous = if s.model.contains("(relu") || s.model.contains("(identity") {
        " This network (ReLU or identity, zero biases) is positively homogeneous in its weights: all positive w give the same predictions, as do all negative w, so the sweep tests only the sign of w."
    } else {
        ""
    };
    write_text(
        &dir.report_md(),
        &format!(
            "# Weight-agnostic evaluation: {}\n\n{}, seeds {:?}. Every kept weight set to one shared value w (Gaier & Ha 2019), no training; masks at the IMP ticket's per-layer counts (PHEW at its global density).{homogeneous} Per-seed wall times are in units/*.json.\n\n{}\n\n{}",
            s.name,
            s.model,
            s.seeds,
            table(s),
            verdict::claims_markdown(&claims(s))
        ),
    )
}

/// The target the claims are tested at, by a rule fixed before the data:
/// the sparsest configured target.
fn declared_target(s: &WaSummary) -> Option<(f64, f64)> {
    targets(s).into_iter().min_by(|a, b| a.1.total_cmp(&b.1))
}

/// This project's two hypotheses (neither is a claim of Gaier & Ha 2019,
/// who search architectures, not pruned masks), declared before the data
/// and decided as one family (Holm, α = 0.05 each way), at the sparsest
/// configured target, with signs from θ0 when that sign mode was run
/// (otherwise all positive):
/// 1. a pruned mask carries a solution on its own: with one shared weight,
///    the IMP ticket's mask beats a random mask with the same per-layer
///    counts (paired per-seed difference of the mean accuracy over w);
/// 2. searching the mask for weight agnosticism (edge-popup with the loss
///    averaged over the shared weights) beats edge-popup's mask searched on
///    fixed random weights (paired per-seed difference of the mean accuracy
///    over w, the search's objective).
///
/// Each is a difference whose interval must exclude 0; a run without the
/// masks compared is untestable, fewer than 2 seeds give no interval.
pub fn claims(s: &WaSummary) -> Vec<Claim> {
    let Some((t, d)) = declared_target(s) else {
        return vec![];
    };
    let signs = if signs_of(s).contains(&Signs::Init) {
        Signs::Init
    } else {
        Signs::Positive
    };
    let weights = {
        let mut w: Vec<i64> = s.records.iter().map(|r| (r.weight * 1e6) as i64).collect();
        w.sort_unstable();
        w.dedup();
        w.len().max(1)
    };
    // The mean over w of accuracies on n test examples lies on a grid of 1/(n·|w|).
    let res = if s.test_size > 0 {
        1.0 / (s.test_size * weights) as f64
    } else {
        0.0
    };
    // (claim, why, treatment, control), each on the mean accuracy over w.
    let specs = [
        (
            "With every kept weight set to one shared value w, the IMP ticket's mask classifies better than a random mask with the same per-layer counts (mean accuracy over the declared grid of w)",
            "Gaier & Ha 2019's shared-weight evaluation (Sec. 4) applied to pruned masks; Zhou et al. 2019 (Sec. 4-5) find that the mask and the signs carry most of a ticket",
            "imp",
            "random",
        ),
        (
            "A mask searched for weight agnosticism (edge-popup with the loss averaged over the shared weights) classifies better with one shared weight than edge-popup's mask searched on fixed random weights (mean accuracy over w)",
            "Gaier & Ha 2019's objective (Sec. 3: mean performance over shared weights) in place of edge-popup's fixed random weights (Ramanujan et al. 2020)",
            "wann_search",
            "edge_popup",
        ),
    ];
    let items = specs
        .into_iter()
        .map(|(claim, why, a, b)| {
            let declared =
                Declared::project(claim, why, Hypothesis::Difference { side: Side::Greater }).shown_in(" pp", 100.0);
            let pick = |x: &(f64, f64)| x.0;
            let (pa, pb) = (per_seed(s, a, t, signs), per_seed(s, b, t, signs));
            let evidence = match [(a, &pa), (b, &pb)].into_iter().find(|(_, v)| v.is_empty()) {
                Some((missing, _)) => Evidence::Untestable {
                    why: format!("no {missing} masks in this run: rerun to evaluate them"),
                },
                None => Evidence::Paired {
                    values: pa
                        .iter()
                        .filter_map(|(k, x)| pb.get(k).map(|y| pick(x) - pick(y)))
                        .collect(),
                    resolution: res,
                },
            };
            let context = format!(
                "{a} − {b}, mean over w, at {:.2}% kept (the sparsest configured target), signs {signs:?}",
                100.0 * d
            );
            Item::new(declared, evidence, context)
        })
        .collect();
    decide_family(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::verdict::Verdict;

    /// Per seed, the accuracy of each mask at every w (the same at all w).
    fn summary(per_seed: &[[(&str, f64); 4]]) -> WaSummary {
        let mut records = Vec::new();
        for (seed, row) in per_seed.iter().enumerate() {
            for &(mask, acc) in row {
                for w in [-1.0f32, 1.0] {
                    records.push(WaRecord {
                        seed: seed as u64,
                        mask: mask.into(),
                        target_density: 0.036,
                        density: 0.0358,
                        signs: Signs::Init,
                        weight: w,
                        accuracy: acc,
                    });
                }
            }
        }
        WaSummary {
            name: "t".into(),
            model: "m".into(),
            classes: 10,
            seeds: (0..per_seed.len() as u64).collect(),
            records,
            test_size: 10_000,
        }
    }

    fn row(imp: f64, random: f64, wann: f64, ep: f64) -> [(&'static str, f64); 4] {
        [
            ("imp", imp),
            ("random", random),
            ("wann_search", wann),
            ("edge_popup", ep),
        ]
    }

    #[test]
    fn clear_effects_decide_and_both_claims_are_the_projects() {
        let s = summary(&[
            row(0.8, 0.1, 0.1, 0.3),
            row(0.78, 0.11, 0.11, 0.31),
            row(0.81, 0.1, 0.09, 0.29),
        ]);
        let c = claims(&s);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].verdict, Verdict::Consistent, "{}", c[0].line());
        assert_eq!(c[1].verdict, Verdict::Contradicts, "{}", c[1].line());
        for c in &c {
            assert!(c.source.starts_with("this project's hypothesis"), "{}", c.source);
            assert!(c.measured.contains("family of 2"), "{}", c.measured);
        }
    }

    #[test]
    fn noise_or_one_seed_is_inconclusive() {
        let s = summary(&[
            row(0.11, 0.1, 0.1, 0.11),
            row(0.1, 0.11, 0.11, 0.1),
            row(0.1, 0.1, 0.1, 0.1),
        ]);
        assert!(claims(&s).iter().all(|c| c.verdict == Verdict::Inconclusive));
        let one = summary(&[row(0.8, 0.1, 0.1, 0.3)]);
        let c = claims(&one);
        assert!(c
            .iter()
            .all(|c| c.verdict == Verdict::Inconclusive && c.reason.contains("no interval")));
        // A run without the search: that claim is untestable.
        let mut old = summary(&[row(0.8, 0.1, 0.1, 0.3), row(0.78, 0.11, 0.11, 0.31)]);
        old.records.retain(|r| r.mask != "wann_search");
        let c = claims(&old);
        assert!(c[1].reason.contains("no wann_search masks"), "{}", c[1].reason);
    }
}
