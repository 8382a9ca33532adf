//! Verdicts you can quote: the statistics behind them and one form for every
//! experiment's closing lines.
//!
//! A [`Claim`] states what a theory predicts (with its source), what was
//! measured (with its spread and the regime it covers) and a three-valued
//! [`Verdict`]: consistent, contradicts, or inconclusive. Every claim is
//! declared and decided by the one protocol in [`protocol`]. Every
//! experiment's `report.md` ends with its claims rendered by
//! [`claims_markdown`], and its last printed lines by [`claims_text`].
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
