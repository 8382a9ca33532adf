//! The ResNet's CPU path (im2col + GEMM, hand-written BatchNorm) equals
//! candle's autodiff in training mode (outputs' loss and every gradient,
//! projection and identity shortcuts, stride 2 on odd sizes), and in
//! evaluation with recomputed BatchNorm statistics; BatchNorm parameters are
//! not prunable and a mask on them is refused.

mod common;

use candle_core::Device;
use common::{batch, fast_matches_autodiff, same_predictions};
use lottery_tangent::data::Dataset;
use lottery_tangent::models::{ModelConfig, Network, ResNet};
use lottery_tangent::params::Mask;
use lottery_tangent::train::{Loss, Supervised, Trainable};

fn check(net: Network, n: usize, seed: u64) {
    let (fast, reference, p, b) = fast_matches_autodiff(&net, n, seed, 5e-4);
    let c = net.output_dim();
    // Evaluation: statistics recomputed from calibration inputs on both paths.
    let cal = Dataset {
        name: "calibration".into(),
        x: batch(2 * n, net.input_dim(), c, seed + 2).x,
        labels: vec![0; 2 * n],
        targets: None,
        target_dim: c,
        shape: match &net {
            Network::ResNet(r) => r.input_shape,
            _ => unreachable!(),
        },
        num_classes: c,
    };
    let mut fast = fast.calibrated(&cal);
    let mut reference = reference.calibrated(&cal);
    same_predictions(&mut fast, &mut reference, &p, &b);
}

#[test]
fn resnet8_on_odd_images_matches_autodiff() {
    // 9x9: the stride-2 stages give 5x5 and 3x3; width 4, two input channels.
    let net = Network::ResNet(ResNet::new([2, 9, 9], 8, 4, 5).unwrap());
    check(net, 6, 0);
}

#[test]
fn resnet20_on_digits_sized_inputs_matches_autodiff() {
    check(
        ModelConfig::Resnet { depth: 20, width: 16 }
            .build([1, 8, 8], 10)
            .unwrap(),
        5,
        1,
    );
}

#[test]
fn resnet_gradients_match_finite_differences() {
    let net = Network::ResNet(ResNet::new([1, 6, 6], 8, 3, 4).unwrap());
    let p = net.init(3);
    let b = batch(4, net.input_dim(), 4, 4);
    let mut fast = Supervised::new(net.clone(), Loss::CrossEntropy, &Device::Cpu);
    let mut g = p.zeros_like();
    fast.loss_and_grad(&p, &b, &mut g).unwrap();
    let mut scratch = p.zeros_like();
    for name in [
        "bn.weight",
        "blocks.1.bn1.bias",
        "blocks.1.shortcut.conv.weight",
        "conv.weight",
    ] {
        for i in 0..2 {
            let h = 3e-3f32;
            let mut q = p.clone();
            q.get_mut(name).unwrap().data[i] += h;
            let lp = fast.loss_and_grad(&q, &b, &mut scratch).unwrap() as f64;
            q.get_mut(name).unwrap().data[i] -= 2.0 * h;
            let lm = fast.loss_and_grad(&q, &b, &mut scratch).unwrap() as f64;
            let l0 = fast.loss_and_grad(&p, &b, &mut scratch).unwrap() as f64;
            // A ReLU kink next to the point (few values per channel here)
            // makes one side's difference wrong: accept the side without one.
            let (fwd, bwd) = ((lp - l0) / h as f64, (l0 - lm) / h as f64);
            let an = g.get(name).unwrap().data[i] as f64;
            let err = (fwd - an).abs().min((bwd - an).abs());
            assert!(
                err <= 0.05 * an.abs().max(0.02),
                "{name}[{i}]: forward {fwd}, backward {bwd}, analytic {an}"
            );
        }
    }
}

#[test]
fn batch_norm_parameters_are_not_prunable_and_masks_on_them_are_refused() {
    let net = ModelConfig::Resnet { depth: 20, width: 16 }
        .build([1, 28, 28], 10)
        .unwrap();
    let prunable = net.prunable();
    assert_eq!(prunable.len(), 1 + 18 + 2 + 1, "{prunable:?}");
    assert_eq!(prunable.last().map(String::as_str), Some("fc.weight"));
    assert!(prunable.iter().all(|n| !n.contains("bn") && n.ends_with(".weight")));
    let p = net.init(0);
    let names: Vec<String> = vec!["blocks.0.bn1.weight".into()];
    let m = Mask::ones(&p, &names).unwrap();
    let e = net.check_prunable(m.0 .0.keys(), "mask").unwrap_err().to_string();
    assert!(e.contains("BatchNorm") && e.contains("blocks.0.bn1.weight"), "{e}");
    // Evaluating a BatchNorm network needs calibration inputs: an error, not a number.
    let mut s = Supervised::new(net.clone(), Loss::CrossEntropy, &Device::Cpu);
    let mut out = Vec::new();
    let e = s.predict(&p, &vec![0.0; 784], 1, &mut out).unwrap_err().to_string();
    assert!(e.contains("calibration"), "{e}");
    let e = ResNet::new([1, 28, 28], 21, 16, 10).unwrap_err().to_string();
    assert!(e.contains("model.depth"), "{e}");
}

#[test]
fn resnet56_twice_as_wide_on_colour_images_matches_autodiff() {
    // ResNet-56 x2 (width 32) on 3-channel 8x8 images.
    check(
        ModelConfig::Resnet { depth: 56, width: 32 }
            .build([3, 8, 8], 10)
            .unwrap(),
        3,
        4,
    );
}
