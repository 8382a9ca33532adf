//! The mini-batch order.
//!
//! The data-order seed is the "SGD noise" of a run and is independent of every
//! other random choice (initialization, data split, pruning). The order is a
//! pure function of `(n, batch_size, seed, step)`, so training can resume at
//! any step and give exactly the batches it would have seen.
//!
//! Epoch `e` visits the examples in the order of a Fisher-Yates permutation
//! drawn from [`crate::rng::indexed`]`(seed, "batch-order", e)` and cuts it into
//! `n / batch_size` full batches; the `n % batch_size` examples left at the
//! end of the permutation are skipped that epoch (a different set each epoch).

use crate::{Error, Result};
use rand::seq::SliceRandom;

/// Seeded mini-batch order over `n` examples, with the current epoch's
/// permutation cached.
#[derive(Clone, Debug)]
pub struct BatchOrder {
    n: usize,
    batch_size: usize,
    seed: u64,
    /// Epoch whose permutation `perm` holds, if any.
    epoch: Option<usize>,
    perm: Vec<usize>,
}

impl BatchOrder {
    /// A batch order over examples `0..n` in batches of `batch_size`.
    ///
    /// Errors if `n == 0`, `batch_size == 0` or `batch_size > n`.
    pub fn new(n: usize, batch_size: usize, seed: u64) -> Result<Self> {
        if n == 0 {
            return Err(Error::invalid("number of examples for batching", "at least 1", n));
        }
        if batch_size == 0 || batch_size > n {
            return Err(Error::invalid(
                "batch size",
                format!("1..={n} (the number of examples)"),
                batch_size,
            ));
        }
        Ok(BatchOrder {
            n,
            batch_size,
            seed,
            epoch: None,
            perm: Vec::new(),
        })
    }

    /// Full batches per epoch, `n / batch_size` (the incomplete last batch is
    /// dropped, so every batch has exactly `batch_size` rows).
    pub fn batches_per_epoch(&self) -> usize {
        self.n / self.batch_size
    }

    /// The (0-based) epoch that global step `step` falls in.
    pub fn epoch_of(&self, step: usize) -> usize {
        step / self.batches_per_epoch()
    }

    /// Indices (`[batch_size]`, each `< n`, no repeats) of the examples in
    /// batch number `step` (0-based, counting across epochs). Steps may be
    /// requested in any order; the result depends only on `(n, batch_size,
    /// seed, step)`. Moving to another epoch recomputes the permutation.
    pub fn batch(&mut self, step: usize) -> &[usize] {
        let bpe = self.batches_per_epoch();
        let j = step % bpe;
        let bs = self.batch_size;
        &self.epoch(step / bpe)[j * bs..(j + 1) * bs]
    }

    /// The examples of epoch `epoch` in visiting order: its
    /// `batches_per_epoch() * batch_size` indices, batch after batch (a
    /// device uploads one epoch's order at once and slices its batches there).
    pub fn epoch(&mut self, epoch: usize) -> &[usize] {
        if self.epoch != Some(epoch) {
            self.perm.clear();
            self.perm.extend(0..self.n);
            self.perm
                .shuffle(&mut crate::rng::indexed(self.seed, "batch-order", epoch as u64));
            self.epoch = Some(epoch);
        }
        &self.perm[..self.batches_per_epoch() * self.batch_size]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_sizes() {
        assert!(BatchOrder::new(0, 1, 0).is_err());
        assert!(BatchOrder::new(5, 0, 0).is_err());
        assert!(BatchOrder::new(5, 6, 0).is_err());
        assert!(BatchOrder::new(5, 5, 0).is_ok());
    }

    #[test]
    fn drops_the_incomplete_batch() {
        let mut b = BatchOrder::new(10, 3, 1).unwrap();
        assert_eq!(b.batches_per_epoch(), 3);
        assert_eq!(b.epoch_of(2), 0);
        assert_eq!(b.epoch_of(3), 1);
        let mut seen: Vec<usize> = (0..3).flat_map(|s| b.batch(s).to_vec()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 9);
        assert!(seen.iter().all(|&i| i < 10));
    }
}
