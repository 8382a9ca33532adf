//! `ltk ntk`: computes and saves the kernels of an MLP on a data set, at
//! initialization (the config's seed) or at saved weights (`--weights`, e.g. a
//! run's `final.safetensors` or a checkpoint), with their spectra and the
//! kernel-regression accuracy they give, in a small report.
//!
//! Kernels: the empirical NTK `Θ(x, x') = J(x) J(x')^T` (Jacot et al. 2018,
//! Eq. 1), traced (`[n, n]`, mean over outputs, neural-tangents'
//! `trace_axes` divided by C) or full (`[n·C, n·C]`), and the
//! infinite-width NTK and NNGP of the same architecture (Lee et al. 2019,
//! Sec. 2; neural-tangents' `stax` recursions). Each is written to
//! `kernels/<name>.safetensors` (one array, `kernel`) and `kernels/<name>.npy`;
//! the labels to `kernels/labels.npy`. The spectrum (largest eigenvalues,
//! effective rank, centered label alignment) is computed for the `[n, n]`
//! kernels; kernel regression (one-hot targets, ridge `λ = ridge · tr K / n`)
//! trains on the n examples and tests on the first `--test-examples` test
//! examples.

use clap::{Arg, ArgMatches, Args};
use serde::Serialize;

use crate::models::{Network, Parameterization};
use crate::ntk::analytic::InfiniteMlp;
use crate::ntk::device::mlp_ntk_for;
use crate::ntk::diagnostics::{kernel_regression, kernel_stats, KernelStats, Regression, MAX_KERNEL_EXAMPLES};
use crate::ntk::empirical::{Kernel, KernelKind};
use crate::params::ParamSet;
use crate::paths::{write_csv, write_json, write_npy_f32, write_text};
use crate::runner::args::{self, CommonArgs};
use crate::runner::{Plugin, Registry};
use crate::{Error, Result};

/// `ltk ntk`.
pub struct NtkKernels;

/// The kernels `--kernels` may name.
const KINDS: [&str; 4] = ["traced", "full", "analytic", "nngp"];

/// One kernel's measurements.
#[derive(Clone, Debug, Serialize)]
struct KernelReport {
    name: String,
    rows: usize,
    cols: usize,
    seconds: f64,
    stats: Option<KernelStats>,
    regression: Option<Regression>,
    files: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
struct NtkSummary {
    model: String,
    at: String,
    data: String,
    examples: usize,
    test_examples: usize,
    ridge: f64,
    kernels: Vec<KernelReport>,
}

impl Plugin for NtkKernels {
    fn name(&self) -> &'static str {
        "ntk"
    }
    fn command(&self) -> clap::Command {
        CommonArgs::augment_args(clap::Command::new("ntk"))
            .about(
                "Compute and save the NTKs of an MLP (empirical traced/full, infinite-width NTK and NNGP) at init or at saved weights, with spectra and kernel-regression accuracy.",
            )
            .arg(
                Arg::new("weights")
                    .long("weights")
                    .value_parser(clap::value_parser!(std::path::PathBuf))
                    .help("Parameters to take the kernels at (a safetensors file of this tool, e.g. runs/<name>/final.safetensors); default: the config's init"),
            )
            .arg(
                Arg::new("kernels")
                    .long("kernels")
                    .value_delimiter(',')
                    .default_value("traced,analytic")
                    .help("Kernels to compute: traced, full, analytic (infinite-width NTK), nngp"),
            )
            .arg(
                Arg::new("examples")
                    .long("examples")
                    .value_parser(clap::value_parser!(usize))
                    .default_value("1000")
                    .help("Training examples the kernels are taken on (the first n of the training split)"),
            )
            .arg(
                Arg::new("test-examples")
                    .long("test-examples")
                    .value_parser(clap::value_parser!(usize))
                    .help("Test examples of the kernel regression (0: none; default: 1000, or the whole test split when smaller)"),
            )
            .arg(
                Arg::new("ridge")
                    .long("ridge")
                    .value_parser(clap::value_parser!(f64))
                    .default_value("1e-4")
                    .help("Kernel-regression ridge, relative to tr K / n"),
            )
    }
    fn run(&self, m: &ArgMatches, reg: &Registry) -> Result<()> {
        let a = crate::runner::flags::parse::<CommonArgs>(m)?;
        if a.shard.is_some() {
            return Err(Error::invalid(
                "--shard",
                "an experiment of independent units (`ltk ntk` is one run)",
                "ltk ntk",
            ));
        }
        let config = args::load_config(&a, "ntk", false, &|t| reg.check_tables(t))?;
        let device = crate::device::parse(&a.device)?;
        let exp = config.resolve()?;
        let Network::Mlp(mlp) = &exp.net else {
            return Err(Error::invalid(
                "model of `ltk ntk`",
                "an MLP ([model] kind = \"mlp\" or \"lenet300_100\")",
                exp.net.describe(),
            ));
        };
        let kinds: Vec<String> = m
            .get_many::<String>("kernels")
            .map(|v| v.cloned().collect())
            .unwrap_or_default();
        if let Some(bad) = kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
            return Err(Error::invalid("--kernels", KINDS.join(", "), bad));
        }
        let n = *m.get_one::<usize>("examples").unwrap_or(&1000);
        let nt = match m.get_one::<usize>("test-examples") {
            Some(&t) => t,
            None => exp.split.test.len().min(1000),
        };
        let ridge = *m.get_one::<f64>("ridge").unwrap_or(&1e-4);
        if n == 0 || n > exp.split.train.len().min(MAX_KERNEL_EXAMPLES) {
            return Err(Error::invalid(
                "--examples",
                format!(
                    "1..={} (the training split, and at most {MAX_KERNEL_EXAMPLES})",
                    exp.split.train.len().min(MAX_KERNEL_EXAMPLES)
                ),
                n,
            ));
        }
        if nt > exp.split.test.len() {
            return Err(Error::invalid(
                "--test-examples",
                format!("0..={} (the test split)", exp.split.test.len()),
                nt,
            ));
        }
        let (params, at) = match m.get_one::<std::path::PathBuf>("weights") {
            Some(p) => {
                let w = ParamSet::load(p)?;
                mlp.check_params(&w)?;
                (w, p.display().to_string())
            }
            None => (
                exp.net.init(exp.config.seed),
                format!("initialization (seed {})", exp.config.seed),
            ),
        };
        let train = exp.split.train.take(n)?;
        let test = if nt > 0 { Some(exp.split.test.take(nt)?) } else { None };
        let ctx = args::open_run(&a, &exp.config, "ntk", None, &[])?;
        let dir = &ctx.dir;
        let c = mlp.output_dim;
        let labels: Vec<f32> = train.labels.iter().map(|&l| l as f32).collect();
        write_npy_f32(&dir.file("kernels/labels.npy"), &[n], &labels)?;
        let (dev, p) = (&device, &params);
        let empirical = |kind: KernelKind| {
            move |xa: &[f32], na: usize, xb: &[f32], nb: usize| -> Result<Vec<f32>> {
                Ok(mlp_ntk_for(dev, mlp, p, xa, na, xb, nb, kind, None, 256)?.data)
            }
        };
        let infinite = |nngp: bool| -> Result<Box<dyn Fn(&[f32], usize, &[f32], usize) -> Result<Vec<f32>>>> {
            let inf = InfiniteMlp::new(mlp.hidden.len() + 1, mlp.activation, mlp.w_std as f64, mlp.b_std as f64)?;
            let par = mlp.parameterization;
            let hidden = mlp.hidden.clone();
            let d = mlp.input_dim;
            Ok(Box::new(move |xa: &[f32], na: usize, xb: &[f32], nb: usize| {
                let k = match par {
                    Parameterization::Ntk => inf.kernels(xa, na, xb, nb, d)?,
                    Parameterization::Standard => inf.kernels_standard(&hidden, xa, na, xb, nb, d)?,
                };
                Ok((if nngp { k.nngp } else { k.ntk })
                    .into_iter()
                    .map(|v| v as f32)
                    .collect())
            }))
        };
        let mut reports = Vec::new();
        for kind in &kinds {
            let t0 = std::time::Instant::now();
            let (k, f): (
                Kernel,
                Option<Box<dyn Fn(&[f32], usize, &[f32], usize) -> Result<Vec<f32>>>>,
            ) = match kind.as_str() {
                "traced" => {
                    let data = empirical(KernelKind::Traced)(&train.x, n, &train.x, n)?;
                    (
                        Kernel {
                            data,
                            rows: n,
                            cols: n,
                            kind: KernelKind::Traced,
                        },
                        Some(Box::new(empirical(KernelKind::Traced))),
                    )
                }
                "full" => {
                    crate::memory::Estimate::default()
                        .add("the full kernel [n·C, n·C], f32", ((n * c) * (n * c)) as u64, 4)
                        .add("its copy for the files", ((n * c) * (n * c)) as u64, 4)
                        .check("`ltk ntk --kernels full`", "--examples")?;
                    let data = empirical(KernelKind::Full)(&train.x, n, &train.x, n)?;
                    (
                        Kernel {
                            data,
                            rows: n * c,
                            cols: n * c,
                            kind: KernelKind::Full,
                        },
                        None,
                    )
                }
                other => {
                    let g = infinite(other == "nngp")?;
                    let data = g(&train.x, n, &train.x, n)?;
                    (
                        Kernel {
                            data,
                            rows: n,
                            cols: n,
                            kind: KernelKind::Traced,
                        },
                        Some(g),
                    )
                }
            };
            let stats = if k.rows == n {
                Some(kernel_stats(&k, &train.labels, train.num_classes, 10)?)
            } else {
                None
            };
            let regression = match (&f, &test) {
                (Some(f), Some(t)) => Some(kernel_regression(f.as_ref(), &train, t, ridge)?),
                _ => None,
            };
            let st = dir.file(&format!("kernels/{kind}.safetensors"));
            let mut ps = ParamSet::new();
            ps.insert(
                "kernel",
                crate::params::Array {
                    shape: vec![k.rows, k.cols],
                    data: k.data.clone(),
                },
            );
            ps.save(&st)?;
            write_npy_f32(&dir.file(&format!("kernels/{kind}.npy")), &[k.rows, k.cols], &k.data)?;
            reports.push(KernelReport {
                name: kind.clone(),
                rows: k.rows,
                cols: k.cols,
                seconds: t0.elapsed().as_secs_f64(),
                stats,
                regression,
                files: vec![format!("kernels/{kind}.safetensors"), format!("kernels/{kind}.npy")],
            });
        }
        let summary = NtkSummary {
            model: exp.net.describe(),
            at,
            data: train.name.clone(),
            examples: n,
            test_examples: nt,
            ridge,
            kernels: reports,
        };
        write_json(&dir.summary_json(), &summary)?;
        let mut rows = Vec::new();
        for r in &summary.kernels {
            if let Some(s) = &r.stats {
                for (i, l) in s.top_eigenvalues.iter().enumerate() {
                    rows.push(vec![r.name.clone(), (i + 1).to_string(), format!("{l}")]);
                }
            }
        }
        write_csv(&dir.file("spectrum.csv"), &["kernel", "index", "eigenvalue"], &rows)?;
        let text = report(&summary);
        write_text(&dir.file("report.md"), &text)?;
        ctx.keep();
        print!("{text}");
        println!("run directory {}", dir.root().display());
        Ok(())
    }
}

/// The report: what was computed, then one table row per kernel.
fn report(s: &NtkSummary) -> String {
    let mut t = format!(
        "# Kernels of {} at {}\n\n{} training examples of {} (kernels), {} test examples (kernel regression, ridge {} · tr K / n).\n\n",
        s.model, s.at, s.examples, s.data, s.test_examples, s.ridge
    );
    t += "| kernel | shape | λ_max | effective rank | label alignment | regression train acc | regression test acc | seconds |\n";
    t += "|---|---|---:|---:|---:|---:|---:|---:|\n";
    for r in &s.kernels {
        let (l, er, al) = match &r.stats {
            Some(st) => (
                format!("{:.4e}", st.top_eigenvalues.first().copied().unwrap_or(f64::NAN)),
                format!("{:.1}", st.effective_rank),
                format!("{:.3}", st.alignment),
            ),
            None => ("–".into(), "–".into(), "–".into()),
        };
        let (tr, te) = match &r.regression {
            Some(g) => (
                format!("{:.2}%", 100.0 * g.train_accuracy),
                format!("{:.2}%", 100.0 * g.test_accuracy),
            ),
            None => ("–".into(), "–".into()),
        };
        t += &format!(
            "| {} | {}×{} | {l} | {er} | {al} | {tr} | {te} | {:.2} |\n",
            r.name, r.rows, r.cols, r.seconds
        );
    }
    t += "\nFiles: `kernels/<kernel>.safetensors` (array `kernel`) and `.npy`, `kernels/labels.npy`, `spectrum.csv` (the 10 largest eigenvalues of each [n, n] kernel), `summary.json`.\n";
    t
}
