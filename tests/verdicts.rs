//! Every experiment ends with verdicts in one form: IMP, LMC, strong tickets
//! and Lueker's rate, each checked on synthetic summaries whose right answer
//! is known (and Lueker's on a small real run).

use std::collections::BTreeMap;

use lottery_tangent::experiments::imp::{self, ImpSummary, RoundRecord, RunRecord};
use lottery_tangent::experiments::lmc::{self, LmcSummary, PairResult, PathEval};
use lottery_tangent::experiments::lueker;
use lottery_tangent::experiments::strong::{self as strong, PensiaRecord, StrongSummary};
use lottery_tangent::report::verdict::{claims_markdown, Verdict};
use lottery_tangent::strong::pensia::ConstructionStats;

fn run(acc: f64) -> RunRecord {
    RunRecord {
        final_accuracy: acc,
        final_test_loss: 0.1,
        early_stop_step: None,
        early_stop_accuracy: None,
        start_step: 0,
        optimizer_steps: 0,
    }
}

/// IMP at rate 0.2 per round for 15 rounds (densities 0.8^r: rounds 7, 12
/// and 15 stand for the declared 21.1%, 7.0% and 3.6%), one dense accuracy
/// per seed, then per round `ticket(round, seed)` and `reinit(round, seed)`.
fn imp_summary(
    dense: &[f64],
    ticket: impl Fn(usize, usize) -> f64,
    reinit: impl Fn(usize, usize) -> f64,
) -> ImpSummary {
    let mut recs = Vec::new();
    for (seed, &d) in dense.iter().enumerate() {
        let mut runs = BTreeMap::new();
        runs.insert("ticket".to_string(), run(d));
        recs.push(RoundRecord {
            seed: seed as u64,
            round: 0,
            density: 1.0,
            layer_densities: BTreeMap::new(),
            runs,
        });
        for round in 1..=15 {
            let mut runs = BTreeMap::new();
            runs.insert("ticket".to_string(), run(ticket(round, seed)));
            runs.insert("random_reinit".to_string(), run(reinit(round, seed)));
            recs.push(RoundRecord {
                seed: seed as u64,
                round,
                density: 0.8f64.powi(round as i32),
                layer_densities: BTreeMap::new(),
                runs,
            });
        }
    }
    ImpSummary {
        name: "t".into(),
        model: "m".into(),
        rounds: recs,
        test_size: 10_000,
    }
}

#[test]
fn imp_verdicts() {
    // Five independent inits; dense 0.98 ± 0.002. Clear tickets: every
    // ticket within 0.2 point of its own seed's dense network, every random
    // reinit 3 points below its ticket.
    let dense = [0.978, 0.980, 0.982, 0.979, 0.981];
    let jitter = |seed: usize| 0.0005 * ((seed * 7) % 5) as f64;
    let good = imp_summary(
        &dense,
        |_, seed| dense[seed] - 0.001 + jitter(seed),
        |_, seed| dense[seed] - 0.03 - jitter(seed),
    );
    let c = imp::claims(&good);
    assert_eq!(c.len(), 6, "two claims at each of the three declared densities");
    for x in &c {
        assert_eq!(x.verdict, Verdict::Consistent, "{}", x.line());
        assert!(
            x.source.contains("the paper's claim: Frankle & Carbin 2019"),
            "{}",
            x.source
        );
        assert!(x.measured.contains("family of 6"), "{}", x.measured);
    }
    assert!(c[0].measured.contains("round 7"), "21.1% is round 7: {}", c[0].measured);
    assert!(claims_markdown(&c).contains("**consistent**"));
    // Tickets fall 5 points below dense wherever reinit does: the matching
    // claims are contradicted, the ticket-vs-reinit ones are not supported.
    let bad = imp_summary(
        &dense,
        |_, seed| dense[seed] - 0.05 + jitter(seed),
        |_, seed| dense[seed] - 0.05 + jitter(seed),
    );
    let c = imp::claims(&bad);
    assert_eq!(c[0].verdict, Verdict::Contradicts, "{}", c[0].line());
    assert_eq!(c[1].verdict, Verdict::Inconclusive, "{}", c[1].line());
    // A null difference with seed noise: never consistent.
    let noisy = imp_summary(
        &dense,
        |r, seed| dense[seed] + 0.004 * (((r + seed) % 3) as f64 - 1.0),
        |r, seed| dense[seed] + 0.004 * (((r + 2 * seed) % 3) as f64 - 1.0),
    );
    for x in imp::claims(&noisy).iter().skip(1).step_by(2) {
        assert_ne!(x.verdict, Verdict::Consistent, "{}", x.line());
    }
    // One seed: no interval over inits, every claim inconclusive.
    let one = imp_summary(&[0.9], |_, _| 0.95, |_, _| 0.5);
    for x in imp::claims(&one) {
        assert_eq!(x.verdict, Verdict::Inconclusive, "{}", x.line());
        assert!(x.reason.contains("at least 2"), "{}", x.reason);
    }
    // A run that never prunes to the declared densities cannot test them.
    let mut short = good.clone();
    short.rounds.retain(|r| r.round <= 3);
    for x in imp::claims(&short) {
        assert_eq!(x.verdict, Verdict::Inconclusive, "{}", x.line());
        assert!(x.reason.contains("run more rounds"), "{}", x.reason);
    }
}

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

fn lmc_from(model: &str, results: Vec<PairResult>) -> LmcSummary {
    LmcSummary {
        name: "t".into(),
        model: model.into(),
        per_k: lmc::aggregate(&results),
        results,
        sparse_density: None,
        dense_accuracies: vec![0.89, 0.90, 0.91],
        imp_rounds: vec![],
        test_size: 10_000,
    }
}

const MLP: &str = "MLP 784-300-100-10 (relu, Standard param.)";

fn lmc_summary(instabilities: &[f64]) -> LmcSummary {
    let results = instabilities
        .iter()
        .enumerate()
        .map(|(p, &i)| pair("dense", 0, p, None, i, 0.1))
        .collect();
    lmc_from(MLP, results)
}

/// An LMC summary of an MLP: dense pairs (error 10%, stable) and IMP
/// subnetworks at one density: per k, the pair instabilities and the
/// endpoint errors.
fn sparse_lmc_summary(rows: &[(usize, &[f64], &[f64])]) -> LmcSummary {
    let mut results = Vec::new();
    for &(k, inst, err) in rows {
        for (p, (&i, &e)) in inst.iter().zip(err).enumerate() {
            results.push(pair("imp", k, p, Some(0.035), i, e));
            results.push(pair("dense", k, p, None, 0.001, 0.10 + 0.001 * p as f64));
        }
    }
    lmc_from(MLP, results)
}

#[test]
fn the_sparse_matching_verdict_follows_frankle_2020_sec_4() {
    let claim_of = |s: &LmcSummary| {
        lmc::claims(s)
            .into_iter()
            .find(|c| c.claim.contains("matching only when"))
            .unwrap()
    };
    let unstable: &[f64] = &[0.20, 0.22, 0.21, 0.20, 0.23];
    let stable: &[f64] = &[0.001, 0.002, 0.0, 0.001, 0.002];
    // Unstable at k = 0 and 20 points below dense (not matching); stable and matching at k = 500.
    let s = sparse_lmc_summary(&[
        (0, unstable, &[0.30, 0.31, 0.30, 0.32, 0.30]),
        (500, stable, &[0.10, 0.101, 0.102, 0.103, 0.104]),
    ]);
    let c = claim_of(&s);
    assert_eq!(c.verdict, Verdict::Consistent, "{}", c.line());
    assert!(
        c.source.contains("the paper's claim: Frankle et al. 2020, Sec. 4"),
        "{}",
        c.source
    );
    // Matching (as accurate as dense) while clearly unstable.
    let s = sparse_lmc_summary(&[(0, unstable, &[0.10, 0.101, 0.102, 0.103, 0.104])]);
    assert_eq!(claim_of(&s).verdict, Verdict::Contradicts, "{}", claim_of(&s).line());
    // Every subnetwork stable: the "only when" is not tested.
    let s = sparse_lmc_summary(&[(0, stable, &[0.10, 0.101, 0.102, 0.103, 0.104])]);
    let c = claim_of(&s);
    assert_eq!(c.verdict, Verdict::Inconclusive, "{}", c.line());
    assert!(c.reason.contains("no IMP subnetwork is unstable"), "{}", c.reason);
    // Two pairs: the instability interval cannot show "unstable".
    let s = sparse_lmc_summary(&[(0, &[0.05, 0.20], &[0.10, 0.101])]);
    assert_eq!(claim_of(&s).verdict, Verdict::Inconclusive);
}

#[test]
fn lmc_verdicts() {
    // A fully connected dense network: the paper's claim, stable at k = 0.
    let stable = lmc::claims(&lmc_summary(&[0.001, 0.002, 0.0015, 0.001, 0.002]));
    assert_eq!(stable.len(), 1);
    assert_eq!(stable[0].verdict, Verdict::Consistent, "{}", stable[0].line());
    assert!(stable[0].claim.contains("k = 0"));
    assert!(
        stable[0]
            .source
            .contains("the paper's claim: Frankle et al. 2020, Sec. 3"),
        "{}",
        stable[0].source
    );
    let unstable = lmc::claims(&lmc_summary(&[0.10, 0.12, 0.11, 0.10, 0.12]));
    assert_eq!(unstable[0].verdict, Verdict::Contradicts, "{}", unstable[0].line());
    let straddle = lmc::claims(&lmc_summary(&[0.0, 0.04]));
    assert_eq!(straddle[0].verdict, Verdict::Inconclusive);
    let one = lmc::claims(&lmc_summary(&[0.001]));
    assert_eq!(one[0].verdict, Verdict::Inconclusive);
    // A conv net: no paper claim at k = 0; this project's hypothesis at the largest k.
    let conv = lmc_from(
        "ConvNet channels [6, 16], hidden [120, 84], 10 outputs",
        (0..3)
            .map(|p| pair("dense", 0, p, None, 0.3, 0.1))
            .chain((0..3).map(|p| pair("dense", 500, p, None, 0.001 * p as f64, 0.1)))
            .collect(),
    );
    let c = lmc::claims(&conv);
    assert_eq!(c.len(), 1);
    assert!(c[0].claim.contains("k = 500"), "{}", c[0].claim);
    assert!(c[0].source.contains("this project's hypothesis"), "{}", c[0].source);
    // Random pruning: the paper's claim is that it is unstable at k = 0.
    let random = |inst: f64| {
        lmc_from(
            MLP,
            (0..5)
                .map(|p| pair("random", 0, p, Some(0.035), inst + 0.002 * p as f64, 0.2))
                .collect(),
        )
    };
    let c = lmc::claims(&random(0.15));
    let r = c.iter().find(|c| c.claim.contains("random pruning")).unwrap();
    assert_eq!(r.verdict, Verdict::Consistent, "{}", r.line());
    assert!(r.claim.contains("unstable"), "{}", r.claim);
    let c = lmc::claims(&random(0.001));
    let r = c.iter().find(|c| c.claim.contains("random pruning")).unwrap();
    assert_eq!(r.verdict, Verdict::Contradicts, "{}", r.line());
}

fn pensia(paths: usize, acc: f64, err: f64) -> PensiaRecord {
    PensiaRecord {
        stats: ConstructionStats {
            paths,
            target_weights: 100,
            random_weights: 1000,
            kept_weights: 500,
            max_weight_error: err,
            mean_weight_error: err / 3.0,
            subset_sum_problems: 100,
            solve_seconds: 0.0,
            total_seconds: 0.0,
        },
        test_accuracy: acc,
        output_rmse: err,
        output_max_error: err,
    }
}

fn strong_summary(pensia: Vec<PensiaRecord>) -> StrongSummary {
    StrongSummary {
        name: "t".into(),
        target: "m".into(),
        target_parameters: 100,
        target_accuracy: 0.95,
        target_train_seconds: 0.0,
        output_scale: 1.0,
        pensia,
        edge_popup: vec![],
    }
}

/// Errors `e0 · exp(rate · n)` with a small deterministic wobble, at each n.
fn decaying(ns: &[usize], rate: f64, acc: f64) -> Vec<PensiaRecord> {
    ns.iter()
        .enumerate()
        .map(|(i, &n)| {
            let wobble = 1.0 + 0.05 * if i % 2 == 0 { 1.0 } else { -1.0 };
            pensia(n, acc, 0.5 * (rate * n as f64).exp() * wobble)
        })
        .collect()
}

#[test]
fn strong_verdicts() {
    // Errors falling exponentially (rate -0.5 per path): both slope claims
    // hold, as the paper's claims; the accuracy claim is untestable with one
    // random network per n, as this project's hypothesis.
    let good = strong_summary(decaying(&[4, 8, 12, 16, 21], -0.5, 0.95));
    let c = strong::claims(&good);
    assert_eq!(c.len(), 3);
    for c in &c[..2] {
        assert_eq!(c.verdict, Verdict::Consistent, "{}", c.line());
        assert!(
            c.source.starts_with("the paper's claim: Pensia et al. 2020"),
            "{}",
            c.source
        );
        assert!(c.measured.contains("family of 3"), "{}", c.measured);
    }
    assert_eq!(c[2].verdict, Verdict::Inconclusive, "{}", c[2].line());
    assert!(c[2].source.starts_with("this project's hypothesis"), "{}", c[2].source);
    assert!(c[2].reason.contains("independent random networks"), "{}", c[2].reason);
    // Errors growing with n: the decay claims are contradicted.
    let growing = strong_summary(decaying(&[4, 8, 12, 16, 21], 0.2, 0.5));
    let c = strong::claims(&growing);
    assert_eq!(c[0].verdict, Verdict::Contradicts, "{}", c[0].line());
    assert_eq!(c[1].verdict, Verdict::Contradicts, "{}", c[1].line());
    // No trend, only noise: inconclusive.
    let flat = strong_summary(vec![
        pensia(4, 0.5, 0.10),
        pensia(8, 0.5, 0.14),
        pensia(12, 0.5, 0.09),
        pensia(16, 0.5, 0.13),
    ]);
    assert!(strong::claims(&flat).iter().all(|c| c.verdict == Verdict::Inconclusive));
    // Two values of n: no interval.
    let short = strong_summary(vec![pensia(8, 0.5, 0.1), pensia(12, 0.95, 0.01)]);
    let c = strong::claims(&short);
    assert!(c.iter().all(|c| c.verdict == Verdict::Inconclusive), "{c:#?}");
    assert!(c[0].reason.contains("no interval"), "{}", c[0].reason);
    assert!(strong::claims(&strong_summary(vec![])).is_empty());
}

/// Lueker on a small real run: the worst-case error decays exponentially
/// (the paper's claim), and no faster than 2^-n (the counting check).
#[test]
fn lueker_rate_is_ln2() {
    let r = lueker::experiment(&[6, 8, 10, 12, 14], 400, 16, 0).unwrap();
    let c = lueker::claims(&r);
    for c in &c {
        eprintln!("{}", c.line());
    }
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].verdict, Verdict::Consistent, "{}", c[0].line());
    assert!(
        c[0].source.contains("the paper's claim: Lueker 1998"),
        "{}",
        c[0].source
    );
    assert_ne!(c[1].verdict, Verdict::Contradicts, "{}", c[1].line());
    assert!(c[1].source.contains("this project's hypothesis"), "{}", c[1].source);
    assert!(c[0].measured.contains("family of 2"), "{}", c[0].measured);
    // Two values of n: no interval, inconclusive.
    let two = lueker::experiment(&[6, 8], 50, 8, 0).unwrap();
    assert!(lueker::claims(&two).iter().all(|c| c.verdict == Verdict::Inconclusive));
}
