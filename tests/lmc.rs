//! Linear mode connectivity: interpolation endpoints, zero barrier for
//! identical networks, masks kept along the path, and a small end-to-end run.

use candle_core::Device;
use lottery_tangent::config::ExperimentConfig;
use lottery_tangent::experiments::lmc::{self, barrier, evaluate_path, LmcConfig};
use lottery_tangent::models::Network;
use lottery_tangent::params::Mask;
use lottery_tangent::paths::RunDir;
use lottery_tangent::train::{Loss, Supervised};

fn experiment(steps: usize) -> lottery_tangent::config::Experiment {
    let text = format!(
        r#"
        name = "lmc_test"
        [data]
        source = "digits"
        [model]
        kind = "mlp"
        hidden = [64]
        [train]
        iterations = {steps}
        batch_size = 32
        [train.optimizer]
        kind = "sgd"
        lr = 0.05
        momentum = 0.9
    "#
    );
    ExperimentConfig::from_toml(&text, "lmc_test")
        .unwrap()
        .resolve()
        .unwrap()
}

#[test]
fn interpolation_endpoints_are_exact_and_masks_are_kept() {
    let exp = experiment(10);
    let (a, b) = (exp.net.init(1), exp.net.init(2));
    assert_eq!(a.lerp(&b, 0.0).unwrap(), a);
    assert_eq!(b.lerp(&a, 0.0).unwrap(), b);
    assert_eq!(a.lerp(&b, 1.0).unwrap(), b);
    let mut mask = Mask::ones(&a, &exp.net.prunable()).unwrap();
    for v in mask.0 .0.values_mut() {
        v.data
            .iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x = (i % 3 == 0) as u8 as f32);
    }
    let (mut am, mut bm) = (a.clone(), b.clone());
    mask.apply(&mut am).unwrap();
    mask.apply(&mut bm).unwrap();
    for alpha in [0.0, 0.1, 0.5, 0.9, 1.0] {
        let p = am.lerp(&bm, alpha).unwrap();
        for (k, m) in mask.0.iter() {
            assert!(
                p.get(k)
                    .unwrap()
                    .data
                    .iter()
                    .zip(&m.data)
                    .all(|(&w, &b)| b != 0.0 || w == 0.0),
                "{k} at {alpha}"
            );
        }
    }
    // mismatched layouts are an error, not a panic
    let other = Network::Mlp(lottery_tangent::models::Mlp::lenet_300_100(64, 10).unwrap()).init(0);
    assert!(a.lerp(&other, 0.5).is_err());
}

#[test]
fn barrier_of_identical_networks_is_zero() {
    let exp = experiment(10);
    let p = exp.net.init(3);
    let mut model = Supervised::new(exp.net.clone(), Loss::CrossEntropy, &Device::Cpu);
    let alphas: Vec<f32> = (0..7).map(|i| i as f32 / 6.0).collect();
    let path = evaluate_path(
        &mut model,
        &p,
        &p,
        &alphas,
        &exp.split.test,
        Some(&exp.split.train),
        500,
    )
    .unwrap();
    assert_eq!(barrier(&path.test_error), 0.0);
    assert_eq!(barrier(&path.train_loss), 0.0);
    // closed-form barriers of synthetic curves
    assert!((barrier(&[0.1, 0.5, 0.2]) - 0.35).abs() < 1e-12);
    assert!((barrier(&[0.3, 0.2, 0.1]) - 0.1).abs() < 1e-12);
}

#[test]
fn small_instability_analysis_runs_dense_and_sparse() {
    let exp = experiment(120);
    let cfg = LmcConfig {
        ks: vec![0, 60],
        pairs: 2,
        points: 5,
        train_eval_size: 200,
        sparse_density: Some(0.3),
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let rd = RunDir::create(dir.path()).unwrap();
    let s = lmc::run(&exp, &cfg, &rd, &Device::Cpu, false, false).unwrap();
    assert_eq!(s.results.len(), 2 * 2 * 2);
    assert!((s.sparse_density.unwrap() - 0.3).abs() < 0.01);
    for r in &s.results {
        assert_eq!(r.path.test_error.len(), 5);
        assert!(r.instability >= -1e-12 && r.instability <= 1.0);
        assert!(
            r.instability
                >= r.path.test_error.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                    - 0.5 * (r.path.test_error[0] + r.path.test_error[4])
                    - 1e-12
        );
        // the two copies train on different data orders, so they end apart
        assert!(r.path.test_loss[0] != r.path.test_loss[4]);
    }
    assert_eq!(s.per_k.len(), 4);
    assert!(rd.figure("instability_vs_k_dense").exists() && rd.figure("error_vs_alpha_one_mask").exists());
    // resuming reuses every saved pair, and the parent comes from the run's training cache
    assert_eq!(std::fs::read_dir(rd.train_cache()).unwrap().count(), 1);
    let again = lmc::run(&exp, &cfg, &rd, &Device::Cpu, false, true).unwrap();
    assert_eq!(again.results, s.results);
    assert_eq!(std::fs::read_dir(rd.train_cache()).unwrap().count(), 1);
    let bad = LmcConfig {
        ks: vec![500],
        ..cfg.clone()
    };
    assert!(bad.validate(120).unwrap_err().to_string().contains("lmc.ks"));
    let at_end = LmcConfig { ks: vec![120], ..cfg };
    assert!(at_end.validate(120).unwrap_err().to_string().contains("120"));
}

/// The analysis is model-generic: the conv net (trained through candle
/// autodiff) runs through the same spawn / interpolate / barrier path.
#[test]
fn instability_analysis_works_for_the_conv_net() {
    let text = r#"
        name = "lmc_conv"
        [data]
        source = "digits"
        [model]
        kind = "conv"
        channels = [4, 8]
        hidden = [16]
        [train]
        iterations = 30
        batch_size = 32
        [train.optimizer]
        kind = "sgd"
        lr = 0.05
        momentum = 0.9
    "#;
    let exp = ExperimentConfig::from_toml(text, "lmc_conv")
        .unwrap()
        .resolve()
        .unwrap();
    let cfg = LmcConfig {
        ks: vec![0, 10],
        pairs: 1,
        points: 3,
        train_eval_size: 0,
        sparse_density: Some(0.5),
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let s = lmc::run(
        &exp,
        &cfg,
        &RunDir::create(dir.path()).unwrap(),
        &Device::Cpu,
        false,
        false,
    )
    .unwrap();
    assert_eq!(s.results.len(), 4);
    assert!(s
        .results
        .iter()
        .all(|r| r.path.test_error.len() == 3 && r.instability >= 0.0));
}

/// Frankle et al. 2020, Sec. 4 in miniature: for each k, IMP with rewinding
/// to k finds the subnetwork (each round trains steps k..T); the IMP and a
/// randomly pruned subnetwork at the target density are each analysed as a
/// pair; the report has the matching verdict and the per-density figures.
#[test]
fn per_k_imp_subnetworks_are_found_by_imp_rewound_to_k() {
    use lottery_tangent::experiments::lmc::LmcImpConfig;
    use lottery_tangent::prune::PruneSpec;
    let exp = experiment(120);
    let cfg = LmcConfig {
        ks: vec![0, 30],
        pairs: 2,
        points: 3,
        train_eval_size: 0,
        imp: Some(LmcImpConfig {
            densities: vec![0.3],
            prune: PruneSpec {
                rate: 0.5,
                ..Default::default()
            },
            random_control: true,
        }),
        ..Default::default()
    };
    let plan = cfg.plan(&exp).unwrap();
    assert_eq!(plan.len(), 1);
    let (round, planned) = plan[0];
    assert_eq!(
        round, 2,
        "0.5 per round: about 25% after 2 rounds (output layer at half rate)"
    );
    let dir = tempfile::tempdir().unwrap();
    let rd = RunDir::create(dir.path()).unwrap();
    let s = lmc::run(&exp, &cfg, &rd, &Device::Cpu, false, false).unwrap();
    assert_eq!(s.imp_rounds.len(), 2 * 2);
    for r in &s.imp_rounds {
        assert_eq!(r.optimizer_steps, 120 - r.k, "IMP retraining runs steps k..T");
    }
    for network in ["imp", "random"] {
        for k in [0, 30] {
            let n = s.results.iter().filter(|r| r.network == network && r.k == k).count();
            assert_eq!(n, 2, "{network} k={k}");
        }
    }
    let d = s.results.iter().find(|r| r.network == "imp").unwrap().density.unwrap();
    assert!((d - planned).abs() < 1e-9, "{d} vs planned {planned}");
    // the masks differ between k (IMP rewound to different points)
    let m0 = lottery_tangent::params::Mask::load(&rd.file("imp/k0/round_02/mask.safetensors")).unwrap();
    let m30 = lottery_tangent::params::Mask::load(&rd.file("imp/k30/round_02/mask.safetensors")).unwrap();
    assert_ne!(m0, m30);
    assert!(s.dense_accuracies.len() >= 3);
    let claims = lmc::claims(&s);
    assert!(claims.iter().any(|c| c.claim.contains("matching only when")));
    assert!(rd.figure("instability_vs_k_sparse_0").exists() && rd.figure("accuracy_vs_k_sparse_0").exists());
    let table = lmc::table(&s);
    assert!(
        table.contains("| imp |") && table.contains("| random |") && table.contains("matching"),
        "{table}"
    );
    // resuming reuses the saved rounds and pairs
    let again = lmc::run(&exp, &cfg, &rd, &Device::Cpu, false, true).unwrap();
    assert_eq!(again.results, s.results);
    assert_eq!(again.imp_rounds, s.imp_rounds);
}

/// Children inherit the parent's optimizer state only when asked: at k = 0
/// the parent's state is fresh, so both settings agree; at k > 0 they differ.
#[test]
fn children_can_inherit_the_parent_momentum() {
    let exp = experiment(60);
    let base = LmcConfig {
        ks: vec![0, 20],
        pairs: 1,
        points: 3,
        train_eval_size: 0,
        ..Default::default()
    };
    let inherit = LmcConfig {
        inherit_optimizer_state: true,
        ..base.clone()
    };
    let dir = tempfile::tempdir().unwrap();
    let a = lmc::run(
        &exp,
        &base,
        &RunDir::create(dir.path().join("a")).unwrap(),
        &Device::Cpu,
        false,
        false,
    )
    .unwrap();
    let b = lmc::run(
        &exp,
        &inherit,
        &RunDir::create(dir.path().join("b")).unwrap(),
        &Device::Cpu,
        false,
        false,
    )
    .unwrap();
    let at = |s: &lmc::LmcSummary, k: usize| s.results.iter().find(|r| r.k == k).unwrap().path.test_loss.clone();
    assert_eq!(at(&a, 0), at(&b, 0));
    assert_ne!(at(&a, 20), at(&b, 20));
}

/// Bad sparse input is refused before training: a mask file whose names or
/// shapes do not match, densities outside (0, 1), two sparse modes at once.
#[test]
fn bad_sparse_lmc_input_is_refused() {
    use lottery_tangent::experiments::lmc::LmcImpConfig;
    use lottery_tangent::params::{Array, ParamSet};
    let exp = experiment(60);
    let dir = tempfile::tempdir().unwrap();
    let mut m = ParamSet::new();
    m.insert("fc1.weight", Array::new(vec![3, 3], vec![1.0; 9]).unwrap());
    let path = dir.path().join("bad_mask.safetensors");
    Mask(m).save(&path).unwrap();
    let cfg = LmcConfig {
        ks: vec![0],
        pairs: 1,
        points: 3,
        mask: Some(path),
        ..Default::default()
    };
    let rd = RunDir::create(dir.path().join("run")).unwrap();
    let t0 = std::time::Instant::now();
    let e = lmc::run(&exp, &cfg, &rd, &Device::Cpu, false, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("fc1.weight"), "{e}");
    assert!(!rd.file("results").exists(), "nothing was trained");
    let _ = t0;
    let both = LmcConfig {
        ks: vec![0],
        sparse_density: Some(0.5),
        imp: Some(LmcImpConfig::default()),
        ..Default::default()
    };
    assert!(both.validate(60).unwrap_err().to_string().contains("at most one"));
    let bad = LmcConfig {
        ks: vec![0],
        imp: Some(LmcImpConfig {
            densities: vec![1.5],
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(bad.validate(60).unwrap_err().to_string().contains("lmc.imp.densities"));
}
