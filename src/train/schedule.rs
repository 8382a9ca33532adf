//! Learning-rate schedules: a multiplier of the optimizer's base rate at each step.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A learning-rate schedule (`[train.schedule]`, `kind = ...`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// The base rate throughout (after an optional linear warmup).
    Constant {
        #[serde(default)]
        warmup_steps: usize,
    },
    /// Multiply by `gamma` at each milestone step (after an optional linear warmup).
    Step {
        milestones: Vec<usize>,
        gamma: f64,
        #[serde(default)]
        warmup_steps: usize,
    },
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::Constant { warmup_steps: 0 }
    }
}

impl Schedule {
    /// Errors on a gamma outside (0, 1] or unsorted milestones.
    pub fn validate(&self) -> Result<()> {
        if let Schedule::Step { milestones, gamma, .. } = self {
            if !(gamma.is_finite() && *gamma > 0.0 && *gamma <= 1.0) {
                return Err(Error::config("train.schedule.gamma", "a value in (0, 1]", gamma));
            }
            if milestones.windows(2).any(|w| w[0] >= w[1]) {
                return Err(Error::config(
                    "train.schedule.milestones",
                    "strictly increasing steps",
                    format!("{milestones:?}"),
                ));
            }
        }
        Ok(())
    }

    /// The multiplier for optimizer step `step` (0-based).
    pub fn factor(&self, step: usize) -> f64 {
        let (warm, decay) = match self {
            Schedule::Constant { warmup_steps } => (*warmup_steps, 1.0),
            Schedule::Step {
                milestones,
                gamma,
                warmup_steps,
            } => {
                let k = milestones.iter().filter(|&&m| m <= step).count();
                (*warmup_steps, gamma.powi(k as i32))
            }
        };
        let w = if warm > 0 && step < warm {
            (step + 1) as f64 / warm as f64
        } else {
            1.0
        };
        w * decay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_steps() {
        let s = Schedule::Step {
            milestones: vec![10, 20],
            gamma: 0.1,
            warmup_steps: 4,
        };
        assert_eq!(s.factor(0), 0.25);
        assert_eq!(s.factor(3), 1.0);
        assert_eq!(s.factor(9), 1.0);
        assert!((s.factor(10) - 0.1).abs() < 1e-12);
        assert!((s.factor(25) - 0.01).abs() < 1e-12);
        assert!(Schedule::Step {
            milestones: vec![5, 5],
            gamma: 0.1,
            warmup_steps: 0
        }
        .validate()
        .is_err());
        assert!(Schedule::Step {
            milestones: vec![5],
            gamma: 0.0,
            warmup_steps: 0
        }
        .validate()
        .is_err());
    }
}
