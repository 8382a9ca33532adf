//! SubsetSum solvers (exact meet in the middle, brute force, batched candle
//! version) and the Lueker experiment.

use candle_core::Device;
use lottery_tangent::experiments::lueker;
use lottery_tangent::strong::subset_sum::{batched, brute_force, exact, subset_sum_of, Solution};
use proptest::prelude::*;

fn assert_consistent(c: &[f64], z: f64, s: &Solution) {
    assert!(
        n_bits_ok(c.len(), s.subset),
        "subset {:#b} has bits beyond n = {}",
        s.subset,
        c.len()
    );
    let direct = subset_sum_of(c, s.subset);
    assert!((s.sum - direct).abs() <= 1e-12, "reported sum {} vs {direct}", s.sum);
    assert!(
        (s.error - (s.sum - z).abs()).abs() <= 1e-12,
        "error {} vs |{} - {z}|",
        s.error,
        s.sum
    );
}

fn n_bits_ok(n: usize, subset: u64) -> bool {
    n >= 64 || subset >> n == 0
}

fn problems() -> impl Strategy<Value = (Vec<f64>, f64)> {
    (prop::collection::vec(-1.0f64..1.0, 0..=16), -3.0f64..3.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Both solvers are optimal, so their errors agree (exact is never worse).
    #[test]
    fn exact_matches_brute_force((c, z) in problems()) {
        let e = exact(&c, z).unwrap();
        let b = brute_force(&c, z).unwrap();
        prop_assert!(e.error <= b.error + 1e-9, "exact {} worse than brute force {}", e.error, b.error);
        prop_assert!((e.error - b.error).abs() <= 1e-9);
    }

    /// The reported sum is the sum of the chosen candidates, and error = |sum - z|.
    #[test]
    fn reported_sums_are_subset_sums((c, z) in problems()) {
        let e = exact(&c, z).unwrap();
        let b = brute_force(&c, z).unwrap();
        assert_consistent(&c, z, &e);
        assert_consistent(&c, z, &b);
    }

    /// Scaled candidates (not just [-1, 1]) and targets outside the reachable range.
    #[test]
    fn exact_matches_brute_force_at_other_scales(
        c in prop::collection::vec(-100.0f64..100.0, 1..=12),
        z in -2000.0f64..2000.0,
    ) {
        let e = exact(&c, z).unwrap();
        let b = brute_force(&c, z).unwrap();
        prop_assert!((e.error - b.error).abs() <= 1e-9 * 100.0);
    }

    /// The f32 batched solver finds the optimum up to f32 rounding.
    #[test]
    fn batched_matches_exact(n in 1usize..=16, t in 1usize..50, seed in any::<u64>()) {
        use rand::Rng as _;
        let mut rng = lottery_tangent::rng::stream(seed, "batched-test");
        let c: Vec<f32> = (0..t * n).map(|_| rng.gen_range(-1.0f32..=1.0)).collect();
        let z: Vec<f32> = (0..t).map(|_| rng.gen_range(-2.0f32..=2.0)).collect();
        let got = batched(&c, &z, n, &Device::Cpu).unwrap();
        prop_assert_eq!(got.len(), t);
        for (r, s) in got.iter().enumerate() {
            let row: Vec<f64> = c[r * n..(r + 1) * n].iter().map(|&x| x as f64).collect();
            let e = exact(&row, z[r] as f64).unwrap();
            assert_consistent(&row, z[r] as f64, s);
            prop_assert!(
                (s.error - e.error).abs() <= 1e-5,
                "problem {}: batched {} vs exact {}", r, s.error, e.error
            );
        }
    }
}

#[test]
fn batched_edge_cases() {
    // n = 0: the empty subset for every target.
    let s = batched(&[], &[0.5, -1.0], 0, &Device::Cpu).unwrap();
    assert_eq!(s.len(), 2);
    assert!(s.iter().all(|s| s.subset == 0 && s.sum == 0.0));
    assert_eq!(s[1].error, 1.0);
    // T = 0.
    assert!(batched(&[], &[], 5, &Device::Cpu).unwrap().is_empty());
    // Exact hits.
    let s = batched(&[1.0, 2.0, 4.0, 8.0], &[11.0], 4, &Device::Cpu).unwrap();
    assert_eq!((s[0].subset, s[0].error), (0b1011, 0.0));
}

/// A larger n than the proptest uses (halves of 2^9 and 2^10 sums).
#[test]
fn batched_matches_exact_at_n_19() {
    use rand::Rng as _;
    let (n, t) = (19, 8);
    let mut rng = lottery_tangent::rng::stream(3, "batched-19");
    let c: Vec<f32> = (0..t * n).map(|_| rng.gen_range(-1.0f32..=1.0)).collect();
    let z: Vec<f32> = (0..t).map(|_| rng.gen_range(-2.0f32..=2.0)).collect();
    for (r, s) in batched(&c, &z, n, &Device::Cpu).unwrap().iter().enumerate() {
        let row: Vec<f64> = c[r * n..(r + 1) * n].iter().map(|&x| x as f64).collect();
        let e = exact(&row, z[r] as f64).unwrap();
        assert!((s.error - e.error).abs() <= 1e-5, "{} vs {}", s.error, e.error);
    }
}

#[test]
fn bad_inputs_are_errors() {
    // n too large.
    assert!(exact(&[0.1; 49], 0.0).is_err());
    assert!(brute_force(&[0.1; 25], 0.0).is_err());
    assert!(batched(&[0.1; 33], &[0.0], 33, &Device::Cpu).is_err());
    // Non-finite candidates or targets.
    assert!(exact(&[0.1, f64::NAN], 0.0).is_err());
    assert!(exact(&[0.1, 0.2], f64::NAN).is_err());
    assert!(exact(&[0.1, f64::INFINITY], 0.0).is_err());
    assert!(brute_force(&[0.1, f64::NAN], 0.0).is_err());
    assert!(brute_force(&[0.1], f64::NEG_INFINITY).is_err());
    assert!(batched(&[0.1, f32::NAN], &[0.0], 2, &Device::Cpu).is_err());
    assert!(batched(&[0.1, 0.2], &[f32::NAN], 2, &Device::Cpu).is_err());
    // Sums that would overflow.
    assert!(exact(&[f64::MAX, f64::MAX], 0.0).is_err());
    assert!(batched(&[f32::MAX, f32::MAX], &[0.0], 2, &Device::Cpu).is_err());
    // Length mismatch: T * n != candidates.len().
    assert!(batched(&[0.1, 0.2, 0.3], &[0.0], 2, &Device::Cpu).is_err());
    assert!(batched(&[0.1, 0.2], &[0.0, 1.0], 2, &Device::Cpu).is_err());
    assert!(batched(&[0.1], &[], 0, &Device::Cpu).is_err());
}

/// Lueker (1998; used by Pensia et al. 2020, Lemma/Corollary on random SubsetSum):
/// with n iid Uniform[-1, 1] candidates, with high probability every target in
/// [-1, 1] is within O(2^{-cn}) of some subset sum. Heuristically the 2^n subset
/// sums spread over a range of width O(sqrt n), so a fixed target's best error
/// is about 2^{-n} (ln-rate about -ln 2 = -0.69 per candidate) and the worst
/// target on a grid is a small factor worse; the error must therefore fall
/// exponentially in n. Here: means fall monotonically with n and the fitted
/// rates of ln(error) are clearly negative (below -0.3 per candidate).
#[test]
fn lueker_errors_decay_exponentially() {
    let r = lueker::experiment(&[4, 8, 12, 16], 10, 101, 7).unwrap();
    assert_eq!(r.points.len(), 4);
    for w in r.points.windows(2) {
        assert!(
            w[1].mean_error < w[0].mean_error,
            "mean error did not decrease: n={} {} -> n={} {}",
            w[0].n,
            w[0].mean_error,
            w[1].n,
            w[1].mean_error
        );
    }
    for p in &r.points {
        assert_eq!(p.trials, 10);
        assert!(p.mean_error <= p.max_error && p.max_error > 0.0);
    }
    assert!(r.rate_mean < -0.3, "rate_mean = {}", r.rate_mean);
    assert!(r.rate_max < -0.3, "rate_max = {}", r.rate_max);
    // Reproducible (independent of the rayon thread count by construction).
    assert_eq!(r, lueker::experiment(&[4, 8, 12, 16], 10, 101, 7).unwrap());
}
