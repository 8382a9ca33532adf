//! The memory a run needs, estimated before anything large is allocated,
//! against the memory the machine (or its cgroup, e.g. a Slurm job) has
//! available. A size that cannot fit is refused with the estimate, the
//! available memory and the flag to change, instead of an allocation
//! failure that aborts the process.

use crate::{Error, Result};

/// Bytes in a GiB, for messages.
const GIB: f64 = (1u64 << 30) as f64;

fn meminfo_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// What a cgroup (v2, then v1) still allows, if it sets a limit.
fn cgroup_available() -> Option<u64> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    // Page cache the kernel can reclaim (inactive files) is not in use.
    let inactive = |stat: &str, key: &str| {
        std::fs::read_to_string(stat)
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse::<u64>().ok()))
            })
            .unwrap_or(0)
    };
    let v2 = read("/sys/fs/cgroup/memory.max").map(|max| {
        let used = read("/sys/fs/cgroup/memory.current").unwrap_or(0);
        max.saturating_sub(used.saturating_sub(inactive("/sys/fs/cgroup/memory.stat", "inactive_file ")))
    });
    v2.or_else(|| {
        let limit = read("/sys/fs/cgroup/memory/memory.limit_in_bytes")?;
        let used = read("/sys/fs/cgroup/memory/memory.usage_in_bytes").unwrap_or(0);
        let cache = inactive("/sys/fs/cgroup/memory/memory.stat", "total_inactive_file ");
        // v1 reports an unlimited cgroup as a huge number.
        (limit < (1u64 << 60)).then(|| limit.saturating_sub(used.saturating_sub(cache)))
    })
}

/// The memory available to this process now, in bytes: the smaller of the
/// kernel's `MemAvailable` and what the cgroup allows; `None` where neither
/// can be read (then no check is made).
pub fn available_bytes() -> Option<u64> {
    match (meminfo_available(), cgroup_available()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `bytes` as GiB with two decimals (or MiB below one GiB).
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= GIB {
        format!("{:.2} GiB", b / GIB)
    } else {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    }
}

/// An estimate of what a run holds in memory: named parts, in bytes.
#[derive(Clone, Debug, Default)]
pub struct Estimate {
    parts: Vec<(String, u64)>,
}

impl Estimate {
    /// Adds `count` values of `bytes_each` bytes under `what` (saturating).
    pub fn add(mut self, what: impl Into<String>, count: u64, bytes_each: u64) -> Self {
        self.parts.push((what.into(), count.saturating_mul(bytes_each)));
        self
    }

    /// The total in bytes (saturating).
    pub fn total(&self) -> u64 {
        self.parts.iter().fold(0u64, |a, (_, b)| a.saturating_add(*b))
    }

    /// Errors unless the estimate fits in the available memory, naming
    /// `what` the run is, the estimate and its parts, the available memory,
    /// and `change` (the flag or key that makes it smaller).
    pub fn check(&self, what: &str, change: &str) -> Result<()> {
        match available_bytes() {
            Some(avail) => self.check_against(what, change, avail),
            None => Ok(()),
        }
    }

    /// [`Estimate::check`] against `available` bytes.
    pub fn check_against(&self, what: &str, change: &str, available: u64) -> Result<()> {
        let total = self.total();
        if total <= available {
            return Ok(());
        }
        let parts = self
            .parts
            .iter()
            .filter(|(_, b)| *b > 0)
            .map(|(w, b)| format!("{w} {}", human(*b)))
            .collect::<Vec<_>>()
            .join(", ");
        Err(Error::invalid(
            format!("size of {what}"),
            format!(
                "a run that fits in the {} of memory available on this machine",
                human(available)
            ),
            format!(
                "one that needs an estimated {} at least ({parts}); make it smaller with {change}",
                human(total)
            ),
        ))
    }
}

/// Checks that training a network of `params` parameters can fit: its
/// weights, gradients, optimizer state and the initial weights kept for
/// rewinding (4 f32 copies) at the least. `what` describes the network,
/// `change` names what makes it smaller.
pub fn check_training(what: &str, params: u64, change: &str) -> Result<()> {
    Estimate::default()
        .add(
            format!("{params} parameters × 4 copies (weights, gradients, optimizer state, initial weights)"),
            params,
            16,
        )
        .check(what, change)
}

/// Parameters of `shapes` (saturating: a size that overflows is simply huge).
pub fn parameter_count<'a>(shapes: impl IntoIterator<Item = &'a Vec<usize>>) -> u64 {
    shapes
        .into_iter()
        .map(|s| s.iter().fold(1u64, |a, &d| a.saturating_mul(d as u64)))
        .fold(0u64, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_estimate_over_the_available_memory_names_its_parts_and_the_flag() {
        let e = Estimate::default()
            .add("weights", 1 << 30, 4)
            .add("gradients", 1 << 30, 4);
        assert_eq!(e.total(), 8 << 30);
        let msg = e
            .check_against("training", "--hidden", 4 << 30)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("8.00 GiB") && msg.contains("4.00 GiB") && msg.contains("--hidden") && msg.contains("weights"),
            "{msg}"
        );
        assert!(e.check_against("training", "--hidden", 9 << 30).is_ok());
        assert_eq!(Estimate::default().add("x", u64::MAX, 4).total(), u64::MAX);
        assert!(available_bytes().is_none_or(|b| b > 0));
    }
}
