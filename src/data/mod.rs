//! Data sets: the embedded UCI digits, IDX (MNIST-format) files, synthetic
//! teacher-student data, and the seeded mini-batch order.
//!
//! Every data set is held in memory as a [`Dataset`]: a row-major `[n, dim]`
//! matrix of `f32` features (`dim = channels * height * width`), `n` integer
//! class labels, and optionally `[n, target_dim]` regression targets (when
//! absent, the targets are the one-hot encoding of the labels).
//!
//! All random choices (splits, subsets, batch order) come from named
//! [`crate::rng`] streams, so each can be varied and reproduced independently.

pub mod augment;
pub mod batch;
pub mod cifar;
pub mod digits;
pub mod idx;
pub mod modular;
pub mod numpy;
pub mod synthetic;

pub use batch::BatchOrder;

use crate::{Error, Result};
use rand::seq::SliceRandom;

/// An in-memory data set of `n` examples.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// A short name (e.g. `"digits"`, `"fashion-mnist"`).
    pub name: String,
    /// Features, `[n, dim]` row-major, with `dim = c * h * w`; each row is one
    /// example stored channel-major (`[c, h, w]`).
    pub x: Vec<f32>,
    /// Class labels, `[n]`, each `< num_classes`.
    pub labels: Vec<u32>,
    /// Optional regression targets, `[n, target_dim]` row-major. `None` means
    /// the targets are the one-hot encoding of `labels`.
    pub targets: Option<Vec<f32>>,
    /// Width of one target row; equals `num_classes` when `targets` is `None`.
    pub target_dim: usize,
    /// `(channels, height, width)` of one example.
    pub shape: [usize; 3],
    /// Number of classes.
    pub num_classes: usize,
}

impl Dataset {
    /// Number of examples `n`.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the data set has no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Each image zero-padded, centered, to `side x side` (an odd
    /// remainder goes to the bottom and right).
    pub fn pad_to(self, side: usize) -> Result<Dataset> {
        let [c, h, w] = self.shape;
        if h > side || w > side {
            return Err(Error::config(
                "data.pad_to",
                format!("at least the image size ({h}x{w}, {})", self.name),
                side,
            ));
        }
        if h == side && w == side {
            return Ok(self);
        }
        let (top, left) = ((side - h) / 2, (side - w) / 2);
        let n = self.len();
        let mut x = vec![0.0f32; n * c * side * side];
        for (src, dst) in self.x.chunks_exact(c * h * w).zip(x.chunks_exact_mut(c * side * side)) {
            for ch in 0..c {
                for r in 0..h {
                    let from = &src[(ch * h + r) * w..][..w];
                    dst[(ch * side + top + r) * side + left..][..w].copy_from_slice(from);
                }
            }
        }
        Ok(Dataset {
            x,
            shape: [c, side, side],
            ..self
        })
    }

    /// Each channel's smallest value over all examples.
    pub fn channel_min(&self) -> Vec<f32> {
        let [c, h, w] = self.shape;
        let mut out = vec![f32::INFINITY; c];
        for row in self.x.chunks_exact(c * h * w) {
            for (ch, plane) in row.chunks_exact(h * w).enumerate() {
                out[ch] = plane.iter().copied().fold(out[ch], f32::min);
            }
        }
        out
    }

    /// Features per example, `c * h * w`.
    pub fn dim(&self) -> usize {
        self.shape[0] * self.shape[1] * self.shape[2]
    }

    /// The examples at `indices` (in that order; repeats allowed), as a new
    /// data set with the same name, shape and classes.
    ///
    /// Errors if an index is `>= len()`.
    pub fn subset(&self, indices: &[usize]) -> Result<Dataset> {
        let n = self.len();
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(Error::invalid(
                format!("index into data set `{}`", self.name),
                format!("an index < {n} (the number of examples)"),
                bad,
            ));
        }
        Ok(self.select(indices))
    }

    /// The first `n` examples. Errors if `n == 0` or `n > len()`.
    pub fn take(&self, n: usize) -> Result<Dataset> {
        if n == 0 || n > self.len() {
            return Err(Error::invalid(
                format!("number of examples to take from `{}`", self.name),
                format!("1..={}", self.len()),
                n,
            ));
        }
        let idx: Vec<usize> = (0..n).collect();
        Ok(self.select(&idx))
    }

    /// Writes the feature rows `indices` into `x_out` (`[k, dim]`, `k =
    /// indices.len()`), their target rows (regression targets, or one-hot
    /// labels) into `t_out` (`[k, target_dim]`) and their labels into `y_out`
    /// (`[k]`). The buffers are cleared and refilled, so they can be reused
    /// across batches without reallocating.
    ///
    /// # Panics
    /// If an index is `>= len()` (indices normally come from [`BatchOrder`],
    /// which only yields valid ones).
    pub fn gather(&self, indices: &[usize], x_out: &mut Vec<f32>, t_out: &mut Vec<f32>, y_out: &mut Vec<u32>) {
        let dim = self.dim();
        let td = self.target_dim;
        x_out.clear();
        t_out.clear();
        y_out.clear();
        x_out.reserve(indices.len() * dim);
        t_out.reserve(indices.len() * td);
        y_out.reserve(indices.len());
        for &i in indices {
            x_out.extend_from_slice(&self.x[i * dim..(i + 1) * dim]);
            y_out.push(self.labels[i]);
            let start = t_out.len();
            t_out.resize(start + td, 0.0);
            self.target_row(i, &mut t_out[start..]);
        }
    }

    /// Writes the target row of example `i` into `out` (`[target_dim]`): the
    /// regression targets if present, else the one-hot encoding of the label.
    ///
    /// # Panics
    /// If `i >= len()` or `out.len() != target_dim`.
    pub fn target_row(&self, i: usize, out: &mut [f32]) {
        let td = self.target_dim;
        assert_eq!(out.len(), td, "target_row: output has the wrong length");
        match &self.targets {
            Some(t) => out.copy_from_slice(&t[i * td..(i + 1) * td]),
            None => {
                out.fill(0.0);
                let label = self.labels[i] as usize;
                if label < td {
                    out[label] = 1.0;
                }
            }
        }
    }

    /// Multiplies every feature by `factor` (targets are left alone).
    pub fn scale(&mut self, factor: f32) {
        for v in &mut self.x {
            *v *= factor;
        }
    }

    /// Adds `shift` to every feature and then divides by `divisor`.
    fn affine(&mut self, shift: f32, divisor: f32) {
        for v in &mut self.x {
            *v = (*v + shift) / divisor;
        }
    }

    /// Per channel `(mean, std)` over every pixel of every example (the std
    /// floored at `1e-6 · max`, `max` the largest training value).
    fn channel_stats(&self, max: f32) -> Vec<(f32, f32)> {
        let [c, h, w] = self.shape;
        let plane = h * w;
        let mut out = Vec::with_capacity(c);
        for ch in 0..c {
            let (mut sum, mut sq, mut count) = (0.0f64, 0.0f64, 0usize);
            for row in self.x.chunks_exact((c * plane).max(1)) {
                for &v in &row[ch * plane..(ch + 1) * plane] {
                    sum += v as f64;
                    sq += (v as f64) * (v as f64);
                    count += 1;
                }
            }
            let n = count.max(1) as f64;
            let mean = sum / n;
            let std = (sq / n - mean * mean).max(0.0).sqrt().max(1e-6 * max as f64);
            out.push((mean as f32, std as f32));
        }
        out
    }

    /// `(x − mean_c) / std_c` for each channel `c`.
    fn affine_channels(&mut self, stats: &[(f32, f32)]) {
        let [c, h, w] = self.shape;
        let plane = h * w;
        for row in self.x.chunks_exact_mut((c * plane).max(1)) {
            for (ch, &(m, s)) in stats.iter().enumerate().take(c) {
                for v in &mut row[ch * plane..(ch + 1) * plane] {
                    *v = (*v - m) / s;
                }
            }
        }
    }

    /// The examples at `indices`, which must all be in range.
    fn select(&self, indices: &[usize]) -> Dataset {
        let dim = self.dim();
        let td = self.target_dim;
        let mut x = Vec::with_capacity(indices.len() * dim);
        let mut labels = Vec::with_capacity(indices.len());
        let mut targets = self.targets.as_ref().map(|_| Vec::with_capacity(indices.len() * td));
        for &i in indices {
            x.extend_from_slice(&self.x[i * dim..(i + 1) * dim]);
            labels.push(self.labels[i]);
            if let (Some(out), Some(t)) = (targets.as_mut(), self.targets.as_ref()) {
                out.extend_from_slice(&t[i * td..(i + 1) * td]);
            }
        }
        Dataset {
            name: self.name.clone(),
            x,
            labels,
            targets,
            target_dim: self.target_dim,
            shape: self.shape,
            num_classes: self.num_classes,
        }
    }
}

/// Train/test (and optional validation) data.
#[derive(Clone, Debug)]
pub struct Split {
    /// Training examples.
    pub train: Dataset,
    /// Held-out test examples.
    pub test: Dataset,
    /// Optional validation examples, carved out of the training set by
    /// [`Split::with_validation`].
    pub validation: Option<Dataset>,
}

impl Split {
    /// Moves `n` examples chosen by `seed` (stream `"validation-split"`) out of
    /// train into validation. Both parts keep the original relative order of
    /// the training examples.
    ///
    /// `n == 0` leaves the split unchanged (no validation set). Errors if
    /// `n >= train.len()` or if the split already has a validation set.
    pub fn with_validation(self, n: usize, seed: u64) -> Result<Split> {
        if n == 0 {
            return Ok(self);
        }
        let len = self.train.len();
        if n >= len {
            return Err(Error::invalid(
                "validation size",
                format!("fewer than the {len} training examples"),
                n,
            ));
        }
        if self.validation.is_some() {
            return Err(Error::invalid(
                "validation split",
                "a split without a validation set",
                "a split that already has one",
            ));
        }
        let mut perm: Vec<usize> = (0..len).collect();
        perm.shuffle(&mut crate::rng::stream(seed, "validation-split"));
        let mut val_idx = perm[..n].to_vec();
        let mut train_idx = perm[n..].to_vec();
        val_idx.sort_unstable();
        train_idx.sort_unstable();
        let validation = self.train.select(&val_idx);
        let train = self.train.select(&train_idx);
        Ok(Split {
            train,
            test: self.test,
            validation: Some(validation),
        })
    }

    /// Keeps a seeded random subset (stream `"train-subset"`) of `n` training
    /// examples, in their original relative order. Subsets for the same seed
    /// are nested: the subset of size `m < n` is contained in that of size `n`.
    ///
    /// `n == len` keeps all examples in their original order; errors if
    /// `n == 0` or `n > train.len()`.
    pub fn with_train_size(self, n: usize, seed: u64) -> Result<Split> {
        let len = self.train.len();
        if n == 0 || n > len {
            return Err(Error::invalid(
                "training set size",
                format!("1..={len} (the available training examples)"),
                n,
            ));
        }
        if n == len {
            return Ok(self);
        }
        let mut perm: Vec<usize> = (0..len).collect();
        perm.shuffle(&mut crate::rng::stream(seed, "train-subset"));
        let mut keep = perm[..n].to_vec();
        keep.sort_unstable();
        let train = self.train.select(&keep);
        Ok(Split { train, ..self })
    }

    /// Label noise as in Nakkiran et al. 2019 (Sec. 3, "label noise p"): a
    /// seeded random `round(p · n)` of the training examples get a label drawn
    /// uniformly from the other classes. Validation and test labels stay
    /// clean. Errors on p outside [0, 1), on data with regression targets,
    /// and on fewer than 2 classes.
    pub fn with_label_noise(mut self, p: f64, seed: u64) -> Result<Split> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::config("data.label_noise", "a fraction in [0, 1)", p));
        }
        if self.train.targets.is_some() || self.train.num_classes < 2 {
            return Err(Error::config(
                "data.label_noise",
                "classification data with 2 classes or more",
                &self.train.name,
            ));
        }
        let n = self.train.len();
        let flips = (p * n as f64).round() as usize;
        let mut rng = crate::rng::stream(seed, "label-noise");
        let mut perm: Vec<usize> = (0..n).collect();
        perm.shuffle(&mut rng);
        let c = self.train.num_classes as u32;
        for &i in &perm[..flips] {
            // A uniform draw among the c − 1 other classes.
            let r = rand::Rng::gen_range(&mut rng, 0..c - 1);
            let y = self.train.labels[i];
            self.train.labels[i] = if r >= y { r + 1 } else { r };
        }
        Ok(self)
    }

    /// Every image padded with zeros, centered, to `side x side` (as
    /// Fashion-MNIST's 28x28 to CIFAR's 32x32: two pixels each side).
    /// Errors if an image is larger than that; an image of that size is unchanged.
    pub fn pad_to(self, side: usize) -> Result<Split> {
        Ok(Split {
            train: self.train.pad_to(side)?,
            test: self.test.pad_to(side)?,
            validation: self.validation.map(|v| v.pad_to(side)).transpose()?,
        })
    }

    /// Keeps the first `n` test examples; errors if `n == 0` or `n > test.len()`.
    pub fn with_test_size(self, n: usize) -> Result<Split> {
        let test = self.test.take(n)?;
        Ok(Split { test, ..self })
    }

    /// Applies a preprocessing fitted on the training set only to all parts
    /// (train, test and validation), so no test statistics leak into training.
    /// See [`Preprocess`] for the transforms.
    pub fn preprocess(mut self, p: Preprocess) -> Split {
        if p == Preprocess::None {
            return self;
        }
        let max = self
            .train
            .x
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f32::NEG_INFINITY, f32::max);
        let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
        if p == Preprocess::StandardizeChannels {
            let stats = self.train.channel_stats(max);
            self.train.affine_channels(&stats);
            self.test.affine_channels(&stats);
            if let Some(v) = self.validation.as_mut() {
                v.affine_channels(&stats);
            }
            return self;
        }
        let (shift, divisor) = match p {
            Preprocess::None | Preprocess::StandardizeChannels => (0.0, 1.0),
            Preprocess::Scale => (0.0, max),
            Preprocess::Standardize => {
                // Statistics in raw units; standardizing after scaling by 1/max
                // gives the same result, with the floor applied in [0, 1] units.
                let count = self.train.x.len().max(1) as f64;
                let mean = self.train.x.iter().map(|&v| v as f64).sum::<f64>() / count;
                let var = self
                    .train
                    .x
                    .iter()
                    .map(|&v| {
                        let d = v as f64 - mean;
                        d * d
                    })
                    .sum::<f64>()
                    / count;
                let std = var.sqrt().max(1e-6 * max as f64);
                (-mean as f32, std as f32)
            }
        };
        self.train.affine(shift, divisor);
        self.test.affine(shift, divisor);
        if let Some(v) = self.validation.as_mut() {
            v.affine(shift, divisor);
        }
        self
    }
}

/// Input preprocessing, fitted on the training set only.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preprocess {
    /// Raw values (0..16 for digits, 0..255 for IDX files).
    None,
    /// Divide by the largest training feature value, mapping the data to
    /// `[0, 1]` (the factor is 1 if that maximum is not positive).
    Scale,
    /// Scale to `[0, 1]` as for [`Preprocess::Scale`], then subtract the
    /// global mean and divide by the global standard deviation, both taken
    /// over all pixels of all training examples (one scalar each, like the
    /// usual MNIST normalization with 0.1307 / 0.3081, not per-feature). The
    /// standard deviation is floored at 1e-6.
    Standardize,
    /// Per channel: subtract each channel's mean and divide by its standard
    /// deviation, both over all pixels of that channel in the training set
    /// (colour images; the usual CIFAR normalization, as open_lth's
    /// `Normalize` with per-channel statistics). Floored as `standardize`.
    StandardizeChannels,
}
