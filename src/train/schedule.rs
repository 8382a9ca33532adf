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
    /// Multiply by `gamma` at each milestone step (after an optional linear
    /// warmup). Milestones are given in steps (`milestones`) or in epochs
    /// (`milestone_epochs`, open_lth's `80ep,120ep`), which the training
    /// length's resolution turns into steps.
    Step {
        #[serde(default)]
        milestones: Vec<usize>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        milestone_epochs: Vec<f64>,
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
        if let Schedule::Step {
            milestones,
            milestone_epochs,
            gamma,
            ..
        } = self
        {
            if !(gamma.is_finite() && *gamma > 0.0 && *gamma <= 1.0) {
                return Err(Error::config("train.schedule.gamma", "a value in (0, 1]", gamma));
            }
            if milestones.is_empty() == milestone_epochs.is_empty() {
                return Err(Error::config(
                    "train.schedule.milestones / milestone_epochs",
                    "one of the two (steps or epochs)",
                    if milestones.is_empty() { "neither" } else { "both" },
                ));
            }
            if milestone_epochs.iter().any(|e| !(e.is_finite() && *e > 0.0))
                || milestone_epochs.windows(2).any(|w| w[0] >= w[1])
            {
                return Err(Error::config(
                    "train.schedule.milestone_epochs",
                    "strictly increasing epochs > 0",
                    format!("{milestone_epochs:?}"),
                ));
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

    /// The schedule with milestones in epochs turned into steps (`per_epoch`
    /// optimizer steps per epoch, rounded to the nearest step).
    pub fn in_steps(&self, per_epoch: usize) -> Schedule {
        match self {
            Schedule::Step {
                milestone_epochs,
                gamma,
                warmup_steps,
                ..
            } if !milestone_epochs.is_empty() => Schedule::Step {
                milestones: milestone_epochs
                    .iter()
                    .map(|e| ((e * per_epoch as f64).round() as usize).max(1))
                    .collect(),
                milestone_epochs: Vec::new(),
                gamma: *gamma,
                warmup_steps: *warmup_steps,
            },
            s => s.clone(),
        }
    }

    /// The multiplier for optimizer step `step` (0-based).
    pub fn factor(&self, step: usize) -> f64 {
        let (warm, decay) = match self {
            Schedule::Constant { warmup_steps } => (*warmup_steps, 1.0),
            Schedule::Step {
                milestones,
                gamma,
                warmup_steps,
                ..
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
            milestone_epochs: vec![],
            gamma: 0.1,
            warmup_steps: 4,
        };
        assert_eq!(s.factor(0), 0.25);
        assert_eq!(s.factor(3), 1.0);
        assert_eq!(s.factor(9), 1.0);
        assert!((s.factor(10) - 0.1).abs() < 1e-12);
        assert!((s.factor(25) - 0.01).abs() < 1e-12);
        let step = |milestones: Vec<usize>, milestone_epochs: Vec<f64>, gamma| Schedule::Step {
            milestones,
            milestone_epochs,
            gamma,
            warmup_steps: 0,
        };
        assert!(step(vec![5, 5], vec![], 0.1).validate().is_err());
        assert!(step(vec![5], vec![], 0.0).validate().is_err());
        assert!(step(vec![], vec![], 0.1).validate().is_err());
        assert!(step(vec![5], vec![1.0], 0.1).validate().is_err());
        assert!(step(vec![], vec![2.0, 1.0], 0.1).validate().is_err());
        // open_lth's 80ep,120ep at 391 steps per epoch (CIFAR-10, batch 128).
        assert_eq!(
            step(vec![], vec![80.0, 120.0], 0.1).in_steps(391),
            step(vec![31280, 46920], vec![], 0.1)
        );
    }
}
