//! `ltk double-descent`: model-wise double descent (Nakkiran, Kaplun,
//! Bansal, Yang, Barak & Sutskever 2019, "Deep double descent: where bigger
//! models and more data hurt", Sec. 5, Fig. 4 and 6: with label noise, test
//! error peaks where the model can just fit the training set) in a network,
//! its linearization, NTK kernel regression, and IMP tickets.
//!
//! The data's training labels carry noise (`[data] label_noise`,
//! [`crate::data::Split::with_label_noise`]: a fraction of them moved to a
//! uniformly random other class; test labels clean). Per (seed, width), the
//! base MLP with every hidden layer `width` wide:
//! - `network`: trained with the base `[train]` spec;
//! - `linearized`: its linearization at θ0 ([`crate::ntk::linearize`],
//!   Lee et al. 2019 Eq. 5), trained the same way;
//! - `kernel`: kernel regression with its empirical NTK at θ0 (traced,
//!   [`crate::ntk::empirical::mlp_ntk`], every training example):
//!   `f(x) = Θ(x, X) (Θ(X, X) + λI)⁻¹ Y` with one-hot Y and the small ridge
//!   `λ = ridge · tr Θ / n` (Arora et al. 2019's kernel predictor, without
//!   the initial function);
//! - `ticket`: the IMP ticket ([`crate::experiments::imp`], rewinding to θ0,
//!   `[double_descent.prune]` per round) at the round closest to
//!   `ticket_density`.
//!
//! The declared claims ([`claims`]) locate each model's peak before the
//! test: at its interpolation threshold (the smallest width whose train
//! error on the noisy training set is ≤ [`FIT_ERROR`]) measured on the
//! pilot seed (the first configured seed), then test, on the other seeds and
//! paired per seed, that the test error there exceeds both neighbouring
//! widths'. The network's peak is Nakkiran et al.'s claim; the
//! linearization's and the kernel's are this project's hypotheses (after
//! Belkin et al. 2019's random-feature double descent), as is the tickets'
//! flattening it. [`peak`] (the highest interior local maximum of the mean)
//! is descriptive only.

use serde::{Deserialize, Serialize};

use crate::config::Experiment;
use crate::experiments::imp::{Imp, ImpConfig};
use crate::models::{Mlp, Network};
use crate::ntk::device::mlp_ntk_for;
use crate::ntk::diagnostics::kernel_regression;
use crate::ntk::diagnostics::MAX_KERNEL_EXAMPLES;
use crate::ntk::empirical::KernelKind;
use crate::ntk::linearize::Linearized;
use crate::params::ParamSet;
use crate::paths::{write_csv, write_text, RunDir};
use crate::prune::PruneSpec;
use crate::report::plot::{LineChart, Marker, Series, Spread};
use crate::report::verdict::protocol::{decide_family, Declared, Evidence, Hypothesis, Item, Side};
use crate::report::verdict::{self, Claim};
use crate::runner::UnitEnv;
use crate::stats;
use crate::train::{self, Supervised, TrainOptions, Trainable};
use crate::{Error, Result};

/// Train error at or below which a network counts as fitting (interpolating)
/// the noisy training set.
pub const FIT_ERROR: f64 = 0.01;
/// Rounds searched for the ticket density.
const MAX_ROUNDS: usize = 60;

/// `[double_descent]` of an experiment TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoubleDescentConfig {
    /// Hidden widths (every hidden layer of the base MLP gets the width).
    #[serde(default = "default_widths")]
    pub widths: Vec<usize>,
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Train the linearization at each width.
    #[serde(default = "yes")]
    pub linearize: bool,
    /// Kernel regression with the empirical NTK at each width.
    #[serde(default = "yes")]
    pub kernel_regression: bool,
    /// Ridge of the kernel regression, relative to the mean diagonal of Θ.
    #[serde(default = "default_ridge")]
    pub ridge: f64,
    /// Density of the IMP ticket at each width (none: no tickets).
    #[serde(default = "default_ticket_density", skip_serializing_if = "Option::is_none")]
    pub ticket_density: Option<f64>,
    /// IMP's pruning per round.
    #[serde(default)]
    pub prune: PruneSpec,
}

fn default_widths() -> Vec<usize> {
    vec![4, 8, 16, 32, 64, 128, 256]
}
fn default_seeds() -> Vec<u64> {
    vec![0, 1, 2]
}
fn yes() -> bool {
    true
}
fn default_ridge() -> f64 {
    1e-6
}
fn default_ticket_density() -> Option<f64> {
    Some(0.25)
}

impl Default for DoubleDescentConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty [double_descent] takes every default")
    }
}

impl DoubleDescentConfig {
    /// Checks everything before any training; returns the sorted widths'
    /// MLPs with the IMP round of the ticket at each (0 without tickets).
    pub fn plan(&self, exp: &Experiment) -> Result<Vec<(Mlp, usize)>> {
        if self.widths.is_empty() {
            return Err(Error::config("double_descent.widths", "at least one width", "[]"));
        }
        let mut w = self.widths.clone();
        w.sort_unstable();
        if w[0] == 0 {
            return Err(Error::config("double_descent.widths", "widths ≥ 1", 0));
        }
        if let Some(p) = w.windows(2).find(|p| p[0] == p[1]) {
            return Err(Error::config("double_descent.widths", "distinct widths", p[0]));
        }
        crate::runner::check_seeds(&self.seeds, "double_descent.seeds")?;
        if !(self.ridge > 0.0 && self.ridge.is_finite()) {
            return Err(Error::config("double_descent.ridge", "a finite ridge > 0", self.ridge));
        }
        let Network::Mlp(base) = &exp.net else {
            return Err(Error::config(
                "model",
                "a fully connected network (the structured NTK and the linearization are MLP paths)",
                exp.net.describe(),
            ));
        };
        if base.hidden.is_empty() {
            return Err(Error::config(
                "model.hidden",
                "at least one hidden layer to widen",
                "[]",
            ));
        }
        if self.kernel_regression && exp.split.train.len() > MAX_KERNEL_EXAMPLES {
            return Err(Error::config(
                "data.train_size",
                format!("at most {MAX_KERNEL_EXAMPLES} training examples for kernel regression (Θ(X, X) is n x n), or kernel_regression = false"),
                exp.split.train.len(),
            ));
        }
        if let Some(d) = self.ticket_density {
            crate::runner::check_densities(&[d], "double_descent.ticket_density")?;
        }
        let mut out = Vec::new();
        for &width in &w {
            let mlp = base.with_hidden(vec![width; base.hidden.len()])?;
            let round = match self.ticket_density {
                None => 0,
                Some(d) => {
                    let net = Network::Mlp(mlp.clone());
                    let layers = net.prunable();
                    self.prune.validate(&layers)?;
                    let counts = net.prunable_counts();
                    self.prune.resolved(&layers).rounds_for_densities(
                        &counts,
                        &[d],
                        MAX_ROUNDS,
                        "double_descent.ticket_density",
                    )?[0]
                        .0
                }
            };
            out.push((mlp, round));
        }
        Ok(out)
    }
}

/// One unit: a seed and a width.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DdUnit {
    pub seed: u64,
    pub width: usize,
}

/// Train and test error of one model.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Errors {
    pub train: f64,
    pub test: f64,
}

/// What one (seed, width) measures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DdRecord {
    pub seed: u64,
    pub width: usize,
    pub params: usize,
    pub network: Errors,
    pub linearized: Option<Errors>,
    pub kernel: Option<Errors>,
    /// The ridge the kernel regression used (absolute).
    pub kernel_ridge: Option<f64>,
    pub ticket: Option<Errors>,
    pub ticket_density: Option<f64>,
}

/// The whole experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DdSummary {
    pub name: String,
    pub model: String,
    pub data: String,
    pub train_examples: usize,
    /// Test examples (the errors' grid is 1 / this; 0 in summaries written
    /// before it was recorded).
    #[serde(default)]
    pub test_examples: usize,
    pub label_noise: f64,
    pub steps: usize,
    pub seeds: Vec<u64>,
    pub records: Vec<DdRecord>,
}

fn errors(model: &mut dyn Trainable, p: &ParamSet, exp: &Experiment) -> Result<Errors> {
    let tr = train::evaluate(model, p, &exp.split.train, exp.spec.eval_chunk)?;
    let te = train::evaluate(model, p, &exp.split.test, exp.spec.eval_chunk)?;
    Ok(Errors {
        train: 1.0 - tr.accuracy,
        test: 1.0 - te.accuracy,
    })
}

fn run_unit(base: &Experiment, cfg: &DoubleDescentConfig, u: &DdUnit, env: &UnitEnv) -> Result<DdRecord> {
    let plan = cfg.plan(base)?;
    let (mlp, round) = plan
        .iter()
        .find(|(m, _)| m.hidden.first() == Some(&u.width))
        .cloned()
        .ok_or_else(|| Error::invalid("double-descent unit", "a configured width", u.width))?;
    let exp = base.with_mlp(mlp.clone())?.with_seed(u.seed);
    let theta0 = exp.net.init(u.seed);
    // The data order of the seed, as IMP's runs (and so the ticket) use.
    let spec = crate::runner::unit_spec(&exp, u.seed);
    let opts = TrainOptions {
        progress: env.progress,
        ..Default::default()
    };
    let loss = exp.config.train.loss;
    let mut net = Supervised::new(exp.net.clone(), loss, env.device);
    let out = train::train(&mut net, &theta0, &exp.split, &spec, &opts)?;
    let network = errors(&mut net, &out.params, &exp)?;
    let linearized = if cfg.linearize {
        let mut lin = Linearized::new(mlp.clone(), theta0.clone(), loss)?;
        let o = train::train(&mut lin, &theta0, &exp.split, &spec, &opts)?;
        Some(errors(&mut lin, &o.params, &exp)?)
    } else {
        None
    };
    let (kernel, kernel_ridge) = if cfg.kernel_regression {
        let k = |a: &[f32], na: usize, b: &[f32], nb: usize| -> Result<Vec<f32>> {
            Ok(mlp_ntk_for(env.device, &mlp, &theta0, a, na, b, nb, KernelKind::Traced, None, 256)?.data)
        };
        let r = kernel_regression(k, &exp.split.train, &exp.split.test, cfg.ridge)?;
        (
            Some(Errors {
                train: 1.0 - r.train_accuracy,
                test: 1.0 - r.test_accuracy,
            }),
            Some(r.ridge),
        )
    } else {
        (None, None)
    };
    let (ticket, ticket_density) = match cfg.ticket_density {
        None => (None, None),
        Some(_) => {
            let icfg = ImpConfig {
                rounds: round.max(1),
                prune: cfg.prune.clone(),
                seeds: vec![u.seed],
                controls: vec![],
                ..ImpConfig::default()
            };
            let dir = env.dir.child(&format!("imp_seed_{}_w{}", u.seed, u.width))?;
            let s = crate::runner::run_in::<Imp>(&exp, &icfg, &dir, env.device, env.progress, env.resume)?;
            let rd = dir.child(&format!("seed_{}/round_{:02}", u.seed, round.max(1)))?;
            let params = ParamSet::load(&rd.file("final.safetensors"))?;
            let density = s
                .rounds
                .iter()
                .find(|r| r.round == round.max(1))
                .map(|r| r.density)
                .unwrap_or(f64::NAN);
            (Some(errors(&mut net, &params, &exp)?), Some(density))
        }
    };
    if env.progress {
        eprintln!(
            "seed {} width {}: test error network {:.2}%, train {:.2}%",
            u.seed,
            u.width,
            100.0 * network.test,
            100.0 * network.train
        );
    }
    Ok(DdRecord {
        seed: u.seed,
        width: u.width,
        params: exp
            .net
            .param_shapes()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum(),
        network,
        linearized,
        kernel,
        kernel_ridge,
        ticket,
        ticket_density,
    })
}

/// `ltk double-descent` on the experiment layer: one unit per (seed, width).
pub struct DoubleDescent;

impl crate::runner::Experiment for DoubleDescent {
    const NAME: &'static str = "double_descent";
    type Base = Experiment;
    const ABOUT: &'static str = "Model-wise double descent with label noise (Nakkiran et al. 2019): test error vs width for the network, its linearization, NTK kernel regression and IMP tickets (`[data] label_noise`)";
    const GROWS: &'static [&'static str] = &["seeds", "widths"];
    const FLAGS: &'static [crate::runner::flags::Flag] = &[
        crate::runner::flags::Flag::new("widths", "Hidden widths."),
        crate::runner::flags::Flag::new("seeds", "Replicates (init and data-order seeds)."),
    ];
    type Config = DoubleDescentConfig;
    type Unit = DdUnit;
    type Record = DdRecord;
    type Summary = DdSummary;

    fn banner(base: &Experiment, cfg: &DoubleDescentConfig) -> String {
        format!(
            "{}: double descent of {} on {} ({} train with {:.0}% noisy labels / {} test), {} steps, widths {:?}, seeds {:?}",
            base.config.name,
            base.net.describe(),
            base.split.train.name,
            base.split.train.len(),
            100.0 * base.config.data.label_noise.unwrap_or(0.0),
            base.split.test.len(),
            base.spec.steps,
            cfg.widths,
            cfg.seeds
        )
    }
    fn units(base: &Experiment, cfg: &DoubleDescentConfig) -> Result<Vec<DdUnit>> {
        let plan = cfg.plan(base)?;
        Ok(cfg
            .seeds
            .iter()
            .flat_map(|&seed| {
                plan.iter().map(move |(m, _)| DdUnit {
                    seed,
                    width: m.hidden[0],
                })
            })
            .collect())
    }
    fn unit_key(u: &DdUnit) -> String {
        format!("seed{}_w{}", u.seed, u.width)
    }
    fn run_unit(base: &Experiment, cfg: &DoubleDescentConfig, u: &DdUnit, env: &UnitEnv) -> Result<DdRecord> {
        run_unit(base, cfg, u, env)
    }
    fn summarize(base: &Experiment, cfg: &DoubleDescentConfig, records: Vec<DdRecord>) -> Result<DdSummary> {
        Ok(DdSummary {
            name: base.config.name.clone(),
            model: base.net.describe(),
            data: base.split.train.name.clone(),
            train_examples: base.split.train.len(),
            test_examples: base.split.test.len(),
            label_noise: base.config.data.label_noise.unwrap_or(0.0),
            steps: base.spec.steps,
            seeds: cfg.seeds.clone(),
            records,
        })
    }
    fn write_report(dir: &RunDir, s: &DdSummary) -> Result<()> {
        write_summary(dir, s)
    }
    fn claims(s: &DdSummary) -> Vec<Claim> {
        claims(s)
    }
    fn console(s: &DdSummary) -> String {
        table(s)
    }
}

/// The models a summary holds, with how to read each one's errors.
fn models(s: &DdSummary) -> Vec<(&'static str, fn(&DdRecord) -> Option<Errors>)> {
    let all: [(&'static str, fn(&DdRecord) -> Option<Errors>); 4] = [
        ("network", |r| Some(r.network)),
        ("linearized", |r| r.linearized),
        ("kernel", |r| r.kernel),
        ("ticket", |r| r.ticket),
    ];
    all.into_iter()
        .filter(|(_, get)| s.records.iter().any(|r| get(r).is_some()))
        .collect()
}

fn widths(s: &DdSummary) -> Vec<usize> {
    let mut w: Vec<usize> = s.records.iter().map(|r| r.width).collect();
    w.sort_unstable();
    w.dedup();
    w
}

fn at(s: &DdSummary, width: usize, get: fn(&DdRecord) -> Option<Errors>, test: bool) -> Vec<f64> {
    s.records
        .iter()
        .filter(|r| r.width == width)
        .filter_map(|r| get(r).map(|e| if test { e.test } else { e.train }))
        .collect()
}

/// The smallest width whose network fits the noisy training set (mean
/// train error ≤ [`FIT_ERROR`]).
pub fn interpolation_threshold(s: &DdSummary) -> Option<usize> {
    widths(s)
        .into_iter()
        .find(|&w| stats::mean(&at(s, w, |r| Some(r.network), false)) <= FIT_ERROR)
}

/// A model's test-error peak: the interior width whose mean test error is
/// above both neighbours' (a local maximum), the highest such; None
/// without one (a curve that only falls or only rises) or with fewer than
/// 3 widths. (Not the global maximum: small models that underfit can have
/// a higher error than the double-descent peak.)
pub fn peak(s: &DdSummary, get: fn(&DdRecord) -> Option<Errors>) -> Option<usize> {
    let curve: Vec<(usize, f64)> = widths(s)
        .into_iter()
        .filter_map(|w| {
            let v = at(s, w, get, true);
            (!v.is_empty()).then(|| (w, stats::mean(&v)))
        })
        .collect();
    curve
        .windows(3)
        .filter(|t| t[1].1 > t[0].1 && t[1].1 > t[2].1)
        .map(|t| t[1])
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|p| p.0)
}

/// Test error (and the network's train error) per width, mean ± sd over seeds.
pub fn table(s: &DdSummary) -> String {
    let ms_ = models(s);
    let mut out = format!(
        "{} widened, on {} ({} training examples, {:.0}% of their labels noisy), {} steps, seeds {:?}: error (%) per width, mean ± sd\n\n| width | parameters | network train |",
        s.model,
        s.data,
        s.train_examples,
        100.0 * s.label_noise,
        s.steps,
        s.seeds
    );
    for (name, _) in &ms_ {
        out.push_str(&format!(" {name} test |"));
    }
    out.push_str("\n|---:|---:|---:|");
    out.push_str(&"---:|".repeat(ms_.len()));
    out.push('\n');
    for w in widths(s) {
        let params = s.records.iter().find(|r| r.width == w).map(|r| r.params).unwrap_or(0);
        out.push_str(&format!(
            "| {w} | {params} | {} |",
            stats::mean_sd_text(&at(s, w, |r| Some(r.network), false), 100.0, 2)
        ));
        for (_, get) in &ms_ {
            out.push_str(&format!(" {} |", stats::mean_sd_text(&at(s, w, *get, true), 100.0, 2)));
        }
        out.push('\n');
    }
    let pilot = pilot_seed(s);
    out.push_str(&format!(
        "\nInterpolation threshold (smallest width with network train error ≤ {:.0}%, mean over seeds): {}. Declared peak locations (each model's threshold on the pilot seed {}, which the tests leave out): {}. Test-error local maxima of the mean (descriptive, not tested): {}.\n",
        100.0 * FIT_ERROR,
        interpolation_threshold(s).map(|w| format!("width {w}")).unwrap_or_else(|| "none within the widths".into()),
        pilot.map(|p| p.to_string()).unwrap_or_else(|| "–".into()),
        ms_.iter()
            .map(|(n, g)| format!(
                "{n} at width {}",
                pilot
                    .and_then(|p| seed_threshold(s, *g, p))
                    .map(|w| w.to_string())
                    .unwrap_or_else(|| "none".into())
            ))
            .collect::<Vec<_>>()
            .join(", "),
        ms_.iter()
            .map(|(n, g)| format!("{n} at width {}", peak(s, *g).map(|w| w.to_string()).unwrap_or_else(|| "none".into())))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out
}

/// Writes summary.json, errors.csv, report.md and the test-error figure.
pub fn write_summary(dir: &RunDir, s: &DdSummary) -> Result<()> {
    let opt = |e: Option<Errors>, test: bool| {
        e.map(|e| if test { e.test } else { e.train }.to_string())
            .unwrap_or_default()
    };
    let rows: Vec<Vec<String>> = s
        .records
        .iter()
        .map(|r| {
            vec![
                r.seed.to_string(),
                r.width.to_string(),
                r.params.to_string(),
                r.network.train.to_string(),
                r.network.test.to_string(),
                opt(r.linearized, false),
                opt(r.linearized, true),
                opt(r.kernel, false),
                opt(r.kernel, true),
                opt(r.ticket, false),
                opt(r.ticket, true),
                r.ticket_density.map(|d| d.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    write_csv(
        &dir.file("errors.csv"),
        &[
            "seed",
            "width",
            "params",
            "network_train",
            "network_test",
            "linearized_train",
            "linearized_test",
            "kernel_train",
            "kernel_test",
            "ticket_train",
            "ticket_test",
            "ticket_density",
        ],
        &rows,
    )?;
    let mut fig = LineChart::new(
        &format!(
            "{}: test error vs width, {:.0}% label noise",
            s.name,
            100.0 * s.label_noise
        ),
        "hidden width",
        "error (%)",
    )
    .log_x();
    for (i, (name, get)) in models(s).into_iter().enumerate() {
        let band: Vec<(f64, f64, f64, f64)> = widths(s)
            .into_iter()
            .filter_map(|w| {
                let v = at(s, w, get, true);
                if v.is_empty() {
                    return None;
                }
                let (lo, hi) = stats::sd_band(&v);
                Some((w as f64, 100.0 * stats::mean(&v), 100.0 * lo, 100.0 * hi))
            })
            .collect();
        fig.push(
            Series::line(format!("{name} test"), band.iter().map(|p| (p.0, p.1)))
                .with_marker(Marker::LinePoints)
                .with_band(Spread::Sd("seeds"), band.iter().map(|p| (p.0, p.2, p.3)))
                .with_color(i),
        );
    }
    let train: Vec<(f64, f64)> = widths(s)
        .into_iter()
        .map(|w| (w as f64, 100.0 * stats::mean(&at(s, w, |r| Some(r.network), false))))
        .collect();
    fig.push(Series::line("network train", train).dashed().with_color(0));
    fig.save(&dir.figure("double_descent"))?;
    write_text(
        &dir.report_md(),
        &format!(
            "# Double descent: {}\n\nEvery model at a width starts from the same θ0; the linearization and the kernel are taken at θ0; the ticket is IMP's (rewinding to θ0). Errors are 0-1 errors; the training labels are the noisy ones, the test labels clean. Per-unit wall times are in units/*.json.\n\n{}\n![double descent](figures/double_descent.png)\n\n{}",
            s.name,
            table(s),
            verdict::claims_markdown(&claims(s))
        ),
    )
}

/// The smallest peak that counts: a peak lower than 1 point of test error
/// on a side counts as none (this project's; Nakkiran et al.'s peaks with
/// label noise are several points high).
pub const PEAK_MARGIN: f64 = 0.01;
/// The pilot seed: the first configured seed locates each model's
/// interpolation threshold; the claims are tested on the other seeds only,
/// so the location is not chosen from the measurements it is tested on.
pub fn pilot_seed(s: &DdSummary) -> Option<u64> {
    s.seeds.first().copied()
}

/// A model's interpolation threshold on one seed: the smallest width whose
/// train error on the noisy training set is at most [`FIT_ERROR`].
pub fn seed_threshold(s: &DdSummary, get: fn(&DdRecord) -> Option<Errors>, seed: u64) -> Option<usize> {
    widths(s).into_iter().find(|&w| {
        s.records
            .iter()
            .find(|r| r.seed == seed && r.width == w)
            .and_then(get)
            .is_some_and(|e| e.train <= FIT_ERROR)
    })
}

/// The seeds the claims are tested on: every configured seed but the pilot.
fn test_seeds(s: &DdSummary) -> Vec<u64> {
    s.seeds.iter().skip(1).copied().collect()
}

/// Per test seed, `get`'s test error at `a` minus at `b` (NaN when a
/// record is missing: the protocol leaves that seed out and says so).
fn diff(s: &DdSummary, get: fn(&DdRecord) -> Option<Errors>, a: usize, b: usize) -> Vec<f64> {
    test_seeds(s)
        .into_iter()
        .map(|seed| {
            let e = |w: usize| {
                s.records
                    .iter()
                    .find(|r| r.seed == seed && r.width == w)
                    .and_then(get)
                    .map(|e| e.test)
            };
            match (e(a), e(b)) {
                (Some(x), Some(y)) => x - y,
                _ => f64::NAN,
            }
        })
        .collect()
}

/// Mean train error of `get` at width `w` over the test seeds.
fn test_train_error(s: &DdSummary, get: fn(&DdRecord) -> Option<Errors>, w: usize) -> Option<f64> {
    let t = test_seeds(s);
    let v: Vec<f64> = s
        .records
        .iter()
        .filter(|r| r.width == w && t.contains(&r.seed))
        .filter_map(|r| get(r).map(|e| e.train))
        .collect();
    (!v.is_empty()).then(|| stats::mean(&v))
}

/// The grid step of the errors (1 / test examples; 0 when unknown).
fn resolution(s: &DdSummary) -> f64 {
    if s.test_examples > 0 {
        1.0 / s.test_examples as f64
    } else {
        0.0
    }
}

/// Where a model's peak is declared, from the pilot seed: its interpolation
/// threshold with the neighbouring widths, or why there is none.
fn declared_location(
    s: &DdSummary,
    name: &str,
    get: fn(&DdRecord) -> Option<Errors>,
) -> std::result::Result<(usize, usize, usize), String> {
    let ws = widths(s);
    let Some(pilot) = pilot_seed(s) else {
        return Err("no seeds".into());
    };
    if s.seeds.len() < 3 {
        return Err(format!(
            "{} seed(s): one (the pilot) locates the interpolation threshold and at least 2 others test it; run at least 3 seeds",
            s.seeds.len()
        ));
    }
    let Some(t) = seed_threshold(s, get, pilot) else {
        return Err(format!(
            "the {name} model does not fit the noisy training set (train error ≤ {:.0}%) at any width on the pilot seed {pilot}: it never interpolates here, so there is no threshold to peak at; wider widths or longer training would reach one",
            100.0 * FIT_ERROR
        ));
    };
    let i = ws.iter().position(|&w| w == t).unwrap_or(0);
    if i == 0 {
        return Err(format!(
            "the {name} model fits the training set already at the smallest width {t} on the pilot seed {pilot}: no width below its threshold; add narrower widths"
        ));
    }
    if i + 1 == ws.len() {
        return Err(format!(
            "the {name} model fits the training set only at the largest width {t} on the pilot seed {pilot}: no width above its threshold; add wider widths"
        ));
    }
    Ok((ws[i - 1], t, ws[i + 1]))
}

/// The declared peak claim of one model: at its interpolation threshold
/// (on the pilot seed) its test error exceeds both neighbouring widths' (per
/// test seed, paired); the design could see a peak when the neighbours
/// bracket the threshold on the test seeds too (mean train error above
/// [`FIT_ERROR`] at the left neighbour, at most it at the right one).
fn peak_item(s: &DdSummary, name: &str, get: fn(&DdRecord) -> Option<Errors>, declared: Declared) -> Item {
    match declared_location(s, name, get) {
        Err(why) => Item::new(declared, Evidence::Untestable { why }, String::new()),
        Ok((l, t, r)) => {
            let (tl, tr) = (test_train_error(s, get, l), test_train_error(s, get, r));
            let could_see = tl.is_some_and(|e| e > FIT_ERROR) && tr.is_some_and(|e| e <= FIT_ERROR);
            let mean_test = |w: usize| {
                let v = at_seeds(s, w, get, &test_seeds(s));
                if v.is_empty() {
                    "–".to_string()
                } else {
                    format!("{:.2}", 100.0 * stats::mean(&v))
                }
            };
            let context = format!(
                "declared peak: the {name} model's interpolation threshold on the pilot seed {}, width {t}, against widths {l} and {r}; test seeds {:?}: mean test error (%) {l}: {}, {t}: {}, {r}: {}; mean train error (%) {l}: {}, {r}: {}{}",
                pilot_seed(s).unwrap_or(0),
                test_seeds(s),
                mean_test(l),
                mean_test(t),
                mean_test(r),
                tl.map(|e| format!("{:.2}", 100.0 * e)).unwrap_or_else(|| "–".into()),
                tr.map(|e| format!("{:.2}", 100.0 * e)).unwrap_or_else(|| "–".into()),
                if could_see {
                    ""
                } else {
                    "; the neighbours do not bracket the threshold on the test seeds, so an absent peak is not evidence against it"
                }
            );
            Item::new(
                declared,
                Evidence::Peak {
                    left: diff(s, get, t, l),
                    right: diff(s, get, t, r),
                    resolution: resolution(s),
                    could_see,
                },
                context,
            )
        }
    }
}

fn at_seeds(s: &DdSummary, width: usize, get: fn(&DdRecord) -> Option<Errors>, seeds: &[u64]) -> Vec<f64> {
    s.records
        .iter()
        .filter(|r| r.width == width && seeds.contains(&r.seed))
        .filter_map(|r| get(r).map(|e| e.test))
        .collect()
}

/// The declared claims, decided as one Holm family ([`decide_family`]). The
/// first configured seed is the pilot: each model's interpolation threshold
/// (the smallest width with train error ≤ [`FIT_ERROR`]) is measured on it,
/// and the claims are tested on the other seeds, paired per seed.
/// 1. The network's test error peaks at its interpolation threshold
///    (Nakkiran et al. 2019, Sec. 5, Fig. 4): a peak over both neighbouring
///    widths ([`Hypothesis::Peak`], margin [`PEAK_MARGIN`]).
/// 2. The same for the linearization and NTK kernel regression, where run
///    (this project's hypotheses after Belkin et al. 2019's random-feature
///    double descent). A model that never interpolates, or whose threshold
///    has no width on a side, is not testable.
/// 3. IMP tickets flatten the peak (this project's hypothesis): at the
///    network's threshold, the ticket's test-error excess over the largest
///    width is smaller than the network's (a paired difference per test
///    seed, above 0).
pub fn claims(s: &DdSummary) -> Vec<Claim> {
    if s.records.is_empty() {
        return vec![];
    }
    let ws = widths(s);
    let mut items = vec![peak_item(
        s,
        "network",
        |r| Some(r.network),
        Declared::paper(
            "With label noise, the network's test error peaks at its interpolation threshold (the smallest width that fits the noisy training set) and falls again for wider networks: model-wise double descent",
            "Nakkiran et al. 2019, Sec. 5, Fig. 4 (model-wise double descent, sharper with label noise; the peak at the interpolation threshold)",
            Hypothesis::Peak { margin: PEAK_MARGIN },
        )
        .shown_in(" pp", 100.0),
    )];
    let why = |name: &str| {
        format!(
            "Belkin et al. 2019 (PNAS) show double descent peaking at the interpolation threshold for random-feature models (random Fourier features) fitted by minimum-norm least squares; the {name} at θ0 is a random-feature model with the network's gradient features{}",
            if name == "linearization" {
                ", trained here by the network's optimizer, not to the minimum-norm solution"
            } else {
                " (kernel regression with the finite-width NTK at θ0 and a small ridge)"
            }
        )
    };
    for (name, get) in models(s)
        .into_iter()
        .filter(|(n, _)| *n == "linearized" || *n == "kernel")
    {
        let noun = if name == "kernel" {
            "kernel regression"
        } else {
            "linearization"
        };
        items.push(peak_item(
            s,
            name,
            get,
            Declared::project(
                format!("The {noun}'s test error peaks at its own interpolation threshold too (double descent in the {noun})"),
                why(noun),
                Hypothesis::Peak { margin: PEAK_MARGIN },
            )
            .shown_in(" pp", 100.0),
        ));
    }
    if s.records.iter().any(|r| r.ticket.is_some()) {
        let last = ws[ws.len() - 1];
        let declared = Declared::project(
            "IMP tickets flatten the test-error peak: at the network's interpolation threshold, the ticket's test error exceeds its error at the largest width by less than the network's does (tested per seed: network excess − ticket excess > 0)",
            "pruning as a regularizer of the interpolating model: a ticket has fewer weights than the network at the same width, so it need not interpolate the noisy labels where the network just does",
            Hypothesis::Difference { side: Side::Greater },
        )
        .shown_in(" pp", 100.0);
        let item = match declared_location(s, "network", |r| Some(r.network)) {
            Err(why) => Item::new(
                declared,
                Evidence::Untestable {
                    why: format!("no declared peak width to compare the tickets at: {why}"),
                },
                String::new(),
            ),
            Ok((_, t, _)) => {
                let net = diff(s, |r| Some(r.network), t, last);
                let ticket = diff(s, |r| r.ticket, t, last);
                let list = |v: &[f64]| {
                    v.iter()
                        .map(|x| format!("{:.2}", 100.0 * x))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                Item::new(
                    declared,
                    Evidence::Paired {
                        values: net.iter().zip(&ticket).map(|(n, k)| n - k).collect(),
                        resolution: resolution(s),
                    },
                    format!(
                        "the network's threshold on the pilot seed: width {t}; test error there − at width {last} per test seed {:?}: network {} pp, ticket {} pp",
                        test_seeds(s),
                        list(&net),
                        list(&ticket)
                    ),
                )
            }
        };
        items.push(item);
    }
    decide_family(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::verdict::Verdict;

    /// Records for `seeds` at widths 4..64 whose network fits from width 16
    /// on, with the network's test error at width w given by `net(seed, w)`;
    /// the linearization never fits.
    fn summary(seeds: Vec<u64>, net: impl Fn(u64, usize) -> f64) -> DdSummary {
        let mut records = vec![];
        for &seed in &seeds {
            for w in [4usize, 8, 16, 32, 64] {
                records.push(DdRecord {
                    seed,
                    width: w,
                    params: w * 10,
                    network: Errors {
                        train: if w >= 16 { 0.0 } else { 0.2 },
                        test: net(seed, w),
                    },
                    linearized: Some(Errors { train: 0.3, test: 0.4 }),
                    kernel: None,
                    kernel_ridge: None,
                    ticket: Some(Errors {
                        train: 0.0,
                        test: 0.2 + 0.001 * seed as f64,
                    }),
                    ticket_density: Some(0.25),
                });
            }
        }
        DdSummary {
            name: "t".into(),
            model: "mlp".into(),
            data: "digits".into(),
            train_examples: 1000,
            test_examples: 1000,
            label_noise: 0.2,
            steps: 100,
            seeds,
            records,
        }
    }

    /// A peak of 8 points at width 16, with a little per-seed noise.
    fn peaked(seed: u64, w: usize) -> f64 {
        let j = 0.002 * ((seed * 7 + w as u64) % 5) as f64;
        j + match w {
            16 => 0.30,
            8 => 0.22,
            32 => 0.22,
            _ => 0.20,
        }
    }

    #[test]
    fn a_peak_at_the_pilot_threshold_is_consistent_and_a_flat_curve_contradicts() {
        let s = summary((0..6).collect(), peaked);
        let c = claims(&s);
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(c[0].verdict, Verdict::Consistent, "{:?}", c[0]);
        assert!(
            c[0].source.contains("the paper's claim: Nakkiran et al. 2019, Sec. 5"),
            "{}",
            c[0].source
        );
        // The linearization never interpolates: not testable, never "contradicts".
        assert_eq!(c[1].verdict, Verdict::Inconclusive);
        assert!(c[1].reason.contains("never interpolates"), "{}", c[1].reason);
        assert!(c[1].source.contains("this project's hypothesis"), "{}", c[1].source);
        // The tickets' error is flat: its excess at the threshold is below the network's.
        assert_eq!(c[2].verdict, Verdict::Consistent, "{:?}", c[2]);
        // Falling through the threshold: the widths bracket it and a peak
        // of a point is excluded on the left.
        let s = summary((0..6).collect(), |seed, w| {
            0.3 - 0.02 * (w as f64).log2() + 0.001 * seed as f64
        });
        assert_eq!(claims(&s)[0].verdict, Verdict::Contradicts);
    }

    #[test]
    fn too_few_seeds_or_an_unbracketed_threshold_is_inconclusive() {
        // Two seeds: the pilot and one test seed give no interval.
        let c = claims(&summary(vec![0, 1], peaked));
        assert!(c.iter().all(|c| c.verdict == Verdict::Inconclusive), "{c:?}");
        assert!(c[0].reason.contains("at least 3 seeds"), "{}", c[0].reason);
        // The test seeds fit only from width 64 on: the neighbours of the
        // pilot's threshold do not bracket theirs; a falling curve is then
        // not evidence against a peak.
        let mut s = summary((0..6).collect(), |_, w| 0.3 - 0.02 * (w as f64).log2());
        for r in s.records.iter_mut().filter(|r| r.seed > 0 && r.width < 64) {
            r.network.train = 0.2;
        }
        let c = claims(&s);
        assert_eq!(c[0].verdict, Verdict::Inconclusive, "{:?}", c[0]);
        assert!(c[0].measured.contains("do not bracket"), "{}", c[0].measured);
    }
}
