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
//! - `ticket`: the IMP ticket ([`crate::imp`], rewinding to θ0,
//!   `[double_descent.prune]` per round) at the round closest to
//!   `ticket_density`.
//!
//! The interpolation threshold is the smallest width whose trained network
//! fits the noisy training set (train error ≤ [`FIT_ERROR`]); a model's peak
//! is its highest interior local maximum of mean test error ([`peak`]).

use serde::{Deserialize, Serialize};

use crate::config::Experiment;
use crate::experiment::UnitEnv;
use crate::imp::{Imp, ImpConfig};
use crate::models::{Mlp, Network};
use crate::ntk::diagnostics::kernel_regression;
use crate::ntk::empirical::{mlp_ntk, KernelKind};
use crate::ntk::linearize::Linearized;
use crate::params::ParamSet;
use crate::paths::{write_csv, write_json, write_text, RunDir};
use crate::plot::{LineChart, Marker, Series};
use crate::prune::PruneSpec;
use crate::stats;
use crate::train::{self, Supervised, TrainOptions, Trainable};
use crate::verdict::{self, Claim, Verdict};
use crate::{Error, Result};

/// Train error at or below which a network counts as fitting (interpolating)
/// the noisy training set.
pub const FIT_ERROR: f64 = 0.01;
/// The most training examples kernel regression takes (Θ(X, X) is n² f64).
pub const MAX_KERNEL_EXAMPLES: usize = 8000;
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
        crate::experiment::check_seeds(&self.seeds, "double_descent.seeds")?;
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
            crate::experiment::check_densities(&[d], "double_descent.ticket_density")?;
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
                    let counts = crate::imp::layer_counts(&net);
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
    let spec = crate::experiment::unit_spec(&exp, u.seed);
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
            Ok(mlp_ntk(&mlp, &theta0, a, na, b, nb, KernelKind::Traced, None, 256)?.data)
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
            let s = crate::experiment::run_in::<Imp>(&exp, &icfg, &dir, env.device, env.progress, env.resume)?;
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

impl crate::experiment::Experiment for DoubleDescent {
    const NAME: &'static str = "double_descent";
    type Base = Experiment;
    type Config = DoubleDescentConfig;
    type Unit = DdUnit;
    type Record = DdRecord;
    type Summary = DdSummary;

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
    out.push_str(&format!(
        "\nInterpolation threshold (smallest width with network train error ≤ {:.0}%): {}. Test-error peak per model (the highest interior local maximum of the mean): {}.\n",
        100.0 * FIT_ERROR,
        interpolation_threshold(s).map(|w| format!("width {w}")).unwrap_or_else(|| "none within the widths".into()),
        ms_.iter()
            .map(|(n, g)| format!("{n} at width {}", peak(s, *g).map(|w| w.to_string()).unwrap_or_else(|| "none".into())))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out
}

/// Writes summary.json, errors.csv, report.md and the test-error figure.
pub fn write_summary(dir: &RunDir, s: &DdSummary) -> Result<()> {
    write_json(&dir.summary_json(), s)?;
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
                let (lo, hi) = stats::min_max(&v);
                Some((w as f64, 100.0 * stats::mean(&v), 100.0 * lo, 100.0 * hi))
            })
            .collect();
        fig.push(
            Series::line(format!("{name} test"), band.iter().map(|p| (p.0, p.1)))
                .with_marker(Marker::LinePoints)
                .with_band(band.iter().map(|p| (p.0, p.2, p.3)))
                .with_color(i),
        );
    }
    let train: Vec<(f64, f64)> = widths(s)
        .into_iter()
        .map(|w| (w as f64, 100.0 * stats::mean(&at(s, w, |r| Some(r.network), false))))
        .collect();
    fig.push(Series::line("network train", train).dashed().with_color(0));
    fig.save_png(&dir.figure("double_descent"))?;
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

/// Per seed, `get`'s test error at `a` minus at `b`.
fn diff(s: &DdSummary, get: fn(&DdRecord) -> Option<Errors>, a: usize, b: usize) -> Vec<f64> {
    s.seeds
        .iter()
        .filter_map(|&seed| {
            let e = |w: usize| {
                s.records
                    .iter()
                    .find(|r| r.seed == seed && r.width == w)
                    .and_then(get)
                    .map(|e| e.test)
            };
            Some(e(a)? - e(b)?)
        })
        .collect()
}

/// Whether `get`'s curve has a peak: (verdict, reason, measured, peak width).
fn peak_verdict(s: &DdSummary, get: fn(&DdRecord) -> Option<Errors>) -> (Verdict, String, String, Option<usize>) {
    let ws = widths(s);
    if ws.len() < 3 {
        return (
            Verdict::Inconclusive,
            "fewer than 3 widths cannot show a peak".into(),
            format!("{} widths", ws.len()),
            None,
        );
    }
    let (first, last) = (ws[0], ws[ws.len() - 1]);
    let Some(p) = peak(s, get) else {
        return (
            Verdict::Contradicts,
            "no interior width has a mean test error above both neighbours': no peak inside the widths".into(),
            format!(
                "mean test error (%) by width: {}",
                ws.iter()
                    .map(|&w| format!("{w}: {:.2}", 100.0 * stats::mean(&at(s, w, get, true))))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None,
        );
    };
    let right = stats::mean_ci(&diff(s, get, p, last));
    // The first descent's bottom: the best width left of the peak.
    let left_w = ws
        .iter()
        .copied()
        .filter(|&w| w < p)
        .min_by(|&a, &b| stats::mean(&at(s, a, get, true)).total_cmp(&stats::mean(&at(s, b, get, true))))
        .unwrap_or(first);
    let left = stats::mean_ci(&diff(s, get, p, left_w));
    let measured = format!(
        "peak (the highest interior local maximum of the mean) at width {p}; peak − width {last}: {}; peak − width {left_w} (the lowest error left of the peak): {}",
        verdict::ci_text(right, diff(s, get, p, last).len(), 100.0, " pp"),
        verdict::ci_text(left, diff(s, get, p, left_w).len(), 100.0, " pp")
    );
    let (v, why) = match (left, right) {
        (Some((l, lh)), Some((r, rh))) if l - lh > 0.0 && r - rh > 0.0 => (
            Verdict::Consistent,
            "both intervals lie above 0: the error rises to the peak and falls after it".to_string(),
        ),
        (None, _) | (_, None) => (Verdict::Inconclusive, "fewer than 2 seeds give no interval".to_string()),
        _ => (Verdict::Inconclusive, "an interval contains 0".to_string()),
    };
    (v, why, measured, Some(p))
}

/// 1. The network's test error has a peak (the highest interior local
///    maximum, with both sides' per-seed differences above 0), within one
///    grid width of the interpolation threshold; inconclusive when no width
///    or every width fits the training set.
/// 2. The same for NTK kernel regression and the linearization (reported
///    with their verdicts).
/// 3. IMP tickets remove the peak: the ticket's error at the network's
///    peak width − at the last width is below 1 point (consistent) or
///    above it (contradicts), judged only when the network's peak itself
///    is significant (both sides' intervals above 0).
pub fn claims(s: &DdSummary) -> Vec<Claim> {
    if s.records.is_empty() {
        return vec![];
    }
    let ws = widths(s);
    let threshold = interpolation_threshold(s);
    let mut out = Vec::new();
    let (v, why, measured, p) = peak_verdict(s, |r| Some(r.network));
    // The ticket claim needs a significant peak, whatever the threshold says.
    let net_peak = v == Verdict::Consistent;
    let near = match (p, threshold) {
        (Some(p), Some(t)) => {
            let (ip, it) = (
                ws.iter().position(|&w| w == p).unwrap_or(0),
                ws.iter().position(|&w| w == t).unwrap_or(0),
            );
            Some(ip.abs_diff(it) <= 1)
        }
        _ => None,
    };
    let straddles = threshold.is_some_and(|t| t > ws[0]);
    let (v, why) = match (v, near) {
        _ if threshold.is_none() => (
            Verdict::Inconclusive,
            format!(
                "no width fits the noisy training set (train error ≤ {:.0}%): the widths or the training length do not reach the interpolation threshold",
                100.0 * FIT_ERROR
            ),
        ),
        _ if !straddles => (
            Verdict::Inconclusive,
            "every width fits the training set: the widths start past the interpolation threshold".to_string(),
        ),
        (Verdict::Consistent, Some(false)) => (
            Verdict::Inconclusive,
            format!("{why}, but the peak is more than one grid width from the interpolation threshold"),
        ),
        (v, _) => (v, why),
    };
    out.push(Claim {
        claim: "With label noise, the network's test error peaks near the interpolation threshold and falls again for wider networks (model-wise double descent)".into(),
        source: "Nakkiran et al. 2019, Sec. 5 (Fig. 4: model-wise double descent, sharper with label noise)".into(),
        measured: format!(
            "{measured}; interpolation threshold: {}",
            threshold.map(|w| format!("width {w}")).unwrap_or_else(|| "none".into())
        ),
        verdict: v,
        reason: why,
    });
    for (name, get) in models(s)
        .into_iter()
        .filter(|(n, _)| *n == "kernel" || *n == "linearized")
    {
        let (v, why, measured, _) = peak_verdict(s, get);
        out.push(Claim {
            claim: format!("The {name} model's test error has a peak inside the widths too"),
            source: "Nakkiran et al. 2019 (double descent is not specific to networks); Belkin et al. 2019 (random features and kernels)".into(),
            measured,
            verdict: v,
            reason: why,
        });
    }
    if s.records.iter().any(|r| r.ticket.is_some()) {
        let last = ws[ws.len() - 1];
        let (verdict, reason, measured) = match p {
            Some(p) if net_peak && p != last => {
                let d = diff(s, |r| r.ticket, p, last);
                let ci = stats::mean_ci(&d);
                let measured = format!(
                    "ticket test error at the network's peak (width {p}) − at width {last}: {}; the network's: {}",
                    verdict::ci_text(ci, d.len(), 100.0, " pp"),
                    {
                        let n = diff(s, |r| Some(r.network), p, last);
                        verdict::ci_text(stats::mean_ci(&n), n.len(), 100.0, " pp")
                    }
                );
                match ci {
                    None => (
                        Verdict::Inconclusive,
                        "fewer than 2 seeds give no interval".to_string(),
                        measured,
                    ),
                    Some((m, h)) if m + h < 0.01 => (
                        Verdict::Consistent,
                        "the interval lies below 1 point: no peak left in the tickets".to_string(),
                        measured,
                    ),
                    Some((m, h)) if m - h > 0.01 => (
                        Verdict::Contradicts,
                        "the interval lies above 1 point: the tickets keep a peak".to_string(),
                        measured,
                    ),
                    Some(_) => (
                        Verdict::Inconclusive,
                        "the interval contains 1 point".to_string(),
                        measured,
                    ),
                }
            }
            _ => (
                Verdict::Inconclusive,
                "the network shows no significant peak (rising to it and falling after it) to remove".to_string(),
                String::from("–"),
            ),
        };
        out.push(Claim {
            claim: "IMP tickets remove the test-error peak: at the network's peak width the ticket is within 1 point of its error at the largest width".into(),
            source: "this issue's question (issue 14, item 4); pruning as a regularizer of the interpolating model".into(),
            measured,
            verdict,
            reason,
        });
    }
    out
}
