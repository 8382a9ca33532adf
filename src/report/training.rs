//! Figures and summaries of a training run, written from its evaluation
//! history (so a finished or interrupted run can be re-plotted from
//! `metrics.json` alone).

use serde::{Deserialize, Serialize};

use crate::paths::{write_json, RunDir};
use crate::report::plot::{LineChart, Series};
use crate::train::trainer::{EvalRecord, TrainOutcome};
use crate::Result;

/// The summary written to `summary.json` after training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    pub model: String,
    pub parameters: usize,
    pub steps: usize,
    pub epochs: f64,
    pub final_test_accuracy: f64,
    pub final_test_loss: f64,
    pub best_test_accuracy: f64,
    pub early_stop_step: Option<usize>,
    pub train_seconds: f64,
    pub samples_per_second: f64,
}

impl TrainSummary {
    /// Summarizes an outcome.
    pub fn new(model: String, parameters: usize, out: &TrainOutcome) -> Self {
        let last = out.last();
        TrainSummary {
            model,
            parameters,
            steps: out.steps_done,
            epochs: last.map(|r| r.epoch).unwrap_or(0.0),
            final_test_accuracy: last.map(|r| r.test_accuracy).unwrap_or(f64::NAN),
            final_test_loss: last.map(|r| r.test_loss).unwrap_or(f64::NAN),
            best_test_accuracy: out.history.iter().map(|r| r.test_accuracy).fold(f64::NAN, f64::max),
            early_stop_step: out.early_stop().map(|r| r.step),
            train_seconds: out.seconds,
            samples_per_second: out.samples_per_second,
        }
    }

    /// Writes `summary.json`.
    pub fn write(&self, dir: &RunDir) -> Result<()> {
        write_json(&dir.summary_json(), self)
    }
}

/// Draws `figures/accuracy.png` and `figures/loss.png` from a history.
pub fn plot_history(dir: &RunDir, history: &[EvalRecord], title: &str) -> Result<()> {
    let pts = |f: &dyn Fn(&EvalRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|r| f(r).map(|v| (r.step as f64, v)))
            .collect()
    };
    let mut acc = LineChart::new(&format!("{title}: accuracy"), "training step", "accuracy (%)")
        .add(Series::line("test", pts(&|r| Some(100.0 * r.test_accuracy))));
    let val = pts(&|r| r.val_accuracy.map(|v| 100.0 * v));
    if !val.is_empty() {
        acc.push(Series::line("validation", val));
    }
    acc.save(&dir.figure("accuracy"))?;
    let mut loss = LineChart::new(&format!("{title}: loss"), "training step", "loss")
        .log_y()
        .add(Series::line("test", pts(&|r| Some(r.test_loss))));
    let train = pts(&|r| r.train_loss);
    if !train.is_empty() {
        loss.push(Series::line("train (mean over interval)", train));
    }
    let val = pts(&|r| r.val_loss);
    if !val.is_empty() {
        loss.push(Series::line("validation", val));
    }
    loss.save(&dir.figure("loss"))
}
