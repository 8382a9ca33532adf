//! The report: figures, tables and the text of report.md.

#[allow(unused_imports)]
use super::*;

/// Writes every figure of a summary into `dir/figures`.
pub fn plot_summary(dir: &RunDir, s: &CompareSummary) -> Result<()> {
    let regime = &s.regime_widths;
    // The three headline quantities (and the init kernel error) vs width.
    let x_label = format!(
        "width (linear regime, pilot seed's ΔΘ/Θ < {}: {}; dashed: fits there)",
        s.config.regime_ntk_change,
        fmt_widths(regime)
    );
    let mut chart = LineChart::new("Full vs. linearized network", &x_label, "relative gap")
        .log_x()
        .log_y();
    let main: Vec<&QuantityFit> = s.quantities.iter().filter(|q| !q.key.starts_with("layer_")).collect();
    for (i, q) in main.iter().enumerate() {
        push_quantity(&mut chart, q, i, regime);
    }
    push_references(&mut chart, main.first().copied(), regime);
    save_chart(&chart, dir, "gaps_vs_width")?;

    // Per-layer relative weight change (Lee et al. Fig. 1).
    let layers: Vec<&QuantityFit> = s.quantities.iter().filter(|q| q.key.starts_with("layer_")).collect();
    if !layers.is_empty() {
        let mut lc = LineChart::new("Relative weight change per layer", &x_label, "‖W_T − W_0‖ / ‖W_0‖")
            .log_x()
            .log_y();
        for (i, q) in layers.iter().enumerate() {
            push_quantity(&mut lc, q, i, regime);
        }
        push_references(&mut lc, layers.first().copied(), regime);
        save_chart(&lc, dir, "layer_weight_change")?;
    }

    let measured: Vec<(&WidthResult, &Measurements)> =
        s.results.iter().filter_map(|r| r.measured().map(|m| (r, m))).collect();
    // Accuracy vs width.
    let mut acc = LineChart::new("Test accuracy vs. width", "width", "test accuracy (%)").log_x();
    type Acc = fn(&Measurements) -> Option<f64>;
    let accs: [(&str, Acc); 3] = [
        ("full network", |m| Some(m.accuracy_full)),
        ("linearized network", |m| Some(m.accuracy_linear)),
        ("kernel (traced closed form)", |m| Some(m.accuracy_kernel)),
    ];
    for (label, f) in accs {
        let pts = width_stats(&s.results, &s.config.widths, &f);
        acc.push(
            Series::line(label, pts.iter().map(|p| (p.width as f64, 100.0 * p.mean)))
                .with_marker(Marker::LinePoints)
                .with_band(
                    Spread::Sd("seeds"),
                    pts.iter()
                        .map(|p| (p.width as f64, 100.0 * (p.mean - p.sd), 100.0 * (p.mean + p.sd))),
                ),
        );
    }
    save_chart(&acc, dir, "accuracy_vs_width")?;

    // RMSE over training, per width (first seed).
    let seed = s.config.seeds[0];
    let mut over = LineChart::new(
        "RMSE(full, linear) on test outputs during training",
        "training step",
        "RMSE",
    )
    .log_y();
    for (r, m) in measured.iter().filter(|(r, _)| r.seed == seed) {
        over.push(Series::line(
            format!("width {}", r.width),
            m.rmse_over_training.iter().map(|&(k, v)| (k as f64, v)),
        ));
    }
    save_chart(&over, dir, "rmse_over_training")?;

    // Output trajectories for the smallest and largest width.
    let widths = &s.config.widths;
    for w in [widths.first(), widths.last()].into_iter().flatten() {
        if let Some((_, m)) = measured.iter().find(|(r, _)| r.width == *w && r.seed == seed) {
            let mut t = LineChart::new(
                &format!("Test outputs (true class) during training, width {w}"),
                "training step",
                "output",
            );
            let k = m.trajectories.first().map(|p| p.full.len()).unwrap_or(0);
            for i in 0..k {
                let steps = m.trajectories.iter().map(|p| p.step as f64);
                t.push(
                    Series::line(
                        format!("point {i}: full"),
                        steps.clone().zip(m.trajectories.iter().map(|p| p.full[i])),
                    )
                    .with_color(i),
                );
                t.push(
                    Series::line(
                        format!("point {i}: linearized"),
                        steps.clone().zip(m.trajectories.iter().map(|p| p.linear[i])),
                    )
                    .dashed()
                    .with_color(i),
                );
                t.push(
                    Series::points(
                        format!("point {i}: traced-kernel closed form"),
                        steps.zip(m.trajectories.iter().map(|p| p.kernel[i])),
                    )
                    .with_color(i),
                );
            }
            save_chart(&t, dir, &format!("trajectories_width_{w}"))?;
        }
    }

    // NTK spectrum at init.
    let mut spec = LineChart::new(
        "NTK spectrum at initialization (training inputs)",
        "eigenvalue index",
        "eigenvalue of Θ_0 / N",
    )
    .log_x()
    .log_y();
    for (r, m) in measured.iter().filter(|(r, _)| r.seed == seed) {
        spec.push(Series::line(
            format!("width {}", r.width),
            m.ntk_spectrum
                .iter()
                .enumerate()
                .filter(|(_, &v)| v > 0.0)
                .map(|(i, &v)| ((i + 1) as f64, v)),
        ));
    }
    save_chart(&spec, dir, "ntk_spectrum")
}

/// Saves `chart` unless it has nothing to draw (e.g. every run diverged):
/// an empty figure is skipped, not an error.
pub(super) fn save_chart(chart: &LineChart, dir: &RunDir, name: &str) -> Result<()> {
    use crate::report::plot::Scale;
    let ok = |v: f64, sc: Scale| v.is_finite() && (sc == Scale::Linear || v > 0.0);
    let drawable = chart.series.iter().any(|s| {
        s.points
            .iter()
            .any(|&(x, y)| ok(x, chart.x_scale) && ok(y, chart.y_scale))
    });
    if drawable {
        chart.save(&dir.figure(name))?;
    }
    Ok(())
}

/// One quantity: mean with its seed band, the fitted line over the widths the
/// verdict uses, and circles on the linear-regime widths.
pub(super) fn push_quantity(chart: &mut LineChart, q: &QuantityFit, color: usize, regime: &[usize]) {
    let slope = q
        .fit
        .as_ref()
        .map(|f| format!("slope {:+.2}", f.slope))
        .unwrap_or_else(|| "no fit".into());
    chart.push(
        Series::line(
            format!("{} ({slope}, {})", q.label, q.claim.verdict.word()),
            q.per_width.iter().map(|p| (p.width as f64, p.mean)),
        )
        .with_marker(Marker::LinePoints)
        .with_band(
            Spread::Sd("seeds"),
            q.per_width
                .iter()
                .map(|p| (p.width as f64, p.mean - p.sd, p.mean + p.sd)),
        )
        .with_color(color),
    );
    if let Some(f) = &q.fit {
        let used: Vec<(f64, f64)> = q
            .per_width
            .iter()
            .filter(|p| !q.regime_only || regime.contains(&p.width))
            .map(|p| (p.width as f64, f.at(p.width as f64)))
            .collect();
        chart.push(Series::line("", used).dashed().with_color(color));
    }
    if q.regime_only {
        chart.push(
            Series::points(
                "",
                q.per_width
                    .iter()
                    .filter(|p| regime.contains(&p.width))
                    .map(|p| (p.width as f64, p.mean)),
            )
            .with_color(color),
        );
    }
}

/// Reference lines width^-1/2 and width^-1 through `anchor`'s first
/// linear-regime point (or its first point).
pub(super) fn push_references(chart: &mut LineChart, anchor: Option<&QuantityFit>, regime: &[usize]) {
    let Some(q) = anchor else { return };
    let Some(p0) = q
        .per_width
        .iter()
        .find(|p| regime.contains(&p.width))
        .or_else(|| q.per_width.first())
    else {
        return;
    };
    let xs: Vec<f64> = q.per_width.iter().map(|p| p.width as f64).collect();
    for (k, (label, e)) in [RATE_HALF, RATE_ONE].into_iter().enumerate() {
        let pts: Vec<(f64, f64)> = xs
            .iter()
            .map(|&x| (x, p0.mean * (x / p0.width as f64).powf(e)))
            .collect();
        chart.push(
            Series::line(format!("reference {label} (through {})", q.label), pts)
                .dashed()
                .with_color(6 + k),
        );
    }
}

/// A one-line progress summary of one width and seed.
pub fn width_line(r: &WidthResult) -> String {
    match &r.outcome {
        Outcome::Measured(m) => format!(
            "width {:>5} seed {}: RMSE(full,lin) {:.3e}  Δθ/θ {:.3e}  ΔΘ/Θ {:.3e}  acc full/lin/kernel {:.1}/{:.1}/{:.1}%  ({:.1} s: kernels {:.1}, full {:.1}, linear {:.1})",
            r.width,
            r.seed,
            m.rmse_full_linear,
            m.relative_parameter_change,
            m.relative_ntk_change,
            100.0 * m.accuracy_full,
            100.0 * m.accuracy_linear,
            100.0 * m.accuracy_kernel,
            r.timings.total,
            r.timings.kernels,
            r.timings.full,
            r.timings.linear
        ),
        Outcome::Diverged { model, step, loss } => format!(
            "width {:>5} seed {}: {} DIVERGED at step {step} (loss {}; λ_max at init {:.1}), left out of the fits ({:.1} s)",
            r.width,
            r.seed,
            model.word(),
            loss.map(|l| format!("{l:.3e}")).unwrap_or_else(|| "not finite".into()),
            r.lambda_max_init,
            r.timings.total
        ),
    }
}

/// The human-readable table.
pub fn table(s: &CompareSummary) -> String {
    let mut t = String::new();
    t.push_str("| width | seed | params | λ_max(Θ_0) | RMSE(full,lin) | RMSE(lin,kernel) | Δθ/θ | ΔΘ/Θ | Θ̂ vs Θ∞ | acc full | acc lin | acc kernel | s |\n");
    t.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in &s.results {
        match &r.outcome {
            Outcome::Measured(m) => t.push_str(&format!(
                "| {} | {} | {} | {:.1} | {:.3e} | {:.3e} | {:.3e} | {:.3e} | {} | {:.1}% | {:.1}% | {:.1}% | {:.1} |\n",
                r.width,
                r.seed,
                r.parameters,
                r.lambda_max_init,
                m.rmse_full_linear,
                m.rmse_linear_kernel,
                m.relative_parameter_change,
                m.relative_ntk_change,
                m.ntk_vs_analytic.map(|v| format!("{v:.3e}")).unwrap_or_else(|| "–".into()),
                100.0 * m.accuracy_full,
                100.0 * m.accuracy_linear,
                100.0 * m.accuracy_kernel,
                r.timings.total
            )),
            Outcome::Diverged { model, step, .. } => t.push_str(&format!(
                "| {} | {} | {} | {:.1} | {} diverged at step {step} | | | | | | | | {:.1} |\n",
                r.width,
                r.seed,
                r.parameters,
                r.lambda_max_init,
                model.word(),
                r.timings.total
            )),
        }
    }
    t
}

/// The fitted slopes, one line per quantity, and the local slopes.
pub fn slope_lines(s: &CompareSummary) -> String {
    let mut out = format!(
        "linear-regime widths ({} ΔΘ/Θ < {}): {}\n",
        s.regime_seed
            .map(|p| format!("pilot seed {p}'s"))
            .unwrap_or_else(|| "the only seed's".into()),
        s.config.regime_ntk_change,
        fmt_widths(&s.regime_widths)
    );
    for q in &s.quantities {
        out.push_str(&format!(
            "slope of {} vs width: {} on {} widths; all widths {}; bound exponent {} -> {}\n",
            q.key,
            q.fit
                .as_ref()
                .map(|f| f.describe())
                .unwrap_or_else(|| "not fitted".into()),
            if q.regime_only { "linear-regime" } else { "all" },
            q.fit_all
                .as_ref()
                .map(|f| f.describe())
                .unwrap_or_else(|| "not fitted".into()),
            q.bound.map(|b| format!("{b:+.3}")).unwrap_or_else(|| "unknown".into()),
            q.claim.verdict.word()
        ));
    }
    let local: Vec<String> = s
        .local_rmse_slopes
        .iter()
        .map(|(a, b, v)| format!("{a}->{b}: {v:+.2}"))
        .collect();
    out.push_str(&format!(
        "local slopes of mean RMSE(full, linear) between consecutive widths: {}\n",
        local.join(", ")
    ));
    out
}

/// Per-width wall time: total over seeds and its split.
pub fn timing_lines(s: &CompareSummary) -> String {
    let mut out = String::from(
        "| width | seeds | total s | kernels s | full training s | linearized s |\n|---:|---:|---:|---:|---:|---:|\n",
    );
    for &w in &s.config.widths {
        let rs: Vec<&WidthResult> = s.results.iter().filter(|r| r.width == w).collect();
        let sum = |f: fn(&Timings) -> f64| rs.iter().map(|r| f(&r.timings)).sum::<f64>();
        out.push_str(&format!(
            "| {w} | {} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            rs.len(),
            sum(|t| t.total),
            sum(|t| t.kernels),
            sum(|t| t.full),
            sum(|t| t.linear)
        ));
    }
    out
}

/// Writes `summary.json`, `report.md` and the figures.
pub fn write_report(dir: &RunDir, s: &CompareSummary) -> Result<()> {
    plot_summary(dir, s)?;
    // Only the figures that were drawn (none when every run diverged).
    let figures: String = [
        ("gaps", "gaps_vs_width"),
        ("layers", "layer_weight_change"),
        ("accuracy", "accuracy_vs_width"),
        ("rmse over training", "rmse_over_training"),
        ("spectrum", "ntk_spectrum"),
    ]
    .iter()
    .filter(|(_, f)| dir.figure(f).exists())
    .map(|(alt, f)| format!("![{alt}](figures/{f}.png)\n"))
    .collect();
    let figures = if figures.is_empty() {
        "None drawn: no (width, seed) was measured (each one diverged).\n".to_string()
    } else {
        figures
    };
    let c = &s.config;
    let linear = match s.results.first().map(|r| r.linearization) {
        Some(LinearMethod::Trained) => "trained step by step with the same mini-batches (no closed form for SGD)",
        _ => "exact closed form of full-batch GD from the full NTK at init (not trained)",
    };
    let md = format!(
        "# ntk_compare: full network vs. linearization\n\n\
         MLP with {} hidden layers ({}, {:?} parameterization, W_std = {}, b_std = {}), MSE on one-hot targets, \
         {} train / {} test examples, {} steps of SGD (batch {}), learning rate {:.4} ({}), seeds {:?}. \
         Linearized network: {}.\n\n\
         {}\n\
         ## Slopes against width\n\n```\n{}```\n\n\
         ## Wall time per width (all seeds)\n\n{}\n\
         ## Figures\n\n{}\n{}",
        c.depth,
        c.activation.name(),
        c.parameterization,
        c.w_std,
        c.b_std,
        s.train_size,
        s.test_size,
        c.steps,
        c.batch_size.unwrap_or(s.train_size),
        s.lr,
        s.lr_source,
        c.seeds,
        linear,
        table(s),
        slope_lines(s),
        timing_lines(s),
        figures,
        verdict::claims_markdown(&s.claims())
    );
    write_text(&dir.report_md(), &md)
}
