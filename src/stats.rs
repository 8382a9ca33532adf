//! Small statistics shared by every experiment: mean, spread, 95% t
//! intervals and least-squares fits (power law, exponential) with an interval
//! on the slope. Verdicts ([`crate::report::verdict`]) are stated from these.
//!
//! Slopes against a scale parameter (width, number of candidates) are fitted
//! by [`fit_power_law`]: ordinary least squares of `ln y` on `ln x` over every
//! independent observation (each width × seed is one point), with a 95%
//! Student-t confidence interval from the regression's standard error
//! (`n − 2` degrees of freedom). The residual variance pools the seed-to-seed
//! spread and any lack of fit. We use the t interval rather than a bootstrap
//! over seeds because with the 3-5 seeds a sweep affords, a percentile
//! bootstrap under-covers (it has only a handful of distinct resamples and
//! shrinks the variance by `(s − 1)/s`).

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::{Error, Result};

/// The confidence level of every interval the toolkit reports.
pub const CONFIDENCE: f64 = 0.95;

/// Arithmetic mean (`sum / n`; NaN when empty): the per-group aggregate of
/// every experiment's tables.
pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Smallest and largest value (`(+inf, −inf)` when empty; NaNs are skipped).
pub fn min_max(v: &[f64]) -> (f64, f64) {
    (
        v.iter().copied().fold(f64::INFINITY, f64::min),
        v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    )
}

/// Mean and sample standard deviation (0 for one value); `None` when empty
/// or when a value is not finite.
pub fn mean_sd(v: &[f64]) -> Option<(f64, f64)> {
    if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 {
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    Some((m, sd))
}

/// The band of a figure whose table gives mean ± sd: `(mean − sd, mean +
/// sd)` of `v` ([`mean_sd`]); `(NaN, NaN)` when there is none.
pub fn sd_band(v: &[f64]) -> (f64, f64) {
    mean_sd(v)
        .map(|(m, sd)| (m - sd, m + sd))
        .unwrap_or((f64::NAN, f64::NAN))
}

/// `"m ± sd"` of `v` times `scale` with `digits` decimals, or "–" when
/// [`mean_sd`] has none: the cell of every mean-over-seeds table.
pub fn mean_sd_text(v: &[f64], scale: f64, digits: usize) -> String {
    mean_sd(v)
        .map(|(m, sd)| format!("{:.*} ± {:.*}", digits, scale * m, digits, scale * sd))
        .unwrap_or_else(|| "–".into())
}

/// The two-sided 95% Student-t quantile with `dof` degrees of freedom.
pub fn t_quantile(dof: usize) -> Result<f64> {
    if dof == 0 {
        return Err(Error::invalid("degrees of freedom of a t interval", ">= 1", 0));
    }
    let t = StudentsT::new(0.0, 1.0, dof as f64).map_err(|e| Error::invalid("Student t distribution", "valid", e))?;
    Ok(t.inverse_cdf(0.5 + CONFIDENCE / 2.0))
}

/// A 95% t interval for the mean of `v`: `(mean, half_width)`; `None` with
/// fewer than 2 values or a non-finite value.
pub fn mean_ci(v: &[f64]) -> Option<(f64, f64)> {
    let (m, sd) = mean_sd(v)?;
    if v.len() < 2 {
        return None;
    }
    let t = t_quantile(v.len() - 1).ok()?;
    Some((m, t * sd / (v.len() as f64).sqrt()))
}

/// A fitted power law `y = e^a x^b` with its uncertainty.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerFit {
    /// Exponent `b` (the log-log slope).
    pub slope: f64,
    /// `a`, the intercept of `ln y`.
    pub intercept: f64,
    /// Standard error of the slope (0 when the points fit exactly).
    pub slope_se: f64,
    /// 95% confidence interval of the slope; `None` with only 2 points
    /// (no degrees of freedom left).
    pub ci: Option<(f64, f64)>,
    pub r_squared: f64,
    /// Observations used (x, y), in the order given.
    pub points: usize,
    /// Distinct x values among them.
    pub distinct_x: usize,
}

impl PowerFit {
    /// The fitted `y` at `x`.
    pub fn at(&self, x: f64) -> f64 {
        (self.intercept + self.slope * x.ln()).exp()
    }

    /// `-0.52 [95% CI -0.61, -0.43]` (or `(no CI: 2 points)`).
    pub fn describe(&self) -> String {
        match self.ci {
            Some((lo, hi)) => format!("{:+.3} [95% CI {:+.3}, {:+.3}]", self.slope, lo, hi),
            None => format!("{:+.3} (no CI: {} points)", self.slope, self.points),
        }
    }
}

/// Least squares of `ln y` on `ln x` over the observations; points with a
/// non-positive or non-finite `x` or `y` are dropped. Errors with fewer than 2
/// usable points or fewer than 2 distinct `x`.
pub fn fit_power_law(obs: &[(f64, f64)], quantity: &str) -> Result<PowerFit> {
    let pts: Vec<(f64, f64)> = obs
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0 && x.is_finite() && y.is_finite())
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    fit_line(pts, quantity)
}

/// Least squares of `ln y` on `x` (an exponential `y = e^a e^{b x}`; the
/// "slope" is the rate `b` per unit of x), with the same interval as
/// [`fit_power_law`]; [`PowerFit::at`] does not apply to it.
pub fn fit_exponential(obs: &[(f64, f64)], quantity: &str) -> Result<PowerFit> {
    let pts: Vec<(f64, f64)> = obs
        .iter()
        .filter(|(x, y)| *y > 0.0 && x.is_finite() && y.is_finite())
        .map(|(x, y)| (*x, y.ln()))
        .collect();
    fit_line(pts, quantity)
}

/// Ordinary least squares of `pts.1` on `pts.0` with a 95% t interval on the slope.
fn fit_line(pts: Vec<(f64, f64)>, quantity: &str) -> Result<PowerFit> {
    if pts.len() < 2 {
        return Err(Error::invalid(
            format!("log-log fit of {quantity}"),
            "at least 2 positive, finite points",
            pts.len(),
        ));
    }
    let mut xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    if xs.len() < 2 {
        return Err(Error::invalid(
            format!("log-log fit of {quantity}"),
            "at least 2 distinct x values",
            1,
        ));
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let syy: f64 = pts.iter().map(|p| (p.1 - my).powi(2)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let sse: f64 = pts.iter().map(|p| (p.1 - intercept - slope * p.0).powi(2)).sum();
    let r_squared = if syy > 0.0 { 1.0 - sse / syy } else { 1.0 };
    let dof = pts.len() - 2;
    let (slope_se, ci) = if dof == 0 {
        (0.0, None)
    } else {
        let se = (sse / dof as f64 / sxx).sqrt();
        let t = t_quantile(dof)?;
        (se, Some((slope - t * se, slope + t * se)))
    };
    Ok(PowerFit {
        slope,
        intercept,
        slope_se,
        ci,
        r_squared,
        points: pts.len(),
        distinct_x: xs.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_tables() {
        // Two-sided 95%: 12.706 (1 dof), 2.776 (4), 2.228 (10), 1.960 (inf).
        assert!((t_quantile(1).unwrap() - 12.706).abs() < 1e-3);
        assert!((t_quantile(4).unwrap() - 2.776).abs() < 1e-3);
        assert!((t_quantile(10).unwrap() - 2.228).abs() < 1e-3);
        assert!((t_quantile(100_000).unwrap() - 1.960).abs() < 1e-3);
        assert!(t_quantile(0).is_err());
    }

    #[test]
    fn exact_power_law_has_zero_width_ci() {
        let obs: Vec<(f64, f64)> = [64.0, 128.0, 256.0]
            .iter()
            .map(|&x: &f64| (x, 2.0 * x.powf(-0.7)))
            .collect();
        let f = fit_power_law(&obs, "q").unwrap();
        assert!((f.slope + 0.7).abs() < 1e-12 && (f.r_squared - 1.0).abs() < 1e-12);
        let (lo, hi) = f.ci.unwrap();
        assert!((hi - lo).abs() < 1e-9);
        assert!((f.at(64.0) - 2.0 * 64f64.powf(-0.7)).abs() < 1e-12);
    }

    #[test]
    fn mean_sd_and_ci() {
        let (m, sd) = mean_sd(&[1.0, 2.0, 3.0]).unwrap();
        assert!((m - 2.0).abs() < 1e-12 && (sd - 1.0).abs() < 1e-12);
        let (m, h) = mean_ci(&[1.0, 2.0, 3.0]).unwrap();
        assert!((m - 2.0).abs() < 1e-12 && (h - 4.303 / 3f64.sqrt()).abs() < 1e-3);
        assert!(mean_sd(&[]).is_none() && mean_sd(&[f64::NAN]).is_none() && mean_ci(&[1.0]).is_none());
    }
}
