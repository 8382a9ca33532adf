//! `ltk train`: one network trained from the base config (the built-in
//! default: LeNet-300-100 on the embedded digits), with its learning curves;
//! and `ltk plot`, which redraws them from the run's saved metrics.

use std::path::PathBuf;

use clap::{Arg, ArgMatches, Args};

use candle_core::Device;

use crate::config::Experiment;
use crate::params::ParamSet;
use crate::paths::{read_json, RunDir};
use crate::report::training::{plot_history, TrainSummary};
use crate::runner::args::{self, CommonArgs};
use crate::runner::context::{RunLock, Start};
use crate::runner::{Plugin, Registry};
use crate::train::{self, ensemble, EvalRecord, Supervised, TrainOptions};
use crate::{Error, Result};

/// `ltk train`.
pub struct Train;

impl Plugin for Train {
    fn name(&self) -> &'static str {
        "train"
    }
    fn command(&self) -> clap::Command {
        CommonArgs::augment_args(clap::Command::new("train"))
            .about(
                "Train a network from an experiment TOML (or the built-in default: LeNet-300-100 on the embedded digits).",
            )
            .arg(
                Arg::new("replicas")
                    .long("replicas")
                    .value_parser(clap::value_parser!(usize))
                    .help(
                        "Train K replicas (init seeds seed..seed+K-1, data-order seeds data_seed..data_seed+K-1), \
                         as one computation on a GPU for MLPs, one after another otherwise; each in replica_<i>/",
                    ),
            )
    }
    fn run(&self, m: &ArgMatches, reg: &Registry) -> Result<()> {
        let a = crate::runner::flags::parse::<CommonArgs>(m)?;
        if a.shard.is_some() {
            return Err(Error::invalid(
                "--shard",
                "an experiment of independent units (`ltk train` is one run)",
                "ltk train",
            ));
        }
        let config = args::load_config(&a, "train", false, &|t| reg.check_tables(t))?;
        let device = crate::device::parse(&a.device)?;
        let exp = config.resolve()?;
        let ctx = args::open_run(&a, &exp.config, "train", None, &[])?;
        let (dir, resume) = (&ctx.dir, ctx.start == Start::Continued);
        let params = exp
            .net
            .param_shapes()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum::<usize>();
        println!(
            "{}: {} ({params} parameters) on {} ({} train / {} test), {} steps of batch {}",
            exp.config.name,
            exp.net.describe(),
            exp.split.train.name,
            exp.split.train.len(),
            exp.split.test.len(),
            exp.spec.steps,
            exp.spec.batch_size
        );
        if let Some(k) = m.get_one::<usize>("replicas").copied() {
            if k == 0 {
                return Err(Error::invalid("--replicas", "at least 1", 0));
            }
            let out = replicas(&exp, &device, k, !a.quiet, dir)?;
            ctx.keep();
            println!("{out}");
            return Ok(());
        }
        let mut model = Supervised::new(exp.net.clone(), exp.config.train.loss, &device);
        let init = exp.net.init(exp.config.seed);
        let opts = TrainOptions {
            run_dir: Some(dir),
            resume,
            progress: !a.quiet,
            ..Default::default()
        };
        let out = train::train(&mut model, &init, &exp.split, &exp.spec, &opts)?;
        out.params.save(&dir.file("final.safetensors"))?;
        let mut summary = TrainSummary::new(exp.net.describe(), params, &out);
        if out.steps_done == out.start_step {
            // A finished run re-opened: no step ran now, so keep the timing measured when it trained.
            if let Ok(old) = read_json::<TrainSummary>(&dir.summary_json()) {
                summary.train_seconds = old.train_seconds;
                summary.samples_per_second = old.samples_per_second;
            }
        }
        summary.write(dir)?;
        plot_history(dir, &out.history, &exp.config.name)?;
        ctx.keep();
        print!("{}", history_table(&out.history));
        println!(
            "final test accuracy {:.2}% after {} steps ({:.1} epochs); {:.0} samples/s; run directory {}",
            100.0 * summary.final_test_accuracy,
            summary.steps,
            summary.epochs,
            summary.samples_per_second,
            dir.root().display()
        );
        Ok(())
    }
}

/// Trains `k` replicas of the run's network through [`ensemble::train_many`]
/// (replica `i`: init seed `seed + i`, data-order seed `data_seed + i`),
/// writes each one's metrics, figures and final parameters to
/// `replica_<i>/`, and returns a summary: final accuracies, their mean and
/// sd, and the replicas' combined samples/s (the quantity batching raises).
fn replicas(exp: &Experiment, device: &Device, k: usize, progress: bool, dir: &RunDir) -> Result<String> {
    let together = ensemble::batches(&exp.net, device) && k > 1;
    let n = crate::memory::parameter_count(exp.net.param_shapes().iter().map(|(_, s)| s)) as u64;
    crate::memory::Estimate::default()
        .add("the replicas' initial parameters", k as u64 * n, 4)
        .add("their trained parameters", k as u64 * n, 4)
        .add(
            "gradients and optimizer state in training",
            if together { k as u64 * n * 3 } else { n * 3 },
            4,
        )
        .check(&format!("`ltk train --replicas {k}`"), "--replicas")?;
    let inits: Vec<ParamSet> = (0..k as u64).map(|i| exp.net.init(exp.config.seed + i)).collect();
    let members: Vec<ensemble::Member> = inits
        .iter()
        .enumerate()
        .map(|(i, init)| ensemble::Member {
            init,
            mask: None,
            frozen: None,
            data_seed: exp.spec.data_seed + i as u64,
            optimizer_state: None,
        })
        .collect();
    let shared = ensemble::Shared {
        net: &exp.net,
        loss: exp.config.train.loss,
        device,
        split: &exp.split,
        spec: &exp.spec,
        start_step: 0,
        keep_optimizer_checkpoints: false,
        progress,
    };
    let t0 = std::time::Instant::now();
    let outs = ensemble::train_many(&shared, &members)?;
    let wall = t0.elapsed().as_secs_f64();
    let params = exp
        .net
        .param_shapes()
        .iter()
        .map(|(_, s)| s.iter().product::<usize>())
        .sum();
    let mut accs = Vec::new();
    let mut train_seconds = 0.0f64;
    let mut text = String::new();
    for (i, o) in outs.into_iter().enumerate() {
        let o = o?;
        let rd = dir.child(&format!("replica_{i}"))?;
        o.params.save(&rd.file("final.safetensors"))?;
        train::trainer::write_history(&rd, &o.history)?;
        let summary = TrainSummary::new(exp.net.describe(), params, &o);
        summary.write(&rd)?;
        plot_history(&rd, &o.history, &format!("{} replica {i}", exp.config.name))?;
        accs.push(summary.final_test_accuracy);
        // Training time without evaluation: shared when trained together.
        let t = (o.steps_done * exp.spec.batch_size) as f64 / o.samples_per_second.max(1e-9);
        train_seconds = if together {
            train_seconds.max(t)
        } else {
            train_seconds + t
        };
        text += &format!(
            "replica {i}: final test accuracy {:.2}%\n",
            100.0 * summary.final_test_accuracy
        );
    }
    let samples = (k * (exp.spec.steps * exp.spec.batch_size)) as f64;
    text += &format!(
        "{k} replicas ({}): final test accuracy {}% (mean ± sd); {:.0} samples/s over all replicas ({:.1} s of training, {:.1} s wall); run directory {}",
        if together { "one computation" } else { "one after another" },
        crate::stats::mean_sd_text(&accs, 100.0, 2),
        samples / train_seconds.max(1e-9),
        train_seconds,
        wall,
        dir.root().display()
    );
    Ok(text)
}

fn history_table(h: &[EvalRecord]) -> String {
    let mut s = format!(
        "{:>8} {:>7} {:>11} {:>10} {:>9}\n",
        "step", "epoch", "train loss", "test loss", "test acc"
    );
    for r in h {
        let tl = r.train_loss.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into());
        s += &format!(
            "{:>8} {:>7.2} {:>11} {:>10.4} {:>8.2}%\n",
            r.step,
            r.epoch,
            tl,
            r.test_loss,
            100.0 * r.test_accuracy
        );
    }
    s
}

/// `ltk plot`.
pub struct Plot;

impl Plugin for Plot {
    fn name(&self) -> &'static str {
        "plot"
    }
    fn command(&self) -> clap::Command {
        clap::Command::new("plot")
            .about("Re-draw the figures of a training run directory from its saved metrics.json.")
            .arg(
                Arg::new("run")
                    .required(true)
                    .value_parser(clap::value_parser!(PathBuf))
                    .help("The run directory (contains metrics.json)."),
            )
    }
    fn run(&self, m: &ArgMatches, _reg: &Registry) -> Result<()> {
        let run = m
            .get_one::<PathBuf>("run")
            .ok_or_else(|| Error::invalid("ltk plot", "a run directory", "none"))?;
        let dir = RunDir::new(run);
        let history: Vec<EvalRecord> = read_json(&dir.metrics_json()).map_err(|e| {
            Error::invalid(
                "ltk plot",
                "a training run directory (with metrics.json)",
                format!("{}: {e}", run.display()),
            )
        })?;
        // A run another process is writing is not redrawn under it.
        let _lock = RunLock::acquire(run)?;
        let title = run
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        plot_history(&dir, &history, &title)?;
        println!(
            "wrote {} and {}",
            dir.figure("accuracy").display(),
            dir.figure("loss").display()
        );
        Ok(())
    }
}
