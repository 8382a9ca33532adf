//! Strong lottery tickets: the Pensia construction is a masked copy of the
//! random network whose realized weights match the target, and edge-popup
//! learns masks over fixed random weights.

use candle_core::Device;
use lottery_tangent::config::ExperimentConfig;
use lottery_tangent::models::{Activation, Mlp, Network, Parameterization};
use lottery_tangent::strong::edge_popup::{EdgePopup, WeightInit};
use lottery_tangent::strong::pensia;
use lottery_tangent::train::{self, Loss, Supervised, TrainOptions, Trainable};

/// A bias-free ReLU target with weights N(0, 0.25/fan_in), the range of trained
/// networks' weights (Pensia et al.'s construction assumes |w| <= 1 and
/// approximates small weights best).
fn bias_free_target(
    input: usize,
    hidden: Vec<usize>,
    out: usize,
    seed: u64,
) -> (Mlp, lottery_tangent::params::ParamSet) {
    let mlp = Mlp::new(
        input,
        hidden,
        out,
        Activation::Relu,
        Parameterization::Standard,
        0.5,
        0.0,
    )
    .unwrap();
    let p = Network::Mlp(mlp.clone()).init(seed);
    (mlp, p)
}

#[test]
fn pruned_network_is_a_masked_copy_realizing_the_target_weights() {
    let (mlp, target) = bias_free_target(4, vec![], 3, 1);
    let c = pensia::construct(&mlp, &target, 16, 7, &Device::Cpu).unwrap();
    let pruned = c.pruned().unwrap();
    // no weight changed: every entry is the random one or exactly zero where masked
    for (k, r) in c.random.iter() {
        let p = pruned.get(k).unwrap();
        let m = c.mask.0 .0.get(k);
        for (i, (&a, &b)) in p.data.iter().zip(&r.data).enumerate() {
            let keep = m.map_or(true, |m| m.data[i] == 1.0);
            assert_eq!(a, if keep { b } else { 0.0 }, "{k}[{i}]");
        }
    }
    // the pruned 2-layer random network applied to ±e_j realizes ±w_kj (one sign pattern each)
    let net = Network::Mlp(c.mlp.clone());
    let mut model = Supervised::new(net, Loss::Mse, &Device::Cpu);
    let w = &target.get("fc1.weight").unwrap().data;
    for j in 0..4 {
        for sign in [1.0f32, -1.0] {
            let mut x = vec![0.0f32; 4];
            x[j] = sign;
            let mut out = Vec::new();
            model.predict(&pruned, &x, 1, &mut out).unwrap();
            for k in 0..3 {
                let realized = out[k] * sign;
                assert!(
                    (realized - w[k * 4 + j]).abs() as f64 <= c.stats.max_weight_error + 1e-5,
                    "w[{k},{j}] sign {sign}"
                );
            }
        }
    }
    // Lueker: 8 candidates per sign leave mean errors of a few 1e-3.
    assert!(
        c.stats.mean_weight_error < 0.02,
        "mean weight error with 16 paths: {}",
        c.stats.mean_weight_error
    );
    assert_eq!(c.stats.random_weights, 16 * 4 * 4 + 3 * 16 * 4);
    assert!(c.stats.kept_weights < c.stats.random_weights);
}

/// Lueker/Pensia: more random paths per weight approximate every weight
/// better, so the pruned network's outputs approach the target's. Measured on
/// this 6-8-3 target: mean weight error 0.091 (n = 4) -> 0.0023 (n = 20),
/// largest weight error 0.44 -> 0.060, largest output error 0.19 -> 0.0039.
#[test]
fn more_paths_approximate_a_deep_target_better() {
    let (mlp, target) = bias_free_target(6, vec![8], 3, 2);
    let x: Vec<f32> = (0..20 * 6).map(|i| ((i * 31) % 17) as f32 / 8.0 - 1.0).collect();
    let mut tm = Supervised::new(Network::Mlp(mlp.clone()), Loss::Mse, &Device::Cpu);
    let mut want = Vec::new();
    tm.predict(&target, &x, 20, &mut want).unwrap();
    let err_at = |n: usize| {
        let c = pensia::construct(&mlp, &target, n, 3, &Device::Cpu).unwrap();
        let mut m = Supervised::new(Network::Mlp(c.mlp.clone()), Loss::Mse, &Device::Cpu);
        let mut got = Vec::new();
        m.predict(&c.pruned().unwrap(), &x, 20, &mut got).unwrap();
        let out_err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        (out_err, c.stats.max_weight_error, c.stats.mean_weight_error)
    };
    let (e4, w4, m4) = err_at(4);
    let (e20, w20, m20) = err_at(20);
    eprintln!(
        "n=4: output {e4}, max weight {w4}, mean weight {m4}; n=20: output {e20}, max weight {w20}, mean weight {m20}"
    );
    assert!(m20 < m4 / 5.0, "mean weight error {m4} -> {m20}");
    assert!(w20 < w4 / 2.0, "max weight error {w4} -> {w20}");
    assert!(e20 < e4 / 10.0, "output error {e4} -> {e20}");
}

#[test]
fn targets_with_biases_or_other_activations_are_rejected() {
    let (mlp, mut target) = bias_free_target(3, vec![], 2, 0);
    target.get_mut("fc1.bias").unwrap().data[0] = 0.5;
    let e = pensia::construct(&mlp, &target, 8, 0, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("fc1.bias"), "{e}");
    let tanh = Mlp::new(3, vec![], 2, Activation::Tanh, Parameterization::Standard, 1.0, 0.0).unwrap();
    let p = Network::Mlp(tanh.clone()).init(0);
    assert!(pensia::construct(&tanh, &p, 8, 0, &Device::Cpu).is_err());
    let (mlp, target) = bias_free_target(3, vec![], 2, 0);
    assert!(pensia::construct(&mlp, &target, 0, 0, &Device::Cpu).is_err());
}

/// Edge-popup keeps exactly the top fraction of each layer, never changes a
/// weight, and its learned supermask over random weights classifies digits far
/// above chance (10%; Ramanujan et al. 2020 and Zhou et al. 2019 report the
/// same effect on MNIST).
#[test]
fn edge_popup_learns_a_supermask() {
    let text = r#"
        [data]
        source = "digits"
        [model]
        kind = "mlp"
        hidden = [128]
        [train]
        iterations = 400
        batch_size = 32
        [train.optimizer]
        kind = "sgd"
        lr = 0.1
        momentum = 0.9
    "#;
    let exp = ExperimentConfig::from_toml(text, "edge").unwrap().resolve().unwrap();
    let mlp = match &exp.net {
        Network::Mlp(m) => m.clone(),
        _ => unreachable!(),
    };
    let (mut ep, scores) = EdgePopup::new(mlp, WeightInit::SignedConstant, 0.5, Loss::CrossEntropy, 0).unwrap();
    let weights_before = ep.weights().clone();
    let out = train::train(&mut ep, &scores, &exp.split, &exp.spec, &TrainOptions::default()).unwrap();
    assert_eq!(ep.weights(), &weights_before);
    let mask = ep.mask(&out.params).unwrap();
    for (k, m) in mask.iter() {
        let kept = m.data.iter().filter(|&&v| v == 1.0).count();
        assert_eq!(kept, (0.5 * m.data.len() as f64).round() as usize, "{k}");
    }
    let acc = train::evaluate(&mut ep, &out.params, &exp.split.test, 500)
        .unwrap()
        .accuracy;
    let before = train::evaluate(&mut ep, &scores, &exp.split.test, 500)
        .unwrap()
        .accuracy;
    assert!(
        acc > 0.8 && acc > before + 0.2,
        "edge-popup accuracy {acc} (before training the scores: {before})"
    );
    assert!(EdgePopup::new(
        Mlp::lenet_300_100(64, 10).unwrap(),
        WeightInit::KaimingUniform,
        0.0,
        Loss::Mse,
        0
    )
    .is_err());
    assert_eq!(ep.outputs(), 10);
}

/// Pensia et al.'s construction with `rescale_to`: the pruned network
/// realizes the rescaled target S·f, so its output errors are measured after
/// dividing by S, in the target's units (before the fix they were |S − 1|·|f|).
#[test]
fn output_errors_with_rescaling_are_in_the_targets_units() {
    use lottery_tangent::config::ExperimentConfig;
    use lottery_tangent::experiments::strong::{self, StrongConfig};
    use lottery_tangent::paths::RunDir;
    let text = r#"
        name = "strong_rescale"
        [data]
        source = "digits"
        [model]
        kind = "mlp"
        hidden = [16]
        [train]
        iterations = 150
        batch_size = 32
        [train.optimizer]
        kind = "sgd"
        lr = 0.05
        momentum = 0.9
    "#;
    let exp = ExperimentConfig::from_toml(text, "strong_rescale")
        .unwrap()
        .resolve()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |rescale_to: Option<f64>, name: &str| {
        let cfg = StrongConfig {
            paths: vec![21],
            seed: 0,
            edge_popup_keep: vec![],
            edge_popup_weights: vec![],
            edge_popup_score_init: Default::default(),
            rescale_to,
        };
        strong::run(
            &exp,
            &cfg,
            &RunDir::create(dir.path().join(name)).unwrap(),
            &Device::Cpu,
            false,
        )
        .unwrap()
    };
    let scaled = run(Some(0.5), "scaled");
    let r = &scaled.pensia[0];
    let s_factor = scaled.output_scale;
    assert!((s_factor - 1.0).abs() > 0.5, "S = {s_factor}");
    // recompute the errors from the saved target: S⁻¹ · pruned(x) vs target(x)
    let mlp = match &exp.net {
        Network::Mlp(m) => m.clone(),
        _ => unreachable!(),
    };
    let target = lottery_tangent::params::ParamSet::load(&dir.path().join("scaled/target.safetensors")).unwrap();
    let (rescaled, s2) = pensia::rescale_layers(&mlp, &target, 0.5).unwrap();
    assert_eq!(s2, s_factor);
    let c = pensia::construct(&mlp, &rescaled, 21, 0, &Device::Cpu).unwrap();
    let test = &exp.split.test;
    let (mut f, mut g) = (Vec::new(), Vec::new());
    Supervised::new(exp.net.clone(), Loss::CrossEntropy, &Device::Cpu)
        .predict(&target, &test.x, test.len(), &mut f)
        .unwrap();
    Supervised::new(Network::Mlp(c.mlp.clone()), Loss::CrossEntropy, &Device::Cpu)
        .predict(&c.pruned().unwrap(), &test.x, test.len(), &mut g)
        .unwrap();
    let d: Vec<f64> = g
        .iter()
        .zip(&f)
        .map(|(a, b)| (*a as f64 / s_factor - *b as f64).abs())
        .collect();
    let rmse = (d.iter().map(|x| x * x).sum::<f64>() / d.len() as f64).sqrt();
    let max = d.iter().copied().fold(0.0, f64::max);
    assert!(
        (r.output_rmse - rmse).abs() <= 1e-4 * rmse.max(1e-6),
        "{} vs {rmse}",
        r.output_rmse
    );
    assert!(
        (r.output_max_error - max).abs() <= 1e-4 * max.max(1e-6),
        "{} vs {max}",
        r.output_max_error
    );
    // the unscaled comparison (the old bug) would differ by far
    let old: f64 = (g
        .iter()
        .zip(&f)
        .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
        .sum::<f64>()
        / d.len() as f64)
        .sqrt();
    assert!((old - rmse).abs() > 0.1 * rmse, "old {old} vs fixed {rmse}");
}

/// Edge-popup scores start as in allenai/hidden-networks:
/// kaiming_uniform(a = √5), i.e. U[−1/√fan_in, 1/√fan_in]; the earlier
/// U[−√(6/fan_in), √(6/fan_in)] stays available as an option.
#[test]
fn edge_popup_scores_start_as_in_hidden_networks() {
    use lottery_tangent::strong::edge_popup::ScoreInit;
    let mlp = Mlp::lenet_300_100(64, 10).unwrap();
    for (init, bound) in [
        (ScoreInit::KaimingUniformA5, 1.0f32),
        (ScoreInit::KaimingUniform, 6.0f32),
    ] {
        let (_, scores) = EdgePopup::with_score_init(
            mlp.clone(),
            WeightInit::SignedConstant,
            0.5,
            Loss::CrossEntropy,
            3,
            init,
        )
        .unwrap();
        for (k, s) in scores.iter() {
            let b = (bound / s.shape[1] as f32).sqrt();
            let max = s.data.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            assert!(max <= b && max > 0.95 * b, "{init:?} {k}: max |score| {max}, bound {b}");
        }
    }
    // the default is hidden-networks'
    let (_, d) = EdgePopup::new(mlp, WeightInit::SignedConstant, 0.5, Loss::CrossEntropy, 3).unwrap();
    let s = d.get("fc1.weight").unwrap();
    assert!(s.data.iter().all(|v| v.abs() <= (1.0f32 / 64.0).sqrt()));
}
