//! Elementwise loops at the CPU's widest vector width.
//!
//! The crate builds for baseline x86-64, where the compiler vectorizes loops
//! with 128-bit SSE only. [`wide_fn!`] compiles a loop again for AVX-512F and
//! AVX2 and runs the copy the CPU has (checked at run time, once per call: a
//! cached atomic load), so that the loop is vectorized at that width. The
//! f32 operations stay the same and in the same order at every width (Rust
//! never contracts a multiply and an add into an FMA; `sqrt` and division
//! are correctly rounded in every ISA), so the results are bit-identical to
//! the portable loop's.
//!
//! Measured on a 2-core AVX-512 Xeon (Sapphire Rapids): the SGD momentum step
//! and ReLU's derivative mask, in SSE, were 16% and 4-5% of LeNet-300-100's
//! training step; in AVX-512 the step ran 1.4-1.7x faster
//! (`reports/reference/cpu_ratios_intel_spr_avx512.md`).
//!
//! The macro writes the dispatch: it defines a function whose body is
//! compiled three times (AVX-512F, AVX2, baseline) and picked at run time. A
//! body that calls other code must call `#[inline(always)]` functions, so
//! that they are compiled into each copy (a call out of it runs at the
//! baseline width again). A closure-taking helper does not do this reliably:
//! the compiler may leave the closure out of line, at the baseline width.

/// Defines `fn name(args) { body }` (unit return, arguments named by plain
/// identifiers) that runs `body` compiled for AVX-512F, else AVX2, else the
/// baseline, whichever the CPU has.
macro_rules! wide_fn {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn portable($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) {
                    portable($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) {
                    portable($($arg),*)
                }
                if $crate::simd::allowed(2) && std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                if $crate::simd::allowed(1) && std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            portable($($arg),*)
        }
    };
}
pub(crate) use wide_fn;

#[cfg(test)]
thread_local! {
    /// Tests only: the widest copy [`wide_fn!`] may pick on this thread
    /// (2: AVX-512F, 1: AVX2, 0: baseline), so that every copy the CPU can
    /// run is checked against the portable loop.
    pub(crate) static WIDTH_LIMIT: std::cell::Cell<u8> = const { std::cell::Cell::new(2) };
}

/// Whether [`wide_fn!`] may pick the copy of this width: up to
/// [`max_level`] (and, in tests, the thread's `WIDTH_LIMIT`).
#[cfg(test)]
pub(crate) fn allowed(level: u8) -> bool {
    WIDTH_LIMIT.with(|l| l.get() >= level) && max_level() >= level
}

#[cfg(not(test))]
#[inline(always)]
pub(crate) fn allowed(level: u8) -> bool {
    max_level() >= level
}

/// The widest vector width this crate's own kernels may use (2: AVX-512F,
/// 1: AVX2, 0: baseline), read once from `LTK_SIMD` (`avx512`, `avx2` or
/// `portable`; unset: no cap). Capping an AVX-512 CPU at AVX2 runs the AVX2
/// kernels there, to measure them where no AVX2 machine is at hand; the
/// `gemm` crate's products follow the build instead (its AVX-512 kernels
/// come with this crate's default feature `avx512-gemm`, see [`describe`]).
/// The elementwise loops give the same bits at every width; the direct
/// convolutions' AVX2 and AVX-512 tiles add in different orders, so a conv
/// net's weights differ in the last bits between the two, as between an
/// AVX2 and an AVX-512 machine (ResNet-20 trained for 4 steps: different
/// `final.safetensors`; LeNet-300-100, whose products stay in the gemm
/// crate's AVX-512 kernels under this cap alone: the same).
pub fn max_level() -> u8 {
    static LEVEL: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| crate::env::choice("LTK_SIMD", LEVELS, 2))
}

/// `LTK_SIMD`'s values and the levels they name.
const LEVELS: &[(&str, u8)] = &[("avx512", 2), ("avx2", 1), ("portable", 0)];

/// The instruction sets the kernels run with on this CPU, in words: this
/// crate's own loops and convolutions (after `LTK_SIMD`) and the `gemm`
/// crate's products (after the build's features), e.g.
/// `"kernels AVX-512F, GEMM AVX-512F"` or `"kernels AVX2 (LTK_SIMD=avx2), GEMM AVX2+FMA (built without avx512-gemm)"`.
pub fn describe() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let (avx512, avx2) = (
            std::arch::is_x86_feature_detected!("avx512f"),
            std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
        );
        let capped = if std::env::var("LTK_SIMD").is_ok() && max_level() < 2 {
            format!(" (LTK_SIMD={})", if max_level() == 1 { "avx2" } else { "portable" })
        } else {
            String::new()
        };
        let own = match (avx512 && max_level() >= 2, avx2 && max_level() >= 1) {
            (true, _) => "AVX-512F",
            (false, true) => "AVX2",
            _ => "baseline",
        };
        let gemm = match (avx512 && cfg!(feature = "avx512-gemm"), avx2) {
            (true, _) => "AVX-512F".to_string(),
            (false, true) if avx512 => "AVX2+FMA (built without avx512-gemm)".to_string(),
            (false, true) => "AVX2+FMA".to_string(),
            _ => "baseline".to_string(),
        };
        format!("kernels {own}{capped}, GEMM {gemm}")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        "kernels portable, GEMM the gemm crate's for this target".to_string()
    }
}

/// Tests only: runs `f` once with each copy allowed (baseline, AVX2,
/// AVX-512F; a copy the CPU lacks falls back to the next narrower one).
#[cfg(test)]
pub(crate) fn at_each_width(mut f: impl FnMut(u8)) {
    for level in 0..=2 {
        WIDTH_LIMIT.with(|l| l.set(level));
        f(level);
    }
    WIDTH_LIMIT.with(|l| l.set(2));
}

/// Tests only: a seeded xorshift stream of values spread over
/// `[-scale/2, scale/2]`, the inputs of the bit-identity tests.
#[cfg(test)]
pub(crate) fn test_values(seed: u32, scale: f32) -> impl FnMut() -> f32 {
    let mut bits = test_bits(seed);
    move || (bits() as f32 / u32::MAX as f32 - 0.5) * scale
}

/// Tests only: the seeded xorshift stream of 32-bit values behind
/// [`test_values`].
#[cfg(test)]
pub(crate) fn test_bits(seed: u32) -> impl FnMut() -> u32 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    }
}

#[cfg(test)]
mod tests {
    use super::{at_each_width, describe, test_values, LEVELS};
    use crate::env::choice_named;

    /// `LTK_SIMD`'s values and the description of the kernels in use.
    #[test]
    fn simd_cap_names_and_description() {
        let level = |v| choice_named(v, LEVELS, 2);
        assert_eq!(level(None), Ok(2));
        assert_eq!(level(Some("avx512")), Ok(2));
        assert_eq!(level(Some("avx2")), Ok(1));
        assert_eq!(level(Some("portable")), Ok(0));
        assert_eq!(level(Some("AVX2")), Err("AVX2"));
        let d = describe();
        assert!(d.starts_with("kernels ") && d.contains(", GEMM "), "{d}");
    }

    /// The wide copy gives the portable loop's bits for a multiply-add, a
    /// division and a square root, on lengths that are not multiples of a
    /// vector.
    #[test]
    fn wide_loop_matches_the_portable_loop_bit_for_bit() {
        #[inline(always)]
        fn kernel(a: &mut [f32], b: &[f32]) {
            for (x, &y) in a.iter_mut().zip(b) {
                *x = (0.9 * *x + 0.1 * y) / ((y * y).sqrt() + 1e-8);
            }
        }
        wide_fn! {
            fn fast_kernel(a: &mut [f32], b: &[f32]) {
                kernel(a, b)
            }
        }
        let mut next = test_values(0x9e37_79b9, 4.0);
        for n in [1usize, 7, 8, 15, 16, 17, 1000] {
            let b: Vec<f32> = (0..n).map(|_| next()).collect();
            let a0: Vec<f32> = (0..n).map(|_| next()).collect();
            let mut portable = a0.clone();
            kernel(&mut portable, &b);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            at_each_width(|level| {
                let mut fast = a0.clone();
                fast_kernel(&mut fast, &b);
                assert_eq!(bits(&portable), bits(&fast), "n = {n}, width level {level}");
            });
        }
    }
}
