//! SubsetSum throughput (targets solved per second) at n = 16, 20, 24: the
//! batched candle solver on the CPU against the exact f64 meet-in-the-middle
//! solver run in a single-threaded loop over the same problems (the in-run peer).

use std::time::Duration;

use candle_core::Device;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lottery_tangent::strong::subset_sum::{batched, exact};
use rand::Rng;

#[global_allocator]
static ALLOCATOR: lottery_tangent::Allocator = lottery_tangent::Allocator;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("subset_sum");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for (n, t) in [(16usize, 4096usize), (20, 4096), (24, 512)] {
        let mut rng = lottery_tangent::rng::stream(n as u64, "subset-sum-bench");
        let cands: Vec<f32> = (0..t * n).map(|_| rng.gen_range(-1.0f32..=1.0)).collect();
        let targets: Vec<f32> = (0..t).map(|_| rng.gen_range(-1.0f32..=1.0)).collect();
        let rows: Vec<Vec<f64>> = cands.chunks(n).map(|r| r.iter().map(|&x| x as f64).collect()).collect();
        group.throughput(Throughput::Elements(t as u64));
        group.bench_with_input(BenchmarkId::new("batched_cpu", n), &n, |b, &n| {
            b.iter(|| batched(&cands, &targets, n, &Device::Cpu).expect("batched"))
        });
        group.bench_with_input(BenchmarkId::new("exact_loop", n), &n, |b, _| {
            b.iter(|| {
                rows.iter()
                    .zip(&targets)
                    .map(|(row, &z)| exact(row, z as f64).expect("exact").error)
                    .sum::<f64>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
