//! ntk_compare's library pieces: the log-log fit against closed forms, and a
//! small end-to-end sweep whose measurements must be internally consistent.

use lottery_tangent::ntk::compare::{self, fit_loglog, CompareConfig};

#[test]
fn loglog_fit_recovers_power_laws() {
    let xs = [64.0, 128.0, 256.0, 512.0];
    let ys: Vec<f64> = xs.iter().map(|x: &f64| 3.0 * x.powf(-0.5)).collect();
    let s = fit_loglog(&xs, &ys, "q").unwrap();
    assert!(
        (s.slope + 0.5).abs() < 1e-12 && (s.intercept - 3f64.ln()).abs() < 1e-12 && (s.r_squared - 1.0).abs() < 1e-12
    );
    assert!(s.agrees);
    let flat: Vec<f64> = xs.iter().map(|x: &f64| x.powf(-0.2)).collect();
    assert!(!fit_loglog(&xs, &flat, "q").unwrap().agrees);
    assert!(fit_loglog(&[1.0], &[1.0], "q").is_err());
    assert!(fit_loglog(&[2.0, 2.0], &[1.0, 3.0], "q").is_err());
}

#[test]
fn small_sweep_is_consistent() {
    let mut cfg = CompareConfig {
        widths: vec![32, 256],
        steps: 30,
        eval_points: 4,
        ..Default::default()
    };
    cfg.data.train_size = Some(64);
    cfg.data.test_size = Some(40);
    cfg.validate().unwrap();
    let split = cfg.data.load().unwrap();
    let (lr, _) = compare::choose_lr(&cfg, &split).unwrap();
    assert!(lr > 0.0);
    let results: Vec<_> = cfg
        .widths
        .iter()
        .map(|&w| compare::run_width(&cfg, &split, w, 0, lr, false).unwrap())
        .collect();
    for r in &results {
        // At step 0 full and linearized networks coincide exactly.
        assert_eq!(r.rmse_over_training[0], (0, 0.0));
        assert_eq!(r.trajectories[0].full, r.trajectories[0].linear);
        assert!(r.rmse_full_linear > 0.0 && r.relative_parameter_change > 0.0 && r.relative_ntk_change > 0.0);
        assert!(r.ntk_spectrum.windows(2).all(|w| w[0] >= w[1]) && *r.ntk_spectrum.last().unwrap() > -1e-6);
        assert!(
            r.final_train_loss_linear < 0.8 * r.initial_train_loss,
            "{} -> {}",
            r.initial_train_loss,
            r.final_train_loss_linear
        );
        assert!(
            r.final_train_loss_full < 0.8 * r.initial_train_loss,
            "{} -> {}",
            r.initial_train_loss,
            r.final_train_loss_full
        );
    }
    // Wider networks move their parameters relatively less (Lee et al. 2019).
    assert!(results[1].relative_parameter_change < results[0].relative_parameter_change);
    let s = compare::summarize(&cfg, lr, "test".into(), (64, 40), results).unwrap();
    assert_eq!(s.slopes.len(), 3);
    assert_eq!(s.local_rmse_slopes.len(), 1);
    assert!(s.verdict.contains("Lee et al. 2019"));
    let bad = CompareConfig {
        widths: vec![64, 32],
        ..Default::default()
    };
    assert!(bad.validate().unwrap_err().to_string().contains("widths"));
}
