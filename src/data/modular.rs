//! Modular addition (Power et al. 2022, "Grokking: generalization beyond
//! overfitting on small algorithmic datasets", Sec. 2): every pair (a, b) of
//! residues mod a prime p, labelled (a + b) mod p, split at random into a
//! training fraction and the rest for testing. An example is the one-hot
//! code of a followed by that of b (`2p` features), so a network's first
//! layer holds one learned embedding per operand position (Gromov 2023,
//! "Grokking modular arithmetic", Sec. 2, uses this input for MLPs).

use rand::seq::SliceRandom;

use super::{Dataset, Split};
use crate::{Error, Result};

/// Whether `p` is prime (trial division; p is small here).
pub fn is_prime(p: u64) -> bool {
    p >= 2 && (2..).take_while(|d| d * d <= p).all(|d| !p.is_multiple_of(d))
}

/// The `p²` examples of (a + b) mod p, a seeded `train_fraction` of them for
/// training (at least one, and at least one left for testing). Errors on p
/// not prime or below 3, p above 1000 (a million examples), or a fraction
/// outside (0, 1).
pub fn addition(p: u64, train_fraction: f64, seed: u64) -> Result<Split> {
    if p < 3 || !is_prime(p) {
        return Err(Error::config("data.modulus", "a prime p >= 3", p));
    }
    if p > 1000 {
        return Err(Error::config("data.modulus", "a prime p <= 1000 (p² examples)", p));
    }
    if !(train_fraction > 0.0 && train_fraction < 1.0) {
        return Err(Error::config(
            "data.train_fraction",
            "a fraction in (0, 1)",
            train_fraction,
        ));
    }
    let n = (p * p) as usize;
    let n_train = ((train_fraction * n as f64).round() as usize).clamp(1, n - 1);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut crate::rng::stream(seed, "modular-split"));
    let (train_idx, test_idx) = order.split_at(n_train);
    let p = p as usize;
    let make = |idx: &[usize]| {
        let mut sorted = idx.to_vec();
        sorted.sort_unstable();
        let mut x = vec![0.0f32; sorted.len() * 2 * p];
        let mut labels = Vec::with_capacity(sorted.len());
        for (row, &i) in sorted.iter().enumerate() {
            let (a, b) = (i / p, i % p);
            x[row * 2 * p + a] = 1.0;
            x[row * 2 * p + p + b] = 1.0;
            labels.push(((a + b) % p) as u32);
        }
        Dataset {
            name: format!("mod-{p}-addition"),
            x,
            labels,
            targets: None,
            target_dim: p,
            shape: [1, 1, 2 * p],
            num_classes: p,
        }
    };
    Ok(Split {
        train: make(train_idx),
        test: make(test_idx),
        validation: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_once_with_its_sum() {
        let s = addition(7, 0.4, 3).unwrap();
        assert_eq!(s.train.len() + s.test.len(), 49);
        assert_eq!(s.train.len(), 20);
        let mut seen = std::collections::BTreeSet::new();
        for d in [&s.train, &s.test] {
            for (row, &y) in d.labels.iter().enumerate() {
                let x = &d.x[row * 14..][..14];
                let a = x[..7].iter().position(|&v| v == 1.0).unwrap();
                let b = x[7..].iter().position(|&v| v == 1.0).unwrap();
                assert_eq!(x.iter().sum::<f32>(), 2.0);
                assert_eq!(y as usize, (a + b) % 7);
                assert!(seen.insert((a, b)));
            }
        }
        assert_eq!(addition(7, 0.4, 3).unwrap().train.labels, s.train.labels);
    }

    #[test]
    fn bad_moduli_and_fractions_are_refused() {
        for p in [0, 1, 2, 4, 9, 91] {
            assert!(
                addition(p, 0.5, 0).unwrap_err().to_string().contains("data.modulus"),
                "{p}"
            );
        }
        for f in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
            assert!(
                addition(5, f, 0)
                    .unwrap_err()
                    .to_string()
                    .contains("data.train_fraction"),
                "{f}"
            );
        }
        assert!(is_prime(97) && !is_prime(1) && !is_prime(221));
    }
}
