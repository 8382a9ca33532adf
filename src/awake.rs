//! Keeps the CPUs of a virtual machine from halting between parallel kernels.
//!
//! rayon's idle workers yield a few dozen times and then sleep, and a CPU
//! with nothing to run halts. On bare metal, and in guests whose kernel
//! polls before halting (the `haltpoll` cpuidle driver), waking it again
//! costs microseconds. In a KVM guest without a cpuidle driver a halted
//! vCPU leaves the host, and when the host's core is shared the wake-up
//! waits for the host's scheduler: the guest counts that wait as steal.
//! A training step forks and joins a few times per layer, and pays the
//! wake-up at each fork. OpenMP runtimes (PyTorch's) spin for a while
//! between parallel regions instead, and keep their speed.
//!
//! Measured on a 2-vCPU Intel Sapphire Rapids KVM guest with no cpuidle
//! driver: during ltk's LeNet-300-100 training steps on 2 threads the guest
//! counted 39% of both CPUs as steal, against 7% under two plain busy loops.
//! Two `SCHED_IDLE` processes calling `sched_yield` in a loop beside the
//! training bench took its step from 2.8-5.3 ms to 1.7-2.1 ms (7 pairs, one
//! without a gain) and ResNet-20's from 397-568 ms to 312-351 ms (3 pairs).
//! Busy loops without the yield cost time when the machine was quiet: a
//! worker's own `sched_yield` then hands its CPU to the loop until the next
//! scheduler tick.
//!
//! [`KeepAwake`] runs such loops inside the process, one per rayon thread,
//! for as long as it is held. `SCHED_IDLE` threads run only when no other
//! thread of the CPU's run queue can; each iteration yields to any that has
//! become runnable. `LTK_KEEP_AWAKE` sets when: `auto` (default: Linux
//! guests on a hypervisor without a cpuidle driver, with more than one rayon
//! thread), `on` or `off`. The loops show in the process's CPU time, not in
//! its results.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Yielding `SCHED_IDLE` threads, one per rayon thread, until dropped.
#[derive(Debug)]
pub struct KeepAwake {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// When to keep CPUs awake, from `LTK_KEEP_AWAKE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    Auto,
    On,
    Off,
}

/// `LTK_KEEP_AWAKE`'s values and the policies they name.
const POLICIES: &[(&str, Policy)] = &[("auto", Policy::Auto), ("on", Policy::On), ("off", Policy::Off)];

/// Whether `cpuinfo` (the text of `/proc/cpuinfo`) and the cpuidle driver's
/// name (`None` when the kernel has no cpuidle) describe a guest whose idle
/// CPUs halt at once.
fn halting_guest(cpuinfo: &str, cpuidle_driver: Option<&str>) -> bool {
    let hypervisor = cpuinfo
        .lines()
        .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "hypervisor"));
    hypervisor && matches!(cpuidle_driver.map(str::trim), None | Some("") | Some("none"))
}

impl KeepAwake {
    /// Starts the threads where `LTK_KEEP_AWAKE` asks for them (see the
    /// module's documentation); `None` where it does not.
    pub fn start() -> Option<KeepAwake> {
        let policy = crate::env::choice("LTK_KEEP_AWAKE", POLICIES, Policy::Auto);
        let threads = rayon::current_num_threads();
        let wanted = match policy {
            Policy::Off => false,
            Policy::On => true,
            Policy::Auto => {
                threads > 1
                    && cfg!(target_os = "linux")
                    && halting_guest(
                        &std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default(),
                        std::fs::read_to_string("/sys/devices/system/cpu/cpuidle/current_driver")
                            .ok()
                            .as_deref(),
                    )
            }
        };
        if !wanted {
            return None;
        }
        Some(Self::with_threads(threads))
    }

    /// `n` yielding idle-priority threads.
    fn with_threads(n: usize) -> KeepAwake {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .filter_map(|i| {
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name(format!("ltk-keep-awake-{i}"))
                    .spawn(move || {
                        // At normal priority the loop would take turns with
                        // the workers: without SCHED_IDLE it does not run.
                        if !idle_priority() {
                            return;
                        }
                        while !stop.load(Ordering::Relaxed) {
                            std::thread::yield_now();
                        }
                    })
                    .ok()
            })
            .collect();
        KeepAwake { stop, threads }
    }
}

impl Drop for KeepAwake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Moves the calling thread to `SCHED_IDLE`; false where that failed or
/// the platform has no such class.
fn idle_priority() -> bool {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sets the calling thread's (pid 0) policy from a valid parameter.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names() {
        let policy = |v| crate::env::choice_named(v, POLICIES, Policy::Auto);
        assert_eq!(policy(None), Ok(Policy::Auto));
        assert_eq!(policy(Some("auto")), Ok(Policy::Auto));
        assert_eq!(policy(Some("on")), Ok(Policy::On));
        assert_eq!(policy(Some("off")), Ok(Policy::Off));
        assert_eq!(policy(Some("yes")), Err("yes"));
    }

    /// Guests without a cpuidle driver halt at once; bare metal and
    /// guests with `haltpoll` do not count.
    #[test]
    fn halting_guests_are_recognized() {
        let guest = "processor\t: 0\nflags\t\t: fpu vme hypervisor avx2\n";
        let metal = "processor\t: 0\nflags\t\t: fpu vme avx2\n";
        assert!(halting_guest(guest, None));
        assert!(halting_guest(guest, Some("none\n")));
        assert!(!halting_guest(guest, Some("haltpoll\n")));
        assert!(!halting_guest(metal, None));
        assert!(!halting_guest("", None));
    }

    /// The threads start, leave rayon's work to rayon, and end when the
    /// guard is dropped (a drop that did not end them would not return).
    #[test]
    fn threads_stop_when_dropped() {
        let awake = KeepAwake::with_threads(2);
        assert_eq!(awake.threads.len(), 2);
        let sum: u64 = {
            use rayon::prelude::*;
            (0..10_000u64).into_par_iter().sum()
        };
        assert_eq!(sum, 49_995_000);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(awake);
            let _ = tx.send(());
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_secs(10)).is_ok(),
            "the keep-awake threads did not end within 10 s of the drop"
        );
    }
}
