//! Seeded random streams. Every random choice in the crate comes from a
//! `(seed, stream name)` pair, so independent choices (init, data order,
//! data split, pruning) can be varied independently and reproduced exactly.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The crate's random generator (portable and reproducible across platforms).
pub type Rng = ChaCha8Rng;

/// A generator for `stream` derived from `seed` (FNV-1a of the name mixed with the seed).
pub fn stream(seed: u64, name: &str) -> Rng {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Rng::seed_from_u64(splitmix(seed ^ h))
}

/// A generator for `stream` with an extra integer index (e.g. an epoch number).
pub fn indexed(seed: u64, name: &str, index: u64) -> Rng {
    stream(splitmix(seed.wrapping_add(splitmix(index))), name)
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A new seed derived from `(seed, name, index)`, for runs that need their own
/// seed (e.g. the random reinitialization of pruning round `index`).
pub fn derive_seed(seed: u64, name: &str, index: u64) -> u64 {
    use rand::RngCore;
    indexed(seed, name, index).next_u64()
}
