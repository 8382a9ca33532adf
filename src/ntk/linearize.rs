//! The linearized network (Lee et al. 2019, Eq. 5):
//! `f_lin(x; θ) = f(x; θ0) + J(x; θ0) (θ − θ0)`.
//!
//! Its outputs come from one forward pass at θ0 plus a forward-mode JVP with
//! tangent `θ − θ0`; its gradient is `J(x; θ0)^T ∂L/∂f`, one backward pass
//! (VJP) at θ0. It implements [`Trainable`], so it trains with the same
//! optimizer, init and data order as the full network.

use crate::models::{Mlp, MlpWorkspace};
use crate::params::ParamSet;
use crate::train::{Batch, Loss, Trainable};
use crate::{Error, Result};

/// An MLP linearized around `theta0`.
pub struct Linearized {
    mlp: Mlp,
    theta0: ParamSet,
    loss: Loss,
    ws: MlpWorkspace,
    tangent: ParamSet,
    out: Vec<f32>,
    dout: Vec<f32>,
}

impl Linearized {
    /// Linearizes `mlp` around `theta0`.
    pub fn new(mlp: Mlp, theta0: ParamSet, loss: Loss) -> Result<Self> {
        mlp.check_params(&theta0)?;
        let tangent = theta0.zeros_like();
        Ok(Linearized {
            mlp,
            theta0,
            loss,
            ws: MlpWorkspace::default(),
            tangent,
            out: Vec::new(),
            dout: Vec::new(),
        })
    }

    /// The expansion point θ0.
    pub fn theta0(&self) -> &ParamSet {
        &self.theta0
    }

    /// `f_lin(x; θ)` into `self.out`.
    fn outputs(&mut self, params: &ParamSet, x: &[f32], n: usize) -> Result<()> {
        for (k, t) in self.tangent.0.iter_mut() {
            let p = params.get(k)?;
            let p0 = self.theta0.get(k)?;
            if p.shape != p0.shape {
                return Err(Error::Shape {
                    what: format!("linearized parameter `{k}`"),
                    expected: p0.shape.clone(),
                    got: p.shape.clone(),
                });
            }
            for ((d, &a), &b) in t.data.iter_mut().zip(&p.data).zip(&p0.data) {
                *d = a - b;
            }
        }
        self.mlp.forward_fast(&self.theta0, x, n, &mut self.ws)?;
        self.mlp.jvp_fast(&self.theta0, &self.tangent, x, &mut self.ws)?;
        self.out.clear();
        let f0 = self.ws.output();
        let jd = self.ws.zdot.last().map(|v| v.as_slice()).unwrap_or(&[]);
        self.out.extend(f0.iter().zip(jd).map(|(a, b)| a + b));
        Ok(())
    }
}

impl Trainable for Linearized {
    fn loss(&self) -> Loss {
        self.loss
    }

    fn outputs(&self) -> usize {
        self.mlp.output_dim
    }

    fn loss_and_grad(&mut self, params: &ParamSet, batch: &Batch, grads: &mut ParamSet) -> Result<f32> {
        let n = batch.len();
        let c = self.mlp.output_dim;
        self.outputs(params, &batch.x, n)?;
        self.dout.resize(n * c, 0.0);
        let l = self
            .loss
            .value_and_grad(&self.out, &batch.t, &batch.y, c, &mut self.dout);
        // The workspace still holds the forward pass at θ0: backward gives J(θ0)^T dL/df.
        self.mlp
            .backward_fast(&self.theta0, &batch.x, &self.dout, &mut self.ws, grads)?;
        Ok(l)
    }

    fn predict(&mut self, params: &ParamSet, x: &[f32], n: usize, out: &mut Vec<f32>) -> Result<()> {
        self.outputs(params, x, n)?;
        out.clear();
        out.extend_from_slice(&self.out);
        Ok(())
    }
}
