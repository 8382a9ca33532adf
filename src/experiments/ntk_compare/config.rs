//! The `ntk_compare` config: its flat TOML (the same fields as its flags),
//! defaults and checks.

#[allow(unused_imports)]
use super::*;

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
    /// Init seeds (one run per width and seed); the data order uses the same
    /// seed. Default 0, 1, 2: the first chooses the linear regime (the pilot)
    /// and the others test the claims there.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// A width is in the linear (lazy) regime when the relative NTK change
    /// `||Θ_T − Θ_0||_F / ||Θ_0||_F` of the pilot seed (the first) is below
    /// this. The verdicts are tested on those widths with the other seeds. Default 0.1: the linearization
    /// replaces Θ_t by Θ_0, so its error is first order in their difference;
    /// at 10% the kernel the theory assumes constant is constant to one
    /// significant digit.
    #[serde(default = "default_regime")]
    pub regime_ntk_change: f64,
    /// Evaluation points along training (log-spaced).
    #[serde(default = "default_eval_points")]
    pub eval_points: usize,
    /// Test points whose output trajectories are plotted.
    #[serde(default = "default_traj")]
    pub trajectory_points: usize,
}

pub(super) fn default_name() -> String {
    "ntk_compare".into()
}
pub(super) fn default_widths() -> Vec<usize> {
    vec![64, 128, 256, 512, 1024, 2048]
}
pub(super) fn default_depth() -> usize {
    2
}
pub(super) fn default_activation() -> Activation {
    Activation::Relu
}
pub(super) fn default_parameterization() -> Parameterization {
    Parameterization::Ntk
}
pub(super) fn default_w_std() -> f32 {
    std::f32::consts::SQRT_2
}
pub(super) fn default_b_std() -> f32 {
    0.1
}
pub(super) fn default_data() -> DataConfig {
    DataConfig {
        train_size: Some(256),
        test_size: Some(256),
        ..DataConfig::default()
    }
}
pub(super) fn default_steps() -> usize {
    500
}
pub(super) fn default_seeds() -> Vec<u64> {
    vec![0, 1, 2]
}
pub(super) fn default_regime() -> f64 {
    0.1
}
pub(super) fn default_eval_points() -> usize {
    12
}
pub(super) fn default_traj() -> usize {
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
        crate::paths::check_run_name("run name (`name`, or --name)", &self.name)?;
        if self.batch_size == Some(0) {
            return Err(Error::config("batch_size", "at least 1 (or none: full batch)", 0));
        }
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
        let mut sorted = self.seeds.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::config("seeds", "distinct seeds", format!("{:?}", self.seeds)));
        }
        if !(self.regime_ntk_change.is_finite() && self.regime_ntk_change > 0.0) {
            return Err(Error::config(
                "regime_ntk_change",
                "a finite value > 0",
                self.regime_ntk_change,
            ));
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

    /// The training of every (width, seed): plain SGD at rate `lr` (no
    /// momentum or weight decay, constant schedule, the data order from
    /// `seed`) for `steps` steps, with checkpoints at the evaluation steps.
    pub fn sgd_spec(&self, lr: f64, batch_size: usize, seed: u64) -> TrainSpec {
        TrainSpec {
            optimizer: OptimizerConfig::Sgd(SgdConfig {
                lr,
                momentum: 0.0,
                weight_decay: 0.0,
                nesterov: false,
            }),
            schedule: Schedule::default(),
            batch_size,
            steps: self.steps,
            eval_every: 0,
            eval_chunk: 1024,
            checkpoint_steps: self.eval_steps(),
            save_every: 0,
            data_seed: seed,
            augment: Default::default(),
        }
    }

    /// Log-spaced evaluation steps from 0 to `steps`.
    /// A lower bound of the memory one (width, seed) of the widest network
    /// holds: its parameters (initial, trained, gradients and one copy per
    /// evaluation step), the full train and test NTKs and the layer features
    /// of the structured kernel; checked against the available memory before
    /// anything is allocated.
    pub fn memory_estimate(&self, split: &Split) -> Result<crate::memory::Estimate> {
        let w = self.widths.iter().copied().max().unwrap_or(0);
        let (n, m, c) = (
            split.train.len() as u64,
            split.test.len() as u64,
            split.train.num_classes as u64,
        );
        let mlp = self.mlp(split.train.dim(), split.train.num_classes, w)?;
        let p = crate::memory::parameter_count(mlp.param_shapes().iter().map(|(_, s)| s));
        let copies = 3 + self.eval_steps().len() as u64;
        let nc = n.saturating_mul(c);
        Ok(crate::memory::Estimate::default()
            .add(
                format!("{p} parameters × {copies} copies at width {w}"),
                p.saturating_mul(copies),
                4,
            )
            .add(
                "train and test NTKs",
                nc.saturating_mul(nc.saturating_add(m.saturating_mul(c))),
                4,
            )
            .add(
                "layer features",
                (n + m)
                    .saturating_mul(w as u64)
                    .saturating_mul(self.depth as u64)
                    .saturating_mul(c),
                4,
            ))
    }

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
