//! Neural tangent kernels (Jacot et al. 2018) and the linearized network
//! (Lee et al. 2019).

pub mod analytic;
pub mod spectrum;
