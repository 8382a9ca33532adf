//! The report layer: verdicts decided by the declared-claim protocol
//! ([`verdict`]), figures ([`plot`]) and training-history reports
//! ([`training`]). It knows no experiment; experiments build their reports
//! from it.

pub mod plot;
pub mod training;
pub mod verdict;
