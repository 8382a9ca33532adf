//! PNG figures for the experiments: line charts (linear or log axes, optional
//! spread bands and horizontal reference lines) and grouped bar charts.
//!
//! Everything is drawn with `plotters` on a bitmap backend, using the DejaVu
//! Sans font embedded in the binary (the machine may have no system fonts).
//! Drawing never panics on user data: non-finite values (and non-positive ones
//! on a log axis) are skipped, degenerate ranges are widened, and every
//! failure is returned as [`Error::Plot`].
//!
//! ```no_run
//! use lottery_tangent::plot::{LineChart, Series};
//! let chart = LineChart::new("Loss", "step", "loss")
//!     .log_y()
//!     .add(Series::line("train", vec![(0.0, 2.3), (100.0, 0.4), (200.0, 0.1)]))
//!     .hline(0.2, "target");
//! chart.save_png(std::path::Path::new("figures/loss.png")).unwrap();
//! ```

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use plotters::coord::combinators::{IntoLogRange, LogCoord};
use plotters::coord::ranged1d::{BoldPoints, DefaultFormatting, KeyPointHint, KeyPointWeight, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::{Error, Result};

/// Axis scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    Linear,
    Log,
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Marker {
    /// A connected line.
    Line,
    /// Unconnected filled circles.
    Points,
    /// A connected line with a circle at every point.
    LinePoints,
}

/// One data series of a [`LineChart`].
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend entry (an empty label gives no legend entry).
    pub label: String,
    /// The points `(x, y)`, drawn in the given order.
    pub points: Vec<(f64, f64)>,
    /// optional spread band: (x, low, high), drawn as a translucent area or error bars in the series colour
    pub band: Option<Vec<(f64, f64, f64)>>,
    /// How the points are drawn.
    pub marker: Marker,
    /// Draw the line dashed.
    pub dashed: bool,
    /// Palette index of the colour; default: the series' position in the chart.
    pub color: Option<usize>,
}

impl Series {
    /// A solid line through `points`.
    pub fn line(label: impl Into<String>, points: impl IntoIterator<Item = (f64, f64)>) -> Self {
        Series {
            label: label.into(),
            points: points.into_iter().collect(),
            band: None,
            marker: Marker::Line,
            dashed: false,
            color: None,
        }
    }

    /// Unconnected points (a band, if any, is drawn as error bars).
    pub fn points(label: impl Into<String>, points: impl IntoIterator<Item = (f64, f64)>) -> Self {
        Series {
            marker: Marker::Points,
            ..Series::line(label, points)
        }
    }

    /// Adds a spread band `(x, low, high)`: a translucent area for lines, error
    /// bars for [`Marker::Points`].
    pub fn with_band(mut self, band: impl IntoIterator<Item = (f64, f64, f64)>) -> Self {
        self.band = Some(band.into_iter().collect());
        self
    }

    /// Draws the line dashed.
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }

    /// Sets the marker style.
    pub fn with_marker(mut self, m: Marker) -> Self {
        self.marker = m;
        self
    }

    /// Uses palette colour `i` (so related series, e.g. a curve and its fit, share a colour).
    pub fn with_color(mut self, i: usize) -> Self {
        self.color = Some(i);
        self
    }
}

/// A line chart with any number of series.
#[derive(Clone, Debug)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_scale: Scale,
    pub y_scale: Scale,
    pub series: Vec<Series>,
    /// Image size in pixels, default (900, 600).
    pub size: (u32, u32),
    /// optional horizontal reference lines (y, label), drawn dashed grey with the label in the legend
    pub hlines: Vec<(f64, String)>,
}

impl LineChart {
    /// An empty chart with linear axes.
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        LineChart {
            title: title.to_string(),
            x_label: x_label.to_string(),
            y_label: y_label.to_string(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            series: Vec::new(),
            size: DEFAULT_SIZE,
            hlines: Vec::new(),
        }
    }

    /// Logarithmic x axis.
    pub fn log_x(mut self) -> Self {
        self.x_scale = Scale::Log;
        self
    }

    /// Logarithmic y axis.
    pub fn log_y(mut self) -> Self {
        self.y_scale = Scale::Log;
        self
    }

    /// Adds a series (builder style).
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, s: Series) -> Self {
        self.series.push(s);
        self
    }

    /// Adds a series.
    pub fn push(&mut self, s: Series) {
        self.series.push(s);
    }

    /// Adds a dashed grey horizontal reference line at `y`.
    pub fn hline(mut self, y: f64, label: &str) -> Self {
        self.hlines.push((y, label.to_string()));
        self
    }

    /// Sets the image size in pixels.
    pub fn with_size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    /// Renders to PNG. Errors (never panics) if there is no finite point to
    /// draw, or on a log axis no positive value; points that are non-finite or
    /// non-positive on a log axis are skipped (not an error, as long as
    /// something remains). Creates the parent directory if needed.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        check_size(self.size, path)?;
        let data = self.prepare().map_err(|msg| plot_err(path, msg))?;
        write_png(path, self.size, |target| self.render(target, &data))
    }

    /// Filters the data and computes the axis ranges.
    fn prepare(&self) -> std::result::Result<LineData, String> {
        let (xs, ys) = (self.x_scale, self.y_scale);
        let mut series = Vec::with_capacity(self.series.len());
        let mut x_ext = Extent::default();
        let mut y_ext = Extent::default();
        let mut n_finite = 0usize;
        for s in &self.series {
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|&(x, y)| {
                    if x.is_finite() && y.is_finite() {
                        n_finite += 1;
                    }
                    usable(x, xs) && usable(y, ys)
                })
                .collect();
            for &(x, y) in &pts {
                x_ext.add(x);
                y_ext.add(y);
            }
            let mut band: Vec<BandEntry> = Vec::new();
            if let Some(b) = &s.band {
                for &(x, lo, hi) in b {
                    if !usable(x, xs) {
                        continue;
                    }
                    // On a linear axis a band needs both ends; on a log axis a
                    // non-positive low end is clamped to the bottom of the axis.
                    let (lo_ok, hi_ok) = (usable(lo, ys), usable(hi, ys));
                    let lo_clampable = ys == Scale::Log && lo.is_finite() && lo <= 0.0;
                    if !(hi_ok && (lo_ok || lo_clampable)) {
                        continue;
                    }
                    x_ext.add(x);
                    y_ext.add(hi);
                    if lo_ok {
                        y_ext.add(lo);
                    }
                    n_finite += 1;
                    band.push((x, lo_ok.then_some(lo), Some(hi)));
                }
                band.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
            series.push((pts, band));
        }
        if x_ext.is_empty() || y_ext.is_empty() {
            let why = if n_finite > 0 {
                "no positive finite value to draw on the log axis"
            } else {
                "no finite point to draw"
            };
            return Err(why.to_string());
        }
        let hlines: Vec<(f64, String)> = self.hlines.iter().filter(|(y, _)| usable(*y, ys)).cloned().collect();
        for (y, _) in &hlines {
            y_ext.add(*y);
        }
        let x_range = padded_range(x_ext.lo, x_ext.hi, xs)?;
        let y_range = padded_range(y_ext.lo, y_ext.hi, ys)?;
        Ok(LineData {
            series,
            hlines,
            x_range,
            y_range,
        })
    }

    fn render(&self, target: &Path, data: &LineData) -> std::result::Result<(), String> {
        let root = BitMapBackend::new(target, self.size).into_drawing_area();
        root.fill(&WHITE).map_err(err_str)?;
        let st = Style::for_size(self.size);
        let x_axis = Axis::new(self.x_scale, data.x_range);
        let y_axis = Axis::new(self.y_scale, data.y_range);
        let (nx, ny) = (n_labels(self.x_scale), n_labels(self.y_scale));
        let x_fmt = TickFormat::for_axis(&x_axis, nx);
        let y_fmt = TickFormat::for_axis(&y_axis, ny);
        let mut chart = build_chart(
            &root,
            &st,
            &self.title,
            x_axis,
            y_axis,
            &y_fmt,
            ny,
            !self.y_label.is_empty(),
            !self.x_label.is_empty(),
        )?;
        let xf = |v: &f64| x_fmt.format(*v);
        let yf = |v: &f64| y_fmt.format(*v);
        chart
            .configure_mesh()
            .x_labels(nx)
            .y_labels(ny)
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .label_style((FONT, st.tick))
            .axis_desc_style((FONT, st.desc))
            .bold_line_style(RGBColor(200, 200, 200).mix(0.6))
            .light_line_style(RGBColor(230, 230, 230).mix(0.5))
            .max_light_lines(4)
            .axis_style(RGBColor(80, 80, 80))
            .draw()
            .map_err(err_str)?;

        let (x0, x1) = data.x_range;
        let y_bottom = data.y_range.0;
        let lw = st.line_width;
        let mut occupied = Occupancy::default();

        // Reference lines first, so the data is drawn over them.
        for (y, _) in &data.hlines {
            let seg = vec![(x0, *y), (x1, *y)];
            chart
                .draw_series(std::iter::once(DashedPathElement::new(
                    seg.clone(),
                    st.dash,
                    st.gap,
                    HLINE_GREY.stroke_width(lw),
                )))
                .map_err(err_str)?;
            occupied.path(&chart, &seg, 1.0);
        }

        // Bands (translucent areas or error bars) below all lines.
        for (i, (s, (_, band))) in self.series.iter().zip(&data.series).enumerate() {
            if band.is_empty() {
                continue;
            }
            let c = palette(s.color.unwrap_or(i));
            let resolved: Vec<(f64, f64, f64)> = band
                .iter()
                .map(|&(x, lo, hi)| (x, lo.unwrap_or(y_bottom), hi.unwrap_or(y_bottom)))
                .collect();
            if s.marker == Marker::Points {
                let style = c.stroke_width(lw.max(1));
                let cap = st.cap;
                for &(x, lo, hi) in &resolved {
                    chart
                        .draw_series(std::iter::once(PathElement::new(vec![(x, lo), (x, hi)], style)))
                        .map_err(err_str)?;
                    for y in [lo, hi] {
                        chart
                            .draw_series(std::iter::once(
                                EmptyElement::at((x, y)) + PathElement::new(vec![(-cap, 0), (cap, 0)], style),
                            ))
                            .map_err(err_str)?;
                    }
                    occupied.path(&chart, &[(x, lo), (x, hi)], 1.0);
                }
            } else if resolved.len() == 1 {
                // A band of one point cannot enclose an area: draw a bar.
                let (x, lo, hi) = resolved[0];
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x, lo), (x, hi)],
                        c.mix(0.5).stroke_width(lw.max(1)),
                    )))
                    .map_err(err_str)?;
            } else {
                let mut poly: Vec<(f64, f64)> = resolved.iter().map(|&(x, _, hi)| (x, hi)).collect();
                poly.extend(resolved.iter().rev().map(|&(x, lo, _)| (x, lo)));
                chart
                    .draw_series(std::iter::once(Polygon::new(poly, c.mix(0.2).filled())))
                    .map_err(err_str)?;
                for &(x, lo, hi) in &resolved {
                    occupied.path(&chart, &[(x, lo), (x, hi)], 0.25);
                }
            }
        }

        // Lines and markers.
        for (i, (s, (pts, _))) in self.series.iter().zip(&data.series).enumerate() {
            if pts.is_empty() {
                continue;
            }
            let c = palette(s.color.unwrap_or(i));
            let style = c.stroke_width(lw);
            if matches!(s.marker, Marker::Line | Marker::LinePoints) && pts.len() > 1 {
                if s.dashed {
                    chart
                        .draw_series(DashedLineSeries::new(pts.clone(), st.dash, st.gap, style))
                        .map_err(err_str)?;
                } else {
                    chart
                        .draw_series(LineSeries::new(pts.clone(), style))
                        .map_err(err_str)?;
                }
                occupied.path(&chart, pts, 1.0);
            }
            // A line of a single point would be invisible: show it as a marker.
            if s.marker != Marker::Line || pts.len() == 1 {
                let r = if s.marker == Marker::Points {
                    st.point_r
                } else {
                    st.point_r - 1
                };
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, r.max(2), c.filled())))
                    .map_err(err_str)?;
                occupied.points(&chart, pts, 1.0);
            }
        }

        // Legend entries: series then reference lines.
        let mut entries: Vec<(String, LegendMark)> = Vec::new();
        for (i, s) in self.series.iter().enumerate() {
            if !s.label.is_empty() {
                entries.push((
                    s.label.clone(),
                    LegendMark::Line {
                        color: palette(s.color.unwrap_or(i)),
                        dashed: s.dashed,
                        marker: s.marker,
                    },
                ));
            }
        }
        for (_, label) in &data.hlines {
            if !label.is_empty() {
                entries.push((
                    label.clone(),
                    LegendMark::Line {
                        color: HLINE_GREY,
                        dashed: true,
                        marker: Marker::Line,
                    },
                ));
            }
        }
        draw_legend(&mut chart, &st, &entries, &occupied)?;
        root.present().map_err(err_str)?;
        Ok(())
    }
}

/// A grouped bar chart (e.g. per-layer sparsity): categories on x, one bar per series per category.
#[derive(Clone, Debug)]
pub struct BarChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub categories: Vec<String>,
    /// `(label, one value per category)`.
    pub series: Vec<(String, Vec<f64>)>,
    /// Image size in pixels, default (900, 600).
    pub size: (u32, u32),
    pub y_scale: Scale,
}

impl BarChart {
    /// An empty bar chart over the given categories, linear y axis.
    pub fn new<S: Into<String>>(
        title: &str,
        x_label: &str,
        y_label: &str,
        categories: impl IntoIterator<Item = S>,
    ) -> Self {
        BarChart {
            title: title.to_string(),
            x_label: x_label.to_string(),
            y_label: y_label.to_string(),
            categories: categories.into_iter().map(Into::into).collect(),
            series: Vec::new(),
            size: DEFAULT_SIZE,
            y_scale: Scale::Linear,
        }
    }

    /// Adds a series with one value per category (checked by [`BarChart::save_png`]).
    pub fn add(mut self, label: &str, values: impl IntoIterator<Item = f64>) -> Self {
        self.series.push((label.to_string(), values.into_iter().collect()));
        self
    }

    /// Adds a series.
    pub fn push(&mut self, label: &str, values: impl IntoIterator<Item = f64>) {
        self.series.push((label.to_string(), values.into_iter().collect()));
    }

    /// Logarithmic y axis (bars start at the bottom of the axis).
    pub fn log_y(mut self) -> Self {
        self.y_scale = Scale::Log;
        self
    }

    /// Sets the image size in pixels.
    pub fn with_size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    /// Renders to PNG. Errors if there are no categories or series, if a
    /// series does not have one value per category, or if no value can be
    /// drawn (non-finite values, and non-positive ones on a log axis, are
    /// skipped). Creates the parent directory if needed.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        check_size(self.size, path)?;
        let y_range = self.prepare().map_err(|msg| plot_err(path, msg))?;
        write_png(path, self.size, |target| self.render(target, y_range))
    }

    fn prepare(&self) -> std::result::Result<(f64, f64), String> {
        if self.categories.is_empty() {
            return Err("bar chart has no categories".into());
        }
        if self.series.is_empty() {
            return Err("bar chart has no series".into());
        }
        for (label, values) in &self.series {
            if values.len() != self.categories.len() {
                return Err(format!(
                    "series `{label}` has {} values but there are {} categories",
                    values.len(),
                    self.categories.len()
                ));
            }
        }
        let mut ext = Extent::default();
        for (_, values) in &self.series {
            for &v in values {
                if usable(v, self.y_scale) {
                    ext.add(v);
                }
            }
        }
        if ext.is_empty() {
            return Err(match self.y_scale {
                Scale::Linear => "no finite value to draw".into(),
                Scale::Log => "no positive finite value to draw on the log axis".into(),
            });
        }
        match self.y_scale {
            Scale::Log => padded_range(ext.lo, ext.hi, Scale::Log),
            Scale::Linear => {
                // Bars start at zero: keep zero in the range, pad away from it.
                let lo = ext.lo.min(0.0);
                let hi = ext.hi.max(0.0);
                let span = hi - lo;
                if !span.is_finite() {
                    return Err(format!("value range [{lo:e}, {hi:e}] is too large to draw"));
                }
                if span <= f64::MIN_POSITIVE {
                    return Ok((0.0, 1.0));
                }
                let pad = 0.05 * span;
                let lo = if lo < 0.0 { lo - pad } else { lo };
                let hi = if hi > 0.0 { hi + pad } else { hi };
                if !(lo.is_finite() && hi.is_finite()) {
                    return Err(format!("value range [{lo:e}, {hi:e}] is too large to draw"));
                }
                Ok((lo, hi))
            }
        }
    }

    fn render(&self, target: &Path, y_range: (f64, f64)) -> std::result::Result<(), String> {
        let root = BitMapBackend::new(target, self.size).into_drawing_area();
        root.fill(&WHITE).map_err(err_str)?;
        let mut st = Style::for_size(self.size);
        let n = self.categories.len();

        // Category labels: shrink, then thin them out, if they do not fit.
        let approx_plot_w = self.size.0 as f64 * 0.8;
        let slot = approx_plot_w / n as f64;
        let widest = |size: f64| -> std::result::Result<f64, String> {
            let style = TextStyle::from((FONT, size).into_font());
            let mut w = 0u32;
            for c in &self.categories {
                w = w.max(root.estimate_text_size(c, &style).map_err(err_str)?.0);
            }
            Ok(w as f64)
        };
        let mut w = widest(st.tick)?;
        if w > 0.9 * slot && st.tick > 10.0 {
            st.tick = (st.tick * 0.8).max(10.0);
            w = widest(st.tick)?;
        }
        let stride = if w > 0.9 * slot {
            ((w + 0.1 * slot) / slot).ceil().max(1.0) as usize
        } else {
            1
        };

        let x_axis = Axis::Category {
            coord: RangedCoordf64::from(0.0..n as f64),
            n,
            stride,
        };
        let y_axis = Axis::new(self.y_scale, y_range);
        let ny = n_labels(self.y_scale);
        let y_fmt = TickFormat::for_axis(&y_axis, ny);
        let mut chart = build_chart(
            &root,
            &st,
            &self.title,
            x_axis,
            y_axis,
            &y_fmt,
            ny,
            !self.y_label.is_empty(),
            !self.x_label.is_empty(),
        )?;
        let cats = &self.categories;
        let xf = |v: &f64| {
            let i = v.floor();
            if i >= 0.0 && (i as usize) < cats.len() {
                cats[i as usize].clone()
            } else {
                String::new()
            }
        };
        let yf = |v: &f64| y_fmt.format(*v);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .y_labels(ny)
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .label_style((FONT, st.tick))
            .axis_desc_style((FONT, st.desc))
            .bold_line_style(RGBColor(200, 200, 200).mix(0.6))
            .light_line_style(RGBColor(230, 230, 230).mix(0.5))
            .max_light_lines(4)
            .axis_style(RGBColor(80, 80, 80))
            .draw()
            .map_err(err_str)?;

        let base = match self.y_scale {
            Scale::Linear => 0.0,
            Scale::Log => y_range.0,
        };
        let k = self.series.len() as f64;
        let group = 0.8;
        let bar_w = group / k;
        let mut occupied = Occupancy::default();
        for (j, (_, values)) in self.series.iter().enumerate() {
            let c = palette(j);
            for (i, &v) in values.iter().enumerate() {
                if !usable(v, self.y_scale) {
                    continue;
                }
                let x0 = i as f64 + (1.0 - group) / 2.0 + j as f64 * bar_w;
                let x1 = x0 + bar_w;
                chart
                    .draw_series(std::iter::once(Rectangle::new([(x0, base), (x1, v)], c.filled())))
                    .map_err(err_str)?;
                occupied.rect(&chart, (x0, base), (x1, v));
            }
        }
        let entries: Vec<(String, LegendMark)> = self
            .series
            .iter()
            .enumerate()
            .filter(|(_, (label, _))| !label.is_empty())
            .map(|(j, (label, _))| (label.clone(), LegendMark::Bar { color: palette(j) }))
            .collect();
        draw_legend(&mut chart, &st, &entries, &occupied)?;
        root.present().map_err(err_str)?;
        Ok(())
    }
}

// ----------------------------------------------------------------------------
// Internals
// ----------------------------------------------------------------------------

const FONT: &str = "sans-serif";
const DEFAULT_SIZE: (u32, u32) = (900, 600);
/// At most this many labelled ticks per axis (log axes: one per decade up to 10 decades).
fn n_labels(scale: Scale) -> usize {
    match scale {
        Scale::Linear => 8,
        Scale::Log => 10,
    }
}
const HLINE_GREY: RGBColor = RGBColor(110, 110, 110);

/// The tab10 palette (matplotlib's default colour cycle).
const TAB10: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// Colour of series `i`: tab10, then darker and lighter variants of it for
/// series 10-19 and 20-29, and so on cyclically.
fn palette(i: usize) -> RGBColor {
    let (r, g, b) = TAB10[i % TAB10.len()];
    let shade = |c: u8| -> u8 {
        match (i / TAB10.len()) % 3 {
            0 => c,
            1 => (c as f64 * 0.6).round() as u8,
            _ => (c as f64 + (255.0 - c as f64) * 0.45).round() as u8,
        }
    };
    RGBColor(shade(r), shade(g), shade(b))
}

/// Registers the embedded font once; later calls return the first outcome.
fn ensure_font() -> std::result::Result<(), String> {
    static FONT_INIT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    FONT_INIT
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, include_bytes!("../assets/DejaVuSans.ttf"))
                .map_err(|_| "the embedded font DejaVuSans.ttf could not be loaded".to_string())
        })
        .clone()
}

fn plot_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Plot {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

fn err_str<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn check_size(size: (u32, u32), path: &Path) -> Result<()> {
    const MIN: u32 = 100;
    const MAX: u32 = 10_000;
    if size.0 < MIN || size.1 < MIN || size.0 > MAX || size.1 > MAX {
        return Err(plot_err(
            path,
            format!(
                "image size must be between {MIN} and {MAX} pixels per side, got {}x{}",
                size.0, size.1
            ),
        ));
    }
    Ok(())
}

/// Registers the font, creates the parent directory, renders into a
/// temporary `.png` next to `path` and moves it into place, so that a failed
/// render never leaves a partial file and any file extension works.
fn write_png(
    path: &Path,
    size: (u32, u32),
    render: impl FnOnce(&Path) -> std::result::Result<(), String>,
) -> Result<()> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    ensure_font().map_err(|m| plot_err(path, m))?;
    debug_assert!(size.0 > 0 && size.1 > 0);
    let file_name = path
        .file_name()
        .ok_or_else(|| plot_err(path, "the path has no file name"))?;
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .map_err(|e| plot_err(path, format!("cannot create directory {}: {e}", parent.display())))?;
        }
    }
    let tmp: PathBuf = path.with_file_name(format!(
        ".{}.{}-{}.tmp.png",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = render(&tmp)
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| format!("cannot move the image into place: {e}")));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|m| plot_err(path, m))
}

fn usable(v: f64, scale: Scale) -> bool {
    v.is_finite() && (scale == Scale::Linear || v > 0.0)
}

/// Running min/max.
#[derive(Clone, Copy, Debug)]
struct Extent {
    lo: f64,
    hi: f64,
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
    fn add(&mut self, v: f64) {
        self.lo = self.lo.min(v);
        self.hi = self.hi.max(v);
    }
    fn is_empty(&self) -> bool {
        self.lo > self.hi
    }
}

/// Pads `[lo, hi]` (data extremes, usable on `scale`) into an axis range:
/// 5% of the span on linear axes, 5% of the decades on log axes; a range of
/// (nearly) zero width is widened around its value.
fn padded_range(lo: f64, hi: f64, scale: Scale) -> std::result::Result<(f64, f64), String> {
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
            (10f64.powf(l), 10f64.powf(h))
        }
    };
    if !(a.is_finite() && b.is_finite()) || a >= b || (scale == Scale::Log && a <= 0.0) {
        return Err(too_large());
    }
    Ok((a, b))
}

/// `(x, low, high)` of a band; a `None` end is clamped to the axis bottom.
type BandEntry = (f64, Option<f64>, Option<f64>);

/// Drawable points and band entries of one series.
type SeriesData = (Vec<(f64, f64)>, Vec<BandEntry>);

/// The filtered data of a line chart.
struct LineData {
    /// Per series: drawable points, and band entries `(x, low, high)` where
    /// a `None` end is clamped to the axis bottom.
    series: Vec<SeriesData>,
    hlines: Vec<(f64, String)>,
    x_range: (f64, f64),
    y_range: (f64, f64),
}

/// One axis: linear, logarithmic (plotters' `log_scale`, with better ticks
/// for ranges under a decade) or categorical (bar charts).
enum Axis {
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
}

impl Axis {
    fn new(scale: Scale, (lo, hi): (f64, f64)) -> Self {
        match scale {
            Scale::Linear => Axis::Linear(RangedCoordf64::from(lo..hi)),
            Scale::Log => Axis::Log {
                coord: LogCoord::from((lo..hi).log_scale()),
                lo,
                hi,
            },
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
        }
    }

    fn range(&self) -> Range<f64> {
        match self {
            Axis::Linear(c) | Axis::Category { coord: c, .. } => c.range(),
            Axis::Log { lo, hi, .. } => *lo..*hi,
        }
    }
}

/// Multiples of 1, 2 or 5 times a power of ten inside `[lo, hi]`, at most `max` of them.
fn nice_ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
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
fn log_ticks(lo: f64, hi: f64, max: usize, light: bool) -> Vec<f64> {
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
enum TickFormat {
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
    fn for_axis(axis: &Axis, n_labels: usize) -> Self {
        let ticks = axis.key_points(BoldPoints(n_labels));
        let r = axis.range();
        match axis {
            Axis::Category { .. } => TickFormat::Category,
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

    fn format(&self, v: f64) -> String {
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
fn shortest_prec(v: f64, render: impl Fn(usize) -> String) -> usize {
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
fn pretty_sci(s: &str, bare_one: bool) -> String {
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
struct Style {
    title: f64,
    desc: f64,
    tick: f64,
    legend: f64,
    line_width: u32,
    point_r: i32,
    cap: i32,
    dash: i32,
    gap: i32,
    margin: i32,
}

impl Style {
    fn for_size((w, h): (u32, u32)) -> Self {
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

type Chart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<Axis, Axis>>;

/// Builds the chart area, sizing the label areas from the actual tick labels.
#[allow(clippy::too_many_arguments)]
fn build_chart<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    st: &Style,
    title: &str,
    x_axis: Axis,
    y_axis: Axis,
    y_fmt: &TickFormat,
    n_y_labels: usize,
    has_y_desc: bool,
    has_x_desc: bool,
) -> std::result::Result<Chart<'a, 'b>, String> {
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

/// What the legend shows next to a label.
#[derive(Clone, Copy)]
enum LegendMark {
    Line {
        color: RGBColor,
        dashed: bool,
        marker: Marker,
    },
    Bar {
        color: RGBColor,
    },
}

/// Pixel samples of what has been drawn, weighted, to place the legend where
/// it hides the least.
#[derive(Default)]
struct Occupancy {
    samples: Vec<(i32, i32, f32)>,
}

impl Occupancy {
    const MAX_SAMPLES: usize = 200_000;

    fn points(&mut self, chart: &Chart<'_, '_>, pts: &[(f64, f64)], w: f32) {
        for p in pts {
            if self.samples.len() >= Self::MAX_SAMPLES {
                return;
            }
            let (x, y) = chart.backend_coord(p);
            self.samples.push((x, y, w));
        }
    }

    /// Samples a polyline every few pixels.
    fn path(&mut self, chart: &Chart<'_, '_>, pts: &[(f64, f64)], w: f32) {
        let px: Vec<(i32, i32)> = pts.iter().map(|p| chart.backend_coord(p)).collect();
        if px.len() == 1 {
            self.samples.push((px[0].0, px[0].1, w));
        }
        for seg in px.windows(2) {
            let (a, b) = (seg[0], seg[1]);
            let len = ((b.0 - a.0) as f64).hypot((b.1 - a.1) as f64);
            let n = ((len / 4.0).ceil() as usize).clamp(1, 2000);
            for k in 0..=n {
                if self.samples.len() >= Self::MAX_SAMPLES {
                    return;
                }
                let t = k as f64 / n as f64;
                let x = a.0 as f64 + t * (b.0 - a.0) as f64;
                let y = a.1 as f64 + t * (b.1 - a.1) as f64;
                self.samples.push((x as i32, y as i32, w));
            }
        }
    }

    /// Samples a filled rectangle on a coarse grid.
    fn rect(&mut self, chart: &Chart<'_, '_>, a: (f64, f64), b: (f64, f64)) {
        let (pa, pb) = (chart.backend_coord(&a), chart.backend_coord(&b));
        let (x0, x1) = (pa.0.min(pb.0), pa.0.max(pb.0));
        let (y0, y1) = (pa.1.min(pb.1), pa.1.max(pb.1));
        let mut y = y0;
        while y <= y1 {
            let mut x = x0;
            while x <= x1 {
                if self.samples.len() >= Self::MAX_SAMPLES {
                    return;
                }
                self.samples.push((x, y, 1.0));
                x += 4;
            }
            y += 4;
        }
    }

    fn cost(&self, (x0, y0, x1, y1): (i32, i32, i32, i32)) -> f32 {
        self.samples
            .iter()
            .filter(|&&(x, y, _)| x >= x0 && x <= x1 && y >= y0 && y <= y1)
            .map(|s| s.2)
            .sum()
    }
}

/// Draws the legend (if any entry) in the corner that hides the least data,
/// preferring the upper right.
fn draw_legend<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    st: &Style,
    entries: &[(String, LegendMark)],
    occupied: &Occupancy,
) -> std::result::Result<(), String> {
    if entries.is_empty() {
        return Ok(());
    }
    let s = st.legend / 15.0;
    let mark_w = (26.0 * s).round() as i32;
    let legend_area = mark_w + (10.0 * s).round() as i32;
    let inner_margin = (8.0 * s).round() as i32;

    // Legend box size, as plotters computes it (text block + mark area + margins).
    let font = TextStyle::from((FONT, st.legend).into_font());
    let mut text = MultiLineText::<_, &str>::new((0, 0), font);
    for (label, _) in entries {
        text.push_line(label.as_str());
    }
    let (tw, th) = text.estimate_dimension().map_err(err_str)?;
    let (w, h) = (tw + legend_area + 2 * inner_margin, th + 2 * inner_margin);

    let area = chart.plotting_area();
    let (ox, oy) = {
        let (xr, yr) = area.get_pixel_range();
        (xr.start, yr.start)
    };
    let (aw, ah) = area.dim_in_pixel();
    let (aw, ah) = (aw as i32, ah as i32);
    use SeriesLabelPosition::*;
    let candidates = [UpperRight, UpperLeft, LowerRight, LowerLeft, MiddleRight, MiddleLeft];
    let mut best = (UpperRight, f32::INFINITY);
    for pos in candidates {
        let x = match pos {
            UpperLeft | MiddleLeft | LowerLeft => 5,
            _ => aw - w - 5,
        };
        let y = match pos {
            UpperLeft | UpperRight => 5,
            MiddleLeft | MiddleRight => (ah - h) / 2,
            _ => ah - h - 5,
        };
        let cost = occupied.cost((ox + x, oy + y, ox + x + w, oy + y + h));
        if cost < best.1 {
            best = (pos, cost);
        }
    }

    let lw = st.line_width;
    let (dash, gap, r) = (st.dash, st.gap, st.point_r.max(2));
    for (label, mark) in entries {
        let anno = chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(err_str)?;
        anno.label(label.as_str());
        match *mark {
            LegendMark::Line {
                color,
                dashed: true,
                marker,
            } => {
                let with_dot = marker != Marker::Line;
                anno.legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + DashedPathElement::new(vec![(0, 0), (mark_w, 0)], dash, gap, color.stroke_width(lw))
                        + Circle::new((mark_w / 2, 0), if with_dot { r } else { 0 }, color.filled())
                });
            }
            LegendMark::Line {
                color,
                dashed: false,
                marker: Marker::Points,
            } => {
                anno.legend(move |(x, y)| EmptyElement::at((x, y)) + Circle::new((mark_w / 2, 0), r, color.filled()));
            }
            LegendMark::Line {
                color,
                dashed: false,
                marker,
            } => {
                let with_dot = marker == Marker::LinePoints;
                anno.legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (mark_w, 0)], color.stroke_width(lw))
                        + Circle::new((mark_w / 2, 0), if with_dot { r } else { 0 }, color.filled())
                });
            }
            LegendMark::Bar { color } => {
                let half = (6.0 * s).round() as i32;
                anno.legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + Rectangle::new(
                            [(mark_w / 2 - 2 * half, -half), (mark_w / 2 + 2 * half, half)],
                            color.filled(),
                        )
                });
            }
        }
    }
    chart
        .configure_series_labels()
        .position(best.0)
        .margin(inner_margin)
        .legend_area_size(legend_area)
        .label_font((FONT, st.legend))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(120, 120, 120))
        .draw()
        .map_err(err_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_widened_and_padded() {
        let (a, b) = padded_range(3.0, 3.0, Scale::Linear).unwrap();
        assert!(a < 3.0 && b > 3.0);
        let (a, b) = padded_range(0.0, 0.0, Scale::Linear).unwrap();
        assert!(a < 0.0 && b > 0.0);
        let (a, b) = padded_range(1e-8, 1e8, Scale::Log).unwrap();
        assert!(a < 1e-8 && b > 1e8 && a > 0.0);
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
