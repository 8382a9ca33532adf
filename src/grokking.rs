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
//! The questions: does the network generalize long after it fits the
//! training set (grokking), and does the linearization generalize too, or
//! only memorize? Kumar et al. 2024 ("Grokking as the transition from lazy
//! to rich training dynamics", ICLR) predict the latter: grokking is the
//! network leaving the kernel (lazy) regime, so the linearized model, which
//! cannot leave it, fits without generalizing.

use serde::{Deserialize, Serialize};

use crate::config::Experiment;
use crate::experiment::UnitEnv;
use crate::models::{Mlp, Network};
use crate::ntk::empirical::{mlp_ntk, KernelKind};
use crate::ntk::linearize::Linearized;
use crate::params::ParamSet;
use crate::paths::{write_csv, write_json, write_text, RunDir};
use crate::plot::{LineChart, Marker, Series};
use crate::stats;
use crate::train::{self, Supervised, TrainOptions, Trainable};
use crate::verdict::{self, Claim, Verdict};
use crate::{Error, Result};

/// Train accuracy that counts as fitting the training set.
pub const FIT: f64 = 0.99;
/// Test accuracy that counts as generalizing.
pub const GENERALIZE: f64 = 0.95;
/// How much later than fitting generalization must come to count as
/// grokking: an order of magnitude (Power et al.'s Fig. 1 shows about 10³).
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
        crate::experiment::check_seeds(&self.seeds, "grokking.seeds")?;
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
    let ntk = |p: &ParamSet| mlp_ntk(&mlp, p, xk, k, xk, k, KernelKind::Traced, None, 64);
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

impl crate::experiment::Experiment for Grokking {
    const NAME: &'static str = "grokking";
    type Base = Experiment;
    type Config = GrokkingConfig;
    type Unit = GrokUnit;
    type Record = GrokCurve;
    type Summary = GrokSummary;

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
            let (lo, hi) = stats::min_max(&v);
            Some((p.step as f64, m, lo, hi))
        })
        .collect()
}

fn series(name: &str, pts: Vec<(f64, f64, f64, f64)>) -> Series {
    Series::line(name, pts.iter().map(|p| (p.0, p.1)))
        .with_marker(Marker::LinePoints)
        .with_band(pts.iter().map(|p| (p.0, p.2, p.3)))
}

/// Writes summary.json, curves.csv, report.md and three figures.
pub fn write_summary(dir: &RunDir, s: &GrokSummary) -> Result<()> {
    write_json(&dir.summary_json(), s)?;
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
    acc.save_png(&dir.figure("grokking_accuracy"))?;
    norms.save_png(&dir.figure("grokking_weight_norm"))?;
    let net = curves(s, Model::Network);
    let mut ntk = LineChart::new(
        &format!("{}: network NTK change from θ0", s.name),
        "step",
        "||Θ_t − Θ_0|| / ||Θ_0||",
    )
    .log_x();
    ntk.push(series("network", band(&net, |p| p.ntk_change)));
    ntk.save_png(&dir.figure("grokking_ntk_change"))?;
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

/// 1. Grokking in the network: per seed log10(generalize step / fit step),
///    bracketed by the evaluation grid; consistent when the 95% t interval
///    of the lower brackets lies above log10(10), contradicts when that of
///    the upper brackets lies below it, inconclusive otherwise or if a seed
///    never fits or never generalizes within the run.
/// 2. The linearization only memorizes: per seed, network − linearization
///    final test accuracy; consistent above 10 points (and the
///    linearization fits the training set), contradicts below 1 point.
pub fn claims(s: &GrokSummary) -> Vec<Claim> {
    let net = curves(s, Model::Network);
    if net.is_empty() {
        return vec![];
    }
    let mut out = vec![];
    let fits: Vec<Option<usize>> = net.iter().map(|c| c.fit_step()).collect();
    let gens: Vec<Option<usize>> = net.iter().map(|c| c.generalize_step()).collect();
    let bounds: Option<Vec<(f64, f64)>> = net.iter().map(|c| c.delay_bounds()).collect();
    let (verdict, reason, measured) = match &bounds {
        None => (
            Verdict::Inconclusive,
            format!(
                "a seed did not fit (train ≥ {:.0}%) or did not generalize (test ≥ {:.0}%) within {} steps",
                100.0 * FIT,
                100.0 * GENERALIZE,
                s.steps
            ),
            format!("fit steps {}; generalize steps {}", step_text(&fits), step_text(&gens)),
        ),
        Some(b) => {
            // The evaluation grid brackets each step: judge the lower bounds
            // for "consistent" and the upper bounds for "contradicts".
            let lo = stats::mean_ci(&b.iter().map(|x| x.0).collect::<Vec<_>>());
            let hi = stats::mean_ci(&b.iter().map(|x| x.1).collect::<Vec<_>>());
            let t = DELAY.log10();
            let (v, why) = match (lo, hi) {
                (Some((m, h)), _) if m - h > t => (
                    Verdict::Consistent,
                    "even the grid's lower bounds give an interval above 1 (10x)".into(),
                ),
                (_, Some((m, h))) if m + h < t => (
                    Verdict::Contradicts,
                    "even the grid's upper bounds give an interval below 1: generalization follows fitting within 10x"
                        .into(),
                ),
                (None, _) | (_, None) => (Verdict::Inconclusive, "fewer than 2 seeds give no interval".to_string()),
                _ => (Verdict::Inconclusive, "the intervals contain 1 (10x)".into()),
            };
            (
                v,
                why,
                format!(
                    "log10(generalize step / fit step), bracketed by the evaluation grid: lower bounds {}, upper bounds {}; fit steps {}; generalize steps {}",
                    verdict::ci_text(lo, b.len(), 1.0, ""),
                    verdict::ci_text(hi, b.len(), 1.0, ""),
                    step_text(&fits),
                    step_text(&gens)
                ),
            )
        }
    };
    out.push(Claim {
        claim: format!(
            "The network generalizes (test ≥ {:.0}%) at least {DELAY}x later than it fits the training set (train ≥ {:.0}%): grokking",
            100.0 * GENERALIZE,
            100.0 * FIT
        ),
        source: "Power et al. 2022, Sec. 3 and Fig. 1 (generalization long after overfitting, with weight decay)".into(),
        measured,
        verdict,
        reason,
    });
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
        let lin_fits = lin.iter().all(|c| c.last().is_some_and(|p| p.train_accuracy >= FIT));
        let ci = stats::mean_ci(&d);
        let net_generalizes = net
            .iter()
            .all(|c| c.last().is_some_and(|p| p.test_accuracy >= GENERALIZE));
        let (verdict, reason) = match ci {
            None => (Verdict::Inconclusive, "fewer than 2 seeds give no interval".to_string()),
            Some(_) if !net_generalizes => (
                Verdict::Inconclusive,
                format!(
                    "the network itself ends below {:.0}% test accuracy in some seed: there is no generalization to compare with",
                    100.0 * GENERALIZE
                ),
            ),
            Some((m, h)) if m - h > 0.10 && lin_fits => (
                Verdict::Consistent,
                "the interval lies above 10 points and the linearization fits the training set: it memorizes".into(),
            ),
            Some((m, h)) if m - h > 0.10 => (
                Verdict::Inconclusive,
                format!(
                    "the linearization generalizes worse, but it does not fit the training set (train < {:.0}%) within the run: it neither memorizes nor generalizes",
                    100.0 * FIT
                ),
            ),
            Some((m, h)) if m + h < 0.01 => (
                Verdict::Contradicts,
                "the interval lies below 1 point: the linearization generalizes as well as the network".into(),
            ),
            Some(_) => (Verdict::Inconclusive, "the interval is between 1 and 10 points".into()),
        };
        out.push(Claim {
            claim: "The linearized network (trained in the tangent space at θ0) fits the training set but does not generalize like the network: grokking needs leaving the kernel regime".into(),
            source: "Kumar et al. 2024 (ICLR), Grokking as the transition from lazy to rich training dynamics".into(),
            measured: format!(
                "final test accuracy, network − linearization: {}; linearization final train accuracy {}",
                verdict::ci_text(ci, d.len(), 100.0, " pp"),
                pct(&lin.iter().filter_map(|c| c.last().map(|p| p.train_accuracy)).collect::<Vec<_>>())
            ),
            verdict,
            reason,
        });
    }
    out
}
