//! The device-resident training path (parameters, optimizer state, masks and
//! data on the device; batches gathered there) against the host loop with
//! the same candle autodiff, on candle's CPU device (the tensor code a GPU
//! runs): same parameters, history, checkpoints and optimizer state within
//! float tolerance, for SGD (momentum, Nesterov, weight decay), Adam and
//! AdamW, masks with zero and frozen fill, conv nets, augmentation and a
//! BatchNorm ResNet; a state saved on one path resumes on the other;
//! divergence is reported at the same step.
//!
//! `LTK_TEST_DEVICE=cuda` (a `cuda` build, as `benches/gpu/run.sh` runs it)
//! puts the resident side on the GPU, against the host loop on the CPU,
//! with tolerances for another device's float reductions.

mod device_common;

use candle_core::Device;
use device_common::{close, device, rel, tol};
use lottery_tangent::config::ExperimentConfig;
use lottery_tangent::models::{Activation, ModelConfig, Parameterization};
use lottery_tangent::params::Mask;
use lottery_tangent::paths::RunDir;
use lottery_tangent::train::optim::{AdamConfig, SgdConfig};
use lottery_tangent::train::{self, OptimizerConfig, Supervised, TrainOptions, TrainOutcome};

fn config(steps: usize) -> ExperimentConfig {
    let mut c = ExperimentConfig::default();
    c.name = "t".into();
    c.seed = 3;
    c.model = ModelConfig::Mlp {
        hidden: vec![32, 16],
        activation: Activation::Relu,
        parameterization: Parameterization::Standard,
        w_std: None,
        b_std: None,
    };
    c.train.epochs = None;
    c.train.iterations = Some(steps);
    c.train.batch_size = 32;
    c.train.eval_every = Some(20);
    c.train.checkpoint_at = vec![0, 10, 45];
    c.train.optimizer = OptimizerConfig::Sgd(SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 1e-3,
        nesterov: true,
    });
    c
}

/// Trains `c` on the host loop (`resident = false`) or the resident one.
fn run(c: &ExperimentConfig, resident: bool, opts: &TrainOptions) -> TrainOutcome {
    let e = c.resolve().unwrap();
    let loss = c.train.loss;
    let mut model = if resident {
        Supervised::on_device(e.net.clone(), loss, &device())
    } else {
        Supervised::with_autodiff(e.net.clone(), loss, &Device::Cpu)
    };
    let init = e.net.init(c.seed);
    train::train(&mut model, &init, &e.split, &e.spec, opts).unwrap()
}

#[test]
fn sgd_nesterov_with_weight_decay_matches_the_host_loop() {
    let c = config(60);
    let opts = TrainOptions {
        keep_optimizer_checkpoints: true,
        ..Default::default()
    };
    let host = run(&c, false, &opts);
    let dev = run(&c, true, &opts);
    close(&host, &dev, 1e-5);
    let (a, b) = (&host.optimizer_checkpoints[&45], &dev.optimizer_checkpoints[&45]);
    assert!(rel(a, b) < tol(1e-5), "momentum differs by {}", rel(a, b));
    assert!(host.last().unwrap().test_accuracy > 0.6);
}

#[test]
fn adam_and_adamw_match_the_host_loop() {
    for decoupled in [false, true] {
        let mut c = config(50);
        let a = AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        };
        c.train.optimizer = if decoupled {
            OptimizerConfig::Adamw(a)
        } else {
            OptimizerConfig::Adam(a)
        };
        let opts = TrainOptions {
            keep_optimizer_checkpoints: true,
            ..Default::default()
        };
        let host = run(&c, false, &opts);
        let dev = run(&c, true, &opts);
        close(&host, &dev, 1e-5);
        assert!(rel(&host.optimizer_checkpoints[&45], &dev.optimizer_checkpoints[&45]) < tol(1e-4));
    }
}

/// Pruned weights stay exactly at zero, or at their frozen values (Zhou et al. 2019).
#[test]
fn masks_keep_pruned_weights_at_zero_or_frozen_on_the_device() {
    let c = config(50);
    let e = c.resolve().unwrap();
    let init = e.net.init(c.seed);
    let mut mask = Mask::ones(&init, &e.net.prunable()).unwrap();
    for (i, v) in mask.0.get_mut("fc1.weight").unwrap().data.iter_mut().enumerate() {
        if i % 3 != 0 {
            *v = 0.0;
        }
    }
    for frozen in [None, Some(&init)] {
        let opts = TrainOptions {
            mask: Some(&mask),
            frozen,
            ..Default::default()
        };
        let host = run(&c, false, &opts);
        let dev = run(&c, true, &opts);
        close(&host, &dev, 1e-5);
        let w = &dev.params.get("fc1.weight").unwrap().data;
        let w0 = &init.get("fc1.weight").unwrap().data;
        let m = &mask.0.get("fc1.weight").unwrap().data;
        for ((x, x0), k) in w.iter().zip(w0).zip(m) {
            if *k == 0.0 {
                assert_eq!(*x, if frozen.is_some() { *x0 } else { 0.0 });
            }
        }
    }
}

#[test]
fn conv_net_with_augmentation_matches_the_host_loop() {
    let mut c = config(25);
    c.model = ModelConfig::Conv {
        channels: vec![4, 8],
        hidden: vec![16],
        kernel: 3,
        padding: lottery_tangent::models::Padding::Same,
        convs_per_block: 1,
    };
    c.train.checkpoint_at = vec![10];
    c.train.augment = lottery_tangent::data::augment::Augment {
        crop_padding: 1,
        horizontal_flip: false,
    };
    let host = run(&c, false, &TrainOptions::default());
    let dev = run(&c, true, &TrainOptions::default());
    close(&host, &dev, 1e-4);
}

/// A BatchNorm ResNet: training-mode statistics on the device, evaluation
/// with calibration statistics through the host model.
#[test]
fn resnet_matches_the_host_loop() {
    let mut c = config(12);
    c.model = ModelConfig::Resnet { depth: 8, width: 4 };
    c.train.checkpoint_at = vec![6];
    c.train.eval_every = Some(6);
    let host = run(&c, false, &TrainOptions::default());
    let dev = run(&c, true, &TrainOptions::default());
    close(&host, &dev, 1e-4);
}

/// A run stopped on the device and resumed on the host (and the other way)
/// ends where an uninterrupted run does: the saved state has one layout.
#[test]
fn a_state_saved_on_one_path_resumes_on_the_other() {
    let mut c = config(70);
    c.train.save_every = Some(10);
    let full = run(&c, false, &TrainOptions::default());
    for first_resident in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let rd = RunDir::create(dir.path().join("r")).unwrap();
        let part = run(
            &c,
            first_resident,
            &TrainOptions {
                run_dir: Some(&rd),
                stop_after: Some(33),
                ..Default::default()
            },
        );
        assert!(!part.completed);
        let resumed = run(
            &c,
            !first_resident,
            &TrainOptions {
                run_dir: Some(&rd),
                resume: true,
                ..Default::default()
            },
        );
        assert!(resumed.completed);
        assert_eq!(resumed.start_step, 30);
        close(&full, &resumed, 1e-5);
    }
}

/// A branch started at step k with an inherited optimizer state (LMC's
/// children) continues the same data order on both paths.
#[test]
fn a_branch_from_step_k_with_inherited_momentum_matches() {
    let c = config(60);
    let parent = run(
        &c,
        false,
        &TrainOptions {
            keep_optimizer_checkpoints: true,
            ..Default::default()
        },
    );
    let opts = TrainOptions {
        start_step: 10,
        optimizer_state: Some(&parent.optimizer_checkpoints[&10]),
        ..Default::default()
    };
    let e = c.resolve().unwrap();
    let start = &parent.checkpoints[&10];
    let mut host = Supervised::with_autodiff(e.net.clone(), c.train.loss, &Device::Cpu);
    let mut dev = Supervised::on_device(e.net.clone(), c.train.loss, &device());
    let a = train::train(&mut host, start, &e.split, &e.spec, &opts).unwrap();
    let b = train::train(&mut dev, start, &e.split, &e.spec, &opts).unwrap();
    close(&a, &b, 1e-5);
    assert!(rel(&a.params, &parent.params) < 1e-5);
    assert!(rel(&b.params, &parent.params) < tol(1e-5));
}

#[test]
fn divergence_is_reported_at_the_same_step() {
    let mut c = config(200);
    c.train.optimizer = OptimizerConfig::Sgd(SgdConfig {
        lr: 1e12,
        momentum: 0.9,
        weight_decay: 0.0,
        nesterov: false,
    });
    let e = c.resolve().unwrap();
    let init = e.net.init(0);
    let mut host = Supervised::with_autodiff(e.net.clone(), c.train.loss, &Device::Cpu);
    let mut dev = Supervised::on_device(e.net.clone(), c.train.loss, &device());
    let a = train::train(&mut host, &init, &e.split, &e.spec, &TrainOptions::default()).unwrap_err();
    let b = train::train(&mut dev, &init, &e.split, &e.spec, &TrainOptions::default()).unwrap_err();
    assert!(a.to_string().contains("diverged at step"), "{a}");
    if device().is_cpu() {
        assert_eq!(a.to_string(), b.to_string());
    } else {
        assert!(b.to_string().contains("diverged at step"), "{b}");
    }
}
