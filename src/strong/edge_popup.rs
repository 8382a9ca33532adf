//! Edge-popup (Ramanujan et al. 2020, Algorithm 1): learn which edges of a
//! network with fixed random weights to keep. Every weight has a score; the
//! forward pass uses the weights whose |score| is in the top `keep` fraction
//! of their layer; the straight-through estimator updates every score with
//! `∂L/∂s = ∂L/∂w_eff · w` as if the mask were the identity. Weights never change.
//!
//! Weights are Kaiming-uniform (`U[−b, b]`, `b = sqrt(6 / fan_in)`) or
//! signed constants (`±sqrt(2 / fan_in)`, random signs), scaled by
//! `1/sqrt(keep)` so activations keep their scale (the "scaled" variant of
//! the paper); biases are zero.
//!
//! Scores start as in the authors' code (allenai/hidden-networks,
//! `simple_initial_scores` ... `nn.init.kaiming_uniform_(self.scores, a=math.sqrt(5))`
//! in `utils/conv_type.py` `SubnetConv`): `U[−1/sqrt(fan_in), 1/sqrt(fan_in)]`
//! (the gain `sqrt(2 / (1 + a²))` with `a = √5` is `sqrt(1/3)`). Only the
//! scores' ranking within a layer matters for the mask, but their scale sets
//! how fast SGD reorders them, so it changes results at a fixed learning rate.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::models::{Mlp, MlpWorkspace};
use crate::params::{Array, ParamSet};
use crate::train::{Batch, Loss, Trainable};
use crate::{Error, Result};

/// How the edge scores start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ScoreInit {
    /// `U[−1/sqrt(fan_in), 1/sqrt(fan_in)]`: kaiming_uniform with `a = √5`, as in hidden-networks.
    #[default]
    KaimingUniformA5,
    /// `U[−sqrt(6/fan_in), sqrt(6/fan_in)]`: kaiming_uniform with `a = 0` (this crate's earlier default).
    KaimingUniform,
}

/// The fixed random weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightInit {
    KaimingUniform,
    SignedConstant,
    /// `N(0, 2 / fan_in)`: biprop's `init: kaiming_normal` (chrundle/biprop
    /// `configs/smallscale/conv4/conv4_kn_unsigned.yml`, with `scale_fan`).
    KaimingNormal,
}

/// An MLP with frozen random weights whose trainable parameters are edge scores.
pub struct EdgePopup {
    mlp: Mlp,
    weights: ParamSet,
    keep: f64,
    eff: ParamSet,
    egrads: ParamSet,
    ws: MlpWorkspace,
    dout: Vec<f32>,
    loss: Loss,
    /// biprop: kept weights enter as `α · sign(W)`, see [`EdgePopup::binarized`].
    binary: bool,
    /// Weight-agnostic search: the shared values w, see [`EdgePopup::weight_agnostic`].
    shared: Vec<f32>,
    /// `w · sign(W) ⊙ M` for one shared value (weight-agnostic search).
    scaled: ParamSet,
}

impl EdgePopup {
    /// Random weights for `mlp` (seed stream "edge-popup-weights") and the
    /// initial scores ([`ScoreInit::KaimingUniformA5`], stream "edge-popup-scores").
    pub fn new(mlp: Mlp, init: WeightInit, keep: f64, loss: Loss, seed: u64) -> Result<(Self, ParamSet)> {
        Self::with_score_init(mlp, init, keep, loss, seed, ScoreInit::default())
    }

    /// [`EdgePopup::new`] with a chosen score initialization.
    pub fn with_score_init(
        mlp: Mlp,
        init: WeightInit,
        keep: f64,
        loss: Loss,
        seed: u64,
        score_init: ScoreInit,
    ) -> Result<(Self, ParamSet)> {
        if !(keep > 0.0 && keep <= 1.0) {
            return Err(Error::invalid("edge-popup keep fraction", "a value in (0, 1]", keep));
        }
        let mut rng = crate::rng::stream(seed, "edge-popup-weights");
        let mut srng = crate::rng::stream(seed, "edge-popup-scores");
        let mut weights = ParamSet::new();
        let mut scores = ParamSet::new();
        let scale = (1.0 / keep).sqrt() as f32;
        for (name, shape) in mlp.param_shapes() {
            let n: usize = shape.iter().product();
            if name.ends_with(".weight") {
                let fan_in = shape[1] as f32;
                let b = (6.0 / fan_in).sqrt();
                let sb = match score_init {
                    ScoreInit::KaimingUniformA5 => (1.0 / fan_in).sqrt(),
                    ScoreInit::KaimingUniform => b,
                };
                let data = match init {
                    WeightInit::KaimingUniform => (0..n).map(|_| scale * rng.gen_range(-b..b)).collect(),
                    WeightInit::SignedConstant => {
                        let c = scale * (2.0 / fan_in).sqrt();
                        (0..n).map(|_| if rng.gen_bool(0.5) { c } else { -c }).collect()
                    }
                    WeightInit::KaimingNormal => {
                        let sd = scale * (2.0 / fan_in).sqrt();
                        (0..n)
                            .map(|_| sd * rng.sample::<f32, _>(rand_distr::StandardNormal))
                            .collect()
                    }
                };
                weights.insert(
                    name.clone(),
                    Array {
                        shape: shape.clone(),
                        data,
                    },
                );
                scores.insert(
                    name,
                    Array {
                        shape,
                        data: (0..n).map(|_| srng.gen_range(-sb..sb)).collect(),
                    },
                );
            } else {
                weights.insert(name, Array::zeros(&shape));
            }
        }
        let eff = weights.clone();
        let egrads = weights.zeros_like();
        Ok((
            EdgePopup {
                mlp,
                weights,
                keep,
                eff,
                egrads,
                ws: MlpWorkspace::default(),
                dout: Vec::new(),
                loss,
                binary: false,
                shared: Vec::new(),
                scaled: ParamSet::new(),
            },
            scores,
        ))
    }

    /// biprop (Diffenderfer & Kailkhura 2021, Sec. 3, Algorithm 1; chrundle/biprop
    /// `utils/conv_type.py` `GetQuantnet_binary` and `SubnetConv.forward`):
    /// each kept weight enters as `α · sign(W)`, with one gain per layer
    /// `α = Σ |W| M / Σ M`, the mean magnitude of the kept weights (no
    /// gradient flows through α). The scores' straight-through gradient is
    /// the authors' `g · |W|` times `sign(W)` from the product, i.e. the same
    /// `∂L/∂w_eff · W` as edge-popup's (times sign(s), as both take |s|).
    pub fn binarized(mut self) -> Self {
        self.binary = true;
        self
    }

    /// Weight-agnostic mask search (Gaier & Ha 2019, Sec. 3: a network is
    /// judged by its loss over a series of shared weight values; here the
    /// topology search is edge-popup's): every kept edge takes one shared
    /// value `w · sign(W)`, and the training loss is the mean over `values`
    /// of the loss at each w. The scores' straight-through gradient is
    /// edge-popup's with `w · sign(W)` in place of W, averaged over w.
    /// Predictions average the outputs over w. Errors on an empty list or a
    /// non-finite or zero value.
    pub fn weight_agnostic(mut self, values: Vec<f32>) -> Result<Self> {
        if values.is_empty() || values.iter().any(|w| !w.is_finite() || *w == 0.0) {
            return Err(Error::invalid(
                "shared weight values",
                "a non-empty list of finite, non-zero values",
                format!("{values:?}"),
            ));
        }
        self.shared = values;
        self.binary = false;
        Ok(self)
    }

    /// The weights the network computes with at `scores`: `W ⊙ M`, or
    /// `α · sign(W) ⊙ M` when [`EdgePopup::binarized`]; biases zero.
    pub fn effective_weights(&mut self, scores: &ParamSet) -> Result<&ParamSet> {
        self.effective(scores)?;
        Ok(&self.eff)
    }

    /// The fixed random weights.
    pub fn weights(&self) -> &ParamSet {
        &self.weights
    }

    /// The top-`keep` mask of each layer's |scores| (ties broken by position).
    pub fn mask(&self, scores: &ParamSet) -> Result<ParamSet> {
        let mut m = ParamSet::new();
        for (k, s) in scores.iter() {
            let n = s.len();
            let keep = ((self.keep * n as f64).round() as usize).clamp(1, n);
            let mut idx: Vec<usize> = (0..n).collect();
            // descending |score|; position breaks ties
            idx.select_nth_unstable_by(keep - 1, |&a, &b| {
                s.data[b].abs().total_cmp(&s.data[a].abs()).then(a.cmp(&b))
            });
            let mut data = vec![0.0f32; n];
            for &i in &idx[..keep] {
                data[i] = 1.0;
            }
            m.insert(
                k.clone(),
                Array {
                    shape: s.shape.clone(),
                    data,
                },
            );
        }
        Ok(m)
    }

    fn effective(&mut self, scores: &ParamSet) -> Result<()> {
        let mask = self.mask(scores)?;
        for (k, m) in mask.iter() {
            let w = self.weights.get(k)?;
            let e = self.eff.get_mut(k)?;
            if !self.shared.is_empty() {
                for ((x, &wv), &b) in e.data.iter_mut().zip(&w.data).zip(&m.data) {
                    *x = if b != 0.0 { wv.signum() } else { 0.0 };
                }
            } else if self.binary {
                let (sum, kept) = w
                    .data
                    .iter()
                    .zip(&m.data)
                    .filter(|(_, &b)| b != 0.0)
                    .fold((0.0f64, 0usize), |(s, c), (&wv, _)| (s + wv.abs() as f64, c + 1));
                let alpha = (sum / kept.max(1) as f64) as f32;
                for ((x, &wv), &b) in e.data.iter_mut().zip(&w.data).zip(&m.data) {
                    *x = if b != 0.0 { alpha * wv.signum() } else { 0.0 };
                }
            } else {
                for ((x, &wv), &b) in e.data.iter_mut().zip(&w.data).zip(&m.data) {
                    *x = wv * b;
                }
            }
        }
        Ok(())
    }
}

impl EdgePopup {
    /// `scaled = shared[i] · eff` (eff holds `sign(W) ⊙ M`, zero biases).
    fn scale_shared(&mut self, i: usize) -> Result<()> {
        let w = self.shared[i];
        if self.scaled.0.len() != self.eff.0.len() {
            self.scaled = self.eff.clone();
        }
        for (k, e) in self.eff.iter() {
            let d = self.scaled.get_mut(k)?;
            for (x, &v) in d.data.iter_mut().zip(&e.data) {
                *x = w * v;
            }
        }
        Ok(())
    }

    /// The mean loss over the shared values and its straight-through score gradient.
    fn shared_loss_and_grad(&mut self, scores: &ParamSet, batch: &Batch, grads: &mut ParamSet) -> Result<f32> {
        self.effective(scores)?;
        let n = batch.len();
        let c = self.mlp.output_dim;
        let k = self.shared.len() as f32;
        for g in grads.0.values_mut() {
            g.data.fill(0.0);
        }
        let mut total = 0.0;
        for i in 0..self.shared.len() {
            self.scale_shared(i)?;
            self.mlp.forward_fast(&self.scaled, &batch.x, n, &mut self.ws)?;
            self.dout.resize(n * c, 0.0);
            total += self
                .loss
                .value_and_grad(self.ws.output(), &batch.t, &batch.y, c, &mut self.dout)
                / k;
            self.mlp
                .backward_fast(&self.scaled, &batch.x, &self.dout, &mut self.ws, &mut self.egrads)?;
            for (name, g) in grads.0.iter_mut() {
                let (ge, s) = (self.egrads.get(name)?, scores.get(name)?);
                // The edge's shared weight w · sign(W), on every edge, kept or not (the STE).
                let w = self.shared[i] / k;
                let wv = &self.weights.get(name)?.data;
                for (((gs, &d), &sv), &raw) in g.data.iter_mut().zip(&ge.data).zip(&s.data).zip(wv) {
                    *gs += d * w * raw.signum() * sv.signum();
                }
            }
        }
        Ok(total)
    }
}

impl Trainable for EdgePopup {
    fn loss(&self) -> Loss {
        self.loss
    }

    fn outputs(&self) -> usize {
        self.mlp.output_dim
    }

    fn loss_and_grad(&mut self, scores: &ParamSet, batch: &Batch, grads: &mut ParamSet) -> Result<f32> {
        if !self.shared.is_empty() {
            return self.shared_loss_and_grad(scores, batch, grads);
        }
        self.effective(scores)?;
        let n = batch.len();
        let c = self.mlp.output_dim;
        self.mlp.forward_fast(&self.eff, &batch.x, n, &mut self.ws)?;
        self.dout.resize(n * c, 0.0);
        let l = self
            .loss
            .value_and_grad(self.ws.output(), &batch.t, &batch.y, c, &mut self.dout);
        self.mlp
            .backward_fast(&self.eff, &batch.x, &self.dout, &mut self.ws, &mut self.egrads)?;
        for (k, g) in grads.0.iter_mut() {
            let (ge, w, s) = (self.egrads.get(k)?, self.weights.get(k)?, scores.get(k)?);
            for (((gs, &d), &wv), &sv) in g.data.iter_mut().zip(&ge.data).zip(&w.data).zip(&s.data) {
                *gs = d * wv * sv.signum();
            }
        }
        Ok(l)
    }

    fn predict(&mut self, scores: &ParamSet, x: &[f32], n: usize, out: &mut Vec<f32>) -> Result<()> {
        self.effective(scores)?;
        if !self.shared.is_empty() {
            out.clear();
            out.resize(n * self.mlp.output_dim, 0.0);
            let k = self.shared.len() as f32;
            for i in 0..self.shared.len() {
                self.scale_shared(i)?;
                self.mlp.forward_fast(&self.scaled, x, n, &mut self.ws)?;
                for (o, &v) in out.iter_mut().zip(self.ws.output()) {
                    *o += v / k;
                }
            }
            return Ok(());
        }
        self.mlp.forward_fast(&self.eff, x, n, &mut self.ws)?;
        out.clear();
        out.extend_from_slice(self.ws.output());
        Ok(())
    }
}
