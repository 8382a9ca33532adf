//! The linearized network: its JVP against the autodiff Jacobian, its value and
//! gradient at θ0 against the network's, and full-batch GD against the
//! closed-form kernel dynamics (exact for a model linear in its parameters).

use candle_core::Device;
use lottery_tangent::data::{self, Dataset};
use lottery_tangent::models::{Activation, Mlp, MlpWorkspace, Network, Parameterization};
use lottery_tangent::ntk::dynamics::KernelDynamics;
use lottery_tangent::ntk::empirical::jacobian;
use lottery_tangent::ntk::{mlp_ntk, KernelKind, Linearized};
use lottery_tangent::params::ParamSet;
use lottery_tangent::train::optim::SgdConfig;
use lottery_tangent::train::{
    self, Batch, Loss, OptimizerConfig, Schedule, Supervised, TrainOptions, TrainSpec, Trainable,
};

fn perturbation(p: &ParamSet, scale: f32) -> ParamSet {
    let mut t = p.zeros_like();
    for (i, a) in t.0.values_mut().enumerate() {
        for (j, v) in a.data.iter_mut().enumerate() {
            *v = scale * (((i * 7919 + j * 104729) % 1000) as f32 / 500.0 - 1.0);
        }
    }
    t
}

#[test]
fn jvp_equals_jacobian_times_tangent() {
    let (n, d) = (4, 6);
    let x: Vec<f32> = (0..n * d).map(|i| ((i * 37) % 11) as f32 / 5.0 - 1.0).collect();
    for act in [Activation::Relu, Activation::Erf, Activation::Tanh] {
        let mlp = Mlp::new(d, vec![9, 7], 3, act, Parameterization::Ntk, 1.5, 0.2).unwrap();
        let net = Network::Mlp(mlp.clone());
        let p = net.init(1);
        let t = perturbation(&p, 0.3);
        let mut ws = MlpWorkspace::default();
        mlp.forward_fast(&p, &x, n, &mut ws).unwrap();
        mlp.jvp_fast(&p, &t, &x, &mut ws).unwrap();
        let jvp = ws.zdot.last().unwrap().clone();
        let j = jacobian(&net, &p, &x, n, None).unwrap();
        let flat: Vec<f32> = t.0.values().flat_map(|a| a.data.iter().copied()).collect();
        let pc = flat.len();
        for r in 0..n * 3 {
            let want: f32 = j[r * pc..(r + 1) * pc].iter().zip(&flat).map(|(a, b)| a * b).sum();
            assert!(
                (jvp[r] - want).abs() < 1e-4 * want.abs().max(1.0),
                "{act:?} row {r}: {} vs {want}",
                jvp[r]
            );
        }
    }
}

fn digits_batch(n: usize) -> (data::Split, Batch) {
    let split = data::digits::load(0.25, 0)
        .unwrap()
        .preprocess(data::Preprocess::Standardize);
    let idx: Vec<usize> = (0..n).collect();
    let mut b = Batch::default();
    split.train.gather(&idx, &mut b.x, &mut b.t, &mut b.y);
    (split, b)
}

#[test]
fn linearization_at_theta0_matches_network() {
    let (_, b) = digits_batch(16);
    let mlp = Mlp::new(64, vec![32, 32], 10, Activation::Relu, Parameterization::Ntk, 1.4, 0.1).unwrap();
    let net = Network::Mlp(mlp.clone());
    let p0 = net.init(3);
    let mut lin = Linearized::new(mlp, p0.clone(), Loss::Mse).unwrap();
    let mut full = Supervised::new(net, Loss::Mse, &Device::Cpu);
    let (mut g1, mut g2) = (p0.zeros_like(), p0.zeros_like());
    let l1 = lin.loss_and_grad(&p0, &b, &mut g1).unwrap();
    let l2 = full.loss_and_grad(&p0, &b, &mut g2).unwrap();
    assert!((l1 - l2).abs() < 1e-5 * l2.abs().max(1.0));
    for (k, a) in g1.iter() {
        let bb = g2.get(k).unwrap();
        let scale = bb.data.iter().map(|v| v.abs()).fold(1e-6, f32::max);
        let e = a
            .data
            .iter()
            .zip(&bb.data)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(e < 1e-5 * scale.max(1.0), "{k}: {e}");
    }
}

/// For f(x) = W x + b the linearization is exact, and full-batch GD on MSE
/// follows the closed form `f_k = y + (I − ηΘ/N)^k (f_0 − y)` with
/// `Θ = (X X^T + 1) ⊗ I`: checked on train and test outputs to 1e-3 absolute.
#[test]
fn gradient_descent_follows_closed_form() {
    let n = 64;
    let (split, _) = digits_batch(n);
    let split = data::Split {
        train: split.train.take(n).unwrap(),
        test: split.test.take(32).unwrap(),
        validation: None,
    };
    let mlp = Mlp::new(64, vec![], 10, Activation::Relu, Parameterization::Standard, 1.0, 0.0).unwrap();
    let net = Network::Mlp(mlp.clone());
    let p0 = net.init(0);
    let steps = 40;
    let spec = TrainSpec {
        optimizer: OptimizerConfig::Sgd(SgdConfig {
            lr: 0.05,
            momentum: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }),
        schedule: Schedule::default(),
        batch_size: n,
        steps,
        eval_every: 0,
        eval_chunk: 1000,
        checkpoint_steps: vec![],
        save_every: 0,
        data_seed: 0,
        augment: Default::default(),
    };
    let mut lin = Linearized::new(mlp.clone(), p0.clone(), Loss::Mse).unwrap();
    let out = train::train(&mut lin, &p0, &split, &spec, &TrainOptions::default()).unwrap();
    let outputs = |d: &Dataset, p: &ParamSet, m: &mut Linearized| {
        let mut o = Vec::new();
        m.predict(p, &d.x, d.len(), &mut o).unwrap();
        o
    };
    let (tr, te) = (&split.train, &split.test);
    let theta = mlp_ntk(&mlp, &p0, &tr.x, n, &tr.x, n, KernelKind::Traced, None, 64).unwrap();
    let theta_te = mlp_ntk(&mlp, &p0, &te.x, te.len(), &tr.x, n, KernelKind::Traced, None, 64).unwrap();
    let f0 = outputs(tr, &p0, &mut lin);
    let f0_te = outputs(te, &p0, &mut lin);
    let mut y = vec![0.0f32; n * 10];
    for i in 0..n {
        tr.target_row(i, &mut y[i * 10..(i + 1) * 10]);
    }
    let dynamics = KernelDynamics::new(&theta, &f0, &y, 10).unwrap();
    assert!(0.05 < dynamics.max_stable_lr(), "test needs a stable rate");
    let pred_tr = dynamics.train_outputs(0.05, steps);
    let pred_te = dynamics.test_outputs(&theta_te, &f0_te, 0.05, steps).unwrap();
    let got_tr = outputs(tr, &out.params, &mut lin);
    let got_te = outputs(te, &out.params, &mut lin);
    let err_tr = pred_tr
        .iter()
        .zip(&got_tr)
        .map(|(a, &b)| (a - b as f64).abs())
        .fold(0.0, f64::max);
    let err_te = pred_te
        .iter()
        .zip(&got_te)
        .map(|(a, &b)| (a - b as f64).abs())
        .fold(0.0, f64::max);
    let moved = f0.iter().zip(&got_tr).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(moved > 0.1, "training should move the outputs ({moved})");
    assert!(
        err_tr < 1e-3 && err_te < 1e-3,
        "closed form off by {err_tr} (train), {err_te} (test)"
    );
    // the full network is the same model here
    let mut full = Supervised::new(net, Loss::Mse, &Device::Cpu);
    let out_full = train::train(&mut full, &p0, &split, &spec, &TrainOptions::default()).unwrap();
    let e = out_full.params.sub(&out.params).unwrap().l2_norm() / out.params.l2_norm();
    assert!(e < 1e-5, "full and linearized training differ by {e}");
}
