//! `ltk pai`: pruning at initialization against the IMP ticket, with the
//! sanity checks of Frankle, Dziugaite, Roy & Carbin 2021 ("Pruning neural
//! networks at initialization: why are we missing the mark?", Sec. 5):
//! - **shuffle**: each layer's mask permuted at random (the same per-layer
//!   density), trained from the same θ0;
//! - **reinit**: the same mask on a fresh initialization.
//!
//! They found that SNIP, GraSP, SynFlow and magnitude pruning at init lose
//! little under either ablation (only the per-layer densities matter), while
//! IMP tickets lose much. Per seed (one unit each):
//! - `imp`: the IMP chain of [`crate::imp`] (rewinding to `imp_rewind_step`,
//!   `[pai.prune]` per round, default 20% per layer with the output layer at
//!   10%), with its controls `random_prune` (= shuffle) and `random_reinit`
//!   (= reinit), read at the round whose density is closest to each target;
//! - one unit per method: its mask at each of those rounds' densities (so
//!   every method keeps the same number of weights as the ticket), trained
//!   from θ0, then the two ablations.
//!
//! Every network trains with the base `[train]` spec and the seed's data
//! order; accuracies are final test accuracies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{prune_at_init, PaiMethod, PaiSpec};
use crate::config::Experiment;
use crate::experiment::UnitEnv;
use crate::imp::{Control, Imp, ImpConfig};
use crate::paths::{write_csv, write_json, write_text, RunDir};
use crate::plot::{LineChart, Marker, Series};
use crate::prune::PruneSpec;
use crate::stats;
use crate::verdict::{self, Claim, Verdict};
use crate::{Error, Result};

/// `[pai]` of an experiment TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaiConfig {
    /// Methods (default: all six).
    #[serde(default = "default_methods")]
    pub methods: Vec<PaiMethod>,
    /// Target densities (default: LeNet-300-100's 10%, 3.6%, 1.4%).
    #[serde(default = "default_densities")]
    pub densities: Vec<f64>,
    /// Replicates: init and data-order seed.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Run the IMP ticket (and its ablations) for comparison.
    #[serde(default = "yes")]
    pub imp: bool,
    /// IMP's rewinding step k (0 = θ0).
    #[serde(default)]
    pub imp_rewind_step: usize,
    /// IMP's per-round pruning (it also sets the densities every method is compared at).
    #[serde(default)]
    pub prune: PruneSpec,
    /// Run the shuffle and reinit ablations.
    #[serde(default = "yes")]
    pub ablations: bool,
    /// SNIP/GraSP examples (default 10 per class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_examples: Option<usize>,
    /// SynFlow iterations.
    #[serde(default = "default_synflow_iterations")]
    pub synflow_iterations: usize,
}

fn default_methods() -> Vec<PaiMethod> {
    PaiMethod::ALL.to_vec()
}
fn default_densities() -> Vec<f64> {
    vec![0.1, 0.036, 0.014]
}
fn default_seeds() -> Vec<u64> {
    vec![0, 1, 2]
}
fn yes() -> bool {
    true
}
fn default_synflow_iterations() -> usize {
    100
}

impl Default for PaiConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty [pai] takes every default")
    }
}

/// Rounds searched for a target density.
const MAX_ROUNDS: usize = 60;

/// A target density and where IMP reaches it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub target: f64,
    /// The IMP round whose density is closest.
    pub round: usize,
    /// That round's density (every method keeps this fraction).
    pub density: f64,
}

impl PaiConfig {
    /// Checks everything before any training; returns the targets.
    pub fn plan(&self, exp: &Experiment) -> Result<Vec<Target>> {
        if self.methods.is_empty() && !self.imp {
            return Err(Error::config(
                "pai.methods",
                "at least one method (or imp = true)",
                "[]",
            ));
        }
        crate::experiment::check_seeds(&self.seeds, "pai.seeds")?;
        crate::experiment::check_densities(&self.densities, "pai.densities")?;
        let mut seen = self.methods.clone();
        seen.sort();
        if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::config("pai.methods", "distinct methods", w[0].name()));
        }
        let layers = exp.net.prunable();
        self.prune.validate(&layers)?;
        if self.prune.rate == 0.0 {
            return Err(Error::config("pai.prune.rate", "a rate in (0, 1)", 0.0));
        }
        if self.imp_rewind_step > exp.spec.steps {
            return Err(Error::config(
                "pai.imp_rewind_step",
                format!("a step <= {} (the run length)", exp.spec.steps),
                self.imp_rewind_step,
            ));
        }
        let counts = crate::imp::layer_counts(&exp.net);
        let spec = self.prune.resolved(&layers);
        let plan = spec.rounds_for_densities(&counts, &self.densities, MAX_ROUNDS, "pai.densities")?;
        let targets: Vec<Target> = self
            .densities
            .iter()
            .zip(plan)
            .map(|(&target, (round, density))| Target { target, round, density })
            .collect();
        for m in &self.methods {
            let mut s = self.spec(*m, 0.5, 0);
            s.density = targets[0].density;
            s.validate()?;
            if *m == PaiMethod::Phew && !matches!(exp.net, crate::models::Network::Mlp(_)) {
                return Err(Error::config(
                    "pai.methods",
                    "phew only with a fully connected model",
                    exp.net.describe(),
                ));
            }
            if *m == PaiMethod::Synflow && exp.net.has_batch_norm() {
                return Err(Error::config(
                    "pai.methods",
                    "synflow only without BatchNorm",
                    exp.net.describe(),
                ));
            }
        }
        Ok(targets)
    }

    fn spec(&self, method: PaiMethod, density: f64, seed: u64) -> PaiSpec {
        PaiSpec {
            method,
            density,
            scope: None,
            data_examples: self.data_examples,
            synflow_iterations: self.synflow_iterations,
            seed,
        }
    }
}

/// A unit: one seed's IMP chain, or one seed's masks of one method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PaiUnit {
    Imp { seed: u64 },
    Method { seed: u64, method: PaiMethod },
}

/// One mask at one density: trained, and under each ablation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaiRecord {
    pub seed: u64,
    /// A method's name, or "imp".
    pub method: String,
    pub target_density: f64,
    pub density: f64,
    /// None when the mask emptied a layer (`collapsed`).
    pub accuracy: Option<f64>,
    pub shuffled_accuracy: Option<f64>,
    pub reinit_accuracy: Option<f64>,
    /// The layer the method left without weights at this density (layer
    /// collapse, Tanaka et al. 2020): the network cannot learn, nothing is trained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collapsed: Option<String>,
}

/// What one unit measures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitRecord {
    /// The dense network's accuracy (IMP units only).
    pub dense_accuracy: Option<f64>,
    pub records: Vec<PaiRecord>,
}

/// The whole experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaiSummary {
    pub name: String,
    pub model: String,
    pub classes: usize,
    pub seeds: Vec<u64>,
    pub steps: usize,
    pub targets: Vec<Target>,
    pub dense_accuracy: Vec<f64>,
    pub records: Vec<PaiRecord>,
}

fn run_imp(exp: &Experiment, cfg: &PaiConfig, targets: &[Target], seed: u64, env: &UnitEnv) -> Result<UnitRecord> {
    let icfg = ImpConfig {
        rounds: targets.iter().map(|t| t.round).max().unwrap_or(1),
        rewind_step: cfg.imp_rewind_step,
        prune: cfg.prune.clone(),
        seeds: vec![seed],
        controls: if cfg.ablations {
            vec![Control::RandomReinit, Control::RandomPrune]
        } else {
            vec![]
        },
        ..ImpConfig::default()
    };
    let dir = env.dir.child(&format!("imp_seed_{seed}"))?;
    let s = crate::experiment::run_in::<Imp>(exp, &icfg, &dir, env.device, env.progress, env.resume)?;
    let acc = |round: usize, kind: &str| {
        s.rounds
            .iter()
            .find(|r| r.round == round)
            .and_then(|r| r.runs.get(kind))
            .map(|r| r.final_accuracy)
    };
    let records = targets
        .iter()
        .map(|t| {
            Ok(PaiRecord {
                seed,
                method: "imp".into(),
                target_density: t.target,
                density: t.density,
                accuracy: Some(
                    acc(t.round, "ticket").ok_or_else(|| Error::invalid("IMP round", "a ticket record", t.round))?,
                ),
                shuffled_accuracy: acc(t.round, "random_prune"),
                reinit_accuracy: acc(t.round, "random_reinit"),
                collapsed: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(UnitRecord {
        dense_accuracy: acc(0, "ticket"),
        records,
    })
}

fn run_method(
    exp: &Experiment,
    cfg: &PaiConfig,
    targets: &[Target],
    seed: u64,
    method: PaiMethod,
    env: &UnitEnv,
) -> Result<UnitRecord> {
    let theta0 = exp.net.init(seed);
    let mut records = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let spec = cfg.spec(method, t.density, crate::rng::derive_seed(seed, "pai-method", i as u64));
        let mask = match prune_at_init(&exp.net, &theta0, &exp.split.train, exp.config.train.loss, &spec) {
            Ok(m) => m,
            Err(Error::LayerCollapse { layer, .. }) => {
                if env.progress {
                    eprintln!(
                        "seed {seed} {} at {:.2}% kept: layer {layer} collapsed",
                        method.name(),
                        100.0 * t.density
                    );
                }
                records.push(PaiRecord {
                    seed,
                    method: method.name().into(),
                    target_density: t.target,
                    density: t.density,
                    accuracy: None,
                    shuffled_accuracy: None,
                    reinit_accuracy: None,
                    collapsed: Some(layer),
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        let accuracy = crate::experiment::train_masked(exp, env, seed, &theta0, &mask)?;
        let (shuffled_accuracy, reinit_accuracy) = if cfg.ablations {
            let shuffled = crate::prune::random_like(&mask, crate::rng::derive_seed(seed, "pai-shuffle", i as u64))?;
            let fresh = exp.net.init(crate::rng::derive_seed(seed, "pai-reinit", i as u64));
            (
                Some(crate::experiment::train_masked(exp, env, seed, &theta0, &shuffled)?),
                Some(crate::experiment::train_masked(exp, env, seed, &fresh, &mask)?),
            )
        } else {
            (None, None)
        };
        if env.progress {
            eprintln!(
                "seed {seed} {} at {:.2}% kept: {:.2}%",
                method.name(),
                100.0 * mask.density(),
                100.0 * accuracy
            );
        }
        records.push(PaiRecord {
            seed,
            method: method.name().into(),
            target_density: t.target,
            density: mask.density(),
            accuracy: Some(accuracy),
            shuffled_accuracy,
            reinit_accuracy,
            collapsed: None,
        });
    }
    Ok(UnitRecord {
        dense_accuracy: None,
        records,
    })
}

/// `ltk pai` on the experiment layer.
pub struct Pai;

impl crate::experiment::Experiment for Pai {
    const NAME: &'static str = "pai";
    type Base = Experiment;
    type Config = PaiConfig;
    type Unit = PaiUnit;
    type Record = UnitRecord;
    type Summary = PaiSummary;

    fn units(base: &Experiment, cfg: &PaiConfig) -> Result<Vec<PaiUnit>> {
        cfg.plan(base)?;
        let mut u = Vec::new();
        for &seed in &cfg.seeds {
            if cfg.imp {
                u.push(PaiUnit::Imp { seed });
            }
            u.extend(cfg.methods.iter().map(|&method| PaiUnit::Method { seed, method }));
        }
        Ok(u)
    }
    fn unit_key(u: &PaiUnit) -> String {
        match u {
            PaiUnit::Imp { seed } => format!("seed_{seed}_imp"),
            PaiUnit::Method { seed, method } => format!("seed_{seed}_{}", method.name()),
        }
    }
    fn run_unit(base: &Experiment, cfg: &PaiConfig, u: &PaiUnit, env: &UnitEnv) -> Result<UnitRecord> {
        let targets = cfg.plan(base)?;
        match *u {
            PaiUnit::Imp { seed } => run_imp(base, cfg, &targets, seed, env),
            PaiUnit::Method { seed, method } => run_method(base, cfg, &targets, seed, method, env),
        }
    }
    fn summarize(base: &Experiment, cfg: &PaiConfig, records: Vec<UnitRecord>) -> Result<PaiSummary> {
        Ok(PaiSummary {
            name: base.config.name.clone(),
            model: base.net.describe(),
            classes: base.split.train.num_classes,
            seeds: cfg.seeds.clone(),
            steps: base.spec.steps,
            targets: cfg.plan(base)?,
            dense_accuracy: records.iter().filter_map(|r| r.dense_accuracy).collect(),
            records: records.into_iter().flat_map(|r| r.records).collect(),
        })
    }
    fn write_report(dir: &RunDir, s: &PaiSummary) -> Result<()> {
        write_summary(dir, s)
    }
    fn claims(s: &PaiSummary) -> Vec<Claim> {
        claims(s)
    }
    fn console(s: &PaiSummary) -> String {
        table(s)
    }
}

/// Methods in the summary, "imp" first.
fn methods(s: &PaiSummary) -> Vec<String> {
    let mut m: Vec<String> = vec![];
    for r in &s.records {
        if !m.contains(&r.method) {
            m.push(r.method.clone());
        }
    }
    m.sort_by_key(|x| (x != "imp", x.clone()));
    m
}

/// Which accuracy of a record.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Trained,
    Shuffled,
    Reinit,
}

fn value(r: &PaiRecord, w: Which) -> Option<f64> {
    match w {
        Which::Trained => r.accuracy,
        Which::Shuffled => r.shuffled_accuracy,
        Which::Reinit => r.reinit_accuracy,
    }
}

/// Per-seed values of `method` at `target`.
fn per_seed(s: &PaiSummary, method: &str, target: f64, w: Which) -> BTreeMap<u64, f64> {
    s.records
        .iter()
        .filter(|r| r.method == method && r.target_density == target)
        .filter_map(|r| value(r, w).map(|v| (r.seed, v)))
        .collect()
}

/// Per-seed paired losses (trained − ablated), in accuracy fractions.
fn losses(s: &PaiSummary, method: &str, target: f64, w: Which) -> Vec<f64> {
    let a = per_seed(s, method, target, Which::Trained);
    let b = per_seed(s, method, target, w);
    a.iter().filter_map(|(k, x)| b.get(k).map(|y| x - y)).collect()
}

fn cell(v: &[f64]) -> String {
    stats::mean_sd(v)
        .map(|(m, sd)| format!("{:.2} ± {:.2}", 100.0 * m, 100.0 * sd))
        .unwrap_or_else(|| "–".into())
}

/// Tables: trained accuracy, and the loss under each ablation, methods × densities.
pub fn table(s: &PaiSummary) -> String {
    let head = s
        .targets
        .iter()
        .map(|t| format!("{:.2}% kept", 100.0 * t.density))
        .collect::<Vec<_>>()
        .join(" | ");
    let mut out = String::new();
    for (w, title) in [
        (Which::Trained, "Test accuracy (%) after training"),
        (
            Which::Shuffled,
            "Loss (percentage points) when each layer's mask is shuffled",
        ),
        (
            Which::Reinit,
            "Loss (percentage points) when the weights are reinitialized",
        ),
    ] {
        out.push_str(&format!(
            "{title}, mean ± sd over {} seeds\n\n| method | {head} |\n|---|{}\n",
            s.seeds.len(),
            "---:|".repeat(s.targets.len())
        ));
        for m in methods(s) {
            let cells: Vec<String> = s
                .targets
                .iter()
                .map(|t| {
                    let collapsed = s
                        .records
                        .iter()
                        .filter(|r| r.method == m && r.target_density == t.target && r.collapsed.is_some())
                        .count();
                    let c = match w {
                        Which::Trained => cell(&per_seed(s, &m, t.target, w).into_values().collect::<Vec<_>>()),
                        _ => cell(&losses(s, &m, t.target, w)),
                    };
                    if collapsed > 0 {
                        format!("{c} (layer collapse in {collapsed} seeds)")
                    } else {
                        c
                    }
                })
                .collect();
            out.push_str(&format!("| {m} | {} |\n", cells.join(" | ")));
        }
        out.push('\n');
    }
    if let Some((m, sd)) = stats::mean_sd(&s.dense_accuracy) {
        out.push_str(&format!("Dense network: {:.2} ± {:.2}%.\n", 100.0 * m, 100.0 * sd));
    }
    out
}

/// Writes summary.json, records.csv, report.md and the figures.
pub fn write_summary(dir: &RunDir, s: &PaiSummary) -> Result<()> {
    write_json(&dir.summary_json(), s)?;
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    let rows: Vec<Vec<String>> = s
        .records
        .iter()
        .map(|r| {
            vec![
                r.seed.to_string(),
                r.method.clone(),
                r.target_density.to_string(),
                r.density.to_string(),
                opt(r.accuracy),
                opt(r.shuffled_accuracy),
                opt(r.reinit_accuracy),
                r.collapsed.clone().unwrap_or_default(),
            ]
        })
        .collect();
    write_csv(
        &dir.file("records.csv"),
        &[
            "seed",
            "method",
            "target_density",
            "density",
            "accuracy",
            "shuffled_accuracy",
            "reinit_accuracy",
            "collapsed",
        ],
        &rows,
    )?;
    for (w, name, title, y) in [
        (
            Which::Trained,
            "pai_accuracy",
            "test accuracy after training",
            "test accuracy (%)",
        ),
        (
            Which::Shuffled,
            "pai_shuffle_loss",
            "accuracy lost when each layer's mask is shuffled",
            "loss (percentage points)",
        ),
        (
            Which::Reinit,
            "pai_reinit_loss",
            "accuracy lost when the weights are reinitialized",
            "loss (percentage points)",
        ),
    ] {
        let mut c = LineChart::new(&format!("{}: {title}", s.name), "% of weights remaining (log scale)", y).log_x();
        if w != Which::Trained {
            c = c.hline(0.0, "no loss");
        }
        for m in methods(s) {
            let pts: Vec<(f64, f64, f64, f64)> = s
                .targets
                .iter()
                .filter_map(|t| {
                    let v = match w {
                        Which::Trained => per_seed(s, &m, t.target, w).into_values().collect(),
                        _ => losses(s, &m, t.target, w),
                    };
                    let (mean, _) = stats::mean_sd(&v)?;
                    let (lo, hi) = stats::min_max(&v);
                    Some((100.0 * t.density, 100.0 * mean, 100.0 * lo, 100.0 * hi))
                })
                .collect();
            if pts.is_empty() {
                continue;
            }
            c.push(
                Series::line(&m, pts.iter().map(|p| (p.0, p.1)))
                    .with_marker(Marker::LinePoints)
                    .with_band(pts.iter().map(|p| (p.0, p.2, p.3))),
            );
        }
        c.save_png(&dir.figure(name))?;
    }
    write_text(
        &dir.report_md(),
        &format!(
            "# Pruning at initialization: {}\n\n{}, {} training steps per network, seeds {:?}. Every method keeps the density IMP reaches at the round closest to each target. Ablations (Frankle et al. 2021, Sec. 5): the mask shuffled within each layer, or the weights reinitialized; the loss is the paired per-seed difference. Per-unit wall times are in units/*.json.\n\n{}\n\n{}",
            s.name,
            s.model,
            s.steps,
            s.seeds,
            table(s),
            verdict::claims_markdown(&claims(s))
        ),
    )
}

/// Largest loss (in accuracy fractions) that counts as "little".
pub const LITTLE: f64 = 0.01;

/// Frankle et al. 2021's two findings, at the sparsest density, each as a
/// 95% t interval of the paired per-seed loss under each ablation: the
/// pruning-at-init methods (SNIP, GraSP, SynFlow, magnitude; and PHEW,
/// which they did not test) lose at most [`LITTLE`] (consistent when the
/// interval's upper end is at most 1 point, contradicts when its lower end is
/// above 1 point), and the IMP ticket loses more than that (the reverse).
pub fn claims(s: &PaiSummary) -> Vec<Claim> {
    let Some(t) = s.targets.iter().min_by(|a, b| a.density.total_cmp(&b.density)) else {
        return vec![];
    };
    let judge = |v: &[f64], expect_little: bool| -> (Verdict, String, String) {
        let Some((m, h)) = stats::mean_ci(v) else {
            return (
                Verdict::Inconclusive,
                "–".into(),
                "fewer than 2 seeds (or no ablation runs) give no interval".into(),
            );
        };
        let measured = format!(
            "{:.2} pp, 95% CI [{:.2}, {:.2}] over {} seeds",
            100.0 * m,
            100.0 * (m - h),
            100.0 * (m + h),
            v.len()
        );
        let (little, much) = (m + h <= LITTLE, m - h > LITTLE);
        let verdict = match (expect_little, little, much) {
            (true, true, _) | (false, _, true) => Verdict::Consistent,
            (true, _, true) | (false, true, _) => Verdict::Contradicts,
            _ => Verdict::Inconclusive,
        };
        let reason = match verdict {
            Verdict::Consistent => "the interval lies on the predicted side of 1 point".to_string(),
            Verdict::Contradicts => "the interval lies on the other side of 1 point".to_string(),
            Verdict::Inconclusive => "the interval contains 1 point: more seeds would decide".to_string(),
        };
        (verdict, measured, reason)
    };
    let mut out = Vec::new();
    for m in methods(s) {
        let imp = m == "imp";
        let mut parts = Vec::new();
        let mut verdicts = Vec::new();
        for (w, name) in [(Which::Shuffled, "shuffle"), (Which::Reinit, "reinit")] {
            let (v, measured, reason) = judge(&losses(s, &m, t.target, w), !imp);
            parts.push(format!("{name}: {measured} ({reason})"));
            verdicts.push(v);
        }
        let collapsed = s
            .records
            .iter()
            .filter(|r| r.method == m && r.target_density == t.target && r.collapsed.is_some())
            .count();
        if collapsed > 0 {
            parts.push(format!(
                "the method emptied a layer (layer collapse) in {collapsed} of {} seeds, which were not trained",
                s.seeds.len()
            ));
        }
        let verdict = if verdicts.contains(&Verdict::Contradicts) {
            Verdict::Contradicts
        } else if verdicts.iter().all(|v| *v == Verdict::Consistent) {
            Verdict::Consistent
        } else {
            Verdict::Inconclusive
        };
        out.push(Claim {
            claim: if imp {
                "The IMP ticket loses more than 1 point of accuracy when its mask is shuffled within layers or its weights are reinitialized".into()
            } else {
                format!("{m} (pruning at initialization) loses at most 1 point when its mask is shuffled within layers or its weights are reinitialized: only per-layer densities matter")
            },
            source: "Frankle, Dziugaite, Roy & Carbin 2021, Sec. 5 (Figs. 3-4; IMP: Sec. 5, LTR)".into(),
            measured: format!("at {:.2}% kept: {}", 100.0 * t.density, parts.join("; ")),
            verdict,
            reason: "both ablations must agree for consistent; either on the other side gives contradicts".into(),
        });
    }
    out
}
