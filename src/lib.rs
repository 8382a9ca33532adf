//! lottery_tangent: experiments on how neural networks train, from the lottery
//! ticket hypothesis (Frankle & Carbin 2019) to the neural tangent kernel view
//! (Jacot et al. 2018; Lee et al. 2019).
//!
//! Layers import only downward:
//! `rng`, `params`, `paths`, `simd`, `awake` → [`data`] → [`models`] → [`train`] → the methods
//! ([`prune`], [`pai`], [`strong`], [`ntk`]: pure functions, no experiments) →
//! [`report`] (verdicts, plots) and [`config`] (the base config) → [`runner`]
//! (the experiment trait, run directories, shards, merge, the command line) →
//! [`experiments`] (one file or folder each, and the registry) → binaries.
//! Parameters are named, sorted [`params::ParamSet`]s; models are functions of
//! (parameters, input).

mod alloc;
pub mod awake;
pub mod config;
pub mod data;
pub mod device;
mod env;
pub mod error;
pub mod experiments;
pub mod memory;
pub mod models;
pub mod ntk;
pub mod pai;
pub mod params;
pub mod paths;
pub mod prune;
pub mod report;
pub mod rng;
pub mod runner;
pub mod simd;
pub mod stats;
pub mod strong;
pub mod train;

pub use error::{Error, Result};

pub use alloc::Allocator;
