//! Multi-prize tickets (biprop's binary weights, sign activations), elastic
//! ticket transformations, scaled MLPs, and the tangent-space measurements
//! (kernel distance and onsets, effective rank, kernel-target alignment):
//! the definitions, checked directly.

use lottery_tangent::experiments::elastic::transform;
use lottery_tangent::models::{Activation, Mlp, Parameterization};
use lottery_tangent::params::{Array, Mask, ParamSet};
use lottery_tangent::strong::edge_popup::{EdgePopup, WeightInit};
use lottery_tangent::train::Loss;

fn mlp(hidden: Vec<usize>, activation: Activation) -> Mlp {
    Mlp::new(12, hidden, 3, activation, Parameterization::Standard, 1.4, 0.0).unwrap()
}

/// A mask of an MLP whose layer fc{l} holds the marker value l everywhere
/// (shapes of `m`), so a transformed mask shows where each layer came from.
fn marked(m: &Mlp) -> Mask {
    let mut p = ParamSet::new();
    for (l, (name, shape)) in m
        .param_shapes()
        .into_iter()
        .filter(|(n, _)| n.ends_with(".weight"))
        .enumerate()
    {
        let n: usize = shape.iter().product();
        p.insert(
            name,
            Array {
                shape,
                data: vec![(l + 1) as f32; n],
            },
        );
    }
    Mask(p)
}

fn marker(m: &Mask, layer: usize) -> f32 {
    m.0.get(&format!("fc{layer}.weight")).unwrap().data[0]
}

#[test]
fn stretching_replicates_each_block_in_place_and_squeezing_keeps_every_other() {
    // 2 blocks (fc2, fc3 between stem fc1 and head fc4) -> 4 blocks (fc2..fc5, head fc6).
    let shallow = mlp(vec![5; 3], Activation::Relu);
    let deep = mlp(vec![5; 5], Activation::Relu);
    let s = transform(&marked(&shallow), 2, 4).unwrap();
    let got: Vec<f32> = (1..=6).map(|l| marker(&s, l)).collect();
    assert_eq!(got, vec![1.0, 2.0, 2.0, 3.0, 3.0, 4.0]);
    // The stretched mask fits the deep network's parameters exactly.
    for (name, shape) in deep.param_shapes().into_iter().filter(|(n, _)| n.ends_with(".weight")) {
        assert_eq!(s.0.get(&name).unwrap().shape, shape, "{name}");
    }
    let q = transform(&marked(&deep), 4, 2).unwrap();
    let got: Vec<f32> = (1..=4).map(|l| marker(&q, l)).collect();
    assert_eq!(got, vec![1.0, 2.0, 4.0, 6.0]);
    assert!(q.0.get("fc5.weight").is_err());
    // Only doubling or halving.
    let e = transform(&marked(&shallow), 2, 3).unwrap_err().to_string();
    assert!(e.contains("twice or half"), "{e}");
}

#[test]
fn biprop_weights_are_plus_minus_one_gain_per_layer_on_the_kept_edges() {
    let m = mlp(vec![40, 20], Activation::Relu);
    let (ep, scores) = EdgePopup::new(m, WeightInit::KaimingNormal, 0.3, Loss::CrossEntropy, 7).unwrap();
    let mut ep = ep.binarized();
    let w = ep.weights().clone();
    let mask = ep.mask(&scores).unwrap();
    let eff = ep.effective_weights(&scores).unwrap().clone();
    for (name, e) in eff.iter().filter(|(n, _)| n.ends_with(".weight")) {
        let (wv, mv) = (&w.get(name).unwrap().data, &mask.get(name).unwrap().data);
        let kept: Vec<usize> = (0..wv.len()).filter(|&i| mv[i] != 0.0).collect();
        let frac = kept.len() as f64 / wv.len() as f64;
        assert!((frac - 0.3).abs() < 0.01, "{name}: kept {frac}");
        let alpha = kept.iter().map(|&i| wv[i].abs() as f64).sum::<f64>() / kept.len() as f64;
        for i in 0..wv.len() {
            if mv[i] == 0.0 {
                assert_eq!(e.data[i], 0.0);
            } else {
                assert!((e.data[i].abs() as f64 - alpha).abs() < 1e-6 * alpha, "{name}[{i}]");
                assert_eq!(e.data[i].signum(), wv[i].signum());
            }
        }
    }
    // Without binarization the kept weights are the random weights themselves.
    let (mut plain, scores) = EdgePopup::new(
        mlp(vec![40, 20], Activation::Relu),
        WeightInit::KaimingNormal,
        0.3,
        Loss::CrossEntropy,
        7,
    )
    .unwrap();
    let w = plain.weights().clone();
    let eff = plain.effective_weights(&scores).unwrap();
    let e = &eff.get("fc1.weight").unwrap().data;
    let wv = &w.get("fc1.weight").unwrap().data;
    assert!(e.iter().zip(wv).all(|(a, b)| *a == 0.0 || a == b));
}

#[test]
fn sign_activation_and_its_straight_through_estimate() {
    let a = Activation::Sign;
    assert_eq!(
        [-2.0f32, -0.5, 0.0, 0.25, 3.0].map(|z| a.apply(z)),
        [-1.0, -1.0, 0.0, 1.0, 1.0]
    );
    // Bi-Real Net's quadratic spline: 2 (1 - |z|) inside [-1, 1], 0 outside.
    assert_eq!(
        [-2.0f32, -0.5, 0.0, 0.25, 1.0].map(|z| a.derivative(z)),
        [0.0, 1.0, 2.0, 1.5, 0.0]
    );
    // The candle path cannot differentiate it: an error, not zero gradients.
    let t = candle_core::Tensor::new(&[0.5f32, -0.5], &candle_core::Device::Cpu).unwrap();
    assert!(a.apply_tensor(&t).is_err());
}

#[test]
fn scaled_mlps_keep_everything_but_the_widths() {
    let m = mlp(vec![300, 100], Activation::Relu);
    let s = m.scaled(0.25).unwrap();
    assert_eq!(s.hidden, vec![75, 25]);
    assert_eq!(
        (s.input_dim, s.output_dim, s.activation, s.w_std),
        (12, 3, Activation::Relu, 1.4)
    );
    assert_eq!(m.scaled(0.001).unwrap().hidden, vec![1, 1]);
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(m.scaled(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_weight_agnostic_search_predicts_the_mean_over_shared_weights() {
    use lottery_tangent::models::MlpWorkspace;
    use lottery_tangent::train::Trainable;
    let m = mlp(vec![16, 8], Activation::Relu);
    let (ep, scores) = EdgePopup::new(m.clone(), WeightInit::KaimingUniform, 0.4, Loss::CrossEntropy, 3).unwrap();
    let values = vec![0.5f32, -1.0, 2.0];
    let mut ep = ep.weight_agnostic(values.clone()).unwrap();
    let w = ep.weights().clone();
    let mask = ep.mask(&scores).unwrap();
    let n = 5;
    let x: Vec<f32> = (0..n * 12).map(|i| ((i * 7919) % 13) as f32 / 6.0 - 1.0).collect();
    let mut got = Vec::new();
    ep.predict(&scores, &x, n, &mut got).unwrap();
    let mut want = vec![0.0f32; n * 3];
    let mut ws = MlpWorkspace::default();
    for &v in &values {
        let mut p = w.zeros_like();
        for (name, a) in p.0.iter_mut() {
            if let Ok(mk) = mask.get(name) {
                let raw = &w.get(name).unwrap().data;
                for ((d, &k), &r) in a.data.iter_mut().zip(&mk.data).zip(raw) {
                    *d = if k != 0.0 { v * r.signum() } else { 0.0 };
                }
            }
        }
        m.forward_fast(&p, &x, n, &mut ws).unwrap();
        for (o, &y) in want.iter_mut().zip(ws.output()) {
            *o += y / values.len() as f32;
        }
    }
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() < 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
    let (ep2, _) = EdgePopup::new(m, WeightInit::KaimingUniform, 0.4, Loss::CrossEntropy, 3).unwrap();
    assert!(ep2.weight_agnostic(vec![1.0, 0.0]).is_err());
}

#[test]
fn adamw_decays_weights_apart_from_the_gradient() {
    use lottery_tangent::train::optim::adam::{Adam, AdamConfig};
    let cfg = AdamConfig {
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.98,
        eps: 1e-8,
        weight_decay: 0.5,
    };
    // First step: m̂ = g, v̂ = g², so Adam moves by lr·sign(g) after the decay.
    let (w0, g) = ([2.0f32, -1.0, 0.5], [0.3f32, -0.2, 0.0]);
    let mut w = w0;
    Adam::decoupled(cfg.clone()).update("w", &mut w, &g, 0.1);
    for i in 0..3 {
        let want = w0[i] * (1.0 - 0.1 * 0.5) - 0.1 * g[i] / (g[i].abs() + 1e-8);
        assert!((w[i] - want).abs() < 1e-6, "{i}: {} vs {want}", w[i]);
    }
    // Coupled (Adam's L2): the decay enters the gradient and is normalized away.
    let mut w = w0;
    Adam::new(cfg).update("w", &mut w, &g, 0.1);
    let gd = g[2] + 0.5 * w0[2];
    assert!((w[2] - (w0[2] - 0.1 * gd / (gd.abs() + 1e-8))).abs() < 1e-6);
}

// ---- Kernel velocity (Fort et al. 2020) ----

use lottery_tangent::experiments::kernel_velocity::{KernelPoint, KernelTrace, KernelVelocityConfig, SeedResult};
use lottery_tangent::experiments::lmc::KSummary;
use lottery_tangent::ntk::empirical::{Kernel, KernelKind};

fn kernel(data: Vec<f32>) -> Kernel {
    Kernel {
        data,
        rows: 2,
        cols: 2,
        kind: KernelKind::Traced,
    }
}

/// Fort et al.'s kernel distance is one minus the cosine between the
/// kernels: 0 for a positive rescaling, 1 for orthogonal kernels, 2 for
/// opposite ones; shape mismatches and zero kernels are errors.
#[test]
fn kernel_distance_is_one_minus_the_cosine() {
    let k = kernel(vec![1.0, 2.0, 2.0, 5.0]);
    assert!(k.cosine_distance(&k).unwrap().abs() < 1e-12);
    assert!(k.cosine_distance(&kernel(vec![3.0, 6.0, 6.0, 15.0])).unwrap().abs() < 1e-7);
    let (a, b) = (kernel(vec![1.0, 0.0, 0.0, 0.0]), kernel(vec![0.0, 0.0, 0.0, 1.0]));
    assert!((a.cosine_distance(&b).unwrap() - 1.0).abs() < 1e-12);
    assert!((a.cosine_distance(&kernel(vec![-1.0, 0.0, 0.0, 0.0])).unwrap() - 2.0).abs() < 1e-12);
    // 1 − (1·1 + 1·0) / (√2 · 1)
    let c = kernel(vec![1.0, 1.0, 0.0, 0.0]);
    assert!((a.cosine_distance(&c).unwrap() - (1.0 - 1.0 / 2f64.sqrt())).abs() < 1e-7);
    let wide = Kernel {
        data: vec![1.0; 6],
        rows: 2,
        cols: 3,
        kind: KernelKind::Traced,
    };
    assert!(a.cosine_distance(&wide).is_err());
    assert!(a.cosine_distance(&kernel(vec![0.0; 4])).is_err());
}

fn ksum(k: usize, instability: f64) -> KSummary {
    KSummary {
        network: "dense".into(),
        density: None,
        k,
        pairs: 2,
        mean: instability,
        min: instability,
        max: instability,
        stable: instability < lottery_tangent::experiments::lmc::STABLE_THRESHOLD,
        accuracy: 0.9,
    }
}

fn trace(v: &[(usize, f64)]) -> KernelTrace {
    KernelTrace {
        seed: 0,
        points: v
            .iter()
            .map(|&(step, velocity)| KernelPoint {
                step,
                velocity,
                to_final: 0.5,
                norm: 1.0,
            })
            .collect(),
        final_accuracy: 0.9,
    }
}

/// The onsets are bracketed by their grids: stability from the first k
/// after which every k is stable, the slowdown from the first step after
/// the first step whose velocity is under the fraction of its step-0 value.
#[test]
fn onset_brackets_follow_their_grids() {
    let t = trace(&[(0, 1.0), (5, 0.5), (20, 0.05), (40, 0.2), (80, 0.01), (160, 0.02)]);
    // The first crossing counts, whatever comes later (0.2 at step 40).
    assert_eq!(t.slow_bracket(0.1), Some((6, 20)));
    assert_eq!(t.slow_bracket(0.6), Some((1, 5)));
    assert_eq!(t.slow_bracket(0.03), Some((41, 80)));
    assert_eq!(t.slow_bracket(0.001), None);
    let r = |ks: Vec<KSummary>| SeedResult {
        seed: 0,
        trace: t.clone(),
        per_k: ks,
    };
    assert_eq!(
        r(vec![ksum(0, 0.2), ksum(25, 0.05), ksum(100, 0.01), ksum(500, 0.0)]).stable_bracket(),
        Some((26, 100))
    );
    assert_eq!(r(vec![ksum(0, 0.01), ksum(25, 0.0)]).stable_bracket(), Some((0, 0)));
    assert_eq!(r(vec![ksum(10, 0.01), ksum(25, 0.0)]).stable_bracket(), Some((0, 10)));
    assert_eq!(r(vec![ksum(0, 0.01), ksum(25, 0.1)]).stable_bracket(), None);
}

/// The kernel grid holds 0, every spawn step and log-spaced steps, each
/// with room for Δ before the end of the run.
#[test]
fn kernel_grid_has_room_for_delta() {
    let cfg = KernelVelocityConfig {
        ks: vec![0, 30, 90],
        kernel_points: 6,
        delta: 10,
        ..KernelVelocityConfig::default()
    };
    let g = cfg.grid(100);
    assert_eq!(g.first(), Some(&0));
    assert!(g.contains(&30) && g.contains(&90) && g.contains(&1));
    assert!(g.iter().all(|&t| t + 10 <= 100), "{g:?}");
    assert!(g.windows(2).all(|w| w[0] < w[1]), "{g:?}");
}

// ---- Kernel diagnostics of tickets (spectrum, effective rank, alignment) ----

use lottery_tangent::ntk::diagnostics::{centered_alignment, effective_rank, kernel_regression, kernel_stats};

/// Roy & Vetterli's effective rank: n for a flat spectrum, 1 for rank one,
/// exp of the entropy in between; an all-zero spectrum is an error.
#[test]
fn effective_rank_is_exp_entropy() {
    assert!((effective_rank(&[2.0; 5]).unwrap() - 5.0).abs() < 1e-12);
    assert!((effective_rank(&[3.0, 0.0, 0.0]).unwrap() - 1.0).abs() < 1e-12);
    // p = (3/4, 1/4): exp(−(3/4 ln 3/4 + 1/4 ln 1/4))
    let h: f64 = -(0.75f64 * 0.75f64.ln() + 0.25 * 0.25f64.ln());
    assert!((effective_rank(&[3.0, 1.0, -1e-12]).unwrap() - h.exp()).abs() < 1e-12);
    assert!(effective_rank(&[0.0, 0.0]).is_err());
    assert!(effective_rank(&[]).is_err());
}

/// Centered alignment is 1 for the label kernel itself (and its positive
/// multiples plus a constant, which centering removes), 0 for a kernel
/// orthogonal to it after centering, and an error for one class.
#[test]
fn centered_alignment_matches_its_definition() {
    let labels = [0u32, 0, 1, 1];
    let l: Vec<f64> = (0..16)
        .map(|ij| if labels[ij / 4] == labels[ij % 4] { 1.0 } else { 0.0 })
        .collect();
    assert!((centered_alignment(&l, 4, &labels, 2).unwrap() - 1.0).abs() < 1e-12);
    let shifted: Vec<f64> = l.iter().map(|v| 3.0 * v + 7.0).collect();
    assert!((centered_alignment(&shifted, 4, &labels, 2).unwrap() - 1.0).abs() < 1e-12);
    // A kernel that pairs examples across the classes: (0,2) and (1,3).
    let cross: Vec<f64> = (0..16)
        .map(|ij| {
            let (i, j) = (ij / 4, ij % 4);
            if i == j || (i % 2 == j % 2) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    assert!(centered_alignment(&cross, 4, &labels, 2).unwrap().abs() < 1e-12);
    // By hand for the identity: Kc = H, Lc = H L H; <H, HLH> = tr(HLH) = 2 (two classes of 2),
    // ||H|| = sqrt(3), ||HLH|| = 2.
    let eye: Vec<f64> = (0..16).map(|ij| if ij / 4 == ij % 4 { 1.0 } else { 0.0 }).collect();
    assert!((centered_alignment(&eye, 4, &labels, 2).unwrap() - 2.0 / (3f64.sqrt() * 2.0)).abs() < 1e-12);
    assert!(centered_alignment(&l, 4, &[0, 0, 0, 0], 2).is_err());
    assert!(centered_alignment(&l, 4, &[0, 0, 1, 5], 2).is_err());
    assert!(centered_alignment(&l[..9], 3, &labels, 2).is_err());
    let k = Kernel {
        data: l.iter().map(|&v| v as f32).collect(),
        rows: 4,
        cols: 4,
        kind: KernelKind::Traced,
    };
    let st = kernel_stats(&k, &labels, 2, 3).unwrap();
    assert_eq!(st.top_eigenvalues.len(), 3);
    assert!((st.top_eigenvalues[0] - 2.0).abs() < 1e-9 && (st.trace - 4.0).abs() < 1e-9);
    assert!((st.effective_rank - 2.0).abs() < 1e-9);
}

/// Kernel regression with a linear kernel on two separated clusters
/// classifies train and test perfectly; a bad ridge and an all-zero kernel
/// are errors.
#[test]
fn kernel_regression_solves_a_separable_problem() {
    use lottery_tangent::data::Dataset;
    let points = |xs: &[(f32, f32, u32)]| Dataset {
        name: "toy".into(),
        x: xs.iter().flat_map(|&(a, b, _)| [a, b, 1.0]).collect(),
        labels: xs.iter().map(|p| p.2).collect(),
        targets: None,
        target_dim: 2,
        shape: [1, 1, 3],
        num_classes: 2,
    };
    let train = points(&[
        (2.0, 1.9, 0),
        (2.2, 2.1, 0),
        (1.8, 2.0, 0),
        (-2.0, -2.1, 1),
        (-1.9, -2.2, 1),
        (-2.1, -1.8, 1),
    ]);
    let test = points(&[(1.5, 2.5, 0), (-2.5, -1.5, 1)]);
    let linear = |a: &[f32], na: usize, b: &[f32], nb: usize| -> lottery_tangent::Result<Vec<f32>> {
        Ok((0..na * nb)
            .map(|ij| {
                let (i, j) = (ij / nb, ij % nb);
                (0..3).map(|d| a[i * 3 + d] * b[j * 3 + d]).sum()
            })
            .collect())
    };
    let r = kernel_regression(linear, &train, &test, 1e-6).unwrap();
    assert_eq!((r.train_accuracy, r.test_accuracy), (1.0, 1.0));
    assert!(r.ridge > 0.0);
    assert!(kernel_regression(linear, &train, &test, 0.0).is_err());
    assert!(kernel_regression(linear, &train, &test, f64::NAN).is_err());
    let zero =
        |_: &[f32], na: usize, _: &[f32], nb: usize| -> lottery_tangent::Result<Vec<f32>> { Ok(vec![0.0; na * nb]) };
    assert!(kernel_regression(zero, &train, &test, 1e-6).is_err());
}

/// ResNet tickets (Chen et al. 2021's ResNet-32 ↔ ResNet-56 rule, here
/// ResNet-20 ↔ ResNet-32): each stage keeps its first block and replicates
/// the others in place (stretch, n → 2n − 1) or keeps every other one
/// (squeeze); the result fits the receiving network exactly.
#[test]
fn resnet_tickets_stretch_and_squeeze_by_stage() {
    use lottery_tangent::experiments::elastic::transform_resnet;
    use lottery_tangent::models::ModelConfig;
    let build = |depth| ModelConfig::Resnet { depth, width: 4 }.build([3, 8, 8], 10).unwrap();
    // Each prunable weight marked with its index in the network's order.
    let marked = |net: &lottery_tangent::models::Network| {
        let mut p = ParamSet::new();
        let shapes: std::collections::BTreeMap<_, _> = net.param_shapes().into_iter().collect();
        for (i, name) in net.prunable().into_iter().enumerate() {
            let shape = shapes[&name].clone();
            let n = shape.iter().product();
            p.insert(
                name,
                Array {
                    shape,
                    data: vec![i as f32; n],
                },
            );
        }
        Mask(p)
    };
    let (shallow, deep) = (build(20), build(32));
    let s = transform_resnet(&marked(&shallow), 3, 5).unwrap();
    for (name, shape) in deep.param_shapes() {
        if deep.prunable().contains(&name) {
            assert_eq!(s.0.get(&name).unwrap().shape, shape, "{name}");
        }
    }
    assert_eq!(s.0 .0.len(), deep.prunable().len());
    let src = |m: &Mask, name: &str| m.0.get(name).unwrap().data[0];
    let sm = marked(&shallow);
    // Stage 2 (blocks 5..9 of the deep net, 3..5 of the shallow): 0 <- 0, 1,2 <- 1, 3,4 <- 2.
    for (dst, from) in [(5, 3), (6, 4), (7, 4), (8, 5), (9, 5)] {
        assert_eq!(
            src(&s, &format!("blocks.{dst}.conv2.weight")),
            src(&sm, &format!("blocks.{from}.conv2.weight")),
            "deep block {dst}"
        );
    }
    assert_eq!(
        src(&s, "blocks.5.shortcut.conv.weight"),
        src(&sm, "blocks.3.shortcut.conv.weight")
    );
    let q = transform_resnet(&marked(&deep), 5, 3).unwrap();
    let dm = marked(&deep);
    for (dst, from) in [(3, 5), (4, 6), (5, 8)] {
        assert_eq!(
            src(&q, &format!("blocks.{dst}.conv1.weight")),
            src(&dm, &format!("blocks.{from}.conv1.weight"))
        );
    }
    assert_eq!(src(&q, "fc.weight"), src(&dm, "fc.weight"));
    let e = transform_resnet(&marked(&shallow), 3, 6).unwrap_err().to_string();
    assert!(e.contains("2n − 1"), "{e}");
}
