//! The im2col + GEMM conv path equals candle's autodiff: outputs and every
//! gradient, for LeNet-5, Conv-2-style pairs of convolutions, odd image sizes
//! (pooling drops the last row and column), several input channels, and
//! batches split into several im2col chunks.

mod common;

use candle_core::Device;
use common::{batch, fast_matches_autodiff, same_predictions};
use lottery_tangent::models::{ConvNet, ModelConfig, Padding};
use lottery_tangent::params::ParamSet;
use lottery_tangent::train::{Loss, Supervised, Trainable};

fn check(net: lottery_tangent::models::Network, n: usize, seed: u64) {
    let (mut fast, mut reference, p, b) = fast_matches_autodiff(&net, n, seed, 2e-4);
    same_predictions(&mut fast, &mut reference, &p, &b);
}

#[test]
fn lenet5_matches_autodiff() {
    check(ModelConfig::Lenet5.build([1, 28, 28], 10).unwrap(), 7, 0);
}

#[test]
fn pairs_of_same_convolutions_on_odd_images_match_autodiff() {
    let net = ConvNet::with_layout([3, 11, 9], vec![5, 7], vec![12], 4, 3, Padding::Same, 2).unwrap();
    check(lottery_tangent::models::Network::Conv(net), 5, 1);
}

#[test]
fn a_batch_split_into_im2col_chunks_matches_autodiff() {
    // 64 channels at 28x28: 576 x 784 floats per example, so several chunks per batch.
    let net = ConvNet::with_layout([1, 28, 28], vec![4, 64], vec![], 3, 3, Padding::Same, 1).unwrap();
    check(lottery_tangent::models::Network::Conv(net), 11, 2);
}

#[test]
fn conv6_on_cifar_sized_colour_images_matches_autodiff() {
    // Frankle & Carbin's Conv-6 at 32x32x3: 256-channel layers on 8x8 maps
    // take im2col, the others the direct kernels.
    check(ModelConfig::Conv6.build([3, 32, 32], 10).unwrap(), 2, 4);
}

#[test]
fn conv4_on_digits_sized_inputs_matches_autodiff() {
    check(ModelConfig::Conv4.build([1, 8, 8], 10).unwrap(), 6, 3);
}

#[test]
fn bad_layouts_are_refused_before_training() {
    let e = ConvNet::with_layout([1, 8, 8], vec![4, 4, 4, 4], vec![], 10, 3, Padding::Same, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.channels") && e.contains("nothing"), "{e}");
    let e = ModelConfig::Conv6.build([1, 4, 4], 10).unwrap_err().to_string();
    assert!(e.contains("model.channels"), "{e}");
    let e = ConvNet::with_layout([1, 8, 8], vec![4], vec![], 10, 4, Padding::Same, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.kernel"), "{e}");
    let e = ConvNet::with_layout([1, 4, 4], vec![4], vec![], 10, 5, Padding::Valid, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.channels"), "{e}");
    let _: ParamSet = ModelConfig::Lenet5.build([1, 28, 28], 10).unwrap().init(0);
}

/// The fast path agrees with central finite differences of its own loss
/// (this is how candle's max_pool2d backward was found to scale gradients by
/// 1/4; the reference path now pools with a reshape and max reductions).
#[test]
fn conv_gradients_match_finite_differences() {
    let net = ModelConfig::Lenet5.build([1, 28, 28], 10).unwrap();
    let p = net.init(0);
    let b = batch(3, net.input_dim(), 10, 1);
    let mut fast = Supervised::new(net.clone(), Loss::CrossEntropy, &Device::Cpu);
    let mut g = p.zeros_like();
    fast.loss_and_grad(&p, &b, &mut g).unwrap();
    let mut scratch = p.zeros_like();
    for name in ["conv1.bias", "conv2.bias"] {
        for i in 0..3 {
            let h = 1e-3f32;
            let mut q = p.clone();
            q.get_mut(name).unwrap().data[i] += h;
            let lp = fast.loss_and_grad(&q, &b, &mut scratch).unwrap() as f64;
            q.get_mut(name).unwrap().data[i] -= 2.0 * h;
            let lm = fast.loss_and_grad(&q, &b, &mut scratch).unwrap() as f64;
            let fd = (lp - lm) / (2.0 * h as f64);
            let an = g.get(name).unwrap().data[i] as f64;
            assert!(
                (fd - an).abs() <= 0.05 * an.abs().max(0.02),
                "{name}[{i}]: fd {fd}, analytic {an}"
            );
        }
    }
}
