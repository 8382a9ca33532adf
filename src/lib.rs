//! lottery_tangent: experiments on how neural networks train, from the lottery
//! ticket hypothesis (Frankle & Carbin 2019) to the neural tangent kernel view
//! (Jacot et al. 2018; Lee et al. 2019).
//!
//! Parameters are named, sorted [`params::ParamSet`]s; models are functions of
//! (parameters, input); the math core is pure functions; binaries parse, load,
//! call and write.

pub mod config;
pub mod data;
pub mod device;
pub mod double_descent;
pub mod elastic;
pub mod error;
pub mod experiment;
pub mod grokking;
pub mod imp;
pub mod kernel_velocity;
pub mod lmc;
pub mod lr_rewind;
pub mod memory;
pub mod models;
pub mod multi_prize;
pub mod ntk;
pub mod pai;
pub mod params;
pub mod paths;
pub mod plot;
pub mod prune;
pub mod rng;
pub mod run;
pub mod stats;
pub mod strong;
pub mod supermask;
pub mod ticket_ntk;
pub mod ticket_scale;
pub mod train;
pub mod verdict;
pub mod weight_agnostic;

pub use error::{Error, Result};
