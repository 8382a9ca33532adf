//! Figures for the experiments: line charts (linear or log axes, optional
//! spread bands and horizontal reference lines) and grouped bar charts.
//!
//! Every figure is written three times: PNG, SVG (for a paper) and the data
//! drawn, as CSV beside them (`accuracy.png`, `accuracy.svg`,
//! `accuracy.csv`). A band says what it is (±1 sd or min–max, over what);
//! legends use people's names for methods (`random reinit`, `SNIP`) and a
//! method has one colour in every figure ([`color_of`]); log axes end on
//! labelled ticks; a sparsity axis can run from dense to sparse
//! ([`LineChart::reverse_x`]).
//!
//! Everything is drawn with `plotters` (bitmap and SVG backends), using the
//! DejaVu Sans font embedded in the binary (the machine may have no system
//! fonts).
//! Drawing never panics on user data: non-finite values (and non-positive ones
//! on a log axis) are skipped, degenerate ranges are widened, and every
//! failure is returned as [`Error::Plot`].
//!
//! This file holds the chart specs (series, line and bar charts) and their
//! drawing with plotters' series and elements (line, dashed line, error bar,
//! polygon for a spread band, rectangle); `axes.rs` the ranges, coordinates,
//! ticks and tick labels; `legend.rs` the legend and where it goes. What is
//! written by hand is what plotters lacks: log-axis ticks under a decade and
//! 1-2-5 ticks per decade, exact short tick labels (`2.5×10⁻³`), and a legend
//! placed where it hides the least data. Every file is written atomically
//! ([`crate::paths::write_atomic_with`]).
//!
//! ```no_run
//! use lottery_tangent::report::plot::{LineChart, Series};
//! let chart = LineChart::new("Loss", "step", "loss")
//!     .log_y()
//!     .add(Series::line("train", vec![(0.0, 2.3), (100.0, 0.4), (200.0, 0.1)]))
//!     .hline(0.2, "target");
//! chart.save(std::path::Path::new("figures/loss.png")).unwrap();
//! ```

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::{Error, Result};

mod axes;
mod legend;

use axes::{build_chart, n_labels, padded_range, Axis, Extent, Style, TickFormat};
use legend::{draw_legend, LegendMark, Occupancy};

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

/// What a band shows, and over what replicates (e.g. `Spread::Sd("seeds")`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Spread {
    /// Mean ± one standard deviation.
    Sd(&'static str),
    /// The smallest to the largest value.
    MinMax(&'static str),
}

impl Spread {
    /// `±1 sd over seeds`.
    pub fn describe(&self) -> String {
        match self {
            Spread::Sd(over) => format!("±1 sd over {over}"),
            Spread::MinMax(over) => format!("min–max over {over}"),
        }
    }
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
    /// What the band shows.
    pub spread: Option<Spread>,
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
            spread: None,
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

    /// Adds a spread band `(x, low, high)` showing `spread`: a translucent
    /// area for lines, error bars for [`Marker::Points`]. The figure says
    /// what its bands are.
    pub fn with_band(mut self, spread: Spread, band: impl IntoIterator<Item = (f64, f64, f64)>) -> Self {
        self.band = Some(band.into_iter().collect());
        self.spread = Some(spread);
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
    /// The x axis runs from large to small values (e.g. from dense to sparse).
    pub reverse_x: bool,
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
            reverse_x: false,
        }
    }

    /// The x axis runs from its largest value on the left to its smallest
    /// (a sparsity axis read from dense to sparse).
    pub fn reverse_x(mut self) -> Self {
        self.reverse_x = true;
        self
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

    /// Renders to PNG at `path`, to SVG beside it, and writes the data as
    /// CSV beside it (`series, x, y, band_low, band_high`). Errors (never
    /// panics) if there is no finite point to draw, or on a log axis no
    /// positive value; points that are non-finite or non-positive on a log
    /// axis are skipped (not an error, as long as something remains).
    /// Creates the parent directory if needed.
    pub fn save(&self, path: &Path) -> Result<()> {
        check_size(self.size, path)?;
        let data = self.prepare().map_err(|msg| plot_err(path, msg))?;
        write_figure(
            path,
            self.size,
            |root| self.render(root, &data),
            |root| self.render(root, &data),
        )?;
        write_data(path, &self.data_rows())
    }

    /// The figure's data, one row per point (`series, x, y, band_low,
    /// band_high`; reference lines with an empty x).
    fn data_rows(&self) -> Vec<[String; 5]> {
        let f = |v: f64| format!("{v}");
        let mut rows = Vec::new();
        for s in &self.series {
            let name = human(&s.label);
            let band = s.band.as_deref().unwrap_or(&[]);
            for &(x, y) in &s.points {
                let b = band.iter().find(|b| b.0 == x);
                rows.push([
                    name.clone(),
                    f(x),
                    f(y),
                    b.map(|b| f(b.1)).unwrap_or_default(),
                    b.map(|b| f(b.2)).unwrap_or_default(),
                ]);
            }
            for b in band.iter().filter(|b| !s.points.iter().any(|p| p.0 == b.0)) {
                rows.push([name.clone(), f(b.0), String::new(), f(b.1), f(b.2)]);
            }
        }
        for (y, label) in &self.hlines {
            rows.push([human(label), String::new(), f(*y), String::new(), String::new()]);
        }
        rows
    }

    /// What the bands of this chart show, for its title.
    fn band_note(&self) -> Option<String> {
        let mut kinds: Vec<String> = Vec::new();
        for s in self
            .series
            .iter()
            .filter(|s| s.band.as_ref().is_some_and(|b| !b.is_empty()))
        {
            let d = s.spread.map(|k| k.describe()).unwrap_or_else(|| "spread".into());
            if !kinds.contains(&d) {
                kinds.push(d);
            }
        }
        (!kinds.is_empty()).then(|| format!("bands: {}", kinds.join("; ")))
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

    fn render<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, Shift>,
        data: &LineData,
    ) -> std::result::Result<(), String> {
        root.fill(&WHITE).map_err(err_str)?;
        let st = Style::for_size(self.size);
        let colors = series_colors(&self.series);
        // What the bands show goes under the x axis, beside its label.
        let x_desc = match self.band_note() {
            Some(note) if self.x_label.is_empty() => note,
            Some(note) => format!("{}    ({note})", self.x_label),
            None => self.x_label.clone(),
        };
        let x_axis = Axis::new(self.x_scale, data.x_range).reversed(self.reverse_x);
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
            !x_desc.is_empty(),
        )?;
        let xf = |v: &f64| x_fmt.format(*v);
        let yf = |v: &f64| y_fmt.format(*v);
        chart
            .configure_mesh()
            .x_labels(nx)
            .y_labels(ny)
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .x_desc(x_desc.as_str())
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
            let c = palette(colors[i]);
            let resolved: Vec<(f64, f64, f64)> = band
                .iter()
                .map(|&(x, lo, hi)| (x, lo.unwrap_or(y_bottom), hi.unwrap_or(y_bottom)))
                .collect();
            if s.marker == Marker::Points {
                // plotters' error bars (with caps) around each point's value.
                let style = c.stroke_width(lw.max(1));
                let pts = &data.series[i].0;
                let mid =
                    |x: f64, lo: f64, hi: f64| pts.iter().find(|p| p.0 == x).map(|p| p.1).unwrap_or(0.5 * (lo + hi));
                chart
                    .draw_series(resolved.iter().map(|&(x, lo, hi)| {
                        ErrorBar::new_vertical(x, lo, mid(x, lo, hi), hi, style, 2 * st.cap as u32)
                    }))
                    .map_err(err_str)?;
                for &(x, lo, hi) in &resolved {
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
            let c = palette(colors[i]);
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
                    human(&s.label),
                    LegendMark::Line {
                        color: palette(colors[i]),
                        dashed: s.dashed,
                        marker: s.marker,
                    },
                ));
            }
        }
        for (_, label) in &data.hlines {
            if !label.is_empty() {
                entries.push((
                    human(label),
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

    /// Adds a series with one value per category (checked by [`BarChart::save`]).
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

    /// Renders to PNG at `path`, to SVG beside it, and writes the data as
    /// CSV beside it (`series, category, value`). Errors if there are no
    /// categories or series, if a series does not have one value per
    /// category, or if no value can be drawn (non-finite values, and
    /// non-positive ones on a log axis, are skipped). Creates the parent
    /// directory if needed.
    pub fn save(&self, path: &Path) -> Result<()> {
        check_size(self.size, path)?;
        let y_range = self.prepare().map_err(|msg| plot_err(path, msg))?;
        write_figure(
            path,
            self.size,
            |root| self.render(root, y_range),
            |root| self.render(root, y_range),
        )?;
        let rows: Vec<[String; 5]> = self
            .series
            .iter()
            .flat_map(|(label, values)| {
                self.categories
                    .iter()
                    .zip(values)
                    .map(move |(c, v)| [human(label), c.clone(), format!("{v}"), String::new(), String::new()])
            })
            .collect();
        write_rows(&path.with_extension("csv"), &["series", "category", "value"], &rows, 3)
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

    fn render<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, Shift>,
        y_range: (f64, f64),
    ) -> std::result::Result<(), String> {
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
            .map(|(j, (label, _))| (human(label), LegendMark::Bar { color: palette(j) }))
            .collect();
        draw_legend(&mut chart, &st, &entries, &occupied)?;
        root.present().map_err(err_str)?;
        Ok(())
    }
}

// ----------------------------------------------------------------------------
// Shared by the charts, the axes and the legend
// ----------------------------------------------------------------------------

const FONT: &str = "sans-serif";
const DEFAULT_SIZE: (u32, u32) = (900, 600);
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
            plotters::style::register_font(
                FONT,
                FontStyle::Normal,
                include_bytes!("../../../assets/DejaVuSans.ttf"),
            )
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

/// Registers the font and renders atomically ([`crate::paths::write_atomic_with`]:
/// a temporary `.png` beside `path`, then one rename), so that a failed render
/// never leaves a partial file and any file extension works.
/// Writes the figure as PNG at `path` and as SVG beside it, each
/// atomically, drawn by `png` and `svg` (the same drawing on two backends).
fn write_figure(
    path: &Path,
    size: (u32, u32),
    png: impl FnOnce(DrawingArea<BitMapBackend, Shift>) -> std::result::Result<(), String>,
    svg: impl FnOnce(DrawingArea<SVGBackend, Shift>) -> std::result::Result<(), String>,
) -> Result<()> {
    ensure_font().map_err(|m| plot_err(path, m))?;
    debug_assert!(size.0 > 0 && size.1 > 0);
    let map = |e: Error| match e {
        Error::Write { what, .. } => plot_err(path, what),
        other => other,
    };
    crate::paths::write_atomic_with(path, ".png", |tmp| {
        png(BitMapBackend::new(tmp, size).into_drawing_area())
    })
    .map_err(map)?;
    let svg_path = path.with_extension("svg");
    crate::paths::write_atomic_with(&svg_path, ".svg", |tmp| {
        svg(SVGBackend::new(tmp, size).into_drawing_area())
    })
    .map_err(map)
}

/// Writes a line chart's data beside its figure.
fn write_data(path: &Path, rows: &[[String; 5]]) -> Result<()> {
    write_rows(
        &path.with_extension("csv"),
        &["series", "x", "y", "band_low", "band_high"],
        rows,
        5,
    )
}

/// Writes the first `n` fields of each row under `header`, as CSV.
fn write_rows(path: &Path, header: &[&str], rows: &[[String; 5]], n: usize) -> Result<()> {
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r[..n].to_vec()).collect();
    crate::paths::write_csv(path, header, &rows)
}

/// A series label as people write it: identifiers (`random_reinit`,
/// `edge_popup`, `snip`) become words and the methods' own spellings
/// (`random reinit`, `edge-popup`, `SNIP`); other text is kept.
pub fn human(label: &str) -> String {
    let ident = !label.is_empty()
        && label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ident {
        return label.to_string();
    }
    let joined = label
        .replace("edge_popup", "edge-popup")
        .replace("random_prune", "random pruning");
    joined
        .split('_')
        .map(|w| match w {
            "imp" => "IMP",
            "snip" => "SNIP",
            "grasp" => "GraSP",
            "synflow" => "SynFlow",
            "phew" => "PHEW",
            "ntk" => "NTK",
            "lmc" => "LMC",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The palette index a method keeps in every figure, by its identifier
/// (`random_reinit`) or its [`human`] name; None for other labels.
pub fn color_of(label: &str) -> Option<usize> {
    const FIXED: [(&str, usize); 17] = [
        ("imp", 0),
        ("imp ticket", 0),
        ("ticket", 0),
        ("network", 0),
        ("random reinit", 1),
        ("linearization", 1),
        ("random pruning", 2),
        ("random", 2),
        ("magnitude", 3),
        ("large final", 3),
        ("snip", 4),
        ("transformed", 4),
        ("grasp", 5),
        ("synflow", 6),
        ("dense", 7),
        ("phew", 8),
        ("edge-popup", 9),
    ];
    let key = human(label).to_lowercase();
    FIXED.iter().find(|(k, _)| *k == key).map(|(_, c)| *c)
}

/// The palette index of every series: its own colour when set, else its
/// method's ([`color_of`]) when no other series of the chart has it, else
/// the first index no series uses.
fn series_colors(series: &[Series]) -> Vec<usize> {
    let mut out: Vec<Option<usize>> = series.iter().map(|s| s.color).collect();
    for (i, s) in series.iter().enumerate() {
        if out[i].is_none() {
            if let Some(c) = color_of(&s.label).filter(|c| !out.contains(&Some(*c))) {
                out[i] = Some(c);
            }
        }
    }
    let mut next = 0;
    let mut done = Vec::with_capacity(out.len());
    for c in &out {
        done.push(match c {
            Some(c) => *c,
            None => {
                while out.contains(&Some(next)) || done.contains(&next) {
                    next += 1;
                }
                next
            }
        });
    }
    done
}

fn usable(v: f64, scale: Scale) -> bool {
    v.is_finite() && (scale == Scale::Linear || v > 0.0)
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
