//! Every experiment ends with verdicts in one form: IMP, LMC, strong tickets
//! and Lueker's rate, each checked on synthetic summaries whose right answer
//! is known (and Lueker's on a small real run).

use std::collections::BTreeMap;

use lottery_tangent::imp::{self, ImpSummary, RoundRecord, RunRecord};
use lottery_tangent::lmc::{self, LmcSummary, PairResult, PathEval};
use lottery_tangent::strong::experiment::{self as strong, PensiaRecord, StrongSummary};
use lottery_tangent::strong::lueker;
use lottery_tangent::strong::pensia::ConstructionStats;
use lottery_tangent::verdict::{claims_markdown, Verdict};

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

/// Rounds 0..=2 for each seed: dense `dense[seed]`, then (ticket, reinit) per round.
fn imp_summary(dense: &[f64], rounds: &[(f64, f64)]) -> ImpSummary {
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
        for (i, &(t, r)) in rounds.iter().enumerate() {
            let mut runs = BTreeMap::new();
            runs.insert("ticket".to_string(), run(t + 0.001 * seed as f64));
            runs.insert("random_reinit".to_string(), run(r + 0.001 * seed as f64));
            recs.push(RoundRecord {
                seed: seed as u64,
                round: i + 1,
                density: 0.8f64.powi(i as i32 + 1),
                layer_densities: BTreeMap::new(),
                runs,
            });
        }
    }
    ImpSummary {
        name: "t".into(),
        model: "m".into(),
        rounds: recs,
    }
}

#[test]
fn imp_verdicts() {
    // Tickets match dense (0.90 ± 0.01) down to 64% while reinit falls at 64%.
    let good = imp_summary(&[0.89, 0.91], &[(0.905, 0.90), (0.90, 0.85)]);
    let c = &imp::claims(&good)[0];
    assert_eq!(c.verdict, Verdict::Consistent, "{}", c.line());
    assert!(c.measured.contains("down to 64.0%"), "{}", c.measured);
    // Tickets fall wherever reinit does.
    let bad = imp_summary(&[0.89, 0.91], &[(0.905, 0.90), (0.85, 0.85)]);
    assert_eq!(imp::claims(&bad)[0].verdict, Verdict::Contradicts);
    // Reinit never falls: cannot separate.
    let flat = imp_summary(&[0.89, 0.91], &[(0.905, 0.90)]);
    assert_eq!(imp::claims(&flat)[0].verdict, Verdict::Inconclusive);
    // One seed: no spread.
    let one = imp_summary(&[0.9], &[(0.95, 0.5)]);
    let c = &imp::claims(&one)[0];
    assert_eq!(c.verdict, Verdict::Inconclusive);
    assert!(c.reason.contains("one seed"));
    assert!(claims_markdown(&imp::claims(&good)).contains("**consistent**"));
}

fn lmc_summary(instabilities: &[f64]) -> LmcSummary {
    let results = instabilities
        .iter()
        .enumerate()
        .map(|(pair, &i)| PairResult {
            network: "dense".into(),
            k: 0,
            pair,
            density: None,
            path: PathEval {
                alphas: vec![0.0, 1.0],
                test_error: vec![0.1, 0.1],
                test_loss: vec![0.3, 0.3],
                train_loss: vec![],
            },
            instability: i,
            train_loss_barrier: None,
            path_seconds: 0.0,
        })
        .collect::<Vec<_>>();
    LmcSummary {
        name: "t".into(),
        model: "m".into(),
        per_k: lmc::aggregate(&results),
        results,
        sparse_density: None,
        dense_accuracies: vec![],
        imp_rounds: vec![],
    }
}

/// An LMC summary with IMP subnetworks at one density: per k, the pair
/// instabilities and the endpoint error; dense accuracies 90 ± 1%.
fn sparse_lmc_summary(rows: &[(usize, &[f64], f64)]) -> LmcSummary {
    let mut results = Vec::new();
    for &(k, inst, err) in rows {
        for (pair, &i) in inst.iter().enumerate() {
            results.push(PairResult {
                network: "imp".into(),
                k,
                pair,
                density: Some(0.035),
                path: PathEval {
                    alphas: vec![0.0, 0.5, 1.0],
                    test_error: vec![err, err + i, err],
                    test_loss: vec![0.3; 3],
                    train_loss: vec![],
                },
                instability: i,
                train_loss_barrier: None,
                path_seconds: 0.0,
            });
        }
    }
    LmcSummary {
        name: "t".into(),
        model: "m".into(),
        per_k: lmc::aggregate(&results),
        results,
        sparse_density: None,
        dense_accuracies: vec![0.89, 0.90, 0.91],
        imp_rounds: vec![],
    }
}

#[test]
fn the_sparse_matching_verdict_follows_frankle_2020_sec_4() {
    let verdict_of = |s: &LmcSummary| {
        lmc::claims(s)
            .into_iter()
            .find(|c| c.claim.contains("matching only when"))
            .unwrap()
            .verdict
    };
    // matching (error 10% = dense mean) and stable at k = 500; not matching and unstable at k = 0
    let s = sparse_lmc_summary(&[(0, &[0.20, 0.22, 0.21], 0.30), (500, &[0.001, 0.002, 0.0], 0.10)]);
    assert_eq!(verdict_of(&s), Verdict::Consistent);
    // matching while clearly unstable
    let s = sparse_lmc_summary(&[(0, &[0.20, 0.22, 0.21], 0.10)]);
    assert_eq!(verdict_of(&s), Verdict::Contradicts);
    // nothing matching: the claim is not tested
    let s = sparse_lmc_summary(&[(0, &[0.20, 0.22, 0.21], 0.30)]);
    assert_eq!(verdict_of(&s), Verdict::Inconclusive);
}

#[test]
fn lmc_verdicts() {
    let stable = lmc::claims(&lmc_summary(&[0.001, 0.002, 0.0015]));
    assert_eq!(stable.len(), 1);
    assert_eq!(stable[0].verdict, Verdict::Consistent, "{}", stable[0].line());
    assert!(stable[0].claim.contains("k = 0"));
    let unstable = lmc::claims(&lmc_summary(&[0.10, 0.12, 0.11]));
    assert_eq!(unstable[0].verdict, Verdict::Contradicts);
    let straddle = lmc::claims(&lmc_summary(&[0.0, 0.04]));
    assert_eq!(straddle[0].verdict, Verdict::Inconclusive);
    let one = lmc::claims(&lmc_summary(&[0.001]));
    assert_eq!(one[0].verdict, Verdict::Inconclusive);
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

#[test]
fn strong_verdicts() {
    let good = strong_summary(vec![
        pensia(8, 0.5, 1e-1),
        pensia(12, 0.945, 8e-3),
        pensia(16, 0.95, 6e-4),
    ]);
    let c = &strong::claims(&good)[0];
    assert_eq!(c.verdict, Verdict::Consistent, "{}", c.line());
    assert!(c.reason.contains("from n = 12"), "{}", c.reason);
    let flat = strong_summary(vec![pensia(8, 0.5, 0.1), pensia(12, 0.5, 0.11), pensia(16, 0.5, 0.12)]);
    assert_eq!(strong::claims(&flat)[0].verdict, Verdict::Contradicts);
    let short = strong_summary(vec![pensia(8, 0.5, 0.1), pensia(12, 0.95, 0.01)]);
    assert_eq!(strong::claims(&short)[0].verdict, Verdict::Inconclusive);
    assert!(strong::claims(&strong_summary(vec![])).is_empty());
}

/// Lueker on a small real run: the worst-case error decays exponentially, no
/// faster than 2^-n.
#[test]
fn lueker_rate_is_ln2() {
    let r = lueker::experiment(&[6, 8, 10, 12, 14], 400, 16, 0).unwrap();
    let c = &lueker::claims(&r)[0];
    eprintln!("{}", c.line());
    assert_eq!(c.verdict, Verdict::Consistent, "{}", c.line());
    assert!(c.reason.contains("of the counting limit"), "{}", c.reason);
    let two = lueker::experiment(&[6, 8], 50, 8, 0).unwrap();
    assert_eq!(lueker::claims(&two)[0].verdict, Verdict::Inconclusive);
}
