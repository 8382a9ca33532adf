//! Invariants of pruning at initialization (src/pai): exact densities, masks
//! only shrink, PHEW's kept weights lie on input-to-output paths, SynFlow
//! conserves synaptic flow on a linear network, determinism per seed, and
//! clear errors on bad input.

use lottery_tangent::data::Dataset;
use lottery_tangent::models::{Activation, Mlp, Network, Parameterization};
use lottery_tangent::pai::{self, keep_top, PaiMethod, PaiSpec};
use lottery_tangent::params::{Array, Mask, ParamSet};
use lottery_tangent::prune::Scope;
use lottery_tangent::train::Loss;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

fn mlp(input: usize, hidden: Vec<usize>, out: usize, activation: Activation, b_std: f32) -> Network {
    Network::Mlp(Mlp::new(input, hidden, out, activation, Parameterization::Standard, 1.4, b_std).unwrap())
}

fn data(n: usize, d: usize, classes: usize, seed: u64) -> Dataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    Dataset {
        name: "synthetic".into(),
        x: (0..n * d).map(|_| rng.gen_range(-1.0..1.0)).collect(),
        labels: (0..n).map(|i| (i % classes) as u32).collect(),
        targets: None,
        target_dim: classes,
        shape: [1, 1, d],
        num_classes: classes,
    }
}

fn kept(m: &Array) -> usize {
    m.data.iter().filter(|&&v| v != 0.0).count()
}

fn total_kept(m: &Mask) -> usize {
    m.0.iter().map(|(_, a)| kept(a)).sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Every method keeps exactly round(density · n) weights (per layer for
    /// random, globally for the others; PHEW up to layers − 1 more), is a
    /// 0/1 mask over the prunable weights only, and is the same for the same seed.
    #[test]
    fn densities_are_exact_and_masks_deterministic(
        input in 6usize..14, h1 in 4usize..12, h2 in 3usize..9, out in 2usize..5,
        density in 0.15f64..0.9, seed in 0u64..1000, mi in 0usize..6,
    ) {
        let method = PaiMethod::ALL[mi];
        let net = mlp(input, vec![h1, h2], out, Activation::Relu, 0.0);
        let theta0 = net.init(seed);
        let train = data(40, input, out, seed);
        let mut spec = PaiSpec::new(method, density, seed);
        spec.synflow_iterations = 5;
        let m = pai::prune_at_init(&net, &theta0, &train, Loss::CrossEntropy, &spec).unwrap();
        let again = pai::prune_at_init(&net, &theta0, &train, Loss::CrossEntropy, &spec).unwrap();
        prop_assert_eq!(&m, &again);
        prop_assert_eq!(m.0.names().cloned().collect::<Vec<_>>(), {
            let mut p = net.prunable(); p.sort(); p
        });
        prop_assert!(m.0.iter().all(|(_, a)| a.data.iter().all(|&v| v == 0.0 || v == 1.0)));
        let total: usize = m.0.iter().map(|(_, a)| a.len()).sum();
        let target = ((density * total as f64).round() as usize).max(1);
        match method {
            PaiMethod::Random => {
                for (k, a) in m.0.iter() {
                    let t = ((density * a.len() as f64).round() as usize).max(1);
                    prop_assert_eq!(kept(a), t, "layer {}", k);
                }
            }
            PaiMethod::Phew => {
                let k = total_kept(&m);
                prop_assert!(k >= target && k < target + 3, "kept {} target {}", k, target);
            }
            _ => prop_assert_eq!(total_kept(&m), target),
        }
    }

    /// keep_top keeps a subset of its input mask with the exact count.
    #[test]
    fn keep_top_only_shrinks(
        n1 in 5usize..40, n2 in 5usize..40, keep1 in 0.3f64..1.0, density in 0.05f64..0.3, seed: u64, global: bool,
    ) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut mask = ParamSet::new();
        let mut scores = ParamSet::new();
        for (k, n) in [("a.weight", n1), ("b.weight", n2)] {
            let mut d: Vec<f32> = (0..n).map(|_| (rng.gen::<f64>() < keep1) as u8 as f32).collect();
            d[0] = 1.0;
            mask.insert(k, Array::new(vec![n], d).unwrap());
            scores.insert(k, Array::new(vec![n], (0..n).map(|_| rng.gen::<f32>()).collect()).unwrap());
        }
        let mask = Mask(mask);
        let scope = if global { Scope::Global } else { Scope::Layerwise };
        let Ok(out) = keep_top(&mask, &scores, density, scope) else {
            // Only a layer emptied by a global ranking may fail.
            prop_assert!(global);
            return Ok(());
        };
        for (k, a) in out.0.iter() {
            let before = &mask.0.get(k).unwrap().data;
            prop_assert!(a.data.iter().zip(before).all(|(&x, &y)| x <= y));
            if !global {
                let t = ((density * a.len() as f64).round() as usize).max(1).min(kept(mask.0.get(k).unwrap()));
                prop_assert_eq!(kept(a), t);
            }
        }
        if global {
            let t = ((density * (n1 + n2) as f64).round() as usize).max(1).min(total_kept(&mask));
            prop_assert_eq!(total_kept(&out), t);
        }
    }

    /// Every weight PHEW keeps lies on an input-to-output path: a hidden unit
    /// with a kept incoming weight has a kept outgoing one and vice versa.
    #[test]
    fn phew_keeps_no_dead_units(
        input in 4usize..20, h1 in 3usize..15, h2 in 3usize..15, out in 2usize..6,
        density in 0.02f64..0.6, seed in 0u64..1000,
    ) {
        let net = mlp(input, vec![h1, h2], out, Activation::Relu, 0.0);
        let theta0 = net.init(seed);
        let m = pai::phew::mask(&net, &theta0, density, seed).unwrap();
        let layers = net.prunable();
        for l in 0..layers.len() - 1 {
            let (a, b) = (m.0.get(&layers[l]).unwrap(), m.0.get(&layers[l + 1]).unwrap());
            let (units, a_in, b_out) = (a.shape[0], a.shape[1], b.shape[0]);
            for u in 0..units {
                let has_in = (0..a_in).any(|i| a.data[u * a_in + i] != 0.0);
                let has_out = (0..b_out).any(|o| b.data[o * units + u] != 0.0);
                prop_assert_eq!(has_in, has_out, "layer {} unit {}", l, u);
            }
        }
    }
}

/// Tanaka et al. 2020, Theorem 1-2: with a linear (homogeneous) network and
/// no biases, the synaptic saliency of each hidden unit's incoming weights
/// equals that of its outgoing weights, and every layer carries the same
/// total flow R.
#[test]
fn synflow_conserves_flow_on_a_linear_network() {
    let net = mlp(7, vec![9, 6], 4, Activation::Identity, 0.0);
    let theta0 = net.init(3);
    let mut abs = theta0.clone();
    for a in abs.0.values_mut() {
        a.data.iter_mut().for_each(|v| *v = v.abs());
    }
    let layers = net.prunable();
    let full = Mask::ones(&theta0, &layers).unwrap();
    let s = pai::synflow::scores(&net, &abs, &full).unwrap();
    let sums: Vec<f64> = layers
        .iter()
        .map(|k| s.get(k).unwrap().data.iter().map(|&v| v as f64).sum())
        .collect();
    for w in sums.windows(2) {
        assert!((w[0] - w[1]).abs() <= 1e-4 * w[0].abs(), "layer sums {sums:?}");
    }
    for l in 0..layers.len() - 1 {
        let (a, b) = (s.get(&layers[l]).unwrap(), s.get(&layers[l + 1]).unwrap());
        let (units, a_in, b_out) = (a.shape[0], a.shape[1], b.shape[0]);
        for u in 0..units {
            let inc: f64 = (0..a_in).map(|i| a.data[u * a_in + i] as f64).sum();
            let outg: f64 = (0..b_out).map(|o| b.data[o * units + u] as f64).sum();
            assert!(
                (inc - outg).abs() <= 1e-4 * inc.abs().max(1e-6),
                "unit {u} of layer {l}: {inc} in, {outg} out"
            );
        }
    }
}

/// GraSP's Hessian-gradient product by central differences is stable in its step.
#[test]
fn grasp_hessian_gradient_is_stable_in_the_step() {
    let net = mlp(10, vec![12], 3, Activation::Tanh, 0.0);
    let theta0 = net.init(1);
    let train = data(30, 10, 3, 2);
    let (_, a) = pai::grasp::hessian_gradient(&net, &theta0, &train, Loss::CrossEntropy, 1e-3).unwrap();
    let (_, b) = pai::grasp::hessian_gradient(&net, &theta0, &train, Loss::CrossEntropy, 3e-4).unwrap();
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (k, x) in a.iter() {
        for (p, q) in x.data.iter().zip(&b.get(k).unwrap().data) {
            num += ((p - q) as f64).powi(2);
            den += (*q as f64).powi(2);
        }
    }
    assert!(
        den > 0.0 && (num / den).sqrt() < 0.05,
        "relative difference {}",
        (num / den).sqrt()
    );
}

#[test]
fn bad_input_is_refused_before_any_work() {
    let net = mlp(8, vec![6], 3, Activation::Relu, 0.0);
    let theta0 = net.init(0);
    let train = data(20, 8, 3, 0);
    for d in [0.0, 1.0, 1.5, -0.1, f64::NAN] {
        let e = pai::prune_at_init(
            &net,
            &theta0,
            &train,
            Loss::CrossEntropy,
            &PaiSpec::new(PaiMethod::Snip, d, 0),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("pai.density"), "{e}");
    }
    let e = toml::from_str::<PaiSpec>("method = \"optimal_brain_surgeon\"\ndensity = 0.1\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("optimal_brain_surgeon") && e.contains("snip"), "{e}");
    let mut spec = PaiSpec::new(PaiMethod::Phew, 0.1, 0);
    spec.scope = Some(Scope::Layerwise);
    let e = pai::prune_at_init(&net, &theta0, &train, Loss::CrossEntropy, &spec)
        .unwrap_err()
        .to_string();
    assert!(e.contains("pai.scope"), "{e}");
    // A global ranking that would empty a layer: its weights made tiny.
    let mut small = theta0.clone();
    small
        .get_mut("fc2.weight")
        .unwrap()
        .data
        .iter_mut()
        .for_each(|v| *v *= 1e-6);
    let e = pai::prune_at_init(
        &net,
        &small,
        &train,
        Loss::CrossEntropy,
        &PaiSpec::new(PaiMethod::Magnitude, 0.05, 0),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("fc2.weight") && e.contains("at least one weight"), "{e}");
    // PHEW walks fully connected layers only.
    let conv = lottery_tangent::models::ModelConfig::Lenet5
        .build([1, 28, 28], 10)
        .unwrap();
    let e = pai::phew::mask(&conv, &conv.init(0), 0.1, 0).unwrap_err().to_string();
    assert!(e.contains("phew"), "{e}");
}
