//! Neural tangent kernels (Jacot et al. 2018) and the linearized network
//! (Lee et al. 2019).

pub mod analytic;
pub mod device;
pub mod diagnostics;
pub mod dynamics;
pub mod empirical;
pub mod linearize;
pub mod spectrum;

pub use empirical::{autodiff_ntk, autodiff_traced_ntk, mlp_ntk, Kernel, KernelKind};
pub use linearize::Linearized;
