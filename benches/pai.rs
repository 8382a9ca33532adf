//! Cost of pruning at initialization against training: each
//! method's mask for LeNet-300-100 (784-300-100-10) at 10% and 1.4% kept,
//! next to one training step (batch 60, SGD momentum) of the same network.
//! The target is a cost of a few training steps; SynFlow's 100 rounds are
//! the exception by design. SNIP and GraSP score 100 random inputs (10 per
//! class), as in Synaptic-Flow.

use candle_core::Device;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use lottery_tangent::data::Dataset;
use lottery_tangent::models::ModelConfig;
use lottery_tangent::pai::{self, PaiMethod, PaiSpec};
use lottery_tangent::train::optim::SgdConfig;
use lottery_tangent::train::{Batch, Loss, Optimizer, OptimizerConfig, Supervised, Trainable};
use rand::{Rng, SeedableRng};

#[global_allocator]
static ALLOCATOR: lottery_tangent::Allocator = lottery_tangent::Allocator;

fn data(n: usize) -> Dataset {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    Dataset {
        name: "random".into(),
        x: (0..n * 784).map(|_| rng.gen::<f32>()).collect(),
        labels: (0..n).map(|i| (i % 10) as u32).collect(),
        targets: None,
        target_dim: 10,
        shape: [1, 28, 28],
        num_classes: 10,
    }
}

fn bench(c: &mut Criterion) {
    let net = ModelConfig::Lenet300_100.build([1, 28, 28], 10).expect("network");
    let theta0 = net.init(0);
    let train = data(1000);
    let mut group = c.benchmark_group("pai_lenet300_100");
    group.sample_size(10);
    for m in PaiMethod::ALL {
        for d in [0.1, 0.014] {
            group.bench_function(BenchmarkId::new(m.name(), d), |b| {
                b.iter(|| {
                    pai::prune_at_init(&net, &theta0, &train, Loss::CrossEntropy, &PaiSpec::new(m, d, 0)).expect("mask")
                })
            });
        }
    }
    let mut params = theta0.clone();
    let mut grads = params.zeros_like();
    let mut model = Supervised::new(net.clone(), Loss::CrossEntropy, &Device::Cpu);
    let mut opt = Optimizer::new(&OptimizerConfig::Sgd(SgdConfig {
        lr: 0.01,
        momentum: 0.9,
        weight_decay: 0.0,
        nesterov: false,
    }));
    let mut batch = Batch::default();
    let idx: Vec<usize> = (0..60).collect();
    train.gather(&idx, &mut batch.x, &mut batch.t, &mut batch.y);
    group.bench_function("train_step_b60", |b| {
        b.iter(|| {
            model.loss_and_grad(&params, &batch, &mut grads).expect("step");
            opt.step(&mut params, &mut grads, 0.01, None).expect("update");
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
