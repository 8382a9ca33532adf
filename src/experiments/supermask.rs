//! Supermasks (Zhou, Lan, Liu & Yosinski 2019, Sec. 3 and 5): masks that make
//! the **untrained** network θ0 perform far better than chance.
//!
//! Per seed: train the dense network θ0 → θT once; for every mask criterion
//! (Zhou et al.'s `large_final`, `large_init`, `large_init_large_final`,
//! `magnitude_increase`, `large_final_same_sign`, `movement`, and the
//! `random` control; see [`crate::prune`]) score the weights from (θ0, θT),
//! build the one-shot mask at each target density, and evaluate with no
//! training:
//! - `init`: θ0 ⊙ m (the supermask of their Sec. 5);
//! - `signed_constant`: each kept weight set to `sign(θ0) · σ_l`, σ_l the
//!   standard deviation of layer l at init (their "signed constant" weights).
//!
//! One-shot masks as in the authors' code: `get_weight_init.py`
//! (uber-research/deconstructing-lottery-tickets) masks one trained network
//! at per-layer prune fractions `1 − base_l^power`, i.e. the per-layer
//! densities IMP reaches after `power` rounds. Here the target density is
//! mapped to the IMP round r whose planned density is closest under
//! `[supermask.prune]` (default 20% per round, output layer at half rate),
//! and the mask keeps the top-scoring weights at exactly the per-layer
//! counts of round r. Zhou et al.'s MNIST figures also use an early-stopped
//! θT (their `final_weights_ind`); here θT is the end of training.
//!
//! The verdicts ([`claims`]): Zhou et al.'s supermask claim, declared at
//! every configured density, each a paired per-seed comparison of the
//! `large_final_same_sign` mask with the random mask on the same θ0,
//! decided as one family (Holm).

use std::collections::BTreeMap;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::config::Experiment;
use crate::params::{Mask, ParamSet};
use crate::paths::{write_csv, write_text, RunDir};
use crate::prune::{self, Criterion, PruneSpec};
use crate::report::plot::{LineChart, Marker, Series, Spread};
use crate::report::verdict::protocol::{decide_family, Declared, Evidence, Hypothesis, Item, Side};
use crate::report::verdict::{self, Claim};
use crate::stats;
use crate::train::{self, Supervised, TrainOptions};
use crate::{Error, Result};

/// `[supermask]` of an experiment TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupermaskConfig {
    /// Mask criteria (default: all of Zhou et al.'s plus random).
    #[serde(default = "default_criteria")]
    pub criteria: Vec<Criterion>,
    /// Target densities (fractions of prunable weights kept).
    #[serde(default = "default_densities")]
    pub densities: Vec<f64>,
    /// Replicates: init and data-order seed of each dense run.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// The per-round schedule that sets each layer's density (see the module docs).
    #[serde(default)]
    pub prune: PruneSpec,
}

fn default_criteria() -> Vec<Criterion> {
    Criterion::ALL.to_vec()
}
fn default_densities() -> Vec<f64> {
    vec![0.5, 0.3, 0.2, 0.1, 0.05, 0.035, 0.02]
}
fn default_seeds() -> Vec<u64> {
    vec![0, 1, 2]
}

impl Default for SupermaskConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty [supermask] takes every default")
    }
}

/// Rounds searched for a target density (0.8^60 ≈ 1.5e-6).
const MAX_ROUNDS: usize = 60;

impl SupermaskConfig {
    /// Checks the config against the experiment before any training and
    /// returns, per target density, the IMP round whose density is closest.
    pub fn plan(&self, exp: &Experiment) -> Result<Vec<usize>> {
        if self.criteria.is_empty() {
            return Err(Error::config("supermask.criteria", "at least one criterion", "[]"));
        }
        crate::runner::check_seeds(&self.seeds, "supermask.seeds")?;
        crate::runner::check_densities(&self.densities, "supermask.densities")?;
        let layers = exp.net.prunable();
        self.prune.validate(&layers)?;
        if self.prune.rate == 0.0 {
            return Err(Error::config("supermask.prune.rate", "a rate in (0, 1)", 0.0));
        }
        let spec = self.prune.resolved(&layers);
        let counts = exp.net.prunable_counts();
        Ok(spec
            .rounds_for_densities(&counts, &self.densities, MAX_ROUNDS, "supermask.densities")?
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }
}

/// One evaluated mask.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SupermaskRecord {
    pub seed: u64,
    pub criterion: Criterion,
    pub target_density: f64,
    pub density: f64,
    /// Test accuracy of θ0 ⊙ m.
    pub init_accuracy: f64,
    /// Test accuracy of sign(θ0)·σ_l ⊙ m.
    pub signed_constant_accuracy: f64,
}

/// The whole experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SupermaskSummary {
    pub name: String,
    pub model: String,
    pub classes: usize,
    /// Dense trained test accuracy per seed.
    pub dense_accuracy: Vec<f64>,
    pub records: Vec<SupermaskRecord>,
    /// Test examples (accuracies lie on a grid of 1/test_size; 0 when unknown).
    #[serde(default)]
    pub test_size: usize,
}

/// What one seed (one unit) measures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedRecord {
    pub seed: u64,
    /// Dense trained test accuracy.
    pub dense_accuracy: f64,
    pub records: Vec<SupermaskRecord>,
}

/// One seed: trains the dense network once, then evaluates every criterion's
/// masks at every density (no training).
pub fn run_seed(
    exp: &Experiment,
    cfg: &SupermaskConfig,
    seed: u64,
    device: &Device,
    progress: bool,
) -> Result<SeedRecord> {
    let rounds = cfg.plan(exp)?;
    let layers = exp.net.prunable();
    let spec = cfg.prune.resolved(&layers);
    let loss = exp.config.train.loss;
    let mut records = Vec::new();
    let last = rounds.iter().copied().max().unwrap_or(0);
    let theta0 = exp.net.init(seed);
    let s = train::TrainSpec {
        data_seed: seed,
        checkpoint_steps: vec![],
        ..exp.spec.clone()
    };
    let mut model = Supervised::new(exp.net.clone(), loss, device);
    let dense = train::train(
        &mut model,
        &theta0,
        &exp.split,
        &s,
        &TrainOptions {
            progress,
            ..Default::default()
        },
    )?;
    let dense_accuracy = dense.last().map(|r| r.test_accuracy).unwrap_or(f64::NAN);
    let eval = |model: &mut Supervised, p: &ParamSet| -> Result<f64> {
        Ok(train::evaluate(model, p, &exp.split.test, exp.spec.eval_chunk)?.accuracy)
    };
    for &c in &cfg.criteria {
        let scores = prune::scores(
            c,
            &theta0,
            &dense.params,
            &layers,
            crate::rng::derive_seed(seed, "supermask-random", 0),
        )?;
        let mut mask = Mask::ones(&theta0, &layers)?;
        for r in 1..=last {
            // The same scores every round: the one-shot mask at round r's per-layer counts.
            mask = prune::prune(&spec, &mask, &scores)?;
            for (i, _) in rounds.iter().enumerate().filter(|(_, &rr)| rr == r) {
                let mut p = theta0.clone();
                mask.apply(&mut p)?;
                let init_accuracy = eval(&mut model, &p)?;
                let signed_constant_accuracy = eval(&mut model, &prune::sign_constant(&theta0, &mask)?)?;
                records.push(SupermaskRecord {
                    seed,
                    criterion: c,
                    target_density: cfg.densities[i],
                    density: mask.density(),
                    init_accuracy,
                    signed_constant_accuracy,
                });
            }
        }
        if progress {
            let best = records
                .iter()
                .filter(|r| r.criterion == c)
                .map(|r| r.init_accuracy)
                .fold(0.0, f64::max);
            eprintln!("seed {seed} {}: best supermask accuracy {:.2}%", c.name(), 100.0 * best);
        }
    }
    Ok(SeedRecord {
        seed,
        dense_accuracy,
        records,
    })
}

/// Combines the per-seed records (in seed order).
pub fn summarize(exp: &Experiment, seeds: Vec<SeedRecord>) -> SupermaskSummary {
    SupermaskSummary {
        name: exp.config.name.clone(),
        model: exp.net.describe(),
        classes: exp.split.train.num_classes,
        dense_accuracy: seeds.iter().map(|s| s.dense_accuracy).collect(),
        records: seeds.into_iter().flat_map(|s| s.records).collect(),
        test_size: exp.split.test.len(),
    }
}

/// Runs every seed in this process and writes the report (no run policy;
/// `ltk supermask` goes through [`crate::runner::run`]).
pub fn run(
    exp: &Experiment,
    cfg: &SupermaskConfig,
    dir: &RunDir,
    device: &Device,
    progress: bool,
) -> Result<SupermaskSummary> {
    cfg.plan(exp)?;
    let seeds = cfg
        .seeds
        .iter()
        .map(|&seed| run_seed(exp, cfg, seed, device, progress))
        .collect::<Result<Vec<_>>>()?;
    let s = summarize(exp, seeds);
    crate::runner::report::<Supermask>(dir, &s)?;
    Ok(s)
}

/// `ltk supermask` on the experiment layer: one unit per seed.
pub struct Supermask;

impl crate::runner::Experiment for Supermask {
    const NAME: &'static str = "supermask";
    type Base = Experiment;
    const ABOUT: &'static str =
        "Supermasks (Zhou et al. 2019): one-shot masks by each criterion applied to the untrained network";
    const GROWS: &'static [&'static str] = &["seeds"];
    const FLAGS: &'static [crate::runner::flags::Flag] = &[
        crate::runner::flags::Flag::new("densities", "Target densities (fractions of weights kept)."),
        crate::runner::flags::Flag::new("seeds", "Replicates (init and data-order seeds)."),
    ];
    type Config = SupermaskConfig;
    type Unit = u64;
    type Record = SeedRecord;
    type Summary = SupermaskSummary;

    fn resolve(base: &Experiment, cfg: &mut SupermaskConfig) {
        cfg.prune = cfg.prune.resolved(&base.net.prunable());
    }
    fn banner(base: &Experiment, cfg: &SupermaskConfig) -> String {
        format!(
            "{}: supermasks of {} on {}, criteria {:?}, densities {:?}, seeds {:?}, {} steps per dense run",
            base.config.name,
            base.net.describe(),
            base.split.train.name,
            cfg.criteria.iter().map(|c| c.name()).collect::<Vec<_>>(),
            cfg.densities,
            cfg.seeds,
            base.spec.steps
        )
    }
    fn units(base: &Experiment, cfg: &SupermaskConfig) -> Result<Vec<u64>> {
        cfg.plan(base)?;
        Ok(cfg.seeds.clone())
    }
    fn unit_key(seed: &u64) -> String {
        format!("seed_{seed}")
    }
    fn run_unit(
        base: &Experiment,
        cfg: &SupermaskConfig,
        seed: &u64,
        env: &crate::runner::UnitEnv,
    ) -> Result<SeedRecord> {
        run_seed(base, cfg, *seed, env.device, env.progress)
    }
    fn summarize(base: &Experiment, _cfg: &SupermaskConfig, records: Vec<SeedRecord>) -> Result<SupermaskSummary> {
        Ok(summarize(base, records))
    }
    fn write_report(dir: &RunDir, s: &SupermaskSummary) -> Result<()> {
        write_summary(dir, s)
    }
    fn claims(s: &SupermaskSummary) -> Vec<Claim> {
        claims(s)
    }
    fn console(s: &SupermaskSummary) -> String {
        table(s)
    }
}

/// Accuracies (init or signed constant) per (criterion, target density), over seeds.
fn grouped(s: &SupermaskSummary, signed: bool) -> BTreeMap<(Criterion, u64), (f64, Vec<f64>)> {
    let mut g: BTreeMap<(Criterion, u64), (f64, Vec<f64>)> = BTreeMap::new();
    for r in &s.records {
        let e = g
            .entry((r.criterion, (1.0 - r.target_density).to_bits()))
            .or_insert((r.density, vec![]));
        e.1.push(if signed {
            r.signed_constant_accuracy
        } else {
            r.init_accuracy
        });
    }
    g
}

fn targets(s: &SupermaskSummary) -> Vec<f64> {
    let mut t: Vec<f64> = s.records.iter().map(|r| r.target_density).collect();
    t.sort_by(|a, b| b.total_cmp(a));
    t.dedup();
    t
}

fn criteria(s: &SupermaskSummary) -> Vec<Criterion> {
    let mut c: Vec<Criterion> = s.records.iter().map(|r| r.criterion).collect();
    c.sort();
    c.dedup();
    c
}

/// Tables of mean ± sd test accuracy (%) over seeds: criteria × densities.
pub fn table(s: &SupermaskSummary) -> String {
    let ts = targets(s);
    let mut out = String::new();
    for (signed, title) in [
        (false, "untrained θ0 under the mask"),
        (true, "signed constants sign(θ0)·σ_l under the mask"),
    ] {
        let g = grouped(s, signed);
        out.push_str(&format!(
            "Test accuracy (%) of the {title}, mean ± sd over {} seeds (chance {:.1}%)\n\n| criterion | {} |\n|---|{}\n",
            s.dense_accuracy.len(),
            100.0 / s.classes.max(1) as f64,
            ts.iter()
                .map(|t| {
                    let d = s
                        .records
                        .iter()
                        .find(|r| r.target_density == *t)
                        .map(|r| r.density)
                        .unwrap_or(*t);
                    format!("{:.1}% kept", 100.0 * d)
                })
                .collect::<Vec<_>>()
                .join(" | "),
            "---:|".repeat(ts.len())
        ));
        for c in criteria(s) {
            let cells: Vec<String> = ts
                .iter()
                .map(|t| {
                    g.get(&(c, (1.0 - t).to_bits()))
                        .and_then(|(_, v)| stats::mean_sd(v))
                        .map(|(m, sd)| format!("{:.2} ± {:.2}", 100.0 * m, 100.0 * sd))
                        .unwrap_or_else(|| "–".into())
                })
                .collect();
            out.push_str(&format!("| {} | {} |\n", c.name(), cells.join(" | ")));
        }
        out.push('\n');
    }
    if let Some((m, sd)) = stats::mean_sd(&s.dense_accuracy) {
        out.push_str(&format!(
            "Dense network after training: {:.2} ± {:.2}%.\n",
            100.0 * m,
            100.0 * sd
        ));
    }
    out
}

/// Writes `summary.json`, `records.csv`, `report.md` and the figures.
pub fn write_summary(dir: &RunDir, s: &SupermaskSummary) -> Result<()> {
    let rows: Vec<Vec<String>> = s
        .records
        .iter()
        .map(|r| {
            vec![
                r.seed.to_string(),
                r.criterion.name().to_string(),
                r.target_density.to_string(),
                r.density.to_string(),
                r.init_accuracy.to_string(),
                r.signed_constant_accuracy.to_string(),
            ]
        })
        .collect();
    write_csv(
        &dir.file("records.csv"),
        &[
            "seed",
            "criterion",
            "target_density",
            "density",
            "init_accuracy",
            "signed_constant_accuracy",
        ],
        &rows,
    )?;
    for (signed, name, what) in [
        (false, "supermask_init", "untrained θ0 under the mask"),
        (true, "supermask_signed_constant", "signed constants under the mask"),
    ] {
        let g = grouped(s, signed);
        let mut c = LineChart::new(
            &format!("{}: test accuracy of the {what} (no training)", s.name),
            "% of weights remaining (log scale)",
            "test accuracy (%)",
        )
        .log_x()
        .reverse_x()
        .hline(100.0 / s.classes.max(1) as f64, "chance");
        for crit in criteria(s) {
            let mut pts: Vec<(f64, f64, f64, f64)> = g
                .iter()
                .filter(|((cc, _), _)| *cc == crit)
                .filter_map(|(_, (d, v))| {
                    let (m, _) = stats::mean_sd(v)?;
                    let (lo, hi) = stats::sd_band(v);
                    Some((100.0 * d, 100.0 * m, 100.0 * lo, 100.0 * hi))
                })
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            c.push(
                Series::line(crit.name(), pts.iter().map(|p| (p.0, p.1)))
                    .with_marker(Marker::LinePoints)
                    .with_band(Spread::Sd("seeds"), pts.iter().map(|p| (p.0, p.2, p.3))),
            );
        }
        c.save(&dir.figure(name))?;
    }
    write_text(
        &dir.report_md(),
        &format!(
            "# Supermasks: {}\n\n{}\n\nOne-shot masks from one trained network per seed, evaluated with no training (Zhou et al. 2019, Sec. 5). Per-seed wall times are in units/*.json.\n\n{}\n\n{}",
            s.name,
            s.model,
            table(s),
            verdict::claims_markdown(&claims(s))
        ),
    )
}

/// The grid step of accuracies on the test set (0 when unknown).
fn resolution(s: &SupermaskSummary) -> f64 {
    if s.test_size > 0 {
        1.0 / s.test_size as f64
    } else {
        0.0
    }
}

/// Zhou et al. 2019's supermask claim (Sec. 5): a `large_final_same_sign`
/// mask makes the untrained θ0 far better than chance. Declared at every
/// configured density (the densities are fixed in the config before the
/// data; no density is chosen from the results), one claim each, decided as
/// one family (Holm, α = 0.05 each way): the paired per-seed difference
/// (large_final_same_sign − random mask of the same per-layer counts, on the
/// same θ0; the random mask is the chance-level control) lies above 0. A
/// density without either mask is untestable; fewer than 2 seeds give no
/// interval (inconclusive).
pub fn claims(s: &SupermaskSummary) -> Vec<Claim> {
    let chance = 1.0 / s.classes.max(1) as f64;
    let crits = criteria(s);
    let by_seed = |c: Criterion, t: f64| -> BTreeMap<u64, f64> {
        s.records
            .iter()
            .filter(|r| r.criterion == c && r.target_density == t)
            .map(|r| (r.seed, r.init_accuracy))
            .collect()
    };
    let mean = |v: &BTreeMap<u64, f64>| {
        stats::mean_sd(&v.values().copied().collect::<Vec<_>>())
            .map(|(m, _)| format!("{:.2}%", 100.0 * m))
            .unwrap_or_else(|| "not run".into())
    };
    let items = targets(s)
        .into_iter()
        .map(|t| {
            let density = s
                .records
                .iter()
                .find(|r| r.target_density == t)
                .map(|r| r.density)
                .unwrap_or(t);
            let declared = Declared::paper(
                format!("At {:.1}% of weights kept, a large_final_same_sign mask applied to the untrained network θ0 classifies better than a random mask of the same per-layer counts on the same θ0", 100.0 * density),
                "Zhou et al. 2019, Sec. 5 (supermasks: 86% on MNIST with a fully connected net, 41% on CIFAR-10, with no training)",
                Hypothesis::Difference { side: Side::Greater },
            )
            .shown_in(" pp", 100.0);
            let lfss = by_seed(Criterion::LargeFinalSameSign, t);
            let random = by_seed(Criterion::Random, t);
            let evidence = if !crits.contains(&Criterion::LargeFinalSameSign) {
                Evidence::Untestable {
                    why: "no large_final_same_sign masks: add large_final_same_sign to supermask.criteria".into(),
                }
            } else if !crits.contains(&Criterion::Random) {
                Evidence::Untestable {
                    why: "no random-mask control: add random to supermask.criteria".into(),
                }
            } else {
                Evidence::Paired {
                    values: lfss
                        .iter()
                        .filter_map(|(seed, a)| random.get(seed).map(|b| a - b))
                        .collect(),
                    resolution: resolution(s),
                }
            };
            let context = format!(
                "large_final_same_sign − random on θ0; large_final_same_sign {}, random mask {}, chance {:.1}%",
                mean(&lfss),
                mean(&random),
                100.0 * chance
            );
            Item::new(declared, evidence, context)
        })
        .collect();
    decide_family(items)
}
