//! Training: losses, optimizers, schedules and the training loop.

pub mod cache;
pub mod ensemble;
pub mod loss;
pub mod objective;
pub mod optim;
pub mod resident;
pub mod schedule;
pub mod state;
pub mod trainer;

pub use loss::Loss;
pub use objective::{evaluate, Batch, Evaluation, Resident, Supervised, Trainable};
pub use optim::{Optimizer, OptimizerConfig};
pub use schedule::Schedule;
pub use trainer::{train, EvalRecord, TrainOptions, TrainOutcome, TrainSpec};
