//! `ltk grokking`: grokking (Power et al. 2022, "Grokking: generalization
//! beyond overfitting on small algorithmic datasets", Sec. 3, Fig. 1) in a
//! network and in its linearization.
//!
//! The data is modular addition ([`crate::data::modular`], `[data] source =
//! "modular"`): one-hot operands, so the first layer of the MLP holds a
//! learned embedding of each operand (Gromov 2023's MLP setting); the
//! optimizer is the base config's (AdamW with weight decay 1, β2 0.98,
//! batch 512, rate 1e-3 in `experiments/grokking.toml`, Power et al.'s).
//!
//! Per seed, two units: the network, and its linearization at θ0
//! ([`crate::ntk::linearize::Linearized`], Lee et al. 2019 Eq. 5: trained
//! only in the tangent space at θ0) from the same θ0 with the same optimizer
//! and data order. Parameters are kept at log-spaced steps; at each one:
//! train and test accuracy and loss, the weight norm ||θ||, and for the
//! network the relative change of its empirical NTK (traced, on the first
//! `ntk_examples` training examples) from θ0, `||Θ_t − Θ_0||_F / ||Θ_0||_F`
//! (the linearization's kernel never changes).
//!
//! The declared claims ([`claims`], one Holm family):
//! 1. Grokking: the network generalizes at least [`DELAY`] times later than
//!    it fits the training set. Power et al. 2022 (Sec. 3, Fig. 1) report
//!    generalization far after overfitting; the 10x threshold and the
//!    accuracy levels are this project's, and Power et al. show the steps to
//!    generalize shrink as the training fraction grows, so the threshold is
//!    this project's hypothesis at the configured fraction. Per seed the
//!    delay is taken between the log-midpoints of the two events'
//!    evaluation-grid brackets, with the grid's resolution in the interval.
//! 2. The linearization fits without generalizing (this project's
//!    hypothesis after Kumar et al. 2024, "Grokking as the transition from
//!    lazy to rich training dynamics", ICLR: grokking is the network leaving
//!    the kernel (lazy) regime, which the linearized model cannot leave).

use serde::{Deserialize, Serialize};

use crate::config::Experiment;
use crate::models::{Mlp, Network};
use crate::ntk::device::mlp_ntk_for;
use crate::ntk::empirical::KernelKind;
use crate::ntk::linearize::Linearized;
use crate::params::ParamSet;
use crate::paths::{write_csv, write_text, RunDir};
use crate::report::plot::{LineChart, Marker, Series, Spread};
use crate::report::verdict::protocol::{decide_family, Declared, Evidence, Hypothesis, Item, Side};
use crate::report::verdict::{self, Claim};
use crate::runner::UnitEnv;
use crate::stats;
use crate::train::{self, Supervised, TrainOptions, Trainable};
use crate::{Error, Result};

/// Train accuracy that counts as fitting the training set (this project's level).
pub const FIT: f64 = 0.99;
/// Test accuracy that counts as generalizing (this project's level).
pub const GENERALIZE: f64 = 0.95;
/// How much later than fitting generalization must come to count as
/// grokking: an order of magnitude. This project's threshold: Power et al.
/// 2022 (Fig. 1) show generalization far after overfitting but state no
/// factor, and the delay shrinks as the training fraction grows.
pub const DELAY: f64 = 10.0;

/// `[grokking]` of an experiment TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrokkingConfig {
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Log-spaced evaluation points over the run (plus step 0).
    #[serde(default = "default_evals")]
    pub evals: usize,
    /// Training examples of the NTK-change measurement.
    #[serde(default = "default_ntk_examples")]
    pub ntk_examples: usize,
    /// Also train the linearization.
    #[serde(default = "default_true")]
    pub linearize: bool,
}

fn default_seeds() -> Vec<u64> {
    vec![0, 1, 2]
}
fn default_evals() -> usize {
    40
}
fn default_ntk_examples() -> usize {
    128
}
fn default_true() -> bool {
    true
}

impl Default for GrokkingConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty [grokking] takes every default")
    }
}

impl GrokkingConfig {
    /// Checks everything before any training; returns the MLP.
    pub fn validate(&self, exp: &Experiment) -> Result<Mlp> {
        crate::runner::check_seeds(&self.seeds, "grokking.seeds")?;
        if self.evals < 2 {
            return Err(Error::config(
                "grokking.evals",
                "at least 2 evaluation points",
                self.evals,
            ));
        }
        if self.ntk_examples == 0 {
            return Err(Error::config("grokking.ntk_examples", "at least 1 example", 0));
        }
        if !exp.split.train.name.starts_with("mod-") {
            return Err(Error::config(
                "data.source",
                "\"modular\" (grokking is measured on modular addition)",
                &exp.split.train.name,
            ));
        }
        let Network::Mlp(mlp) = &exp.net else {
            return Err(Error::config(
                "model",
                "a fully connected network (the linearization and NTK are MLP paths)",
                exp.net.describe(),
            ));
        };
        Ok(mlp.clone())
    }

    /// The evaluation steps: 0 and `evals` log-spaced steps up to the last.
    pub fn steps(&self, total: usize) -> Vec<usize> {
        let mut s: Vec<usize> = (0..self.evals)
            .map(|i| {
                let f = i as f64 / (self.evals - 1) as f64;
                ((total as f64).powf(f)).round() as usize
            })
            .filter(|&s| s >= 1 && s <= total)
            .collect();
        s.push(total);
        s.sort_unstable();
        s.dedup();
        s
    }
}

/// Which model a unit trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    Network,
    Linearized,
}

/// One unit: a seed and a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrokUnit {
    pub seed: u64,
    pub model: Model,
}

/// One evaluation point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrokPoint {
    pub step: usize,
    pub train_accuracy: f64,
    pub train_loss: f64,
    pub test_accuracy: f64,
    pub test_loss: f64,
    pub weight_norm: f64,
    /// `||Θ_t − Θ_0|| / ||Θ_0||` (network only).
    pub ntk_change: Option<f64>,
}

/// One training curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrokCurve {
    pub seed: u64,
    pub model: Model,
    pub points: Vec<GrokPoint>,
}

impl GrokCurve {
    /// First evaluated step with train accuracy ≥ [`FIT`].
    pub fn fit_step(&self) -> Option<usize> {
        self.points.iter().find(|p| p.train_accuracy >= FIT).map(|p| p.step)
    }
    /// First evaluated step with test accuracy ≥ [`GENERALIZE`].
    pub fn generalize_step(&self) -> Option<usize> {
        self.points
            .iter()
            .find(|p| p.test_accuracy >= GENERALIZE)
            .map(|p| p.step)
    }
    fn last(&self) -> Option<&GrokPoint> {
        self.points.last()
    }
    /// The evaluated step before the first one meeting `hit` (the event
    /// happened in `(before, first]`); 0 when the first point meets it.
    fn before(&self, hit: impl Fn(&GrokPoint) -> bool) -> Option<usize> {
        let i = self.points.iter().position(hit)?;
        Some(if i == 0 { 0 } else { self.points[i - 1].step })
    }
    /// Bounds of log10(generalize step / fit step) allowed by the evaluation
    /// grid: `(log10(before_gen / fit), log10(gen / before_fit))`, steps floored at 1.
    pub fn delay_bounds(&self) -> Option<(f64, f64)> {
        let (fit, gen) = (self.fit_step()?, self.generalize_step()?);
        let bf = self.before(|p| p.train_accuracy >= FIT)?;
        let bg = self.before(|p| p.test_accuracy >= GENERALIZE)?;
        let r = |a: usize, b: usize| (a.max(1) as f64 / b.max(1) as f64).log10();
        Some((r(bg, fit), r(gen, bf)))
    }
}

/// The whole experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrokSummary {
    pub name: String,
    pub model: String,
    pub data: String,
    pub train_examples: usize,
    pub test_examples: usize,
    pub steps: usize,
    pub seeds: Vec<u64>,
    pub curves: Vec<GrokCurve>,
}

fn norm(p: &ParamSet) -> f64 {
    p.iter()
        .flat_map(|(_, a)| a.data.iter())
        .map(|&v| (v as f64) * (v as f64))
        .sum::<f64>()
        .sqrt()
}

fn run_unit(exp: &Experiment, cfg: &GrokkingConfig, u: &GrokUnit, env: &UnitEnv) -> Result<GrokCurve> {
    let mlp = cfg.validate(exp)?;
    let steps = cfg.steps(exp.spec.steps);
    let theta0 = exp.net.init(u.seed);
    let spec = train::TrainSpec {
        data_seed: u.seed,
        checkpoint_steps: steps.clone(),
        eval_every: 0,
        ..exp.spec.clone()
    };
    let opts = TrainOptions {
        progress: env.progress,
        ..Default::default()
    };
    let mut model: Box<dyn Trainable> = match u.model {
        Model::Network => Box::new(Supervised::new(exp.net.clone(), exp.config.train.loss, env.device)),
        Model::Linearized => Box::new(Linearized::new(mlp.clone(), theta0.clone(), exp.config.train.loss)?),
    };
    let out = train::train(model.as_mut(), &theta0, &exp.split, &spec, &opts)?;
    let train = &exp.split.train;
    let k = cfg.ntk_examples.min(train.len());
    let xk = &train.x[..k * train.dim()];
    let ntk = |p: &ParamSet| mlp_ntk_for(env.device, &mlp, p, xk, k, xk, k, KernelKind::Traced, None, 64);
    let ntk0 = match u.model {
        Model::Network => Some(ntk(&theta0)?),
        Model::Linearized => None,
    };
    let mut points = Vec::new();
    for s in std::iter::once(0).chain(steps) {
        let p = if s == 0 {
            &theta0
        } else {
            out.checkpoints
                .get(&s)
                .ok_or_else(|| Error::invalid("checkpoint", "parameters at every evaluation step", s))?
        };
        let tr = train::evaluate(model.as_mut(), p, train, exp.spec.eval_chunk)?;
        let te = train::evaluate(model.as_mut(), p, &exp.split.test, exp.spec.eval_chunk)?;
        let ntk_change = match &ntk0 {
            Some(k0) => Some(k0.relative_distance(&ntk(p)?)?),
            None => None,
        };
        points.push(GrokPoint {
            step: s,
            train_accuracy: tr.accuracy,
            train_loss: tr.loss,
            test_accuracy: te.accuracy,
            test_loss: te.loss,
            weight_norm: norm(p),
            ntk_change,
        });
    }
    Ok(GrokCurve {
        seed: u.seed,
        model: u.model,
        points,
    })
}

/// `ltk grokking` on the experiment layer: one unit per (seed, model).
pub struct Grokking;

impl crate::runner::Experiment for Grokking {
    const NAME: &'static str = "grokking";
    type Base = Experiment;
    const ABOUT: &'static str = "Grokking on modular addition (Power et al. 2022): the network and its linearization from the same init, accuracy, weight norm and NTK change over log-spaced steps (`[data] source = \"modular\"`)";
    const GROWS: &'static [&'static str] = &["seeds"];
    const FLAGS: &'static [crate::runner::flags::Flag] = &[
        crate::runner::flags::Flag::new("seeds", "Replicates (init and data-order seeds)."),
        crate::runner::flags::Flag::new("linearize", "Train the linearization beside the network."),
    ];
    type Config = GrokkingConfig;
    type Unit = GrokUnit;
    type Record = GrokCurve;
    type Summary = GrokSummary;

    fn banner(base: &Experiment, cfg: &GrokkingConfig) -> String {
        format!(
            "{}: grokking of {} on {} ({} train / {} test), {} steps, {} evaluations, seeds {:?}{}",
            base.config.name,
            base.net.describe(),
            base.split.train.name,
            base.split.train.len(),
            base.split.test.len(),
            base.spec.steps,
            cfg.evals,
            cfg.seeds,
            if cfg.linearize { ", and its linearization" } else { "" }
        )
    }
    fn units(base: &Experiment, cfg: &GrokkingConfig) -> Result<Vec<GrokUnit>> {
        cfg.validate(base)?;
        let models: &[Model] = if cfg.linearize {
            &[Model::Network, Model::Linearized]
        } else {
            &[Model::Network]
        };
        Ok(cfg
            .seeds
            .iter()
            .flat_map(|&seed| models.iter().map(move |&model| GrokUnit { seed, model }))
            .collect())
    }
    fn unit_key(u: &GrokUnit) -> String {
        format!("seed_{}_{:?}", u.seed, u.model).to_lowercase()
    }
    fn run_unit(base: &Experiment, cfg: &GrokkingConfig, u: &GrokUnit, env: &UnitEnv) -> Result<GrokCurve> {
        run_unit(base, cfg, u, env)
    }
    fn summarize(base: &Experiment, cfg: &GrokkingConfig, curves: Vec<GrokCurve>) -> Result<GrokSummary> {
        Ok(GrokSummary {
            name: base.config.name.clone(),
            model: base.net.describe(),
            data: base.split.train.name.clone(),
            train_examples: base.split.train.len(),
            test_examples: base.split.test.len(),
            steps: base.spec.steps,
            seeds: cfg.seeds.clone(),
            curves,
        })
    }
    fn write_report(dir: &RunDir, s: &GrokSummary) -> Result<()> {
        write_summary(dir, s)
    }
    fn claims(s: &GrokSummary) -> Vec<Claim> {
        claims(s)
    }
    fn console(s: &GrokSummary) -> String {
        table(s)
    }
}

fn curves(s: &GrokSummary, m: Model) -> Vec<&GrokCurve> {
    s.curves.iter().filter(|c| c.model == m).collect()
}

fn pct(v: &[f64]) -> String {
    stats::mean_sd_text(v, 100.0, 2)
}

fn step_text(v: &[Option<usize>]) -> String {
    v.iter()
        .map(|s| s.map(|s| s.to_string()).unwrap_or_else(|| "never".into()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Final accuracies and the steps of fitting and generalizing, per model.
pub fn table(s: &GrokSummary) -> String {
    let mut out = format!(
        "{} ({} train / {} test pairs), {} steps, seeds {:?}: final accuracy (%, mean ± sd) and the first evaluated step with train ≥ {:.0}% (fit) and test ≥ {:.0}% (generalize), per seed\n\n| model | train | test | final weight norm | fit step | generalize step |\n|---|---:|---:|---:|---|---|\n",
        s.data,
        s.train_examples,
        s.test_examples,
        s.steps,
        s.seeds,
        100.0 * FIT,
        100.0 * GENERALIZE
    );
    for m in [Model::Network, Model::Linearized] {
        let c = curves(s, m);
        if c.is_empty() {
            continue;
        }
        let last: Vec<&GrokPoint> = c.iter().filter_map(|c| c.last()).collect();
        let norms: Vec<f64> = last.iter().map(|p| p.weight_norm).collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            format!("{m:?}").to_lowercase(),
            pct(&last.iter().map(|p| p.train_accuracy).collect::<Vec<_>>()),
            pct(&last.iter().map(|p| p.test_accuracy).collect::<Vec<_>>()),
            stats::mean_sd(&norms)
                .map(|(a, b)| format!("{a:.1} ± {b:.1}"))
                .unwrap_or_default(),
            step_text(&c.iter().map(|c| c.fit_step()).collect::<Vec<_>>()),
            step_text(&c.iter().map(|c| c.generalize_step()).collect::<Vec<_>>()),
        ));
    }
    if let Some(ch) = curves(s, Model::Network)
        .iter()
        .filter_map(|c| c.last().and_then(|p| p.ntk_change))
        .collect::<Vec<_>>()
        .into_iter()
        .map(Some)
        .collect::<Option<Vec<f64>>>()
        .filter(|v| !v.is_empty())
    {
        out.push_str(&format!(
            "\nThe network's NTK moved by {} (relative Frobenius distance from Θ0, mean ± sd) by the end; the linearization's kernel is Θ0 throughout.\n",
            stats::mean_sd(&ch)
                .map(|(a, b)| format!("{a:.2} ± {b:.2}"))
                .unwrap_or_default()
        ));
    }
    out
}

/// Mean and min-max band of `get` over seeds at each evaluated step ≥ 1.
fn band(c: &[&GrokCurve], get: impl Fn(&GrokPoint) -> Option<f64>) -> Vec<(f64, f64, f64, f64)> {
    let Some(first) = c.first() else {
        return vec![];
    };
    first
        .points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.step >= 1)
        .filter_map(|(i, p)| {
            let v: Vec<f64> = c.iter().filter_map(|c| c.points.get(i).and_then(&get)).collect();
            let (m, _) = stats::mean_sd(&v)?;
            let (lo, hi) = stats::sd_band(&v);
            Some((p.step as f64, m, lo, hi))
        })
        .collect()
}

fn series(name: &str, pts: Vec<(f64, f64, f64, f64)>) -> Series {
    Series::line(name, pts.iter().map(|p| (p.0, p.1)))
        .with_marker(Marker::LinePoints)
        .with_band(Spread::Sd("seeds"), pts.iter().map(|p| (p.0, p.2, p.3)))
}

/// Writes summary.json, curves.csv, report.md and three figures.
pub fn write_summary(dir: &RunDir, s: &GrokSummary) -> Result<()> {
    let rows: Vec<Vec<String>> = s
        .curves
        .iter()
        .flat_map(|c| {
            c.points.iter().map(move |p| {
                vec![
                    c.seed.to_string(),
                    format!("{:?}", c.model).to_lowercase(),
                    p.step.to_string(),
                    p.train_accuracy.to_string(),
                    p.train_loss.to_string(),
                    p.test_accuracy.to_string(),
                    p.test_loss.to_string(),
                    p.weight_norm.to_string(),
                    p.ntk_change.map(|x| x.to_string()).unwrap_or_default(),
                ]
            })
        })
        .collect();
    write_csv(
        &dir.file("curves.csv"),
        &[
            "seed",
            "model",
            "step",
            "train_accuracy",
            "train_loss",
            "test_accuracy",
            "test_loss",
            "weight_norm",
            "ntk_change",
        ],
        &rows,
    )?;
    let mut acc = LineChart::new(
        &format!("{}: accuracy, network and linearization", s.name),
        "step",
        "accuracy (%)",
    )
    .log_x();
    let mut norms = LineChart::new(&format!("{}: weight norm", s.name), "step", "||θ||").log_x();
    for (i, m) in [Model::Network, Model::Linearized].into_iter().enumerate() {
        let c = curves(s, m);
        if c.is_empty() {
            continue;
        }
        let name = format!("{m:?}").to_lowercase();
        acc.push(
            series(&format!("{name} train"), band(&c, |p| Some(100.0 * p.train_accuracy)))
                .dashed()
                .with_color(i),
        );
        acc.push(series(&format!("{name} test"), band(&c, |p| Some(100.0 * p.test_accuracy))).with_color(i));
        norms.push(series(&name, band(&c, |p| Some(p.weight_norm))).with_color(i));
    }
    acc.save(&dir.figure("grokking_accuracy"))?;
    norms.save(&dir.figure("grokking_weight_norm"))?;
    let net = curves(s, Model::Network);
    let mut ntk = LineChart::new(
        &format!("{}: network NTK change from θ0", s.name),
        "step",
        "||Θ_t − Θ_0|| / ||Θ_0||",
    )
    .log_x();
    ntk.push(series("network", band(&net, |p| p.ntk_change)));
    ntk.save(&dir.figure("grokking_ntk_change"))?;
    write_text(
        &dir.report_md(),
        &format!(
            "# Grokking: {}\n\n{}, one-hot operands (the first layer holds each operand's learned embedding); the linearization is trained in the tangent space at θ0 from the same θ0, optimizer and data order. Per-unit wall times are in units/*.json.\n\n{}\n![accuracy](figures/grokking_accuracy.png)\n![weight norm](figures/grokking_weight_norm.png)\n![ntk change](figures/grokking_ntk_change.png)\n\n{}",
            s.name,
            s.model,
            table(s),
            verdict::claims_markdown(&claims(s))
        ),
    )
}

/// The bracket of an event on the evaluation grid, on the log10 step axis:
/// its log-midpoint and log-width (`(before, first]`, steps floored at 1).
fn log_event(c: &GrokCurve, hit: impl Fn(&GrokPoint) -> bool + Copy) -> Option<(f64, f64)> {
    let first = c.points.iter().find(|p| hit(p))?.step;
    let before = c.before(hit)?;
    let (a, b) = ((before.max(1) as f64).log10(), (first.max(1) as f64).log10());
    Some(((a + b) / 2.0, b - a))
}

/// Per seed: log10(generalize step / fit step) − log10([`DELAY`]) from the
/// two brackets' log-midpoints, and its resolution (the brackets'
/// log-widths combined); `Err` says why the seed has no delay.
fn delay_excess(c: &GrokCurve, total: usize) -> std::result::Result<(f64, f64), String> {
    let fit = log_event(c, |p| p.train_accuracy >= FIT)
        .ok_or_else(|| format!("never fits (train ≥ {:.0}%) within {total} steps", 100.0 * FIT))?;
    let gen = log_event(c, |p| p.test_accuracy >= GENERALIZE).ok_or_else(|| {
        format!(
            "fits but does not generalize (test ≥ {:.0}%) within {total} steps",
            100.0 * GENERALIZE
        )
    })?;
    Ok((gen.0 - fit.0 - DELAY.log10(), (fit.1 * fit.1 + gen.1 * gen.1).sqrt()))
}

/// The least gap, network − linearization final test accuracy, that counts
/// as "does not generalize like the network": 10 points (this project's).
pub const MEMORIZE_GAP: f64 = 0.10;

/// The declared claims, decided as one Holm family ([`decide_family`]):
/// 1. Grokking in the network (this project's threshold on Power et al.
///    2022's finding): per seed, log10(generalize step / fit step) from the
///    log-midpoints of the two events' evaluation-grid brackets, minus
///    log10([`DELAY`]); a difference above 0 over seeds, with the brackets'
///    widths as the resolution (seeds on the same grid steps still give an
///    interval). Not testable when a seed never fits or never generalizes.
/// 2. The linearization only memorizes (this project's hypothesis after
///    Kumar et al. 2024): per seed, network − linearization final test
///    accuracy minus [`MEMORIZE_GAP`], a difference above 0 (resolution
///    1/test examples). Not testable when the network does not generalize
///    or the linearization does not fit the training set in every seed.
pub fn claims(s: &GrokSummary) -> Vec<Claim> {
    let net = curves(s, Model::Network);
    if net.is_empty() {
        return vec![];
    }
    let mut items = vec![];
    let fits: Vec<Option<usize>> = net.iter().map(|c| c.fit_step()).collect();
    let gens: Vec<Option<usize>> = net.iter().map(|c| c.generalize_step()).collect();
    let excess: Vec<(u64, std::result::Result<(f64, f64), String>)> =
        net.iter().map(|c| (c.seed, delay_excess(c, s.steps))).collect();
    let failed: Vec<String> = excess
        .iter()
        .filter_map(|(seed, e)| e.as_ref().err().map(|w| format!("seed {seed} {w}")))
        .collect();
    let evidence = if failed.is_empty() {
        let ok: Vec<(f64, f64)> = excess.iter().filter_map(|(_, e)| e.as_ref().ok().copied()).collect();
        Evidence::Paired {
            values: ok.iter().map(|e| e.0).collect(),
            resolution: ok.iter().map(|e| e.1).fold(0.0, f64::max),
        }
    } else {
        Evidence::Untestable {
            why: format!(
                "{}: train longer (or at a smaller training fraction, where Power et al. find generalization later) until every seed both fits and generalizes",
                failed.join("; ")
            ),
        }
    };
    let delays: Vec<String> = excess
        .iter()
        .filter_map(|(_, e)| e.as_ref().ok().map(|e| format!("{:.2}", e.0 + DELAY.log10())))
        .collect();
    items.push(Item::new(
        Declared::project(
            format!(
                "The network generalizes (test ≥ {:.0}%) at least {DELAY}x later than it fits the training set (train ≥ {:.0}%): grokking (tested: log10(generalize step / fit step) − 1 > 0, training fraction {:.2})",
                100.0 * GENERALIZE,
                100.0 * FIT,
                s.train_examples as f64 / (s.train_examples + s.test_examples).max(1) as f64
            ),
            format!(
                "Power et al. 2022, Sec. 3 and Fig. 1, report generalization far after overfitting (with weight decay); the {DELAY}x threshold and the accuracy levels are this project's. Power et al. also show the steps to generalize shrink as the training fraction grows (Fig. 1, center), so a shorter delay at a large fraction is not evidence against them"
            ),
            Hypothesis::Difference { side: Side::Greater },
        )
        .shown_in(" (log10 of the delay − 1)", 1.0),
        evidence,
        format!(
            "log10(generalize / fit) per seed (bracket midpoints): {}; fit steps {}; generalize steps {} (first evaluated steps meeting each level)",
            if delays.is_empty() { "–".to_string() } else { delays.join(", ") },
            step_text(&fits),
            step_text(&gens)
        ),
    ));
    let lin = curves(s, Model::Linearized);
    if !lin.is_empty() {
        let final_test = |c: &GrokCurve| c.last().map(|p| p.test_accuracy);
        let d: Vec<f64> = net
            .iter()
            .filter_map(|n| {
                let l = lin.iter().find(|l| l.seed == n.seed)?;
                Some(final_test(n)? - final_test(l)?)
            })
            .collect();
        let lin_train: Vec<f64> = lin.iter().filter_map(|c| c.last().map(|p| p.train_accuracy)).collect();
        let lin_fits = lin.iter().all(|c| c.last().is_some_and(|p| p.train_accuracy >= FIT));
        let net_generalizes = net
            .iter()
            .all(|c| c.last().is_some_and(|p| p.test_accuracy >= GENERALIZE));
        let evidence = if !net_generalizes {
            Evidence::Untestable {
                why: format!(
                    "the network itself ends below {:.0}% test accuracy in some seed: there is no generalization to compare with (train longer)",
                    100.0 * GENERALIZE
                ),
            }
        } else if !lin_fits {
            Evidence::Untestable {
                why: format!(
                    "the linearization does not fit the training set (final train accuracy {} %, under {:.0}% in some seed): it neither memorizes nor generalizes; train it longer or at a larger rate until it fits",
                    pct(&lin_train),
                    100.0 * FIT
                ),
            }
        } else {
            Evidence::Paired {
                values: d.iter().map(|x| x - MEMORIZE_GAP).collect(),
                resolution: if s.test_examples > 0 {
                    1.0 / s.test_examples as f64
                } else {
                    0.0
                },
            }
        };
        items.push(Item::new(
            Declared::project(
                format!(
                    "The linearized network (trained in the tangent space at θ0) fits the training set but does not generalize like the network: its final test accuracy is more than {:.0} points below the network's (tested: network − linearization − {:.0} pp > 0)",
                    100.0 * MEMORIZE_GAP,
                    100.0 * MEMORIZE_GAP
                ),
                "Kumar et al. 2024 (ICLR), Grokking as the transition from lazy to rich training dynamics: a network first fits a kernel-regression solution with its initial features and generalizes only after it learns features; a model that cannot leave the kernel regime should fit without generalizing (their settings are polynomial regression and others; the linearization on modular addition is this project's test)",
                Hypothesis::Difference { side: Side::Greater },
            )
            .shown_in(" pp", 100.0),
            evidence,
            format!(
                "final test accuracy, network − linearization per seed: {} pp; linearization final train accuracy {} %",
                d.iter().map(|x| format!("{:.2}", 100.0 * x)).collect::<Vec<_>>().join(", "),
                pct(&lin_train)
            ),
        ));
    }
    decide_family(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::verdict::Verdict;

    /// A curve on the grid `steps` that fits at `fit` and generalizes at
    /// `gen` (None: never), ending at `final_test`.
    fn curve(seed: u64, model: Model, steps: &[usize], fit: usize, gen: Option<usize>, final_test: f64) -> GrokCurve {
        GrokCurve {
            seed,
            model,
            points: std::iter::once(0)
                .chain(steps.iter().copied())
                .map(|t| GrokPoint {
                    step: t,
                    train_accuracy: if t >= fit && t > 0 { 1.0 } else { 0.1 },
                    train_loss: 0.0,
                    test_accuracy: match gen {
                        Some(g) if t >= g && t > 0 => final_test.max(GENERALIZE),
                        _ => final_test.min(0.5),
                    },
                    test_loss: 0.0,
                    weight_norm: 1.0,
                    ntk_change: None,
                })
                .collect(),
        }
    }

    fn summary(curves: Vec<GrokCurve>) -> GrokSummary {
        GrokSummary {
            name: "t".into(),
            model: "mlp".into(),
            data: "mod-97-addition".into(),
            train_examples: 4705,
            test_examples: 4704,
            steps: 10000,
            seeds: vec![0, 1, 2],
            curves,
        }
    }

    /// The two ends of the first "interval [lo, hi]" in a measurement.
    fn interval(m: &str) -> (f64, f64) {
        let rest = &m[m.find("interval [").expect("an interval") + 10..];
        let body = &rest[..rest.find(']').unwrap()];
        let mut it = body.split(", ").map(|x| x.trim().parse::<f64>().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    }

    #[test]
    fn seeds_on_the_same_grid_steps_still_give_an_interval() {
        let steps = GrokkingConfig::default().steps(10000);
        let (fit, gen) = (steps[20], steps[26]);
        // Every seed fits and generalizes at the same steps, 6 grid steps
        // apart (about 4x): before a zero-width interval; now the grid's
        // resolution widens it, and a 4x delay still contradicts 10x.
        let c: Vec<GrokCurve> = (0..3)
            .map(|i| curve(i, Model::Network, &steps, fit, Some(gen), 1.0))
            .collect();
        let v = claims(&summary(c));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].verdict, Verdict::Contradicts, "{:?}", v[0]);
        assert!(v[0].source.contains("this project's hypothesis"), "{}", v[0].source);
        let (lo, hi) = interval(&v[0].measured);
        assert!(hi - lo > 0.05, "{}", v[0].measured);
        // 100x later: consistent; two seeds only an order of magnitude apart: inconclusive.
        let (fit, gen) = (steps[10], steps[30]);
        let c: Vec<GrokCurve> = (0..3)
            .map(|i| curve(i, Model::Network, &steps, fit, Some(gen), 1.0))
            .collect();
        assert_eq!(claims(&summary(c))[0].verdict, Verdict::Consistent);
        let c = vec![
            curve(0, Model::Network, &steps, steps[10], Some(steps[20]), 1.0),
            curve(1, Model::Network, &steps, steps[10], Some(steps[21]), 1.0),
        ];
        assert_eq!(claims(&summary(c))[0].verdict, Verdict::Inconclusive);
    }

    #[test]
    fn no_generalization_is_untestable_and_the_linearization_needs_to_fit() {
        let steps = GrokkingConfig::default().steps(10000);
        let mut c: Vec<GrokCurve> = (0..3)
            .map(|i| curve(i, Model::Network, &steps, steps[10], None, 0.3))
            .collect();
        // A linearization that fits but stays at 1% test accuracy.
        c.extend((0..3).map(|i| curve(i, Model::Linearized, &steps, steps[10], None, 0.01)));
        let v = claims(&summary(c));
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|c| c.verdict == Verdict::Inconclusive), "{v:?}");
        assert!(v[0].reason.contains("not testable"), "{}", v[0].reason);
        assert!(v[1].reason.contains("no generalization to compare"), "{}", v[1].reason);
        // The network groks; the linearization fits and stays at chance: consistent.
        let groks = || -> Vec<GrokCurve> {
            (0..3)
                .map(|i| {
                    curve(
                        i,
                        Model::Network,
                        &steps,
                        steps[10],
                        Some(steps[30]),
                        0.99 + 0.003 * i as f64,
                    )
                })
                .collect()
        };
        let mut c = groks();
        c.extend((0..3).map(|i| curve(i, Model::Linearized, &steps, steps[10], None, 0.01 + 0.002 * i as f64)));
        let v = claims(&summary(c));
        assert_eq!(v[1].verdict, Verdict::Consistent, "{:?}", v[1]);
        // The linearization generalizes too (a 1-point gap): contradicts.
        let mut c = groks();
        c.extend((0..3).map(|i| {
            curve(
                i,
                Model::Linearized,
                &steps,
                steps[10],
                Some(steps[30]),
                0.98 + 0.002 * i as f64,
            )
        }));
        let v = claims(&summary(c));
        assert_eq!(v[1].verdict, Verdict::Contradicts, "{:?}", v[1]);
    }
}
