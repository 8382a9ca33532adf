//! Linear mode connectivity: interpolation endpoints, zero barrier for
//! identical networks, masks kept along the path, and a small end-to-end run.

use candle_core::Device;
use lottery_tangent::config::ExperimentConfig;
use lottery_tangent::lmc::{self, barrier, evaluate_path, LmcConfig};
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
        mask: None,
        sparse_density: Some(0.3),
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
    assert!(rd.figure("instability_vs_k_dense").exists() && rd.figure("error_vs_alpha_sparse").exists());
    // resuming reuses every saved pair
    let again = lmc::run(&exp, &cfg, &rd, &Device::Cpu, false, true).unwrap();
    assert_eq!(again.results, s.results);
    let bad = LmcConfig { ks: vec![500], ..cfg };
    assert!(bad.validate(120).unwrap_err().to_string().contains("lmc.ks"));
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
        mask: None,
        sparse_density: Some(0.5),
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
