//! `ltk ticket-scale`: tickets and scale. Do more parameters mean more (and
//! better) tickets? Frankle & Carbin 2019 (Sec. 7, discussion) suggest that
//! larger networks train more easily because they contain more candidate
//! winning tickets; the prediction tested here, tickets at equal remaining
//! weights, is this project's, and the paper's own claim (Sec. 2: tickets
//! match the dense network) is tested on the unscaled network ([`claims`]).
//! Here the base MLP (LeNet-300-100 by default) is scaled
//! by width factors; IMP ([`crate::experiments::imp`], rewinding to θ0) runs on each
//! scaled network, and each network's ticket is taken where it keeps the
//! same *number* of weights (the round whose planned count is closest, in
//! log scale, to the target count). The question: at equal remaining
//! weights, is the ticket from a wider network more accurate, and does it
//! reach its early-stopping step (minimum validation loss) sooner?
//!
//! The target counts are `densities` times the prunable weights of the
//! unscaled network (width factor 1), so `densities = [0.1, 0.036]` on
//! LeNet-300-100 asks every width for about 26.6k and 9.6k weights.
//! Early-stopping steps need evaluations during training: set
//! `train.eval_every` (an error otherwise).

use serde::{Deserialize, Serialize};

use crate::config::Experiment;
use crate::experiments::imp::{Imp, ImpConfig};
use crate::models::{Mlp, Network};
use crate::paths::{write_csv, write_text, RunDir};
use crate::prune::PruneSpec;
use crate::report::plot::{LineChart, Marker, Series, Spread};
use crate::report::verdict::protocol::{decide_family, Declared, Evidence, Hypothesis, Item, Side};
use crate::report::verdict::{self, Claim};
use crate::runner::UnitEnv;
use crate::stats;
use crate::{Error, Result};

/// `[ticket_scale]` of an experiment TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketScaleConfig {
    /// Multipliers of the base MLP's hidden widths (default 0.5, 1, 2, 4).
    #[serde(default = "default_widths")]
    pub width_factors: Vec<f64>,
    /// Remaining weights as fractions of the unscaled network's prunable
    /// weights (default 10% and 3.6%); every width keeps that many.
    #[serde(default = "default_densities")]
    pub densities: Vec<f64>,
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// IMP's per-round pruning.
    #[serde(default)]
    pub prune: PruneSpec,
}

fn default_widths() -> Vec<f64> {
    vec![0.5, 1.0, 2.0, 4.0]
}
fn default_densities() -> Vec<f64> {
    vec![0.1, 0.036]
}
fn default_seeds() -> Vec<u64> {
    vec![0, 1, 2]
}

impl Default for TicketScaleConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty [ticket_scale] takes every default")
    }
}

/// One width: its network and, per target count, the IMP round and density.
#[derive(Clone, Debug)]
pub struct WidthPlan {
    pub width_factor: f64,
    pub mlp: Mlp,
    pub weights: usize,
    pub rounds: Vec<(usize, f64)>,
}

impl TicketScaleConfig {
    /// The target counts and each width's plan; checks everything before any training.
    pub fn plan(&self, exp: &Experiment) -> Result<(Vec<usize>, Vec<WidthPlan>)> {
        crate::runner::check_seeds(&self.seeds, "ticket_scale.seeds")?;
        crate::runner::check_densities(&self.densities, "ticket_scale.densities")?;
        crate::runner::check_width_factors(&self.width_factors, "ticket_scale.width_factors")?;
        if exp.spec.eval_every == 0 {
            return Err(Error::config(
                "train.eval_every",
                "evaluations during training (> 0), for the early-stopping step",
                0,
            ));
        }
        if self.prune.rate == 0.0 {
            return Err(Error::config("ticket_scale.prune.rate", "a rate in (0, 1)", 0.0));
        }
        let Network::Mlp(base) = &exp.net else {
            return Err(Error::config(
                "model",
                "a fully connected network (its hidden widths are scaled)",
                exp.net.describe(),
            ));
        };
        let count = |m: &Mlp| Network::Mlp(m.clone()).prunable_counts().values().sum::<usize>();
        let base_weights = count(base);
        let targets: Vec<usize> = self
            .densities
            .iter()
            .map(|d| ((d * base_weights as f64).round() as usize).max(1))
            .collect();
        let plans = self
            .width_factors
            .iter()
            .map(|&f| {
                let mlp = base.scaled(f)?;
                let params = crate::memory::parameter_count(mlp.param_shapes().iter().map(|(_, s)| s));
                crate::memory::check_training(
                    &format!("MLP of width factor {f}"),
                    params,
                    "ticket_scale.width_factors",
                )?;
                let net = Network::Mlp(mlp.clone());
                let weights = count(&mlp);
                let layers = net.prunable();
                self.prune.validate(&layers)?;
                let dens: Vec<f64> = targets.iter().map(|&t| t as f64 / weights as f64).collect();
                if let Some(t) = targets.iter().find(|&&t| t >= weights) {
                    return Err(Error::config(
                        "ticket_scale.densities",
                        format!("fewer remaining weights than the {weights} of width factor {f}"),
                        t,
                    ));
                }
                let rounds = self.prune.resolved(&layers).rounds_for_densities(
                    &net.prunable_counts(),
                    &dens,
                    80,
                    "ticket_scale.densities",
                )?;
                Ok(WidthPlan {
                    width_factor: f,
                    mlp,
                    weights,
                    rounds,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((targets, plans))
    }
}

/// One unit: a seed at one width factor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScaleUnit {
    pub seed: u64,
    pub width_factor: f64,
}

/// The ticket of one width at one target count (target 0: the dense network).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScaleRecord {
    pub seed: u64,
    pub width_factor: f64,
    /// Prunable weights of the dense network at this width.
    pub weights: usize,
    /// The target number of remaining weights (0 for the dense network).
    pub target: usize,
    pub round: usize,
    pub remaining: usize,
    pub accuracy: f64,
    /// Step of minimum validation loss.
    pub early_stop_step: Option<usize>,
}

/// The whole experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScaleSummary {
    pub name: String,
    pub model: String,
    pub seeds: Vec<u64>,
    pub steps: usize,
    pub targets: Vec<usize>,
    pub records: Vec<ScaleRecord>,
    /// Test examples of every accuracy (their grid step is 1/this; 0:
    /// unknown, from a summary written before it was kept).
    #[serde(default)]
    pub test_examples: usize,
}

fn run_unit(exp: &Experiment, cfg: &TicketScaleConfig, u: &ScaleUnit, env: &UnitEnv) -> Result<Vec<ScaleRecord>> {
    let (targets, plans) = cfg.plan(exp)?;
    let p = plans
        .into_iter()
        .find(|p| p.width_factor == u.width_factor)
        .ok_or_else(|| Error::invalid("ticket-scale unit", "a configured width factor", u.width_factor))?;
    let scaled = exp.with_mlp(p.mlp.clone())?;
    let icfg = ImpConfig {
        rounds: p.rounds.iter().map(|r| r.0).max().unwrap_or(1),
        prune: cfg.prune.clone(),
        seeds: vec![u.seed],
        controls: vec![],
        ..ImpConfig::default()
    };
    let dir = env
        .dir
        .child(&format!("imp_seed_{}_width_{}", u.seed, u.width_factor))?;
    let s = crate::runner::run_in::<Imp>(&scaled, &icfg, &dir, env.device, env.progress, env.resume)?;
    let rec = |target: usize, round: usize| -> Result<ScaleRecord> {
        let r = s
            .rounds
            .iter()
            .find(|r| r.round == round)
            .ok_or_else(|| Error::invalid("IMP round", "a record", round))?;
        let t = r
            .runs
            .get("ticket")
            .ok_or_else(|| Error::invalid("IMP round", "a ticket run", round))?;
        Ok(ScaleRecord {
            seed: u.seed,
            width_factor: u.width_factor,
            weights: p.weights,
            target,
            round,
            remaining: (r.density * p.weights as f64).round() as usize,
            accuracy: t.final_accuracy,
            early_stop_step: t.early_stop_step,
        })
    };
    let mut out = vec![rec(0, 0)?];
    for (&t, &(round, _)) in targets.iter().zip(&p.rounds) {
        out.push(rec(t, round)?);
    }
    Ok(out)
}

/// `ltk ticket-scale` on the experiment layer: one unit per (seed, width factor).
pub struct TicketScale;

impl crate::runner::Experiment for TicketScale {
    const NAME: &'static str = "ticket_scale";
    type Base = Experiment;
    const ABOUT: &'static str = "Tickets and scale: IMP on the MLP scaled by width factors, tickets compared at the same number of remaining weights";
    const GROWS: &'static [&'static str] = &["seeds"];
    const FLAGS: &'static [crate::runner::flags::Flag] = &[
        crate::runner::flags::Flag::new("densities", "Remaining weights as fractions of the unscaled network's."),
        crate::runner::flags::Flag::new("seeds", "Replicates (init and data-order seeds)."),
        crate::runner::flags::Flag::new("width_factors", "Multipliers of the hidden widths (e.g. 0.5,1,2,4)."),
    ];
    type Config = TicketScaleConfig;
    type Unit = ScaleUnit;
    type Record = Vec<ScaleRecord>;
    type Summary = ScaleSummary;

    fn banner(base: &Experiment, cfg: &TicketScaleConfig) -> String {
        match cfg.plan(base) {
            Ok((targets, plans)) => format!(
                "{}: tickets of {} scaled by {:?} on {}, at {:?} remaining weights (IMP rounds per width {:?}), seeds {:?}, {} steps per network",
                base.config.name,
                base.net.describe(),
                cfg.width_factors,
                base.split.train.name,
                targets,
                plans.iter().map(|p| p.rounds.iter().map(|r| r.0).collect::<Vec<_>>()).collect::<Vec<_>>(),
                cfg.seeds,
                base.spec.steps
            ),
            Err(e) => format!("{}: tickets and scale ({e})", base.config.name),
        }
    }
    fn units(base: &Experiment, cfg: &TicketScaleConfig) -> Result<Vec<ScaleUnit>> {
        cfg.plan(base)?;
        Ok(cfg
            .seeds
            .iter()
            .flat_map(|&seed| {
                cfg.width_factors
                    .iter()
                    .map(move |&width_factor| ScaleUnit { seed, width_factor })
            })
            .collect())
    }
    fn unit_key(u: &ScaleUnit) -> String {
        format!("seed_{}_width_{}", u.seed, u.width_factor)
    }
    fn run_unit(base: &Experiment, cfg: &TicketScaleConfig, u: &ScaleUnit, env: &UnitEnv) -> Result<Vec<ScaleRecord>> {
        run_unit(base, cfg, u, env)
    }
    fn summarize(base: &Experiment, cfg: &TicketScaleConfig, records: Vec<Vec<ScaleRecord>>) -> Result<ScaleSummary> {
        let (targets, _) = cfg.plan(base)?;
        Ok(ScaleSummary {
            name: base.config.name.clone(),
            model: base.net.describe(),
            seeds: cfg.seeds.clone(),
            steps: base.spec.steps,
            targets,
            records: records.into_iter().flatten().collect(),
            test_examples: base.split.test.len(),
        })
    }
    fn write_report(dir: &RunDir, s: &ScaleSummary) -> Result<()> {
        write_summary(dir, s)
    }
    fn claims(s: &ScaleSummary) -> Vec<Claim> {
        claims(s)
    }
    fn console(s: &ScaleSummary) -> String {
        table(s)
    }
}

fn factors(s: &ScaleSummary) -> Vec<f64> {
    let mut f: Vec<f64> = s.records.iter().map(|r| r.width_factor).collect();
    f.sort_by(f64::total_cmp);
    f.dedup();
    f
}

fn cell(s: &ScaleSummary, f: f64, target: usize) -> Vec<&ScaleRecord> {
    s.records
        .iter()
        .filter(|r| r.width_factor == f && r.target == target)
        .collect()
}

fn target_label(t: usize) -> String {
    if t == 0 {
        "dense".into()
    } else {
        format!("{t} weights")
    }
}

/// Accuracy and early-stopping step per width factor and target count.
pub fn table(s: &ScaleSummary) -> String {
    let cols: Vec<usize> = std::iter::once(0).chain(s.targets.iter().copied()).collect();
    let mut out = format!(
        "Test accuracy (%) / early-stopping step (minimum validation loss), mean ± sd over {} seeds; tickets from IMP on each width at about the same number of remaining weights\n\n| width factor | weights | {} |\n|---:|---:|{}\n",
        s.seeds.len(),
        cols.iter().map(|&t| target_label(t)).collect::<Vec<_>>().join(" | "),
        "---:|".repeat(cols.len())
    );
    for f in factors(s) {
        let weights = s
            .records
            .iter()
            .find(|r| r.width_factor == f)
            .map(|r| r.weights)
            .unwrap_or(0);
        let cells: Vec<String> = cols
            .iter()
            .map(|&t| {
                let c = cell(s, f, t);
                let acc: Vec<f64> = c.iter().map(|r| r.accuracy).collect();
                let es: Vec<f64> = c.iter().filter_map(|r| r.early_stop_step.map(|x| x as f64)).collect();
                let rem: Vec<f64> = c.iter().map(|r| r.remaining as f64).collect();
                match (stats::mean_sd(&acc), stats::mean_sd(&es)) {
                    (Some((a, sa)), Some((e, se))) => format!(
                        "{:.2} ± {:.2} / {:.0} ± {:.0}{}",
                        100.0 * a,
                        100.0 * sa,
                        e,
                        se,
                        if t == 0 {
                            String::new()
                        } else {
                            format!(" ({:.0} kept)", stats::mean(&rem))
                        }
                    ),
                    _ => "–".into(),
                }
            })
            .collect();
        out.push_str(&format!("| {f} | {weights} | {} |\n", cells.join(" | ")));
    }
    out
}

/// Writes summary.json, records.csv, report.md and two figures (accuracy
/// and early-stopping step vs width factor, one line per target count).
pub fn write_summary(dir: &RunDir, s: &ScaleSummary) -> Result<()> {
    let rows: Vec<Vec<String>> = s
        .records
        .iter()
        .map(|r| {
            vec![
                r.seed.to_string(),
                r.width_factor.to_string(),
                r.weights.to_string(),
                r.target.to_string(),
                r.round.to_string(),
                r.remaining.to_string(),
                r.accuracy.to_string(),
                r.early_stop_step.map(|x| x.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    write_csv(
        &dir.file("records.csv"),
        &[
            "seed",
            "width_factor",
            "weights",
            "target",
            "round",
            "remaining",
            "accuracy",
            "early_stop_step",
        ],
        &rows,
    )?;
    let cols: Vec<usize> = std::iter::once(0).chain(s.targets.iter().copied()).collect();
    for (file, y, get) in [
        (
            "ticket_scale_accuracy",
            "test accuracy (%)",
            (|r: &ScaleRecord| Some(100.0 * r.accuracy)) as fn(&ScaleRecord) -> Option<f64>,
        ),
        ("ticket_scale_early_stop", "early-stopping step", |r: &ScaleRecord| {
            r.early_stop_step.map(|x| x as f64)
        }),
    ] {
        let mut c = LineChart::new(
            &format!("{}: tickets at equal remaining weights vs width", s.name),
            "width factor",
            y,
        )
        .log_x();
        for &t in &cols {
            let pts: Vec<(f64, f64, f64, f64)> = factors(s)
                .into_iter()
                .filter_map(|f| {
                    let v: Vec<f64> = cell(s, f, t).into_iter().filter_map(get).collect();
                    let (m, _) = stats::mean_sd(&v)?;
                    let (lo, hi) = stats::sd_band(&v);
                    Some((f, m, lo, hi))
                })
                .collect();
            c.push(
                Series::line(target_label(t), pts.iter().map(|p| (p.0, p.1)))
                    .with_marker(Marker::LinePoints)
                    .with_band(Spread::Sd("seeds"), pts.iter().map(|p| (p.0, p.2, p.3))),
            );
        }
        c.save(&dir.figure(file))?;
    }
    write_text(
        &dir.report_md(),
        &format!(
            "# Tickets and scale: {}\n\nBase model {} scaled by width factor, seeds {:?}, {} steps per network, IMP rewinding to θ0 on every width; each width's ticket taken at the round closest to each target count. Per-unit wall times are in units/*.json.\n\n{}\n![accuracy](figures/ticket_scale_accuracy.png)\n![early stop](figures/ticket_scale_early_stop.png)\n\n{}",
            s.name,
            s.model,
            s.seeds,
            s.steps,
            table(s),
            verdict::claims_markdown(&claims(s))
        ),
    )
}

/// The margin of "matching" the dense network: a ticket's accuracy may fall
/// short of its dense network's (same width, same seed) by less than this (1
/// point). Frankle & Carbin define winning tickets by "commensurate"
/// accuracy without a number; 1 point is this project's reading, declared
/// before the data.
pub const MATCH_MARGIN: f64 = crate::report::verdict::protocol::MATCHING_MARGIN;

/// The width factor of the paper's own network (the unscaled base MLP,
/// LeNet-300-100 by default), where the matching claim is tested.
pub const PAPER_WIDTH: f64 = 1.0;

/// Least-squares slope of y on log2(x); `None` with fewer than 2 distinct x.
fn slope(pts: &[(f64, f64)]) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let xs: Vec<f64> = pts.iter().map(|p| p.0.log2()).collect();
    let mx = stats::mean(&xs);
    let my = stats::mean(&pts.iter().map(|p| p.1).collect::<Vec<_>>());
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    Some(xs.iter().zip(pts).map(|(x, p)| (x - mx) * (p.1 - my)).sum::<f64>() / sxx)
}

/// Every seed of the summary (the configured ones and any in the records).
fn all_seeds(s: &ScaleSummary) -> Vec<u64> {
    let mut v: Vec<u64> = s
        .seeds
        .iter()
        .copied()
        .chain(s.records.iter().map(|r| r.seed))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The declared claims, one family ([`decide_family`]). Locations, fixed
/// before the data: every target count of `ticket_scale.densities`, and
/// every configured width (none chosen by its result). Per target count:
/// 1. this project's hypothesis, from Frankle & Carbin's conjecture (Sec. 7)
///    that larger networks train more easily because they contain more
///    candidate tickets: at the same number of remaining weights, the ticket
///    of a wider network is more accurate (`Difference`, greater, on each
///    seed's least-squares slope of ticket accuracy on log2(width factor)
///    over all configured widths; a seed missing a width counts as dropped);
/// 2. the paper's claim (Frankle & Carbin 2019, Sec. 2): on the unscaled
///    network ([`PAPER_WIDTH`]) the ticket matches its dense network
///    (`NonInferior`, ticket − dense > −[`MATCH_MARGIN`], paired per seed:
///    the ticket rewinds to the dense network's θ0); untestable when width
///    factor 1 is not configured.
pub fn claims(s: &ScaleSummary) -> Vec<Claim> {
    let f = factors(s);
    if f.is_empty() {
        return vec![];
    }
    let step = if s.test_examples > 0 {
        1.0 / s.test_examples as f64
    } else {
        0.0
    };
    let logs: Vec<f64> = f.iter().map(|x| x.log2()).collect();
    let mx = stats::mean(&logs);
    let sxx: f64 = logs.iter().map(|x| (x - mx).powi(2)).sum();
    let seeds = all_seeds(s);
    let acc_at = |seed: u64, w: f64, t: usize| -> Option<f64> {
        s.records
            .iter()
            .find(|r| r.seed == seed && r.width_factor == w && r.target == t)
            .map(|r| r.accuracy)
    };
    let mut items = vec![];
    for &t in &s.targets {
        let remaining = |w: f64| stats::mean(&cell(s, w, t).iter().map(|r| r.remaining as f64).collect::<Vec<_>>());
        // 1. Wider → better ticket at the same count.
        let evidence = if f.len() < 2 {
            Evidence::Untestable {
                why: "one width factor only; configure at least two in ticket_scale.width_factors".into(),
            }
        } else {
            let slopes: Vec<f64> = seeds
                .iter()
                .map(|&seed| {
                    let pts: Option<Vec<(f64, f64)>> = f.iter().map(|&w| acc_at(seed, w, t).map(|a| (w, a))).collect();
                    pts.and_then(|p| slope(&p)).unwrap_or(f64::NAN)
                })
                .collect();
            Evidence::Paired {
                values: slopes,
                // The rounding of each accuracy, carried through the slope.
                resolution: if sxx > 0.0 { step / sxx.sqrt() } else { 0.0 },
            }
        };
        items.push(Item::new(
            Declared::project(
                format!(
                    "At the same number of remaining weights (about {t}), the IMP ticket of a wider network is more accurate"
                ),
                "derived from Frankle & Carbin 2019 (ICLR), Sec. 7: larger networks may train more easily because they contain more candidate winning tickets; the paper does not test tickets at equal remaining weights",
                Hypothesis::Difference { side: Side::Greater },
            )
            .shown_in(" pp", 100.0),
            evidence,
            format!(
                "per-seed slope of ticket accuracy per doubling of width over width factors {f:?} (mean remaining weights {})",
                f.iter()
                    .map(|&w| format!("{:.0}", remaining(w)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
        // 2. Matching on the paper's network.
        let evidence = if !f.contains(&PAPER_WIDTH) {
            Evidence::Untestable {
                why: format!(
                    "width factor {PAPER_WIDTH} (the unscaled network) is not in ticket_scale.width_factors; add it"
                ),
            }
        } else {
            Evidence::Paired {
                values: seeds
                    .iter()
                    .filter(|&&seed| acc_at(seed, PAPER_WIDTH, t).is_some() || acc_at(seed, PAPER_WIDTH, 0).is_some())
                    .map(
                        |&seed| match (acc_at(seed, PAPER_WIDTH, t), acc_at(seed, PAPER_WIDTH, 0)) {
                            (Some(a), Some(d)) => a - d,
                            _ => f64::NAN,
                        },
                    )
                    .collect(),
                resolution: step,
            }
        };
        items.push(Item::new(
            Declared::paper(
                format!(
                    "On the unscaled network (width ×{PAPER_WIDTH}) the IMP ticket with about {t} weights left matches the dense network (short of it by less than {:.0} point)",
                    100.0 * MATCH_MARGIN
                ),
                "Frankle & Carbin 2019 (ICLR), Sec. 2 (LeNet-300-100: winning tickets reach the dense network's accuracy down to about 3.6% of the weights)",
                Hypothesis::NonInferior { margin: MATCH_MARGIN },
            )
            .shown_in(" pp", 100.0),
            evidence,
            format!("ticket − dense at width ×{PAPER_WIDTH}, {:.0} weights kept", remaining(PAPER_WIDTH)),
        ));
    }
    decide_family(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::verdict::Verdict;

    /// Zero-mean jitter per seed.
    fn jitter(seed: u64) -> f64 {
        [0.3, -0.5, 0.1, 0.4, -0.3][seed as usize % 5]
    }

    /// Dense at 0.83; the ticket at `base + per_doubling · log2(f)` at each
    /// target count, per width factor in `widths`.
    fn summary(seeds: u64, widths: &[f64], base: f64, per_doubling: f64) -> ScaleSummary {
        let mut records = vec![];
        for seed in 0..seeds {
            for (i, &f) in widths.iter().enumerate() {
                for target in [0usize, 26620, 9583] {
                    let acc = if target == 0 {
                        0.83
                    } else {
                        base + per_doubling * f.log2() + 0.004 * jitter(seed + i as u64)
                    };
                    records.push(ScaleRecord {
                        seed,
                        width_factor: f,
                        weights: 100_000,
                        target,
                        round: 3,
                        remaining: target,
                        accuracy: acc,
                        early_stop_step: Some(400),
                    });
                }
            }
        }
        ScaleSummary {
            name: "s".into(),
            model: "m".into(),
            seeds: (0..seeds).collect(),
            steps: 100,
            targets: vec![26620, 9583],
            records,
            test_examples: 10_000,
        }
    }

    #[test]
    fn a_clear_trend_and_a_matching_ticket_are_decided_with_their_origin() {
        let widths = [0.5, 1.0, 2.0, 4.0];
        let c = claims(&summary(5, &widths, 0.84, 0.01));
        assert_eq!(c.len(), 4);
        for x in &c {
            assert_eq!(x.verdict, Verdict::Consistent, "{}", x.line());
        }
        assert!(c[0].source.starts_with("this project's hypothesis"), "{}", c[0].source);
        assert!(
            c[1].source.starts_with("the paper's claim: Frankle & Carbin 2019"),
            "{}",
            c[1].source
        );
        // Wider is worse, and the unscaled ticket is 3 points short of dense.
        let c = claims(&summary(5, &widths, 0.80, -0.01));
        assert!(c.iter().all(|x| x.verdict == Verdict::Contradicts), "{c:#?}");
    }

    #[test]
    fn no_trend_one_seed_or_no_unscaled_width_is_inconclusive() {
        let c = claims(&summary(5, &[0.5, 1.0, 2.0, 4.0], 0.83, 0.0));
        assert_eq!(c[0].verdict, Verdict::Inconclusive, "{}", c[0].line());
        let c = claims(&summary(1, &[0.5, 1.0, 2.0, 4.0], 0.86, 0.01));
        assert!(c.iter().all(|x| x.verdict == Verdict::Inconclusive), "{c:#?}");
        let c = claims(&summary(5, &[0.5, 2.0, 4.0], 0.86, 0.01));
        assert_eq!(c[1].verdict, Verdict::Inconclusive);
        assert!(c[1].reason.contains("width factor 1"), "{}", c[1].reason);
    }
}
