//! `ltk kernel-velocity`: kernel velocity and stability to SGD noise along
//! one dense run (Fort et al. 2020, "Deep learning versus kernel learning:
//! an empirical study of loss landscape geometry and the time evolution of
//! the Neural Tangent Kernel", NeurIPS; kernel distance and velocity, and
//! the parent-child spawning experiments).
//!
//! Per seed, one dense run 0..T keeps its parameters at a log-spaced grid of
//! steps t (with 0, every spawn step k and T). At each t the empirical NTK
//! Θ_t (traced; [`crate::ntk::empirical::mlp_ntk`] for an MLP, else by
//! autodiff, [`crate::ntk::autodiff_traced_ntk`]; on the first
//! `ntk_examples` training examples) is compared by Fort et al.'s kernel
//! distance `S(K1, K2) = 1 − ⟨K1, K2⟩_F / (||K1||_F ||K2||_F)`
//! ([`Kernel::cosine_distance`]):
//! - with Θ_{t+Δ}: the kernel velocity `v(t) = S(Θ_t, Θ_{t+Δ}) / Δ` per step;
//! - with Θ_T: how far the kernel still has to go.
//!
//! Beside it, the LMC instability of children spawned at each k
//! ([`crate::experiments::lmc`], Frankle et al. 2020: pairs of copies trained k..T on
//! different data orders, the test-error barrier on the path between them;
//! stable under 2 points) runs on the same parent (same θ0 and data order).
//!
//! The declared claim (Fort et al. 2020, abstract: a chaotic transient of
//! the first 2 to 3 epochs, in which the NTK changes rapidly, determines the
//! linearly connected basin): the network becomes stable to SGD noise at
//! about the time its kernel stops moving. Onsets are bracketed by their
//! grids: stability at the first k from which every later k is stable, the
//! kernel slowdown at the first t whose velocity is under `slow_fraction`
//! of its value at step 0. Per seed the ln ratio of the two onsets (the
//! brackets' log-midpoints, their widths as the resolution) is one paired
//! value; the claim is tested for equivalence within ± ln
//! [`ONSET_FACTOR`] over seeds ([`claims`]). A network already stable at
//! the first spawn step has no bracketed onset: the claim is then not
//! testable. Named choices (this project's): the traced kernel (the mean
//! over the outputs) on a fixed subset of training examples; for a
//! BatchNorm network (ResNet-20) the kernel of the network in evaluation
//! mode, BatchNorm statistics recomputed at each t over the calibration set
//! and held fixed (per-example gradients are otherwise undefined); the slowdown
//! threshold (Fort et al. give none; the default is an order of magnitude)
//! and the factor.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Experiment;
use crate::experiments::lmc::{KSummary, Lmc, LmcConfig, LmcRecord, LmcUnit, STABLE_THRESHOLD};
use crate::models::{Mlp, Network};
use crate::ntk::device::mlp_ntk_for;
use crate::ntk::empirical::{Kernel, KernelKind};
use crate::params::ParamSet;
use crate::paths::{write_csv, write_text, RunDir};
use crate::report::plot::{LineChart, Marker, Series, Spread};
use crate::report::verdict::protocol::{decide_family, Declared, Evidence, Hypothesis, Item};
use crate::report::verdict::{self, Claim};
use crate::runner::UnitEnv;
use crate::stats;
use crate::train::{self, Supervised, TrainOptions};
use crate::{Error, Result};

/// `[kernel_velocity]` of an experiment TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelVelocityConfig {
    /// Replicates: each seed is one parent (init and data order).
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Spawn steps k of the LMC children (each k + delta ≤ T).
    #[serde(default = "default_ks")]
    pub ks: Vec<usize>,
    /// Pairs of children per k.
    #[serde(default = "default_pairs")]
    pub pairs: usize,
    /// Interpolation points on each pair's path.
    #[serde(default = "default_points")]
    pub points: usize,
    /// Log-spaced kernel measurement steps in [1, T − delta] (besides 0 and every k).
    #[serde(default = "default_kernel_points")]
    pub kernel_points: usize,
    /// Δ: the kernel velocity compares Θ_t with Θ_{t+Δ}.
    #[serde(default = "default_delta")]
    pub delta: usize,
    /// Training examples of the NTK.
    #[serde(default = "default_ntk_examples")]
    pub ntk_examples: usize,
    /// The kernel has slowed down at the first measured step whose velocity
    /// is under this fraction of its velocity at step 0.
    #[serde(default = "default_slow_fraction")]
    pub slow_fraction: f64,
}

fn default_seeds() -> Vec<u64> {
    vec![0, 1, 2]
}
fn default_ks() -> Vec<usize> {
    vec![0, 25, 100, 500, 2000]
}
fn default_pairs() -> usize {
    2
}
fn default_points() -> usize {
    11
}
fn default_kernel_points() -> usize {
    20
}
fn default_delta() -> usize {
    10
}
fn default_ntk_examples() -> usize {
    256
}
fn default_slow_fraction() -> f64 {
    0.1
}

impl Default for KernelVelocityConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty [kernel_velocity] takes every default")
    }
}

impl KernelVelocityConfig {
    /// Checks everything before any training; returns the MLP when the
    /// network is one (its structured kernel), None for the others (the
    /// autodiff kernel, [`crate::ntk::autodiff_traced_ntk`]).
    pub fn validate(&self, exp: &Experiment) -> Result<Option<Mlp>> {
        crate::runner::check_seeds(&self.seeds, "kernel_velocity.seeds")?;
        let total = exp.spec.steps;
        if self.delta == 0 || self.delta >= total {
            return Err(Error::config(
                "kernel_velocity.delta",
                format!("1..{total} (steps between compared kernels, below the training length T)"),
                self.delta,
            ));
        }
        self.lmc().validate(total)?;
        if let Some(&k) = self.ks.iter().find(|&&k| k + self.delta > total) {
            return Err(Error::config(
                "kernel_velocity.ks",
                format!("k + delta ≤ {total} (the velocity at k needs Θ at k + {})", self.delta),
                k,
            ));
        }
        if self.kernel_points < 2 {
            return Err(Error::config(
                "kernel_velocity.kernel_points",
                "at least 2 kernel measurement points",
                self.kernel_points,
            ));
        }
        if self.ntk_examples == 0 {
            return Err(Error::config("kernel_velocity.ntk_examples", "at least 1 example", 0));
        }
        if !(self.slow_fraction > 0.0 && self.slow_fraction < 1.0) {
            return Err(Error::config(
                "kernel_velocity.slow_fraction",
                "a fraction in (0, 1)",
                self.slow_fraction,
            ));
        }
        Ok(match &exp.net {
            Network::Mlp(mlp) => Some(mlp.clone()),
            _ => None,
        })
    }

    /// The LMC analysis of the dense parent at the spawn steps.
    pub fn lmc(&self) -> LmcConfig {
        LmcConfig {
            ks: self.ks.clone(),
            pairs: self.pairs,
            points: self.points,
            train_eval_size: 0,
            ..LmcConfig::default()
        }
    }

    /// The kernel measurement steps t (each with t + Δ ≤ T): 0, every k,
    /// and `kernel_points` log-spaced steps in [1, T − Δ].
    pub fn grid(&self, total: usize) -> Vec<usize> {
        let last = total.saturating_sub(self.delta).max(1);
        let mut s: Vec<usize> = (0..self.kernel_points)
            .map(|i| {
                let f = i as f64 / (self.kernel_points - 1) as f64;
                ((last as f64).powf(f)).round() as usize
            })
            .collect();
        s.push(0);
        s.extend(self.ks.iter().copied());
        s.retain(|&t| t + self.delta <= total);
        s.sort_unstable();
        s.dedup();
        s
    }
}

/// One unit: a seed's kernel trace, or one unit of its LMC analysis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "part", rename_all = "snake_case")]
pub enum KvUnit {
    Kernels { seed: u64 },
    Lmc { seed: u64, lmc: LmcUnit },
}

/// The kernel at one measured step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelPoint {
    pub step: usize,
    /// `S(Θ_t, Θ_{t+Δ}) / Δ`.
    pub velocity: f64,
    /// `S(Θ_t, Θ_T)`.
    pub to_final: f64,
    /// `||Θ_t||_F` (traced kernel).
    pub norm: f64,
}

/// One seed's kernel trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelTrace {
    pub seed: u64,
    pub points: Vec<KernelPoint>,
    pub final_accuracy: f64,
}

impl KernelTrace {
    /// The slowdown bracket `[lo, hi]`: the first measured step whose
    /// velocity is under `fraction` of its value at step 0 is `hi`, and the
    /// one before it (plus 1) is `lo`. None if no step is. (The first
    /// crossing, not "stays under": with a constant learning rate SGD noise
    /// keeps a floor under the velocity that late points can cross again.)
    pub fn slow_bracket(&self, fraction: f64) -> Option<(usize, usize)> {
        let v0 = self.points.first()?.velocity;
        let i = self.points.iter().position(|p| p.velocity < fraction * v0)?;
        Some(match i {
            0 => (0, 0),
            _ => (self.points[i - 1].step + 1, self.points[i].step),
        })
    }
}

/// What one unit measures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "part", rename_all = "snake_case")]
pub enum KvRecord {
    Kernels(KernelTrace),
    Lmc { seed: u64, record: LmcRecord },
}

/// One seed: the kernel trace and the dense instability at each k.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedResult {
    pub seed: u64,
    pub trace: KernelTrace,
    pub per_k: Vec<KSummary>,
}

impl SeedResult {
    /// The stability bracket `[lo, hi]`: `hi` is the first k from which
    /// every later k is stable, `lo` the k before it plus 1 (0 at the first
    /// k). None if the last k is unstable.
    pub fn stable_bracket(&self) -> Option<(usize, usize)> {
        let ks = &self.per_k;
        let i = (0..ks.len()).find(|&i| ks[i..].iter().all(|k| k.stable))?;
        Some(match i {
            0 => (0, ks[0].k),
            _ => (ks[i - 1].k + 1, ks[i].k),
        })
    }
}

/// The whole experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KvSummary {
    pub name: String,
    pub model: String,
    pub data: String,
    pub steps: usize,
    pub delta: usize,
    pub ntk_examples: usize,
    pub slow_fraction: f64,
    pub seeds: Vec<SeedResult>,
}

fn seed_dir(env: &UnitEnv, seed: u64) -> Result<RunDir> {
    env.dir.child(&format!("seed_{seed}"))
}

fn kernel_trace(exp: &Experiment, cfg: &KernelVelocityConfig, env: &UnitEnv, seed: u64) -> Result<KernelTrace> {
    let mlp = cfg.validate(exp)?;
    let exp = exp.with_seed(seed);
    let total = exp.spec.steps;
    let grid = cfg.grid(total);
    let mut keep: Vec<usize> = grid.iter().flat_map(|&t| [t, t + cfg.delta]).collect();
    keep.push(total);
    keep.retain(|&t| t > 0);
    keep.sort_unstable();
    keep.dedup();
    let theta0 = exp.net.init(seed);
    let spec = train::TrainSpec {
        checkpoint_steps: keep,
        ..crate::runner::unit_spec(&exp, exp.spec.data_seed)
    };
    let mut model = Supervised::new(exp.net.clone(), exp.config.train.loss, env.device);
    let out = train::train(
        &mut model,
        &theta0,
        &exp.split,
        &spec,
        &TrainOptions {
            progress: env.progress,
            ..Default::default()
        },
    )?;
    let train = &exp.split.train;
    let n = cfg.ntk_examples.min(train.len());
    let x = &train.x[..n * train.dim()];
    let at = |t: usize| -> Result<&ParamSet> {
        if t == 0 {
            return Ok(&theta0);
        }
        out.checkpoints
            .get(&t)
            .or(if t == total { Some(&out.params) } else { None })
            .ok_or_else(|| Error::invalid("checkpoint", "parameters at every kernel step", t))
    };
    let mut kernels: BTreeMap<usize, Kernel> = BTreeMap::new();
    let mut kernel = |t: usize| -> Result<Kernel> {
        if let Some(k) = kernels.get(&t) {
            return Ok(k.clone());
        }
        let p = at(t)?;
        let k = match &mlp {
            Some(mlp) => mlp_ntk_for(env.device, mlp, p, x, n, x, n, KernelKind::Traced, None, 64)?,
            None => {
                // BatchNorm in evaluation mode, at these parameters' statistics.
                let stats = if exp.net.has_batch_norm() {
                    Some(model.batch_norm_stats(p)?)
                } else {
                    None
                };
                crate::ntk::autodiff_traced_ntk(&exp.net, p, x, n, stats.as_ref())?
            }
        };
        kernels.insert(t, k.clone());
        Ok(k)
    };
    let last = kernel(total)?;
    let mut points = Vec::new();
    for &t in &grid {
        let (kt, kd) = (kernel(t)?, kernel(t + cfg.delta)?);
        points.push(KernelPoint {
            step: t,
            velocity: kt.cosine_distance(&kd)? / cfg.delta as f64,
            to_final: kt.cosine_distance(&last)?,
            norm: kt.frobenius(),
        });
    }
    Ok(KernelTrace {
        seed,
        points,
        final_accuracy: out.last().map(|r| r.test_accuracy).unwrap_or(f64::NAN),
    })
}

/// `ltk kernel-velocity` on the experiment layer: per seed, the kernel
/// trace and every unit of the LMC analysis of that seed's parent.
pub struct KernelVelocity;

impl crate::runner::Experiment for KernelVelocity {
    const NAME: &'static str = "kernel_velocity";
    type Base = Experiment;
    const ABOUT: &'static str = "Kernel velocity and stability (Fort et al. 2020): along one dense run per seed, the NTK's distance between Θ_t and Θ_t+Δ and to Θ_T, beside the LMC instability of children spawned at each k";
    const GROWS: &'static [&'static str] = &["seeds"];
    const FLAGS: &'static [crate::runner::flags::Flag] = &[
        crate::runner::flags::Flag::new("seeds", "Replicates (parents: init and data-order seeds)."),
        crate::runner::flags::Flag::new("ks", "Spawn steps k of the LMC children."),
        crate::runner::flags::Flag::new("pairs", "Pairs of children per k."),
        crate::runner::flags::Flag::new("delta", "Δ: the velocity compares the kernels at t and t + Δ."),
    ];
    type Config = KernelVelocityConfig;
    type Unit = KvUnit;
    type Record = KvRecord;
    type Summary = KvSummary;

    fn banner(base: &Experiment, cfg: &KernelVelocityConfig) -> String {
        format!(
            "{}: kernel velocity and stability of {} on {} ({} train / {} test), {} steps, Δ = {}, spawn steps {:?} with {} pairs, seeds {:?}",
            base.config.name,
            base.net.describe(),
            base.split.train.name,
            base.split.train.len(),
            base.split.test.len(),
            base.spec.steps,
            cfg.delta,
            cfg.ks,
            cfg.pairs,
            cfg.seeds
        )
    }
    fn units(base: &Experiment, cfg: &KernelVelocityConfig) -> Result<Vec<KvUnit>> {
        cfg.validate(base)?;
        let lmc = Lmc::units(base, &cfg.lmc())?;
        let mut out = Vec::new();
        for &seed in &cfg.seeds {
            out.push(KvUnit::Kernels { seed });
            out.extend(lmc.iter().map(|u| KvUnit::Lmc { seed, lmc: u.clone() }));
        }
        Ok(out)
    }
    fn unit_key(u: &KvUnit) -> String {
        match u {
            KvUnit::Kernels { seed } => format!("seed{seed}_kernels"),
            KvUnit::Lmc { seed, lmc } => format!("seed{seed}_{}", Lmc::unit_key(lmc)),
        }
    }
    fn run_unit(base: &Experiment, cfg: &KernelVelocityConfig, u: &KvUnit, env: &UnitEnv) -> Result<KvRecord> {
        match u {
            KvUnit::Kernels { seed } => Ok(KvRecord::Kernels(kernel_trace(base, cfg, env, *seed)?)),
            KvUnit::Lmc { seed, lmc } => {
                let dir = seed_dir(env, *seed)?;
                let sub = UnitEnv { dir: &dir, ..*env };
                let record = Lmc::run_unit(&base.with_seed(*seed), &cfg.lmc(), lmc, &sub)?;
                Ok(KvRecord::Lmc { seed: *seed, record })
            }
        }
    }
    fn summarize(base: &Experiment, cfg: &KernelVelocityConfig, records: Vec<KvRecord>) -> Result<KvSummary> {
        let mut traces: BTreeMap<u64, KernelTrace> = BTreeMap::new();
        let mut lmc: BTreeMap<u64, Vec<LmcRecord>> = BTreeMap::new();
        for r in records {
            match r {
                KvRecord::Kernels(t) => {
                    traces.insert(t.seed, t);
                }
                KvRecord::Lmc { seed, record } => lmc.entry(seed).or_default().push(record),
            }
        }
        let mut seeds = Vec::new();
        for &seed in &cfg.seeds {
            let trace = traces
                .remove(&seed)
                .ok_or_else(|| Error::invalid("kernel-velocity records", "a kernel trace per seed", seed))?;
            let s = Lmc::summarize(&base.with_seed(seed), &cfg.lmc(), lmc.remove(&seed).unwrap_or_default())?;
            let per_k = s.per_k.into_iter().filter(|k| k.network == "dense").collect();
            seeds.push(SeedResult { seed, trace, per_k });
        }
        Ok(KvSummary {
            name: base.config.name.clone(),
            model: base.net.describe(),
            data: base.split.train.name.clone(),
            steps: base.spec.steps,
            delta: cfg.delta,
            ntk_examples: cfg.ntk_examples.min(base.split.train.len()),
            slow_fraction: cfg.slow_fraction,
            seeds,
        })
    }
    fn write_report(dir: &RunDir, s: &KvSummary) -> Result<()> {
        write_summary(dir, s)
    }
    fn claims(s: &KvSummary) -> Vec<Claim> {
        claims(s)
    }
    fn console(s: &KvSummary) -> String {
        table(s)
    }
}

/// The velocity at step `t` relative to step 0, per seed.
fn relative(s: &SeedResult, t: usize, get: impl Fn(&KernelPoint) -> f64) -> Option<f64> {
    let p0 = s.trace.points.first()?;
    let p = s.trace.points.iter().find(|p| p.step == t)?;
    let base = get(p0);
    (base > 0.0).then(|| get(p) / base)
}

/// Per k: instability (mean ± sd over seeds of each seed's pair mean), the
/// seeds stable there, and the kernel velocity and distance to Θ_T.
pub fn table(s: &KvSummary) -> String {
    let mut out = format!(
        "{} on {}, {} steps, Δ = {}, NTK on {} training examples (traced), {} seeds: per spawn step k, the LMC instability (test-error barrier, pp; stable under {:.0}), the kernel velocity S(Θ_k, Θ_k+Δ)/Δ relative to step 0, and the kernel distance S(Θ_k, Θ_T) (mean ± sd over seeds)\n\n| k | instability (pp) | stable seeds | velocity / v(0) | S(Θ_k, Θ_T) | endpoint accuracy (%) |\n|---:|---:|---:|---:|---:|---:|\n",
        s.model,
        s.data,
        s.steps,
        s.delta,
        s.ntk_examples,
        s.seeds.len(),
        100.0 * STABLE_THRESHOLD
    );
    let ks: Vec<usize> = s
        .seeds
        .first()
        .map(|r| r.per_k.iter().map(|k| k.k).collect())
        .unwrap_or_default();
    for k in ks {
        let at_k: Vec<&KSummary> = s
            .seeds
            .iter()
            .filter_map(|r| r.per_k.iter().find(|x| x.k == k))
            .collect();
        let inst: Vec<f64> = at_k.iter().map(|x| x.mean).collect();
        let acc: Vec<f64> = at_k.iter().map(|x| x.accuracy).collect();
        let rel: Vec<f64> = s.seeds.iter().filter_map(|r| relative(r, k, |p| p.velocity)).collect();
        let fin: Vec<f64> = s
            .seeds
            .iter()
            .filter_map(|r| r.trace.points.iter().find(|p| p.step == k).map(|p| p.to_final))
            .collect();
        out.push_str(&format!(
            "| {k} | {} | {}/{} | {} | {} | {} |\n",
            stats::mean_sd_text(&inst, 100.0, 2),
            at_k.iter().filter(|x| x.stable).count(),
            at_k.len(),
            stats::mean_sd_text(&rel, 1.0, 3),
            stats::mean_sd_text(&fin, 1.0, 4),
            stats::mean_sd_text(&acc, 100.0, 2),
        ));
    }
    out.push_str("\nOnsets per seed, bracketed by the grids (stable from k on; the first step with velocity under ");
    out.push_str(&format!(
        "{:.0}% of v(0)):\n\n| seed | stable from | kernel slow from | final accuracy (%) |\n|---:|---|---|---:|\n",
        100.0 * s.slow_fraction
    ));
    for r in &s.seeds {
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} |\n",
            r.seed,
            bracket_text(r.stable_bracket()),
            bracket_text(r.trace.slow_bracket(s.slow_fraction)),
            100.0 * r.trace.final_accuracy
        ));
    }
    out
}

fn bracket_text(b: Option<(usize, usize)>) -> String {
    match b {
        None => "never".into(),
        Some((lo, hi)) if lo == hi => format!("step {hi}"),
        Some((lo, hi)) => format!("steps {lo}..={hi}"),
    }
}

/// Mean and min-max band over seeds of `get` at each step (x = step + 1 for the log axis).
fn band(rows: Vec<Vec<(usize, f64)>>) -> Vec<(f64, f64, f64, f64)> {
    let Some(first) = rows.first() else {
        return vec![];
    };
    first
        .iter()
        .map(|&(t, _)| {
            let v: Vec<f64> = rows
                .iter()
                .filter_map(|r| r.iter().find(|p| p.0 == t).map(|p| p.1))
                .collect();
            let (lo, hi) = stats::sd_band(&v);
            ((t + 1) as f64, stats::mean(&v), lo, hi)
        })
        .collect()
}

fn series(name: &str, pts: Vec<(f64, f64, f64, f64)>) -> Series {
    Series::line(name, pts.iter().map(|p| (p.0, p.1)))
        .with_marker(Marker::LinePoints)
        .with_band(Spread::Sd("seeds"), pts.iter().map(|p| (p.0, p.2, p.3)))
}

/// Writes summary.json, kernels.csv, instability.csv, report.md and the figure.
pub fn write_summary(dir: &RunDir, s: &KvSummary) -> Result<()> {
    let rows: Vec<Vec<String>> = s
        .seeds
        .iter()
        .flat_map(|r| {
            r.trace.points.iter().map(move |p| {
                vec![
                    r.seed.to_string(),
                    p.step.to_string(),
                    p.velocity.to_string(),
                    p.to_final.to_string(),
                    p.norm.to_string(),
                ]
            })
        })
        .collect();
    write_csv(
        &dir.file("kernels.csv"),
        &["seed", "step", "velocity", "distance_to_final", "kernel_norm"],
        &rows,
    )?;
    let rows: Vec<Vec<String>> = s
        .seeds
        .iter()
        .flat_map(|r| {
            r.per_k.iter().map(move |k| {
                vec![
                    r.seed.to_string(),
                    k.k.to_string(),
                    k.pairs.to_string(),
                    k.mean.to_string(),
                    k.min.to_string(),
                    k.max.to_string(),
                    k.stable.to_string(),
                    k.accuracy.to_string(),
                ]
            })
        })
        .collect();
    write_csv(
        &dir.file("instability.csv"),
        &[
            "seed",
            "k",
            "pairs",
            "instability",
            "min",
            "max",
            "stable",
            "endpoint_accuracy",
        ],
        &rows,
    )?;
    let mut fig = LineChart::new(
        &format!("{}: kernel velocity and stability to SGD noise", s.name),
        "step + 1",
        "instability (pp) / percent of the value at step 0",
    )
    .log_x()
    .hline(100.0 * STABLE_THRESHOLD, "stable below 2 pp");
    let per_seed = |get: &dyn Fn(&SeedResult) -> Vec<(usize, f64)>| s.seeds.iter().map(get).collect::<Vec<_>>();
    fig.push(
        series(
            "LMC instability of children spawned at k (pp)",
            band(per_seed(&|r| r.per_k.iter().map(|k| (k.k, 100.0 * k.mean)).collect())),
        )
        .with_color(0),
    );
    fig.push(
        series(
            "kernel velocity (% of step 0)",
            band(per_seed(&|r| {
                r.trace
                    .points
                    .iter()
                    .filter_map(|p| relative(r, p.step, |q| q.velocity).map(|v| (p.step, 100.0 * v)))
                    .collect()
            })),
        )
        .with_color(1),
    );
    fig.push(
        series(
            "kernel distance to Θ_T (% of step 0)",
            band(per_seed(&|r| {
                r.trace
                    .points
                    .iter()
                    .filter_map(|p| relative(r, p.step, |q| q.to_final).map(|v| (p.step, 100.0 * v)))
                    .collect()
            })),
        )
        .dashed()
        .with_color(2),
    );
    fig.save(&dir.figure("kernel_velocity"))?;
    write_text(
        &dir.report_md(),
        &format!(
            "# Kernel velocity and stability: {}\n\nOne dense parent per seed; children spawned at each k train k..T on their own data orders (LMC, Frankle et al. 2020); the kernels are the parent's. Per-unit wall times are in units/*.json.\n\n{}\n![kernel velocity](figures/kernel_velocity.png)\n\n{}",
            s.name,
            table(s),
            verdict::claims_markdown(&claims(s))
        ),
    )
}

/// "At about the time": the onsets of stability and of the kernel slowdown
/// within this factor of each other in steps (± ln 4 on the ln-step axis).
/// This project's reading: Fort et al. 2020 give no tolerance; a factor of 4
/// is about one spacing of the default log-spaced spawn grid (0, 25, 100,
/// 500, 2000), so brackets one grid step apart are at the margin.
pub const ONSET_FACTOR: f64 = 4.0;

/// An onset bracketed by a grid, on the ln(1 + step) axis: the bracket's
/// log-midpoint and its log-width.
fn log_onset((lo, hi): (usize, usize)) -> (f64, f64) {
    let (a, b) = (((lo + 1) as f64).ln(), ((hi + 1) as f64).ln());
    ((a + b) / 2.0, b - a)
}

/// Why a seed cannot place both onsets: `early` when it is stable already
/// at the first spawn step.
struct Unbracketed {
    early: bool,
    why: String,
}

/// One seed's onsets: `ln(stable onset) − ln(slow onset)` from the two
/// brackets' log-midpoints, and its resolution (the brackets' log-widths
/// combined).
fn onset_gap(r: &SeedResult, fraction: f64) -> std::result::Result<(f64, f64), Unbracketed> {
    let stable = match r.stable_bracket() {
        None => {
            return Err(Unbracketed {
                early: false,
                why: "still unstable at the last spawn step".into(),
            })
        }
        Some(_) if r.per_k.iter().all(|k| k.stable) => {
            return Err(Unbracketed {
                early: true,
                why: format!(
                    "stable already from the first spawn step k = {}: the onset of stability lies at or before it",
                    r.per_k.first().map(|k| k.k).unwrap_or(0)
                ),
            })
        }
        Some(b) => b,
    };
    let slow = r.trace.slow_bracket(fraction).ok_or_else(|| Unbracketed {
        early: false,
        why: format!(
            "the kernel velocity never falls under {:.0}% of v(0) within the grid",
            100.0 * fraction
        ),
    })?;
    let ((ms, ws), (ml, wl)) = (log_onset(stable), log_onset(slow));
    Ok((ms - ml, (ws * ws + wl * wl).sqrt()))
}

/// The declared claim (Fort et al. 2020): the network becomes stable to SGD
/// noise at about the time its kernel stops moving. Per seed (one parent =
/// one independent init and data order), the onset of stability (the first
/// spawn step from which every later one is stable, bracketed by the spawn
/// grid) and of the kernel slowdown (the first kernel step with velocity
/// under `slow_fraction` of v(0), bracketed by the kernel grid) are placed
/// at their brackets' log-midpoints; the paired value is the ln ratio of the
/// two onsets, tested for equivalence within ± ln [`ONSET_FACTOR`] (TOST),
/// with the brackets' widths as the resolution. A seed stable already at
/// the first spawn step (or never stable, or whose kernel never slows down)
/// has no bracketed onset: the claim is then not testable, never
/// "contradicts" (a network stable at init was stable before any slowdown
/// by construction).
pub fn claims(s: &KvSummary) -> Vec<Claim> {
    if s.seeds.is_empty() {
        return vec![];
    }
    let per: Vec<(u64, Option<(usize, usize)>, Option<(usize, usize)>)> = s
        .seeds
        .iter()
        .map(|r| (r.seed, r.stable_bracket(), r.trace.slow_bracket(s.slow_fraction)))
        .collect();
    let onsets = per
        .iter()
        .map(|(seed, st, sl)| {
            format!(
                "seed {seed}: stable from {}, kernel slow from {}",
                bracket_text(*st),
                bracket_text(*sl)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let v0: Vec<f64> = s
        .seeds
        .iter()
        .filter_map(|r| r.trace.points.first().map(|p| p.velocity))
        .collect();
    let context = format!(
        "{onsets}. Kernel velocity at step 0: {} per step (mean ± sd over {} seeds)",
        stats::mean_sd_text(&v0, 1.0, 6),
        v0.len()
    );
    let gaps: Vec<(u64, std::result::Result<(f64, f64), Unbracketed>)> = s
        .seeds
        .iter()
        .map(|r| (r.seed, onset_gap(r, s.slow_fraction)))
        .collect();
    let failed: Vec<String> = gaps
        .iter()
        .filter_map(|(seed, g)| g.as_ref().err().map(|u| format!("seed {seed}: {}", u.why)))
        .collect();
    let evidence = if failed.is_empty() {
        let ok: Vec<(f64, f64)> = gaps.iter().filter_map(|(_, g)| g.as_ref().ok().copied()).collect();
        Evidence::Paired {
            values: ok.iter().map(|g| g.0).collect(),
            resolution: ok.iter().map(|g| g.1).fold(0.0, f64::max),
        }
    } else {
        let early = gaps.iter().any(|(_, g)| g.as_ref().err().is_some_and(|u| u.early));
        let remedy = if early {
            "spawn children before the first spawn step (e.g. k = 1, 2, 5) or use a setting that is unstable at init (a larger learning rate or a deeper network, as Frankle et al. 2020's ResNet-20 at lr 0.1), so that the onset of stability is bracketed"
        } else {
            "spawn later or train longer (an onset of stability inside the spawn grid), or measure the kernel later in training (a slowdown inside the kernel grid)"
        };
        Evidence::Untestable {
            why: format!(
                "an onset is not bracketed in every seed ({}); {remedy}",
                failed.join("; ")
            ),
        }
    };
    let declared = Declared::paper(
        format!(
            "The network becomes stable to SGD noise (LMC instability < {:.0} pp from that spawn step on) at about the time its kernel stops moving (velocity first under {:.0}% of its value at step 0): the two onsets within a factor of {ONSET_FACTOR} in steps",
            100.0 * STABLE_THRESHOLD,
            100.0 * s.slow_fraction,
        ),
        "Fort et al. 2020 (NeurIPS), abstract and the parent-child spawning and kernel-velocity experiments: a chaotic transient of the first 2 to 3 epochs, in which the NTK changes rapidly, determines the linearly connected basin; the slowdown threshold and the factor are this project's",
        Hypothesis::Equivalence {
            margin: ONSET_FACTOR.ln(),
        },
    )
    .shown_in(" (ln of stable onset / slow onset)", 1.0);
    decide_family(vec![Item::new(declared, evidence, context)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::verdict::Verdict;

    fn ksum(k: usize, instability: f64) -> KSummary {
        KSummary {
            network: "dense".into(),
            density: None,
            k,
            pairs: 2,
            mean: instability,
            min: instability,
            max: instability,
            stable: instability < STABLE_THRESHOLD,
            accuracy: 0.9,
        }
    }

    /// A seed whose velocity first falls under 10% of v(0) at the kernel
    /// step `slow_at` and that is unstable at every spawn step before
    /// `unstable_until` (stable from there on).
    fn seed(seed: u64, slow_at: usize, unstable_until: usize) -> SeedResult {
        let steps = [0usize, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256];
        let points = steps
            .iter()
            .map(|&t| KernelPoint {
                step: t,
                velocity: if t < slow_at { 1.0 } else { 0.01 },
                to_final: 0.5,
                norm: 1.0,
            })
            .collect();
        let ks = [0usize, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192];
        SeedResult {
            seed,
            trace: KernelTrace {
                seed,
                points,
                final_accuracy: 0.9,
            },
            per_k: ks
                .iter()
                .map(|&k| ksum(k, if k < unstable_until { 0.1 } else { 0.0 }))
                .collect(),
        }
    }

    fn summary(seeds: Vec<SeedResult>) -> KvSummary {
        KvSummary {
            name: "t".into(),
            model: "mlp".into(),
            data: "digits".into(),
            steps: 300,
            delta: 1,
            ntk_examples: 8,
            slow_fraction: 0.1,
            seeds,
        }
    }

    #[test]
    fn stable_at_init_is_untestable_not_contradicts() {
        // Stable from k = 0 in every seed, the kernel slows down much later:
        // before, "contradicts" by construction; now not testable.
        let s = summary((0..4).map(|i| seed(i, 128, 0)).collect());
        let c = claims(&s);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].verdict, Verdict::Inconclusive, "{:?}", c[0]);
        assert!(
            c[0].reason.contains("not testable") && c[0].reason.contains("spawn children"),
            "{}",
            c[0].reason
        );
        assert!(
            c[0].source.contains("the paper's claim: Fort et al. 2020"),
            "{}",
            c[0].source
        );
    }

    #[test]
    fn coinciding_onsets_are_consistent_and_distant_ones_contradict() {
        // Stable from k = 32 (bracket 25..=32), kernel slow at 32 (bracket 25..=32), 6 seeds.
        let s = summary((0..6).map(|i| seed(i, 32, 32)).collect());
        let c = claims(&s);
        assert_eq!(c[0].verdict, Verdict::Consistent, "{:?}", c[0]);
        // Stable from k = 4, the kernel slows only at 256: a factor of about 50.
        let s = summary((0..6).map(|i| seed(i, 256, 4)).collect());
        let c = claims(&s);
        assert_eq!(c[0].verdict, Verdict::Contradicts, "{:?}", c[0]);
        // One seed: no interval, inconclusive.
        let s = summary(vec![seed(0, 32, 32)]);
        assert_eq!(claims(&s)[0].verdict, Verdict::Inconclusive);
    }
}
