//! Training throughput (samples/s) of LeNet-300-100 (784-300-100-10) with SGD +
//! momentum, cross-entropy, on random 784-dimensional inputs (throughput does
//! not depend on the values), at batch 60 and 128. One iteration = one
//! optimizer step (forward, backward, update). Also measures the candle
//! autodiff path on the same network as an in-run peer.
//!
//! Reference measured on this machine: PyTorch CPU, 2 threads, same
//! network: about 80k samples/s at batch 60, 122k at batch 128.

use candle_core::Device;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lottery_tangent::models::{Mlp, Network};
use lottery_tangent::train::optim::SgdConfig;
use lottery_tangent::train::{Batch, Loss, Optimizer, OptimizerConfig, Supervised, Trainable};
use rand::{Rng, SeedableRng};

#[global_allocator]
static ALLOCATOR: lottery_tangent::Allocator = lottery_tangent::Allocator;

/// A random batch of `bs` 28x28 (784-feature) inputs with 10 classes
/// (throughput does not depend on the values).
fn random_batch(bs: usize) -> Batch {
    random_batch_of(bs, 784)
}

/// A random batch of `bs` inputs of `d` features with 10 classes.
fn random_batch_of(bs: usize, d: usize) -> Batch {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut batch = Batch::default();
    batch.x = (0..bs * d).map(|_| rng.gen::<f32>()).collect();
    batch.y = (0..bs).map(|i| (i % 10) as u32).collect();
    batch.t = vec![0.0; bs * 10];
    batch
}

/// Benchmarks one training step (forward, backward, SGD-momentum update) of
/// `net` on `batch`, through the fast path or candle's autodiff.
fn bench_step(
    group: &mut criterion::BenchmarkGroup<criterion::measurement::WallTime>,
    id: BenchmarkId,
    net: &Network,
    batch: &Batch,
    autodiff: bool,
) {
    let mut params = net.init(0);
    let mut grads = params.zeros_like();
    let mut model = if autodiff {
        Supervised::with_autodiff(net.clone(), Loss::CrossEntropy, &Device::Cpu)
    } else {
        Supervised::new(net.clone(), Loss::CrossEntropy, &Device::Cpu)
    };
    let mut opt = Optimizer::new(&OptimizerConfig::Sgd(SgdConfig {
        lr: 0.01,
        momentum: 0.9,
        weight_decay: 0.0,
        nesterov: false,
    }));
    group.bench_function(id, |b| {
        // The steps run on one of rayon's threads, as `train` runs them.
        b.iter_custom(|iters| {
            rayon::scope(|_| {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    model.loss_and_grad(&params, batch, &mut grads).expect("step");
                    opt.step(&mut params, &mut grads, 0.01, None).expect("update");
                }
                start.elapsed()
            })
        })
    });
}

fn bench(c: &mut Criterion) {
    let _awake = lottery_tangent::awake::KeepAwake::start();
    // The instruction sets in use (benches/peers/cpu_ratios.sh logs this line).
    println!("ltk kernels: {}", lottery_tangent::simd::describe());
    let net = Network::Mlp(Mlp::lenet_300_100(784, 10).expect("network"));
    let mut group = c.benchmark_group("train_step_lenet300_100");
    group.sample_size(30);
    for &bs in &[60usize, 128] {
        let batch = random_batch(bs);
        group.throughput(Throughput::Elements(bs as u64));
        for (label, autodiff) in [("fast", false), ("candle_autodiff", true)] {
            bench_step(&mut group, BenchmarkId::new(label, bs), &net, &batch, autodiff);
        }
    }
    group.finish();
}

/// Conv nets on 28x28x1 inputs at batch 128, SGD + momentum:
/// LeNet-5 (5x5 valid convolutions 6/16, FC 120-84), Conv-4 (3x3 same
/// convolutions 64, 64, pool, 128, 128, pool, FC 256-256) and ResNet-20, the
/// slice path (direct 3x3 convolutions, im2col + GEMM for the others)
/// against candle's autodiff. The PyTorch peer is
/// `benches/peers/pytorch_conv.py` (same networks, batch and optimizer).
/// Measured in one command on one 2-core machine (2026-11-26, PyTorch run
/// before, between and after): this path LeNet-5 11.1-11.4k samples/s,
/// Conv-4 203-215/s, ResNet-20 331-342/s; PyTorch 2.15 CPU 6.4-6.5k,
/// 155-179/s and 277-315/s (reports/reference/conv_throughput_cpu.md).
/// (../shared/NOTES.md's PyTorch figures, 18.0k and 355/s, came from a
/// machine where candle's 1024³ matmul ran at 210 GFLOP/s; PyTorch's ran at
/// 119-143 in this command.)
fn bench_conv(c: &mut Criterion) {
    let _awake = lottery_tangent::awake::KeepAwake::start();
    use lottery_tangent::models::ModelConfig;
    let mut group = c.benchmark_group("train_step_conv_b128");
    group.sample_size(10);
    let bs = 128usize;
    for (name, cfg) in [
        ("lenet5", ModelConfig::Lenet5),
        ("conv4", ModelConfig::Conv4),
        ("resnet20", ModelConfig::Resnet { depth: 20, width: 16 }),
    ] {
        let net = cfg.build([1, 28, 28], 10).expect("network");
        let batch = random_batch(bs);
        group.throughput(Throughput::Elements(bs as u64));
        for (label, autodiff) in [("fast", false), ("candle_autodiff", true)] {
            if autodiff && name != "lenet5" && std::env::var("LTK_BENCH_SLOW").is_err() {
                continue; // seconds per step: set LTK_BENCH_SLOW=1 to include them
            }
            bench_step(
                &mut group,
                BenchmarkId::new(format!("{name}_{label}"), bs),
                &net,
                &batch,
                autodiff,
            );
        }
    }
    group.finish();
}

/// CIFAR-size networks on 32x32x3 inputs at batch 128, SGD + momentum:
/// ResNet-20 and VGG-16 (open_lth's, with BatchNorm), the CPU slice path.
/// The PyTorch peer is `benches/peers/pytorch_cifar.py` (same networks,
/// batch and optimizer); `benches/peers/cifar_throughput.sh` runs both
/// interleaved and prints the ratios.
fn bench_cifar(c: &mut Criterion) {
    let _awake = lottery_tangent::awake::KeepAwake::start();
    use lottery_tangent::models::ModelConfig;
    let mut group = c.benchmark_group("train_step_cifar_b128");
    group.sample_size(10);
    let bs = 128usize;
    for (name, cfg) in [
        ("resnet20", ModelConfig::Resnet { depth: 20, width: 16 }),
        (
            "vgg16",
            ModelConfig::Vgg {
                depth: 16,
                width_multiplier: 1,
            },
        ),
    ] {
        let net = cfg.build([3, 32, 32], 10).expect("network");
        let batch = random_batch_of(bs, 3 * 32 * 32);
        group.throughput(Throughput::Elements(bs as u64));
        bench_step(&mut group, BenchmarkId::new(name, bs), &net, &batch, false);
    }
    group.finish();
}

criterion_group!(benches, bench, bench_conv, bench_cifar);
criterion_main!(benches);
