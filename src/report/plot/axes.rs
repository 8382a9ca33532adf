//! Axes of the figures: ranges padded around the data, linear, log and
//! category coordinates with readable ticks (plotters' own log axis labels
//! every power of ten only, and its linear labels are not always exact), the
//! tick label format, the size-scaled style and the chart frame.

use std::ops::Range;

use plotters::coord::combinators::{IntoLogRange, LogCoord};
use plotters::coord::ranged1d::{BoldPoints, DefaultFormatting, KeyPointHint, KeyPointWeight, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{err_str, Scale, FONT};

/// At most this many labelled ticks per axis (log axes: one per decade up to 10 decades).
pub(super) fn n_labels(scale: Scale) -> usize {
    match scale {
        Scale::Linear => 8,
        Scale::Log => 10,
    }
}
/// Running min/max.
#[derive(Clone, Copy, Debug)]
pub(super) struct Extent {
    pub(super) lo: f64,
    pub(super) hi: f64,
}

impl Default for Extent {
    fn default() -> Self {
        Extent {
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
        }
    }
}

impl Extent {
    pub(super) fn add(&mut self, v: f64) {
        self.lo = self.lo.min(v);
        self.hi = self.hi.max(v);
    }
    pub(super) fn is_empty(&self) -> bool {
        self.lo > self.hi
    }
}

/// Pads `[lo, hi]` (data extremes, usable on `scale`) into an axis range:
/// 5% of the span on linear axes, 5% of the decades on log axes (out to the
/// nearest labelled ticks over a decade or more of data); a range of
/// (nearly) zero width is widened around its value.
pub(super) fn padded_range(lo: f64, hi: f64, scale: Scale) -> std::result::Result<(f64, f64), String> {
    let too_large = || format!("data range [{lo:e}, {hi:e}] is too large to draw");
    let (a, b) = match scale {
        Scale::Linear => {
            let span = hi - lo;
            if !span.is_finite() {
                return Err(too_large());
            }
            let mag = lo.abs().max(hi.abs());
            if span <= mag * 1e-9 || span < 1e-290 {
                let mid = lo + span / 2.0;
                let half = if mag > 1e-290 { 0.1 * mag } else { 1.0 };
                (mid - half, mid + half)
            } else {
                (lo - 0.05 * span, hi + 0.05 * span)
            }
        }
        Scale::Log => {
            let (l, h) = (lo.log10(), hi.log10());
            let decades = h - l;
            let (l, h) = if decades < 1e-6 {
                (l - 0.5, h + 0.5)
            } else {
                let pad = (0.05 * decades).max(0.02);
                (l - pad, h + pad)
            };
            // Over a decade or more of data the axis ends on labelled ticks
            // ([`log_ticks`]: 1-2-5 up to 3 decades, powers of ten beyond),
            // the nearest ones outside the data (a value on a tick, such as
            // 100% of weights, ends the axis), so both ends carry a label.
            if decades >= 1.0 {
                let mants: &[f64] = if decades <= 3.0 { &[1.0, 2.0, 5.0] } else { &[1.0] };
                (snap_log(lo, mants, false), snap_log(hi, mants, true))
            } else {
                (10f64.powf(l), 10f64.powf(h))
            }
        }
    };
    if !(a.is_finite() && b.is_finite()) || a >= b || (scale == Scale::Log && a <= 0.0) {
        return Err(too_large());
    }
    Ok((a, b))
}

/// The nearest value `m·10^e` (m in `mants`) at or below `v` (or at or
/// above it, `up`).
fn snap_log(v: f64, mants: &[f64], up: bool) -> f64 {
    let e = v.log10().floor() as i32;
    let mut best = if up { f64::INFINITY } else { 0.0 };
    for k in [e - 1, e, e + 1] {
        for &m in mants {
            // Parsing gives the correctly rounded value of m·10^k.
            let Ok(c) = format!("{m}e{k}").parse::<f64>() else {
                continue;
            };
            let close = c * 1e-12;
            if up && c >= v - close && c < best {
                best = c;
            }
            if !up && c <= v + close && c > best {
                best = c;
            }
        }
    }
    if best.is_finite() && best > 0.0 {
        best
    } else {
        v
    }
}

/// One axis: linear, logarithmic (plotters' `log_scale`, with better ticks
/// for ranges under a decade) or categorical (bar charts).
pub(super) enum Axis {
    Linear(RangedCoordf64),
    Log {
        coord: LogCoord<f64>,
        lo: f64,
        hi: f64,
    },
    Category {
        coord: RangedCoordf64,
        n: usize,
        stride: usize,
    },
    /// The same axis drawn from its largest value to its smallest.
    Reversed(Box<Axis>),
}

impl Axis {
    pub(super) fn new(scale: Scale, (lo, hi): (f64, f64)) -> Self {
        match scale {
            Scale::Linear => Axis::Linear(RangedCoordf64::from(lo..hi)),
            Scale::Log => Axis::Log {
                coord: LogCoord::from((lo..hi).log_scale()),
                lo,
                hi,
            },
        }
    }

    /// This axis, reversed when `reverse` is set.
    pub(super) fn reversed(self, reverse: bool) -> Self {
        if reverse {
            Axis::Reversed(Box::new(self))
        } else {
            self
        }
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        match self {
            Axis::Linear(c) | Axis::Category { coord: c, .. } => c.map(value, limit),
            Axis::Log { coord, lo, .. } => {
                // Keep non-positive values off -infinity: pin them to the bottom.
                let v = if *value > 0.0 { *value } else { *lo };
                coord.map(&v, limit)
            }
            Axis::Reversed(inner) => inner.map(value, (limit.1, limit.0)),
        }
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        match self {
            Axis::Linear(c) => c.key_points(hint),
            Axis::Log { lo, hi, .. } => {
                let light = matches!(hint.weight(), KeyPointWeight::Any);
                log_ticks(*lo, *hi, hint.max_num_points(), light)
            }
            Axis::Category { n, stride, .. } => {
                let max = hint.max_num_points().max(1);
                let step = (*stride).max(n.div_ceil(max)).max(1);
                (0..*n).step_by(step).map(|i| i as f64 + 0.5).collect()
            }
            Axis::Reversed(inner) => inner.key_points(hint),
        }
    }

    fn range(&self) -> Range<f64> {
        match self {
            Axis::Linear(c) | Axis::Category { coord: c, .. } => c.range(),
            Axis::Log { lo, hi, .. } => *lo..*hi,
            Axis::Reversed(inner) => inner.range(),
        }
    }
}

/// Multiples of 1, 2 or 5 times a power of ten inside `[lo, hi]`, at most `max` of them.
pub(super) fn nice_ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) || max == 0 {
        return vec![];
    }
    let rough = span / max as f64;
    let mag = 10f64.powf(rough.log10().floor());
    let mut step = 10.0 * mag;
    for m in [1.0, 2.0, 5.0, 10.0] {
        if span / (m * mag) <= max as f64 {
            step = m * mag;
            break;
        }
    }
    let mut out = Vec::new();
    let mut k = (lo / step).ceil();
    while k * step <= hi + step * 1e-9 && out.len() <= max {
        out.push(k * step);
        k += 1.0;
    }
    out
}

/// Ticks of a log axis: under a decade, evenly spaced "nice" values;
/// otherwise 1-9, 1-2-5 or 1 times powers of ten (every k-th decade), the
/// densest set that fits in `max` (light grid lines may use 1-9).
pub(super) fn log_ticks(lo: f64, hi: f64, max: usize, light: bool) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) || max == 0 {
        return vec![];
    }
    if hi / lo < 10.0 {
        let cap = if light { 30 } else { 6 };
        return nice_ticks(lo, hi, max.min(cap));
    }
    let (e0, e1) = (lo.log10().floor() as i32 - 1, hi.log10().ceil() as i32 + 1);
    let gen = |mants: &[u32], every: i32| -> Vec<f64> {
        let mut out = Vec::new();
        for e in e0..=e1 {
            if e.rem_euclid(every) != 0 {
                continue;
            }
            for &m in mants {
                // Parsing gives the correctly rounded value of m·10^e.
                if let Ok(v) = format!("{m}e{e}").parse::<f64>() {
                    if v >= lo * (1.0 - 1e-12) && v <= hi * (1.0 + 1e-12) {
                        out.push(v);
                    }
                }
            }
        }
        out
    };
    let mut sets: Vec<Vec<f64>> = Vec::new();
    if light {
        sets.push(gen(&[1, 2, 3, 4, 5, 6, 7, 8, 9], 1));
    }
    sets.push(gen(&[1, 2, 5], 1));
    for every in 1..=((e1 - e0).max(1)) {
        let t = gen(&[1], every);
        let done = t.len() <= max;
        sets.push(t);
        if done {
            break;
        }
    }
    sets.into_iter()
        .find(|t| t.len() <= max && (light || t.len() >= 2))
        .unwrap_or_else(|| gen(&[1], (e1 - e0).max(1)))
}

/// How tick labels of one axis are written.
pub(super) enum TickFormat {
    /// Plain decimals: a fixed number of decimals, or (`None`) the shortest
    /// exact form of each value.
    Decimal { prec: Option<usize>, zero: f64 },
    /// `m×10ⁿ` with a fixed mantissa precision or (`None`) the shortest exact one.
    Sci { prec: Option<usize>, zero: f64 },
    /// Labels are supplied elsewhere.
    Category,
}

impl TickFormat {
    /// Chooses the format from the ticks the axis will show, so that all
    /// labels are exact, consistent and short.
    pub(super) fn for_axis(axis: &Axis, n_labels: usize) -> Self {
        let ticks = axis.key_points(BoldPoints(n_labels));
        let r = axis.range();
        match axis {
            Axis::Category { .. } => TickFormat::Category,
            Axis::Reversed(inner) => TickFormat::for_axis(inner, n_labels),
            Axis::Log { .. } => {
                let sci = ticks.iter().any(|&v| !(1e-3..1e4).contains(&v));
                if sci {
                    TickFormat::Sci { prec: None, zero: 0.0 }
                } else {
                    TickFormat::Decimal { prec: None, zero: 0.0 }
                }
            }
            Axis::Linear(_) => {
                let mut step = r.end - r.start;
                for w in ticks.windows(2) {
                    let d = (w[1] - w[0]).abs();
                    if d > 0.0 && d < step {
                        step = d;
                    }
                }
                let mag = ticks.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                let mag = if mag > 0.0 { mag } else { r.start.abs().max(r.end.abs()) };
                let sci = !(1e-3..1e5).contains(&mag);
                let tol = step * 1e-6;
                let exact = |prec: usize| {
                    ticks.iter().all(|&v| {
                        let s = if sci {
                            format!("{v:.prec$e}")
                        } else {
                            format!("{v:.prec$}")
                        };
                        s.parse::<f64>().map(|p| (p - v).abs() <= tol).unwrap_or(false)
                    })
                };
                let prec = Some((0..=12).find(|&p| exact(p)).unwrap_or(12));
                let zero = step * 1e-6;
                if sci {
                    TickFormat::Sci { prec, zero }
                } else {
                    TickFormat::Decimal { prec, zero }
                }
            }
        }
    }

    pub(super) fn format(&self, v: f64) -> String {
        if !v.is_finite() {
            return format!("{v}");
        }
        match *self {
            TickFormat::Decimal { prec, zero } => {
                if v.abs() <= zero {
                    return "0".into();
                }
                let prec = prec.unwrap_or_else(|| shortest_prec(v, |p| format!("{v:.p$}")));
                format!("{v:.prec$}")
            }
            TickFormat::Sci { prec, zero } => {
                if v.abs() <= zero || v == 0.0 {
                    return "0".into();
                }
                // Log axes (shortest form) write powers of ten as "10ⁿ",
                // linear axes as "1×10ⁿ" to match their other labels.
                let bare_one = prec.is_none();
                let prec = prec.unwrap_or_else(|| shortest_prec(v, |p| format!("{v:.p$e}")));
                pretty_sci(&format!("{v:.prec$e}"), bare_one)
            }
            TickFormat::Category => String::new(),
        }
    }
}

/// The smallest precision (0..=8) whose rendering of `v` parses back to
/// within 1e-9 relative.
pub(super) fn shortest_prec(v: f64, render: impl Fn(usize) -> String) -> usize {
    (0..=8)
        .find(|&p| {
            render(p)
                .parse::<f64>()
                .map(|x| (x - v).abs() <= 1e-9 * v.abs())
                .unwrap_or(false)
        })
        .unwrap_or(8)
}

/// Rust's `{:e}` output to a label: "1.50e8" -> "1.5×10⁸", "1e-3" -> "10⁻³"
/// (or "1×10⁻³" unless `bare_one`).
pub(super) fn pretty_sci(s: &str, bare_one: bool) -> String {
    let Some((m, e)) = s.split_once('e') else {
        return s.to_string();
    };
    let m = if m.contains('.') {
        m.trim_end_matches('0').trim_end_matches('.')
    } else {
        m
    };
    let sup: String = e
        .chars()
        .filter_map(|c| match c {
            '-' => Some('⁻'),
            '0' => Some('⁰'),
            '1' => Some('¹'),
            '2' => Some('²'),
            '3' => Some('³'),
            '4' => Some('⁴'),
            '5' => Some('⁵'),
            '6' => Some('⁶'),
            '7' => Some('⁷'),
            '8' => Some('⁸'),
            '9' => Some('⁹'),
            _ => None,
        })
        .collect();
    match m {
        "1" if bare_one => format!("10{sup}"),
        "-1" if bare_one => format!("−10{sup}"),
        _ => format!("{}×10{sup}", m.replace('-', "−")),
    }
}

/// Font sizes and line metrics scaled to the image size.
pub(super) struct Style {
    pub(super) title: f64,
    pub(super) desc: f64,
    pub(super) tick: f64,
    pub(super) legend: f64,
    pub(super) line_width: u32,
    pub(super) point_r: i32,
    pub(super) cap: i32,
    pub(super) dash: i32,
    pub(super) gap: i32,
    pub(super) margin: i32,
}

impl Style {
    pub(super) fn for_size((w, h): (u32, u32)) -> Self {
        let s = (w as f64 / 900.0).min(h as f64 / 600.0).clamp(0.5, 4.0);
        let px = |v: f64| (v * s).round().max(1.0) as i32;
        Style {
            title: 24.0 * s,
            desc: 18.0 * s,
            tick: 14.0 * s,
            legend: 15.0 * s,
            line_width: px(2.0) as u32,
            point_r: px(4.0),
            cap: px(4.0),
            dash: px(8.0),
            gap: px(5.0),
            margin: px(18.0),
        }
    }
}

pub(super) type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Axis, Axis>>;

/// Builds the chart area, sizing the label areas from the actual tick labels.
#[allow(clippy::too_many_arguments)]
pub(super) fn build_chart<'a, DB: DrawingBackend + 'a>(
    root: &'a DrawingArea<DB, plotters::coord::Shift>,
    st: &Style,
    title: &str,
    x_axis: Axis,
    y_axis: Axis,
    y_fmt: &TickFormat,
    n_y_labels: usize,
    has_y_desc: bool,
    has_x_desc: bool,
) -> std::result::Result<Chart<'a, DB>, String> {
    let tick_style = TextStyle::from((FONT, st.tick).into_font());
    let mut y_label_w = 0u32;
    for v in y_axis.key_points(BoldPoints(n_y_labels)) {
        let (w, _) = root
            .estimate_text_size(&y_fmt.format(v), &tick_style)
            .map_err(err_str)?;
        y_label_w = y_label_w.max(w);
    }
    let tick_h = st.tick * 1.2;
    let desc_h = st.desc * 1.3;
    let y_area = y_label_w as f64 + st.tick * 1.0 + if has_y_desc { desc_h + 8.0 } else { 0.0 };
    let x_area = tick_h + st.tick * 0.8 + if has_x_desc { desc_h + 4.0 } else { 0.0 };
    let mut builder = ChartBuilder::on(root);
    builder
        .margin(st.margin)
        .margin_right(st.margin + (st.tick * 1.5) as i32)
        .x_label_area_size(x_area.ceil() as i32)
        .y_label_area_size(y_area.ceil() as i32);
    if !title.is_empty() {
        builder.caption(title, (FONT, st.title));
    }
    builder.build_cartesian_2d(x_axis, y_axis).map_err(err_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::coord::ranged1d::BoldPoints;

    #[test]
    fn ranges_are_widened_and_padded() {
        let (a, b) = padded_range(3.0, 3.0, Scale::Linear).unwrap();
        assert!(a < 3.0 && b > 3.0);
        let (a, b) = padded_range(0.0, 0.0, Scale::Linear).unwrap();
        assert!(a < 0.0 && b > 0.0);
        // Over a decade, a log axis ends on the nearest labelled ticks
        // outside the data (a value on a tick ends it).
        let (a, b) = padded_range(1e-8, 1e8, Scale::Log).unwrap();
        assert!(a == 1e-8 && b == 1e8);
        assert_eq!(padded_range(1.3, 100.0, Scale::Log).unwrap(), (1.0, 100.0));
        assert_eq!(padded_range(1.3, 45.0, Scale::Log).unwrap(), (1.0, 50.0));
        let (a, b) = padded_range(5.0, 5.0, Scale::Log).unwrap();
        assert!(a < 5.0 && b > 5.0 && a > 0.0);
        assert!(padded_range(-1e308, 1e308, Scale::Linear).is_err());
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(pretty_sci("1.50e8", true), "1.5×10⁸");
        assert_eq!(pretty_sci("1e-8", true), "10⁻⁸");
        assert_eq!(pretty_sci("1.0e-8", false), "1×10⁻⁸");
        assert_eq!(pretty_sci("-2.0e3", true), "−2×10³");
        let f = TickFormat::Sci { prec: None, zero: 0.0 };
        assert_eq!(f.format(10f64.powf(-7.0)), "10⁻⁷");
        assert_eq!(f.format(2.5e6), "2.5×10⁶");
        let f = TickFormat::Decimal { prec: None, zero: 0.0 };
        assert_eq!(f.format(0.001), "0.001");
        assert_eq!(f.format(200.0), "200");
        let t = nice_ticks(2.0, 8.0, 6);
        assert!(!t.is_empty() && t.len() <= 7, "{t:?}");
        assert!(!Axis::new(Scale::Log, (0.5, 0.9)).key_points(BoldPoints(8)).is_empty());
        assert_eq!(log_ticks(0.9, 30.0, 8, false), vec![1.0, 2.0, 5.0, 10.0, 20.0]);
        let wide = log_ticks(1e-9, 1e9, 8, false);
        assert!(wide.len() >= 2 && wide.len() <= 8, "{wide:?}");
        let axis = Axis::new(Scale::Linear, (0.0, 1e-6));
        let f = TickFormat::for_axis(&axis, 8);
        assert_eq!(f.format(0.0), "0");
        assert!(f.format(5e-7).contains("10⁻⁷"));
    }
}
