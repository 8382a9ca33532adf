//! Training-time data augmentation (`[train.augment]`): a random crop with
//! zero padding and a random horizontal flip, the CIFAR/Fashion-MNIST
//! augmentation of open_lth (`datasets/cifar10.py`: `RandomCrop(32,
//! padding=4)`, `RandomHorizontalFlip()`) and of Frankle et al. 2020.
//!
//! It is part of the data order: the transform of every example of batch
//! `step` is a pure function of `(data_seed, step)` (stream "augment"), so a
//! resumed run sees the same batches, and the two LMC children, which differ
//! in their data seed, differ in augmentation too (Frankle et al. 2020,
//! Sec. 2: "SGD noise" includes data augmentation).
//!
//! Padding uses the darkest value of the training data (a black pixel of
//! these image sets, whatever the preprocessing), as torchvision pads the raw
//! image with 0 before normalizing.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// `[train.augment]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// Pad each side by this many pixels, then crop back to the image size
    /// at a uniformly drawn offset (0 = no crop).
    #[serde(default)]
    pub crop_padding: usize,
    /// Mirror left-right with probability 1/2.
    #[serde(default)]
    pub horizontal_flip: bool,
}

impl Augment {
    /// Whether this changes nothing (the default).
    pub fn is_identity(&self) -> bool {
        *self == Augment::default()
    }

    /// Errors when the crop padding is larger than the image `(c, h, w)`.
    pub fn validate(&self, shape: [usize; 3]) -> Result<()> {
        let side = shape[1].min(shape[2]);
        if self.crop_padding > side {
            return Err(Error::config(
                "train.augment.crop_padding",
                format!("at most the image side ({}x{} images)", shape[1], shape[2]),
                self.crop_padding,
            ));
        }
        Ok(())
    }

    /// Augments the rows of `x` (`[n, c·h·w]`, each `[c, h, w]`) of batch
    /// `step` in place; `fill` is each channel's padding value (black: the
    /// zero pixel before preprocessing, as torchvision pads before normalizing).
    pub fn apply(&self, shape: [usize; 3], fill: &[f32], data_seed: u64, step: usize, x: &mut [f32]) {
        if self.is_identity() {
            return;
        }
        let [c, h, w] = shape;
        let dim = c * h * w;
        let p = self.crop_padding as isize;
        let mut rng = crate::rng::indexed(data_seed, "augment", step as u64);
        let mut src = vec![0.0f32; dim];
        for row in x.chunks_exact_mut(dim) {
            let (dy, dx) = if p > 0 {
                (rng.gen_range(-p..=p), rng.gen_range(-p..=p))
            } else {
                (0, 0)
            };
            let flip = self.horizontal_flip && rng.gen_bool(0.5);
            src.copy_from_slice(row);
            for ch in 0..c {
                let fill = fill[ch];
                let plane = &src[ch * h * w..][..h * w];
                let out = &mut row[ch * h * w..][..h * w];
                for y in 0..h {
                    let sy = y as isize + dy;
                    for xo in 0..w {
                        let xs = if flip { w - 1 - xo } else { xo };
                        let sx = xs as isize + dx;
                        out[y * w + xo] = if sy >= 0 && sy < h as isize && sx >= 0 && sx < w as isize {
                            plane[sy as usize * w + sx as usize]
                        } else {
                            fill
                        };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_changes_nothing_and_shifts_keep_pixels() {
        let shape = [1, 3, 3];
        let orig: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut x = orig.clone();
        Augment::default().apply(shape, &[-1.0], 0, 0, &mut x);
        assert_eq!(x, orig);
        // a flip only: every row reversed or not at all
        let a = Augment {
            crop_padding: 0,
            horizontal_flip: true,
        };
        let mut flipped = 0;
        for step in 0..20 {
            let mut x = orig.clone();
            a.apply(shape, &[-1.0], 7, step, &mut x);
            if x != orig {
                assert_eq!(x, vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0, 9.0, 8.0, 7.0]);
                flipped += 1;
            }
        }
        assert!(flipped > 3 && flipped < 17, "{flipped} of 20 flipped");
        // a crop: pixels are the original ones or the fill, and the same step repeats
        let a = Augment {
            crop_padding: 1,
            horizontal_flip: false,
        };
        let (mut x, mut y) = (orig.clone(), orig.clone());
        a.apply(shape, &[-1.0], 3, 5, &mut x);
        a.apply(shape, &[-1.0], 3, 5, &mut y);
        assert_eq!(x, y);
        assert!(x.iter().all(|v| *v == -1.0 || orig.contains(v)));
        assert!(a.validate([1, 3, 3]).is_ok() && a.validate([1, 3, 0]).is_err());
        let big = Augment {
            crop_padding: 4,
            horizontal_flip: false,
        };
        assert!(big
            .validate([1, 3, 3])
            .unwrap_err()
            .to_string()
            .contains("crop_padding"));
    }

    #[test]
    fn each_channel_is_padded_with_its_own_black() {
        let shape = [2, 2, 2];
        let orig = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let a = Augment {
            crop_padding: 2,
            horizontal_flip: false,
        };
        let mut padded = 0;
        for step in 0..20 {
            let mut x = orig.clone();
            a.apply(shape, &[-1.0, -2.0], 0, step, &mut x);
            assert!(x[..4].iter().all(|v| *v == -1.0 || orig[..4].contains(v)), "{x:?}");
            assert!(x[4..].iter().all(|v| *v == -2.0 || orig[4..].contains(v)), "{x:?}");
            padded += x.contains(&-2.0) as usize;
        }
        assert!(padded > 10, "{padded} of 20 crops reached the padding");
    }
}
