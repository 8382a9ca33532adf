//! Full network vs. its linearization across widths (Lee et al. 2019, Sec. 2.4
//! and Fig. 1/4): at each width train the network and its tangent-space
//! linearization from the same init with the same optimizer and data order,
//! predict the linearization's trajectory in closed form from the NTK at init,
//! and measure how far apart they end up. Theorem 2.1 of Lee et al. bounds the
//! gap between the full and linearized outputs, the relative parameter change
//! and the relative NTK change by `O(width^{-1/2})` (NTK parameterization).

use serde::{Deserialize, Serialize};

use super::analytic::InfiniteMlp;
use super::dynamics::KernelDynamics;
use super::empirical::{mlp_ntk, KernelKind};
use super::linearize::Linearized;
use super::spectrum;
use crate::config::DataConfig;
use crate::data::{Dataset, Split};
use crate::models::{Activation, Mlp, Network, Parameterization};
use crate::params::ParamSet;
use crate::paths::{write_json, write_text, RunDir};
use crate::plot::{LineChart, Marker, Series};
use crate::train::loss::argmax_rows;
use crate::train::optim::SgdConfig;
use crate::train::{self, Loss, OptimizerConfig, Schedule, Supervised, TrainOptions, TrainSpec, Trainable};
use crate::{Error, Result};

/// The theory's slope of every gap against width (Lee et al. 2019, Thm. 2.1).
pub const THEORY_SLOPE: f64 = -0.5;
/// A fitted slope at or below this agrees with the theory.
pub const AGREEMENT_THRESHOLD: f64 = -0.4;

/// The experiment (`ntk_compare` flags or an experiment TOML).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareConfig {
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default = "default_widths")]
    pub widths: Vec<usize>,
    /// Hidden layers.
    #[serde(default = "default_depth")]
    pub depth: usize,
    #[serde(default = "default_activation")]
    pub activation: Activation,
    #[serde(default = "default_parameterization")]
    pub parameterization: Parameterization,
    #[serde(default = "default_w_std")]
    pub w_std: f32,
    #[serde(default = "default_b_std")]
    pub b_std: f32,
    #[serde(default = "default_data")]
    pub data: DataConfig,
    /// Optimizer steps.
    #[serde(default = "default_steps")]
    pub steps: usize,
    /// SGD learning rate; default: `N / λ_max` of the NTK at init (half the
    /// largest stable rate of full-batch gradient descent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Mini-batch size; default: the whole training set (gradient descent,
    /// the setting of the closed form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Init seeds (one run per width and seed); the data order uses the same seed.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Evaluation points along training (log-spaced).
    #[serde(default = "default_eval_points")]
    pub eval_points: usize,
    /// Test points whose output trajectories are plotted.
    #[serde(default = "default_traj")]
    pub trajectory_points: usize,
}

fn default_name() -> String {
    "ntk_compare".into()
}
fn default_widths() -> Vec<usize> {
    vec![64, 128, 256, 512, 1024, 2048]
}
fn default_depth() -> usize {
    2
}
fn default_activation() -> Activation {
    Activation::Relu
}
fn default_parameterization() -> Parameterization {
    Parameterization::Ntk
}
fn default_w_std() -> f32 {
    std::f32::consts::SQRT_2
}
fn default_b_std() -> f32 {
    0.1
}
fn default_data() -> DataConfig {
    DataConfig {
        train_size: Some(256),
        test_size: Some(256),
        ..DataConfig::default()
    }
}
fn default_steps() -> usize {
    500
}
fn default_seeds() -> Vec<u64> {
    vec![0]
}
fn default_eval_points() -> usize {
    12
}
fn default_traj() -> usize {
    3
}

impl Default for CompareConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty config takes every default")
    }
}

impl CompareConfig {
    /// Errors on an empty or zero width list, zero steps, a bad rate, etc.
    pub fn validate(&self) -> Result<()> {
        if self.widths.is_empty() || self.widths.contains(&0) {
            return Err(Error::config(
                "widths",
                "a non-empty list of widths > 0",
                format!("{:?}", self.widths),
            ));
        }
        if self.widths.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::config(
                "widths",
                "strictly increasing widths",
                format!("{:?}", self.widths),
            ));
        }
        if self.depth == 0 {
            return Err(Error::config("depth", "at least 1 hidden layer", 0));
        }
        if self.steps == 0 {
            return Err(Error::config("steps", "> 0", 0));
        }
        if let Some(lr) = self.lr {
            if !(lr.is_finite() && lr > 0.0) {
                return Err(Error::config("lr", "a finite value > 0", lr));
            }
        }
        if self.seeds.is_empty() {
            return Err(Error::config("seeds", "at least one seed", "[]"));
        }
        if self.eval_points < 2 {
            return Err(Error::config("eval_points", ">= 2", self.eval_points));
        }
        Ok(())
    }

    /// The MLP of width `w`.
    pub fn mlp(&self, input_dim: usize, outputs: usize, w: usize) -> Result<Mlp> {
        Mlp::new(
            input_dim,
            vec![w; self.depth],
            outputs,
            self.activation,
            self.parameterization,
            self.w_std,
            self.b_std,
        )
    }

    /// Log-spaced evaluation steps from 0 to `steps`.
    pub fn eval_steps(&self) -> Vec<usize> {
        let mut s = vec![0usize];
        let k = self.eval_points - 1;
        for i in 0..k {
            let v = (self.steps as f64).powf((i + 1) as f64 / k as f64).round() as usize;
            s.push(v.clamp(1, self.steps));
        }
        s.dedup();
        s
    }
}

/// One output trajectory point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryPoint {
    pub step: usize,
    /// Outputs (of each tracked test point's true class): full net, linearized net, closed form.
    pub full: Vec<f64>,
    pub linear: Vec<f64>,
    pub kernel: Vec<f64>,
}

/// The measurements at one width and seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WidthResult {
    pub width: usize,
    pub seed: u64,
    pub parameters: usize,
    /// RMSE between full and linearized test outputs at the end.
    pub rmse_full_linear: f64,
    /// The same at each evaluation step.
    pub rmse_over_training: Vec<(usize, f64)>,
    /// RMSE between the linearized network and the closed-form kernel prediction at the end.
    pub rmse_linear_kernel: f64,
    /// `||θ_T − θ_0|| / ||θ_0||` of the full network.
    pub relative_parameter_change: f64,
    /// `||Θ_T − Θ_0||_F / ||Θ_0||_F`, traced NTK on the training inputs.
    pub relative_ntk_change: f64,
    pub accuracy_full: f64,
    pub accuracy_linear: f64,
    pub accuracy_kernel: f64,
    #[serde(default)]
    pub initial_train_loss: f64,
    pub final_train_loss_full: f64,
    pub final_train_loss_linear: f64,
    /// Eigenvalues of `Θ_0 / N` on the training inputs, descending.
    pub ntk_spectrum: Vec<f64>,
    pub trajectories: Vec<TrajectoryPoint>,
    pub seconds: f64,
}

/// A fitted log-log slope against width.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Slope {
    pub quantity: String,
    pub slope: f64,
    pub intercept: f64,
    pub r_squared: f64,
    pub theory: f64,
    pub agrees: bool,
}

/// Everything `ntk_compare` reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareSummary {
    pub config: CompareConfig,
    pub lr: f64,
    pub lr_source: String,
    pub train_size: usize,
    pub test_size: usize,
    pub results: Vec<WidthResult>,
    pub slopes: Vec<Slope>,
    /// Slopes of RMSE(full, linear) between consecutive widths (diagnostic:
    /// how the decay rate changes from small to large widths).
    #[serde(default)]
    pub local_rmse_slopes: Vec<(usize, usize, f64)>,
    pub verdict: String,
}

/// Least-squares fit of `log y = a + b log x`; errors with fewer than 2 usable points.
pub fn fit_loglog(xs: &[f64], ys: &[f64], quantity: &str) -> Result<Slope> {
    let pts: Vec<(f64, f64)> = xs
        .iter()
        .zip(ys)
        .filter(|(x, y)| **x > 0.0 && **y > 0.0 && y.is_finite())
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    if pts.len() < 2 {
        return Err(Error::invalid(
            format!("log-log fit of {quantity}"),
            "at least 2 positive points",
            pts.len(),
        ));
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let syy: f64 = pts.iter().map(|p| (p.1 - my).powi(2)).sum();
    if sxx == 0.0 {
        return Err(Error::invalid(
            format!("log-log fit of {quantity}"),
            "at least 2 distinct widths",
            1,
        ));
    }
    let slope = sxy / sxx;
    let r2 = if syy > 0.0 { sxy * sxy / (sxx * syy) } else { 1.0 };
    Ok(Slope {
        quantity: quantity.into(),
        slope,
        intercept: my - slope * mx,
        r_squared: r2,
        theory: THEORY_SLOPE,
        agrees: slope <= AGREEMENT_THRESHOLD,
    })
}

fn outputs(m: &mut dyn Trainable, p: &ParamSet, d: &Dataset) -> Result<Vec<f32>> {
    let mut o = Vec::new();
    m.predict(p, &d.x, d.len(), &mut o)?;
    Ok(o)
}

fn targets(d: &Dataset) -> Vec<f32> {
    let c = d.target_dim;
    let mut y = vec![0.0f32; d.len() * c];
    for i in 0..d.len() {
        d.target_row(i, &mut y[i * c..(i + 1) * c]);
    }
    y
}

fn rmse<A: Copy + Into<f64>, B: Copy + Into<f64>>(a: &[A], b: &[B]) -> f64 {
    let s: f64 = a.iter().zip(b).map(|(&x, &y)| (x.into() - y.into()).powi(2)).sum();
    (s / a.len().max(1) as f64).sqrt()
}

fn accuracy<T: Copy + Into<f64>>(out: &[T], labels: &[u32], c: usize) -> f64 {
    let f: Vec<f32> = out.iter().map(|&v| v.into() as f32).collect();
    argmax_rows(&f, c)
        .zip(labels)
        .filter(|(p, &l)| *p == l as usize)
        .count() as f64
        / labels.len().max(1) as f64
}

/// The learning rate to use: the configured one, or `N / λ_max`, with
/// `λ_max` the largest eigenvalue among the NTKs at init of every width (first
/// seed) and the infinite-width NTK where it has a closed form. Full-batch GD
/// is stable below `2N / λ_max`, so this is half the largest rate that is
/// stable for every network of the sweep.
pub fn choose_lr(cfg: &CompareConfig, split: &Split) -> Result<(f64, String)> {
    if let Some(lr) = cfg.lr {
        return Ok((lr, "configured".into()));
    }
    let tr = &split.train;
    let n = tr.len();
    let mut lam: f64 = 0.0;
    let mut which = String::new();
    if cfg.parameterization == Parameterization::Ntk {
        if let Ok(inf) = InfiniteMlp::new(cfg.depth + 1, cfg.activation, cfg.w_std as f64, cfg.b_std as f64) {
            let k = inf.kernels(&tr.x, n, &tr.x, n, tr.dim())?;
            lam = spectrum::eigenvalues(&k.ntk, n)?[0];
            which = "infinite width".into();
        }
    }
    for &w in &cfg.widths {
        let mlp = cfg.mlp(tr.dim(), tr.num_classes, w)?;
        let p = Network::Mlp(mlp.clone()).init(cfg.seeds[0]);
        let k = mlp_ntk(&mlp, &p, &tr.x, n, &tr.x, n, KernelKind::Traced, None, 256)?;
        let l = spectrum::eigenvalues(&k.to_f64(), n)?[0];
        if l > lam {
            lam = l;
            which = format!("width {w}");
        }
    }
    if !(lam > 0.0 && lam.is_finite()) {
        return Err(Error::invalid("largest NTK eigenvalue", "> 0", lam));
    }
    Ok((
        n as f64 / lam,
        format!("N/λ_max = {n}/{lam:.4}, largest NTK eigenvalue at init ({which})"),
    ))
}

/// Trains the network and its linearization at one width and measures everything.
pub fn run_width(
    cfg: &CompareConfig,
    split: &Split,
    width: usize,
    seed: u64,
    lr: f64,
    progress: bool,
) -> Result<WidthResult> {
    let start = std::time::Instant::now();
    let (tr, te) = (&split.train, &split.test);
    let (n, c) = (tr.len(), tr.num_classes);
    let mlp = cfg.mlp(tr.dim(), c, width)?;
    let net = Network::Mlp(mlp.clone());
    let theta0 = net.init(seed);
    let eval_steps = cfg.eval_steps();
    let spec = TrainSpec {
        optimizer: OptimizerConfig::Sgd(SgdConfig {
            lr,
            momentum: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }),
        schedule: Schedule::default(),
        batch_size: cfg.batch_size.unwrap_or(n),
        steps: cfg.steps,
        eval_every: 0,
        eval_chunk: 1024,
        checkpoint_steps: eval_steps.clone(),
        save_every: 0,
        data_seed: seed,
    };
    let opts = TrainOptions {
        progress,
        ..Default::default()
    };
    let mut full = Supervised::new(net.clone(), Loss::Mse, &candle_core::Device::Cpu);
    let out_full = train::train(&mut full, &theta0, split, &spec, &opts)?;
    let mut lin = Linearized::new(mlp.clone(), theta0.clone(), Loss::Mse)?;
    let out_lin = train::train(&mut lin, &theta0, split, &spec, &opts)?;

    // Kernels at init and the closed form.
    let theta_tr = mlp_ntk(&mlp, &theta0, &tr.x, n, &tr.x, n, KernelKind::Traced, None, 256)?;
    let theta_te = mlp_ntk(&mlp, &theta0, &te.x, te.len(), &tr.x, n, KernelKind::Traced, None, 256)?;
    let f0_tr = outputs(&mut full, &theta0, tr)?;
    let f0_te = outputs(&mut full, &theta0, te)?;
    let dynamics = KernelDynamics::new(&theta_tr, &f0_tr, &targets(tr), c)?;

    let k = cfg.trajectory_points.min(te.len());
    let mut trajectories = Vec::new();
    let mut rmse_over_training = Vec::new();
    for &s in &eval_steps {
        let (pf, pl) = (&out_full.checkpoints[&s], &out_lin.checkpoints[&s]);
        let ff = outputs(&mut full, pf, te)?;
        let fl = outputs(&mut lin, pl, te)?;
        let fk = dynamics.test_outputs(&theta_te, &f0_te, lr, s)?;
        rmse_over_training.push((s, rmse(&ff, &fl)));
        let pick = |o: &dyn Fn(usize) -> f64| (0..k).map(o).collect::<Vec<f64>>();
        trajectories.push(TrajectoryPoint {
            step: s,
            full: pick(&|i| ff[i * c + te.labels[i] as usize] as f64),
            linear: pick(&|i| fl[i * c + te.labels[i] as usize] as f64),
            kernel: pick(&|i| fk[i * c + te.labels[i] as usize]),
        });
    }
    let ff = outputs(&mut full, &out_full.params, te)?;
    let fl = outputs(&mut lin, &out_lin.params, te)?;
    let fk = dynamics.test_outputs(&theta_te, &f0_te, lr, cfg.steps)?;
    let theta_end = mlp_ntk(
        &mlp,
        &out_full.params,
        &tr.x,
        n,
        &tr.x,
        n,
        KernelKind::Traced,
        None,
        256,
    )?;
    let loss_on = |m: &mut dyn Trainable, p: &ParamSet| -> Result<f64> { Ok(train::evaluate(m, p, tr, 1024)?.loss) };
    Ok(WidthResult {
        width,
        seed,
        parameters: theta0.numel(),
        rmse_full_linear: rmse(&ff, &fl),
        rmse_over_training,
        rmse_linear_kernel: rmse(&fl, &fk),
        relative_parameter_change: out_full.params.sub(&theta0)?.l2_norm() / theta0.l2_norm(),
        relative_ntk_change: theta_tr.relative_distance(&theta_end)?,
        accuracy_full: accuracy(&ff, &te.labels, c),
        accuracy_linear: accuracy(&fl, &te.labels, c),
        accuracy_kernel: accuracy(&fk, &te.labels, c),
        initial_train_loss: loss_on(&mut full, &theta0)?,
        final_train_loss_full: loss_on(&mut full, &out_full.params)?,
        final_train_loss_linear: loss_on(&mut lin, &out_lin.params)?,
        ntk_spectrum: dynamics.eigenvalues.iter().map(|&l| l / n as f64).collect(),
        trajectories,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The quantities whose width dependence is fitted: (key, label, accessor).
type Quantity = (&'static str, &'static str, fn(&WidthResult) -> f64);
const QUANTITIES: [Quantity; 3] = [
    ("rmse_full_linear", "RMSE(full, linear) on test outputs", |r| {
        r.rmse_full_linear
    }),
    ("relative_parameter_change", "||θ_T − θ_0|| / ||θ_0||", |r| {
        r.relative_parameter_change
    }),
    ("relative_ntk_change", "||Θ_T − Θ_0||_F / ||Θ_0||_F", |r| {
        r.relative_ntk_change
    }),
];

/// Mean over seeds of `f` per width, in width order.
fn per_width(results: &[WidthResult], widths: &[usize], f: fn(&WidthResult) -> f64) -> Vec<(f64, f64, f64, f64)> {
    widths
        .iter()
        .filter_map(|&w| {
            let v: Vec<f64> = results.iter().filter(|r| r.width == w).map(f).collect();
            if v.is_empty() {
                return None;
            }
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            Some((w as f64, mean, lo, hi))
        })
        .collect()
}

/// Fits the slopes and writes the verdict (`sizes`: train and test examples).
pub fn summarize(
    cfg: &CompareConfig,
    lr: f64,
    lr_source: String,
    sizes: (usize, usize),
    results: Vec<WidthResult>,
) -> Result<CompareSummary> {
    let mut slopes = Vec::new();
    for (key, _, f) in QUANTITIES {
        let pts = per_width(&results, &cfg.widths, f);
        let xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
        let ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
        slopes.push(fit_loglog(&xs, &ys, key)?);
    }
    let rmse_pts = per_width(&results, &cfg.widths, QUANTITIES[0].2);
    let local_rmse_slopes = rmse_pts
        .windows(2)
        .map(|w| {
            (
                w[0].0 as usize,
                w[1].0 as usize,
                (w[1].1 / w[0].1).ln() / (w[1].0 / w[0].0).ln(),
            )
        })
        .collect();
    let s = &slopes[0];
    let verdict = if s.agrees {
        format!(
            "AGREES with Lee et al. 2019: RMSE(full, linear) falls with width as width^{:.2} (theory: O(width^-1/2), i.e. slope <= about -0.4)",
            s.slope
        )
    } else {
        format!(
            "DISAGREES with Lee et al. 2019: RMSE(full, linear) falls only as width^{:.2}, flatter than the O(width^-1/2) bound predicts (slope <= about -0.4)",
            s.slope
        )
    };
    Ok(CompareSummary {
        config: cfg.clone(),
        lr,
        lr_source,
        train_size: sizes.0,
        test_size: sizes.1,
        results,
        slopes,
        local_rmse_slopes,
        verdict,
    })
}

/// Writes every figure of a summary into `dir/figures`.
pub fn plot_summary(dir: &RunDir, s: &CompareSummary) -> Result<()> {
    let widths = &s.config.widths;
    // Gaps vs width with fitted slopes.
    let mut chart = LineChart::new("Full vs. linearized network across widths", "width", "relative gap")
        .log_x()
        .log_y();
    for (q, ((_, label, f), slope)) in QUANTITIES.iter().zip(&s.slopes).enumerate() {
        let pts = per_width(&s.results, widths, *f);
        let series = Series::line(
            format!("{label} (fitted slope {:.2})", slope.slope),
            pts.iter().map(|p| (p.0, p.1)),
        )
        .with_marker(Marker::LinePoints)
        .with_band(pts.iter().map(|p| (p.0, p.2, p.3)))
        .with_color(q);
        chart.push(series);
        let fit: Vec<(f64, f64)> = pts
            .iter()
            .map(|p| (p.0, (slope.intercept + slope.slope * p.0.ln()).exp()))
            .collect();
        chart.push(Series::line("", fit).dashed().with_color(q));
    }
    if let (Some(&w0), Some(first)) = (widths.first(), per_width(&s.results, widths, QUANTITIES[0].2).first()) {
        let theory: Vec<(f64, f64)> = widths
            .iter()
            .map(|&w| (w as f64, first.1 * (w as f64 / w0 as f64).powf(THEORY_SLOPE)))
            .collect();
        chart.push(
            Series::line("theory: slope -1/2 (through the first RMSE point)", theory)
                .dashed()
                .with_color(7),
        );
    }
    chart.save_png(&dir.figure("gaps_vs_width"))?;

    // Accuracy vs width.
    let mut acc = LineChart::new("Test accuracy vs. width", "width", "test accuracy (%)").log_x();
    for (label, f) in [
        (
            "full network",
            (|r: &WidthResult| r.accuracy_full) as fn(&WidthResult) -> f64,
        ),
        ("linearized network", |r| r.accuracy_linear),
        ("kernel (closed form)", |r| r.accuracy_kernel),
    ] {
        let pts = per_width(&s.results, widths, f);
        acc.push(Series::line(label, pts.iter().map(|p| (p.0, 100.0 * p.1))).with_marker(Marker::LinePoints));
    }
    acc.save_png(&dir.figure("accuracy_vs_width"))?;

    // RMSE over training, per width (first seed).
    let seed = s.config.seeds[0];
    let mut over = LineChart::new(
        "RMSE(full, linear) on test outputs during training",
        "training step",
        "RMSE",
    )
    .log_y();
    for r in s.results.iter().filter(|r| r.seed == seed) {
        over.push(Series::line(
            format!("width {}", r.width),
            r.rmse_over_training.iter().map(|&(k, v)| (k as f64, v)),
        ));
    }
    over.save_png(&dir.figure("rmse_over_training"))?;

    // Output trajectories for the smallest and largest width.
    for w in [widths.first(), widths.last()].into_iter().flatten() {
        if let Some(r) = s.results.iter().find(|r| r.width == *w && r.seed == seed) {
            let mut t = LineChart::new(
                &format!("Test outputs (true class) during training, width {w}"),
                "training step",
                "output",
            );
            let k = r.trajectories.first().map(|p| p.full.len()).unwrap_or(0);
            for i in 0..k {
                let steps = r.trajectories.iter().map(|p| p.step as f64);
                t.push(
                    Series::line(
                        format!("point {i}: full"),
                        steps.clone().zip(r.trajectories.iter().map(|p| p.full[i])),
                    )
                    .with_color(i),
                );
                t.push(
                    Series::line(
                        format!("point {i}: linearized"),
                        steps.clone().zip(r.trajectories.iter().map(|p| p.linear[i])),
                    )
                    .dashed()
                    .with_color(i),
                );
                t.push(
                    Series::points(
                        format!("point {i}: kernel closed form"),
                        steps.zip(r.trajectories.iter().map(|p| p.kernel[i])),
                    )
                    .with_color(i),
                );
            }
            t.save_png(&dir.figure(&format!("trajectories_width_{w}")))?;
        }
    }

    // NTK spectrum at init.
    let mut spec = LineChart::new(
        "NTK spectrum at initialization (training inputs)",
        "eigenvalue index",
        "eigenvalue of Θ_0 / N",
    )
    .log_x()
    .log_y();
    for r in s.results.iter().filter(|r| r.seed == seed) {
        spec.push(Series::line(
            format!("width {}", r.width),
            r.ntk_spectrum.iter().enumerate().map(|(i, &v)| ((i + 1) as f64, v)),
        ));
    }
    spec.save_png(&dir.figure("ntk_spectrum"))
}

/// A one-line progress summary of one width.
pub fn width_line(r: &WidthResult) -> String {
    format!(
        "width {:>5} seed {}: RMSE(full,lin) {:.3e}  Δθ/θ {:.3e}  ΔΘ/Θ {:.3e}  acc full/lin/kernel {:.1}/{:.1}/{:.1}%  ({:.1} s)",
        r.width,
        r.seed,
        r.rmse_full_linear,
        r.relative_parameter_change,
        r.relative_ntk_change,
        100.0 * r.accuracy_full,
        100.0 * r.accuracy_linear,
        100.0 * r.accuracy_kernel,
        r.seconds
    )
}

/// The human-readable table.
pub fn table(s: &CompareSummary) -> String {
    let mut t = String::new();
    t.push_str("| width | seed | params | RMSE(full,lin) | RMSE(lin,kernel) | Δθ/θ | ΔΘ/Θ | acc full | acc lin | acc kernel | s |\n");
    t.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in &s.results {
        t.push_str(&format!(
            "| {} | {} | {} | {:.3e} | {:.3e} | {:.3e} | {:.3e} | {:.1}% | {:.1}% | {:.1}% | {:.1} |\n",
            r.width,
            r.seed,
            r.parameters,
            r.rmse_full_linear,
            r.rmse_linear_kernel,
            r.relative_parameter_change,
            r.relative_ntk_change,
            100.0 * r.accuracy_full,
            100.0 * r.accuracy_linear,
            100.0 * r.accuracy_kernel,
            r.seconds
        ));
    }
    t
}

/// The slope lines.
pub fn slope_lines(s: &CompareSummary) -> String {
    let local: Vec<String> = s
        .local_rmse_slopes
        .iter()
        .map(|(a, b, v)| format!("{a}->{b}: {v:+.2}"))
        .collect();
    let mut out: String = s
        .slopes
        .iter()
        .map(|sl| {
            format!(
                "slope of {} vs width: {:+.3} (theory {:+.1}; R² {:.3}) -> {}\n",
                sl.quantity,
                sl.slope,
                sl.theory,
                sl.r_squared,
                if sl.agrees { "agrees" } else { "disagrees" }
            )
        })
        .collect();
    out.push_str(&format!(
        "local slopes of RMSE(full, linear) between consecutive widths: {}\n",
        local.join(", ")
    ));
    out
}

/// Writes `summary.json`, `report.md` and the figures.
pub fn write_report(dir: &RunDir, s: &CompareSummary) -> Result<()> {
    write_json(&dir.summary_json(), s)?;
    plot_summary(dir, s)?;
    let c = &s.config;
    let md = format!(
        "# ntk_compare: full network vs. linearization\n\n\
         MLP with {} hidden layers ({}, {:?} parameterization, W_std = {}, b_std = {}), MSE on one-hot targets, \
         {} train / {} test examples, {} steps of SGD (batch {}), learning rate {:.4} ({}), seeds {:?}.\n\n\
         {}\n\
         ## Slopes against width (Lee et al. 2019: O(width^-1/2))\n\n```\n{}```\n\n**Verdict:** {}\n\n\
         ## Figures\n\n![gaps](figures/gaps_vs_width.png)\n![accuracy](figures/accuracy_vs_width.png)\n\
         ![rmse over training](figures/rmse_over_training.png)\n![spectrum](figures/ntk_spectrum.png)\n",
        c.depth,
        c.activation.name(),
        c.parameterization,
        c.w_std,
        c.b_std,
        s.train_size,
        s.test_size,
        c.steps,
        c.batch_size.unwrap_or(s.train_size),
        s.lr,
        s.lr_source,
        c.seeds,
        table(s),
        slope_lines(s),
        s.verdict
    );
    write_text(&dir.report_md(), &md)
}

/// Result file of one (width, seed), so an interrupted sweep resumes.
pub fn result_path(dir: &RunDir, width: usize, seed: u64) -> std::path::PathBuf {
    dir.file(&format!("results/width_{width}_seed_{seed}.json"))
}
