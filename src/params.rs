//! Named parameter sets and masks.
//!
//! Parameters live in a sorted map from names (`fc1.weight`, `conv2.bias`, ...)
//! to dense row-major `f32` arrays. Masks, checkpoints, rewinding,
//! interpolation and Jacobian columns all key on these names, so every
//! operation here is a pure function over the map that checks names and shapes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::{Error, Result};

/// A dense row-major `f32` array with a shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Array {
    /// An array of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Array {
            shape: shape.to_vec(),
            data: vec![0.0; shape.iter().product()],
        }
    }

    /// An array filled with `v`.
    pub fn full(shape: &[usize], v: f32) -> Self {
        Array {
            shape: shape.to_vec(),
            data: vec![v; shape.iter().product()],
        }
    }

    /// Wraps `data`; errors if its length does not match `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::Shape {
                what: "array data".into(),
                expected: shape,
                got: vec![data.len()],
            });
        }
        Ok(Array { shape, data })
    }

    /// Errors unless this array has `shape` (`what` names it in the message).
    pub fn check_shape(&self, shape: &[usize], what: &str) -> Result<()> {
        if self.shape != shape {
            return Err(Error::Shape {
                what: what.into(),
                expected: shape.to_vec(),
                got: self.shape.clone(),
            });
        }
        Ok(())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the array has no element.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Copies into a candle tensor on `device`.
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_slice(&self.data, self.shape.as_slice(), device)?)
    }

    /// Copies a candle tensor (any device, converted to f32) into an array.
    pub fn from_tensor(t: &Tensor) -> Result<Self> {
        let t = t.to_dtype(candle_core::DType::F32)?;
        let shape = t.dims().to_vec();
        let data = t.flatten_all()?.to_vec1::<f32>()?;
        Ok(Array { shape, data })
    }
}

/// A sorted map of named parameter arrays (also used for gradients,
/// optimizer state, checkpoints and masks).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamSet(pub BTreeMap<String, Array>);

impl ParamSet {
    /// An empty set.
    pub fn new() -> Self {
        ParamSet(BTreeMap::new())
    }

    /// Inserts (or replaces) a named array.
    pub fn insert(&mut self, name: impl Into<String>, a: Array) {
        self.0.insert(name.into(), a);
    }

    /// The array called `name`, or an error naming it.
    pub fn get(&self, name: &str) -> Result<&Array> {
        self.0.get(name).ok_or_else(|| Error::Param {
            what: format!("no parameter named `{name}`"),
        })
    }

    /// Mutable access to the array called `name`.
    pub fn get_mut(&mut self, name: &str) -> Result<&mut Array> {
        self.0.get_mut(name).ok_or_else(|| Error::Param {
            what: format!("no parameter named `{name}`"),
        })
    }

    /// Names in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }

    /// Iterates over `(name, array)` in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Array)> {
        self.0.iter()
    }

    /// Total number of scalars.
    pub fn numel(&self) -> usize {
        self.0.values().map(|a| a.len()).sum()
    }

    /// Zeros with the same names and shapes.
    pub fn zeros_like(&self) -> ParamSet {
        ParamSet(
            self.0
                .iter()
                .map(|(k, a)| (k.clone(), Array::zeros(&a.shape)))
                .collect(),
        )
    }

    /// Errors unless `other` has exactly the same names and shapes.
    pub fn check_same_layout(&self, other: &ParamSet, what: &str) -> Result<()> {
        let a: Vec<_> = self.0.keys().collect();
        let b: Vec<_> = other.0.keys().collect();
        if a != b {
            return Err(Error::Param {
                what: format!("{what}: expected parameters {a:?}, got {b:?}"),
            });
        }
        for (k, x) in &self.0 {
            let y = &other.0[k];
            if x.shape != y.shape {
                return Err(Error::Shape {
                    what: format!("{what}: `{k}`"),
                    expected: x.shape.clone(),
                    got: y.shape.clone(),
                });
            }
        }
        Ok(())
    }

    /// Elementwise `f(self, other)` over matching names.
    pub fn zip_map(&self, other: &ParamSet, f: impl Fn(f32, f32) -> f32) -> Result<ParamSet> {
        self.check_same_layout(other, "zip")?;
        Ok(ParamSet(
            self.0
                .iter()
                .map(|(k, a)| {
                    let b = &other.0[k];
                    let data = a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect();
                    (
                        k.clone(),
                        Array {
                            shape: a.shape.clone(),
                            data,
                        },
                    )
                })
                .collect(),
        ))
    }

    /// `self - other`.
    pub fn sub(&self, other: &ParamSet) -> Result<ParamSet> {
        self.zip_map(other, |a, b| a - b)
    }

    /// Linear interpolation `(1 - alpha) * self + alpha * other`
    /// (Frankle et al. 2020's interpolated network), computed as
    /// `self + alpha * (other - self)` so that equal endpoints give exactly
    /// that point for every alpha. At `alpha = 0` and `alpha = 1` the
    /// endpoints are reproduced exactly.
    pub fn lerp(&self, other: &ParamSet, alpha: f32) -> Result<ParamSet> {
        if alpha == 0.0 {
            self.check_same_layout(other, "lerp")?;
            return Ok(self.clone());
        }
        if alpha == 1.0 {
            self.check_same_layout(other, "lerp")?;
            return Ok(other.clone());
        }
        self.zip_map(other, |a, b| a + alpha * (b - a))
    }

    /// Euclidean norm over all scalars (accumulated in f64).
    pub fn l2_norm(&self) -> f64 {
        self.0
            .values()
            .flat_map(|a| a.data.iter())
            .map(|&x| (x as f64) * (x as f64))
            .sum::<f64>()
            .sqrt()
    }

    /// Copies every array into a candle tensor on `device`.
    pub fn to_tensors(&self, device: &Device) -> Result<BTreeMap<String, Tensor>> {
        self.0
            .iter()
            .map(|(k, a)| Ok((k.clone(), a.to_tensor(device)?)))
            .collect()
    }

    /// Builds a set from candle tensors.
    pub fn from_tensors<'a>(ts: impl IntoIterator<Item = (&'a String, &'a Tensor)>) -> Result<Self> {
        let mut out = ParamSet::new();
        for (k, t) in ts {
            out.insert(k.clone(), Array::from_tensor(t)?);
        }
        Ok(out)
    }

    /// Writes the set as a safetensors file (names kept).
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let ts: HashMap<String, Tensor> = self.to_tensors(&Device::Cpu)?.into_iter().collect();
        // Serialized in memory and written atomically (an interrupted save
        // never leaves a truncated checkpoint behind) with std::fs::write,
        // which reports every write error (candle's save goes through a
        // buffered writer whose final flush error is lost on a full disk).
        let bytes = safetensors::tensor::serialize(ts.iter().map(|(k, t)| (k.as_str(), t)), None).map_err(|e| {
            Error::Write {
                path: path.to_path_buf(),
                what: e.to_string(),
            }
        })?;
        crate::paths::write_atomic(path, &bytes)
    }

    /// Reads a safetensors file written by [`ParamSet::save`].
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
            ));
        }
        let ts = candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| {
            Error::data(
                path.display().to_string(),
                format!("not a readable safetensors file: {e}"),
            )
        })?;
        let sorted: BTreeMap<String, Tensor> = ts.into_iter().collect();
        ParamSet::from_tensors(sorted.iter())
    }
}

/// A pruning mask: a 0/1 array for each prunable parameter. Parameters not in
/// the mask are never pruned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mask(pub ParamSet);

impl Mask {
    /// A mask keeping every weight of the named parameters.
    pub fn ones(params: &ParamSet, names: &[String]) -> Result<Mask> {
        let mut m = ParamSet::new();
        for n in names {
            m.insert(n.clone(), Array::full(&params.get(n)?.shape, 1.0));
        }
        Ok(Mask(m))
    }

    /// Checks that every entry is 0 or 1 and matches a parameter of `params` in shape.
    pub fn validate(&self, params: &ParamSet) -> Result<()> {
        for (k, m) in self.0.iter() {
            let p = params.0.get(k).ok_or_else(|| Error::Param {
                what: format!(
                    "mask entry `{k}` names no parameter (parameters: {:?})",
                    params.0.keys().collect::<Vec<_>>()
                ),
            })?;
            if p.shape != m.shape {
                return Err(Error::Shape {
                    what: format!("mask for `{k}`"),
                    expected: p.shape.clone(),
                    got: m.shape.clone(),
                });
            }
            if let Some(v) = m.data.iter().find(|&&v| v != 0.0 && v != 1.0) {
                return Err(Error::invalid(format!("mask value in `{k}`"), "0 or 1", v));
            }
        }
        Ok(())
    }

    /// Errors unless every entry is exactly 0 or 1.
    pub fn validate_binary(&self) -> Result<()> {
        for (k, m) in self.0.iter() {
            if let Some(v) = m.data.iter().find(|&&v| v != 0.0 && v != 1.0) {
                return Err(Error::invalid(format!("mask value in `{k}`"), "0 or 1", v));
            }
        }
        Ok(())
    }

    /// Sets the masked-out entries of `params` to the matching entries of
    /// `fill` (Zhou et al. 2019's "frozen at init" variant), in place.
    pub fn apply_fill(&self, params: &mut ParamSet, fill: &ParamSet) -> Result<()> {
        for (k, m) in self.0.iter() {
            let f = fill.get(k)?;
            let p = params.get_mut(k)?;
            if p.shape != m.shape || f.shape != m.shape {
                return Err(Error::Shape {
                    what: format!("mask / fill for `{k}`"),
                    expected: m.shape.clone(),
                    got: p.shape.clone(),
                });
            }
            for ((x, &b), &v) in p.data.iter_mut().zip(&m.data).zip(&f.data) {
                if b == 0.0 {
                    *x = v;
                }
            }
        }
        Ok(())
    }

    /// Zeroes the masked-out entries of `params` in place.
    pub fn apply(&self, params: &mut ParamSet) -> Result<()> {
        for (k, m) in self.0.iter() {
            let p = params.get_mut(k)?;
            if p.shape != m.shape {
                return Err(Error::Shape {
                    what: format!("mask for `{k}`"),
                    expected: p.shape.clone(),
                    got: m.shape.clone(),
                });
            }
            for (x, &b) in p.data.iter_mut().zip(&m.data) {
                if b == 0.0 {
                    *x = 0.0;
                }
            }
        }
        Ok(())
    }

    /// Number of kept (1) entries per masked parameter.
    pub fn kept(&self) -> BTreeMap<String, usize> {
        self.0
            .iter()
            .map(|(k, m)| (k.clone(), m.data.iter().filter(|&&v| v != 0.0).count()))
            .collect()
    }

    /// Fraction of masked-parameter weights kept.
    pub fn density(&self) -> f64 {
        let total = self.0.numel();
        if total == 0 {
            return 1.0;
        }
        self.kept().values().sum::<usize>() as f64 / total as f64
    }

    /// Writes the mask as safetensors.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.0.save(path)
    }

    /// Reads a mask and checks it is 0/1.
    pub fn load(path: &Path) -> Result<Mask> {
        let m = Mask(ParamSet::load(path)?);
        for (k, a) in m.0.iter() {
            if let Some(v) = a.data.iter().find(|&&v| v != 0.0 && v != 1.0) {
                return Err(Error::data(
                    path.display().to_string(),
                    format!("mask `{k}` has value {v}, expected 0 or 1"),
                ));
            }
        }
        Ok(m)
    }
}
