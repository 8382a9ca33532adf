//! Integration tests for the PNG figure writers.

use std::path::Path;

use lottery_tangent::report::plot::*;
use lottery_tangent::Error;

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// The file exists, is a PNG and is big enough to hold more than a blank canvas.
fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"));
    assert!(bytes.len() > 8, "{path:?} is too short");
    assert_eq!(bytes[..8], PNG_SIGNATURE, "{path:?} is not a PNG");
    assert!(
        bytes.len() > 5_000 && bytes.len() < 5_000_000,
        "{path:?} has an implausible size of {} bytes",
        bytes.len()
    );
    // IHDR: width and height, big endian, right after the signature and chunk header.
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert!(w >= 100 && h >= 100, "{path:?} is {w}x{h}");
}

fn assert_plot_err<T: std::fmt::Debug>(r: lottery_tangent::Result<T>) {
    match r {
        Err(Error::Plot { path, msg }) => {
            assert!(!path.is_empty());
            assert!(!msg.is_empty());
        }
        other => panic!("expected Error::Plot, got {other:?}"),
    }
}

fn curve(n: usize, f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
    (0..n).map(|i| (i as f64, f(i as f64))).collect()
}

#[test]
fn linear_chart_renders() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("linear.png");
    let chart = LineChart::new("Training loss", "step", "loss")
        .add(Series::line("train", curve(50, |x| 2.0 * (-x / 10.0).exp())))
        .add(Series::line("test", curve(50, |x| 2.1 * (-x / 12.0).exp() + 0.05)).dashed())
        .add(Series::points("eval", curve(10, |x| 1.0 / (1.0 + x))))
        .add(Series::line("with markers", curve(20, |x| 0.1 * x.sin() + 0.5)).with_marker(Marker::LinePoints));
    chart.save(&path).unwrap();
    assert_png(&path);
}

#[test]
fn log_log_chart_with_band_and_hline_renders() {
    let dir = tempfile::tempdir().unwrap();
    // Also checks that a missing parent directory is created.
    let path = dir.path().join("nested/dir/loglog.png");
    let pts: Vec<(f64, f64)> = (0..30)
        .map(|i| {
            let x = 10f64.powf(i as f64 / 5.0);
            (x, 1e3 * x.powf(-0.7))
        })
        .collect();
    let band: Vec<(f64, f64, f64)> = pts.iter().map(|&(x, y)| (x, y * 0.7, y * 1.4)).collect();
    let chart = LineChart::new("Kernel distance vs width", "width", "distance")
        .log_x()
        .log_y()
        .add(Series::line("mean", pts.clone()).with_band(Spread::MinMax("seeds"), band.clone()))
        .add(Series::points("runs", pts.iter().map(|&(x, y)| (x, y * 1.1))).with_band(Spread::Sd("seeds"), band))
        .hline(10.0, "threshold");
    assert_eq!(chart.x_scale, Scale::Log);
    assert_eq!(chart.hlines.len(), 1);
    chart.save(&path).unwrap();
    assert_png(&path);
}

#[test]
fn no_finite_point_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.png");
    let chart = LineChart::new("t", "x", "y").add(Series::line("nan", vec![(f64::NAN, 1.0), (2.0, f64::INFINITY)]));
    assert_plot_err(chart.save(&path));
    assert!(!path.exists());

    let empty = LineChart::new("t", "x", "y");
    assert_plot_err(empty.save(&path));

    let only_hline = LineChart::new("t", "x", "y").hline(1.0, "ref");
    assert_plot_err(only_hline.save(&path));

    // Points that exist but are all non-positive on a log axis.
    let log = LineChart::new("t", "x", "y")
        .log_y()
        .add(Series::line("neg", vec![(1.0, -1.0), (2.0, 0.0)]));
    assert_plot_err(log.save(&path));
    assert!(!path.exists());
}

#[test]
fn log_axis_skips_non_positive_points() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logskip.png");
    let chart = LineChart::new("Some points are not positive", "x", "y")
        .log_x()
        .log_y()
        .add(Series::line(
            "mixed",
            vec![
                (0.0, 1.0),
                (1.0, 0.0),
                (2.0, -3.0),
                (3.0, 5.0),
                (10.0, 50.0),
                (f64::NAN, 2.0),
            ],
        ))
        .add(Series::line("band below zero", curve(20, |x| x + 1.0)).with_band(
            Spread::Sd("runs"),
            (1..20).map(|i| (i as f64, i as f64 - 5.0, i as f64 + 5.0)),
        ))
        .hline(-1.0, "invisible on log axis")
        .hline(20.0, "visible");
    chart.save(&path).unwrap();
    assert_png(&path);
}

#[test]
fn bar_chart_renders_and_checks_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bars.png");
    let cats: Vec<String> = (0..4).map(|i| format!("layer{i}")).collect();
    let chart = BarChart::new("Per-layer sparsity", "layer", "fraction kept", cats.clone())
        .add("round 1", vec![0.8, 0.6, 0.5, 0.9])
        .add("round 2", vec![0.64, 0.36, 0.25, 0.81]);
    chart.save(&path).unwrap();
    assert_png(&path);

    let bad_path = dir.path().join("bad.png");
    let bad = BarChart::new("bad", "layer", "v", cats).add("short", vec![1.0, 2.0]);
    assert_plot_err(bad.save(&bad_path));
    assert!(!bad_path.exists());

    let no_cats = BarChart::new("bad", "layer", "v", Vec::<String>::new()).add("x", vec![]);
    assert_plot_err(no_cats.save(&bad_path));
}

#[test]
fn bar_chart_log_and_negative_values() {
    let dir = tempfile::tempdir().unwrap();
    let cats = vec!["a", "b", "c"];
    let log = BarChart::new("log bars", "c", "v", cats.clone())
        .add("s", vec![1e-6, 0.0, 1e3])
        .log_y();
    let p = dir.path().join("logbars.png");
    log.save(&p).unwrap();
    assert_png(&p);

    let neg = BarChart::new("signed bars", "c", "v", cats).add("s", vec![-1.0, 2.0, f64::NAN]);
    let p = dir.path().join("negbars.png");
    neg.save(&p).unwrap();
    assert_png(&p);
}

#[test]
fn single_point_and_constant_series_render() {
    let dir = tempfile::tempdir().unwrap();
    let cases = vec![
        (
            "single",
            LineChart::new("single", "x", "y").add(Series::line("one", vec![(3.0, 7.0)])),
        ),
        (
            "single_log",
            LineChart::new("single log", "x", "y")
                .log_x()
                .log_y()
                .add(Series::line("one", vec![(3.0, 7.0)]).with_band(Spread::MinMax("seeds"), vec![(3.0, 6.0, 8.0)])),
        ),
        (
            "constant",
            LineChart::new("constant", "x", "y").add(Series::line("flat", curve(10, |_| 0.5))),
        ),
        (
            "zeros",
            LineChart::new("zeros", "x", "y").add(Series::line("zero", curve(10, |_| 0.0))),
        ),
        (
            "constant_log",
            LineChart::new("constant log", "x", "y")
                .log_y()
                .add(Series::line("flat", curve(10, |_| 3.0))),
        ),
        (
            "huge_range",
            LineChart::new("huge range", "x", "y")
                .log_x()
                .log_y()
                .add(Series::line("wide", vec![(1e-8, 1e8), (1.0, 1.0), (1e8, 1e-8)])),
        ),
        (
            "huge_linear",
            LineChart::new("huge linear", "x", "y")
                .add(Series::line("big", vec![(0.0, 1e8), (1.0, 3e8)]))
                .add(Series::line("tiny", vec![(0.0, 1e-8), (1.0, 2e-8)])),
        ),
        (
            "tiny_span",
            LineChart::new("tiny span", "x", "y").add(Series::line("near 1", vec![(0.0, 1.0), (1.0, 1.0 + 1e-12)])),
        ),
        (
            "narrow_log",
            LineChart::new("narrow log", "x", "y")
                .log_y()
                .add(Series::line("inside a decade", vec![(0.0, 0.5), (1.0, 0.9)])),
        ),
    ];
    for (name, chart) in cases {
        let path = dir.path().join(format!("{name}.png"));
        chart.save(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_png(&path);
    }
}

#[test]
fn custom_size_and_many_series() {
    let dir = tempfile::tempdir().unwrap();
    let mut chart = LineChart::new("Twelve series", "x", "y");
    chart.size = (1200, 800);
    for k in 0..12 {
        chart.push(Series::line(format!("s{k}"), curve(30, |x| x * k as f64)));
    }
    let path = dir.path().join("many.png");
    chart.save(&path).unwrap();
    assert_png(&path);

    let tiny = LineChart::new("t", "x", "y")
        .with_size(0, 0)
        .add(Series::line("a", vec![(0.0, 1.0), (1.0, 2.0)]));
    assert_plot_err(tiny.save(&dir.path().join("tiny.png")));
}

/// Writes sample figures into `$TMPDIR/plot_samples` for a visual check:
/// `cargo test --release --test plot -- --ignored`.
#[test]
#[ignore]
fn render_samples_for_inspection() {
    let dir = std::env::temp_dir().join("plot_samples");
    let pts: Vec<(f64, f64)> = (0..40)
        .map(|i| {
            let x = 10f64.powf(i as f64 / 8.0);
            (x, 1e3 * x.powf(-0.7))
        })
        .collect();
    let band: Vec<(f64, f64, f64)> = pts.iter().map(|&(x, y)| (x, y * 0.6, y * 1.6)).collect();
    let chart = LineChart::new(
        "Kernel distance vs width (log-log)",
        "width",
        "relative distance ‖Θ−Θ₀‖",
    )
    .log_x()
    .log_y()
    .add(Series::line("mean over seeds", pts.clone()).with_band(Spread::MinMax("seeds"), band.clone()))
    .add(
        Series::points("seed 0", pts.iter().map(|&(x, y)| (x, y * 1.2))).with_band(
            Spread::MinMax("seeds"),
            band.iter().step_by(4).map(|&(x, l, h)| (x, l * 1.2, h * 1.2)),
        ),
    )
    .add(Series::line("theory ∝ n^-1/2", pts.iter().map(|&(x, _)| (x, 800.0 * x.powf(-0.5)))).dashed())
    .hline(10.0, "threshold");
    chart.save(&dir.join("loglog.png")).unwrap();
    chart.save(Path::new("/tmp/plot_sample.png")).unwrap();

    LineChart::new("Training loss", "step", "loss")
        .add(Series::line("train", curve(50, |x| 2.0 * (-x / 10.0).exp())))
        .add(Series::line("test", curve(50, |x| 2.1 * (-x / 12.0).exp() + 0.05)).dashed())
        .add(Series::points("eval", curve(10, |x| 1.0 / (1.0 + x))))
        .add(Series::line("markers", curve(20, |x| 0.1 * x.sin() + 0.5)).with_marker(Marker::LinePoints))
        .save(&dir.join("linear.png"))
        .unwrap();
    LineChart::new("huge linear", "x", "y")
        .add(Series::line("big", vec![(0.0, 1e8), (1.0, 3e8)]))
        .save(&dir.join("huge_linear.png"))
        .unwrap();
    LineChart::new("tiny linear", "x", "y")
        .add(Series::line("tiny", vec![(0.0, 1e-8), (1.0, 2e-8)]))
        .save(&dir.join("tiny_linear.png"))
        .unwrap();
    LineChart::new("narrow log", "x", "y")
        .log_y()
        .add(Series::line("inside a decade", vec![(0.0, 0.5), (1.0, 0.9)]))
        .save(&dir.join("narrow_log.png"))
        .unwrap();
    LineChart::new("huge range", "x", "y")
        .log_x()
        .log_y()
        .add(Series::line("wide", vec![(1e-8, 1e8), (1.0, 1.0), (1e8, 1e-8)]))
        .save(&dir.join("huge_log.png"))
        .unwrap();
    LineChart::new("single", "x", "y")
        .add(Series::line("one", vec![(3.0, 7.0)]))
        .save(&dir.join("single.png"))
        .unwrap();
    let mut many_series = LineChart::new("Twelve series", "x", "y").with_size(1200, 800);
    for k in 0..12 {
        many_series.push(Series::line(format!("s{k}"), curve(30, |x| x * k as f64)));
    }
    many_series.save(&dir.join("many_series.png")).unwrap();
    LineChart::new("Some points are not positive", "x", "y")
        .log_x()
        .log_y()
        .add(Series::line(
            "mixed",
            vec![(0.0, 1.0), (1.0, 0.0), (2.0, -3.0), (3.0, 5.0), (10.0, 50.0)],
        ))
        .add(Series::line("band below zero", curve(20, |x| x + 1.0)).with_band(
            Spread::Sd("runs"),
            (1..20).map(|i| (i as f64, i as f64 - 5.0, i as f64 + 5.0)),
        ))
        .hline(20.0, "visible")
        .save(&dir.join("log_skip.png"))
        .unwrap();
    let cats: Vec<String> = (0..6).map(|i| format!("conv{i}.weight")).collect();
    BarChart::new("Per-layer sparsity", "layer", "fraction kept", cats)
        .add("round 1", vec![0.8, 0.6, 0.5, 0.9, 0.7, 0.3])
        .add("round 2", vec![0.64, 0.36, 0.25, 0.81, 0.49, 0.09])
        .add("round 3", vec![0.51, 0.22, 0.13, 0.73, 0.34, 0.03])
        .save(&dir.join("bars.png"))
        .unwrap();
    let many: Vec<String> = (0..30).map(|i| format!("layer{i}.weight")).collect();
    BarChart::new("Many categories", "layer", "value", many)
        .add("v", (0..30).map(|i| i as f64 + 1.0))
        .log_y()
        .save(&dir.join("bars_many.png"))
        .unwrap();
}

/// Points with a spread are drawn as plotters error bars (with caps).
#[test]
fn points_with_error_bars_render() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("error_bars.png");
    let pts = curve(8, |x| 50.0 + 4.0 * x);
    let band: Vec<(f64, f64, f64)> = pts.iter().map(|&(x, y)| (x, y - 3.0, y + 2.0 + x)).collect();
    LineChart::new("Accuracy with min-max over seeds", "round", "accuracy (%)")
        .add(Series::points("ticket", pts).with_band(Spread::Sd("seeds"), band))
        .add(Series::line("dense", curve(8, |x| 60.0 + x)))
        .save(&path)
        .unwrap();
    assert_png(&path);
}

/// Every figure comes as PNG, SVG and its data as CSV; the title says what
/// the bands are; legends and data use people's names for methods.
#[test]
fn figures_come_with_svg_and_their_data_and_say_what_their_bands_are() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fig.png");
    LineChart::new("accuracy", "% of weights remaining", "test accuracy (%)")
        .log_x()
        .reverse_x()
        .add(
            Series::line("random_reinit", vec![(100.0, 90.0), (10.0, 80.0), (1.3, 50.0)]).with_band(
                Spread::Sd("seeds"),
                vec![(100.0, 89.0, 91.0), (10.0, 78.0, 82.0), (1.3, 45.0, 55.0)],
            ),
        )
        .add(Series::line("snip", vec![(100.0, 90.0), (10.0, 70.0)]))
        .hline(92.0, "dense network (mean over seeds)")
        .save(&path)
        .unwrap();
    assert!(path.exists());
    let svg = std::fs::read_to_string(dir.path().join("fig.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("bands: ±1 sd over seeds"),
        "{}",
        &svg[..200.min(svg.len())]
    );
    assert!(svg.contains("random reinit") && svg.contains("SNIP"));
    let csv = std::fs::read_to_string(dir.path().join("fig.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "series,x,y,band_low,band_high");
    assert!(lines.contains(&"random reinit,10,80,78,82"), "{csv}");
    assert!(lines.contains(&"SNIP,10,70,,"), "{csv}");
    assert!(lines.contains(&"dense network (mean over seeds),,92,,"), "{csv}");
    // A method keeps its colour whatever else is in the figure.
    assert_eq!(color_of("random_reinit"), color_of("random reinit"));
    assert_ne!(color_of("snip"), color_of("synflow"));
    assert_eq!(human("edge_popup"), "edge-popup");
    assert_eq!(human("mean over pairs"), "mean over pairs");
    // Bar charts too.
    let bars = dir.path().join("bars.png");
    BarChart::new("density", "layer", "% kept", vec!["fc1", "fc2"])
        .add("imp", vec![20.0, 30.0])
        .save(&bars)
        .unwrap();
    let csv = std::fs::read_to_string(dir.path().join("bars.csv")).unwrap();
    assert!(csv.starts_with("series,category,value\nIMP,fc1,20\n"), "{csv}");
    assert!(dir.path().join("bars.svg").exists());
}
