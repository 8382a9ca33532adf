//! Symmetric eigendecompositions (`ntk::spectrum`) and their use on the
//! analytic kernels (`ntk::analytic`).

use lottery_tangent::models::Activation;
use lottery_tangent::ntk::{analytic, spectrum};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

fn gaussian(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.sample(StandardNormal)).collect()
}

/// `X Xᵀ` for a random `X` of shape `[n, k]` (rank `min(n, k)`).
fn random_gram(n: usize, k: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = gaussian(&mut rng, n * k);
    let mut g = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            g[i * n + j] = (0..k).map(|c| x[i * k + c] * x[j * k + c]).sum();
        }
    }
    g
}

/// A random symmetric `(A + Aᵀ)/2` with Gaussian entries.
fn random_symmetric(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let a = gaussian(&mut rng, n * n);
    let mut s = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            s[i * n + j] = 0.5 * (a[i * n + j] + a[j * n + i]);
        }
    }
    s
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

/// Checks `V diag(λ) Vᵀ = A` and `Vᵀ V = I`, to `tol` relative to max |A| (resp. 1).
fn check_decomposition(a: &[f64], n: usize, ev: &[f64], v: &[f64], tol: f64) {
    assert_eq!(ev.len(), n);
    assert_eq!(v.len(), n * n);
    assert!(ev.windows(2).all(|w| w[0] >= w[1]), "not descending: {ev:?}");
    let scale = max_abs(a).max(f64::MIN_POSITIVE);
    for i in 0..n {
        for j in 0..n {
            let r: f64 = (0..n).map(|k| v[i * n + k] * ev[k] * v[j * n + k]).sum();
            assert!(
                (r - a[i * n + j]).abs() <= tol * scale,
                "reconstruction [{i}, {j}]: {r} vs {}",
                a[i * n + j]
            );
            let o: f64 = (0..n).map(|k| v[k * n + i] * v[k * n + j]).sum();
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((o - want).abs() <= tol, "VᵀV [{i}, {j}] = {o}");
        }
    }
}

#[test]
fn backend_name() {
    let want = if cfg!(feature = "lapack") { "lapack" } else { "nalgebra" };
    assert_eq!(spectrum::backend(), want);
}

#[test]
fn diagonal_matrix() {
    let n = 5;
    let d = [3.0, -1.0, 7.5, 0.0, 2.0];
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        a[i * n + i] = d[i];
    }
    assert_eq!(spectrum::eigenvalues(&a, n).unwrap(), vec![7.5, 3.0, 2.0, 0.0, -1.0]);
    let (ev, v) = spectrum::eigh(&a, n).unwrap();
    assert_eq!(ev, vec![7.5, 3.0, 2.0, 0.0, -1.0]);
    // Eigenvector of 7.5 is e_2, of 3 is e_0, ...; signs fixed positive.
    for (j, &row) in [2usize, 0, 4, 3, 1].iter().enumerate() {
        for i in 0..n {
            let want = if i == row { 1.0 } else { 0.0 };
            assert!((v[i * n + j] - want).abs() < 1e-12, "column {j}: {v:?}");
        }
    }
}

#[test]
fn two_by_two_closed_form() {
    for &(a, b, c) in &[
        (2.0f64, 1.0f64, 2.0f64),
        (1.0, -3.0, 4.0),
        (-2.5, 0.1, 7.0),
        (1e6, 3e5, -2e5),
    ] {
        let m = [a, b, b, c];
        let mid = 0.5 * (a + c);
        let r = (0.25 * (a - c) * (a - c) + b * b).sqrt();
        let ev = spectrum::eigenvalues(&m, 2).unwrap();
        let scale = mid.abs() + r;
        assert!((ev[0] - (mid + r)).abs() <= 1e-12 * scale, "{ev:?}");
        assert!((ev[1] - (mid - r)).abs() <= 1e-12 * scale, "{ev:?}");
        let (ev2, v) = spectrum::eigh(&m, 2).unwrap();
        assert_eq!(ev2.len(), 2);
        check_decomposition(&m, 2, &ev2, &v, 1e-12);
    }
}

#[test]
fn random_gram_matrix() {
    for &(n, k) in &[(40, 60), (60, 10)] {
        let g = random_gram(n, k, n as u64);
        let trace: f64 = (0..n).map(|i| g[i * n + i]).sum();
        let ev = spectrum::eigenvalues(&g, n).unwrap();
        let sum: f64 = ev.iter().sum();
        assert!((sum - trace).abs() <= 1e-9 * trace, "sum {sum} vs trace {trace}");
        // PSD (rank-deficient when k < n).
        assert!(ev[n - 1] >= -1e-9 * ev[0], "{ev:?}");
        if k < n {
            assert!(ev[k..].iter().all(|&l| l.abs() <= 1e-9 * ev[0]), "{ev:?}");
        }
        let (ev2, v) = spectrum::eigh(&g, n).unwrap();
        for (x, y) in ev.iter().zip(&ev2) {
            assert!((x - y).abs() <= 1e-9 * ev[0]);
        }
        check_decomposition(&g, n, &ev2, &v, 1e-9);
    }
}

#[test]
fn nalgebra_backend_matches_the_dispatch() {
    let n = 30;
    let a = random_symmetric(n, 3);
    let ev = spectrum::eigenvalues(&a, n).unwrap();
    let ev_na = spectrum::nalgebra_backend::eigenvalues(&a, n);
    let (ev_na2, v_na) = spectrum::nalgebra_backend::eigh(&a, n);
    let scale = max_abs(&ev);
    for ((x, y), z) in ev.iter().zip(&ev_na).zip(&ev_na2) {
        assert!((x - y).abs() <= 1e-9 * scale && (x - z).abs() <= 1e-9 * scale);
    }
    check_decomposition(&a, n, &ev_na2, &v_na, 1e-9);
}

#[test]
fn bad_inputs_are_errors() {
    // Wrong sizes.
    assert!(spectrum::eigenvalues(&[1.0, 2.0, 3.0], 2).is_err());
    assert!(spectrum::eigh(&[1.0; 5], 2).is_err());
    assert!(spectrum::eigenvalues(&[1.0], 0).is_err());
    assert!(spectrum::eigenvalues(&[1.0; 4], usize::MAX).is_err());
    // Not symmetric: the message names the worst pair.
    let a = [1.0, 2.0, 0.0, 2.0, 1.0, 5.0, 0.0, 4.0, 1.0];
    let e = spectrum::eigenvalues(&a, 3).unwrap_err().to_string();
    assert!(e.contains("a[2, 1]") && e.contains("a[1, 2]"), "{e}");
    assert!(spectrum::eigh(&a, 3).is_err());
    // Non-finite entries.
    assert!(spectrum::eigenvalues(&[1.0, f64::NAN, f64::NAN, 1.0], 2).is_err());
    assert!(spectrum::eigh(&[f64::INFINITY], 1).is_err());
    // Empty is fine.
    assert!(spectrum::eigenvalues(&[], 0).unwrap().is_empty());
    let (ev, v) = spectrum::eigh(&[], 0).unwrap();
    assert!(ev.is_empty() && v.is_empty());
}

#[test]
fn analytic_kernels_have_nonnegative_spectra() {
    let (n, d) = (50, 8);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let x: Vec<f32> = (0..n * d).map(|_| rng.sample(StandardNormal)).collect();
    for act in [Activation::Relu, Activation::Erf, Activation::Identity] {
        let net = analytic::InfiniteMlp::new(4, act, 1.5, 0.1).unwrap();
        let k = net.kernels(&x, n, &x, n, d).unwrap();
        assert_eq!((k.n1, k.n2), (n, n));
        for m in [&k.nngp, &k.ntk] {
            let ev = spectrum::eigenvalues(m, n).unwrap();
            assert!(ev[n - 1] >= -1e-9 * ev[0], "{act:?}: {ev:?}");
            let trace: f64 = (0..n).map(|i| m[i * n + i]).sum();
            assert!((ev.iter().sum::<f64>() - trace).abs() <= 1e-9 * trace);
        }
        // The NTK dominates the NNGP (Θ = K + Θ_prev · K̇ with PSD terms).
        let ev_k = spectrum::eigenvalues(&k.nngp, n).unwrap();
        let ev_t = spectrum::eigenvalues(&k.ntk, n).unwrap();
        assert!(ev_t[0] >= ev_k[0]);
    }
    assert!(analytic::InfiniteMlp::new(2, Activation::Tanh, 1.0, 0.0).is_err());
}

#[cfg(feature = "lapack")]
#[test]
fn lapack_and_nalgebra_backends_agree() {
    use spectrum::{lapack_backend, nalgebra_backend};
    let n = 200;
    let a = random_symmetric(n, 42);
    let ev_l = lapack_backend::eigenvalues(&a, n).unwrap();
    let ev_n = nalgebra_backend::eigenvalues(&a, n);
    let (ev_l2, v_l) = lapack_backend::eigh(&a, n).unwrap();
    let (ev_n2, v_n) = nalgebra_backend::eigh(&a, n);
    let scale = max_abs(&ev_n);
    for k in 0..n {
        for (x, y) in [(ev_l[k], ev_n[k]), (ev_l2[k], ev_n2[k]), (ev_l[k], ev_n2[k])] {
            assert!((x - y).abs() <= 1e-9 * scale, "eigenvalue {k}: {x} vs {y}");
        }
    }
    // Eigenvectors up to sign (the random spectrum has no repeated eigenvalues).
    for j in 0..n {
        let (mut plus, mut minus) = (0.0f64, 0.0f64);
        for i in 0..n {
            plus = plus.max((v_l[i * n + j] - v_n[i * n + j]).abs());
            minus = minus.max((v_l[i * n + j] + v_n[i * n + j]).abs());
        }
        assert!(
            plus.min(minus) <= 1e-9,
            "eigenvector {j}: differs by {}",
            plus.min(minus)
        );
    }
    check_decomposition(&a, n, &ev_l2, &v_l, 1e-9);
    // Wrong size is an error, not a panic.
    assert!(lapack_backend::eigenvalues(&a[1..], n).is_err());
    assert!(lapack_backend::eigh(&a[1..], n).is_err());
}

/// Timing of a 1000 x 1000 eigendecomposition with each backend:
/// `cargo test --release [--features lapack] --test ntk_analytic -- --ignored --nocapture`.
#[test]
#[ignore]
fn time_eigenvalues_1000() {
    use std::time::Instant;
    let n = 1000;
    let a = random_symmetric(n, 1);
    let time = |name: &str, f: &dyn Fn() -> f64| {
        let t = Instant::now();
        let top = f();
        println!(
            "{name:<40} {:>8.3} s   (largest eigenvalue {top:.6})",
            t.elapsed().as_secs_f64()
        );
    };
    println!("backend compiled in: {}", spectrum::backend());
    time("nalgebra_backend::eigenvalues", &|| {
        spectrum::nalgebra_backend::eigenvalues(&a, n)[0]
    });
    time("nalgebra_backend::eigh", &|| {
        spectrum::nalgebra_backend::eigh(&a, n).0[0]
    });
    #[cfg(feature = "lapack")]
    {
        use ndarray_linalg::EigValsh;
        time("lapack_backend::eigenvalues", &|| {
            spectrum::lapack_backend::eigenvalues(&a, n).unwrap()[0]
        });
        time("lapack_backend::eigh", &|| {
            spectrum::lapack_backend::eigh(&a, n).unwrap().0[0]
        });
        time("ndarray-linalg EigValsh (for reference)", &|| {
            let m = ndarray::Array2::from_shape_vec((n, n), a.clone()).unwrap();
            let ev = m.eigvalsh(ndarray_linalg::UPLO::Lower).unwrap();
            ev[n - 1]
        });
    }
    time("spectrum::eigenvalues (dispatch)", &|| {
        spectrum::eigenvalues(&a, n).unwrap()[0]
    });
}

/// Timing of the analytic kernels of 1000 x 1000 points of dimension 784:
/// `cargo test --release --test ntk_analytic -- --ignored --nocapture`.
#[test]
#[ignore]
fn time_analytic_kernels_1000() {
    let (n, d) = (1000, 784);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let x: Vec<f32> = (0..n * d).map(|_| rng.sample(StandardNormal)).collect();
    for act in [Activation::Relu, Activation::Erf] {
        let net = analytic::InfiniteMlp::new(3, act, 1.4, 0.1).unwrap();
        let t = std::time::Instant::now();
        let k = net.kernels(&x, n, &x, n, d).unwrap();
        println!(
            "{act:?} depth 3 kernels [{n}, {n}], d = {d}: {:.3} s",
            t.elapsed().as_secs_f64()
        );
        assert!(k.ntk.iter().all(|v| v.is_finite()));
    }
}
