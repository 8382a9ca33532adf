//! Helpers shared by the device tests (tests/device_resident.rs,
//! tests/ensemble.rs): the device under test and the comparison of two
//! training outcomes within float tolerance.

use candle_core::Device;
use lottery_tangent::params::ParamSet;
use lottery_tangent::train::TrainOutcome;

/// The device under test: `LTK_TEST_DEVICE` (e.g. `cuda` in a `cuda` build), or the CPU.
pub fn device() -> Device {
    let name = std::env::var("LTK_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    lottery_tangent::device::parse(&name).unwrap()
}

/// Relative tolerance of parameters: `cpu` (float rounding) on the CPU; on
/// a GPU (other GEMM and reduction orders, compounded over the steps) wider.
pub fn tol(cpu: f32) -> f32 {
    if device().is_cpu() {
        cpu
    } else {
        cpu.max(2e-3)
    }
}

/// Largest difference relative to each tensor's largest entry.
pub fn rel(a: &ParamSet, b: &ParamSet) -> f32 {
    assert_eq!(a.names().collect::<Vec<_>>(), b.names().collect::<Vec<_>>());
    let mut worst = 0.0f32;
    for (k, x) in a.iter() {
        let y = b.get(k).unwrap();
        assert_eq!(x.shape, y.shape, "{k}");
        let scale = x.data.iter().map(|v| v.abs()).fold(0.0, f32::max).max(1e-6);
        for (p, q) in x.data.iter().zip(&y.data) {
            worst = worst.max((p - q).abs() / scale);
        }
    }
    worst
}

/// The same parameters and checkpoints (within `tol(cpu_tol)`) and history
/// (losses within 1e-4 relative on the CPU, 1e-3 on a GPU; accuracies
/// within 2 test examples of 360).
pub fn close(a: &TrainOutcome, b: &TrainOutcome, cpu_tol: f32) {
    let tol = tol(cpu_tol);
    let loss_tol = if device().is_cpu() { 1e-4 } else { 1e-3 };
    assert!(
        rel(&a.params, &b.params) < tol,
        "params differ by {}",
        rel(&a.params, &b.params)
    );
    assert_eq!(
        a.checkpoints.keys().collect::<Vec<_>>(),
        b.checkpoints.keys().collect::<Vec<_>>()
    );
    for (s, p) in &a.checkpoints {
        assert!(rel(p, &b.checkpoints[s]) < tol, "checkpoint {s}");
    }
    assert_eq!(a.history.len(), b.history.len());
    for (x, y) in a.history.iter().zip(&b.history) {
        assert_eq!(x.step, y.step);
        assert!(
            (x.test_loss - y.test_loss).abs() < loss_tol * x.test_loss.abs().max(1.0),
            "{x:?} vs {y:?}"
        );
        assert!(
            (x.test_accuracy - y.test_accuracy).abs() <= 2.0 / 360.0,
            "{x:?} vs {y:?}"
        );
        match (x.train_loss, y.train_loss) {
            (Some(p), Some(q)) => assert!((p - q).abs() < loss_tol * p.abs().max(1.0), "{x:?} vs {y:?}"),
            (p, q) => assert_eq!(p, q),
        }
    }
}
