//! Many networks as one computation: K MLPs trained together (stacked
//! parameters, batched GEMMs, their own masks, optimizer states and data
//! orders) end as each trained alone on the device-resident path, within
//! float tolerance, on candle's CPU device; one network's divergence leaves
//! the others alone; `train_many` on the CPU is sequential training exactly.
//! `LTK_TEST_DEVICE=cuda` (a `cuda` build) runs both sides on the GPU.

mod device_common;

use candle_core::Device;
use device_common::{close, device, rel, tol};
use lottery_tangent::config::{Experiment, ExperimentConfig};
use lottery_tangent::models::{Activation, ModelConfig, Parameterization};
use lottery_tangent::params::{Mask, ParamSet};
use lottery_tangent::train::ensemble::{train_many, train_together, Member, Shared};
use lottery_tangent::train::optim::{AdamConfig, SgdConfig};
use lottery_tangent::train::{self, OptimizerConfig, Supervised, TrainOptions, TrainOutcome, TrainSpec};

fn experiment(steps: usize, optimizer: OptimizerConfig) -> Experiment {
    let mut c = ExperimentConfig::default();
    c.name = "t".into();
    c.seed = 5;
    c.model = ModelConfig::Mlp {
        hidden: vec![24, 12],
        activation: Activation::Relu,
        parameterization: Parameterization::Standard,
        w_std: None,
        b_std: None,
    };
    c.train.epochs = None;
    c.train.iterations = Some(steps);
    c.train.batch_size = 16;
    c.train.eval_every = Some(15);
    c.train.checkpoint_at = vec![10];
    c.train.optimizer = optimizer;
    c.resolve().unwrap()
}

fn sgd() -> OptimizerConfig {
    OptimizerConfig::Sgd(SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 5e-4,
        nesterov: false,
    })
}

/// What the networks of `e` share, on `dev`, from `start_step`.
fn shared<'a>(dev: &'a Device, e: &'a Experiment, start_step: usize, keep_optimizer_checkpoints: bool) -> Shared<'a> {
    Shared {
        net: &e.net,
        loss: e.config.train.loss,
        device: dev,
        split: &e.split,
        spec: &e.spec,
        start_step,
        keep_optimizer_checkpoints,
        progress: false,
    }
}

/// Trains member `m` alone on the device-resident path.
fn alone(e: &Experiment, start_step: usize, keep_opt: bool, m: &Member) -> TrainOutcome {
    let mut model = Supervised::on_device(e.net.clone(), e.config.train.loss, &device());
    let spec = TrainSpec {
        data_seed: m.data_seed,
        ..e.spec.clone()
    };
    let opts = TrainOptions {
        mask: m.mask,
        frozen: m.frozen,
        start_step,
        optimizer_state: m.optimizer_state,
        keep_optimizer_checkpoints: keep_opt,
        ..Default::default()
    };
    train::train(&mut model, m.init, &e.split, &spec, &opts).unwrap()
}

#[test]
fn four_networks_together_end_as_each_alone() {
    let e = experiment(45, sgd());
    let inits: Vec<ParamSet> = (0..3).map(|s| e.net.init(100 + s)).collect();
    let mut mask = Mask::ones(&inits[1], &e.net.prunable()).unwrap();
    for (i, v) in mask.0.get_mut("fc1.weight").unwrap().data.iter_mut().enumerate() {
        if i % 4 != 1 {
            *v = 0.0;
        }
    }
    let members = vec![
        Member {
            init: &inits[0],
            mask: None,
            frozen: None,
            data_seed: 1,
            optimizer_state: None,
        },
        Member {
            init: &inits[1],
            mask: Some(&mask),
            frozen: None,
            data_seed: 2,
            optimizer_state: None,
        },
        Member {
            init: &inits[1],
            mask: Some(&mask),
            frozen: Some(&inits[2]),
            data_seed: 2,
            optimizer_state: None,
        },
        Member {
            init: &inits[2],
            mask: None,
            frozen: None,
            data_seed: 3,
            optimizer_state: None,
        },
    ];
    let dev = device();
    let shared = shared(&dev, &e, 0, true);
    let together = train_together(&shared, &members).unwrap();
    assert_eq!(together.len(), 4);
    for (m, t) in members.iter().zip(&together) {
        let a = alone(&e, 0, true, m);
        let t = t.as_ref().unwrap();
        close(&a, t, 1e-5);
        assert!(rel(&a.optimizer_checkpoints[&10], &t.optimizer_checkpoints[&10]) < tol(1e-5));
    }
    // The masked members differ only in what pruned weights hold.
    let (z, f) = (together[1].as_ref().unwrap(), together[2].as_ref().unwrap());
    let w = &z.params.get("fc1.weight").unwrap().data;
    assert!(w
        .iter()
        .zip(&mask.0.get("fc1.weight").unwrap().data)
        .all(|(x, k)| *k == 1.0 || *x == 0.0));
    assert_ne!(z.params, f.params);
    assert!(together[0].as_ref().unwrap().last().unwrap().test_accuracy > 0.5);
}

/// Branches from step k with inherited Adam states (LMC's children).
#[test]
fn branches_with_inherited_adam_state_match() {
    let e = experiment(
        40,
        OptimizerConfig::Adamw(AdamConfig {
            lr: 2e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        }),
    );
    let init = e.net.init(9);
    let parent = alone(
        &e,
        0,
        true,
        &Member {
            init: &init,
            mask: None,
            frozen: None,
            data_seed: 0,
            optimizer_state: None,
        },
    );
    let (theta, state) = (&parent.checkpoints[&10], &parent.optimizer_checkpoints[&10]);
    let members: Vec<Member> = (0..2)
        .map(|i| Member {
            init: theta,
            mask: None,
            frozen: None,
            data_seed: 50 + i,
            optimizer_state: Some(state),
        })
        .collect();
    let dev = device();
    let shared = shared(&dev, &e, 10, false);
    let together = train_together(&shared, &members).unwrap();
    for (m, t) in members.iter().zip(&together) {
        close(&alone(&e, 10, false, m), t.as_ref().unwrap(), 1e-5);
    }
    assert_ne!(
        together[0].as_ref().unwrap().params,
        together[1].as_ref().unwrap().params
    );
}

#[test]
fn one_network_diverging_leaves_the_others_alone() {
    let e = experiment(20, sgd());
    let good = e.net.init(1);
    let mut bad = good.clone();
    for a in bad.0.values_mut() {
        a.data.iter_mut().for_each(|v| *v *= 1e30);
    }
    let m = |init| Member {
        init,
        mask: None,
        frozen: None,
        data_seed: 4,
        optimizer_state: None,
    };
    let members = [m(&good), m(&bad)];
    let dev = device();
    let shared = shared(&dev, &e, 0, false);
    let out = train_together(&shared, &members).unwrap();
    assert!(out[1].as_ref().unwrap_err().to_string().contains("diverged"));
    close(&alone(&e, 0, false, &members[0]), out[0].as_ref().unwrap(), 1e-5);
}

/// On the CPU `train_many` trains one by one on the fast paths: exactly sequential training.
#[test]
fn train_many_on_the_cpu_is_sequential_training() {
    let e = experiment(30, sgd());
    let inits: Vec<ParamSet> = (0..2).map(|s| e.net.init(s)).collect();
    let members: Vec<Member> = inits
        .iter()
        .enumerate()
        .map(|(i, p)| Member {
            init: p,
            mask: None,
            frozen: None,
            data_seed: i as u64,
            optimizer_state: None,
        })
        .collect();
    let shared = shared(&Device::Cpu, &e, 0, false);
    let many = train_many(&shared, &members).unwrap();
    for (m, o) in members.iter().zip(many) {
        let mut model = Supervised::new(e.net.clone(), e.config.train.loss, &Device::Cpu);
        let spec = TrainSpec {
            data_seed: m.data_seed,
            ..e.spec.clone()
        };
        let one = train::train(&mut model, m.init, &e.split, &spec, &TrainOptions::default()).unwrap();
        let o = o.unwrap();
        assert_eq!(one.params, o.params);
        assert_eq!(one.history, o.history);
    }
}
