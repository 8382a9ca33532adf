//! Strong lottery tickets: subnetworks of random networks that approximate a
//! target network without any training of the weights (Pensia et al. 2020;
//! Lueker 1998; Ramanujan et al. 2020).

pub mod edge_popup;
pub mod pensia;
pub mod subset_sum;
