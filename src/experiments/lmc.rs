//! Linear mode connectivity and instability analysis (Frankle, Dziugaite,
//! Roy & Carbin 2020, Sec. 2-4).
//!
//! A parent network is trained from θ0 with the experiment's data order; at
//! step k two copies are spawned from θk that differ only in their data order
//! (the SGD noise) and trained to the end, steps k..T with the learning-rate
//! schedule continuing from k. The error along the line
//! `θ(α) = (1 − α) θ1 + α θ2` (Frankle et al. 2020, Sec. 2) is evaluated at
//! evenly spaced α; the **instability** (error barrier) is
//! `max_α E(θ(α)) − (E(θ1) + E(θ2)) / 2`. A network is *stable* at k when
//! the instability is about 0 (under 2 percentage points).
//!
//! Sparse networks, two different experiments:
//! - **Per-k IMP** (`[lmc.imp]`, Frankle et al. 2020, Sec. 4): for each k the
//!   subnetwork is found by IMP with rewinding to k (prune the trained
//!   weights, rewind the survivors to θk, retrain steps k..T, repeat) down to
//!   each target density; the IMP subnetwork θk ⊙ m and a randomly pruned one
//!   (same per-layer counts, θk) are each spawned as a pair from θk and
//!   analysed as above. A subnetwork is *matching* when its accuracy is
//!   no lower than the dense network's by more than
//!   [`crate::experiments::imp::MATCHING_MARGIN`] (a declared margin), compared pair by
//!   pair with the dense pair spawned at the same k with the same data
//!   orders. The paper's finding: "IMP subnetworks are only matching when
//!   they are stable".
//! - **One mask** (`mask` or `sparse_density`): one fixed mask (a file, or a
//!   one-shot magnitude mask of the trained parent) serves every k. This is
//!   not the paper's procedure and is labelled `one_mask` in every output.
//!
//! With a mask, both copies and every interpolated network share it: masked
//! weights are 0 at both ends, hence 0 all along the line.
//!
//! Children start with a fresh optimizer by default: open_lth creates the
//! optimizer anew whenever training starts at a step k (`training/train.py`;
//! only the schedule and the data order are advanced), which is the code
//! Frankle et al. 2020 used. `inherit_optimizer_state = true` starts both
//! children from the parent's optimizer state (momentum) at k instead.
//!
//! Verdicts ([`claims`]): one Holm family of declared claims, each an
//! interval over pairs (replicates of the SGD noise within the one init of
//! the run, not independent inits): the dense network is stable at k = 0
//! for a fully connected network (Frankle et al. 2020, Sec. 3); IMP
//! subnetworks are stable at k = 0 (LeNet, Sec. 4) and randomly pruned ones
//! unstable there (Sec. 4); and "matching only when stable", untestable
//! unless some IMP subnetwork is unstable.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::config::Experiment;
use crate::data::Dataset;
use crate::experiments::imp::MATCHING_MARGIN;
use crate::models::Network;
use crate::params::{Mask, ParamSet};
use crate::paths::{read_json, write_csv, write_json, RunDir};
use crate::prune::{self, PruneSpec};
use crate::report::plot::{LineChart, Marker, Series, Spread};
use crate::report::verdict::protocol::{self, Declared, Evidence, Hypothesis, Item, Origin, Side};
use crate::report::verdict::{self, Claim};
use crate::runner::UnitEnv;
use crate::stats;
use crate::train::{self, ensemble, Supervised, TrainOptions, TrainSpec, Trainable};
use crate::{Error, Result};

/// `[lmc.imp]`: per-k IMP subnetworks (Frankle et al. 2020, Sec. 4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmcImpConfig {
    /// Target densities (fraction of prunable weights kept); each is reached
    /// at the IMP round whose planned density is closest.
    #[serde(default = "default_densities")]
    pub densities: Vec<f64>,
    /// Pruning per round (default: 20% layer-wise magnitude, output layer at half rate).
    #[serde(default)]
    pub prune: PruneSpec,
    /// Also analyse a randomly pruned subnetwork at each density.
    #[serde(default = "default_true")]
    pub random_control: bool,
}

fn default_densities() -> Vec<f64> {
    vec![0.035, 0.014]
}
fn default_true() -> bool {
    true
}

impl Default for LmcImpConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty [lmc.imp] takes every default")
    }
}

/// `[lmc]` of an experiment TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmcConfig {
    /// Spawn steps k.
    #[serde(default = "default_ks")]
    pub ks: Vec<usize>,
    /// Pairs of copies per k.
    #[serde(default = "default_pairs")]
    pub pairs: usize,
    /// Interpolation points (α evenly spaced in [0, 1], both ends included).
    #[serde(default = "default_points")]
    pub points: usize,
    /// Train examples on which the train loss along the path is evaluated (0 = skip).
    #[serde(default = "default_train_eval")]
    pub train_eval_size: usize,
    /// Start each child from the parent's optimizer state at k (default:
    /// fresh, as open_lth does; see the module docs).
    #[serde(default)]
    pub inherit_optimizer_state: bool,
    /// One-mask mode: analyse the subnetwork with this mask file (from `ltk imp`) at every k.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<std::path::PathBuf>,
    /// One-mask mode: a one-shot magnitude mask of the trained parent at this density.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse_density: Option<f64>,
    /// Per-k IMP subnetworks (Frankle et al. 2020, Sec. 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imp: Option<LmcImpConfig>,
}

fn default_ks() -> Vec<usize> {
    vec![0, 25, 100, 500, 2000]
}
fn default_pairs() -> usize {
    3
}
fn default_points() -> usize {
    30
}
fn default_train_eval() -> usize {
    10_000
}

impl Default for LmcConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty [lmc] takes every default")
    }
}

/// Rounds searched for a target density (0.8^40 ≈ 1.3e-4).
const MAX_PLANNED_ROUNDS: usize = 40;

impl LmcConfig {
    /// Errors on k outside the run, fewer than 2 points, no pairs, a bad
    /// density, more than one sparse mode, or an IMP schedule that empties a layer.
    pub fn validate(&self, total_steps: usize) -> Result<()> {
        if self.ks.is_empty() {
            return Err(Error::config("lmc.ks", "at least one spawn step", "[]"));
        }
        if let Some(&k) = self.ks.iter().find(|&&k| k >= total_steps) {
            return Err(Error::config(
                "lmc.ks",
                format!("steps < {total_steps} (the training length T; children train k..T)"),
                k,
            ));
        }
        if self.points < 2 {
            return Err(Error::config("lmc.points", ">= 2", self.points));
        }
        if self.pairs == 0 {
            return Err(Error::config("lmc.pairs", ">= 1", 0));
        }
        if let Some(d) = self.sparse_density {
            if !(d > 0.0 && d < 1.0) {
                return Err(Error::config("lmc.sparse_density", "a fraction in (0, 1)", d));
            }
        }
        let modes = [self.mask.is_some(), self.sparse_density.is_some(), self.imp.is_some()]
            .iter()
            .filter(|&&b| b)
            .count();
        if modes > 1 {
            return Err(Error::config(
                "lmc.mask / lmc.sparse_density / lmc.imp",
                "at most one sparse mode",
                format!("{modes} of them"),
            ));
        }
        if let Some(imp) = &self.imp {
            crate::runner::check_densities(&imp.densities, "lmc.imp.densities")?;
        }
        Ok(())
    }

    /// Checks what needs the network (layer names, the IMP schedule) and
    /// returns the per-target (round, planned density) of the IMP mode.
    pub fn plan(&self, exp: &Experiment) -> Result<Vec<(usize, f64)>> {
        self.validate(exp.spec.steps)?;
        let Some(imp) = &self.imp else { return Ok(vec![]) };
        let layers = exp.net.prunable();
        imp.prune.validate(&layers)?;
        let spec = imp.prune.resolved(&layers);
        let counts = exp.net.prunable_counts();
        spec.rounds_for_densities(&counts, &imp.densities, MAX_PLANNED_ROUNDS, "lmc.imp.densities")
    }

    /// The interpolation coefficients.
    pub fn alphas(&self) -> Vec<f32> {
        (0..self.points).map(|i| i as f32 / (self.points - 1) as f32).collect()
    }
}

/// Error and loss along one interpolation path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathEval {
    pub alphas: Vec<f32>,
    /// Test error (1 − accuracy) at each α.
    pub test_error: Vec<f64>,
    pub test_loss: Vec<f64>,
    /// Train loss at each α (empty when not evaluated).
    pub train_loss: Vec<f64>,
}

/// `max_α e(α) − (e(0) + e(1)) / 2` of a curve `e` sampled with both ends included.
pub fn barrier(curve: &[f64]) -> f64 {
    match (curve.first(), curve.last()) {
        (Some(&a), Some(&b)) => curve.iter().copied().fold(f64::NEG_INFINITY, f64::max) - 0.5 * (a + b),
        _ => 0.0,
    }
}

/// Evaluates the networks `(1 − α) θ1 + α θ2` on `test` (and the train loss on
/// `train`, if given), one batched forward pass per α and data set.
pub fn evaluate_path(
    model: &mut dyn Trainable,
    theta1: &ParamSet,
    theta2: &ParamSet,
    alphas: &[f32],
    test: &Dataset,
    train: Option<&Dataset>,
    chunk: usize,
) -> Result<PathEval> {
    let mut out = PathEval {
        alphas: alphas.to_vec(),
        test_error: vec![],
        test_loss: vec![],
        train_loss: vec![],
    };
    for &a in alphas {
        let p = theta1.lerp(theta2, a)?;
        let e = train::evaluate(model, &p, test, chunk)?;
        out.test_error.push(1.0 - e.accuracy);
        out.test_loss.push(e.loss);
        if let Some(t) = train {
            out.train_loss.push(train::evaluate(model, &p, t, chunk)?.loss);
        }
    }
    Ok(out)
}

/// One pair of copies spawned at step k.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairResult {
    /// "dense", "one_mask", "imp" (per-k IMP subnetwork) or "random" (random pruning).
    pub network: String,
    pub k: usize,
    pub pair: usize,
    /// Density of the subnetwork (None for dense).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density: Option<f64>,
    pub path: PathEval,
    /// Test-error barrier.
    pub instability: f64,
    /// Train-loss barrier (None when not evaluated).
    pub train_loss_barrier: Option<f64>,
    /// Seconds for evaluating the whole path on the test set (and train subset).
    pub path_seconds: f64,
}

impl PairResult {
    /// Test accuracies of the two endpoints.
    pub fn endpoint_accuracies(&self) -> [f64; 2] {
        let e = &self.path.test_error;
        [
            1.0 - e.first().copied().unwrap_or(1.0),
            1.0 - e.last().copied().unwrap_or(1.0),
        ]
    }
}

/// Per-(network, density, k) aggregate over pairs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KSummary {
    pub network: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density: Option<f64>,
    pub k: usize,
    pub pairs: usize,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub stable: bool,
    /// Mean test accuracy of the pair endpoints.
    #[serde(default)]
    pub accuracy: f64,
}

/// One IMP round of the per-k IMP mode (trained on the parent's data order, steps k..T).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImpRound {
    pub k: usize,
    pub round: usize,
    pub density: f64,
    pub test_accuracy: f64,
    pub optimizer_steps: usize,
}

/// The whole analysis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmcSummary {
    pub name: String,
    pub model: String,
    pub results: Vec<PairResult>,
    pub per_k: Vec<KSummary>,
    /// One-mask mode: the mask's density.
    pub sparse_density: Option<f64>,
    /// Dense test accuracies (the parent and every dense endpoint), for "matching".
    #[serde(default)]
    pub dense_accuracies: Vec<f64>,
    /// Per-k IMP mode: every IMP round.
    #[serde(default)]
    pub imp_rounds: Vec<ImpRound>,
    /// Test examples the errors are measured on (0 when unknown, as in
    /// summaries written before it).
    #[serde(default)]
    pub test_size: usize,
}

/// Instability under 2 percentage points counts as stable (Frankle et al. 2020).
pub const STABLE_THRESHOLD: f64 = 0.02;

/// Spawns the pairs `pairs` at step k from the parent's θk (and optimizer
/// state when children inherit it), with `mask`; trains each child steps
/// k..T on its own data order and evaluates the path; saved pairs are reused
/// on resume.
#[allow(clippy::too_many_arguments)]
fn run_pairs(
    sh: &Shared,
    exp: &Experiment,
    cfg: &LmcConfig,
    env: &UnitEnv,
    (network, density): (&str, Option<f64>),
    k: usize,
    pairs: std::ops::Range<usize>,
    mask: Option<&Mask>,
) -> Result<Vec<PairResult>> {
    let (start, optimizer_state) = sh.checkpoint(cfg, k)?;
    let train_eval = sh.train_eval.as_ref();
    let (dir, device, progress, resume) = (env.dir, env.device, env.progress, env.resume);
    let seed = exp.config.seed;
    let loss = exp.config.train.loss;
    let tag = match density {
        Some(d) => format!("{network}_d{:.5}", d),
        None => network.to_string(),
    };
    let path_of = |pair: usize| dir.file(&format!("results/{tag}_k{k}_pair{pair}.json"));
    let todo: Vec<usize> = pairs.clone().filter(|&p| !(resume && path_of(p).exists())).collect();
    let spec = TrainSpec {
        checkpoint_steps: vec![],
        save_every: 0,
        ..exp.spec.clone()
    };
    let shared = ensemble::Shared {
        net: &exp.net,
        loss,
        device,
        split: &exp.split,
        spec: &spec,
        start_step: k,
        keep_optimizer_checkpoints: false,
        progress,
    };
    // On a GPU every pending child trains in one computation; on the CPU
    // one pair at a time, so an interrupted unit keeps its finished pairs.
    let group = if ensemble::batches(&exp.net, device) {
        todo.len().max(1)
    } else {
        1
    };
    let mut children: BTreeMap<usize, Vec<ParamSet>> = BTreeMap::new();
    let mut out = Vec::new();
    for pair in pairs {
        let path = path_of(pair);
        if resume && path.exists() {
            out.push(read_json(&path)?);
            continue;
        }
        if !children.contains_key(&pair) {
            let next: Vec<usize> = todo.iter().copied().filter(|&p| p >= pair).take(group).collect();
            let members: Vec<ensemble::Member> = next
                .iter()
                .flat_map(|&p| {
                    ["a", "b"].map(|side| ensemble::Member {
                        init: start,
                        mask,
                        frozen: None,
                        data_seed: crate::rng::derive_seed(seed, &format!("lmc-{side}"), (k as u64) << 16 | p as u64),
                        optimizer_state,
                    })
                })
                .collect();
            let mut trained = ensemble::train_many(&shared, &members)?.into_iter();
            for &p in &next {
                let a = trained.next().expect("two children per pair")?.params;
                let b = trained.next().expect("two children per pair")?.params;
                children.insert(p, vec![a, b]);
            }
        }
        let ends = children.remove(&pair).expect("the pair's children were trained above");
        // BatchNorm statistics are recomputed at each interpolated point.
        let mut model = Supervised::new(exp.net.clone(), loss, device).calibrated(&exp.split.train);
        let t0 = Instant::now();
        let pe = evaluate_path(
            &mut model,
            &ends[0],
            &ends[1],
            &cfg.alphas(),
            &exp.split.test,
            train_eval,
            exp.spec.eval_chunk,
        )?;
        let r = PairResult {
            network: network.into(),
            k,
            pair,
            density,
            instability: barrier(&pe.test_error),
            train_loss_barrier: if pe.train_loss.is_empty() {
                None
            } else {
                Some(barrier(&pe.train_loss))
            },
            path: pe,
            path_seconds: t0.elapsed().as_secs_f64(),
        };
        write_json(&path, &r)?;
        out.push(r);
    }
    Ok(out)
}

/// The LMC experiment on the experiment layer. Units (independent, in this
/// order): the parent run; one pair per (network, k, pair) for the dense
/// network and the one-mask subnetwork; one per k for the per-k IMP mode (the
/// IMP rounds at k are sequential, so they are one unit with their pairs).
/// Every unit takes the parent from the run's training cache: it is trained
/// once per run directory (once per shard when sharded).
pub struct Lmc;

/// A unit of the LMC experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "unit", rename_all = "snake_case")]
pub enum LmcUnit {
    /// Train the parent 0..T (keeping θk for every k).
    Parent,
    /// One pair spawned at k: network "dense" or "one_mask".
    Pair { network: String, k: usize, pair: usize },
    /// Per-k IMP down to every target density, with the pairs of each.
    Imp { k: usize },
}

/// What one LMC unit measures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum LmcRecord {
    /// The parent's final test accuracy (None when it stops at the last k).
    Parent {
        final_accuracy: Option<f64>,
    },
    Pairs {
        results: Vec<PairResult>,
    },
    Imp {
        rounds: Vec<ImpRound>,
        results: Vec<PairResult>,
    },
}

/// What every unit shares: θ0, the parent (θk for every k), the one mask.
struct Shared {
    theta0: ParamSet,
    parent: train::TrainOutcome,
    one_mask: Option<Mask>,
    train_eval: Option<Dataset>,
    targets: Vec<(usize, f64)>,
}

fn sorted_ks(cfg: &LmcConfig) -> Vec<usize> {
    let mut ks = cfg.ks.clone();
    ks.sort_unstable();
    ks.dedup();
    ks
}

/// The parent's length: to the end when a sparse mode needs its final
/// weights (and for the dense accuracy), else to the last k.
fn parent_steps(exp: &Experiment, cfg: &LmcConfig) -> usize {
    if cfg.sparse_density.is_some() || cfg.imp.is_some() {
        exp.spec.steps
    } else {
        *sorted_ks(cfg).last().unwrap_or(&0)
    }
}

fn file_mask(cfg: &LmcConfig, net: &Network, theta0: &ParamSet) -> Result<Option<Mask>> {
    match &cfg.mask {
        Some(path) => {
            let m = Mask::load(path)?;
            m.validate(theta0)?;
            net.check_prunable(m.0 .0.keys(), &format!("lmc.mask ({})", path.display()))?;
            Ok(Some(m))
        }
        None => Ok(None),
    }
}

fn shared(exp: &Experiment, cfg: &LmcConfig, env: &UnitEnv) -> Result<Shared> {
    let targets = cfg.plan(exp)?;
    let net = &exp.net;
    let seed = exp.config.seed;
    let theta0 = net.init(seed);
    let layers = net.prunable();
    let file_mask = file_mask(cfg, net, &theta0)?;
    let parent_spec = TrainSpec {
        steps: parent_steps(exp, cfg).max(1),
        checkpoint_steps: sorted_ks(cfg),
        eval_every: 0,
        save_every: 0,
        ..exp.spec.clone()
    };
    let mut model = Supervised::new(net.clone(), exp.config.train.loss, env.device);
    // Cached in the run directory: trained once, by the first unit that needs it.
    let parent = train::cache::cached_train(
        &env.dir.train_cache(),
        &exp.training_identity()?,
        &mut model,
        &theta0,
        &exp.split,
        &parent_spec,
        &TrainOptions {
            progress: env.progress,
            keep_optimizer_checkpoints: cfg.inherit_optimizer_state,
            ..Default::default()
        },
    )?;
    let one_mask = match (file_mask, cfg.sparse_density) {
        (Some(m), _) => Some(m),
        (None, Some(d)) => {
            let spec = PruneSpec {
                rate: 1.0 - d,
                ..Default::default()
            };
            let scores = prune::scores(prune::Criterion::Magnitude, &theta0, &parent.params, &layers, seed)?;
            Some(prune::prune(&spec, &Mask::ones(&theta0, &layers)?, &scores)?)
        }
        _ => None,
    };
    let train_eval = if cfg.train_eval_size > 0 {
        Some(exp.split.train.take(cfg.train_eval_size.min(exp.split.train.len()))?)
    } else {
        None
    };
    Ok(Shared {
        theta0,
        parent,
        one_mask,
        train_eval,
        targets,
    })
}

impl Shared {
    /// The parent's θk (and its optimizer state when children inherit it).
    fn checkpoint(&self, cfg: &LmcConfig, k: usize) -> Result<(&ParamSet, Option<&ParamSet>)> {
        let p = self
            .parent
            .checkpoints
            .get(&k)
            .ok_or_else(|| Error::invalid("parent checkpoint", "present", k))?;
        let o = if cfg.inherit_optimizer_state {
            Some(
                self.parent
                    .optimizer_checkpoints
                    .get(&k)
                    .ok_or_else(|| Error::invalid("parent optimizer checkpoint", "present", k))?,
            )
        } else {
            None
        };
        Ok((p, o))
    }
}

/// Per-k IMP (rewinding to k) down to every target density; the pairs of the
/// IMP subnetwork (and the random control) at each target.
fn imp_unit(
    exp: &Experiment,
    cfg: &LmcConfig,
    icfg: &LmcImpConfig,
    sh: &Shared,
    k: usize,
    env: &UnitEnv,
) -> Result<LmcRecord> {
    let net = &exp.net;
    let seed = exp.config.seed;
    let layers = net.prunable();
    let spec = icfg.prune.resolved(&layers);
    let last_round = sh.targets.iter().map(|t| t.0).max().unwrap_or(0);
    let (theta_k, _) = sh.checkpoint(cfg, k)?;
    let mut mask = Mask::ones(&sh.theta0, &layers)?;
    let mut prev_final = sh.parent.params.clone();
    let (mut rounds, mut results) = (Vec::new(), Vec::new());
    for round in 1..=last_round {
        let scores = prune::scores(
            icfg.prune.criterion,
            &sh.theta0,
            &prev_final,
            &layers,
            crate::rng::derive_seed(seed, "prune", round as u64),
        )?;
        mask = prune::prune(&spec, &mask, &scores)?;
        let rd = env.dir.child(&format!("imp/k{k}/round_{round:02}"))?;
        let (rec, final_params) = if env.resume && rd.file("record.json").exists() {
            let m = Mask::load(&rd.file("mask.safetensors"))?;
            m.0.check_same_layout(&mask.0, "saved IMP mask")?;
            mask = m;
            (
                read_json::<ImpRound>(&rd.file("record.json"))?,
                ParamSet::load(&rd.file("final.safetensors"))?,
            )
        } else {
            // The IMP retraining: θk ⊙ m, steps k..T, the parent's data order.
            let mut model = Supervised::new(net.clone(), exp.config.train.loss, env.device);
            let o = train::train(
                &mut model,
                theta_k,
                &exp.split,
                &exp.spec,
                &TrainOptions {
                    mask: Some(&mask),
                    start_step: k,
                    progress: env.progress,
                    ..Default::default()
                },
            )?;
            let rec = ImpRound {
                k,
                round,
                density: mask.density(),
                test_accuracy: o.last().map(|r| r.test_accuracy).unwrap_or(f64::NAN),
                optimizer_steps: o.steps_done - o.start_step,
            };
            mask.save(&rd.file("mask.safetensors"))?;
            o.params.save(&rd.file("final.safetensors"))?;
            write_json(&rd.file("record.json"), &rec)?;
            (rec, o.params)
        };
        if env.progress {
            eprintln!(
                "k = {k}: IMP round {round}, {:.2}% of weights remaining, test accuracy {:.2}%",
                100.0 * rec.density,
                100.0 * rec.test_accuracy
            );
        }
        rounds.push(rec);
        prev_final = final_params;
        if sh.targets.iter().any(|t| t.0 == round) {
            let d = mask.density();
            results.extend(run_pairs(
                sh,
                exp,
                cfg,
                env,
                ("imp", Some(d)),
                k,
                0..cfg.pairs,
                Some(&mask),
            )?);
            if icfg.random_control {
                let rm = prune::random_like(
                    &mask,
                    crate::rng::derive_seed(seed, "lmc-random-prune", ((k as u64) << 16) | round as u64),
                )?;
                results.extend(run_pairs(
                    sh,
                    exp,
                    cfg,
                    env,
                    ("random", Some(d)),
                    k,
                    0..cfg.pairs,
                    Some(&rm),
                )?);
            }
        }
    }
    Ok(LmcRecord::Imp { rounds, results })
}

impl crate::runner::Experiment for Lmc {
    const NAME: &'static str = "lmc";
    type Base = Experiment;
    const ABOUT: &'static str = "Linear mode connectivity / instability analysis under SGD noise (Frankle et al. 2020)";
    const FLAGS: &'static [crate::runner::flags::Flag] = &[
        crate::runner::flags::Flag::new("ks", "Spawn steps k (e.g. 0,25,100,500,2000)."),
        crate::runner::flags::Flag::new("pairs", "Pairs of copies per k."),
        crate::runner::flags::Flag::new("points", "Interpolation points."),
        crate::runner::flags::Flag::new("mask", "One-mask mode: analyze the subnetwork with this fixed mask at every k (e.g. runs/imp_x/seed_0/round_07/mask.safetensors); replaces [lmc.imp]. Not Frankle et al. 2020's per-k IMP procedure, which [lmc.imp] runs."),
        crate::runner::flags::Flag::new("inherit_optimizer_state", "Start each child from the parent's optimizer state (momentum) at k instead of a fresh optimizer (the default, as in open_lth)."),
    ];
    type Config = LmcConfig;
    type Unit = LmcUnit;
    type Record = LmcRecord;
    type Summary = LmcSummary;

    /// Validates everything (a mask file's names and shapes, the IMP
    /// schedule) before any training.
    fn resolve(base: &Experiment, cfg: &mut LmcConfig) {
        if let Some(i) = cfg.imp.as_mut() {
            i.prune = i.prune.resolved(&base.net.prunable());
        }
    }
    fn banner(base: &Experiment, cfg: &LmcConfig) -> String {
        format!(
            "{}: instability analysis of {} on {}, k in {:?}, {} pairs, {} points, {} steps",
            base.config.name,
            base.net.describe(),
            base.split.train.name,
            cfg.ks,
            cfg.pairs,
            cfg.points,
            base.spec.steps
        )
    }
    fn on_flag(table: &mut toml::Table, key: &str) {
        // A fixed mask replaces the per-k IMP subnetworks.
        if key == "mask" {
            table.remove("sparse_density");
            table.remove("imp");
        }
    }
    fn units(exp: &Experiment, cfg: &LmcConfig) -> Result<Vec<LmcUnit>> {
        cfg.plan(exp)?;
        file_mask(cfg, &exp.net, &exp.net.init(exp.config.seed))?;
        let ks = sorted_ks(cfg);
        let mut units = vec![LmcUnit::Parent];
        let mut networks = vec!["dense"];
        if cfg.mask.is_some() || cfg.sparse_density.is_some() {
            networks.push("one_mask");
        }
        for network in networks {
            for &k in &ks {
                for pair in 0..cfg.pairs {
                    units.push(LmcUnit::Pair {
                        network: network.into(),
                        k,
                        pair,
                    });
                }
            }
        }
        if cfg.imp.is_some() {
            units.extend(ks.iter().map(|&k| LmcUnit::Imp { k }));
        }
        Ok(units)
    }
    fn unit_key(u: &LmcUnit) -> String {
        match u {
            LmcUnit::Parent => "parent".into(),
            LmcUnit::Pair { network, k, pair } => format!("{network}_k{k}_pair{pair}"),
            LmcUnit::Imp { k } => format!("imp_k{k}"),
        }
    }
    fn run_unit(exp: &Experiment, cfg: &LmcConfig, unit: &LmcUnit, env: &UnitEnv) -> Result<LmcRecord> {
        let sh = shared(exp, cfg, env)?;
        match unit {
            LmcUnit::Parent => Ok(LmcRecord::Parent {
                final_accuracy: if parent_steps(exp, cfg) == exp.spec.steps {
                    sh.parent.last().map(|r| r.test_accuracy)
                } else {
                    None
                },
            }),
            LmcUnit::Pair { network, k, pair } => {
                let mask = match network.as_str() {
                    "dense" => None,
                    _ => sh.one_mask.as_ref(),
                };
                let results = run_pairs(
                    &sh,
                    exp,
                    cfg,
                    env,
                    (network, mask.map(|m| m.density())),
                    *k,
                    *pair..*pair + 1,
                    mask,
                )?;
                Ok(LmcRecord::Pairs { results })
            }
            LmcUnit::Imp { k } => {
                let icfg = cfg
                    .imp
                    .as_ref()
                    .ok_or_else(|| Error::config("lmc.imp", "a table (the unit is an IMP unit)", "none"))?;
                imp_unit(exp, cfg, icfg, &sh, *k, env)
            }
        }
    }
    fn summarize(exp: &Experiment, cfg: &LmcConfig, records: Vec<LmcRecord>) -> Result<LmcSummary> {
        let ks = sorted_ks(cfg);
        let (mut results, mut imp_rounds, mut dense_accuracies) = (Vec::new(), Vec::new(), Vec::new());
        for r in records {
            match r {
                LmcRecord::Parent { final_accuracy } => dense_accuracies.extend(final_accuracy),
                LmcRecord::Pairs { results: p } => results.extend(p),
                LmcRecord::Imp { rounds, results: p } => {
                    imp_rounds.extend(rounds);
                    results.extend(p);
                }
            }
        }
        for r in results.iter().filter(|r| r.network == "dense" && r.k == ks[0]) {
            dense_accuracies.extend(r.endpoint_accuracies());
        }
        let sparse_density = results.iter().find(|r| r.network == "one_mask").and_then(|r| r.density);
        Ok(LmcSummary {
            name: exp.config.name.clone(),
            model: exp.net.describe(),
            per_k: aggregate(&results),
            results,
            sparse_density,
            dense_accuracies,
            imp_rounds,
            test_size: exp.split.test.len(),
        })
    }
    fn write_report(dir: &RunDir, s: &LmcSummary) -> Result<()> {
        write_summary(dir, s)
    }
    fn claims(s: &LmcSummary) -> Vec<Claim> {
        claims(s)
    }
    fn console(s: &LmcSummary) -> String {
        let mut t = table(s);
        let secs: Vec<f64> = s.results.iter().map(|r| r.path_seconds).collect();
        if !secs.is_empty() {
            t.push_str(&format!(
                "path evaluation ({} points): mean {:.3} s per pair\n",
                s.results[0].path.alphas.len(),
                stats::mean(&secs)
            ));
        }
        t
    }
}

/// Runs (or resumes) the analysis in `dir` for the dense network and the
/// configured sparse networks. Everything is validated (including a mask
/// file's names and shapes and the IMP schedule) before any training.
pub fn run(
    exp: &Experiment,
    cfg: &LmcConfig,
    dir: &RunDir,
    device: &Device,
    progress: bool,
    resume: bool,
) -> Result<LmcSummary> {
    crate::runner::run_in::<Lmc>(exp, cfg, dir, device, progress, resume)
}

/// Mean/min/max instability and mean endpoint accuracy per (network, density, k).
pub fn aggregate(results: &[PairResult]) -> Vec<KSummary> {
    // (network, density order, k) -> (density, instabilities, endpoint accuracies)
    type Key = (String, Option<u64>, usize);
    type Group = (Option<f64>, Vec<f64>, Vec<f64>);
    let mut groups: BTreeMap<Key, Group> = BTreeMap::new();
    for r in results {
        // Sort denser first: order by the negated density's bits within a network.
        let key = (r.network.clone(), r.density.map(|d| (1.0 - d).to_bits()), r.k);
        let g = groups.entry(key).or_insert((r.density, vec![], vec![]));
        g.1.push(r.instability);
        g.2.extend(r.endpoint_accuracies());
    }
    groups
        .into_iter()
        .map(|((network, _, k), (density, v, acc))| {
            let mean = stats::mean(&v);
            let (min, max) = stats::min_max(&v);
            KSummary {
                network,
                density,
                k,
                pairs: v.len(),
                mean,
                min,
                max,
                stable: mean < STABLE_THRESHOLD,
                accuracy: stats::mean(&acc),
            }
        })
        .collect()
}

/// The dense accuracies' mean and standard deviation (the parent and the
/// dense endpoints at the first k: one init, so the spread is SGD noise
/// only). A diagnostic of whether the dense network trains reliably; never
/// a matching threshold. None with fewer than 2 dense networks.
pub fn dense_spread(s: &LmcSummary) -> Option<(f64, f64)> {
    if s.dense_accuracies.len() < 2 {
        return None;
    }
    stats::mean_sd(&s.dense_accuracies)
}

/// The instabilities (fractions) of the pairs of `network` at `density` and `k`.
pub fn instabilities(s: &LmcSummary, network: &str, density: Option<f64>, k: usize) -> Vec<f64> {
    s.results
        .iter()
        .filter(|r| r.network == network && r.density == density && r.k == k)
        .map(|r| r.instability)
        .collect()
}

/// Per pair of `network` at `density` and `k`: its mean endpoint accuracy
/// minus the mean endpoint accuracy of the dense pair with the same k and
/// pair index (the two pairs' children share their data orders, so the
/// difference is paired). Pairs are replicates of the SGD noise within one
/// init, not independent inits.
pub fn accuracy_vs_dense(s: &LmcSummary, network: &str, density: Option<f64>, k: usize) -> Vec<f64> {
    let mean = |r: &PairResult| {
        let a = r.endpoint_accuracies();
        0.5 * (a[0] + a[1])
    };
    s.results
        .iter()
        .filter(|r| r.network == network && r.density == density && r.k == k)
        .filter_map(|r| {
            let d = s
                .results
                .iter()
                .find(|x| x.network == "dense" && x.k == k && x.pair == r.pair)?;
            Some(mean(r) - mean(d))
        })
        .collect()
}

/// The grid step of instabilities and of pair-mean accuracy differences:
/// half of one test example (0 when the test size is unknown).
pub fn resolution(s: &LmcSummary) -> f64 {
    if s.test_size > 0 {
        0.5 / s.test_size as f64
    } else {
        0.0
    }
}

/// Whether a cell is matching by its own 95% t interval of the paired
/// accuracy difference from dense against [`MATCHING_MARGIN`]: Some(true)
/// above −margin, Some(false) below, None when it straddles or there are
/// fewer than 2 pairs. Descriptive (the table), not family-adjusted.
pub fn matching(v: &[f64]) -> Option<bool> {
    let (m, h) = stats::mean_ci(v)?;
    if m - h > -MATCHING_MARGIN {
        Some(true)
    } else if m + h < -MATCHING_MARGIN {
        Some(false)
    } else {
        None
    }
}

/// "yes", "no" or "?" (undecided) for a three-valued cell.
pub fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    }
}

fn network_label(network: &str, density: Option<f64>) -> String {
    match (network, density) {
        ("imp", Some(d)) => format!("IMP subnetwork ({:.2}% of weights)", 100.0 * d),
        ("random", Some(d)) => format!("random pruning ({:.2}% of weights)", 100.0 * d),
        ("one_mask", Some(d)) => format!("one fixed mask ({:.2}% of weights)", 100.0 * d),
        (n, _) => n.to_string(),
    }
}

/// The per-k table (instability in percentage points, accuracy in percent).
/// "stable" and "matching" are each cell's own 95% intervals (yes / no / ?
/// when the interval straddles the threshold), not the family's verdicts.
pub fn table(s: &LmcSummary) -> String {
    let mut t = String::from(
        "| network | % weights | k | pairs | instability (pp, mean) | min | max | stable | accuracy (%) | matching |\n|---|---:|---:|---:|---:|---:|---:|---|---:|---|\n",
    );
    for r in &s.per_k {
        let matching = if r.network == "dense" {
            "–".to_string()
        } else {
            let v = accuracy_vs_dense(s, &r.network, r.density, r.k);
            if v.is_empty() {
                "–".to_string()
            } else {
                yes_no(matching(&v)).to_string()
            }
        };
        t.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {} |\n",
            r.network,
            r.density
                .map(|d| format!("{:.2}", 100.0 * d))
                .unwrap_or_else(|| "100".into()),
            r.k,
            r.pairs,
            100.0 * r.mean,
            100.0 * r.min,
            100.0 * r.max,
            yes_no(stability(&instabilities(s, &r.network, r.density, r.k))),
            100.0 * r.accuracy,
            matching
        ));
    }
    t.push_str(&format!(
        "\nstable: the 95% t interval of the instability over pairs lies below {:.0} pp (no: above; ?: straddles, or one pair). matching: the 95% t interval of (accuracy − dense accuracy), paired with the dense pair of the same k and data orders, lies above −{:.0} point (no: below). Pairs differ only in SGD noise (data order) from one init, so these intervals do not cover init-to-init variation.\n",
        100.0 * STABLE_THRESHOLD,
        100.0 * MATCHING_MARGIN
    ));
    if let Some((m, sd)) = dense_spread(s) {
        t.push_str(&format!(
            "dense accuracy {:.2} ± {:.2}% over {} networks (the parent and the dense endpoints at the first k)\n",
            100.0 * m,
            100.0 * sd,
            s.dense_accuracies.len()
        ));
    }
    t
}

/// Writes `summary.json`, `paths.csv`, `report.md` and the figures.
pub fn write_summary(dir: &RunDir, s: &LmcSummary) -> Result<()> {
    let mut rows = Vec::new();
    for r in &s.results {
        for (i, a) in r.path.alphas.iter().enumerate() {
            rows.push(vec![
                r.network.clone(),
                r.density.map(|d| d.to_string()).unwrap_or_default(),
                r.k.to_string(),
                r.pair.to_string(),
                a.to_string(),
                r.path.test_error[i].to_string(),
                r.path.test_loss[i].to_string(),
                r.path.train_loss.get(i).map(|v| v.to_string()).unwrap_or_default(),
            ]);
        }
    }
    write_csv(
        &dir.file("paths.csv"),
        &[
            "network",
            "density",
            "k",
            "pair",
            "alpha",
            "test_error",
            "test_loss",
            "train_loss",
        ],
        &rows,
    )?;
    let x = |k: usize| if k == 0 { 1.0 } else { k as f64 };
    for network in ["dense", "one_mask"] {
        let rs: Vec<&PairResult> = s.results.iter().filter(|r| r.network == network).collect();
        if rs.is_empty() {
            continue;
        }
        let mut curves = LineChart::new(
            &format!("{}: test error along the linear path ({network})", s.name),
            "interpolation α",
            "test error (%)",
        );
        let mut ks: Vec<usize> = rs.iter().map(|r| r.k).collect();
        ks.dedup();
        for k in &ks {
            let group: Vec<&&PairResult> = rs.iter().filter(|r| r.k == *k).collect();
            let alphas = &group[0].path.alphas;
            let mean: Vec<(f64, f64)> = (0..alphas.len())
                .map(|i| {
                    (
                        alphas[i] as f64,
                        100.0 * stats::mean(&group.iter().map(|r| r.path.test_error[i]).collect::<Vec<_>>()),
                    )
                })
                .collect();
            curves.push(Series::line(format!("k = {k}"), mean));
        }
        curves.save(&dir.figure(&format!("error_vs_alpha_{network}")))?;
        let per: Vec<&KSummary> = s.per_k.iter().filter(|r| r.network == network).collect();
        let inst = LineChart::new(
            &format!("{}: instability vs. spawn step ({network})", s.name),
            "spawn step k (log scale; k = 0 drawn at 1)",
            "instability: test-error barrier (pp)",
        )
        .log_x()
        .hline(100.0 * STABLE_THRESHOLD, "stable below 2 pp (Frankle et al. 2020)")
        .add(
            Series::line("mean over pairs", per.iter().map(|r| (x(r.k), 100.0 * r.mean)))
                .with_marker(Marker::LinePoints)
                .with_band(
                    Spread::MinMax("pairs"),
                    per.iter().map(|r| (x(r.k), 100.0 * r.min, 100.0 * r.max)),
                ),
        );
        inst.save(&dir.figure(&format!("instability_vs_k_{network}")))?;
    }
    // Per-k IMP: instability and accuracy vs k, one pair of figures per density
    // (the shape of Frankle et al. 2020, Fig. 3 and 5).
    let mut densities: Vec<f64> = s
        .per_k
        .iter()
        .filter(|r| r.network == "imp")
        .filter_map(|r| r.density)
        .collect();
    densities.dedup();
    for (i, d) in densities.iter().enumerate() {
        let mut inst = LineChart::new(
            &format!(
                "{}: instability of sparse subnetworks ({:.2}% of weights)",
                s.name,
                100.0 * d
            ),
            "rewind / spawn step k (log scale; k = 0 drawn at 1)",
            "instability: test-error barrier (pp)",
        )
        .log_x()
        .hline(100.0 * STABLE_THRESHOLD, "stable below 2 pp (Frankle et al. 2020)");
        let mut acc = LineChart::new(
            &format!(
                "{}: accuracy of sparse subnetworks ({:.2}% of weights)",
                s.name,
                100.0 * d
            ),
            "rewind / spawn step k (log scale; k = 0 drawn at 1)",
            "test accuracy (%), mean of the pair endpoints",
        )
        .log_x();
        if let Some((m, _)) = dense_spread(s) {
            acc = acc
                .hline(100.0 * m, "dense network (mean)")
                .hline(100.0 * (m - MATCHING_MARGIN), "dense mean − matching margin (1 point)");
        }
        for network in ["imp", "random"] {
            let per: Vec<&KSummary> = s
                .per_k
                .iter()
                .filter(|r| r.network == network && r.density == Some(*d))
                .collect();
            if per.is_empty() {
                continue;
            }
            let label = network_label(network, Some(*d));
            inst.push(
                Series::line(label.clone(), per.iter().map(|r| (x(r.k), 100.0 * r.mean)))
                    .with_marker(Marker::LinePoints)
                    .with_band(
                        Spread::MinMax("pairs"),
                        per.iter().map(|r| (x(r.k), 100.0 * r.min, 100.0 * r.max)),
                    ),
            );
            acc.push(
                Series::line(label, per.iter().map(|r| (x(r.k), 100.0 * r.accuracy))).with_marker(Marker::LinePoints),
            );
        }
        inst.save(&dir.figure(&format!("instability_vs_k_sparse_{i}")))?;
        acc.save(&dir.figure(&format!("accuracy_vs_k_sparse_{i}")))?;
    }
    crate::paths::write_text(
        &dir.report_md(),
        &format!(
            "# Linear mode connectivity: {}\n\n{}\n\n{}{}\n\n{}",
            s.name,
            s.model,
            if s.results.iter().any(|r| r.network == "one_mask") {
                "The `one_mask` network uses one fixed mask at every k: a different experiment from Frankle et al. 2020's per-k IMP subnetworks.\n\n"
            } else {
                ""
            },
            table(s),
            verdict::claims_markdown(&claims(s))
        ),
    )
}

/// Stability of a group from its pairs: Some(true) when the 95% t interval
/// of the mean instability lies below [`STABLE_THRESHOLD`], Some(false)
/// when above, None when it straddles it or there is one pair.
pub fn stability(v: &[f64]) -> Option<bool> {
    let (m, h) = stats::mean_ci(v)?;
    if m + h < STABLE_THRESHOLD {
        Some(true)
    } else if m - h > STABLE_THRESHOLD {
        Some(false)
    } else {
        None
    }
}

/// Whether the summary's network is fully connected (LeNet-300-100 and
/// other MLPs), the kind of network Frankle et al. 2020 find stable at
/// initialization; read from the model's description.
fn fully_connected(s: &LmcSummary) -> bool {
    s.model.starts_with("MLP")
}

/// The evidence that a group is stable (claimed side `Less`) or unstable
/// (`Greater`): per pair, instability − [`STABLE_THRESHOLD`].
fn stability_evidence(s: &LmcSummary, network: &str, density: Option<f64>, k: usize, what: &str) -> Evidence {
    let v = instabilities(s, network, density, k);
    if v.is_empty() {
        return Evidence::Untestable {
            why: format!("no pairs of {what} at k = {k}: add k = {k} to [lmc] ks"),
        };
    }
    Evidence::Paired {
        values: v.iter().map(|x| x - STABLE_THRESHOLD).collect(),
        resolution: resolution(s),
    }
}

/// Context of a stability claim: the pairs' instabilities.
fn stability_context(s: &LmcSummary, network: &str, density: Option<f64>, k: usize) -> String {
    let v = instabilities(s, network, density, k);
    if v.is_empty() {
        return String::new();
    }
    let (lo, hi) = stats::min_max(&v);
    format!(
        "instability at k = {k}: mean {:.2} pp (min {:.2}, max {:.2}) over {} pairs; the estimate is instability − {:.0} pp; pairs are replicates of SGD noise (data order) from one init",
        100.0 * stats::mean(&v),
        100.0 * lo,
        100.0 * hi,
        v.len(),
        100.0 * STABLE_THRESHOLD
    )
}

fn stable_claim(claim: String, origin: Origin, side: Side) -> Declared {
    let h = Hypothesis::Difference { side };
    match origin {
        Origin::Paper(cite) => Declared::paper(claim, cite, h),
        Origin::Project(why) => Declared::project(claim, why, h),
    }
    .shown_in(" pp", 100.0)
}

/// The verdicts, declared from the configuration (networks, densities and
/// spawn steps), never from the measurements, and decided as one Holm
/// family ([`protocol::decide_family`]). "Stable" is Frankle et al. 2020's
/// 2 pp: a stability claim is a one-sided interval on (instability − 2 pp)
/// over pairs, consistent when it lies below 0 (stable) for a stability
/// claim, above 0 for an instability claim. Pairs differ only in SGD noise
/// from one init: the intervals are about this init (and mask).
///
/// - Dense network: for a fully connected network, stable at k = 0 (the
///   paper's claim for LeNet on MNIST, Sec. 3); for any other network,
///   stable at the largest spawn step (this project's hypothesis: the paper
///   finds ResNet-20 and VGG-16 unstable at initialization and stable from
///   early in training).
/// - One fixed mask: stable at the smallest k (this project's hypothesis;
///   not the paper's procedure).
/// - Per-k IMP, at each density: the IMP subnetwork is stable at k = 0 for
///   a fully connected network (the paper's claim for LeNet, Sec. 4), at the
///   largest k otherwise (this project's hypothesis: the paper's larger
///   networks need rewinding to k > 0); the randomly pruned subnetwork is
///   unstable at k = 0 (the paper's claim, Sec. 4).
/// - "IMP subnetworks are matching only when they are stable" (Sec. 4):
///   where an IMP subnetwork is unstable by its own 95% interval, it is not
///   matching: per pair, (accuracy − dense accuracy of the pair with the
///   same data orders) + [`MATCHING_MARGIN`] < 0, pooled over the unstable
///   subnetworks. With no unstable subnetwork the claim is untestable
///   (inconclusive), never consistent.
pub fn claims(s: &LmcSummary) -> Vec<Claim> {
    let t = 100.0 * STABLE_THRESHOLD;
    let mut ks: Vec<usize> = s.results.iter().map(|r| r.k).collect();
    ks.sort_unstable();
    ks.dedup();
    let (Some(&k_min), Some(&k_max)) = (ks.first(), ks.last()) else {
        return vec![];
    };
    let fc = fully_connected(s);
    let mut items = Vec::new();

    // The dense network.
    if s.results.iter().any(|r| r.network == "dense") {
        let (claim, origin, k) = if fc {
            (
                format!("the dense network is stable to SGD noise at initialization, k = 0 (instability < {t:.0} pp)"),
                Origin::Paper("Frankle et al. 2020, Sec. 3 (LeNet on MNIST is stable at k = 0)".to_string()),
                0,
            )
        } else {
            (
                format!("the dense network is stable to SGD noise at the largest spawn step, k = {k_max} (instability < {t:.0} pp)"),
                Origin::Project(format!("Frankle et al. 2020, Sec. 3 find ResNet-20 and VGG-16 on CIFAR-10 unstable at initialization and stable from k ≈ 2000 and 1000 iterations; that k = {k_max} is late enough for this network is this project's assumption")),
                k_max,
            )
        };
        items.push(Item::new(
            stable_claim(claim, origin, Side::Less),
            stability_evidence(s, "dense", None, k, "the dense network"),
            stability_context(s, "dense", None, k),
        ));
    }

    // The one fixed mask.
    if let Some(d) = s.results.iter().find(|r| r.network == "one_mask").map(|r| r.density) {
        items.push(Item::new(
            stable_claim(
                format!("the {} is stable to SGD noise at k = {k_min} (instability < {t:.0} pp)", network_label("one_mask", d)),
                Origin::Project("one fixed mask (a file or a one-shot magnitude mask of the trained parent) at every k is not Frankle et al. 2020's per-k IMP procedure; motivated by their stable sparse LeNet subnetworks (Sec. 4)".into()),
                Side::Less,
            ),
            stability_evidence(s, "one_mask", d, k_min, "the one-mask subnetwork"),
            stability_context(s, "one_mask", d, k_min),
        ));
    }

    // Per-k IMP subnetworks and their random controls, per density.
    let mut densities: Vec<f64> = s
        .results
        .iter()
        .filter(|r| r.network == "imp" || r.network == "random")
        .filter_map(|r| r.density)
        .collect();
    densities.sort_by(|a, b| b.total_cmp(a));
    densities.dedup();
    for &d in &densities {
        let (k, origin) = if fc {
            (
                0,
                Origin::Paper(
                    "Frankle et al. 2020, Sec. 4 (LeNet: IMP subnetworks are stable and matching at k = 0)".to_string(),
                ),
            )
        } else {
            (
                k_max,
                Origin::Project(format!("Frankle et al. 2020, Sec. 4 find sparse IMP subnetworks of ResNet-20 and VGG-16 stable only with rewinding to k > 0 (about 500 and 1000 iterations); that k = {k_max} is late enough here is this project's assumption")),
            )
        };
        if s.results.iter().any(|r| r.network == "imp" && r.density == Some(d)) {
            items.push(Item::new(
                stable_claim(
                    format!(
                        "the {} rewound to k = {k} is stable to SGD noise (instability < {t:.0} pp)",
                        network_label("imp", Some(d))
                    ),
                    origin,
                    Side::Less,
                ),
                stability_evidence(s, "imp", Some(d), k, "the IMP subnetwork"),
                stability_context(s, "imp", Some(d), k),
            ));
        }
        if s.results.iter().any(|r| r.network == "random" && r.density == Some(d)) {
            items.push(Item::new(
                stable_claim(
                    format!(
                        "the {} is unstable to SGD noise at k = 0 (instability > {t:.0} pp)",
                        network_label("random", Some(d))
                    ),
                    Origin::Paper(
                        "Frankle et al. 2020, Sec. 4 (randomly pruned subnetworks are unstable at initialization)"
                            .into(),
                    ),
                    Side::Greater,
                ),
                stability_evidence(s, "random", Some(d), 0, "the randomly pruned subnetwork"),
                stability_context(s, "random", Some(d), 0),
            ));
        }
    }
    if s.results.iter().any(|r| r.network == "imp") {
        let (evidence, context) = only_when_stable(&[(String::new(), s)]);
        items.push(Item::new(only_when_stable_claim(), evidence, context));
    }
    protocol::decide_family(items)
}

/// "IMP subnetworks are matching only when they are stable" as a declared
/// claim (Frankle et al. 2020, Sec. 4): where unstable, not matching.
pub fn only_when_stable_claim() -> Declared {
    Declared::paper(
        format!(
            "IMP subnetworks (rewound to k) are matching only when they are stable to SGD noise: where an IMP subnetwork is unstable (instability interval above {:.0} pp) its accuracy is below dense by more than the {:.0}-point matching margin",
            100.0 * STABLE_THRESHOLD,
            100.0 * MATCHING_MARGIN
        ),
        "Frankle et al. 2020, Sec. 4",
        Hypothesis::Difference { side: Side::Less },
    )
    .shown_in(" pp", 100.0)
}

/// The evidence for [`only_when_stable_claim`] over the IMP subnetworks of
/// `summaries` (a label for each, e.g. a learning-rate setting): the
/// subnetworks unstable by their own 95% interval ([`stability`]) are
/// chosen by their instability, and then their accuracy is tested: per
/// pair, (accuracy − dense accuracy of the pair with the same k and data
/// orders) + [`MATCHING_MARGIN`], averaged over the unstable subnetworks
/// that share that dense pair, so each dense pair is one replicate. Untestable when none is
/// unstable, or when an unstable one has no dense pairs at its k.
pub fn only_when_stable(summaries: &[(String, &LmcSummary)]) -> (Evidence, String) {
    // One replicate per dense pair: unstable subnetworks at one (setting, k)
    // share their dense pairs, so their values are averaged per pair.
    let mut per_pair: std::collections::BTreeMap<(String, usize, usize), Vec<f64>> = Default::default();
    let mut cells = Vec::new();
    let mut resolution_max: f64 = 0.0;
    let mut undecided = 0;
    let mut stable = 0;
    for (label, l) in summaries {
        resolution_max = resolution_max.max(resolution(l));
        for g in l.per_k.iter().filter(|g| g.network == "imp") {
            match stability(&instabilities(l, "imp", g.density, g.k)) {
                Some(false) => {}
                Some(true) => {
                    stable += 1;
                    continue;
                }
                None => {
                    undecided += 1;
                    continue;
                }
            }
            let v = accuracy_vs_dense(l, "imp", g.density, g.k);
            cells.push(format!(
                "{label}{:.2}% k = {}: accuracy − dense {}",
                100.0 * g.density.unwrap_or(1.0),
                g.k,
                if v.is_empty() {
                    "– (no dense pairs at this k)".to_string()
                } else {
                    format!("{:+.2} pp over {} pairs", 100.0 * stats::mean(&v), v.len())
                }
            ));
            if v.is_empty() {
                return (
                    Evidence::Untestable {
                        why: format!("an unstable IMP subnetwork ({label}k = {}) has no dense pairs at its k to compare its accuracy with", g.k),
                    },
                    cells.join("; "),
                );
            }
            for (i, x) in v.iter().enumerate() {
                per_pair
                    .entry((label.clone(), g.k, i))
                    .or_default()
                    .push(x + MATCHING_MARGIN);
            }
        }
    }
    let tally = format!(
        "IMP subnetworks stable by their 95% interval: {stable}, undecided: {undecided}, unstable: {}",
        cells.len()
    );
    if cells.is_empty() {
        return (
            Evidence::Untestable {
                why: "no IMP subnetwork is unstable by its 95% interval, so \"only when stable\" is not tested (there is no unstable subnetwork to be non-matching): more pairs for the undecided ones, a higher learning rate, a larger network or sparser targets".into(),
            },
            tally,
        );
    }
    let values: Vec<f64> = per_pair.values().map(|v| stats::mean(v)).collect();
    (
        Evidence::Paired {
            values,
            resolution: resolution_max,
        },
        format!(
            "{tally}; unstable ones: {}; the estimate is (accuracy − dense) + {:.0} point, one replicate per dense pair (the unstable subnetworks at one k averaged; pairs are replicates of SGD noise from one init, paired with the dense pair of the same data orders)",
            cells.join("; "),
            100.0 * MATCHING_MARGIN
        ),
    )
}
