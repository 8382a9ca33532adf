//! Helpers shared by the fast-path tests (tests/conv_fast.rs, tests/resnet.rs).

use candle_core::Device;
use lottery_tangent::models::Network;
use lottery_tangent::params::ParamSet;
use lottery_tangent::train::objective::Batch;
use lottery_tangent::train::{Loss, Supervised, Trainable};
use rand::{Rng, SeedableRng};

/// `n` random inputs in [-1, 1) of dimension `d` with random labels of `c` classes.
pub fn batch(n: usize, d: usize, c: usize, seed: u64) -> Batch {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let x: Vec<f32> = (0..n * d).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let y: Vec<u32> = (0..n).map(|_| rng.gen_range(0..c as u32)).collect();
    let mut t = vec![0.0; n * c];
    for (i, &l) in y.iter().enumerate() {
        t[i * c + l as usize] = 1.0;
    }
    Batch { x, t, y }
}

/// (largest absolute difference, largest |b|) of two equal-length slices.
pub fn max_err(a: &[f32], b: &[f32]) -> (f32, f32) {
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    (a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())), scale)
}

/// The fast CPU path and candle's autodiff on `net` at its init (seed) and a
/// random batch of `n`: asserts equal losses and every gradient equal within
/// `tol` of its scale; returns both models, the parameters and the batch.
pub fn fast_matches_autodiff(
    net: &Network,
    n: usize,
    seed: u64,
    tol: f32,
) -> (Supervised, Supervised, ParamSet, Batch) {
    let p = net.init(seed);
    let b = batch(n, net.input_dim(), net.output_dim(), seed + 1);
    let mut fast = Supervised::new(net.clone(), Loss::CrossEntropy, &Device::Cpu);
    let mut reference = Supervised::with_autodiff(net.clone(), Loss::CrossEntropy, &Device::Cpu);
    let (mut gf, mut gr) = (p.zeros_like(), p.zeros_like());
    let lf = fast.loss_and_grad(&p, &b, &mut gf).unwrap();
    let lr = reference.loss_and_grad(&p, &b, &mut gr).unwrap();
    assert!((lf - lr).abs() <= 1e-4 * lr.abs().max(1.0), "loss {lf} vs {lr}");
    let mut bad = Vec::new();
    for (name, a) in gr.iter() {
        let (err, scale) = max_err(&gf.get(name).unwrap().data, &a.data);
        if err > tol * scale {
            bad.push(format!("{name}: max error {err} of scale {scale}"));
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
    (fast, reference, p, b)
}

/// Asserts that both models predict the same outputs on `b`.
pub fn same_predictions(fast: &mut Supervised, reference: &mut Supervised, p: &ParamSet, b: &Batch) {
    let (mut of, mut or) = (Vec::new(), Vec::new());
    fast.predict(p, &b.x, b.len(), &mut of).unwrap();
    reference.predict(p, &b.x, b.len(), &mut or).unwrap();
    let (err, scale) = max_err(&of, &or);
    assert!(err <= 1e-4 * scale.max(1.0), "outputs: max error {err}");
}
