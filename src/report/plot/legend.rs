//! The legend: one entry per labelled series and reference line, placed in
//! the corner of the plot that hides the least of what was drawn (plotters
//! places a legend at a fixed position).

use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::axes::{Chart, Style};
use super::{err_str, Marker, FONT};

/// What the legend shows next to a label.
#[derive(Clone, Copy)]
pub(super) enum LegendMark {
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
pub(super) struct Occupancy {
    samples: Vec<(i32, i32, f32)>,
}

impl Occupancy {
    pub(super) const MAX_SAMPLES: usize = 200_000;

    pub(super) fn points<DB: DrawingBackend>(&mut self, chart: &Chart<'_, DB>, pts: &[(f64, f64)], w: f32) {
        for p in pts {
            if self.samples.len() >= Self::MAX_SAMPLES {
                return;
            }
            let (x, y) = chart.backend_coord(p);
            self.samples.push((x, y, w));
        }
    }

    /// Samples a polyline every few pixels.
    pub(super) fn path<DB: DrawingBackend>(&mut self, chart: &Chart<'_, DB>, pts: &[(f64, f64)], w: f32) {
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
    pub(super) fn rect<DB: DrawingBackend>(&mut self, chart: &Chart<'_, DB>, a: (f64, f64), b: (f64, f64)) {
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

    pub(super) fn cost(&self, (x0, y0, x1, y1): (i32, i32, i32, i32)) -> f32 {
        self.samples
            .iter()
            .filter(|&&(x, y, _)| x >= x0 && x <= x1 && y >= y0 && y <= y1)
            .map(|s| s.2)
            .sum()
    }
}

/// Draws the legend (if any entry) in the corner that hides the least data,
/// preferring the upper right.
pub(super) fn draw_legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
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
