//! Empirical NTK of a 784-512-512-10 ReLU MLP (NTK parameterization) at
//! N = 128 and 512, traced (N x N, mean over outputs) and full (NC x NC),
//! with the structured per-layer implementation.
//!
//! Peer figures measured on this machine with neural-tangents 0.6.5 (JAX
//! 0.4.25, CPU, its structured implementation), measured on the same machine: traced 0.017 s
//! (N=128), 0.115 s (N=512); full 0.054 s (N=128), 1.35 s (N=512).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use lottery_tangent::models::{Activation, Mlp, Network, Parameterization};
use lottery_tangent::ntk::{mlp_ntk, KernelKind};
use rand::{Rng, SeedableRng};

#[global_allocator]
static ALLOCATOR: lottery_tangent::Allocator = lottery_tangent::Allocator;

fn bench(c: &mut Criterion) {
    let _awake = lottery_tangent::awake::KeepAwake::start();
    // The instruction sets in use (benches/peers/cpu_ratios.sh logs this line).
    println!("ltk kernels: {}", lottery_tangent::simd::describe());
    let mlp = Mlp::new(
        784,
        vec![512, 512],
        10,
        Activation::Relu,
        Parameterization::Ntk,
        1.4,
        0.1,
    )
    .expect("mlp");
    let params = Network::Mlp(mlp.clone()).init(0);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let x: Vec<f32> = (0..512 * 784).map(|_| rng.gen::<f32>()).collect();
    let mut group = c.benchmark_group("ntk_784_512_512_10");
    group.sample_size(10);
    for kind in [KernelKind::Traced, KernelKind::Full] {
        for n in [128usize, 512] {
            let xs = &x[..n * 784];
            let label = format!("{kind:?}").to_lowercase();
            group.bench_with_input(BenchmarkId::new(label, n), &n, |b, &n| {
                b.iter(|| mlp_ntk(&mlp, &params, xs, n, xs, n, kind, None, 256).expect("ntk"))
            });
        }
    }
    group.finish();
    // N = 1000, traced: the Rust side of the Python binding's overhead
    // (benches/peers/python_binding.py times `lottery_tangent.ntk.empirical`
    // on the same shapes).
    let x1000: Vec<f32> = (0..1000 * 784).map(|_| rng.gen::<f32>()).collect();
    let mut py = c.benchmark_group("ntk_784_512_512_10_python_peer");
    py.sample_size(10);
    py.bench_function("traced_1000", |b| {
        b.iter(|| mlp_ntk(&mlp, &params, &x1000, 1000, &x1000, 1000, KernelKind::Traced, None, 256).expect("ntk"))
    });
    py.finish();
    // N = 2048, full kernel (a 20480 x 20480 f32 output, 1.7 GB): only with
    // NTK_BENCH_LARGE=1 (about 10 runs of several seconds each). Peer: 27 s and
    // 13.9 GB peak with neural-tangents.
    if std::env::var("NTK_BENCH_LARGE").is_ok_and(|v| v == "1") {
        let n = 2048;
        let x: Vec<f32> = (0..n * 784).map(|_| rng.gen::<f32>()).collect();
        let mut large = c.benchmark_group("ntk_784_512_512_10_large");
        large.sample_size(10);
        large.bench_with_input(BenchmarkId::new("full", n), &n, |b, &n| {
            b.iter(|| mlp_ntk(&mlp, &params, &x, n, &x, n, KernelKind::Full, None, 256).expect("ntk"))
        });
        large.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
