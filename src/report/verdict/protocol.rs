//! Declared claims: one protocol that every verdict goes through, so that
//! "consistent", "contradicts" and "inconclusive" mean the same thing in
//! every experiment.
//!
//! 1. **Declared before the data.** A [`Declared`] claim is data: what it
//!    says, whose claim it is ([`Origin`]: the paper's, with the section or
//!    figure, or this project's hypothesis) and its [`Hypothesis`] with the
//!    margin or exponent fixed in code or config, never from the measurements.
//! 2. **A test that can fail both ways.** Each hypothesis kind has two
//!    one-sided tests, one whose rejection supports the claim and one whose
//!    rejection contradicts it, over independent replicates:
//!    - [`Hypothesis::Difference`]: a one-sample t test on paired differences
//!      (treatment − control, one per replicate). Consistent when the interval
//!      excludes 0 on the claimed side, contradicts when it excludes 0 on the
//!      other side.
//!    - [`Hypothesis::Equivalence`]: two one-sided tests (TOST, Schuirmann
//!      1987) against a declared margin δ. Consistent when the interval lies
//!      inside (−δ, δ), contradicts only when it lies wholly outside.
//!    - [`Hypothesis::NonInferior`]: "matching" in the lottery-ticket sense
//!      (no worse than the reference by more than δ, better allowed): a
//!      one-sided test of the paired difference against −δ each way.
//!    - [`Hypothesis::RateBound`]: `y = O(x^a)` with `a < 0`, from the
//!      log-log slope over **per-x means** (so curvature between scales is
//!      lack of fit that widens the interval; replicates at one x are not
//!      independent points). Consistent needs evidence of decay (the
//!      interval's upper end below 0) that does not exclude `a`; contradicts
//!      needs the interval wholly above `a`. A wide interval is inconclusive.
//!    - [`Hypothesis::Slope`]: the slope of the per-x mean `ln y` on `ln x`
//!      or on `x` (an exponential rate) is on a declared side of a declared
//!      value; the interval decides both ways, as for a difference.
//!    - [`Hypothesis::Peak`]: a feature at a location fixed before the data
//!      (a declared width, or a threshold measured on a held-out seed): the
//!      value there exceeds both neighbours (an intersection-union test, each
//!      side a paired difference). Its absence contradicts only when the
//!      design could have seen it (the caller says so) and a peak of the
//!      declared size is excluded on a side (Bonferroni over the two sides).
//! 3. **Multiplicity.** A family of claims (one experiment's) is decided by
//!    Holm's step-down procedure (Holm 1979), separately for each direction
//!    of error, so the chance of any false "consistent" in the family, and of
//!    any false "contradicts", is at most α each.
//! 4. **Replicates.** A replicate whose value is not finite (a diverged
//!    seed) is dropped whole and reported; values on a grid (accuracies on
//!    n test examples, steps on an evaluation grid) carry their resolution,
//!    whose rounding variance `res²/12` is added to the sample variance, so
//!    identical quantized replicates never give a zero-width interval.
//! 5. **Inconclusive says what would decide**: the number of replicates at
//!    the observed spread that would make the interval decide. A claim the
//!    design cannot test ([`Evidence::Untestable`]) is inconclusive and says
//!    what would make it testable; it still counts in the family.
//!
//! The false-decision rates of every kind are measured by simulation in the
//! tests (`calibration_*`): at the boundary of each hypothesis, with few
//! replicates, curvature, quantized values and diverged replicates.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::{Claim, Verdict};

/// The default family-wise error rate of each direction.
pub const ALPHA: f64 = 0.05;

/// The margin of "matching" (accuracy may fall short of the reference by
/// less than this, as a fraction: 1 percentage point), declared before the
/// data for every lottery-ticket experiment. The papers define matching
/// without a number ("commensurate", "comparable", "nearly the same") or as
/// within about one standard deviation of their dense runs; a standard
/// deviation estimated from the runs under test would make the margin depend
/// on the data, so this project fixes one value in advance, several times the
/// init-to-init spread of dense LeNet-300-100 here (about 0.3 points). Each
/// experiment's constant names the paper's phrase it reads this way.
pub const MATCHING_MARGIN: f64 = 0.01;

/// Whose claim a verdict is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The paper's claim, with the citation and the section or figure where
    /// the paper makes it.
    Paper(String),
    /// A hypothesis of this project (e.g. a prediction that combines two
    /// papers), with what motivates it.
    Project(String),
}

impl Origin {
    /// "the paper's claim: …" or "this project's hypothesis: …".
    pub fn label(&self) -> String {
        match self {
            Origin::Paper(c) => format!("the paper's claim: {c}"),
            Origin::Project(w) => format!("this project's hypothesis: {w}"),
        }
    }
}

/// The side of zero a difference is claimed to be on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Greater,
    Less,
}

/// What a claim says, with its margin or exponent fixed before the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Hypothesis {
    /// The mean paired difference is on `side` of 0.
    Difference { side: Side },
    /// The mean paired difference is within `(-margin, margin)`.
    Equivalence { margin: f64 },
    /// The mean paired difference (treatment − reference) is above
    /// `-margin`: the treatment is no worse than the reference by more than
    /// the margin, and may be better ("matching" in the lottery-ticket
    /// sense). Consistent when the interval lies above `-margin`,
    /// contradicts when it lies wholly below.
    NonInferior { margin: f64 },
    /// `y = O(x^exponent)`, `exponent < 0`: `y` decays at least that fast.
    RateBound { exponent: f64 },
    /// The value at the declared location exceeds each neighbour
    /// (consistent: both sides' intervals above 0). Contradicts only when a
    /// peak of at least `margin` is excluded on a side, so a true peak lower
    /// than the margin is never read as "no peak".
    Peak { margin: f64 },
    /// The slope of the mean `ln y` on `ln x` (`log_x`) or on `x` (an
    /// exponential rate) is on `side` of `null`: e.g. exponential decay,
    /// `ln y` falling in `x` (`side: Less, null: 0, log_x: false`).
    Slope { side: Side, null: f64, log_x: bool },
}

/// A claim declared before the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Declared {
    /// The claim in words.
    pub claim: String,
    pub origin: Origin,
    pub hypothesis: Hypothesis,
    /// The unit of the measured values, for the text (e.g. "pp").
    pub unit: String,
    /// Values are multiplied by this in the text (e.g. 100 for fractions shown in pp).
    pub scale: f64,
}

impl Declared {
    /// The paper's claim (`cite`: the paper with the section or figure).
    pub fn paper(claim: impl Into<String>, cite: impl Into<String>, hypothesis: Hypothesis) -> Self {
        Declared {
            claim: claim.into(),
            origin: Origin::Paper(cite.into()),
            hypothesis,
            unit: String::new(),
            scale: 1.0,
        }
    }

    /// This project's hypothesis (`why`: what motivates it).
    pub fn project(claim: impl Into<String>, why: impl Into<String>, hypothesis: Hypothesis) -> Self {
        Declared {
            origin: Origin::Project(why.into()),
            ..Declared::paper(claim, "", hypothesis)
        }
    }

    /// Values shown multiplied by `scale` with `unit` appended (e.g. fractions as " pp": 100).
    pub fn shown_in(mut self, unit: impl Into<String>, scale: f64) -> Self {
        self.unit = unit.into();
        self.scale = scale;
        self
    }
}

/// One claim of a family with its evidence and what the report adds to its
/// measurement (the context: per-density means, the regime, …).
pub struct Item {
    pub declared: Declared,
    pub evidence: Evidence,
    pub context: String,
}

impl Item {
    pub fn new(declared: Declared, evidence: Evidence, context: impl Into<String>) -> Self {
        Item {
            declared,
            evidence,
            context: context.into(),
        }
    }
}

/// Decides an experiment's family of claims together ([`decide`] at
/// [`ALPHA`]) and renders each as a [`Claim`], its context appended to the
/// measurement.
pub fn decide_family(items: Vec<Item>) -> Vec<Claim> {
    let contexts: Vec<String> = items.iter().map(|i| i.context.clone()).collect();
    let family: Vec<(Declared, Evidence)> = items.into_iter().map(|i| (i.declared, i.evidence)).collect();
    decide(&family, ALPHA)
        .into_iter()
        .zip(contexts)
        .map(|(d, ctx)| {
            let mut c = d.claim();
            if !ctx.is_empty() {
                c.measured = format!("{}; {ctx}", c.measured);
            }
            c
        })
        .collect()
}

/// The measurements a claim is tested on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// One paired difference per independent replicate; `resolution` is the
    /// grid step of the two measured values each difference is taken
    /// between (their two roundings add `2·res²/12` to the variance; 0 for
    /// continuous values).
    Paired { values: Vec<f64>, resolution: f64 },
    /// Observations `(x, y)`, several per x allowed (replicates); the fit
    /// uses the mean of `ln y` at each x.
    Curve { points: Vec<(f64, f64)> },
    /// Paired differences (value at the peak − left neighbour) and (peak −
    /// right neighbour), and whether the design could have seen a peak (the
    /// neighbours bracket the location where it is expected).
    Peak {
        left: Vec<f64>,
        right: Vec<f64>,
        resolution: f64,
        could_see: bool,
    },
    /// The design cannot test the claim (a control was not run, the regime
    /// was not reached): inconclusive, and `why` says what would make it
    /// testable. It still counts in the family (declared before the data).
    Untestable { why: String },
}

/// The two one-sided p-values of a claim and what to print with them.
#[derive(Clone, Debug, PartialEq)]
pub struct Test {
    /// Small when the data support the claim.
    pub p_consistent: f64,
    /// Small when the data contradict the claim.
    pub p_contradicts: f64,
    /// The estimate (mean difference, or slope).
    pub estimate: f64,
    /// Standard error and degrees of freedom of the estimate (`None`: no
    /// interval can be formed).
    pub se_dof: Option<(f64, usize)>,
    /// Independent replicates (or distinct x for a curve) used.
    pub n: usize,
    /// Replicates (or x) dropped because a value was not finite.
    pub dropped: usize,
}

/// One decided claim.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub declared: Declared,
    pub verdict: Verdict,
    /// The estimate and its two-sided interval at `1 − 2·alpha_tested`
    /// (each end a one-sided bound at the level the claim was tested at).
    pub estimate: f64,
    pub interval: Option<(f64, f64)>,
    /// The family's α, its size, and the Holm-adjusted level this claim was tested at.
    pub alpha: f64,
    pub family: usize,
    pub alpha_tested: f64,
    pub n: usize,
    pub dropped: usize,
    /// Why this verdict, and for "inconclusive" what would decide it.
    pub reason: String,
}

fn student(dof: usize) -> StudentsT {
    StudentsT::new(0.0, 1.0, dof.max(1) as f64).expect("dof >= 1 is a valid Student t")
}

/// P(T >= t) for a t with `dof` degrees of freedom (t may be infinite).
fn upper_tail(t: f64, dof: usize) -> f64 {
    if t.is_nan() {
        return 1.0;
    }
    if t == f64::INFINITY {
        return 0.0;
    }
    if t == f64::NEG_INFINITY {
        return 1.0;
    }
    1.0 - student(dof).cdf(t)
}

/// The one-sided quantile `t_{1-a}` with `dof` degrees of freedom.
fn t_upper(a: f64, dof: usize) -> f64 {
    student(dof).inverse_cdf(1.0 - a)
}

/// Mean, standard error and dof of finite differences with a resolution
/// floor (two roundings of step `resolution` per difference); also how many
/// were dropped.
fn mean_se(values: &[f64], resolution: f64) -> (Option<(f64, f64, usize)>, usize, usize) {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let dropped = values.len() - v.len();
    if v.len() < 2 {
        return (None, v.len(), dropped);
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0) + resolution * resolution / 6.0;
    (Some((m, (var / n).sqrt(), v.len() - 1)), v.len(), dropped)
}

/// `P(estimate would be this far above `null` if the truth were `null`)`.
fn p_above(est: f64, se: f64, dof: usize, null: f64) -> f64 {
    if se == 0.0 {
        return if est > null { 0.0 } else { 1.0 };
    }
    upper_tail((est - null) / se, dof)
}

fn p_below(est: f64, se: f64, dof: usize, null: f64) -> f64 {
    p_above(-est, se, dof, -null)
}

/// The two one-sided p-values of `h` on `e`.
pub fn test(h: &Hypothesis, e: &Evidence) -> Test {
    let none = |n: usize, dropped: usize, estimate: f64| Test {
        p_consistent: 1.0,
        p_contradicts: 1.0,
        estimate,
        se_dof: None,
        n,
        dropped,
    };
    match (h, e) {
        (
            Hypothesis::Difference { .. } | Hypothesis::Equivalence { .. } | Hypothesis::NonInferior { .. },
            Evidence::Paired { values, resolution },
        ) => {
            let (ms, n, dropped) = mean_se(values, *resolution);
            let Some((m, se, dof)) = ms else {
                return none(n, dropped, f64::NAN);
            };
            let (pc, px) = match h {
                Hypothesis::Difference { side } => {
                    let (up, down) = (p_above(m, se, dof, 0.0), p_below(m, se, dof, 0.0));
                    match side {
                        Side::Greater => (up, down),
                        Side::Less => (down, up),
                    }
                }
                Hypothesis::Equivalence { margin: d } => (
                    // TOST: both "mean > -d" and "mean < d" must be shown.
                    p_above(m, se, dof, -d).max(p_below(m, se, dof, *d)),
                    // Wholly outside: "mean > d" or "mean < -d" (Bonferroni over the two).
                    (2.0 * p_above(m, se, dof, *d).min(p_below(m, se, dof, -d))).min(1.0),
                ),
                Hypothesis::NonInferior { margin: d } => (p_above(m, se, dof, -d), p_below(m, se, dof, -d)),
                _ => unreachable!("matched above"),
            };
            Test {
                p_consistent: pc,
                p_contradicts: px,
                estimate: m,
                se_dof: Some((se, dof)),
                n,
                dropped,
            }
        }
        (Hypothesis::RateBound { exponent }, Evidence::Curve { points }) => {
            let (fit, nx, dropped) = slope_over_means(points, true);
            let Some((b, se, dof)) = fit else {
                return none(nx, dropped, f64::NAN);
            };
            Test {
                // Decay: the slope is below 0.
                p_consistent: p_below(b, se, dof, 0.0),
                // Slower than the bound: the slope is above the exponent.
                p_contradicts: p_above(b, se, dof, *exponent),
                estimate: b,
                se_dof: Some((se, dof)),
                n: nx,
                dropped,
            }
        }
        (Hypothesis::Slope { side, null, log_x }, Evidence::Curve { points }) => {
            let (fit, nx, dropped) = slope_over_means(points, *log_x);
            let Some((b, se, dof)) = fit else {
                return none(nx, dropped, f64::NAN);
            };
            let (up, down) = (p_above(b, se, dof, *null), p_below(b, se, dof, *null));
            let (pc, px) = match side {
                Side::Greater => (up, down),
                Side::Less => (down, up),
            };
            Test {
                p_consistent: pc,
                p_contradicts: px,
                estimate: b,
                se_dof: Some((se, dof)),
                n: nx,
                dropped,
            }
        }
        (
            Hypothesis::Peak { margin },
            Evidence::Peak {
                left,
                right,
                resolution,
                could_see,
            },
        ) => {
            let (l, nl, dl) = mean_se(left, *resolution);
            let (r, nr, dr) = mean_se(right, *resolution);
            let (Some((ml, sl, fl)), Some((mr, sr, fr))) = (l, r) else {
                return none(nl.min(nr), dl.max(dr), f64::NAN);
            };
            // Intersection-union: a peak needs both sides above 0.
            let pc = p_above(ml, sl, fl, 0.0).max(p_above(mr, sr, fr, 0.0));
            // No peak of the declared size on some side, only if the design could see one.
            let px = if *could_see {
                (2.0 * p_below(ml, sl, fl, *margin).min(p_below(mr, sr, fr, *margin))).min(1.0)
            } else {
                1.0
            };
            // The smaller side is the peak's height.
            let (est, se, dof) = if ml <= mr { (ml, sl, fl) } else { (mr, sr, fr) };
            Test {
                p_consistent: pc,
                p_contradicts: px,
                estimate: est,
                se_dof: Some((se, dof)),
                n: nl.min(nr),
                dropped: dl.max(dr),
            }
        }
        _ => none(0, 0, f64::NAN),
    }
}

/// Least squares of the mean `ln y` at each x on `ln x` (`log_x`) or on
/// `x`: slope, its standard error and dof (`n_x − 2`); x values with any
/// non-finite or non-positive `y` (a diverged replicate) are dropped whole.
fn slope_over_means(points: &[(f64, f64)], log_x: bool) -> (Option<(f64, f64, usize)>, usize, usize) {
    let mut xs: Vec<f64> = points
        .iter()
        .map(|p| p.0)
        .filter(|x| x.is_finite() && (*x > 0.0 || !log_x))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let mut means = Vec::new();
    let mut dropped = 0;
    for &x in &xs {
        let ys: Vec<f64> = points.iter().filter(|p| p.0 == x).map(|p| p.1).collect();
        if ys.iter().any(|y| !(y.is_finite() && *y > 0.0)) {
            dropped += 1;
            continue;
        }
        let lx = if log_x { x.ln() } else { x };
        means.push((lx, ys.iter().map(|y| y.ln()).sum::<f64>() / ys.len() as f64));
    }
    let k = means.len();
    if k < 3 {
        return (None, k, dropped);
    }
    let n = k as f64;
    let mx = means.iter().map(|p| p.0).sum::<f64>() / n;
    let my = means.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = means.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = means.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let b = sxy / sxx;
    let a = my - b * mx;
    let sse: f64 = means.iter().map(|p| (p.1 - a - b * p.0).powi(2)).sum();
    let se = (sse / (n - 2.0) / sxx).sqrt();
    (Some((b, se, k - 2)), k, dropped)
}

/// Holm's step-down procedure over the p-values `ps` at family level
/// `alpha`: for each index, whether it is rejected and the level its p-value
/// was (or would have been) compared with.
fn holm(ps: &[f64], alpha: f64) -> Vec<(bool, f64)> {
    let m = ps.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| ps[a].total_cmp(&ps[b]));
    let mut out = vec![(false, alpha / m.max(1) as f64); m];
    let mut going = true;
    for (rank, &i) in order.iter().enumerate() {
        let level = alpha / (m - rank) as f64;
        let reject = going && ps[i] <= level;
        going = reject;
        out[i] = (reject, level);
    }
    out
}

/// Decides a family of declared claims together at family-wise level
/// `alpha` for each direction of error (Holm over the family's "consistent"
/// p-values, and separately over its "contradicts" p-values; a claim shown
/// both ways, possible only for a rate bound, reads as contradicts).
pub fn decide(family: &[(Declared, Evidence)], alpha: f64) -> Vec<Decision> {
    let tests: Vec<Test> = family.iter().map(|(d, e)| test(&d.hypothesis, e)).collect();
    let cons = holm(&tests.iter().map(|t| t.p_consistent).collect::<Vec<_>>(), alpha);
    let contra = holm(&tests.iter().map(|t| t.p_contradicts).collect::<Vec<_>>(), alpha);
    family
        .iter()
        .zip(&tests)
        .zip(cons.iter().zip(&contra))
        .map(|(((d, e), t), (&(c_ok, c_level), &(x_ok, x_level)))| {
            // A rate bound's "consistent" also needs its printed interval
            // to reach the exponent (not only the stricter contradicts test
            // to fail).
            let reaches = !matches!(d.hypothesis, Hypothesis::RateBound { .. }) || t.p_contradicts > c_level;
            let verdict = if x_ok {
                Verdict::Contradicts
            } else if c_ok && reaches {
                Verdict::Consistent
            } else {
                Verdict::Inconclusive
            };
            // Inconclusive: the stricter of the two levels, so the printed
            // interval contains what neither test could exclude.
            let alpha_tested = match verdict {
                Verdict::Contradicts => x_level,
                Verdict::Consistent => c_level,
                Verdict::Inconclusive => c_level.min(x_level),
            };
            let interval = t.se_dof.map(|(se, dof)| {
                let q = t_upper(alpha_tested, dof);
                (t.estimate - q * se, t.estimate + q * se)
            });
            let reason = reason(d, e, t, verdict, alpha_tested);
            Decision {
                declared: d.clone(),
                verdict,
                estimate: t.estimate,
                interval,
                alpha,
                family: family.len(),
                alpha_tested,
                n: t.n,
                dropped: t.dropped,
                reason,
            }
        })
        .collect()
}

/// Replicates needed for the interval at the observed spread to exclude
/// `boundary` if the estimate stays where it is (`None`: it already does,
/// or the estimate sits on the boundary).
fn replicates_to_decide(t: &Test, boundary: f64, a: f64) -> Option<usize> {
    let (se, _) = t.se_dof?;
    let gap = (t.estimate - boundary).abs();
    if gap == 0.0 || !gap.is_finite() {
        return None;
    }
    let sd = se * (t.n as f64).sqrt();
    let decides = |n: usize| t_upper(a, n - 1) * sd / (n as f64).sqrt() < gap;
    // Doubling, then bisection: a few dozen quantiles.
    let (mut lo, mut hi) = (t.n.max(2), t.n.max(2));
    while !decides(hi) {
        if hi > 1_000_000 {
            return None;
        }
        lo = hi;
        hi *= 2;
    }
    while lo < hi {
        let mid = (lo + hi) / 2;
        if decides(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(hi)
}

fn side_word(s: Side) -> &'static str {
    match s {
        Side::Greater => "above",
        Side::Less => "below",
    }
}

fn opposite(s: Side) -> Side {
    match s {
        Side::Greater => Side::Less,
        Side::Less => Side::Greater,
    }
}

fn reason(d: &Declared, e: &Evidence, t: &Test, v: Verdict, a: f64) -> String {
    let s = d.scale;
    let u = &d.unit;
    let dropped = if t.dropped > 0 {
        format!(" ({} replicate(s) with a non-finite value left out)", t.dropped)
    } else {
        String::new()
    };
    if let Evidence::Untestable { why } = e {
        return format!("not testable in this design: {why}");
    }
    if t.se_dof.is_none() {
        let need = match e {
            Evidence::Curve { .. } => "at least 3 scales with every replicate finite",
            _ => "at least 2 independent replicates with finite values",
        };
        return format!("no interval: {} usable{dropped}; {need} would give one", t.n);
    }
    let what = match (&d.hypothesis, v) {
        (Hypothesis::Difference { .. }, Verdict::Consistent) => "the interval excludes 0 on the claimed side".to_string(),
        (Hypothesis::Difference { .. }, Verdict::Contradicts) => "the interval excludes 0 on the other side".to_string(),
        (Hypothesis::Difference { .. }, _) => "the interval contains 0".to_string(),
        (Hypothesis::Equivalence { margin }, Verdict::Consistent) => {
            format!("the interval lies within ±{:.2}{u}", s * margin)
        }
        (Hypothesis::Equivalence { margin }, Verdict::Contradicts) => {
            format!("the interval lies wholly outside ±{:.2}{u}", s * margin)
        }
        (Hypothesis::Equivalence { margin }, _) => {
            format!("the interval is neither within nor wholly outside ±{:.2}{u}", s * margin)
        }
        (Hypothesis::NonInferior { margin }, Verdict::Consistent) => {
            format!("the interval lies above −{:.2}{u}: no worse than the reference by the margin", s * margin)
        }
        (Hypothesis::NonInferior { margin }, Verdict::Contradicts) => {
            format!("the interval lies wholly below −{:.2}{u}: worse than the reference by more than the margin", s * margin)
        }
        (Hypothesis::NonInferior { margin }, _) => format!("the interval contains −{:.2}{u}", s * margin),
        (Hypothesis::RateBound { exponent }, Verdict::Consistent) => {
            format!("the slope's interval lies below 0 (decay) and reaches the bound's exponent {exponent:+.2}")
        }
        (Hypothesis::RateBound { exponent }, Verdict::Contradicts) => format!(
            "the slope's interval lies wholly above the bound's exponent {exponent:+.2}: slower than the bound allows"
        ),
        (Hypothesis::RateBound { exponent }, _) => {
            format!("the slope's interval does not both show decay and reach the bound's exponent {exponent:+.2}, nor lie wholly above it")
        }
        (Hypothesis::Slope { side, null, .. }, Verdict::Consistent) => {
            format!("the slope's interval lies {} {null:+.3}", side_word(*side))
        }
        (Hypothesis::Slope { side, null, .. }, Verdict::Contradicts) => format!(
            "the slope's interval lies {} {null:+.3}, the other side from the claim",
            side_word(opposite(*side))
        ),
        (Hypothesis::Slope { null, .. }, _) => format!("the slope's interval contains {null:+.3}"),
        (Hypothesis::Peak { .. }, Verdict::Consistent) => "both sides' intervals lie above 0".to_string(),
        (Hypothesis::Peak { margin }, Verdict::Contradicts) => {
            format!("a peak of {:.2}{u} is excluded on a side, and the design could have seen one", s * margin)
        }
        (Hypothesis::Peak { .. }, _) => match e {
            Evidence::Peak { could_see: false, .. } => {
                "no peak shown, and the design could not have seen one (the neighbours do not bracket its expected place): absence is not evidence".to_string()
            }
            _ => "a side's interval contains 0".to_string(),
        },
    };
    let mut out = format!("{what}{dropped}; tested at α = {a:.4} (Holm over the family)");
    if v == Verdict::Inconclusive {
        let boundary = match d.hypothesis {
            Hypothesis::Difference { .. } | Hypothesis::Peak { .. } => Some(0.0),
            // The nearer margin: inside it decides "consistent", outside "contradicts".
            Hypothesis::Equivalence { margin } => Some(margin * t.estimate.signum()),
            Hypothesis::NonInferior { margin } => Some(-margin),
            Hypothesis::RateBound { .. } | Hypothesis::Slope { .. } => None,
        };
        if let Evidence::Peak { could_see: false, .. } = e {
            out.push_str("; to decide: locations on both sides of where the peak is expected (so that its absence could be seen), then replicates");
            return out;
        }
        match (boundary.and_then(|b| replicates_to_decide(t, b, a)), &d.hypothesis) {
            (_, Hypothesis::RateBound { .. } | Hypothesis::Slope { .. }) => out.push_str(
                "; to decide: more scales (a wider range of x narrows the slope's interval) or more replicates per scale",
            ),
            (Some(n), _) => out.push_str(&format!(
                "; to decide: about {n} replicates at the observed spread would, if the mean stays at {:.2}{u}",
                s * t.estimate
            )),
            (None, _) => out.push_str("; the estimate sits on the boundary: only a different effect would decide"),
        }
    }
    out
}

impl Decision {
    /// The decision as a [`Claim`] for the report and the terminal: the
    /// source names whose claim it is, the measurement names its interval
    /// and the family's adjusted α.
    pub fn claim(&self) -> Claim {
        let d = &self.declared;
        let (s, u) = (d.scale, &d.unit);
        let level = 100.0 * (1.0 - 2.0 * self.alpha_tested);
        let what = match d.hypothesis {
            Hypothesis::RateBound { .. } | Hypothesis::Slope { log_x: true, .. } => "slope over per-scale means",
            Hypothesis::Slope { log_x: false, .. } => "rate of ln y per unit x (over per-x means)",
            Hypothesis::Peak { .. } => "peak height (smaller side)",
            _ => "mean paired difference",
        };
        let (s, u) = match d.hypothesis {
            Hypothesis::RateBound { .. } | Hypothesis::Slope { .. } => (1.0, &String::new()),
            _ => (s, u),
        };
        let measured = match self.interval {
            Some((lo, hi)) => format!(
                "{what} {:+.3}{u}, {level:.1}% interval [{:+.3}, {:+.3}]{u}, n = {}; family of {} claims, α = {} each way",
                s * self.estimate,
                s * lo,
                s * hi,
                self.n,
                self.family,
                self.alpha
            ),
            None => format!(
                "{what}: no interval (n = {}); family of {} claims, α = {} each way",
                self.n, self.family, self.alpha
            ),
        };
        Claim {
            claim: d.claim.clone(),
            source: d.origin.label(),
            measured,
            verdict: self.verdict,
            reason: self.reason.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, Normal};

    fn declared(h: Hypothesis) -> Declared {
        Declared {
            claim: "c".into(),
            origin: Origin::Project("test".into()),
            hypothesis: h,
            unit: String::new(),
            scale: 1.0,
        }
    }

    /// Decides `trials` simulated experiments of one claim; returns the
    /// fractions (consistent, contradicts).
    fn rates(
        trials: usize,
        seed: u64,
        h: Hypothesis,
        mut draw: impl FnMut(&mut rand_chacha::ChaCha8Rng) -> Evidence,
    ) -> (f64, f64) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let d = declared(h);
        let (mut c, mut x) = (0usize, 0usize);
        for _ in 0..trials {
            let e = draw(&mut rng);
            match decide(&[(d.clone(), e)], ALPHA)[0].verdict {
                Verdict::Consistent => c += 1,
                Verdict::Contradicts => x += 1,
                Verdict::Inconclusive => {}
            }
        }
        (c as f64 / trials as f64, x as f64 / trials as f64)
    }

    /// α plus three Monte-Carlo standard errors at `trials` trials.
    fn at_most_alpha(rate: f64, trials: usize) -> bool {
        rate <= ALPHA + 3.0 * (ALPHA * (1.0 - ALPHA) / trials as f64).sqrt()
    }

    fn normal(rng: &mut rand_chacha::ChaCha8Rng, n: usize, mean: f64, sd: f64) -> Vec<f64> {
        let d = Normal::new(mean, sd).unwrap();
        (0..n).map(|_| d.sample(rng)).collect()
    }

    const TRIALS: usize = 4000;

    #[test]
    fn calibration_difference_at_the_null_and_with_clear_effects() {
        for n in [2usize, 3, 5, 10] {
            let h = Hypothesis::Difference { side: Side::Greater };
            let (c, x) = rates(TRIALS, n as u64, h.clone(), |r| Evidence::Paired {
                values: normal(r, n, 0.0, 1.0),
                resolution: 0.0,
            });
            assert!(at_most_alpha(c, TRIALS) && at_most_alpha(x, TRIALS), "n {n}: {c} {x}");
            // A clear effect (2 sd) with 10 replicates is found; its opposite contradicts.
            if n == 10 {
                let (c, _) = rates(TRIALS, 7, h.clone(), |r| Evidence::Paired {
                    values: normal(r, n, 2.0, 1.0),
                    resolution: 0.0,
                });
                assert!(c > 0.99, "power {c}");
                let (_, x) = rates(TRIALS, 8, h, |r| Evidence::Paired {
                    values: normal(r, n, -2.0, 1.0),
                    resolution: 0.0,
                });
                assert!(x > 0.99, "power {x}");
            }
        }
    }

    #[test]
    fn calibration_quantized_and_diverged_replicates() {
        // Accuracies on a grid of 1/100 with a tiny true spread: the
        // resolution keeps identical replicates from giving a zero-width
        // interval; one replicate in five diverges (NaN) and is dropped.
        let h = Hypothesis::Difference { side: Side::Greater };
        let (c, x) = rates(TRIALS, 11, h, |r| {
            let mut v: Vec<f64> = normal(r, 5, 0.0, 0.002)
                .into_iter()
                .map(|x| (x * 100.0).round() / 100.0)
                .collect();
            if r.gen_bool(0.5) {
                v[0] = f64::NAN;
            }
            Evidence::Paired {
                values: v,
                resolution: 0.01,
            }
        });
        assert!(at_most_alpha(c, TRIALS) && at_most_alpha(x, TRIALS), "{c} {x}");
        let d = decide(
            &[(
                declared(Hypothesis::Difference { side: Side::Greater }),
                Evidence::Paired {
                    values: vec![0.0, 0.0, 0.0],
                    resolution: 0.01,
                },
            )],
            ALPHA,
        );
        let (lo, hi) = d[0].interval.unwrap();
        assert!(lo < 0.0 && hi > 0.0 && d[0].verdict == Verdict::Inconclusive);
    }

    #[test]
    fn calibration_equivalence_at_the_margin_and_inside() {
        let m = 0.5;
        let h = Hypothesis::Equivalence { margin: m };
        for n in [3usize, 5, 10] {
            // At the margin: neither a false "consistent" nor a false "contradicts" above α.
            for mean in [m, -m] {
                let (c, x) = rates(TRIALS, 20 + n as u64, h.clone(), |r| Evidence::Paired {
                    values: normal(r, n, mean, 0.5),
                    resolution: 0.0,
                });
                assert!(
                    at_most_alpha(c, TRIALS) && at_most_alpha(x, TRIALS),
                    "n {n} mean {mean}: {c} {x}"
                );
            }
        }
        // Clearly inside with 10 replicates: consistent; clearly outside: contradicts.
        let (c, _) = rates(TRIALS, 30, h.clone(), |r| Evidence::Paired {
            values: normal(r, 10, 0.0, 0.3),
            resolution: 0.0,
        });
        assert!(c > 0.95, "{c}");
        let (_, x) = rates(TRIALS, 31, h, |r| Evidence::Paired {
            values: normal(r, 10, 1.5, 0.3),
            resolution: 0.0,
        });
        assert!(x > 0.95, "{x}");
    }

    /// y at x for per-x means whose log-slope is `b` between the first and
    /// last x, with curvature `curve` (a quadratic term in ln x), and
    /// log-normal replicate noise; one replicate may diverge.
    fn curve(r: &mut rand_chacha::ChaCha8Rng, b: f64, curve: f64, sd: f64, seeds: usize, diverge: bool) -> Evidence {
        let xs = [64.0f64, 128.0, 256.0, 512.0, 1024.0, 2048.0];
        let c = (xs[0].ln() + xs[5].ln()) / 2.0;
        let noise = Normal::new(0.0, sd).unwrap();
        let mut points = Vec::new();
        for &x in &xs {
            let l = x.ln() - c;
            for _ in 0..seeds {
                points.push((x, (b * l + curve * l * l + noise.sample(r)).exp()));
            }
        }
        if diverge && r.gen_bool(0.5) {
            points[3].1 = f64::NAN;
        }
        Evidence::Curve { points }
    }

    #[test]
    fn calibration_rate_bound_at_the_exponent_without_decay_and_with_curvature() {
        let a = -0.5;
        let h = Hypothesis::RateBound { exponent: a };
        for (curv, diverge) in [(0.0, false), (0.05, false), (0.0, true)] {
            // Decay exactly at the bound: no false "contradicts".
            let (_, x) = rates(TRIALS, 40, h.clone(), |r| curve(r, a, curv, 0.1, 3, diverge));
            assert!(at_most_alpha(x, TRIALS), "at the bound, curvature {curv}: {x}");
            // No decay at all: no false "consistent".
            let (c, _) = rates(TRIALS, 41, h.clone(), |r| curve(r, 0.0, curv, 0.1, 3, diverge));
            assert!(at_most_alpha(c, TRIALS), "no decay, curvature {curv}: {c}");
        }
        // Clear decay faster than the bound is found; a clearly slower decay contradicts.
        let (c, _) = rates(TRIALS, 42, h.clone(), |r| curve(r, -0.8, 0.0, 0.1, 3, false));
        assert!(c > 0.95, "{c}");
        let (_, x) = rates(TRIALS, 43, h, |r| curve(r, -0.1, 0.0, 0.02, 3, false));
        assert!(x > 0.95, "{x}");
    }

    #[test]
    fn calibration_rate_bound_in_a_family_never_consistent_above_the_exponent() {
        // A slope between the exponent and 0 (decay, but slower than the
        // bound) inside a family of 7: "consistent" would be false.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(44);
        let d = declared(Hypothesis::RateBound { exponent: -0.5 });
        let trials = 2000;
        let mut any_c = 0;
        for _ in 0..trials {
            let family: Vec<(Declared, Evidence)> = (0..7)
                .map(|_| (d.clone(), curve(&mut rng, -0.3, 0.0, 0.1, 3, false)))
                .collect();
            any_c += decide(&family, ALPHA).iter().any(|x| x.verdict == Verdict::Consistent) as usize;
        }
        let c = any_c as f64 / trials as f64;
        assert!(at_most_alpha(c, trials), "{c}");
    }

    #[test]
    fn calibration_peak_only_where_the_design_could_see_it() {
        let h = Hypothesis::Peak { margin: 1.0 };
        let draw = |ml: f64, mr: f64, see: bool| {
            move |r: &mut rand_chacha::ChaCha8Rng| Evidence::Peak {
                left: normal(r, 5, ml, 1.0),
                right: normal(r, 5, mr, 1.0),
                resolution: 0.0,
                could_see: see,
            }
        };
        // A peak exactly at the declared size on both sides: no false "contradicts".
        let (_, x) = rates(TRIALS, 50, h.clone(), draw(1.0, 1.0, true));
        assert!(at_most_alpha(x, TRIALS), "{x}");
        // No peak on one side: no false "consistent".
        let (c, _) = rates(TRIALS, 51, h.clone(), draw(0.0, 3.0, true));
        assert!(at_most_alpha(c, TRIALS), "{c}");
        // Nothing there but the design could not see a peak: never "contradicts".
        let (_, x) = rates(TRIALS, 52, h.clone(), draw(-2.0, -2.0, false));
        assert_eq!(x, 0.0);
        // A clear peak is found; a clear absence where it could be seen contradicts.
        let (c, _) = rates(TRIALS, 53, h.clone(), draw(4.0, 4.0, true));
        assert!(c > 0.95, "{c}");
        let (_, x) = rates(TRIALS, 54, h, draw(-2.0, -2.0, true));
        assert!(x > 0.95, "{x}");
    }

    #[test]
    fn calibration_non_inferiority_at_the_margin() {
        let m = 0.01;
        let h = Hypothesis::NonInferior { margin: m };
        for n in [3usize, 5, 10] {
            // Exactly at the margin: neither error above α.
            let (c, x) = rates(TRIALS, 70 + n as u64, h.clone(), |r| Evidence::Paired {
                values: normal(r, n, -m, 0.01),
                resolution: 0.0,
            });
            assert!(at_most_alpha(c, TRIALS) && at_most_alpha(x, TRIALS), "n {n}: {c} {x}");
        }
        // Better than the reference is matching; far worse contradicts.
        let (c, _) = rates(TRIALS, 80, h.clone(), |r| Evidence::Paired {
            values: normal(r, 10, 0.01, 0.005),
            resolution: 0.0,
        });
        assert!(c > 0.95, "{c}");
        let (_, x) = rates(TRIALS, 81, h, |r| Evidence::Paired {
            values: normal(r, 10, -0.04, 0.01),
            resolution: 0.0,
        });
        assert!(x > 0.95, "{x}");
    }

    /// `(n, y)` with `ln y = b n` plus log-normal noise, `seeds` per n.
    fn exp_curve(r: &mut rand_chacha::ChaCha8Rng, b: f64, sd: f64, seeds: usize) -> Evidence {
        let noise = Normal::new(0.0, sd).unwrap();
        let mut points = Vec::new();
        for n in (4..=24).step_by(2) {
            for _ in 0..seeds {
                points.push((n as f64, (b * n as f64 + noise.sample(r)).exp()));
            }
        }
        Evidence::Curve { points }
    }

    #[test]
    fn calibration_slope_at_its_null_both_ways() {
        let decay = Hypothesis::Slope {
            side: Side::Less,
            null: 0.0,
            log_x: false,
        };
        // No decay: no false "consistent"; exactly at the null: no false "contradicts".
        let (c, x) = rates(TRIALS, 90, decay.clone(), |r| exp_curve(r, 0.0, 0.5, 1));
        assert!(at_most_alpha(c, TRIALS) && at_most_alpha(x, TRIALS), "{c} {x}");
        let floor = Hypothesis::Slope {
            side: Side::Greater,
            null: -std::f64::consts::LN_2,
            log_x: false,
        };
        let (c, x) = rates(TRIALS, 91, floor, |r| exp_curve(r, -std::f64::consts::LN_2, 0.5, 1));
        assert!(at_most_alpha(c, TRIALS) && at_most_alpha(x, TRIALS), "{c} {x}");
        // A clear decay is found; growth contradicts.
        let (c, _) = rates(TRIALS, 92, decay.clone(), |r| exp_curve(r, -0.4, 0.5, 1));
        assert!(c > 0.95, "{c}");
        let (_, x) = rates(TRIALS, 93, decay, |r| exp_curve(r, 0.2, 0.5, 1));
        assert!(x > 0.95, "{x}");
        // On ln x: a power-law slope at the null is calibrated too.
        let h = Hypothesis::Slope {
            side: Side::Less,
            null: -0.5,
            log_x: true,
        };
        let (c, x) = rates(TRIALS, 94, h, |r| curve(r, -0.5, 0.0, 0.1, 3, false));
        assert!(at_most_alpha(c, TRIALS) && at_most_alpha(x, TRIALS), "{c} {x}");
    }

    #[test]
    fn untestable_claims_are_inconclusive_and_say_why() {
        let d = declared(Hypothesis::Difference { side: Side::Greater });
        let v = decide(
            &[(
                d,
                Evidence::Untestable {
                    why: "no control was run".into(),
                },
            )],
            ALPHA,
        );
        assert_eq!(v[0].verdict, Verdict::Inconclusive);
        assert!(v[0].reason.contains("no control was run"), "{}", v[0].reason);
    }

    #[test]
    fn calibration_family_wise_error_with_holm() {
        // Seven claims at the null boundary decided together: the chance of
        // any false "consistent" (and of any false "contradicts") stays at α.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(60);
        let d = declared(Hypothesis::Difference { side: Side::Greater });
        let trials = 2000;
        let (mut any_c, mut any_x) = (0, 0);
        for _ in 0..trials {
            let family: Vec<(Declared, Evidence)> = (0..7)
                .map(|_| {
                    (
                        d.clone(),
                        Evidence::Paired {
                            values: normal(&mut rng, 5, 0.0, 1.0),
                            resolution: 0.0,
                        },
                    )
                })
                .collect();
            let v = decide(&family, ALPHA);
            any_c += v.iter().any(|x| x.verdict == Verdict::Consistent) as usize;
            any_x += v.iter().any(|x| x.verdict == Verdict::Contradicts) as usize;
        }
        let (c, x) = (any_c as f64 / trials as f64, any_x as f64 / trials as f64);
        assert!(at_most_alpha(c, trials) && at_most_alpha(x, trials), "{c} {x}");
    }

    /// The table of measured rates in the docs (`cargo test --release --lib
    /// calibration_table -- --ignored --nocapture`): 20,000 simulated
    /// experiments per row.
    #[test]
    #[ignore]
    fn calibration_table() {
        let t = 20_000;
        let diff = Hypothesis::Difference { side: Side::Greater };
        let paired = |n: usize, mean: f64, sd: f64| {
            move |r: &mut rand_chacha::ChaCha8Rng| Evidence::Paired {
                values: normal(r, n, mean, sd),
                resolution: 0.0,
            }
        };
        let row = |what: &str, (c, x): (f64, f64)| println!("| {what} | {:.4} | {:.4} |", c, x);
        println!("| scenario | consistent | contradicts |\n|---|---:|---:|");
        let eq = Hypothesis::Equivalence { margin: 0.5 };
        let paired_rows: [(&str, &Hypothesis, usize, f64, f64); 9] = [
            ("difference, true mean 0, n = 3", &diff, 3, 0.0, 1.0),
            ("difference, true mean 0, n = 5", &diff, 5, 0.0, 1.0),
            ("difference, true mean 0, n = 10", &diff, 10, 0.0, 1.0),
            ("difference, true mean +1 sd, n = 5", &diff, 5, 1.0, 1.0),
            ("difference, true mean +2 sd, n = 10", &diff, 10, 2.0, 1.0),
            (
                "equivalence ±0.5, true mean at the margin, sd 0.5, n = 5",
                &eq,
                5,
                0.5,
                0.5,
            ),
            (
                "equivalence ±0.5, true mean at the margin, sd 0.5, n = 10",
                &eq,
                10,
                0.5,
                0.5,
            ),
            ("equivalence ±0.5, true mean 0, sd 0.3, n = 10", &eq, 10, 0.0, 0.3),
            ("equivalence ±0.5, true mean 1.5, sd 0.3, n = 10", &eq, 10, 1.5, 0.3),
        ];
        for (k, (what, h, n, mean, sd)) in paired_rows.into_iter().enumerate() {
            row(what, rates(t, 100 + k as u64, h.clone(), paired(n, mean, sd)));
        }
        let rb = Hypothesis::RateBound { exponent: -0.5 };
        for (what, b, curv, sd, div) in [
            ("rate bound -0.5, true slope -0.5", -0.5, 0.0, 0.1, false),
            (
                "rate bound -0.5, true slope -0.5, curvature 0.05",
                -0.5,
                0.05,
                0.1,
                false,
            ),
            (
                "rate bound -0.5, true slope -0.5, a diverged seed in half the runs",
                -0.5,
                0.0,
                0.1,
                true,
            ),
            ("rate bound -0.5, no decay (slope 0)", 0.0, 0.0, 0.1, false),
            ("rate bound -0.5, no decay, curvature 0.05", 0.0, 0.05, 0.1, false),
            ("rate bound -0.5, true slope -0.8", -0.8, 0.0, 0.1, false),
            ("rate bound -0.5, true slope -0.1, sd 0.02", -0.1, 0.0, 0.02, false),
        ] {
            row(
                &format!("{what} (6 widths × 3 seeds)"),
                rates(t, 140, rb.clone(), |r| curve(r, b, curv, sd, 3, div)),
            );
        }
        let ni = Hypothesis::NonInferior { margin: 0.01 };
        for (k, (what, mean, sd)) in [
            (
                "non-inferiority margin 1 pp, true difference −1 pp (at the margin), sd 1 pp, n = 5",
                -0.01,
                0.01,
            ),
            (
                "non-inferiority margin 1 pp, true difference +1 pp, sd 0.5 pp, n = 10",
                0.01,
                0.005,
            ),
            (
                "non-inferiority margin 1 pp, true difference −4 pp, sd 1 pp, n = 10",
                -0.04,
                0.01,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let n = if k == 0 { 5 } else { 10 };
            row(what, rates(t, 160 + k as u64, ni.clone(), paired(n, mean, sd)));
        }
        let decay = Hypothesis::Slope {
            side: Side::Less,
            null: 0.0,
            log_x: false,
        };
        for (k, (what, b)) in [
            ("exponential decay (slope of ln y on n below 0), true rate 0", 0.0),
            ("exponential decay, true rate −0.4 per unit", -0.4),
        ]
        .into_iter()
        .enumerate()
        {
            row(
                &format!("{what} (11 values of n, one each, sd 0.5)"),
                rates(t, 170 + k as u64, decay.clone(), move |r| exp_curve(r, b, 0.5, 1)),
            );
        }
        let pk = Hypothesis::Peak { margin: 1.0 };
        for (what, l, rr, see) in [
            ("peak margin 1, true height 1 both sides", 1.0, 1.0, true),
            ("peak margin 1, one side 0", 0.0, 3.0, true),
            ("peak margin 1, no peak, design could not see one", -2.0, -2.0, false),
            ("peak margin 1, true height 4", 4.0, 4.0, true),
            ("peak margin 1, no peak (−2), design could see one", -2.0, -2.0, true),
        ] {
            row(
                &format!("{what} (n = 5, sd 1)"),
                rates(t, 150, pk.clone(), move |r| Evidence::Peak {
                    left: normal(r, 5, l, 1.0),
                    right: normal(r, 5, rr, 1.0),
                    resolution: 0.0,
                    could_see: see,
                }),
            );
        }
    }

    #[test]
    fn holm_steps_down_and_stops_at_the_first_failure() {
        let r = holm(&[0.01, 0.04, 0.015, 0.5], 0.05);
        assert_eq!(r[0], (true, 0.0125));
        assert_eq!(r[2], (true, 0.05 / 3.0));
        assert_eq!(r[1], (false, 0.025));
        assert!(!r[3].0);
    }

    #[test]
    fn a_decision_names_its_interval_level_family_and_origin() {
        let d = Declared {
            claim: "tickets beat random reinit".into(),
            origin: Origin::Paper("Frankle & Carbin 2019, Sec. 4, Fig. 4".into()),
            hypothesis: Hypothesis::Difference { side: Side::Greater },
            unit: " pp".into(),
            scale: 100.0,
        };
        let e = Evidence::Paired {
            values: vec![0.03, 0.05, 0.04, 0.06],
            resolution: 0.0,
        };
        let v = decide(&[(d, e)], ALPHA);
        let c = v[0].claim();
        assert_eq!(c.verdict, Verdict::Consistent);
        assert!(
            c.source.contains("the paper's claim: Frankle & Carbin 2019, Sec. 4"),
            "{}",
            c.source
        );
        assert!(
            c.measured.contains("90.0% interval") && c.measured.contains("family of 1"),
            "{}",
            c.measured
        );
        assert!(c.reason.contains("α = 0.0500"), "{}", c.reason);
        // Inconclusive says what would decide.
        let d = declared(Hypothesis::Difference { side: Side::Greater });
        let e = Evidence::Paired {
            values: vec![0.1, -0.05, 0.2],
            resolution: 0.0,
        };
        let v = decide(&[(d, e)], ALPHA);
        assert_eq!(v[0].verdict, Verdict::Inconclusive);
        assert!(
            v[0].reason.contains("replicates at the observed spread"),
            "{}",
            v[0].reason
        );
    }
}
