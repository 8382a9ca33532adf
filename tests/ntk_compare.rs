//! ntk_compare: the verdict rules on synthetic measurements, the exact
//! closed-form linearization against the trained one, divergence as an
//! outcome, and a small end-to-end sweep whose measurements must be internally
//! consistent.

use lottery_tangent::data::Split;
use lottery_tangent::experiments::ntk_compare::{
    self, CompareConfig, CompareSummary, Diverging, LayerChange, LayerRole, LinearMethod, Measurements, Outcome,
    Timings, WidthResult,
};
use lottery_tangent::models::Network;
use lottery_tangent::ntk::dynamics::exact_linear_gd;
use lottery_tangent::ntk::empirical::{mlp_ntk, KernelKind};
use lottery_tangent::ntk::linearize::Linearized;
use lottery_tangent::paths::RunDir;
use lottery_tangent::report::verdict::Verdict;
use lottery_tangent::train::{self, Loss, TrainOptions, Trainable};

/// A measured result whose function gap is `gap`, everything else plausible
/// and in the linear regime (ΔΘ/Θ = 0.05).
fn synthetic(width: usize, seed: u64, gap: f64) -> WidthResult {
    let w = width as f64;
    let layers = [
        (LayerRole::Input, 28.0 * w.sqrt()),
        (LayerRole::Hidden, w),
        (LayerRole::Output, 3.0 * w.sqrt()),
    ]
    .iter()
    .enumerate()
    .map(|(l, &(role, norm))| LayerChange {
        name: format!("l{l}.weight"),
        role,
        init_norm: norm,
        relative_change: 1.0 / norm,
    })
    .collect();
    WidthResult {
        width,
        seed,
        parameters: 1000,
        lambda_max_init: 100.0,
        linearization: LinearMethod::ClosedForm,
        outcome: Outcome::Measured(Box::new(Measurements {
            rmse_full_linear: gap,
            rmse_over_training: vec![(0, 0.0), (10, gap)],
            rmse_linear_kernel: 0.01,
            relative_parameter_change: 1.0 / w,
            init_param_norm: w,
            layers,
            relative_ntk_change: 0.05,
            ntk_vs_analytic: Some(w.powf(-0.5)),
            accuracy_full: 0.9,
            accuracy_linear: 0.9,
            accuracy_kernel: 0.9,
            initial_train_loss: 1.0,
            final_train_loss_full: 0.1,
            final_train_loss_linear: 0.1,
            ntk_spectrum: vec![2.0, 1.0],
            trajectories: vec![],
        })),
        timings: Timings::default(),
    }
}

/// Gap values `w^slope` with a small deterministic seed-to-seed spread (±2%).
fn sweep(widths: &[usize], slope: f64) -> (CompareConfig, CompareSummary) {
    let cfg = CompareConfig {
        widths: widths.to_vec(),
        ..Default::default()
    };
    let mut results = Vec::new();
    for &w in widths {
        for (i, &seed) in cfg.seeds.iter().enumerate() {
            let jitter = 1.0 + 0.02 * (i as f64 - 1.0);
            results.push(synthetic(w, seed, (w as f64).powf(slope) * jitter));
        }
    }
    let s = ntk_compare::summarize(&cfg, 0.1, "test".into(), (10, 10), results).unwrap();
    (cfg, s)
}

#[test]
fn flat_gap_contradicts_the_bound() {
    let (_, s) = sweep(&[256, 512, 1024, 2048], -0.2);
    let q = &s.quantities[0];
    assert_eq!(q.key, "sup_rmse_full_linear");
    let (lo, hi) = q.fit.as_ref().unwrap().ci.unwrap();
    assert!(lo > -0.5 && hi < 0.0, "CI [{lo}, {hi}]");
    assert_eq!(q.claim.verdict, Verdict::Contradicts, "{}", q.claim.line());
    assert!(s.verdict.starts_with("[contradicts]"), "{}", s.verdict);
    // The other quantities follow their own exponents: parameter change 1/‖θ0‖ exactly.
    let p = s
        .quantities
        .iter()
        .find(|q| q.key == "relative_parameter_change")
        .unwrap();
    assert!((p.bound.unwrap() + 1.0).abs() < 1e-9);
    assert_eq!(p.claim.verdict, Verdict::Consistent, "{}", p.claim.line());
    let hidden = s.quantities.iter().find(|q| q.key == "layer_2_hidden").unwrap();
    assert!((hidden.bound.unwrap() + 1.0).abs() < 1e-9);
    let input = s.quantities.iter().find(|q| q.key == "layer_1_input").unwrap();
    assert!((input.bound.unwrap() + 0.5).abs() < 1e-9);
}

#[test]
fn steep_gap_is_consistent_and_favours_one_over_n() {
    let (_, s) = sweep(&[256, 512, 1024, 2048], -0.9);
    let q = &s.quantities[0];
    assert_eq!(q.claim.verdict, Verdict::Consistent, "{}", q.claim.line());
    assert!(q.claim.reason.contains("nearest n^-1"), "{}", q.claim.reason);
    assert_eq!(s.regime_widths, vec![256, 512, 1024, 2048]);
}

#[test]
fn one_seed_or_standard_parameterization_leaves_the_regime_claims_untestable() {
    let widths = [256usize, 512, 1024, 2048];
    let run = |cfg: CompareConfig| {
        let results = widths
            .iter()
            .flat_map(|&w| cfg.seeds.iter().map(move |&s| synthetic(w, s, (w as f64).powf(-0.9))))
            .collect();
        ntk_compare::summarize(&cfg, 0.1, "test".into(), (10, 10), results).unwrap()
    };
    let one = run(CompareConfig {
        widths: widths.to_vec(),
        seeds: vec![0],
        ..Default::default()
    });
    assert_eq!(one.quantities[0].claim.verdict, Verdict::Inconclusive);
    assert!(
        one.quantities[0].claim.reason.contains("run at least 2 seeds"),
        "{}",
        one.quantities[0].claim.reason
    );
    let standard = run(CompareConfig {
        widths: widths.to_vec(),
        parameterization: lottery_tangent::models::Parameterization::Standard,
        ..Default::default()
    });
    for q in standard.quantities.iter().filter(|q| q.regime_only) {
        assert_eq!(q.claim.verdict, Verdict::Inconclusive, "{}", q.claim.line());
        assert!(q.claim.reason.contains("NTK parameterization"), "{}", q.claim.reason);
    }
    // The pilot seed chose the regime and is left out of the test.
    let three = run(CompareConfig {
        widths: widths.to_vec(),
        ..Default::default()
    });
    assert_eq!(three.regime_seed, Some(0));
    assert!(
        three.quantities[0].claim.measured.contains("n = 4"),
        "{}",
        three.quantities[0].claim.measured
    );
}

#[test]
fn two_widths_are_inconclusive() {
    let (_, s) = sweep(&[512, 1024], -0.9);
    for q in &s.quantities {
        assert_eq!(q.claim.verdict, Verdict::Inconclusive, "{}", q.claim.line());
    }
    assert!(
        s.quantities[0].claim.reason.contains("add widths above 1024"),
        "{}",
        s.verdict
    );
}

#[test]
fn widths_outside_the_linear_regime_do_not_carry_the_verdict() {
    let cfg = CompareConfig {
        widths: vec![64, 128, 256, 512],
        ..Default::default()
    };
    let mut results = Vec::new();
    for &w in &cfg.widths {
        for &seed in &cfg.seeds {
            let mut r = synthetic(w, seed, (w as f64).powf(-0.9));
            if let Outcome::Measured(m) = &mut r.outcome {
                m.relative_ntk_change = if w <= 128 { 0.5 } else { 0.05 };
            }
            results.push(r);
        }
    }
    let s = ntk_compare::summarize(&cfg, 0.1, "test".into(), (10, 10), results).unwrap();
    assert_eq!(s.regime_widths, vec![256, 512]);
    assert_eq!(s.quantities[0].claim.verdict, Verdict::Inconclusive);
    assert!(s.quantities[0].fit_all.as_ref().unwrap().distinct_x == 4);
}

#[test]
fn bad_inputs_give_inconclusive_reports_without_nan() {
    // One width, one seed; and a sweep where every run diverged.
    let one = CompareConfig {
        widths: vec![128],
        seeds: vec![3],
        ..Default::default()
    };
    let s1 = ntk_compare::summarize(&one, 0.1, "test".into(), (10, 10), vec![synthetic(128, 3, 0.1)]).unwrap();
    let diverged = CompareConfig {
        widths: vec![64, 128],
        seeds: vec![0],
        ..Default::default()
    };
    let results = [64, 128]
        .iter()
        .map(|&w| WidthResult {
            outcome: Outcome::Diverged {
                model: Diverging::Network,
                step: 7,
                loss: None,
            },
            ..synthetic(w, 0, 0.1)
        })
        .collect();
    let s2 = ntk_compare::summarize(&diverged, 0.1, "test".into(), (10, 10), results).unwrap();
    for s in [&s1, &s2] {
        assert!(s.quantities.iter().all(|q| q.claim.verdict == Verdict::Inconclusive));
        let dir = tempfile::tempdir().unwrap();
        let rd = RunDir::create(dir.path()).unwrap();
        lottery_tangent::runner::report::<ntk_compare::NtkCompare>(&rd, s).unwrap();
        let md = std::fs::read_to_string(rd.report_md()).unwrap();
        assert!(!md.contains("NaN") && !md.contains("inf "), "{md}");
        assert!(md.contains("## Verdicts") && md.contains("inconclusive"));
        // summary.json round-trips (replot).
        let back: CompareSummary = lottery_tangent::paths::read_json(&rd.summary_json()).unwrap();
        assert_eq!(back.quantities.len(), s.quantities.len());
    }
    assert!(ntk_compare::table(&s2).contains("network diverged at step 7"));
    assert!(s2.quantities[0]
        .claim
        .measured
        .contains("left out: width 64 seed 0 (network diverged at step 7)"));
    // Duplicate seeds and a bad threshold are config errors.
    let dup = CompareConfig {
        seeds: vec![1, 1],
        ..Default::default()
    };
    assert!(dup.validate().unwrap_err().to_string().contains("seeds"));
    let thr = CompareConfig {
        regime_ntk_change: 0.0,
        ..Default::default()
    };
    assert!(thr.validate().unwrap_err().to_string().contains("regime_ntk_change"));
}

fn small_split(train: usize, test: usize) -> (CompareConfig, Split) {
    let mut cfg = CompareConfig {
        steps: 40,
        eval_points: 4,
        ..Default::default()
    };
    cfg.data.train_size = Some(train);
    cfg.data.test_size = Some(test);
    cfg.validate().unwrap();
    let split = cfg.data.load().unwrap();
    (cfg, split)
}

/// The closed form from the full NTK is the trajectory the trained linearized
/// network follows under full-batch GD (same lr and steps), at two widths.
#[test]
fn exact_linearization_equals_the_trained_one() {
    let (cfg, split) = small_split(48, 20);
    let (tr, te) = (&split.train, &split.test);
    let (n, c) = (tr.len(), tr.num_classes);
    let steps = cfg.eval_steps();
    for width in [32, 256] {
        let mlp = cfg.mlp(tr.dim(), c, width).unwrap();
        let theta0 = Network::Mlp(mlp.clone()).init(4);
        let k_tr = mlp_ntk(&mlp, &theta0, &tr.x, n, &tr.x, n, KernelKind::Full, None, 256).unwrap();
        let k_te = mlp_ntk(&mlp, &theta0, &te.x, te.len(), &tr.x, n, KernelKind::Full, None, 256).unwrap();
        let lr = 0.5 * n as f64 / lottery_tangent::ntk::spectrum::largest_eigenvalue(&k_tr.data, k_tr.rows).unwrap();
        let mut lin = Linearized::new(mlp.clone(), theta0.clone(), Loss::Mse).unwrap();
        let spec = cfg.sgd_spec(lr, n, 4);
        let out = train::train(&mut lin, &theta0, &split, &spec, &TrainOptions::default()).unwrap();
        let mut f0_tr = Vec::new();
        let mut f0_te = Vec::new();
        lin.predict(&theta0, &tr.x, n, &mut f0_tr).unwrap();
        lin.predict(&theta0, &te.x, te.len(), &mut f0_te).unwrap();
        let mut y = vec![0.0f32; n * c];
        for i in 0..n {
            tr.target_row(i, &mut y[i * c..(i + 1) * c]);
        }
        let snaps = exact_linear_gd(&k_tr, &k_te, &f0_tr, &f0_te, &y, n, lr, &steps).unwrap();
        let mut moved = 0.0f64;
        for snap in &snaps {
            let p = &out.checkpoints[&snap.step];
            for (x, m, want) in [(&tr.x, n, &snap.train), (&te.x, te.len(), &snap.test)] {
                let mut got = Vec::new();
                lin.predict(p, x, m, &mut got).unwrap();
                let scale = want.iter().map(|v| v.abs()).fold(0.0, f64::max);
                let err = got
                    .iter()
                    .zip(want.iter())
                    .map(|(&g, &w)| (g as f64 - w).abs())
                    .fold(0.0, f64::max);
                assert!(
                    err <= 1e-4 * scale.max(1.0),
                    "width {width} step {}: max error {err}",
                    snap.step
                );
            }
            moved = moved.max(
                snap.test
                    .iter()
                    .zip(&f0_te)
                    .map(|(a, &b)| (a - b as f64).abs())
                    .fold(0.0, f64::max),
            );
        }
        // The comparison is not vacuous: the outputs moved.
        assert!(moved > 0.05, "outputs moved only {moved}");
    }
}

/// A learning rate far above the stable one makes the linearization diverge
/// (the ReLU network itself may blow up and die instead): the sweep records it
/// and goes on.
#[test]
fn divergence_is_an_outcome() {
    let (mut cfg, split) = small_split(32, 16);
    cfg.widths = vec![32];
    cfg.lr = Some(50.0);
    let r = ntk_compare::run_width(&cfg, &split, 32, 0, 50.0, false).unwrap();
    assert!(r.lambda_max_init * 50.0 / 32.0 > 2.0);
    assert!(
        matches!(
            r.outcome,
            Outcome::Diverged {
                model: Diverging::Linearization,
                ..
            }
        ),
        "{:?}",
        r.outcome
    );
    assert!(ntk_compare::width_line(&r).contains("linearization DIVERGED"));
}

#[test]
fn small_sweep_is_consistent() {
    let (mut cfg, split) = small_split(64, 40);
    cfg.widths = vec![32, 256];
    cfg.seeds = vec![0, 1];
    cfg.steps = 30;
    let mut choice = ntk_compare::choose_lr(&cfg, &split).unwrap();
    let lr = choice.lr;
    assert!(lr > 0.0 && choice.source.contains("full NTK"), "{}", choice.source);
    let mut results = Vec::new();
    for &w in &cfg.widths {
        for &seed in &cfg.seeds {
            // The cached init kernel gives the same result as computing it again.
            let init = choice.take_init(w, seed);
            assert!(init.is_some());
            let r = ntk_compare::run_width_with(&cfg, &split, w, seed, lr, false, init).unwrap();
            if seed == 0 {
                assert_eq!(
                    r.outcome,
                    ntk_compare::run_width(&cfg, &split, w, seed, lr, false)
                        .unwrap()
                        .outcome
                );
            }
            results.push(r);
        }
    }
    for r in &results {
        // The rate is half the stable one for every network of the sweep.
        assert!(lr * r.lambda_max_init / 64.0 <= 1.0 + 1e-9);
        let m = r.measured().expect("no divergence at half the stable rate");
        // At step 0 full and linearized networks coincide (up to the f32 forward pass).
        assert!(m.rmse_over_training[0].1 < 1e-5, "{:?}", m.rmse_over_training[0]);
        assert!(m.rmse_full_linear > 0.0 && m.relative_parameter_change > 0.0 && m.relative_ntk_change > 0.0);
        assert!(m.ntk_spectrum.windows(2).all(|w| w[0] >= w[1]) && *m.ntk_spectrum.last().unwrap() > -1e-6);
        assert!(m.final_train_loss_linear < 0.8 * m.initial_train_loss);
        assert!(m.final_train_loss_full < 0.8 * m.initial_train_loss);
        assert_eq!(m.layers.len(), 3);
        assert!(m.ntk_vs_analytic.unwrap() > 0.0);
    }
    // Wider networks move their parameters relatively less (Lee et al. 2019).
    let change = |w: usize| {
        results
            .iter()
            .filter(|r| r.width == w)
            .map(|r| r.measured().unwrap().relative_parameter_change)
            .sum::<f64>()
    };
    assert!(change(256) < change(32));
    let s = ntk_compare::summarize(&cfg, lr, "test".into(), (64, 40), results).unwrap();
    assert!(s.quantities.len() >= 6);
    assert_eq!(s.local_rmse_slopes.len(), 1);
    assert!(s.verdict.contains("Lee et al. 2019"));
    let bad = CompareConfig {
        widths: vec![64, 32],
        ..Default::default()
    };
    assert!(bad.validate().unwrap_err().to_string().contains("widths"));
}
