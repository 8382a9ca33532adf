//! The structured empirical NTK against the autodiff-Jacobian reference
//! (tolerance 1e-4 relative to the kernel's largest entry, f32) and against
//! closed forms.

use lottery_tangent::models::{Activation, Mlp, Network, Parameterization};
use lottery_tangent::ntk::{autodiff_ntk, mlp_ntk, Kernel, KernelKind};
use lottery_tangent::params::Mask;
use rand::{Rng, SeedableRng};

fn inputs(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n * d).map(|_| r.gen_range(-1.0f32..1.0)).collect()
}

fn rel_err(a: &Kernel, b: &Kernel) -> f32 {
    assert_eq!((a.rows, a.cols), (b.rows, b.cols));
    let scale = b.data.iter().map(|v| v.abs()).fold(0.0, f32::max);
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
        / scale
}

#[test]
fn structured_equals_autodiff() {
    let (x1, x2) = (inputs(5, 12, 1), inputs(4, 12, 2));
    for act in [Activation::Relu, Activation::Tanh, Activation::Erf] {
        for par in [Parameterization::Standard, Parameterization::Ntk] {
            let mlp = Mlp::new(12, vec![16, 8], 3, act, par, 1.4, 0.2).unwrap();
            let net = Network::Mlp(mlp.clone());
            let p = net.init(5);
            for kind in [KernelKind::Full, KernelKind::Traced] {
                let fast = mlp_ntk(&mlp, &p, &x1, 5, &x2, 4, kind, None, 2).unwrap();
                let slow = autodiff_ntk(&net, &p, &x1, 5, &x2, 4, kind, None).unwrap();
                let e = rel_err(&fast, &slow);
                assert!(e < 1e-4, "{act:?} {par:?} {kind:?}: relative error {e}");
            }
        }
    }
}

#[test]
fn masked_kernel_uses_only_unmasked_weights() {
    let x = inputs(4, 10, 3);
    let mlp = Mlp::new(10, vec![12], 3, Activation::Relu, Parameterization::Standard, 1.4, 0.1).unwrap();
    let net = Network::Mlp(mlp.clone());
    let p = net.init(1);
    let mut mask = Mask::ones(&p, &net.prunable()).unwrap();
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    for a in mask.0 .0.values_mut() {
        a.data
            .iter_mut()
            .for_each(|v| *v = if r.gen_bool(0.5) { 1.0 } else { 0.0 });
    }
    for kind in [KernelKind::Full, KernelKind::Traced] {
        let fast = mlp_ntk(&mlp, &p, &x, 4, &x, 4, kind, Some(&mask), 3).unwrap();
        let slow = autodiff_ntk(&net, &p, &x, 4, &x, 4, kind, Some(&mask)).unwrap();
        assert!(rel_err(&fast, &slow) < 1e-4, "{kind:?}");
        let dense = mlp_ntk(&mlp, &p, &x, 4, &x, 4, kind, None, 3).unwrap();
        assert!(rel_err(&dense, &fast) > 1e-2, "the mask must change the kernel");
    }
}

/// A network without hidden layers is linear, f(x) = W x + b, so
/// Θ((x,c),(x',c')) = (x·x' + 1) δ_cc' exactly (standard parameterization).
#[test]
fn linear_model_kernel_is_gram_plus_one() {
    let (n, d, c) = (6, 7, 4);
    let x = inputs(n, d, 4);
    let mlp = Mlp::new(d, vec![], c, Activation::Relu, Parameterization::Standard, 1.0, 0.5).unwrap();
    let p = Network::Mlp(mlp.clone()).init(0);
    let full = mlp_ntk(&mlp, &p, &x, n, &x, n, KernelKind::Full, None, 4).unwrap();
    let traced = mlp_ntk(&mlp, &p, &x, n, &x, n, KernelKind::Traced, None, 4).unwrap();
    for i in 0..n {
        for j in 0..n {
            let g: f32 = (0..d).map(|k| x[i * d + k] * x[j * d + k]).sum::<f32>() + 1.0;
            assert!((traced.data[i * n + j] - g).abs() < 1e-5);
            for a in 0..c {
                for b in 0..c {
                    let want = if a == b { g } else { 0.0 };
                    assert!((full.data[(i * c + a) * n * c + j * c + b] - want).abs() < 1e-5);
                }
            }
        }
    }
}

/// Blocking does not change the kernel; the self-kernel is symmetric and PSD.
/// With 330 examples (990 full rows) a diagonal block spans several bands of
/// the half-computed delta Grams, which must agree with the full product.
#[test]
fn blocked_self_kernel_is_symmetric_psd() {
    let n = 330;
    let x = inputs(n, 9, 7);
    let mlp = Mlp::new(9, vec![20, 20], 3, Activation::Erf, Parameterization::Ntk, 1.3, 0.1).unwrap();
    let p = Network::Mlp(mlp.clone()).init(2);
    for kind in [KernelKind::Full, KernelKind::Traced] {
        let one = mlp_ntk(&mlp, &p, &x, n, &x, n, kind, None, 400).unwrap();
        let blocked = mlp_ntk(&mlp, &p, &x, n, &x, n, kind, None, 3).unwrap();
        assert!(rel_err(&blocked, &one) < 1e-5);
        // a copy of x (different buffer) takes the non-symmetric path: same result
        let x2 = x.clone();
        let general = mlp_ntk(&mlp, &p, &x, n, &x2, n, kind, None, 4).unwrap();
        assert!(rel_err(&general, &one) < 1e-5);
        let m = one.rows;
        let mat = nalgebra::DMatrix::from_fn(m, m, |i, j| one.data[i * m + j] as f64);
        assert!((&mat - mat.transpose()).abs().max() < 1e-4 * mat.abs().max());
        let eig = nalgebra::SymmetricEigen::new(mat.clone()).eigenvalues;
        assert!(eig.min() > -1e-4 * eig.max(), "min eigenvalue {}", eig.min());
    }
}

#[test]
fn bad_inputs_are_errors() {
    let mlp = Mlp::new(4, vec![3], 2, Activation::Relu, Parameterization::Standard, 1.0, 0.0).unwrap();
    let p = Network::Mlp(mlp.clone()).init(0);
    let x = inputs(2, 4, 0);
    assert!(mlp_ntk(&mlp, &p, &x, 3, &x, 2, KernelKind::Full, None, 8).is_err());
    assert!(mlp_ntk(&mlp, &p, &x, 0, &x, 2, KernelKind::Full, None, 8).is_err());
    let other =
        Network::Mlp(Mlp::new(4, vec![5], 2, Activation::Relu, Parameterization::Standard, 1.0, 0.0).unwrap()).init(0);
    assert!(mlp_ntk(&mlp, &other, &x, 2, &x, 2, KernelKind::Traced, None, 8).is_err());
}

/// At initialization the empirical NTK (traced) of an NTK-parameterized ReLU
/// MLP approaches the analytic infinite-width NTK as the width grows
/// (Jacot et al. 2018, Thm. 1): the relative Frobenius error, averaged over 3
/// seeds, shrinks from width 32 to 2048 by more than 4x (O(width^-1/2)
/// predicts 8x) and is below 10% at width 2048.
#[test]
fn empirical_ntk_approaches_analytic_with_width() {
    use lottery_tangent::ntk::analytic::InfiniteMlp;
    let (n, d) = (6, 10);
    let x = inputs(n, d, 11);
    let inf = InfiniteMlp::new(3, Activation::Relu, 1.4, 0.1).unwrap();
    let k = inf.kernels(&x, n, &x, n, d).unwrap();
    let norm: f64 = k.ntk.iter().map(|v| v * v).sum::<f64>().sqrt();
    let err_at = |w: usize| -> f64 {
        let mlp = Mlp::new(d, vec![w, w], 4, Activation::Relu, Parameterization::Ntk, 1.4, 0.1).unwrap();
        (0..3)
            .map(|seed| {
                let p = Network::Mlp(mlp.clone()).init(seed);
                let e = mlp_ntk(&mlp, &p, &x, n, &x, n, KernelKind::Traced, None, 64).unwrap();
                let diff: f64 = e.data.iter().zip(&k.ntk).map(|(&a, &b)| (a as f64 - b).powi(2)).sum();
                diff.sqrt() / norm
            })
            .sum::<f64>()
            / 3.0
    };
    let (small, large) = (err_at(32), err_at(2048));
    assert!(large < 0.1, "relative error at width 2048: {large}");
    assert!(large < small / 4.0, "error did not shrink enough: {small} -> {large}");
}

/// The device kernel (`ntk::device`, tensor code; `LTK_TEST_DEVICE=cuda` in
/// a `cuda` build puts it on the GPU) equals the CPU's structured kernel:
/// full and traced, x1 = x2 (symmetric, mirrored blocks) and x1 ≠ x2,
/// blocks that do not divide n, with and without a mask, every activation.
#[test]
fn device_kernel_equals_the_cpu_kernel() {
    let name = std::env::var("LTK_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    let device = lottery_tangent::device::parse(&name).unwrap();
    let (x1, x2) = (inputs(7, 12, 3), inputs(5, 12, 4));
    for act in [Activation::Relu, Activation::Tanh, Activation::Erf] {
        let mlp = Mlp::new(12, vec![16, 8], 3, act, Parameterization::Ntk, 1.4, 0.2).unwrap();
        let net = Network::Mlp(mlp.clone());
        let p = net.init(2);
        let mut mask = Mask::ones(&p, &net.prunable()).unwrap();
        for (i, v) in mask.0 .0.get_mut("fc2.weight").unwrap().data.iter_mut().enumerate() {
            if i % 3 == 0 {
                *v = 0.0;
            }
        }
        for m in [None, Some(&mask)] {
            for kind in [KernelKind::Full, KernelKind::Traced] {
                let cpu = mlp_ntk(&mlp, &p, &x1, 7, &x2, 5, kind, m, 3).unwrap();
                let dev =
                    lottery_tangent::ntk::device::mlp_ntk_on(&device, &mlp, &p, &x1, 7, &x2, 5, kind, m, 3).unwrap();
                let e = rel_err(&dev, &cpu);
                assert!(e < 1e-5, "{act:?} {kind:?} mask {}: relative error {e}", m.is_some());
                let cpu = mlp_ntk(&mlp, &p, &x1, 7, &x1, 7, kind, m, 2).unwrap();
                let dev =
                    lottery_tangent::ntk::device::mlp_ntk_on(&device, &mlp, &p, &x1, 7, &x1, 7, kind, m, 2).unwrap();
                let e = rel_err(&dev, &cpu);
                assert!(
                    e < 1e-5,
                    "{act:?} {kind:?} mask {} (x1 = x2): relative error {e}",
                    m.is_some()
                );
                assert!((0..dev.rows).all(|i| (0..i).all(|j| dev.data[i * dev.cols + j] == dev.data[j * dev.cols + i])));
            }
        }
    }
}

/// The autodiff traced kernel of any network: for an MLP it is the
/// structured kernel; for a BatchNorm ResNet (evaluation mode, fixed
/// statistics) each entry depends on its two examples alone, and without
/// statistics it is an error.
#[test]
fn autodiff_traced_kernel_matches_the_mlp_kernel_and_takes_batch_norm_networks() {
    use lottery_tangent::models::resnet::BnStat;
    use lottery_tangent::models::{BnStats, ModelConfig};
    use lottery_tangent::ntk::autodiff_traced_ntk;

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mlp = ModelConfig::Mlp {
        hidden: vec![7, 5],
        activation: lottery_tangent::models::Activation::Tanh,
        parameterization: lottery_tangent::models::Parameterization::Ntk,
        w_std: None,
        b_std: None,
    }
    .build([1, 2, 3], 4)
    .unwrap();
    let p = mlp.init(1);
    let x: Vec<f32> = (0..5 * 6).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let Network::Mlp(m) = &mlp else { unreachable!() };
    let fast = mlp_ntk(m, &p, &x, 5, &x, 5, KernelKind::Traced, None, 64).unwrap();
    let slow = autodiff_traced_ntk(&mlp, &p, &x, 5, None).unwrap();
    let scale = fast.data.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    for (a, b) in fast.data.iter().zip(&slow.data) {
        assert!((a - b).abs() <= 1e-4 * scale, "{a} vs {b}");
    }

    let net = ModelConfig::Resnet { depth: 8, width: 2 }.build([2, 5, 5], 3).unwrap();
    let p = net.init(2);
    let x: Vec<f32> = (0..3 * 50).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let e = autodiff_traced_ntk(&net, &p, &x, 3, None).unwrap_err().to_string();
    assert!(e.contains("BatchNorm"), "{e}");
    let mut stats = BnStats::default();
    for (name, shape) in net.param_shapes() {
        if let Some(bn) = name.strip_suffix(".weight").filter(|b| b.contains("bn")) {
            let c = shape[0];
            let mean = (0..c).map(|_| rng.gen_range(-0.5..0.5)).collect();
            let var = (0..c).map(|_| rng.gen_range(0.5..2.0)).collect();
            stats.0.insert(bn.to_string(), BnStat { mean, var });
        }
    }
    let k = autodiff_traced_ntk(&net, &p, &x, 3, Some(&stats)).unwrap();
    let pair: Vec<f32> = [&x[..50], &x[100..]].concat();
    let k2 = autodiff_traced_ntk(&net, &p, &pair, 2, Some(&stats)).unwrap();
    let at = |k: &Kernel, i: usize, j: usize| k.data[i * k.cols + j];
    for (i, j, i2, j2) in [(0, 2, 0, 1), (2, 2, 1, 1), (0, 0, 0, 0)] {
        let (a, b) = (at(&k, i, j), at(&k2, i2, j2));
        assert!((a - b).abs() <= 1e-4 * a.abs().max(1e-3), "({i}, {j}): {a} vs {b}");
    }
    assert!((at(&k, 0, 1) - at(&k, 1, 0)).abs() <= 1e-5 * at(&k, 0, 0).abs());
    assert!(at(&k, 1, 1) > 0.0);
}
