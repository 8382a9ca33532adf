//! Verdicts you can quote: the statistics behind them and one form for every
//! experiment's closing lines.
//!
//! A [`Claim`] states what a theory predicts (with its source), what was
//! measured (with its spread and the regime it covers) and a three-valued
//! [`Verdict`]: consistent, contradicts, or inconclusive. Every experiment's
//! `report.md` ends with its claims rendered by [`claims_markdown`], and its
//! last printed lines by [`claims_text`].
//!
//! The statistics behind them (means, spreads, intervals, log-log fits)
//! are in [`crate::stats`].

use serde::{Deserialize, Serialize};

use crate::stats::PowerFit;

pub mod protocol;

/// The three outcomes of checking a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The measurement is within what the theory allows.
    Consistent,
    /// The measurement lies outside what the theory allows, beyond its uncertainty.
    Contradicts,
    /// The data cannot decide (too few points, too wide an interval, or outside the theory's regime).
    Inconclusive,
}

impl Verdict {
    /// `consistent`, `contradicts` or `inconclusive`.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Consistent => "consistent",
            Verdict::Contradicts => "contradicts",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// One checked claim.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// What the theory predicts, e.g. "RMSE(full, linear) = O(width^-1/2)".
    pub claim: String,
    /// Where the prediction comes from (paper, theorem or figure).
    pub source: String,
    /// What was measured: numbers with spread, seeds and regime.
    pub measured: String,
    pub verdict: Verdict,
    /// Why this verdict, and for "inconclusive" what would decide it.
    pub reason: String,
}

impl Claim {
    /// One line: `[verdict] claim (source): measured. reason`.
    pub fn line(&self) -> String {
        format!(
            "[{}] {} ({}): {}. {}",
            self.verdict.word(),
            self.claim,
            self.source,
            self.measured,
            self.reason
        )
    }
}

/// The claims as a markdown section (`## Verdicts` and one bullet each).
pub fn claims_markdown(claims: &[Claim]) -> String {
    let mut s = String::from("## Verdicts\n\n");
    if claims.is_empty() {
        s.push_str("No claim could be checked.\n");
    }
    for c in claims {
        s.push_str(&format!(
            "- **{}**: {} ({}).\n  Measured: {}.\n  {}\n",
            c.verdict.word(),
            c.claim,
            c.source,
            c.measured,
            c.reason
        ));
    }
    s
}

/// The claims as plain lines for the terminal.
pub fn claims_text(claims: &[Claim]) -> String {
    let mut s = String::from("verdicts:\n");
    for c in claims {
        s.push_str("  ");
        s.push_str(&c.line());
        s.push('\n');
    }
    s
}

/// The rules for checking an upper bound `y = O(x^bound)` against a fitted slope.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoundRule {
    /// The bound's exponent (e.g. -0.5).
    pub bound: f64,
    /// Fewest distinct x values in the theory's regime for a conclusive verdict.
    pub min_points: usize,
    /// Widest CI half-width for a conclusive verdict.
    pub max_half_width: f64,
}

impl BoundRule {
    /// The default rule: at least 3 distinct x, and a half-width of at most
    /// 0.5 (the distance between the two reference rates n^-1/2 and n^-1 that
    /// the NTK literature argues about; a wider interval cannot tell them apart).
    pub fn new(bound: f64) -> Self {
        BoundRule {
            bound,
            min_points: 3,
            max_half_width: 0.5,
        }
    }

    /// The verdict on an upper bound and why: consistent when the CI reaches
    /// the bound's exponent or below, contradicts when it lies wholly above,
    /// inconclusive with too few distinct x or too wide (or no) CI.
    pub fn check(&self, fit: Option<&PowerFit>) -> (Verdict, String) {
        let Some(fit) = fit else {
            return (
                Verdict::Inconclusive,
                format!(
                    "no fit: fewer than 2 usable points in the regime (need at least {})",
                    self.min_points
                ),
            );
        };
        if fit.distinct_x < self.min_points {
            return (
                Verdict::Inconclusive,
                format!(
                    "only {} distinct values in the regime, at least {} needed",
                    fit.distinct_x, self.min_points
                ),
            );
        }
        let Some((lo, hi)) = fit.ci else {
            return (
                Verdict::Inconclusive,
                "no confidence interval (one observation per point and exactly 2 points)".into(),
            );
        };
        let half = (hi - lo) / 2.0;
        if half > self.max_half_width {
            return (
                Verdict::Inconclusive,
                format!(
                    "the 95% CI is too wide to decide (half-width {half:.2} > {:.2}); more seeds or a wider range of scales would narrow it",
                    self.max_half_width
                ),
            );
        }
        if lo <= self.bound {
            (
                Verdict::Consistent,
                format!("the 95% CI reaches the bound's exponent {:+.2} or below", self.bound),
            )
        } else {
            (
                Verdict::Contradicts,
                format!(
                    "the whole 95% CI lies above the bound's exponent {:+.2}: the quantity falls more slowly than the bound allows",
                    self.bound
                ),
            )
        }
    }
}

/// Which of the reference exponents the fitted slope's CI contains, in words
/// (`refs`: label and exponent).
pub fn favoured_rate(fit: Option<&PowerFit>, refs: &[(&str, f64)]) -> String {
    let Some(fit) = fit else {
        return "no fit".into();
    };
    let Some((lo, hi)) = fit.ci else {
        let nearest = refs
            .iter()
            .min_by(|a, b| (a.1 - fit.slope).abs().total_cmp(&(b.1 - fit.slope).abs()));
        return match nearest {
            Some((l, _)) => format!("nearest reference rate {l} (no CI)"),
            None => "no reference rate".into(),
        };
    };
    let inside: Vec<&str> = refs
        .iter()
        .filter(|(_, e)| lo <= *e && *e <= hi)
        .map(|(l, _)| *l)
        .collect();
    match inside.len() {
        0 => {
            let nearest = refs
                .iter()
                .min_by(|a, b| (a.1 - fit.slope).abs().total_cmp(&(b.1 - fit.slope).abs()));
            match nearest {
                Some((l, _)) => format!("the CI contains none of the reference rates; nearest {l}"),
                None => "no reference rate".into(),
            }
        }
        1 => format!("the data favour {} (the only reference rate inside the CI)", inside[0]),
        _ => format!(
            "the CI contains {}: the data cannot tell them apart",
            inside.join(" and ")
        ),
    }
}

/// A per-seed statistic's mean and 95% t interval (from
/// [`crate::stats::mean_ci`]) as text, scaled by `scale` with `unit`
/// appended: "2.50 pp, 95% CI [1.00, 4.00], 3 seeds"; "– (n seeds)" without one.
/// The verdict on "the mean is above 0" from a 95% interval `(mean,
/// half-width)`: consistent when the interval lies above 0, contradicts when
/// it lies below 0, inconclusive when it contains 0 or is missing (fewer
/// than 2 replicates).
pub fn above_zero(ci: Option<(f64, f64)>) -> (Verdict, String) {
    match ci {
        None => (Verdict::Inconclusive, "fewer than 2 seeds give no interval".into()),
        Some((m, h)) if m - h > 0.0 => (Verdict::Consistent, "the interval lies above 0".into()),
        Some((m, h)) if m + h < 0.0 => (Verdict::Contradicts, "the interval lies below 0".into()),
        Some(_) => (Verdict::Inconclusive, "the interval contains 0".into()),
    }
}

pub fn ci_text(ci: Option<(f64, f64)>, n: usize, scale: f64, unit: &str) -> String {
    ci.map(|(m, h)| {
        format!(
            "{:.2}{unit}, 95% CI [{:.2}, {:.2}], {n} seeds",
            scale * m,
            scale * (m - h),
            scale * (m + h)
        )
    })
    .unwrap_or_else(|| format!("– ({n} seeds)"))
}
