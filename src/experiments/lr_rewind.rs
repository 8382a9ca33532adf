//! Learning rate, late resetting and stability (`ltk lr-rewind`): IMP with
//! rewinding to k = 0 and to k > 0 at several learning-rate settings (e.g. a
//! low rate, a high rate, the high rate with warmup), with the instability of
//! each subnetwork alongside.
//!
//! Procedure: for each setting, exactly the per-k IMP mode of the LMC
//! experiment ([`crate::experiments::lmc`], `[lmc.imp]`) with the setting's learning rate
//! and warmup: a dense parent, IMP with rewinding to each k down to the
//! target density, and pairs of children spawned from the subnetwork at k
//! (instability = error barrier). Each setting's LMC analysis is written to
//! its own subdirectory, with its figures. All settings share one init
//! (the experiment's seed): the pairs are replicates of the SGD noise (data
//! order) within that init, so every interval here is about this init.
//!
//! The declared claims ([`claims`], one Holm family), located by the config
//! (settings, k, densities), never by the measurements:
//! - Frankle & Carbin 2019, Sec. 4 (VGG-19, ResNet-18 on CIFAR-10): at the
//!   higher learning rate IMP with rewinding to initialization finds no
//!   matching ticket, while at a lower rate or with warmup it does. The
//!   "high" setting is the one with the largest rate and no warmup; the
//!   others (a lower rate, or warmup) are the "rescue" settings.
//! - Frankle et al. 2020, Sec. 4: at the high rate, IMP subnetworks are
//!   unstable at k = 0 and stable and matching when rewound to k > 0 (the
//!   largest configured k); and IMP subnetworks are matching only when they
//!   are stable to SGD noise.
//!
//! Stability is an interval on (instability − 2 pp); matching is
//! non-inferiority to the same setting's dense pair with the same data
//! orders by [`MATCHING_MARGIN`]. A setting whose dense network does not
//! train reliably ([`DENSE_SD_LIMIT`]) makes its matching claims untestable.

use serde::{Deserialize, Serialize};

use crate::config::Experiment;
use crate::experiments::lmc::STABLE_THRESHOLD;
use crate::experiments::lmc::{self, Lmc, LmcConfig, LmcImpConfig, LmcRecord, LmcSummary, LmcUnit};
use crate::paths::{write_text, RunDir};
use crate::prune::PruneSpec;
use crate::report::verdict::protocol::MATCHING_MARGIN;
use crate::report::verdict::protocol::{self, Declared, Evidence, Hypothesis, Item, Side};
use crate::report::verdict::{self, Claim};
use crate::runner::UnitEnv;
use crate::train::Schedule;
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
        Schedule::Step {
            milestones,
            milestone_epochs,
            gamma,
            ..
        } => Schedule::Step {
            milestones: milestones.clone(),
            milestone_epochs: milestone_epochs.clone(),
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

/// A setting whose dense networks' accuracies (the parent and the dense
/// endpoints at the first k) spread by more than this (sd, a fraction: 5
/// points) does not train reliably at its rate: matching against it is
/// undefined, so its matching claims are untestable and its cells show "–".
/// This project's rule, fixed in advance: several times the spread of a
/// dense network that trains (well under 1 point in this project's runs),
/// far below that of one that diverges in some runs (tens of points).
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
    /// The mean instability is under 2 pp (a point estimate, kept for
    /// reading; the verdicts use [`Cell::stability`]).
    pub stable: bool,
    /// The setting's dense accuracies' mean and sd (a reliability check).
    pub dense_mean: Option<f64>,
    pub dense_sd: Option<f64>,
    /// The cell's own 95% interval of (accuracy − dense accuracy, paired by
    /// data order) against −[`MATCHING_MARGIN`] ([`lmc::matching`]); None
    /// when undecided or the dense network does not train reliably.
    pub matching: Option<bool>,
    /// The dense network's instability at the same k.
    pub dense_instability: Option<f64>,
    /// The cell's own 95% interval of the instability against 2 pp
    /// ([`lmc::stability`]): None when it straddles 2 pp or one pair.
    #[serde(default)]
    pub stability: Option<bool>,
    /// Whether the setting's dense network trains reliably ([`DENSE_SD_LIMIT`]).
    #[serde(default)]
    pub dense_reliable: bool,
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

impl crate::runner::Experiment for LrRewind {
    const NAME: &'static str = "lr_rewind";
    type Base = Experiment;
    const ABOUT: &'static str = "IMP with rewinding to k = 0 and k > 0 at several learning rates (and warmup), with each subnetwork's instability (Frankle et al. 2020)";
    const FLAGS: &'static [crate::runner::flags::Flag] = &[crate::runner::flags::Flag::new("ks", "Rewinding steps k.")];
    type Config = LrRewindConfig;
    type Unit = LrRewindUnit;
    type Record = LmcRecord;
    type Summary = LrRewindSummary;

    fn resolve(base: &Experiment, cfg: &mut LrRewindConfig) {
        cfg.prune = cfg.prune.resolved(&base.net.prunable());
    }
    fn banner(base: &Experiment, cfg: &LrRewindConfig) -> String {
        format!(
            "{}: IMP with rewinding to k in {:?} on {} ({}), settings {:?}, target densities {:?}, {} pairs, {} steps",
            base.config.name,
            cfg.ks,
            base.net.describe(),
            base.split.train.name,
            cfg.settings
                .iter()
                .map(|s| format!("{} (lr {}, warmup {})", s.name, s.lr, s.warmup_steps))
                .collect::<Vec<_>>(),
            cfg.densities,
            cfg.pairs,
            base.spec.steps
        )
    }
    fn units(exp: &Experiment, cfg: &LrRewindConfig) -> Result<Vec<LrRewindUnit>> {
        cfg.validate(exp)?;
        let mut out = Vec::new();
        for s in &cfg.settings {
            let e = with_setting(exp, s);
            for unit in <Lmc as crate::runner::Experiment>::units(&e, &cfg.lmc())? {
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
            <Lmc as crate::runner::Experiment>::unit_key(&u.unit)
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
        <Lmc as crate::runner::Experiment>::run_unit(&e, &cfg.lmc(), &u.unit, &sub)
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
            let l = <Lmc as crate::runner::Experiment>::summarize(&e, &cfg.lmc(), recs)?;
            let spread = lmc::dense_spread(&l);
            let reliable = dense_reliable(&l);
            for ks in l.per_k.iter().filter(|k| k.network == "imp") {
                let dense = l.per_k.iter().find(|d| d.network == "dense" && d.k == ks.k);
                let diffs = lmc::accuracy_vs_dense(&l, "imp", ks.density, ks.k);
                cells.push(Cell {
                    setting: s.name.clone(),
                    lr: s.lr,
                    warmup_steps: s.warmup_steps,
                    k: ks.k,
                    density: ks.density.unwrap_or(f64::NAN),
                    accuracy: ks.accuracy,
                    instability: ks.mean,
                    stable: ks.stable,
                    dense_mean: spread.map(|t| t.0),
                    dense_sd: spread.map(|t| t.1),
                    matching: if reliable { lmc::matching(&diffs) } else { None },
                    dense_instability: dense.map(|d| d.mean),
                    stability: lmc::stability(&lmc::instabilities(&l, "imp", ks.density, ks.k)),
                    dense_reliable: reliable,
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
        for (setting, l) in s.settings.iter().zip(&s.lmc) {
            // Each setting's directory holds its LMC summary and report; the
            // verdicts are the experiment's, decided once as one family.
            let sd = setting_dir(dir, &setting.name)?;
            crate::paths::write_json(&sd.summary_json(), l)?;
            lmc::write_summary(&sd, l)?;
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
            if c.dense_reliable {
                lmc::yes_no(c.matching)
            } else {
                "–"
            },
            100.0 * c.instability,
            lmc::yes_no(c.stability),
            c.dense_instability
                .map(|v| format!("{:.2}", 100.0 * v))
                .unwrap_or_else(|| "–".into()),
        ));
    }
    t.push_str(&format!(
        "\nstable: the cell's 95% t interval of the instability over pairs lies below {:.0} pp (no: above; ?: straddles, or one pair). matching: its 95% t interval of (accuracy − dense accuracy, paired by data order) lies above −{:.0} point (no: below; –: the setting's dense network does not train reliably, sd > {:.0} points). Pairs are replicates of SGD noise from one init; these per-cell intervals are descriptive, the verdicts below are family-adjusted.\n",
        100.0 * STABLE_THRESHOLD,
        100.0 * MATCHING_MARGIN,
        100.0 * DENSE_SD_LIMIT
    ));
    t
}

/// Whether a setting's dense network trains reliably: at least 2 dense
/// networks whose accuracies spread by at most [`DENSE_SD_LIMIT`].
pub fn dense_reliable(l: &LmcSummary) -> bool {
    lmc::dense_spread(l).is_some_and(|(_, sd)| sd <= DENSE_SD_LIMIT)
}

/// The "high" settings (the largest rate, no warmup) when some other setting
/// has a lower rate or warmup, and those "rescue" settings; from the config.
fn roles(settings: &[LrSetting]) -> (Vec<usize>, Vec<usize>) {
    let max = settings.iter().map(|s| s.lr).fold(f64::NEG_INFINITY, f64::max);
    let high: Vec<usize> = (0..settings.len())
        .filter(|&i| settings[i].lr == max && settings[i].warmup_steps == 0)
        .collect();
    let rescue: Vec<usize> = (0..settings.len())
        .filter(|&i| settings[i].lr < max || settings[i].warmup_steps > 0)
        .collect();
    if high.is_empty() || rescue.is_empty() {
        return (vec![], vec![]);
    }
    (high, rescue)
}

fn densities(l: &LmcSummary) -> Vec<f64> {
    let mut d: Vec<f64> = l
        .results
        .iter()
        .filter(|r| r.network == "imp")
        .filter_map(|r| r.density)
        .collect();
    d.sort_by(|a, b| b.total_cmp(a));
    d.dedup();
    d
}

/// Per pair, (accuracy − dense) + margin at (density, k) of a setting, for a
/// "not matching" claim (`shift` = margin) or (accuracy − dense) for a
/// "matching" one (`shift` = 0); untestable without a reliable dense
/// network or without pairs at k.
fn matching_evidence(l: &LmcSummary, setting: &LrSetting, d: f64, k: Option<usize>, shift: f64) -> Evidence {
    let Some(k) = k else {
        return Evidence::Untestable {
            why: "no rewinding step k > 0 is configured: add one to [lr_rewind] ks".into(),
        };
    };
    if !dense_reliable(l) {
        return Evidence::Untestable {
            why: format!(
                "the dense network of setting {} does not train reliably ({}; the limit is {:.0} points): matching is undefined; a lower rate, warmup or a longer run that trains it reliably would make it testable",
                setting.name,
                lmc::dense_spread(l)
                    .map(|(m, sd)| format!("{:.1} ± {:.1}%", 100.0 * m, 100.0 * sd))
                    .unwrap_or_else(|| "fewer than 2 dense networks".into()),
                100.0 * DENSE_SD_LIMIT
            ),
        };
    }
    let v = lmc::accuracy_vs_dense(l, "imp", Some(d), k);
    if v.is_empty() {
        return Evidence::Untestable {
            why: format!("no IMP pairs with dense pairs at k = {k}: add k = {k} to [lr_rewind] ks"),
        };
    }
    Evidence::Paired {
        values: v.iter().map(|x| x + shift).collect(),
        resolution: lmc::resolution(l),
    }
}

fn stability_evidence(l: &LmcSummary, d: f64, k: Option<usize>) -> Evidence {
    let v = k.map(|k| lmc::instabilities(l, "imp", Some(d), k)).unwrap_or_default();
    if v.is_empty() {
        return Evidence::Untestable {
            why: match k {
                Some(k) => format!("no IMP pairs at k = {k}: add k = {k} to [lr_rewind] ks"),
                None => "no rewinding step k > 0 is configured: add one to [lr_rewind] ks".into(),
            },
        };
    }
    Evidence::Paired {
        values: v.iter().map(|x| x - STABLE_THRESHOLD).collect(),
        resolution: lmc::resolution(l),
    }
}

/// What a (setting, k, density) cell measured, for a claim's context.
fn cell_context(l: &LmcSummary, setting: &LrSetting, d: f64, k: Option<usize>) -> String {
    let Some(k) = k else { return String::new() };
    let inst = lmc::instabilities(l, "imp", Some(d), k);
    let acc = lmc::accuracy_vs_dense(l, "imp", Some(d), k);
    if inst.is_empty() {
        return String::new();
    }
    format!(
        "setting {} (lr {}, warmup {}), k = {k}, {:.2}% of weights: instability {:.2} pp, accuracy − dense {} over {} pair(s); pairs are replicates of SGD noise from one init",
        setting.name,
        setting.lr,
        setting.warmup_steps,
        100.0 * d,
        100.0 * crate::stats::mean(&inst),
        if acc.is_empty() {
            "–".to_string()
        } else {
            format!("{:+.2} pp", 100.0 * crate::stats::mean(&acc))
        },
        inst.len()
    )
}

/// A claim the papers make for their networks (VGG-19, ResNet-18, ResNet-20,
/// VGG-16 on CIFAR-10), carried to the configured network and data: this
/// project's hypothesis, citing where the paper makes it.
fn extrapolated(claim: String, cite: &str, hypothesis: Hypothesis) -> Declared {
    Declared::project(
        claim,
        format!("the paper's pattern carried to this network and data, from {cite}"),
        hypothesis,
    )
}

/// The verdicts (see the module docs), one Holm family
/// ([`protocol::decide_family`]):
///
/// - at each "high" setting and density: the IMP subnetwork rewound to
///   k = 0 is unstable (instability interval above 2 pp) and not matching
///   ((accuracy − dense) + margin below 0); rewound to the largest k > 0 it
///   is stable and matching (non-inferior by [`MATCHING_MARGIN`]);
/// - at each "rescue" setting and density: the IMP subnetwork rewound to
///   k = 0 is matching;
/// - IMP subnetworks are matching only when stable: pooled over the
///   subnetworks unstable by their own interval, in settings whose dense
///   network trains reliably ([`lmc::only_when_stable`]); untestable when
///   none is unstable.
pub fn claims(s: &LrRewindSummary) -> Vec<Claim> {
    let t = 100.0 * STABLE_THRESHOLD;
    let m = 100.0 * MATCHING_MARGIN;
    let mut items = Vec::new();
    let (high, rescue) = roles(&s.settings);
    let k0 = Some(0);
    for &i in &high {
        let (setting, l) = (&s.settings[i], &s.lmc[i]);
        let late = l.results.iter().map(|r| r.k).filter(|&k| k > 0).max();
        let late_k = late.map(|k| k.to_string()).unwrap_or_else(|| "k > 0".into());
        let has_k0 = l.results.iter().any(|r| r.k == 0);
        for d in densities(l) {
            let at = format!(
                "at the high rate ({}, lr {}), {:.2}% of weights",
                setting.name,
                setting.lr,
                100.0 * d
            );
            let c2020 = "Frankle et al. 2020, Sec. 4 (ResNet-20 and VGG-16 on CIFAR-10 at the standard rate)";
            items.push(Item::new(
                extrapolated(
                    format!(
                        "{at}: the IMP subnetwork rewound to k = 0 is unstable to SGD noise (instability > {t:.0} pp)"
                    ),
                    c2020,
                    Hypothesis::Difference { side: Side::Greater },
                )
                .shown_in(" pp", 100.0),
                stability_evidence(l, d, has_k0.then_some(0)),
                format!(
                    "the estimate is instability − {t:.0} pp; {}",
                    cell_context(l, setting, d, k0)
                ),
            ));
            items.push(Item::new(
                extrapolated(
                    format!("{at}: the IMP subnetwork rewound to k = 0 is not matching (accuracy below dense by more than {m:.0} point)"),
                    "Frankle & Carbin 2019, Sec. 4 (VGG-19 and ResNet-18 on CIFAR-10: at the higher learning rate IMP finds no winning tickets)",
                    Hypothesis::Difference { side: Side::Less },
                )
                .shown_in(" pp", 100.0),
                matching_evidence(l, setting, d, has_k0.then_some(0), MATCHING_MARGIN),
                format!(
                    "the estimate is (accuracy − dense) + {m:.0} point; {}",
                    cell_context(l, setting, d, k0)
                ),
            ));
            items.push(Item::new(
                extrapolated(
                    format!("{at}: the IMP subnetwork rewound to k = {late_k} is stable to SGD noise (instability < {t:.0} pp)"),
                    c2020,
                    Hypothesis::Difference { side: Side::Less },
                )
                .shown_in(" pp", 100.0),
                stability_evidence(l, d, late),
                format!("the estimate is instability − {t:.0} pp; {}", cell_context(l, setting, d, late)),
            ));
            items.push(Item::new(
                extrapolated(
                    format!("{at}: the IMP subnetwork rewound to k = {late_k} is matching (accuracy − dense > −{m:.0} point)"),
                    "Frankle et al. 2020, Sec. 4 (rewinding to k > 0 recovers matching subnetworks)",
                    Hypothesis::NonInferior {
                        margin: MATCHING_MARGIN,
                    },
                )
                .shown_in(" pp", 100.0),
                matching_evidence(l, setting, d, late, 0.0),
                cell_context(l, setting, d, late),
            ));
        }
    }
    for &i in &rescue {
        let (setting, l) = (&s.settings[i], &s.lmc[i]);
        let has_k0 = l.results.iter().any(|r| r.k == 0);
        for d in densities(l) {
            items.push(Item::new(
                extrapolated(
                    format!(
                        "with a lower rate or warmup ({}, lr {}, warmup {}), {:.2}% of weights: the IMP subnetwork rewound to k = 0 is matching (accuracy − dense > −{m:.0} point)",
                        setting.name,
                        setting.lr,
                        setting.warmup_steps,
                        100.0 * d
                    ),
                    "Frankle & Carbin 2019, Sec. 4 (VGG-19 and ResNet-18: a lower rate or warmup finds winning tickets at initialization)",
                    Hypothesis::NonInferior {
                        margin: MATCHING_MARGIN,
                    },
                )
                .shown_in(" pp", 100.0),
                matching_evidence(l, setting, d, has_k0.then_some(0), 0.0),
                cell_context(l, setting, d, k0),
            ));
        }
    }
    // Matching only when stable, over the settings whose dense network trains reliably.
    let reliable: Vec<(String, &LmcSummary)> = s
        .settings
        .iter()
        .zip(&s.lmc)
        .filter(|(_, l)| dense_reliable(l))
        .map(|(st, l)| (format!("{} ", st.name), l))
        .collect();
    let left_out: Vec<String> = s
        .settings
        .iter()
        .zip(&s.lmc)
        .filter(|(_, l)| !dense_reliable(l))
        .map(|(st, l)| {
            format!(
                "{} ({})",
                st.name,
                lmc::dense_spread(l)
                    .map(|(m, sd)| format!("dense {:.1} ± {:.1}%", 100.0 * m, 100.0 * sd))
                    .unwrap_or_else(|| "fewer than 2 dense networks".into())
            )
        })
        .collect();
    let (evidence, context) = if reliable.is_empty() {
        (
            Evidence::Untestable {
                why: format!(
                    "no setting's dense network trains reliably (sd ≤ {:.0} points): matching is undefined everywhere",
                    100.0 * DENSE_SD_LIMIT
                ),
            },
            String::new(),
        )
    } else {
        lmc::only_when_stable(&reliable)
    };
    let context = format!(
        "{}{}settings left out because their dense networks do not train reliably: {}; {}",
        context,
        if context.is_empty() { "" } else { "; " },
        if left_out.is_empty() {
            "none".to_string()
        } else {
            left_out.join(", ")
        },
        s.regime
    );
    items.push(Item::new(lmc::only_when_stable_claim(), evidence, context));
    protocol::decide_family(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::lmc::{PairResult, PathEval};
    use crate::report::verdict::Verdict;

    fn pair(network: &str, k: usize, pair: usize, density: Option<f64>, instability: f64, err: f64) -> PairResult {
        PairResult {
            network: network.into(),
            k,
            pair,
            density,
            path: PathEval {
                alphas: vec![0.0, 0.5, 1.0],
                test_error: vec![err, err + instability, err],
                test_loss: vec![0.3; 3],
                train_loss: vec![],
            },
            instability,
            train_loss_barrier: None,
            path_seconds: 0.0,
        }
    }

    /// One setting's LMC summary: per k, the IMP pairs' (instability, error);
    /// dense pairs stable at error 10% (+ 0.1 point per pair index).
    fn setting(rows: &[(usize, &[(f64, f64)])], dense: Vec<f64>) -> LmcSummary {
        let mut results = Vec::new();
        for &(k, v) in rows {
            for (p, &(i, e)) in v.iter().enumerate() {
                results.push(pair("imp", k, p, Some(0.3), i, e));
                results.push(pair("dense", k, p, None, 0.002, 0.10 + 0.001 * p as f64));
            }
        }
        LmcSummary {
            name: "t".into(),
            model: "m".into(),
            per_k: lmc::aggregate(&results),
            results,
            sparse_density: None,
            dense_accuracies: dense,
            imp_rounds: vec![],
            test_size: 10_000,
        }
    }

    fn summary(lmcs: Vec<LmcSummary>) -> LrRewindSummary {
        let s = |name: &str, lr: f64, warmup_steps: usize| LrSetting {
            name: name.into(),
            lr,
            warmup_steps,
        };
        LrRewindSummary {
            name: "t".into(),
            model: "m".into(),
            regime: "r".into(),
            settings: vec![s("low", 0.01, 0), s("high", 0.1, 0), s("warm", 0.1, 100)],
            lmc: lmcs,
            cells: vec![],
        }
    }

    const DENSE: [f64; 3] = [0.899, 0.900, 0.901];
    /// Stable and matching, five pairs.
    const GOOD: &[(f64, f64)] = &[
        (0.001, 0.100),
        (0.002, 0.101),
        (0.0, 0.103),
        (0.001, 0.102),
        (0.002, 0.104),
    ];
    /// Unstable and 20 points below dense, five pairs.
    const BAD: &[(f64, f64)] = &[(0.20, 0.30), (0.22, 0.31), (0.21, 0.30), (0.20, 0.32), (0.23, 0.30)];

    #[test]
    fn the_papers_pattern_is_consistent_throughout() {
        let s = summary(vec![
            setting(&[(0, GOOD), (100, GOOD)], DENSE.to_vec()),
            setting(&[(0, BAD), (100, GOOD)], DENSE.to_vec()),
            setting(&[(0, GOOD), (100, GOOD)], DENSE.to_vec()),
        ]);
        let c = claims(&s);
        // high: 4 claims; low and warm: 1 each; matching only when stable: 1.
        assert_eq!(c.len(), 7);
        for x in &c {
            assert_eq!(x.verdict, Verdict::Consistent, "{}", x.line());
        }
        // The networks are not the papers': six claims carried over, the general one the paper's.
        for x in &c[..6] {
            assert!(
                x.source.starts_with("this project's hypothesis: the paper's pattern"),
                "{}",
                x.source
            );
        }
        assert!(c[6].source.starts_with("the paper's claim: Frankle"), "{}", c[6].source);
        assert!(c[6].claim.contains("matching only when"));
    }

    #[test]
    fn two_pairs_or_an_unreliable_dense_network_decide_nothing() {
        // The high rate's k = 0 subnetwork with 2 pairs at 5 and 20 pp: the
        // interval cannot show it unstable, so "only when stable" is untestable.
        let two: &[(f64, f64)] = &[(0.05, 0.17), (0.20, 0.18)];
        let s = summary(vec![
            setting(&[(0, &GOOD[..2]), (100, &GOOD[..2])], DENSE.to_vec()),
            setting(&[(0, two), (100, &GOOD[..2])], DENSE.to_vec()),
            setting(&[(0, &GOOD[..2]), (100, &GOOD[..2])], vec![0.1, 0.5, 0.8]),
        ]);
        let c = claims(&s);
        assert_eq!(c[0].verdict, Verdict::Inconclusive, "{}", c[0].line());
        let warm = c.iter().find(|x| x.claim.contains("(warm,")).unwrap();
        assert_eq!(warm.verdict, Verdict::Inconclusive);
        assert!(warm.reason.contains("does not train reliably"), "{}", warm.reason);
        let only = c.last().unwrap();
        assert_eq!(only.verdict, Verdict::Inconclusive, "{}", only.line());
        assert!(only.reason.contains("no IMP subnetwork is unstable"), "{}", only.reason);
        assert!(only.measured.contains("warm (dense"), "{}", only.measured);
        // Matching while unstable (with enough pairs) contradicts.
        let s = summary(vec![
            setting(&[(0, GOOD), (100, GOOD)], DENSE.to_vec()),
            setting(
                &[
                    (
                        0,
                        &[(0.20, 0.10), (0.22, 0.101), (0.21, 0.10), (0.20, 0.102), (0.23, 0.10)],
                    ),
                    (100, GOOD),
                ],
                DENSE.to_vec(),
            ),
            setting(&[(0, GOOD), (100, GOOD)], DENSE.to_vec()),
        ]);
        let c = claims(&s);
        assert_eq!(
            c.last().unwrap().verdict,
            Verdict::Contradicts,
            "{}",
            c.last().unwrap().line()
        );
        for x in &c {
            eprintln!("{}", x.line());
        }
    }
}
