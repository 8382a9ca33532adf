//! Supermasks (Zhou et al. 2019): one-shot masks by each criterion on the
//! untrained network, on the embedded digits (small and fast).

use candle_core::Device;
use lottery_tangent::config::ExperimentConfig;
use lottery_tangent::experiments::supermask::{self, SupermaskConfig, SupermaskRecord, SupermaskSummary};
use lottery_tangent::paths::RunDir;
use lottery_tangent::prune::Criterion;
use lottery_tangent::report::verdict::Verdict;

fn experiment() -> lottery_tangent::config::Experiment {
    let text = r#"
        name = "supermask_test"
        [data]
        source = "digits"
        [model]
        kind = "lenet300_100"
        [train]
        iterations = 400
        batch_size = 32
        [train.optimizer]
        kind = "sgd"
        lr = 0.05
        momentum = 0.9
    "#;
    ExperimentConfig::from_toml(text, "supermask_test")
        .unwrap()
        .resolve()
        .unwrap()
}

/// Zhou et al.'s Sec. 5 in miniature: large_final_same_sign masks make the
/// untrained θ0 far better than chance and than random masks (measured here
/// about 90% at half the weights vs about 10% for random masks).
#[test]
fn large_final_same_sign_supermasks_beat_random_masks() {
    let exp = experiment();
    let cfg = SupermaskConfig {
        criteria: vec![Criterion::LargeFinalSameSign, Criterion::Random, Criterion::LargeInit],
        densities: vec![0.5, 0.1],
        seeds: vec![0, 1, 2],
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let rd = RunDir::create(dir.path()).unwrap();
    let s = supermask::run(&exp, &cfg, &rd, &Device::Cpu, false).unwrap();
    assert_eq!(s.records.len(), 3 * 3 * 2);
    let mean = |c: Criterion, d: f64| {
        let v: Vec<f64> = s
            .records
            .iter()
            .filter(|r| r.criterion == c && r.target_density == d)
            .map(|r| r.init_accuracy)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!(
        mean(Criterion::LargeFinalSameSign, 0.5) > 0.6,
        "{}",
        supermask::table(&s)
    );
    assert!(mean(Criterion::Random, 0.5) < 0.3, "{}", supermask::table(&s));
    // the masks have the requested (planned) densities, the same for every criterion
    for r in &s.records {
        assert!((r.density.ln() - r.target_density.ln()).abs() < 0.3, "{r:?}");
    }
    // One declared claim per configured density, decided as one family.
    let c = supermask::claims(&s);
    assert_eq!(c.len(), 2, "{c:#?}");
    for c in &c {
        assert_eq!(c.verdict, Verdict::Consistent, "{}", c.line());
        assert!(
            c.source.contains("the paper's claim: Zhou et al. 2019, Sec. 5"),
            "{}",
            c.source
        );
        assert!(c.measured.contains("family of 2"), "{}", c.measured);
    }
    assert!(rd.figure("supermask_init").exists() && rd.report_md().exists());
}

#[test]
fn bad_supermask_input_is_refused_before_training() {
    let exp = experiment();
    for (cfg, what) in [
        (
            SupermaskConfig {
                densities: vec![0.0],
                ..Default::default()
            },
            "supermask.densities",
        ),
        (
            SupermaskConfig {
                densities: vec![1e-9],
                ..Default::default()
            },
            "supermask.densities",
        ),
        (
            SupermaskConfig {
                seeds: vec![],
                ..Default::default()
            },
            "supermask.seeds",
        ),
    ] {
        let e = cfg.plan(&exp).unwrap_err().to_string();
        assert!(e.contains(what), "{e}");
    }
}

/// A synthetic summary: per seed, the (large_final_same_sign, random)
/// accuracies at one density.
fn summary(per_seed: &[(f64, f64)]) -> SupermaskSummary {
    let mut records = Vec::new();
    for (seed, &(a, b)) in per_seed.iter().enumerate() {
        for (criterion, acc) in [(Criterion::LargeFinalSameSign, a), (Criterion::Random, b)] {
            records.push(SupermaskRecord {
                seed: seed as u64,
                criterion,
                target_density: 0.1,
                density: 0.107,
                init_accuracy: acc,
                signed_constant_accuracy: acc,
            });
        }
    }
    SupermaskSummary {
        name: "t".into(),
        model: "m".into(),
        classes: 10,
        dense_accuracy: vec![0.9; per_seed.len()],
        records,
        test_size: 1000,
    }
}

#[test]
fn supermask_verdicts_on_synthetic_summaries() {
    // A clear effect: consistent, as the paper's claim.
    let c = supermask::claims(&summary(&[(0.80, 0.10), (0.78, 0.11), (0.82, 0.09)]));
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].verdict, Verdict::Consistent, "{}", c[0].line());
    assert!(c[0].source.contains("the paper's claim"), "{}", c[0].source);
    // The supermask clearly worse than random: contradicts.
    let c = supermask::claims(&summary(&[(0.10, 0.50), (0.11, 0.52), (0.09, 0.49)]));
    assert_eq!(c[0].verdict, Verdict::Contradicts, "{}", c[0].line());
    // No difference: inconclusive, and the reason says what would decide.
    let c = supermask::claims(&summary(&[(0.11, 0.10), (0.09, 0.11), (0.10, 0.10)]));
    assert_eq!(c[0].verdict, Verdict::Inconclusive, "{}", c[0].line());
    // One seed: no interval.
    let c = supermask::claims(&summary(&[(0.80, 0.10)]));
    assert_eq!(c[0].verdict, Verdict::Inconclusive, "{}", c[0].line());
    assert!(c[0].reason.contains("no interval"), "{}", c[0].reason);
    // No random control: untestable.
    let mut s = summary(&[(0.80, 0.10), (0.78, 0.11)]);
    s.records.retain(|r| r.criterion != Criterion::Random);
    let c = supermask::claims(&s);
    assert_eq!(c[0].verdict, Verdict::Inconclusive);
    assert!(c[0].reason.contains("add random"), "{}", c[0].reason);
}
