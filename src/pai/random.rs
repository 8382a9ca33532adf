//! Random pruning at initialization: uniform random scores from a seed
//! (Synaptic-Flow `Pruners/pruners.py`, `Rand`), kept at the requested
//! density in every layer by default (the uniform baseline of Frankle et
//! al. 2021, Sec. 4).

pub use crate::prune::random::scores;
