//! PHEW (Patil & Dovrolis 2021, "PHEW: constructing sparse networks that
//! learn fast and generalize well without training data", Sec. 3), as the
//! authors' code does it (ShreyasMalakarjunPatil/PHEW `Prune/phew_utils.py`,
//! `generate_probability`, `select_seed_unit`, `phew_masks`), data-free:
//!
//! - a forward walk from input unit `i` moves, layer by layer, to output
//!   unit `o` with probability `|W[o,i]| / Σ_o' |W[o',i]|` (over the unit's
//!   outgoing edges); a backward walk from output unit `o` moves to `i` with
//!   probability `|W[o,i]| / Σ_i' |W[o,i']|` (over its incoming edges); a unit
//!   whose weights are all zero moves uniformly. Probabilities come from θ0
//!   and never change (edges are drawn with replacement);
//! - walks alternate forward and backward, starting units taken round-robin
//!   (input units 0, 1, 2, ... for forward walks, output units for backward ones);
//! - every edge a walk traverses is kept; walks continue until the kept
//!   weights reach `round(density · total)`, one budget for the whole network.
//!
//! So every kept weight lies on a path from an input to an output: no unit
//! is kept without both an incoming and an outgoing kept weight. Because
//! walks are whole, the mask can keep up to `layers − 1` weights more than
//! the target (the authors' loop has the same overshoot). Differences: the
//! walks are seeded (the authors' are not), and this is implemented for
//! fully connected networks (the authors also walk conv kernels; here conv
//! nets get a clear error).

use rand::Rng as _;

use crate::models::Network;
use crate::params::{Array, Mask, ParamSet};
use crate::{Error, Result};

/// Cumulative transition probabilities: `cdf[u]` over the next units from unit `u`.
struct Walk {
    cdf: Vec<Vec<f64>>,
}

impl Walk {
    /// From rows of `|w|` (one row per unit, over the units it can move to).
    fn new(rows: impl Iterator<Item = Vec<f64>>) -> Self {
        Walk {
            cdf: rows
                .map(|r| {
                    let total: f64 = r.iter().sum();
                    let n = r.len() as f64;
                    let mut acc = 0.0;
                    r.iter()
                        .map(|&v| {
                            acc += if total > 0.0 { v / total } else { 1.0 / n };
                            acc
                        })
                        .collect()
                })
                .collect(),
        }
    }

    fn step(&self, from: usize, rng: &mut crate::rng::Rng) -> usize {
        let c = &self.cdf[from];
        let u: f64 = rng.gen::<f64>() * c.last().copied().unwrap_or(1.0);
        c.partition_point(|&x| x <= u).min(c.len() - 1)
    }
}

/// The PHEW mask of an MLP at `density` (fraction of all its weights kept).
pub fn mask(net: &Network, theta0: &ParamSet, density: f64, seed: u64) -> Result<Mask> {
    let Network::Mlp(m) = net else {
        return Err(Error::config(
            "pai.method",
            "phew on a fully connected network (conv kernels are not walked here)",
            net.describe(),
        ));
    };
    let names = m.prunable();
    let dims: Vec<(usize, usize)> = names
        .iter()
        .map(|k| theta0.get(k).map(|a| (a.shape[0], a.shape[1])))
        .collect::<Result<_>>()?;
    let total: usize = dims.iter().map(|(o, i)| o * i).sum();
    let target = ((density * total as f64).round() as usize).max(1);
    let mut fwd = Vec::new();
    let mut bwd = Vec::new();
    for (k, &(out, inp)) in names.iter().zip(&dims) {
        let w = &theta0.get(k)?.data;
        fwd.push(Walk::new(
            (0..inp).map(|i| (0..out).map(|o| w[o * inp + i].abs() as f64).collect()),
        ));
        bwd.push(Walk::new(
            (0..out).map(|o| w[o * inp..(o + 1) * inp].iter().map(|v| v.abs() as f64).collect()),
        ));
    }
    let mut kept = vec![vec![false; 0]; names.len()];
    for (l, &(o, i)) in dims.iter().enumerate() {
        kept[l] = vec![false; o * i];
    }
    let mut rng = crate::rng::stream(seed, "pai-phew");
    let (n_in, n_out) = (dims[0].1, dims[dims.len() - 1].0);
    let (mut next_in, mut next_out, mut count) = (0usize, 0usize, 0usize);
    let mut walks = 0usize;
    // Each walk can only add edges; a target beyond every reachable edge
    // (all of a layer's weights zero, say) would never be met.
    let max_walks = 1000 * target + 10_000;
    while count < target {
        if walks >= max_walks {
            return Err(Error::invalid(
                "PHEW walks",
                format!("{target} distinct weights reached within {max_walks} walks"),
                count,
            ));
        }
        if walks.is_multiple_of(2) {
            let mut u = next_in;
            next_in = (next_in + 1) % n_in;
            for (l, &(_, inp)) in dims.iter().enumerate() {
                let o = fwd[l].step(u, &mut rng);
                let e = &mut kept[l][o * inp + u];
                count += !*e as usize;
                *e = true;
                u = o;
            }
        } else {
            let mut u = next_out;
            next_out = (next_out + 1) % n_out;
            for (l, &(_, inp)) in dims.iter().enumerate().rev() {
                let i = bwd[l].step(u, &mut rng);
                let e = &mut kept[l][u * inp + i];
                count += !*e as usize;
                *e = true;
                u = i;
            }
        }
        walks += 1;
    }
    let mut out = ParamSet::new();
    for ((k, &(o, i)), kl) in names.iter().zip(&dims).zip(&kept) {
        out.insert(
            k.clone(),
            Array {
                shape: vec![o, i],
                data: kl.iter().map(|&b| b as u8 as f32).collect(),
            },
        );
    }
    Ok(Mask(out))
}
