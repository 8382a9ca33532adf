//! Training tests: the fast MLP path against candle autodiff, optimizers
//! against closed forms, determinism, masks, resuming and divergence.

use candle_core::Device;
use lottery_tangent::config::ExperimentConfig;
use lottery_tangent::data::{self, Dataset};
use lottery_tangent::models::{Activation, Mlp, ModelConfig, Network, Parameterization};
use lottery_tangent::params::{Array, Mask, ParamSet};
use lottery_tangent::paths::RunDir;
use lottery_tangent::train::optim::{AdamConfig, SgdConfig};
use lottery_tangent::train::{self, Batch, Loss, OptimizerConfig, Supervised, TrainOptions, Trainable};

fn batch_of(d: &Dataset, n: usize) -> Batch {
    let idx: Vec<usize> = (0..n).collect();
    let mut b = Batch::default();
    d.gather(&idx, &mut b.x, &mut b.t, &mut b.y);
    b
}

fn max_rel_diff(a: &ParamSet, b: &ParamSet) -> f32 {
    let mut worst = 0.0f32;
    for (k, x) in a.iter() {
        let y = b.get(k).unwrap();
        let scale = x.data.iter().map(|v| v.abs()).fold(0.0, f32::max).max(1e-6);
        for (p, q) in x.data.iter().zip(&y.data) {
            worst = worst.max((p - q).abs() / scale);
        }
    }
    worst
}

/// The slice backward must equal candle's autodiff gradient (the reference)
/// for every activation, parameterization and loss; tolerance 1e-4 relative
/// to each tensor's largest entry (f32 summation order differs).
#[test]
fn fast_mlp_gradient_matches_autodiff() {
    let split = data::digits::load(0.25, 0)
        .unwrap()
        .preprocess(data::Preprocess::Standardize);
    let batch = batch_of(&split.train, 32);
    for act in [Activation::Relu, Activation::Tanh, Activation::Erf] {
        for par in [Parameterization::Standard, Parameterization::Ntk] {
            for loss in [Loss::CrossEntropy, Loss::Mse] {
                let net = Network::Mlp(Mlp::new(64, vec![48, 24], 10, act, par, 1.5, 0.3).unwrap());
                let p = net.init(3);
                let mut fast = Supervised::new(net.clone(), loss, &Device::Cpu);
                let mut slow = Supervised::with_autodiff(net.clone(), loss, &Device::Cpu);
                let mut g1 = p.zeros_like();
                let mut g2 = p.zeros_like();
                let l1 = fast.loss_and_grad(&p, &batch, &mut g1).unwrap();
                let l2 = slow.loss_and_grad(&p, &batch, &mut g2).unwrap();
                assert!(
                    (l1 - l2).abs() < 1e-4 * l2.abs().max(1.0),
                    "{act:?} {par:?} {loss:?}: loss {l1} vs {l2}"
                );
                let d = max_rel_diff(&g1, &g2);
                assert!(d < 1e-4, "{act:?} {par:?} {loss:?}: gradient differs by {d}");
                let mut o1 = Vec::new();
                let mut o2 = Vec::new();
                fast.predict(&p, &batch.x, 32, &mut o1).unwrap();
                slow.predict(&p, &batch.x, 32, &mut o2).unwrap();
                let od = o1.iter().zip(&o2).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
                assert!(od < 1e-4, "outputs differ by {od}");
            }
        }
    }
}

/// A one-hot input (modular arithmetic's operands) takes the sparse first
/// layer; its loss, gradient and outputs equal candle's autodiff too, in
/// both parameterizations.
#[test]
fn sparse_first_layer_matches_autodiff() {
    let split = data::modular::addition(11, 0.5, 0).unwrap();
    let batch = batch_of(&split.train, 40);
    assert!(batch.x.iter().filter(|&&v| v != 0.0).count() * 8 <= batch.x.len());
    for par in [Parameterization::Standard, Parameterization::Ntk] {
        let net = Network::Mlp(Mlp::new(22, vec![32], 11, Activation::Relu, par, 1.4, 0.1).unwrap());
        let p = net.init(5);
        let mut fast = Supervised::new(net.clone(), Loss::CrossEntropy, &Device::Cpu);
        let mut slow = Supervised::with_autodiff(net.clone(), Loss::CrossEntropy, &Device::Cpu);
        let (mut g1, mut g2) = (p.zeros_like(), p.zeros_like());
        let l1 = fast.loss_and_grad(&p, &batch, &mut g1).unwrap();
        let l2 = slow.loss_and_grad(&p, &batch, &mut g2).unwrap();
        assert!((l1 - l2).abs() < 1e-4 * l2.abs().max(1.0), "{par:?}: loss {l1} vs {l2}");
        let d = max_rel_diff(&g1, &g2);
        assert!(d < 1e-4, "{par:?}: gradient differs by {d}");
        let (mut o1, mut o2) = (Vec::new(), Vec::new());
        fast.predict(&p, &batch.x, 40, &mut o1).unwrap();
        slow.predict(&p, &batch.x, 40, &mut o2).unwrap();
        let od = o1.iter().zip(&o2).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(od < 1e-4, "{par:?}: outputs differ by {od}");
    }
}

/// SGD with momentum and weight decay against the recurrence written out by hand
/// (PyTorch's rule), on a single scalar parameter with a fixed gradient sequence.
#[test]
fn sgd_momentum_matches_recurrence() {
    let cfg = OptimizerConfig::Sgd(SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 0.01,
        nesterov: false,
    });
    let mut opt = train::Optimizer::new(&cfg);
    let mut p = ParamSet::new();
    p.insert("w", Array::new(vec![1], vec![1.0]).unwrap());
    let (mut w, mut b) = (1.0f64, 0.0f64);
    for g in [0.5f64, -0.2, 0.3, 0.1] {
        let mut gs = ParamSet::new();
        gs.insert("w", Array::new(vec![1], vec![g as f32]).unwrap());
        opt.step(&mut p, &mut gs, 0.1, None).unwrap();
        let gd = g + 0.01 * w;
        b = 0.9 * b + gd;
        w -= 0.1 * b;
    }
    assert!((p.get("w").unwrap().data[0] as f64 - w).abs() < 1e-6);
}

/// Adam's first step moves every weight by lr * sign(g) (bias correction makes m̂/sqrt(v̂) = ±1).
#[test]
fn adam_first_step_is_lr_times_sign() {
    let cfg = OptimizerConfig::Adam(AdamConfig {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-12,
        weight_decay: 0.0,
    });
    let mut opt = train::Optimizer::new(&cfg);
    let mut p = ParamSet::new();
    p.insert("w", Array::new(vec![3], vec![1.0, 2.0, 3.0]).unwrap());
    let mut g = ParamSet::new();
    g.insert("w", Array::new(vec![3], vec![0.5, -4.0, 1e-3]).unwrap());
    opt.step(&mut p, &mut g, 0.01, None).unwrap();
    let w = &p.get("w").unwrap().data;
    assert!(
        (w[0] - 0.99).abs() < 1e-6 && (w[1] - 2.01).abs() < 1e-6 && (w[2] - 2.99).abs() < 1e-6,
        "{w:?}"
    );
}

fn small_config(steps: usize) -> ExperimentConfig {
    let mut c = ExperimentConfig::default();
    c.name = "t".into();
    c.seed = 7;
    c.model = ModelConfig::Mlp {
        hidden: vec![32],
        activation: Activation::Relu,
        parameterization: Parameterization::Standard,
        w_std: None,
        b_std: None,
    };
    c.train.epochs = None;
    c.train.iterations = Some(steps);
    c.train.batch_size = 32;
    c.train.eval_every = Some(20);
    c.train.optimizer = OptimizerConfig::Sgd(SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 1e-4,
        nesterov: false,
    });
    c
}

fn run(c: &ExperimentConfig, opts: &TrainOptions) -> train::TrainOutcome {
    let e = c.resolve().unwrap();
    let mut model = Supervised::new(e.net.clone(), e.spec_loss(), &Device::Cpu);
    let init = e.net.init(c.seed);
    train::train(&mut model, &init, &e.split, &e.spec, opts).unwrap()
}

trait SpecLoss {
    fn spec_loss(&self) -> Loss;
}
impl SpecLoss for lottery_tangent::config::Experiment {
    fn spec_loss(&self) -> Loss {
        self.config.train.loss
    }
}

/// Same config => bit-identical metrics and parameters; a different data-order
/// seed (SGD noise) alone changes them.
#[test]
fn training_is_deterministic() {
    let c = small_config(60);
    let a = run(&c, &TrainOptions::default());
    let b = run(&c, &TrainOptions::default());
    assert_eq!(a.history, b.history);
    assert_eq!(a.params, b.params);
    let mut c2 = c.clone();
    c2.train.data_seed = Some(99);
    let d = run(&c2, &TrainOptions::default());
    assert_ne!(a.params, d.params);
    // and training learned something: digits, 60 steps of SGD reach > 60% (chance is 10%).
    assert!(a.last().unwrap().test_accuracy > 0.6, "{:?}", a.last());
}

/// Masked weights are zero at the start and exactly zero after every step.
#[test]
fn masked_weights_stay_zero_through_training() {
    let c = small_config(40);
    let e = c.resolve().unwrap();
    let init = e.net.init(1);
    let mut mask = Mask::ones(&init, &e.net.prunable()).unwrap();
    for (i, v) in mask.0.get_mut("fc1.weight").unwrap().data.iter_mut().enumerate() {
        if i % 3 != 0 {
            *v = 0.0;
        }
    }
    let mut model = Supervised::new(e.net.clone(), Loss::CrossEntropy, &Device::Cpu);
    let out = train::train(
        &mut model,
        &init,
        &e.split,
        &e.spec,
        &TrainOptions {
            mask: Some(&mask),
            ..Default::default()
        },
    )
    .unwrap();
    let w = out.params.get("fc1.weight").unwrap();
    let m = mask.0.get("fc1.weight").unwrap();
    let zeros = w
        .data
        .iter()
        .zip(&m.data)
        .filter(|(_, &b)| b == 0.0)
        .all(|(&x, _)| x == 0.0);
    assert!(zeros, "a pruned weight moved");
    let kept_moved = w
        .data
        .iter()
        .zip(&init.get("fc1.weight").unwrap().data)
        .zip(&m.data)
        .any(|((a, b), &k)| k == 1.0 && a != b);
    assert!(kept_moved, "kept weights should train");
    assert!(out.last().unwrap().test_accuracy > 0.5);
}

/// A run killed after 37 steps (last saved state at step 30) and resumed ends
/// bit-identical to an uninterrupted run, history included.
#[test]
fn resume_equals_uninterrupted() {
    let mut c = small_config(80);
    c.train.save_every = Some(10);
    c.train.checkpoint_at = vec![0, 25, 60];
    let dir = tempfile::tempdir().unwrap();
    let full = run(&c, &TrainOptions::default());
    let rd = RunDir::create(dir.path().join("r")).unwrap();
    let part = run(
        &c,
        &TrainOptions {
            run_dir: Some(&rd),
            stop_after: Some(37),
            ..Default::default()
        },
    );
    assert!(!part.completed);
    assert_eq!(part.steps_done, 37);
    let resumed = run(
        &c,
        &TrainOptions {
            run_dir: Some(&rd),
            resume: true,
            ..Default::default()
        },
    );
    assert!(resumed.completed);
    assert_eq!(resumed.params, full.params);
    assert_eq!(resumed.history, full.history);
    assert_eq!(resumed.checkpoints.keys().collect::<Vec<_>>(), vec![&0, &25, &60]);
    assert_eq!(resumed.checkpoints[&25], full.checkpoints[&25]);
    assert!(rd.metrics_csv().exists() && rd.checkpoint(60).exists());
}

/// A learning rate far too large ends in a clear divergence error naming the step.
#[test]
fn divergence_is_an_error() {
    let mut c = small_config(200);
    c.train.optimizer = OptimizerConfig::Sgd(SgdConfig {
        lr: 1e4,
        momentum: 0.9,
        weight_decay: 0.0,
        nesterov: false,
    });
    let e = c.resolve().unwrap();
    let mut model = Supervised::new(e.net.clone(), Loss::CrossEntropy, &Device::Cpu);
    let err = train::train(&mut model, &e.net.init(0), &e.split, &e.spec, &TrainOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("diverged at step"), "{msg}");
}

/// The conv net trains (im2col path on the CPU) and learns digits, with and
/// without augmentation; augmentation is part of the data order (the same
/// seed gives the same run).
#[test]
fn conv_net_trains_on_digits() {
    let mut c = small_config(60);
    c.model = ModelConfig::Conv {
        channels: vec![8, 16],
        hidden: vec![32],
        kernel: 3,
        padding: lottery_tangent::models::Padding::Same,
        convs_per_block: 1,
    };
    let out = run(&c, &TrainOptions::default());
    assert!(out.last().unwrap().test_accuracy > 0.5, "{:?}", out.last());
    // (no flips: a mirrored digit is not the same digit)
    c.train.augment = lottery_tangent::data::augment::Augment {
        crop_padding: 1,
        horizontal_flip: false,
    };
    let a = run(&c, &TrainOptions::default());
    let b = run(&c, &TrainOptions::default());
    assert_eq!(a.params, b.params);
    assert!(a.params != out.params);
    assert!(a.last().unwrap().test_accuracy > 0.3, "{:?}", a.last());
}

/// Our SGD behind candle's `Optimizer` trait: one step on a `Var` matches the
/// hand-written momentum recurrence (here the first step, w − lr·g).
#[test]
fn sgd_through_candles_optimizer_trait() {
    use candle_nn::Optimizer as _;
    let var = candle_core::Var::new(&[1.0f32, -2.0], &Device::Cpu).unwrap();
    let cfg = SgdConfig {
        lr: 0.5,
        momentum: 0.9,
        weight_decay: 0.0,
        nesterov: false,
    };
    let mut opt = lottery_tangent::train::optim::Sgd::from_slice(&[&var], cfg).unwrap();
    let loss = var.as_tensor().sqr().unwrap().sum_all().unwrap(); // grad = 2w
    opt.backward_step(&loss).unwrap();
    assert_eq!(var.as_tensor().to_vec1::<f32>().unwrap(), vec![0.0, 0.0]);
    let loss = var.as_tensor().sum_all().unwrap(); // grad = 1; buffer = 0.9*(2w0) + 1
    opt.backward_step(&loss).unwrap();
    let want = [0.0 - 0.5 * (0.9 * 2.0 + 1.0), 0.0 - 0.5 * (0.9 * -4.0 + 1.0)];
    let got = var.as_tensor().to_vec1::<f32>().unwrap();
    assert!(
        (got[0] - want[0]).abs() < 1e-6 && (got[1] - want[1]).abs() < 1e-6,
        "{got:?} vs {want:?}"
    );
}

/// Records the labels of every training batch it sees (the data order).
struct Recorder {
    inner: Supervised,
    batches: Vec<Vec<u32>>,
}

impl Trainable for Recorder {
    fn loss(&self) -> Loss {
        self.inner.loss()
    }
    fn outputs(&self) -> usize {
        self.inner.outputs()
    }
    fn loss_and_grad(
        &mut self,
        params: &ParamSet,
        batch: &Batch,
        grads: &mut ParamSet,
    ) -> lottery_tangent::Result<f32> {
        // labels plus the first input of each row identify the examples
        let d = batch.x.len() / batch.len().max(1);
        let mut key = batch.y.clone();
        key.extend(batch.x.iter().step_by(d.max(1)).map(|v| v.to_bits()));
        self.batches.push(key);
        self.inner.loss_and_grad(params, batch, grads)
    }
    fn predict(&mut self, params: &ParamSet, x: &[f32], n: usize, out: &mut Vec<f32>) -> lottery_tangent::Result<()> {
        self.inner.predict(params, x, n, out)
    }
}

/// Rewinding to step k (Frankle et al. 2020; open_lth `training/train.py`):
/// a run started at k takes exactly T − k optimizer steps, sees at step j the
/// batch the dense run saw at step j, and uses the schedule's rate at j.
#[test]
fn a_run_started_at_k_continues_the_data_order_and_schedule() {
    let (t, k) = (90, 35);
    let mut c = small_config(t);
    c.train.schedule = lottery_tangent::train::Schedule::Step {
        milestones: vec![38, 60],
        milestone_epochs: vec![],
        gamma: 0.5,
        warmup_steps: 10,
    };
    let e = c.resolve().unwrap();
    let init = e.net.init(c.seed);
    let mut dense = Recorder {
        inner: Supervised::new(e.net.clone(), e.spec_loss(), &Device::Cpu),
        batches: vec![],
    };
    let d = train::train(&mut dense, &init, &e.split, &e.spec, &TrainOptions::default()).unwrap();
    let mut rewound = Recorder {
        inner: Supervised::new(e.net.clone(), e.spec_loss(), &Device::Cpu),
        batches: vec![],
    };
    let opts = TrainOptions {
        start_step: k,
        ..Default::default()
    };
    let r = train::train(&mut rewound, &init, &e.split, &e.spec, &opts).unwrap();
    assert_eq!(dense.batches.len(), t);
    assert_eq!(rewound.batches.len(), t - k);
    assert_eq!(rewound.batches[..], dense.batches[k..]);
    assert_eq!((r.start_step, r.steps_done), (k, t));
    // the first evaluation is at step k with the schedule's rate there
    let first = &r.history[0];
    assert_eq!(first.step, k);
    let at_40 = d.history.iter().find(|h| h.step == 40).unwrap();
    let r40 = r.history.iter().find(|h| h.step == 40).unwrap();
    assert_eq!(at_40.lr, r40.lr);
    assert!(r40.lr < d.history[0].lr.max(0.05), "the milestone at 38 applies");
}

/// A run may start from a given optimizer state (LMC children inheriting the
/// parent's momentum); the parent keeps its state at checkpoint steps.
#[test]
fn optimizer_state_can_be_kept_and_inherited() {
    let c = small_config(60);
    let mut e = c.resolve().unwrap();
    e.spec.checkpoint_steps = vec![0, 30];
    let init = e.net.init(c.seed);
    let mut m = Supervised::new(e.net.clone(), e.spec_loss(), &Device::Cpu);
    let keep = TrainOptions {
        keep_optimizer_checkpoints: true,
        ..Default::default()
    };
    let parent = train::train(&mut m, &init, &e.split, &e.spec, &keep).unwrap();
    let state = &parent.optimizer_checkpoints[&30];
    assert!(state.numel() > 0);
    let theta = &parent.checkpoints[&30];
    // continuing with the inherited state from θ30 reproduces the parent exactly
    let cont = TrainOptions {
        start_step: 30,
        optimizer_state: Some(state),
        ..Default::default()
    };
    let child = train::train(&mut m, theta, &e.split, &e.spec, &cont).unwrap();
    assert_eq!(child.params, parent.params);
    // a fresh optimizer from θ30 does not
    let fresh = TrainOptions {
        start_step: 30,
        ..Default::default()
    };
    let other = train::train(&mut m, theta, &e.split, &e.spec, &fresh).unwrap();
    assert_ne!(other.params, parent.params);
}

/// A kill while a state is being saved leaves the previous complete state in
/// force: leftovers of an unfinished save (a partial directory, or a complete
/// directory the pointer never switched to) are ignored and the resumed run
/// ends bit-identical to an uninterrupted one. A damaged current state is an
/// error naming the missing file, never a silent mix of steps.
#[test]
fn a_torn_state_save_is_never_resumed_from() {
    let mut c = small_config(80);
    c.train.save_every = Some(10);
    let dir = tempfile::tempdir().unwrap();
    let full = run(&c, &TrainOptions::default());
    let rd = RunDir::create(dir.path().join("r")).unwrap();
    run(
        &c,
        &TrainOptions {
            run_dir: Some(&rd),
            stop_after: Some(37),
            ..Default::default()
        },
    );
    let current = std::fs::read_to_string(rd.state_current()).unwrap().trim().to_string();
    assert!(current.starts_with("s00000030-"), "{current}");
    // a save of step 40 killed before its rename, and one killed before the pointer switch
    let state = rd.state_dir();
    let partial = state.join("s00000040-1-1.partial");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("params.safetensors"), b"half a file").unwrap();
    let unswitched = state.join("s00000040-1-2");
    std::fs::create_dir_all(&unswitched).unwrap();
    for f in ["params.safetensors", "optimizer.safetensors"] {
        std::fs::copy(state.join(&current).join(f), unswitched.join(f)).unwrap();
    }
    std::fs::write(unswitched.join("progress.json"), b"{\"step\": 40}").unwrap();
    let resumed = run(
        &c,
        &TrainOptions {
            run_dir: Some(&rd),
            resume: true,
            ..Default::default()
        },
    );
    assert_eq!(resumed.params, full.params);
    assert_eq!(resumed.history, full.history);
    // only the last complete state is left
    let left: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    // a damaged current state is a clear error
    let current = std::fs::read_to_string(rd.state_current()).unwrap().trim().to_string();
    std::fs::remove_file(state.join(&current).join("optimizer.safetensors")).unwrap();
    let e = lottery_tangent::config::ExperimentConfig::resolve(&c)
        .and_then(|e| {
            let mut m = Supervised::new(e.net.clone(), e.config.train.loss, &Device::Cpu);
            train::train(
                &mut m,
                &e.net.init(c.seed),
                &e.split,
                &e.spec,
                &TrainOptions {
                    run_dir: Some(&rd),
                    resume: true,
                    ..Default::default()
                },
            )
        })
        .err()
        .expect("a damaged state is an error")
        .to_string();
    assert!(e.contains("optimizer.safetensors") && e.contains("damaged"), "{e}");
}

/// Cached training (open_lth-style): the same call is trained once and then
/// loaded bit for bit; a different mask or spec is a different entry.
#[test]
fn cached_training_is_trained_once_and_reloaded_exactly() {
    use lottery_tangent::train::cache::cached_train;
    let mut c = small_config(40);
    c.train.checkpoint_at = vec![0, 20];
    let e = c.resolve().unwrap();
    let init = e.net.init(c.seed);
    let dir = tempfile::tempdir().unwrap();
    let id = e.training_identity().unwrap();
    let mut rec = Recorder {
        inner: Supervised::new(e.net.clone(), e.spec_loss(), &Device::Cpu),
        batches: vec![],
    };
    let opts = TrainOptions {
        keep_optimizer_checkpoints: true,
        ..Default::default()
    };
    let a = cached_train(dir.path(), &id, &mut rec, &init, &e.split, &e.spec, &opts).unwrap();
    assert_eq!(rec.batches.len(), 40);
    let b = cached_train(dir.path(), &id, &mut rec, &init, &e.split, &e.spec, &opts).unwrap();
    assert_eq!(rec.batches.len(), 40, "the second call trained again");
    assert_eq!(a.params, b.params);
    assert_eq!(a.history, b.history);
    assert_eq!(a.checkpoints, b.checkpoints);
    assert_eq!(a.optimizer_checkpoints, b.optimizer_checkpoints);
    assert_eq!((a.start_step, a.steps_done), (b.start_step, b.steps_done));
    // a mask changes the key
    let layers = e.net.prunable();
    let mut mask = Mask::ones(&init, &layers).unwrap();
    mask.0.get_mut(&layers[0]).unwrap().data[0] = 0.0;
    let masked = TrainOptions {
        mask: Some(&mask),
        ..Default::default()
    };
    cached_train(dir.path(), &id, &mut rec, &init, &e.split, &e.spec, &masked).unwrap();
    assert_eq!(rec.batches.len(), 80);
    // calls that save resumable state are not cached
    let rd = RunDir::create(dir.path().join("r")).unwrap();
    let with_dir = TrainOptions {
        run_dir: Some(&rd),
        ..Default::default()
    };
    assert!(cached_train(dir.path(), &id, &mut rec, &init, &e.split, &e.spec, &with_dir).is_err());
}
