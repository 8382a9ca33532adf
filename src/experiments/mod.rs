//! The experiments: one file (or folder) each, on the runner's
//! [`crate::runner::Experiment`] trait, and the registry that lists them.

pub mod double_descent;
pub mod elastic;
pub mod grokking;
pub mod imp;
pub mod kernel_velocity;
pub mod lmc;
pub mod lr_rewind;
pub mod lueker;
pub mod multi_prize;
pub mod ntk_compare;
pub mod ntk_kernels;
pub mod pai;
pub mod strong;
pub mod supermask;
pub mod ticket_ntk;
pub mod ticket_scale;
pub mod train;
pub mod weight_agnostic;

use crate::runner::Registry;

/// Every command of `ltk`, in the order `ltk --help` lists them. Adding an
/// experiment on the base config is its file and one line here.
pub fn registry() -> Registry {
    Registry::new()
        .plugin(ntk_compare::cli::NtkCompareCommand)
        .plugin(train::Train)
        .plugin(ntk_kernels::NtkKernels)
        .with::<imp::Imp>()
        .with::<lmc::Lmc>()
        .with::<strong::Strong>()
        .with::<supermask::Supermask>()
        .with::<pai::Pai>()
        .with::<weight_agnostic::WeightAgnostic>()
        .with::<multi_prize::MultiPrize>()
        .with::<elastic::Elastic>()
        .with::<ticket_scale::TicketScale>()
        .with::<grokking::Grokking>()
        .with::<kernel_velocity::KernelVelocity>()
        .with::<ticket_ntk::TicketNtk>()
        .with::<double_descent::DoubleDescent>()
        .with::<lr_rewind::LrRewind>()
        .plugin(lueker::SubsetSum)
        .plugin(train::Plot)
}
