//! `ltk multi-prize`: multi-prize tickets (Diffenderfer & Kailkhura 2021,
//! "Multi-Prize Lottery Ticket Hypothesis", ICLR; Sec. 3 Algorithm 1
//! "biprop", Sec. 4 accuracy vs width): a random network whose weights are
//! never trained contains a subnetwork that, with its weights binarized to
//! ±α per layer, matches the dense trained network of the same architecture
//! once the network is wide enough (the paper's claims, tested on biprop in
//! [`claims`] at the smallest and largest configured widths, one Holm family).
//!
//! Per (seed, width factor), one unit: the base MLP with every hidden width
//! scaled is
//! - trained as usual from its own init (`dense`: the "dense target network
//!   with learned weights" of the paper);
//! - searched with edge-popup on fixed random weights (`edge_popup`: real
//!   weights, Ramanujan et al. 2020), for reference;
//! - searched with biprop (`biprop`, the paper's MPT-1/32): the same scores
//!   and straight-through gradient, each kept weight `α · sign(W)`,
//!   [`EdgePopup::binarized`];
//! - and with sign activations too (`biprop_sign`, MPT-1/1): hidden units
//!   output sign(z), trained through Bi-Real Net's straight-through
//!   estimate ([`Activation::Sign`]).
//!
//! Every arm keeps the fraction `keep` of every layer and trains with the
//! base config's recipe (optimizer, steps, batch); random weights are
//! `init` (default Kaiming normal, the authors' `kn`), scaled by
//! `1/sqrt(keep)` as their `scale_fan`; scores start as in hidden-networks
//! and may take their own learning rate (`score_lr`).
//!
//! Named deviations from the paper: fully connected networks without
//! BatchNorm (the authors' networks are conv nets with non-affine BatchNorm
//! before each sign activation; here the pre-activations are not
//! normalized, so the sign arm's straight-through window [−1, 1] sees the
//! raw scale); one training recipe for all arms (the authors train scores
//! with SGD 0.1 and a cosine schedule; `score_lr` sets the rate, the
//! schedule is the base config's).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Experiment;
use crate::models::{Activation, Mlp, Network};
use crate::paths::{write_csv, write_text, RunDir};
use crate::report::plot::{LineChart, Marker, Series, Spread};
use crate::report::verdict::protocol::{decide_family, Declared, Evidence, Hypothesis, Item, Side};
use crate::report::verdict::{self, Claim};
use crate::runner::UnitEnv;
use crate::stats;
use crate::strong::edge_popup::{EdgePopup, WeightInit};
use crate::train::{self, Supervised, TrainOptions};
use crate::{Error, Result};

/// The networks compared at each width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// The dense network, weights trained (the target).
    Dense,
    /// Edge-popup: a subnetwork of fixed real random weights.
    EdgePopup,
    /// biprop, MPT-1/32: binary weights ±α, real activations.
    Biprop,
    /// biprop, MPT-1/1: binary weights and sign activations.
    BipropSign,
}

impl Arm {
    pub fn name(self) -> &'static str {
        match self {
            Arm::Dense => "dense",
            Arm::EdgePopup => "edge_popup",
            Arm::Biprop => "biprop",
            Arm::BipropSign => "biprop_sign",
        }
    }
}

/// `[multi_prize]` of an experiment TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiPrizeConfig {
    /// Multipliers of the base MLP's hidden widths (default 0.25, 0.5, 1, 2).
    #[serde(default = "default_widths")]
    pub width_factors: Vec<f64>,
    /// Fraction of every layer's weights kept by the pruned arms (default
    /// 0.5: biprop's accuracy peaks between 40% and 60% kept in the paper's
    /// Fig. 2 sweeps).
    #[serde(default = "default_keep")]
    pub keep: f64,
    /// The arms besides `dense`, which always runs (it is the target).
    #[serde(default = "default_arms")]
    pub arms: Vec<Arm>,
    /// The fixed random weights of the pruned arms.
    #[serde(default = "default_init")]
    pub init: WeightInit,
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Learning rate of the score-training arms (default: the base
    /// optimizer's). The authors train scores with SGD at 0.1, momentum 0.9
    /// (chrundle/biprop `configs/smallscale/conv4/conv4_kn_unsigned.yml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_lr: Option<f64>,
}

fn default_widths() -> Vec<f64> {
    vec![0.25, 0.5, 1.0, 2.0]
}
fn default_keep() -> f64 {
    0.5
}
fn default_arms() -> Vec<Arm> {
    vec![Arm::EdgePopup, Arm::Biprop, Arm::BipropSign]
}
fn default_init() -> WeightInit {
    WeightInit::KaimingNormal
}
fn default_seeds() -> Vec<u64> {
    vec![0, 1, 2]
}

impl Default for MultiPrizeConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty [multi_prize] takes every default")
    }
}

impl MultiPrizeConfig {
    /// Checks everything before any training; returns the base MLP.
    pub fn validate(&self, exp: &Experiment) -> Result<Mlp> {
        crate::runner::check_seeds(&self.seeds, "multi_prize.seeds")?;
        crate::runner::check_width_factors(&self.width_factors, "multi_prize.width_factors")?;
        if let Some(lr) = self.score_lr.filter(|lr| !(lr.is_finite() && *lr > 0.0)) {
            return Err(Error::config("multi_prize.score_lr", "a finite rate > 0", lr));
        }
        if !(self.keep > 0.0 && self.keep < 1.0) {
            return Err(Error::config("multi_prize.keep", "a fraction in (0, 1)", self.keep));
        }
        if self.arms.contains(&Arm::Dense) {
            return Err(Error::config(
                "multi_prize.arms",
                "edge_popup, biprop, biprop_sign (dense always runs)",
                "dense",
            ));
        }
        let Network::Mlp(mlp) = &exp.net else {
            return Err(Error::config(
                "model",
                "a fully connected network (edge-popup and biprop run on MLPs here)",
                exp.net.describe(),
            ));
        };
        if mlp.activation != Activation::Relu {
            return Err(Error::config("model.activation", "relu", mlp.activation.name()));
        }
        for &f in &self.width_factors {
            let scaled = mlp.scaled(f)?;
            let params = crate::memory::parameter_count(scaled.param_shapes().iter().map(|(_, s)| s));
            crate::memory::check_training(&format!("MLP of width factor {f}"), params, "multi_prize.width_factors")?;
        }
        Ok(mlp.clone())
    }
}

/// One unit of work: a seed at one width factor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MpUnit {
    pub seed: u64,
    pub width_factor: f64,
}

/// One arm at one width and seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MpRecord {
    pub seed: u64,
    pub width_factor: f64,
    pub hidden: Vec<usize>,
    /// Weights of the dense network (prunable ones).
    pub weights: usize,
    pub arm: Arm,
    pub test_accuracy: f64,
}

/// The whole experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MpSummary {
    pub name: String,
    pub model: String,
    /// Classes of the task (chance is 1/classes).
    pub classes: usize,
    pub keep: f64,
    #[serde(default)]
    pub score_lr: Option<f64>,
    pub seeds: Vec<u64>,
    pub steps: usize,
    pub records: Vec<MpRecord>,
    /// Test examples of every accuracy (their grid step is 1/this; 0:
    /// unknown, from a summary written before it was kept).
    #[serde(default)]
    pub test_examples: usize,
}

fn run_unit(exp: &Experiment, cfg: &MultiPrizeConfig, u: &MpUnit, env: &UnitEnv) -> Result<Vec<MpRecord>> {
    let base = cfg.validate(exp)?;
    let mlp = base.scaled(u.width_factor)?;
    let net = Network::Mlp(mlp.clone());
    let weights = net.prunable_counts().values().sum();
    let spec = crate::runner::unit_spec(exp, u.seed);
    let opts = TrainOptions {
        progress: env.progress,
        ..Default::default()
    };
    let record = |arm: Arm, test_accuracy: f64| MpRecord {
        seed: u.seed,
        width_factor: u.width_factor,
        hidden: mlp.hidden.clone(),
        weights,
        arm,
        test_accuracy,
    };
    let last = |o: &train::TrainOutcome| o.last().map(|r| r.test_accuracy).unwrap_or(f64::NAN);
    let mut out = Vec::new();
    let mut dense = Supervised::new(net.clone(), exp.config.train.loss, env.device);
    let o = train::train(&mut dense, &net.init(u.seed), &exp.split, &spec, &opts)?;
    out.push(record(Arm::Dense, last(&o)));
    for &arm in &cfg.arms {
        let m = match arm {
            Arm::BipropSign => mlp.with_hidden(mlp.hidden.clone()).map(|mut m| {
                m.activation = Activation::Sign;
                m
            })?,
            _ => mlp.clone(),
        };
        let seed = crate::rng::derive_seed(u.seed, "multi-prize", arm as u64);
        let (ep, scores0) = EdgePopup::new(m, cfg.init, cfg.keep, exp.config.train.loss, seed)?;
        let mut ep = match arm {
            Arm::Biprop | Arm::BipropSign => ep.binarized(),
            _ => ep,
        };
        let score_spec = train::TrainSpec {
            optimizer: match cfg.score_lr {
                Some(lr) => spec.optimizer.with_lr(lr),
                None => spec.optimizer.clone(),
            },
            ..spec.clone()
        };
        let o = train::train(&mut ep, &scores0, &exp.split, &score_spec, &opts)?;
        out.push(record(arm, last(&o)));
    }
    Ok(out)
}

/// `ltk multi-prize` on the experiment layer: one unit per (seed, width factor).
pub struct MultiPrize;

impl crate::runner::Experiment for MultiPrize {
    const NAME: &'static str = "multi_prize";
    type Base = Experiment;
    const ABOUT: &'static str = "Multi-prize tickets (Diffenderfer & Kailkhura 2021): biprop subnetworks of random binary weights (and sign activations) vs the dense trained network, across widths";
    const GROWS: &'static [&'static str] = &["seeds", "width_factors"];
    const FLAGS: &'static [crate::runner::flags::Flag] = &[
        crate::runner::flags::Flag::new("width_factors", "Multipliers of the hidden widths (e.g. 0.25,0.5,1,2)."),
        crate::runner::flags::Flag::new("keep", "Fraction of every layer kept by the pruned arms."),
        crate::runner::flags::Flag::new("arms", "Pruned arms (the dense target always runs)."),
        crate::runner::flags::Flag::new("seeds", "Replicates (init and data-order seeds)."),
    ];
    type Config = MultiPrizeConfig;
    type Unit = MpUnit;
    type Record = Vec<MpRecord>;
    type Summary = MpSummary;

    fn banner(base: &Experiment, cfg: &MultiPrizeConfig) -> String {
        format!(
            "{}: multi-prize tickets of {} on {}, width factors {:?}, {:.0}% kept, arms dense + {:?}, seeds {:?}, {} steps per network",
            base.config.name,
            base.net.describe(),
            base.split.train.name,
            cfg.width_factors,
            100.0 * cfg.keep,
            cfg.arms.iter().map(|a| a.name()).collect::<Vec<_>>(),
            cfg.seeds,
            base.spec.steps
        )
    }
    fn units(base: &Experiment, cfg: &MultiPrizeConfig) -> Result<Vec<MpUnit>> {
        cfg.validate(base)?;
        Ok(cfg
            .seeds
            .iter()
            .flat_map(|&seed| {
                cfg.width_factors
                    .iter()
                    .map(move |&width_factor| MpUnit { seed, width_factor })
            })
            .collect())
    }
    fn unit_key(u: &MpUnit) -> String {
        format!("seed_{}_width_{}", u.seed, u.width_factor)
    }
    fn run_unit(base: &Experiment, cfg: &MultiPrizeConfig, u: &MpUnit, env: &UnitEnv) -> Result<Vec<MpRecord>> {
        run_unit(base, cfg, u, env)
    }
    fn summarize(base: &Experiment, cfg: &MultiPrizeConfig, records: Vec<Vec<MpRecord>>) -> Result<MpSummary> {
        Ok(MpSummary {
            name: base.config.name.clone(),
            model: base.net.describe(),
            classes: base.split.train.num_classes,
            keep: cfg.keep,
            score_lr: cfg.score_lr,
            seeds: cfg.seeds.clone(),
            steps: base.spec.steps,
            records: records.into_iter().flatten().collect(),
            test_examples: base.split.test.len(),
        })
    }
    fn write_report(dir: &RunDir, s: &MpSummary) -> Result<()> {
        write_summary(dir, s)
    }
    fn claims(s: &MpSummary) -> Vec<Claim> {
        claims(s)
    }
    fn console(s: &MpSummary) -> String {
        table(s)
    }
}

fn factors(s: &MpSummary) -> Vec<f64> {
    let mut f: Vec<f64> = s.records.iter().map(|r| r.width_factor).collect();
    f.sort_by(f64::total_cmp);
    f.dedup();
    f
}

fn arms(s: &MpSummary) -> Vec<Arm> {
    let mut a: Vec<Arm> = s.records.iter().map(|r| r.arm).collect();
    a.sort();
    a.dedup();
    a
}

/// Accuracy per seed of one arm at one width factor.
fn acc(s: &MpSummary, arm: Arm, f: f64) -> BTreeMap<u64, f64> {
    s.records
        .iter()
        .filter(|r| r.arm == arm && r.width_factor == f)
        .map(|r| (r.seed, r.test_accuracy))
        .collect()
}

/// Test accuracy (mean ± sd over seeds) per width factor and arm.
pub fn table(s: &MpSummary) -> String {
    let arms = arms(s);
    let mut out = format!(
        "Test accuracy (%), mean ± sd over {} seeds; pruned arms keep {:.0}% of every layer of fixed random weights\n\n| width factor | hidden | weights | {} |\n|---:|---|---:|{}\n",
        s.seeds.len(),
        100.0 * s.keep,
        arms.iter().map(|a| a.name()).collect::<Vec<_>>().join(" | "),
        "---:|".repeat(arms.len())
    );
    for f in factors(s) {
        let r0 = s.records.iter().find(|r| r.width_factor == f);
        let cells: Vec<String> = arms
            .iter()
            .map(|&a| {
                let v: Vec<f64> = acc(s, a, f).into_values().collect();
                stats::mean_sd(&v)
                    .map(|(m, sd)| format!("{:.2} ± {:.2}", 100.0 * m, 100.0 * sd))
                    .unwrap_or_else(|| "–".into())
            })
            .collect();
        out.push_str(&format!(
            "| {f} | {:?} | {} | {} |\n",
            r0.map(|r| r.hidden.clone()).unwrap_or_default(),
            r0.map(|r| r.weights).unwrap_or(0),
            cells.join(" | ")
        ));
    }
    out
}

/// Writes summary.json, records.csv, report.md and the accuracy-vs-width figure.
pub fn write_summary(dir: &RunDir, s: &MpSummary) -> Result<()> {
    let rows: Vec<Vec<String>> = s
        .records
        .iter()
        .map(|r| {
            vec![
                r.seed.to_string(),
                r.width_factor.to_string(),
                r.hidden.iter().map(|h| h.to_string()).collect::<Vec<_>>().join("-"),
                r.weights.to_string(),
                r.arm.name().to_string(),
                r.test_accuracy.to_string(),
            ]
        })
        .collect();
    write_csv(
        &dir.file("records.csv"),
        &["seed", "width_factor", "hidden", "weights", "arm", "test_accuracy"],
        &rows,
    )?;
    let mut c = LineChart::new(
        &format!("{}: multi-prize tickets vs width ({:.0}% kept)", s.name, 100.0 * s.keep),
        "width factor (hidden widths x factor)",
        "test accuracy (%)",
    )
    .log_x();
    for a in arms(s) {
        let pts: Vec<(f64, f64, f64, f64)> = factors(s)
            .into_iter()
            .filter_map(|f| {
                let v: Vec<f64> = acc(s, a, f).into_values().collect();
                let (m, _) = stats::mean_sd(&v)?;
                let (lo, hi) = stats::sd_band(&v);
                Some((f, 100.0 * m, 100.0 * lo, 100.0 * hi))
            })
            .collect();
        c.push(
            Series::line(a.name(), pts.iter().map(|p| (p.0, p.1)))
                .with_marker(Marker::LinePoints)
                .with_band(Spread::Sd("seeds"), pts.iter().map(|p| (p.0, p.2, p.3))),
        );
    }
    c.save(&dir.figure("multi_prize_accuracy_vs_width"))?;
    write_text(
        &dir.report_md(),
        &format!(
            "# Multi-prize tickets: {}\n\nBase model {}, seeds {:?}, {} steps per network, every arm with the base config's optimizer{}. `dense`: the network trained as usual; `edge_popup`: a subnetwork of fixed real random weights; `biprop`: the same search with kept weights ±α per layer (MPT-1/32); `biprop_sign`: also sign activations (MPT-1/1). No BatchNorm (the paper's conv nets have it): a named deviation. Per-unit wall times are in units/*.json.\n\n{}\n![accuracy vs width](figures/multi_prize_accuracy_vs_width.png)\n\n{}",
            s.name,
            s.model,
            s.seeds,
            s.steps,
            s.score_lr.map(|lr| format!(" (the score-training arms at learning rate {lr})")).unwrap_or_default(),
            table(s),
            verdict::claims_markdown(&claims(s))
        ),
    )
}

/// The margin of "matches the dense target" (prize 1): the subnetwork's
/// accuracy may fall short of the dense network's by less than this (1
/// point). Diffenderfer & Kailkhura call the accuracy "comparable" and
/// "similar (and sometimes even higher)" without a number; 1 point is this
/// project's reading, declared before the data.
pub const MATCH_MARGIN: f64 = crate::report::verdict::protocol::MATCHING_MARGIN;

/// Where the claims come from.
const CITE: &str = "Diffenderfer & Kailkhura 2021 (ICLR), Sec. 1 (Multi-Prize LTH, prize 1) and Sec. 4 (MPT-1/32 against the dense weight-trained network as width grows: similar, sometimes higher, accuracy once wide enough)";

/// Per seed, `arm − dense` at width factor `f` (NaN where a side is missing).
fn advantage(s: &MpSummary, arm: Arm, f: f64) -> BTreeMap<u64, f64> {
    let (a, d) = (acc(s, arm, f), acc(s, Arm::Dense, f));
    a.keys()
        .chain(d.keys())
        .map(|k| {
            (
                *k,
                match (a.get(k), d.get(k)) {
                    (Some(x), Some(y)) => x - y,
                    _ => f64::NAN,
                },
            )
        })
        .collect()
}

/// The declared claims, one family ([`decide_family`]), both the paper's,
/// on `biprop` (MPT-1/32). Locations, fixed before the data: the smallest
/// and the largest of `multi_prize.width_factors` ("sufficient width" read
/// as the widest network of the sweep, never the best-looking one).
/// 1. The shortfall of biprop from the dense network shrinks with width:
///    (dense − biprop) at the smallest width minus at the largest
///    (`Difference`, greater).
/// 2. Prize 1 at the largest width: biprop − dense > −[`MATCH_MARGIN`]
///    (`NonInferior`).
///
/// Evidence: one paired value per seed (the arms of a unit share the seed),
/// accuracies on the test-set grid. Without a biprop arm, or with one width
/// only (claim 1), the claims are untestable.
pub fn claims(s: &MpSummary) -> Vec<Claim> {
    let f = factors(s);
    let (Some(&lo), Some(&hi)) = (f.first(), f.last()) else {
        return vec![];
    };
    let step = if s.test_examples > 0 {
        1.0 / s.test_examples as f64
    } else {
        0.0
    };
    let arm = Arm::Biprop;
    let has = arms(s).contains(&arm);
    let no_arm = || Evidence::Untestable {
        why: "biprop (MPT-1/32) was not run; add it to multi_prize.arms".into(),
    };
    let shrink = if !has {
        no_arm()
    } else if hi <= lo {
        Evidence::Untestable {
            why: "one width factor only; configure at least two in multi_prize.width_factors".into(),
        }
    } else {
        let (a_lo, a_hi) = (advantage(s, arm, lo), advantage(s, arm, hi));
        let mut seeds: Vec<u64> = a_lo.keys().chain(a_hi.keys()).copied().collect();
        seeds.sort_unstable();
        seeds.dedup();
        Evidence::Paired {
            // (dense − biprop) at lo minus at hi = advantage at hi minus at lo.
            values: seeds
                .iter()
                .map(|k| match (a_lo.get(k), a_hi.get(k)) {
                    (Some(l), Some(h)) => h - l,
                    _ => f64::NAN,
                })
                .collect(),
            resolution: step,
        }
    };
    let matching = if has {
        Evidence::Paired {
            values: advantage(s, arm, hi).into_values().collect(),
            resolution: step,
        }
    } else {
        no_arm()
    };
    let mean_gap = |f: f64| {
        let v: Vec<f64> = advantage(s, arm, f).into_values().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            "–".to_string()
        } else {
            format!("{:+.2} pp", -100.0 * stats::mean(&v))
        }
    };
    decide_family(vec![
        Item::new(
            Declared::paper(
                format!(
                    "The shortfall of the `biprop` (MPT-1/32) subnetwork of random weights from the dense trained network shrinks from width ×{lo} to width ×{hi}"
                ),
                CITE,
                Hypothesis::Difference { side: Side::Greater },
            )
            .shown_in(" pp", 100.0),
            shrink,
            format!(
                "(dense − biprop) at ×{lo} minus at ×{hi}; mean dense − biprop: {} at ×{lo}, {} at ×{hi}",
                mean_gap(lo),
                mean_gap(hi)
            ),
        ),
        Item::new(
            Declared::paper(
                format!(
                    "At the largest configured width (×{hi}) the `biprop` (MPT-1/32) subnetwork matches the dense trained network (short of it by less than {:.0} point)",
                    100.0 * MATCH_MARGIN
                ),
                CITE,
                Hypothesis::NonInferior { margin: MATCH_MARGIN },
            )
            .shown_in(" pp", 100.0),
            matching,
            format!("biprop − dense at width ×{hi}"),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::verdict::Verdict;

    /// Zero-mean jitter per seed.
    fn jitter(seed: u64) -> f64 {
        [0.3, -0.5, 0.1, 0.4, -0.3][seed as usize % 5]
    }

    /// Dense at 0.86 at every width; biprop at `biprop[i]` at width factor i.
    fn summary(seeds: u64, biprop: [f64; 3], with_biprop: bool) -> MpSummary {
        let mut records = vec![];
        for seed in 0..seeds {
            for (i, f) in [0.25, 1.0, 2.0].into_iter().enumerate() {
                let mut rec = |arm: Arm, a: f64| {
                    records.push(MpRecord {
                        seed,
                        width_factor: f,
                        hidden: vec![1],
                        weights: 1,
                        arm,
                        test_accuracy: a,
                    })
                };
                rec(Arm::Dense, 0.86);
                rec(Arm::EdgePopup, 0.80);
                if with_biprop {
                    rec(Arm::Biprop, biprop[i] + 0.004 * jitter(seed + i as u64));
                }
            }
        }
        MpSummary {
            name: "m".into(),
            model: "mlp".into(),
            classes: 10,
            keep: 0.5,
            score_lr: None,
            seeds: (0..seeds).collect(),
            steps: 100,
            records,
            test_examples: 10_000,
        }
    }

    #[test]
    fn biprop_matching_at_the_largest_width_and_a_shrinking_gap_are_the_papers() {
        let c = claims(&summary(5, [0.80, 0.84, 0.858], true));
        assert_eq!(c.len(), 2);
        for x in &c {
            assert_eq!(x.verdict, Verdict::Consistent, "{}", x.line());
            assert!(
                x.source.starts_with("the paper's claim: Diffenderfer & Kailkhura 2021"),
                "{}",
                x.source
            );
        }
        assert!(c[1].claim.contains("×2"), "{}", c[1].claim);
        // Far from dense at the largest width, and the gap grows: contradicts both.
        let c = claims(&summary(5, [0.84, 0.82, 0.80], true));
        assert!(c.iter().all(|x| x.verdict == Verdict::Contradicts), "{c:#?}");
    }

    #[test]
    fn one_seed_or_no_biprop_is_inconclusive() {
        for s in [summary(1, [0.80, 0.84, 0.858], true), summary(5, [0.0; 3], false)] {
            let c = claims(&s);
            assert_eq!(c.len(), 2);
            assert!(c.iter().all(|x| x.verdict == Verdict::Inconclusive), "{c:#?}");
        }
        let c = claims(&summary(5, [0.0; 3], false));
        assert!(c[0].reason.contains("multi_prize.arms"), "{}", c[0].reason);
    }
}
