//! Learning rate, late resetting and stability (`ltk lr-rewind`): IMP with
//! rewinding to k = 0 and to k > 0 at several learning-rate settings (e.g. a
//! low rate, a high rate, the high rate with warmup), with the instability of
//! each subnetwork alongside.
//!
//! What the papers report, and what is checked:
//! - Frankle & Carbin 2019 (Sec. 4, VGG-19 and ResNet-18 on CIFAR-10): at the
//!   higher learning rate IMP with rewinding to initialization finds no
//!   matching ticket, while at a lower rate or with warmup it does.
//! - Frankle et al. 2019/2020 ("late resetting", Sec. 4 of "Linear mode
//!   connectivity and the lottery ticket hypothesis"): rewinding to weights
//!   from early in training (k > 0) recovers matching tickets, and IMP
//!   subnetworks are matching only when they are stable to SGD noise.
//!
//! Procedure: for each setting, exactly the per-k IMP mode of the LMC
//! experiment ([`crate::lmc`], `[lmc.imp]`) with the setting's learning rate
//! and warmup: a dense parent, IMP with rewinding to each k down to the
//! target density, and pairs of children spawned from the subnetwork at k
//! (instability = error barrier). A subnetwork is *matching* when its mean
//! endpoint accuracy is at least the same setting's dense mean minus one
//! standard deviation. Each setting's LMC analysis is written to its own
//! subdirectory, with its figures.

use serde::{Deserialize, Serialize};

use crate::config::Experiment;
use crate::experiment::UnitEnv;
use crate::lmc::{self, Lmc, LmcConfig, LmcImpConfig, LmcRecord, LmcSummary, LmcUnit};
use crate::paths::{write_text, RunDir};
use crate::prune::PruneSpec;
use crate::train::Schedule;
use crate::verdict::{self, Claim, Verdict};
use crate::{Error, Result};

/// One learning-rate setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrSetting {
    /// A short, file-name-safe name (e.g. "low", "high_warmup").
    pub name: String,
    /// Base learning rate.
    pub lr: f64,
    /// Linear warmup steps (replacing the base schedule's).
    #[serde(default)]
    pub warmup_steps: usize,
}

/// `[lr_rewind]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrRewindConfig {
    pub settings: Vec<LrSetting>,
    /// Rewinding steps (0 = initialization).
    pub ks: Vec<usize>,
    /// Target densities of the IMP subnetworks.
    pub densities: Vec<f64>,
    /// Pairs of children per subnetwork (instability).
    #[serde(default = "default_pairs")]
    pub pairs: usize,
    /// Interpolation points.
    #[serde(default = "default_points")]
    pub points: usize,
    /// Pruning per IMP round (default: 20% layer-wise magnitude, output layer at half rate).
    #[serde(default)]
    pub prune: PruneSpec,
    /// Also analyse a random pruning of the same per-layer density.
    #[serde(default)]
    pub random_control: bool,
}

fn default_pairs() -> usize {
    2
}
fn default_points() -> usize {
    11
}

impl Default for LrRewindConfig {
    fn default() -> Self {
        LrRewindConfig {
            settings: vec![
                LrSetting {
                    name: "low".into(),
                    lr: 0.01,
                    warmup_steps: 0,
                },
                LrSetting {
                    name: "high".into(),
                    lr: 0.1,
                    warmup_steps: 0,
                },
            ],
            ks: vec![0, 20],
            densities: vec![0.2],
            pairs: default_pairs(),
            points: default_points(),
            prune: PruneSpec::default(),
            random_control: false,
        }
    }
}

impl LrRewindConfig {
    /// The LMC config of every setting (the same for all).
    fn lmc(&self) -> LmcConfig {
        LmcConfig {
            ks: self.ks.clone(),
            pairs: self.pairs,
            points: self.points,
            train_eval_size: 0,
            inherit_optimizer_state: false,
            mask: None,
            sparse_density: None,
            imp: Some(LmcImpConfig {
                densities: self.densities.clone(),
                prune: self.prune.clone(),
                random_control: self.random_control,
            }),
        }
    }

    /// Errors on no setting, a repeated or unsafe name, a rate that is not
    /// positive, a warmup past the run, and whatever the LMC plan refuses.
    pub fn validate(&self, exp: &Experiment) -> Result<()> {
        if self.settings.is_empty() {
            return Err(Error::config("lr_rewind.settings", "at least one setting", "[]"));
        }
        let mut names: Vec<&str> = self.settings.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::config("lr_rewind.settings.name", "distinct names", w[0]));
        }
        for s in &self.settings {
            if s.name.is_empty()
                || !s
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(Error::config(
                    "lr_rewind.settings.name",
                    "letters, digits, _ or -",
                    &s.name,
                ));
            }
            if !(s.lr > 0.0 && s.lr.is_finite()) {
                return Err(Error::config("lr_rewind.settings.lr", "a finite rate > 0", s.lr));
            }
            if s.warmup_steps >= exp.spec.steps {
                return Err(Error::config(
                    "lr_rewind.settings.warmup_steps",
                    format!("< {} (the run length)", exp.spec.steps),
                    s.warmup_steps,
                ));
            }
        }
        self.lmc().plan(exp).map(|_| ())
    }
}

/// The base experiment with a setting's learning rate and warmup.
fn with_setting(exp: &Experiment, s: &LrSetting) -> Experiment {
    let mut e = exp.clone();
    e.spec.optimizer = e.spec.optimizer.with_lr(s.lr);
    e.spec.schedule = match &e.spec.schedule {
        Schedule::Constant { .. } => Schedule::Constant {
            warmup_steps: s.warmup_steps,
        },
        Schedule::Step { milestones, gamma, .. } => Schedule::Step {
            milestones: milestones.clone(),
            gamma: *gamma,
            warmup_steps: s.warmup_steps,
        },
    };
    e
}

/// The experiment on the layer: the units of every setting's LMC analysis.
pub struct LrRewind;

/// A unit: one LMC unit of one setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrRewindUnit {
    pub setting: String,
    pub unit: LmcUnit,
}

/// A setting whose dense networks' accuracies spread by more than this (sd)
/// does not train reliably: matching against it is undefined (its cells
/// show "–" and are left out of the verdict, which names them).
pub const DENSE_SD_LIMIT: f64 = 0.05;

/// One (setting, k, density) cell of the result table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub setting: String,
    pub lr: f64,
    pub warmup_steps: usize,
    pub k: usize,
    pub density: f64,
    /// Mean endpoint accuracy of the IMP subnetwork's pairs.
    pub accuracy: f64,
    /// Mean instability of the IMP subnetwork (error barrier).
    pub instability: f64,
    pub stable: bool,
    /// The setting's dense mean and sd; matching = accuracy >= mean − sd.
    pub dense_mean: Option<f64>,
    pub dense_sd: Option<f64>,
    pub matching: Option<bool>,
    /// The dense network's instability at the same k.
    pub dense_instability: Option<f64>,
}

/// Every setting's LMC summary and the combined table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrRewindSummary {
    pub name: String,
    pub model: String,
    /// Seeds, run length and pairs, in words.
    pub regime: String,
    pub settings: Vec<LrSetting>,
    pub lmc: Vec<LmcSummary>,
    pub cells: Vec<Cell>,
}

fn setting_dir(dir: &RunDir, name: &str) -> Result<RunDir> {
    dir.child(&format!("setting_{name}"))
}

impl crate::experiment::Experiment for LrRewind {
    const NAME: &'static str = "lr_rewind";
    type Base = Experiment;
    type Config = LrRewindConfig;
    type Unit = LrRewindUnit;
    type Record = LmcRecord;
    type Summary = LrRewindSummary;

    fn units(exp: &Experiment, cfg: &LrRewindConfig) -> Result<Vec<LrRewindUnit>> {
        cfg.validate(exp)?;
        let mut out = Vec::new();
        for s in &cfg.settings {
            let e = with_setting(exp, s);
            for unit in <Lmc as crate::experiment::Experiment>::units(&e, &cfg.lmc())? {
                out.push(LrRewindUnit {
                    setting: s.name.clone(),
                    unit,
                });
            }
        }
        Ok(out)
    }
    fn unit_key(u: &LrRewindUnit) -> String {
        format!(
            "{}_{}",
            u.setting,
            <Lmc as crate::experiment::Experiment>::unit_key(&u.unit)
        )
    }
    fn run_unit(exp: &Experiment, cfg: &LrRewindConfig, u: &LrRewindUnit, env: &UnitEnv) -> Result<LmcRecord> {
        let s = cfg
            .settings
            .iter()
            .find(|s| s.name == u.setting)
            .ok_or_else(|| Error::config("lr_rewind.settings", "the unit's setting", &u.setting))?;
        let e = with_setting(exp, s);
        let dir = setting_dir(env.dir, &s.name)?;
        let sub = UnitEnv {
            device: env.device,
            progress: env.progress,
            dir: &dir,
            resume: env.resume,
        };
        if env.progress {
            eprintln!(
                "setting {} (lr {}, warmup {}): {:?}",
                s.name, s.lr, s.warmup_steps, u.unit
            );
        }
        <Lmc as crate::experiment::Experiment>::run_unit(&e, &cfg.lmc(), &u.unit, &sub)
    }
    fn summarize(exp: &Experiment, cfg: &LrRewindConfig, records: Vec<LmcRecord>) -> Result<LrRewindSummary> {
        let units = Self::units(exp, cfg)?;
        let mut lmcs = Vec::new();
        let mut cells = Vec::new();
        for s in &cfg.settings {
            let recs: Vec<LmcRecord> = units
                .iter()
                .zip(&records)
                .filter(|(u, _)| u.setting == s.name)
                .map(|(_, r)| r.clone())
                .collect();
            let e = with_setting(exp, s);
            let l = <Lmc as crate::experiment::Experiment>::summarize(&e, &cfg.lmc(), recs)?;
            let thr = lmc::matching_threshold(&l);
            for ks in l.per_k.iter().filter(|k| k.network == "imp") {
                let dense = l.per_k.iter().find(|d| d.network == "dense" && d.k == ks.k);
                cells.push(Cell {
                    setting: s.name.clone(),
                    lr: s.lr,
                    warmup_steps: s.warmup_steps,
                    k: ks.k,
                    density: ks.density.unwrap_or(f64::NAN),
                    accuracy: ks.accuracy,
                    instability: ks.mean,
                    stable: ks.stable,
                    dense_mean: thr.map(|t| t.0),
                    dense_sd: thr.map(|t| t.1),
                    matching: thr.filter(|t| t.1 <= DENSE_SD_LIMIT).map(|t| ks.accuracy >= t.2),
                    dense_instability: dense.map(|d| d.mean),
                });
            }
            lmcs.push(l);
        }
        Ok(LrRewindSummary {
            name: exp.config.name.clone(),
            model: exp.net.describe(),
            regime: format!(
                "init seed {}, data seed {} (children: seeds derived from it), {} steps of batch {} on {}, {} pair(s) of children per subnetwork, {} interpolation points, IMP {} per round",
                exp.config.seed,
                exp.spec.data_seed,
                exp.spec.steps,
                exp.spec.batch_size,
                exp.split.train.name,
                cfg.pairs,
                cfg.points,
                format!(
                    "{} at rate {} ({:?}{})",
                    cfg.prune.criterion.name(),
                    cfg.prune.rate,
                    cfg.prune.scope,
                    if cfg.prune.layer_rates.is_empty() {
                        String::new()
                    } else {
                        format!(", layer rates {:?}", cfg.prune.layer_rates)
                    }
                )
            ),
            settings: cfg.settings.clone(),
            lmc: lmcs,
            cells,
        })
    }
    fn write_report(dir: &RunDir, s: &LrRewindSummary) -> Result<()> {
        crate::paths::write_json(&dir.summary_json(), s)?;
        for (setting, l) in s.settings.iter().zip(&s.lmc) {
            lmc::write_summary(&setting_dir(dir, &setting.name)?, l)?;
        }
        write_text(
            &dir.report_md(),
            &format!(
                "# Learning rate, rewinding and stability: {}\n\n{}; {}.\n\n{}\n\nEach setting's LMC analysis (figures, paths) is in `setting_<name>/`.\n\n{}",
                s.name,
                s.model,
                s.regime,
                table(s),
                verdict::claims_markdown(&claims(s))
            ),
        )
    }
    fn claims(s: &LrRewindSummary) -> Vec<Claim> {
        claims(s)
    }
    fn console(s: &LrRewindSummary) -> String {
        table(s)
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.2}", 100.0 * v)).unwrap_or_else(|| "–".into())
}

/// The (setting, k) table.
pub fn table(s: &LrRewindSummary) -> String {
    let mut t = String::from(
        "| setting | lr | warmup | rewind k | density % | IMP acc % | dense mean ± sd % | matching | IMP instability (pp) | stable | dense instability (pp) |\n|---|---:|---:|---:|---:|---:|---:|---|---:|---|---:|\n",
    );
    for c in &s.cells {
        t.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} | {:.2} | {} ± {} | {} | {:.2} | {} | {} |\n",
            c.setting,
            c.lr,
            c.warmup_steps,
            c.k,
            100.0 * c.density,
            100.0 * c.accuracy,
            pct(c.dense_mean),
            pct(c.dense_sd),
            match c.matching {
                Some(true) => "yes",
                Some(false) => "no",
                None => "–",
            },
            100.0 * c.instability,
            if c.stable { "yes" } else { "no" },
            c.dense_instability
                .map(|v| format!("{:.2}", 100.0 * v))
                .unwrap_or_else(|| "–".into()),
        ));
    }
    t
}

/// The verdict: do matching and stability coincide over the (lr, k) cells,
/// and does late resetting rescue a setting whose k = 0 ticket is not
/// matching?
pub fn claims(s: &LrRewindSummary) -> Vec<Claim> {
    let cells: Vec<&Cell> = s.cells.iter().filter(|c| c.matching.is_some()).collect();
    let agree = cells.iter().filter(|c| c.matching == Some(c.stable)).count();
    let matching_unstable: Vec<String> = cells
        .iter()
        .filter(|c| c.matching == Some(true) && !c.stable)
        .map(|c| format!("{} k={}", c.setting, c.k))
        .collect();
    let unstable = cells.iter().filter(|c| !c.stable).count();
    let mut unreliable: Vec<String> = s
        .cells
        .iter()
        .filter(|c| c.matching.is_none() && c.dense_sd.is_some())
        .map(|c| {
            format!(
                "{} (dense {:.1} ± {:.1}%)",
                c.setting,
                100.0 * c.dense_mean.unwrap_or(f64::NAN),
                100.0 * c.dense_sd.unwrap_or(f64::NAN)
            )
        })
        .collect();
    unreliable.dedup();
    let not_matching = cells.iter().filter(|c| c.matching == Some(false)).count();
    let measured = format!(
        "{}; {} (setting, k, density) cells with a defined matching; matching agrees with stability in {agree}; unstable cells {unstable}; non-matching cells {not_matching}; matching but unstable: {}; settings left out because their dense networks do not train reliably (sd > {:.0} points): {}",
        s.regime,
        cells.len(),
        if matching_unstable.is_empty() {
            "none".to_string()
        } else {
            matching_unstable.join(", ")
        },
        100.0 * DENSE_SD_LIMIT,
        if unreliable.is_empty() {
            "none".to_string()
        } else {
            unreliable.join(", ")
        }
    );
    let (verdict, reason) = if cells.is_empty() {
        (
            Verdict::Inconclusive,
            "no cell has a matching threshold (at least 2 dense networks that train reliably are needed)".to_string(),
        )
    } else if !matching_unstable.is_empty() {
        (
            Verdict::Contradicts,
            "some IMP subnetworks are matching although unstable".to_string(),
        )
    } else if unstable == 0 {
        (
            Verdict::Inconclusive,
            "every subnetwork is stable, at every learning rate and k: this regime cannot show the \"only when stable\" part (try higher rates or sparser targets)".to_string(),
        )
    } else if agree == cells.len() {
        (
            Verdict::Consistent,
            "every unstable subnetwork is not matching and every stable one is matching".to_string(),
        )
    } else {
        (
            Verdict::Inconclusive,
            "no subnetwork is matching while unstable, but some stable subnetworks are not matching either".to_string(),
        )
    };
    vec![Claim {
        claim: "IMP subnetworks are matching only when they are stable to SGD noise, across learning rates and rewinding steps (late resetting)".into(),
        source: "Frankle et al. 2020, Sec. 4; Frankle & Carbin 2019, Sec. 4 (learning rate)".into(),
        measured,
        verdict,
        reason,
    }]
}
