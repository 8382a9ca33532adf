//! f32 GEMM throughput (GFLOP/s) of this crate's `dense::matmul_nt`
//! (the `gemm` crate's kernels, blocked over rayon's threads) at the shapes
//! the hot paths run: 1024³, the full NTK's output-block Gram (N·C = 1280
//! rows of a 512-wide layer, N = 128), LeNet-300-100's first layer at batch
//! 128, and ResNet-20's and VGG-16's im2col GEMMs at batch 128. The peers,
//! on the same shapes: `benches/peers/gemm_peers.py` (NumPy's OpenBLAS and
//! PyTorch's). `c[m,n] = a[m,k] · b[n,k]ᵀ`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lottery_tangent::models::dense::matmul_nt;
use rand::{Rng, SeedableRng};

#[global_allocator]
static ALLOCATOR: lottery_tangent::Allocator = lottery_tangent::Allocator;

/// (label, m, n, k).
pub const SHAPES: [(&str, usize, usize, usize); 6] = [
    ("square_1024", 1024, 1024, 1024),
    ("ntk_full_gram_n128", 1280, 1280, 512),
    ("lenet300_fc1_b128", 128, 300, 784),
    ("resnet20_conv_16x16_b128", 32, 128 * 256, 288),
    ("vgg16_conv_4x4_b128", 512, 128 * 16, 4608),
    ("vgg16_conv_32x32_b128", 64, 128 * 1024, 576),
];

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm_f32");
    g.sample_size(10);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    for (label, m, n, k) in SHAPES {
        let a: Vec<f32> = (0..m * k).map(|_| rng.gen::<f32>()).collect();
        let b: Vec<f32> = (0..n * k).map(|_| rng.gen::<f32>()).collect();
        let mut out = vec![0.0f32; m * n];
        // Throughput in FLOPs: criterion's "elem/s" reads as FLOP/s.
        g.throughput(Throughput::Elements((2 * m * n * k) as u64));
        g.bench_function(BenchmarkId::new(label, format!("{m}x{n}x{k}")), |bch| {
            bch.iter(|| matmul_nt(&a, &b, &mut out, m, n, k, 1.0, false))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
