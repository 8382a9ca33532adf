//! One (width, seed) of the sweep: the network and its linearization
//! trained side by side, the kernels, the learning rate and what is measured.

#[allow(unused_imports)]
use candle_core::Device;

use super::*;

/// One output trajectory point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryPoint {
    pub step: usize,
    /// Outputs (of each tracked test point's true class): full net, linearized
    /// net, traced-kernel closed form.
    pub full: Vec<f64>,
    pub linear: Vec<f64>,
    pub kernel: Vec<f64>,
}

/// Where a dense layer sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerRole {
    Input,
    Hidden,
    Output,
}

/// The relative change of one weight matrix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerChange {
    /// Parameter name.
    pub name: String,
    pub role: LayerRole,
    /// `‖W_l,0‖_F`.
    pub init_norm: f64,
    /// `‖W_l,T − W_l,0‖_F / ‖W_l,0‖_F`.
    pub relative_change: f64,
}

/// How the linearized network was followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinearMethod {
    /// Exact closed form from the full NTK at init (full-batch GD).
    ClosedForm,
    /// Trained step by step (mini-batch SGD).
    Trained,
}

/// Wall time of one (width, seed), in seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// NTKs at init and at the end, and the traced-kernel closed form.
    pub kernels: f64,
    /// Training the network.
    pub full: f64,
    /// The linearized network (closed form or training).
    pub linear: f64,
    pub total: f64,
}

/// What a finished (width, seed) measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurements {
    /// RMSE between full and linearized test outputs at the end.
    pub rmse_full_linear: f64,
    /// The same at each evaluation step.
    pub rmse_over_training: Vec<(usize, f64)>,
    /// RMSE between the linearized network and the traced-kernel closed form at the end.
    pub rmse_linear_kernel: f64,
    /// `‖θ_T − θ_0‖ / ‖θ_0‖` of the full network.
    pub relative_parameter_change: f64,
    /// `‖θ_0‖`.
    pub init_param_norm: f64,
    /// Per weight matrix, input layer first.
    pub layers: Vec<LayerChange>,
    /// `‖Θ_T − Θ_0‖_F / ‖Θ_0‖_F`, traced NTK on the training inputs.
    pub relative_ntk_change: f64,
    /// `‖Θ̂_0 − Θ_∞‖_F / ‖Θ_∞‖_F` on the training inputs (traced empirical vs.
    /// analytic NTK at init); `None` without a closed form (tanh).
    pub ntk_vs_analytic: Option<f64>,
    pub accuracy_full: f64,
    pub accuracy_linear: f64,
    pub accuracy_kernel: f64,
    pub initial_train_loss: f64,
    pub final_train_loss_full: f64,
    pub final_train_loss_linear: f64,
    /// Eigenvalues of `Θ_0 / N` (traced) on the training inputs, descending.
    pub ntk_spectrum: Vec<f64>,
    pub trajectories: Vec<TrajectoryPoint>,
}

/// The outcome of one (width, seed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Measured(Box<Measurements>),
    /// A model's train loss became infinite or NaN at `step`, or (for the
    /// linearization) grew without bound because the rate is above its stable
    /// rate `2N/λ_max`: a measured outcome, not an abort.
    Diverged {
        /// Which model: the network or its linearization.
        #[serde(default)]
        model: Diverging,
        step: usize,
        /// The loss there; `None` when it was not finite (JSON has no inf/NaN).
        loss: Option<f32>,
    },
}

/// Which model of a (width, seed) diverged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Diverging {
    #[default]
    Network,
    Linearization,
}

impl Diverging {
    pub(super) fn word(self) -> &'static str {
        match self {
            Diverging::Network => "network",
            Diverging::Linearization => "linearization",
        }
    }
}

/// One width and seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WidthResult {
    pub width: usize,
    pub seed: u64,
    pub parameters: usize,
    /// Largest eigenvalue of the full NTK at init on the training inputs.
    pub lambda_max_init: f64,
    pub linearization: LinearMethod,
    pub outcome: Outcome,
    pub timings: Timings,
}

impl WidthResult {
    /// The measurements, unless the run diverged.
    pub fn measured(&self) -> Option<&Measurements> {
        match &self.outcome {
            Outcome::Measured(m) => Some(m),
            Outcome::Diverged { .. } => None,
        }
    }
}

/// Mean, spread and extremes of one quantity at one width.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WidthStat {
    pub width: usize,
    /// Seeds measured.
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation over seeds (0 with one seed).
    pub sd: f64,
    pub min: f64,
    pub max: f64,
}

/// One quantity's width dependence and its check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantityFit {
    pub key: String,
    pub label: String,
    /// The bound's exponent the verdict checks (`None` when it could not be computed).
    pub bound: Option<f64>,
    /// Where the bound comes from.
    pub source: String,
    /// Reference rates (label, exponent) for "which rate the data favour".
    pub references: Vec<(String, f64)>,
    /// Whether the verdict is fitted on linear-regime widths only.
    pub regime_only: bool,
    pub per_width: Vec<WidthStat>,
    /// Fit over the widths the verdict uses.
    pub fit: Option<PowerFit>,
    /// Fit over every width.
    pub fit_all: Option<PowerFit>,
    pub claim: Claim,
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
    /// Widths in the linear regime (the pilot seed's ΔΘ/Θ below the threshold).
    pub regime_widths: Vec<usize>,
    /// The pilot seed that chose the regime and is left out of the regime
    /// claims' tests (`None`: one seed, and those claims are untestable).
    #[serde(default)]
    pub regime_seed: Option<u64>,
    pub quantities: Vec<QuantityFit>,
    /// Slopes of mean RMSE(full, linear) between consecutive widths.
    pub local_rmse_slopes: Vec<(usize, usize, f64)>,
    /// The function-gap claim, in one line (the headline).
    pub verdict: String,
}

impl CompareSummary {
    /// Every claim, function gap first.
    pub fn claims(&self) -> Vec<Claim> {
        self.quantities.iter().map(|q| q.claim.clone()).collect()
    }
}

pub(super) fn outputs(m: &mut dyn Trainable, p: &ParamSet, d: &Dataset) -> Result<Vec<f32>> {
    let mut o = Vec::new();
    m.predict(p, &d.x, d.len(), &mut o)?;
    Ok(o)
}

pub(super) fn targets(d: &Dataset) -> Vec<f32> {
    let c = d.target_dim;
    let mut y = vec![0.0f32; d.len() * c];
    for i in 0..d.len() {
        d.target_row(i, &mut y[i * c..(i + 1) * c]);
    }
    y
}

pub(super) fn rmse<A: Copy + Into<f64>, B: Copy + Into<f64>>(a: &[A], b: &[B]) -> f64 {
    let s: f64 = a.iter().zip(b).map(|(&x, &y)| (x.into() - y.into()).powi(2)).sum();
    (s / a.len().max(1) as f64).sqrt()
}

pub(super) fn accuracy<T: Copy + Into<f64>>(out: &[T], labels: &[u32], c: usize) -> f64 {
    let f: Vec<f32> = out.iter().map(|&v| v.into() as f32).collect();
    argmax_rows(&f, c)
        .zip(labels)
        .filter(|(p, &l)| *p == l as usize)
        .count() as f64
        / labels.len().max(1) as f64
}

/// `(1/2N) Σ ‖f − y‖²` of outputs against targets.
pub(super) fn mse_loss(f: &[f64], y: &[f32], n: usize) -> f64 {
    0.5 * f.iter().zip(y).map(|(&a, &b)| (a - b as f64).powi(2)).sum::<f64>() / n.max(1) as f64
}

/// The analytic NTK on `x` (`[n, d]`) for the network of width `w`, where it
/// has a closed form (not tanh).
pub(super) fn analytic_ntk(cfg: &CompareConfig, x: &[f32], n: usize, d: usize, w: usize) -> Result<Option<Vec<f64>>> {
    let Ok(inf) = InfiniteMlp::new(cfg.depth + 1, cfg.activation, cfg.w_std as f64, cfg.b_std as f64) else {
        return Ok(None);
    };
    let k = match cfg.parameterization {
        Parameterization::Ntk => inf.kernels(x, n, x, n, d)?,
        Parameterization::Standard => inf.kernels_standard(&vec![w; cfg.depth], x, n, x, n, d)?,
    };
    Ok(Some(k.ntk))
}

/// The full NTK of `mlp` at `p` between `a` and `b`, on `device`.
pub(super) fn full_kernel(device: &Device, mlp: &Mlp, p: &ParamSet, a: &Dataset, b: &Dataset) -> Result<Kernel> {
    kernel_on(device, mlp, p, a, b, KernelKind::Full)
}

/// The structured NTK on the CPU's hand-written kernel or on a device.
fn kernel_on(device: &Device, mlp: &Mlp, p: &ParamSet, a: &Dataset, b: &Dataset, kind: KernelKind) -> Result<Kernel> {
    if device.is_cpu() {
        mlp_ntk(mlp, p, &a.x, a.len(), &b.x, b.len(), kind, None, 256)
    } else {
        crate::ntk::device::mlp_ntk_on(device, mlp, p, &a.x, a.len(), &b.x, b.len(), kind, None, 1024)
    }
}

/// The full train NTK at init of one (width, seed) and its largest eigenvalue.
pub type InitKernel = (Kernel, f64);

/// The learning-rate choice, with the init kernels it computed kept for
/// [`run_width_with`] (so each is computed once) while they fit in
/// [`KERNEL_CACHE_BYTES`].
#[derive(Debug, Default)]
pub struct LrChoice {
    pub lr: f64,
    /// How the rate was chosen, in words.
    pub source: String,
    init: std::collections::BTreeMap<(usize, u64), InitKernel>,
}

impl LrChoice {
    /// The cached init kernel of (width, seed), if any (removed from the cache).
    pub fn take_init(&mut self, width: usize, seed: u64) -> Option<InitKernel> {
        self.init.remove(&(width, seed))
    }
}

/// Most memory the learning-rate pass keeps in init kernels for reuse.
pub const KERNEL_CACHE_BYTES: usize = 1 << 30;

/// The learning rate to use: the configured one, or `N / λ_max`, with
/// `λ_max` the largest eigenvalue of the full NTK at init over every width
/// and seed, and of the infinite-width NTK where it has a closed form (NTK
/// parameterization). Full-batch GD on the linearized network is stable below
/// `2N / λ_max`, so this is half the largest rate that is stable for every
/// network of the sweep at init.
pub fn choose_lr(cfg: &CompareConfig, split: &Split) -> Result<LrChoice> {
    choose_lr_on(cfg, split, &Device::Cpu)
}

/// [`choose_lr`] with the kernels computed on `device`.
pub fn choose_lr_on(cfg: &CompareConfig, split: &Split, device: &Device) -> Result<LrChoice> {
    if let Some(lr) = cfg.lr {
        return Ok(LrChoice {
            lr,
            source: "configured".into(),
            ..Default::default()
        });
    }
    let tr = &split.train;
    let n = tr.len();
    let mut lam: f64 = 0.0;
    let mut which = String::new();
    if cfg.parameterization == Parameterization::Ntk {
        if let Some(k) = analytic_ntk(cfg, &tr.x, n, tr.dim(), 0)? {
            lam = spectrum::eigenvalues(&k, n)?[0];
            which = "infinite width".into();
        }
    }
    let mut init = std::collections::BTreeMap::new();
    let mut cached = 0usize;
    for &w in &cfg.widths {
        let mlp = cfg.mlp(tr.dim(), tr.num_classes, w)?;
        for &seed in &cfg.seeds {
            let p = Network::Mlp(mlp.clone()).init(seed);
            let k = full_kernel(device, &mlp, &p, tr, tr)?;
            let l = spectrum::largest_eigenvalue(&k.data, k.rows)?;
            if l > lam {
                lam = l;
                which = format!("width {w}, seed {seed}");
            }
            let bytes = k.data.len() * std::mem::size_of::<f32>();
            if cached + bytes <= KERNEL_CACHE_BYTES {
                cached += bytes;
                init.insert((w, seed), (k, l));
            }
        }
    }
    if !(lam > 0.0 && lam.is_finite()) {
        return Err(Error::invalid("largest NTK eigenvalue", "> 0", lam));
    }
    Ok(LrChoice {
        lr: n as f64 / lam,
        source: format!("N/λ_max = {n}/{lam:.1}, λ_max of the full NTK at init ({which})"),
        init,
    })
}

/// Trains width `width` from `seed` and measures everything.
pub fn run_width(
    cfg: &CompareConfig,
    split: &Split,
    width: usize,
    seed: u64,
    lr: f64,
    progress: bool,
) -> Result<WidthResult> {
    run_width_with(cfg, split, width, seed, lr, progress, None)
}

/// [`run_width`] reusing the full train NTK at init and its largest
/// eigenvalue when the learning-rate pass computed them ([`LrChoice::take_init`]).
pub fn run_width_with(
    cfg: &CompareConfig,
    split: &Split,
    width: usize,
    seed: u64,
    lr: f64,
    progress: bool,
    init: Option<InitKernel>,
) -> Result<WidthResult> {
    run_width_on(cfg, split, width, seed, lr, progress, init, &Device::Cpu)
}

/// [`run_width_with`] on `device`: the network trains there (device-resident)
/// and the kernels are computed there; the closed-form linear dynamics
/// (eigendecompositions) and the trained linearization stay on the CPU.
#[allow(clippy::too_many_arguments)]
pub fn run_width_on(
    cfg: &CompareConfig,
    split: &Split,
    width: usize,
    seed: u64,
    lr: f64,
    progress: bool,
    init: Option<InitKernel>,
    device: &Device,
) -> Result<WidthResult> {
    let start = std::time::Instant::now();
    let (tr, te) = (&split.train, &split.test);
    let (n, c) = (tr.len(), tr.num_classes);
    let mlp = cfg.mlp(tr.dim(), c, width)?;
    let net = Network::Mlp(mlp.clone());
    let theta0 = net.init(seed);
    let eval_steps = cfg.eval_steps();
    let batch_size = cfg.batch_size.unwrap_or(n);
    let method = if batch_size >= n {
        LinearMethod::ClosedForm
    } else {
        LinearMethod::Trained
    };
    let mut timings = Timings::default();

    // Kernels at init: full (exact dynamics, λ_max) and traced (spectrum, approximation).
    let t = std::time::Instant::now();
    let (full_tr, lambda_max_init) = match init {
        Some((k, l)) if k.rows == n * c && k.cols == n * c => (k, l),
        _ => {
            let k = full_kernel(device, &mlp, &theta0, tr, tr)?;
            let l = spectrum::largest_eigenvalue(&k.data, k.rows)?;
            (k, l)
        }
    };
    let theta_tr = full_tr.traced(c)?;
    let full_te = full_kernel(device, &mlp, &theta0, te, tr)?;
    let theta_te = full_te.traced(c)?;
    timings.kernels += t.elapsed().as_secs_f64();

    let spec = cfg.sgd_spec(lr, batch_size, seed);
    let opts = TrainOptions {
        progress,
        ..Default::default()
    };
    // A divergence ends this (width, seed) as a measured outcome.
    let diverged = |model: Diverging, step: usize, loss: f64, mut timings: Timings| {
        timings.total = start.elapsed().as_secs_f64();
        WidthResult {
            width,
            seed,
            parameters: theta0.numel(),
            lambda_max_init,
            linearization: method,
            outcome: Outcome::Diverged {
                model,
                step,
                loss: Some(loss as f32).filter(|l| l.is_finite()),
            },
            timings,
        }
    };
    let t = std::time::Instant::now();
    let mut full = Supervised::new(net.clone(), Loss::Mse, device);
    let out_full = match train::train(&mut full, &theta0, split, &spec, &opts) {
        Ok(o) => o,
        Err(Error::Diverged { step, loss }) => {
            timings.full = t.elapsed().as_secs_f64();
            return Ok(diverged(Diverging::Network, step, loss as f64, timings));
        }
        Err(e) => return Err(e),
    };
    timings.full = t.elapsed().as_secs_f64();

    // The linearized network's test outputs at every evaluation step, and its
    // final train loss.
    let t = std::time::Instant::now();
    let y_tr = targets(tr);
    let f0_tr = outputs(&mut full, &theta0, tr)?;
    let f0_te = outputs(&mut full, &theta0, te)?;
    let linear_diverged = |step: usize, loss: f64, mut timings: Timings| {
        timings.linear = t.elapsed().as_secs_f64();
        diverged(Diverging::Linearization, step, loss, timings)
    };
    let initial_loss = mse_loss(&f0_tr.iter().map(|&v| v as f64).collect::<Vec<_>>(), &y_tr, n);
    let (lin_test, final_train_loss_linear): (Vec<Vec<f64>>, f64) = match method {
        LinearMethod::ClosedForm => {
            let snaps = exact_linear_gd(&full_tr, &full_te, &f0_tr, &f0_te, &y_tr, n, lr, &eval_steps)?;
            // Above the stable rate the residual grows geometrically: report
            // the first evaluation step where the loss is non-finite or 1000×
            // its initial value.
            for snap in &snaps {
                let loss = mse_loss(&snap.train, &y_tr, n);
                if !loss.is_finite() || loss > 1e3 * initial_loss.max(f64::MIN_POSITIVE) {
                    return Ok(linear_diverged(snap.step, loss, timings));
                }
            }
            let last = &snaps[snaps.len() - 1];
            let loss = mse_loss(&last.train, &y_tr, n);
            (snaps.into_iter().map(|s| s.test).collect(), loss)
        }
        LinearMethod::Trained => {
            let mut lin = Linearized::new(mlp.clone(), theta0.clone(), Loss::Mse)?;
            let out_lin = match train::train(&mut lin, &theta0, split, &spec, &opts) {
                Ok(o) => o,
                Err(Error::Diverged { step, loss }) => return Ok(linear_diverged(step, loss as f64, timings)),
                Err(e) => return Err(e),
            };
            let mut v = Vec::with_capacity(eval_steps.len());
            for s in &eval_steps {
                v.push(
                    outputs(&mut lin, &out_lin.checkpoints[s], te)?
                        .iter()
                        .map(|&x| x as f64)
                        .collect(),
                );
            }
            let loss = train::evaluate(&mut lin, &out_lin.params, tr, 1024)?.loss;
            (v, loss)
        }
    };
    timings.linear = t.elapsed().as_secs_f64();

    let t = std::time::Instant::now();
    let dynamics = KernelDynamics::new(&theta_tr, &f0_tr, &y_tr, c)?;
    let k = cfg.trajectory_points.min(te.len());
    let mut trajectories = Vec::new();
    let mut rmse_over_training = Vec::new();
    for (s, fl) in eval_steps.iter().zip(&lin_test) {
        let ff = outputs(&mut full, &out_full.checkpoints[s], te)?;
        let fk = dynamics.test_outputs(&theta_te, &f0_te, lr, *s)?;
        rmse_over_training.push((*s, rmse(&ff, fl)));
        let pick = |o: &dyn Fn(usize) -> f64| (0..k).map(o).collect::<Vec<f64>>();
        trajectories.push(TrajectoryPoint {
            step: *s,
            full: pick(&|i| ff[i * c + te.labels[i] as usize] as f64),
            linear: pick(&|i| fl[i * c + te.labels[i] as usize]),
            kernel: pick(&|i| fk[i * c + te.labels[i] as usize]),
        });
    }
    let ff = outputs(&mut full, &out_full.params, te)?;
    let fl = &lin_test[lin_test.len() - 1];
    let fk = dynamics.test_outputs(&theta_te, &f0_te, lr, cfg.steps)?;
    let theta_end = kernel_on(device, &mlp, &out_full.params, tr, tr, KernelKind::Traced)?;
    let ntk_vs_analytic = match analytic_ntk(cfg, &tr.x, n, tr.dim(), width)? {
        Some(inf) => {
            let inf = Kernel {
                data: inf.iter().map(|&v| v as f32).collect(),
                rows: n,
                cols: n,
                kind: KernelKind::Traced,
            };
            Some(inf.relative_distance(&theta_tr)?)
        }
        None => None,
    };
    timings.kernels += t.elapsed().as_secs_f64();

    let layers = mlp
        .layers()
        .iter()
        .enumerate()
        .map(|(l, _)| -> Result<LayerChange> {
            let name = mlp.layer_names(l).0.to_string();
            let (w0, wt) = (theta0.get(&name)?, out_full.params.get(&name)?);
            let init_norm = w0.data.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            let diff = w0
                .data
                .iter()
                .zip(&wt.data)
                .map(|(&a, &b)| ((b - a) as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            let role = if l == 0 {
                LayerRole::Input
            } else if l == cfg.depth {
                LayerRole::Output
            } else {
                LayerRole::Hidden
            };
            Ok(LayerChange {
                name,
                role,
                init_norm,
                relative_change: diff / init_norm.max(f64::MIN_POSITIVE),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let loss_on = |m: &mut dyn Trainable, p: &ParamSet| -> Result<f64> { Ok(train::evaluate(m, p, tr, 1024)?.loss) };
    let m = Measurements {
        rmse_full_linear: rmse(&ff, fl),
        rmse_over_training,
        rmse_linear_kernel: rmse(fl, &fk),
        relative_parameter_change: out_full.params.sub(&theta0)?.l2_norm() / theta0.l2_norm(),
        init_param_norm: theta0.l2_norm(),
        layers,
        relative_ntk_change: theta_tr.relative_distance(&theta_end)?,
        ntk_vs_analytic,
        accuracy_full: accuracy(&ff, &te.labels, c),
        accuracy_linear: accuracy(fl, &te.labels, c),
        accuracy_kernel: accuracy(&fk, &te.labels, c),
        initial_train_loss: loss_on(&mut full, &theta0)?,
        final_train_loss_full: loss_on(&mut full, &out_full.params)?,
        final_train_loss_linear,
        ntk_spectrum: dynamics.eigenvalues.iter().map(|&l| l / n as f64).collect(),
        trajectories,
    };
    timings.total = start.elapsed().as_secs_f64();
    Ok(WidthResult {
        width,
        seed,
        parameters: theta0.numel(),
        lambda_max_init,
        linearization: method,
        outcome: Outcome::Measured(Box::new(m)),
        timings,
    })
}
