//! The memory allocator the binaries, benches and the Python module install:
//! `#[global_allocator] static A: lottery_tangent::Allocator = lottery_tangent::Allocator;`.
//!
//! The kernels and training steps free and re-allocate multi-megabyte
//! buffers on every call (the `gemm` crate's packing buffers among them).
//! With glibc's malloc, once its adaptive mmap threshold has settled below
//! their size, every call maps fresh pages and faults them in: the full
//! empirical NTK of 784-512-512-10 at N = 128 took 2.3x longer after an
//! N = 512 kernel in the same process (1.2 M page faults against 18 k), and
//! the conv nets' training steps ran 9-19% slower than with mimalloc, which
//! keeps freed memory for reuse. Measured on a 2-core AMD EPYC (AVX-512):
//! reports/reference/cpu_ratios_amd_avx512.md.

/// mimalloc (see the module docs).
pub use mimalloc::MiMalloc as Allocator;
