//! `ltk pai`: pruning at initialization against the IMP ticket, with the
//! sanity checks of Frankle, Dziugaite, Roy & Carbin 2021 ("Pruning neural
//! networks at initialization: why are we missing the mark?", Sec. 5):
//! - **shuffle**: each layer's mask permuted at random (the same per-layer
//!   density), trained from the same θ0;
//! - **reinit**: the same mask on a fresh initialization.
//!
//! They found that SNIP, GraSP, SynFlow and magnitude pruning at init keep
//! (or improve) their accuracy under either ablation (only the per-layer
//! densities matter), while IMP tickets lose accuracy. The verdicts
//! ([`claims`]) are one family of declared claims, one per (method,
//! ablation), at the sparsest configured target: non-inferiority within
//! [`LITTLE`] for the pruning-at-init methods, a loss for IMP; random
//! pruning is a sanity check outside the family. Per seed (one unit each):
//! - `imp`: the IMP chain of [`crate::experiments::imp`] (rewinding to `imp_rewind_step`,
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

use crate::config::Experiment;
use crate::experiments::imp::{Control, Imp, ImpConfig};
use crate::pai::{prune_at_init, PaiMethod, PaiSpec};
use crate::paths::{write_csv, write_text, RunDir};
use crate::prune::PruneSpec;
use crate::report::plot::{LineChart, Marker, Series, Spread};
use crate::report::verdict::protocol::{decide_family, Declared, Evidence, Hypothesis, Item, Side};
use crate::report::verdict::{self, Claim};
use crate::runner::UnitEnv;
use crate::stats;
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
        crate::runner::check_seeds(&self.seeds, "pai.seeds")?;
        crate::runner::check_densities(&self.densities, "pai.densities")?;
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
        let counts = exp.net.prunable_counts();
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
    /// Test examples (accuracies lie on a grid of 1/test_size; 0 when unknown).
    #[serde(default)]
    pub test_size: usize,
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
    let s = crate::runner::run_in::<Imp>(exp, &icfg, &dir, env.device, env.progress, env.resume)?;
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
        let accuracy = crate::runner::train_masked(exp, env, seed, &theta0, &mask)?;
        let (shuffled_accuracy, reinit_accuracy) = if cfg.ablations {
            let shuffled = crate::prune::random_like(&mask, crate::rng::derive_seed(seed, "pai-shuffle", i as u64))?;
            let fresh = exp.net.init(crate::rng::derive_seed(seed, "pai-reinit", i as u64));
            (
                Some(crate::runner::train_masked(exp, env, seed, &theta0, &shuffled)?),
                Some(crate::runner::train_masked(exp, env, seed, &fresh, &mask)?),
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

impl crate::runner::Experiment for Pai {
    const NAME: &'static str = "pai";
    type Base = Experiment;
    const ABOUT: &'static str = "Pruning at initialization (random, magnitude, SNIP, GraSP, SynFlow, PHEW) against the IMP ticket, with the shuffle and reinit sanity checks of Frankle et al. 2021";
    const GROWS: &'static [&'static str] = &["seeds"];
    const FLAGS: &'static [crate::runner::flags::Flag] = &[
        crate::runner::flags::Flag::new("methods", "Methods."),
        crate::runner::flags::Flag::new("densities", "Target densities (fractions of weights kept)."),
        crate::runner::flags::Flag::new("seeds", "Replicates (init and data-order seeds)."),
    ];
    type Config = PaiConfig;
    type Unit = PaiUnit;
    type Record = UnitRecord;
    type Summary = PaiSummary;

    fn resolve(base: &Experiment, cfg: &mut PaiConfig) {
        cfg.prune = cfg.prune.resolved(&base.net.prunable());
    }
    fn banner(base: &Experiment, cfg: &PaiConfig) -> String {
        format!(
            "{}: pruning at initialization of {} on {}, methods {:?}{}, densities {:?}, seeds {:?}, {} steps per network",
            base.config.name,
            base.net.describe(),
            base.split.train.name,
            cfg.methods.iter().map(|m| m.name()).collect::<Vec<_>>(),
            if cfg.imp { " and the IMP ticket" } else { "" },
            cfg.densities,
            cfg.seeds,
            base.spec.steps
        )
    }
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
            test_size: base.split.test.len(),
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
        let mut c = LineChart::new(&format!("{}: {title}", s.name), "% of weights remaining (log scale)", y)
            .log_x()
            .reverse_x();
        if w != Which::Trained {
            c = c.hline(0.0, "no loss");
        } else if !s.dense_accuracy.is_empty() {
            c = c.hline(
                100.0 * stats::mean(&s.dense_accuracy),
                "dense network (mean over seeds)",
            );
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
                    let (lo, hi) = stats::sd_band(&v);
                    Some((100.0 * t.density, 100.0 * mean, 100.0 * lo, 100.0 * hi))
                })
                .collect();
            if pts.is_empty() {
                continue;
            }
            c.push(
                Series::line(&m, pts.iter().map(|p| (p.0, p.1)))
                    .with_marker(Marker::LinePoints)
                    .with_band(Spread::Sd("seeds"), pts.iter().map(|p| (p.0, p.2, p.3))),
            );
        }
        c.save(&dir.figure(name))?;
    }
    write_text(
        &dir.report_md(),
        &format!(
            "# Pruning at initialization: {}\n\n{}, {} training steps per network, seeds {:?}. Every method keeps the density IMP reaches at the round closest to each target. Ablations (Frankle et al. 2021, Sec. 5): the mask shuffled within each layer, or the weights reinitialized; the loss is the paired per-seed difference. Per-unit wall times are in units/*.json.\n\n{}\n\n{}{}",
            s.name,
            s.model,
            s.steps,
            s.seeds,
            table(s),
            random_sanity(s).map(|t| format!("{t}\n\n")).unwrap_or_default(),
            verdict::claims_markdown(&claims(s))
        ),
    )
}

/// The non-inferiority margin, in accuracy (1 percentage point): an ablated
/// pruning-at-init mask counts as keeping its accuracy when it is worse by
/// less than this. Frankle et al. 2021 (Sec. 5) state the finding without a
/// number ("the same or higher accuracy"); 1 point is this project's choice,
/// about the seed-to-seed spread of these networks' final accuracies.
pub const LITTLE: f64 = crate::report::verdict::protocol::MATCHING_MARGIN;

/// The methods whose ablations Frankle, Dziugaite, Roy & Carbin 2021 test
/// (Sec. 5): their claim. PHEW (Patil & Dovrolis 2021) is not in the paper:
/// its claim is this project's extension. Random pruning is not a claim at
/// all (see [`random_sanity`]).
pub const PAPER_METHODS: [&str; 4] = ["magnitude", "snip", "grasp", "synflow"];

const SOURCE: &str = "Frankle, Dziugaite, Roy & Carbin 2021, Sec. 5";

/// The target the claims are tested at, by a rule fixed before the data: the
/// sparsest of the configured targets (where the paper's contrast between
/// pruning at init and IMP is largest).
fn declared_target(s: &PaiSummary) -> Option<Target> {
    s.targets.iter().copied().min_by(|a, b| a.density.total_cmp(&b.density))
}

/// The grid step of accuracies on the test set (0 when unknown).
fn resolution(s: &PaiSummary) -> f64 {
    if s.test_size > 0 {
        1.0 / s.test_size as f64
    } else {
        0.0
    }
}

/// Random pruning under the two ablations, as a sanity check outside the
/// verdicts: shuffling a random mask within each layer gives another random
/// mask with the same per-layer counts, and reinitializing it gives another
/// random draw, so it loses nothing by design and says nothing about the
/// paper's claim.
pub fn random_sanity(s: &PaiSummary) -> Option<String> {
    let t = declared_target(s)?;
    if !s.records.iter().any(|r| r.method == "random") {
        return None;
    }
    let part = |w: Which| {
        let v: Vec<f64> = losses(s, "random", t.target, w).iter().map(|x| -x).collect();
        stats::mean_sd(&v)
            .map(|(m, sd)| format!("{:+.2} ± {:.2} pp", 100.0 * m, 100.0 * sd))
            .unwrap_or_else(|| "not run".into())
    };
    Some(format!(
        "Sanity check, not a verdict: random pruning at {:.2}% kept changes by {} when shuffled and {} when reinitialized (mean ± sd of ablated − trained over seeds); a shuffled or reinitialized random mask is another random mask, so it loses nothing by design.",
        100.0 * t.density,
        part(Which::Shuffled),
        part(Which::Reinit)
    ))
}

/// Frankle, Dziugaite, Roy & Carbin 2021 (Sec. 5), as one family of
/// declared claims decided together (Holm over the family, α = 0.05 each
/// way), at the sparsest configured target. Each (method, ablation) is one
/// claim on the paired per-seed change ablated − trained (accuracy on the
/// test grid):
/// - SNIP, GraSP, SynFlow and magnitude at init (the paper's claim) and PHEW
///   (this project's extension): the ablation does not lower accuracy by
///   [`LITTLE`] or more (non-inferiority; the paper finds the same or higher
///   accuracy, so only per-layer densities matter);
/// - the IMP ticket (the paper's claim for magnitude pruning after training
///   with rewinding): the ablation lowers accuracy (a difference below 0).
///
/// Random pruning is left out of the family: it loses nothing under either
/// ablation by design ([`random_sanity`]). A claim whose ablations were not
/// run, or whose method emptied a layer in every seed, is untestable; fewer
/// than 2 seeds give no interval (inconclusive).
pub fn claims(s: &PaiSummary) -> Vec<Claim> {
    let Some(t) = declared_target(s) else {
        return vec![];
    };
    let res = resolution(s);
    let mut items = Vec::new();
    for m in methods(s).into_iter().filter(|m| m != "random") {
        let collapsed = s
            .records
            .iter()
            .filter(|r| r.method == m && r.target_density == t.target && r.collapsed.is_some())
            .count();
        let trained: Vec<f64> = per_seed(s, &m, t.target, Which::Trained).into_values().collect();
        for (w, what) in [
            (Which::Shuffled, "its mask is shuffled within each layer"),
            (Which::Reinit, "its weights are reinitialized"),
        ] {
            let declared = if m == "imp" {
                Declared::paper(
                    format!("The IMP ticket loses accuracy when {what}"),
                    format!("{SOURCE} (magnitude pruning after training, with rewinding, loses accuracy under both ablations)"),
                    Hypothesis::Difference { side: Side::Less },
                )
            } else {
                let claim = format!(
                    "{m} (pruning at initialization) keeps its accuracy when {what}: worse by less than {:.0} point, or better (only per-layer densities matter)",
                    100.0 * LITTLE
                );
                let h = Hypothesis::NonInferior { margin: LITTLE };
                if PAPER_METHODS.contains(&m.as_str()) {
                    Declared::paper(claim, format!("{SOURCE} (SNIP, GraSP, SynFlow and magnitude at init keep or improve their accuracy under both ablations)"), h)
                } else {
                    Declared::project(
                        claim,
                        format!("{SOURCE}'s finding extended to a method the paper did not test"),
                        h,
                    )
                }
            }
            .shown_in(" pp", 100.0);
            let change: Vec<f64> = losses(s, &m, t.target, w).iter().map(|x| -x).collect();
            let ablated: Vec<f64> = per_seed(s, &m, t.target, w).into_values().collect();
            let evidence = if !trained.is_empty() && ablated.is_empty() {
                Evidence::Untestable {
                    why: "the ablations were not run (pai.ablations = false); run them to test this claim".into(),
                }
            } else if trained.is_empty() && collapsed > 0 {
                Evidence::Untestable {
                    why: format!(
                        "the method emptied a layer (layer collapse) in every seed at {:.2}% kept, so nothing was trained",
                        100.0 * t.density
                    ),
                }
            } else {
                Evidence::Paired {
                    values: change,
                    resolution: res,
                }
            };
            let mut context = format!(
                "ablated − trained at {:.2}% kept (the sparsest configured target); trained {}, ablated {}",
                100.0 * t.density,
                mean_pct(&trained),
                mean_pct(&ablated)
            );
            if collapsed > 0 {
                context.push_str(&format!(
                    "; the method emptied a layer (layer collapse) in {collapsed} of {} seeds, which were not trained",
                    s.seeds.len()
                ));
            }
            items.push(Item::new(declared, evidence, context));
        }
    }
    decide_family(items)
}

fn mean_pct(v: &[f64]) -> String {
    stats::mean_sd(v)
        .map(|(m, _)| format!("{:.2}%", 100.0 * m))
        .unwrap_or_else(|| "–".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::verdict::Verdict;

    /// Three seeds: per method, (trained, shuffled, reinit) accuracies per seed.
    fn summary(rows: &[(&str, [(f64, f64, f64); 3])]) -> PaiSummary {
        let mut records = Vec::new();
        for (m, per) in rows {
            for (seed, &(a, sh, re)) in per.iter().enumerate() {
                records.push(PaiRecord {
                    seed: seed as u64,
                    method: m.to_string(),
                    target_density: 0.014,
                    density: 0.0149,
                    accuracy: Some(a),
                    shuffled_accuracy: Some(sh),
                    reinit_accuracy: Some(re),
                    collapsed: None,
                });
            }
        }
        PaiSummary {
            name: "t".into(),
            model: "m".into(),
            classes: 10,
            seeds: vec![0, 1, 2],
            steps: 1,
            targets: vec![Target {
                target: 0.014,
                round: 19,
                density: 0.0149,
            }],
            dense_accuracy: vec![0.87; 3],
            records,
            test_size: 10_000,
        }
    }

    fn find<'a>(c: &'a [Claim], start: &str, what: &str) -> &'a Claim {
        c.iter()
            .find(|c| c.claim.starts_with(start) && c.claim.contains(what))
            .unwrap_or_else(|| panic!("no claim {start} {what}"))
    }

    #[test]
    fn clear_effects_decide_and_random_is_not_a_claim() {
        let s = summary(&[
            // IMP loses about 5 points under both ablations.
            (
                "imp",
                [(0.88, 0.83, 0.84), (0.875, 0.826, 0.834), (0.882, 0.831, 0.842)],
            ),
            // SNIP keeps its accuracy (changes within ±0.1 point).
            (
                "snip",
                [(0.82, 0.821, 0.8195), (0.818, 0.8185, 0.818), (0.821, 0.8205, 0.8215)],
            ),
            // SynFlow loses 5 points: the paper's claim fails.
            (
                "synflow",
                [(0.83, 0.78, 0.781), (0.832, 0.782, 0.781), (0.829, 0.779, 0.78)],
            ),
            // PHEW keeps its accuracy: this project's extension.
            (
                "phew",
                [(0.82, 0.8205, 0.82), (0.82, 0.82, 0.8195), (0.821, 0.8205, 0.821)],
            ),
            ("random", [(0.5, 0.6, 0.4), (0.55, 0.5, 0.6), (0.6, 0.55, 0.5)]),
        ]);
        let c = claims(&s);
        // 4 methods × 2 ablations, one family; random is outside it.
        assert_eq!(c.len(), 8, "{c:#?}");
        assert!(c.iter().all(|c| !c.claim.starts_with("random")));
        assert!(
            c.iter().all(|c| c.measured.contains("family of 8")),
            "{}",
            c[0].measured
        );
        for what in ["shuffled", "reinitialized"] {
            let imp = find(&c, "The IMP", what);
            assert_eq!(imp.verdict, Verdict::Consistent, "{}", imp.line());
            assert!(imp.source.contains("the paper's claim: Frankle"), "{}", imp.source);
            let snip = find(&c, "snip", what);
            assert_eq!(snip.verdict, Verdict::Consistent, "{}", snip.line());
            assert!(snip.source.contains("the paper's claim"), "{}", snip.source);
            let syn = find(&c, "synflow", what);
            assert_eq!(syn.verdict, Verdict::Contradicts, "{}", syn.line());
            let phew = find(&c, "phew", what);
            assert_eq!(phew.verdict, Verdict::Consistent, "{}", phew.line());
            assert!(phew.source.contains("this project's hypothesis"), "{}", phew.source);
        }
        assert!(random_sanity(&s).unwrap().contains("not a verdict"));
    }

    #[test]
    fn noise_one_seed_or_no_ablations_is_inconclusive() {
        // The changes straddle the margin: neither shown nor excluded.
        let s = summary(&[("grasp", [(0.82, 0.83, 0.80), (0.82, 0.80, 0.83), (0.82, 0.805, 0.815)])]);
        assert!(claims(&s).iter().all(|c| c.verdict == Verdict::Inconclusive));
        // One seed: no interval.
        let mut one = summary(&[("snip", [(0.82, 0.82, 0.82), (0.82, 0.82, 0.82), (0.82, 0.82, 0.82)])]);
        one.records.retain(|r| r.seed == 0);
        let c = claims(&one);
        assert!(c.iter().all(|c| c.verdict == Verdict::Inconclusive), "{c:#?}");
        assert!(c[0].reason.contains("no interval"), "{}", c[0].reason);
        // Ablations not run: untestable.
        let mut none = summary(&[("imp", [(0.88, 0.8, 0.8), (0.88, 0.8, 0.8), (0.88, 0.8, 0.8)])]);
        for r in &mut none.records {
            r.shuffled_accuracy = None;
            r.reinit_accuracy = None;
        }
        let c = claims(&none);
        assert!(c
            .iter()
            .all(|c| c.verdict == Verdict::Inconclusive && c.reason.contains("pai.ablations")));
    }
}
