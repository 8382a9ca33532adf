//! The `ntk_compare` command (also the `ntk_compare` binary, the command
//! users were told to run): its flat config is set by the flags below, a
//! TOML file of the same fields, or `--set`.

use std::path::PathBuf;

use clap::{ArgMatches, Args};

use super::{summarize, CompareConfig, CompareSummary, LrRecord, NtkBase, NtkCompare};
use crate::config::DataSource;
use crate::models::{Activation, Parameterization};
use crate::paths::{read_json, write_json, RunDir, DEFAULT_RUNS_DIR};
use crate::runner::context::{RunContext, Start};
use crate::runner::{Experiment, Outcome, Plugin, Registry, Shard};
use crate::{Error, Result};

/// `--parameterization`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum CliParameterization {
    Ntk,
    Standard,
}

/// `--activation` (the activations with analytic kernels here).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum CliActivation {
    Relu,
    Erf,
    Tanh,
}

#[derive(clap::Args)]
pub struct NtkCompareArgs {
    /// Experiment TOML with the fields of the flags below (flags override it).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Set any config value: a dotted key and a TOML value, repeatable
    /// (e.g. --set data.train_size=512 --set regime_ntk_change=0.05).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Widths, comma separated (default 64,128,256,512,1024,2048).
    #[arg(long, value_delimiter = ',')]
    widths: Option<Vec<usize>>,
    /// Hidden layers (default 2).
    #[arg(long)]
    depth: Option<usize>,
    /// Optimizer steps (default 500; `--iterations`, as in `ltk`, is the same flag).
    #[arg(long, visible_alias = "iterations")]
    steps: Option<usize>,
    /// Learning rate (default N/λ_max of the NTK at init).
    #[arg(long)]
    lr: Option<f64>,
    /// Mini-batch size (default: full batch, i.e. gradient descent).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Parameterization (default ntk).
    #[arg(long, value_enum)]
    parameterization: Option<CliParameterization>,
    /// Activation (default relu).
    #[arg(long, value_enum)]
    activation: Option<CliActivation>,
    /// Data: digits (embedded, default) or an IDX directory (e.g. /usr/share/datasets/fashion-mnist).
    #[arg(long)]
    data: Option<String>,
    /// Training examples (default 256).
    #[arg(long)]
    train_size: Option<usize>,
    /// Test examples (default 256).
    #[arg(long)]
    test_size: Option<usize>,
    /// Init seeds, comma separated (default 0,1,2).
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
    /// Linear-regime threshold: widths whose relative NTK change on the pilot seed (the first) is below it carry the verdicts, tested on the other seeds (default 0.1).
    #[arg(long)]
    regime_ntk_change: Option<f64>,
    /// Compute device: cpu, or cuda[:N] in builds with the `cuda` feature (the network trains and the structured kernels are computed there; the closed-form linear dynamics stay on the CPU).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Parent of the run directory (the run goes to <out>/<name>).
    #[arg(long, default_value = DEFAULT_RUNS_DIR)]
    out: PathBuf,
    /// Run name (default ntk_compare).
    #[arg(long)]
    name: Option<String>,
    /// Start over in a run directory that holds a run of another config or
    /// command (its files are removed, and listed).
    #[arg(long)]
    force: bool,
    /// Only redraw figures and report from an existing run directory's summary.json.
    #[arg(long, value_name = "RUN_DIR")]
    replot: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short)]
    quiet: bool,
    /// Run only shard i of n of the (width, seed) units (0-based, e.g. a
    /// Slurm array task); `ltk merge` combines the shards.
    #[arg(long, value_name = "i/n", allow_hyphen_values = true)]
    shard: Option<String>,
}

/// `ntk_compare` as a command of the registry.
pub struct NtkCompareCommand;

impl Plugin for NtkCompareCommand {
    fn name(&self) -> &'static str {
        NtkCompare::NAME
    }
    fn command(&self) -> clap::Command {
        NtkCompareArgs::augment_args(clap::Command::new("ntk-compare"))
            .about(NtkCompare::ABOUT)
            .allow_negative_numbers(true)
    }
    fn run(&self, m: &ArgMatches, _reg: &Registry) -> Result<()> {
        let a = crate::runner::flags::parse::<NtkCompareArgs>(m)?;
        run(&a)
    }
    fn merge(&self, config_text: &str, shards: &[PathBuf], into: Option<PathBuf>) -> Result<()> {
        let cfg: CompareConfig = toml::from_str(config_text)
            .map_err(|e| crate::config::toml_error(config_text, "the shards' config.toml", &e))?;
        let into = into.unwrap_or_else(|| shards[0].with_file_name(&cfg.name));
        crate::runner::check_shards(shards, &into)?;
        let ctx = RunContext::open(&into, NtkCompare::NAME, config_text, false)?;
        // The learning rate comes from the first shard (every shard chose
        // the same one from the same config).
        let lr: LrRecord = read_json(&NtkBase::lr_path(&RunDir::new(&shards[0])))?;
        let base = NtkBase::with_lr(&cfg, lr.clone())?;
        let s = crate::runner::merge::<NtkCompare>(&base, &cfg, config_text, shards, &ctx)?;
        write_json(&NtkBase::lr_path(&ctx.dir), &lr)?;
        print_summary(&s, &ctx.dir);
        println!("merged {} shards into {}", shards.len(), into.display());
        Ok(())
    }
}

fn build_config(a: &NtkCompareArgs) -> Result<CompareConfig> {
    let (text, origin) = match &a.config {
        Some(p) => (
            std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?,
            p.display().to_string(),
        ),
        None => (String::new(), "the built-in config".to_string()),
    };
    let text = crate::runner::flags::apply_sets(text, &origin, &a.set)?;
    let mut c: CompareConfig = toml::from_str(&text).map_err(|e| crate::config::toml_error(&text, &origin, &e))?;
    if let Some(w) = &a.widths {
        c.widths = w.clone();
    }
    if let Some(d) = a.depth {
        c.depth = d;
    }
    if let Some(s) = a.steps {
        c.steps = s;
    }
    if a.lr.is_some() {
        c.lr = a.lr;
    }
    if a.batch_size.is_some() {
        c.batch_size = a.batch_size;
    }
    if let Some(p) = a.parameterization {
        c.parameterization = match p {
            CliParameterization::Ntk => Parameterization::Ntk,
            CliParameterization::Standard => Parameterization::Standard,
        };
    }
    if let Some(act) = a.activation {
        c.activation = match act {
            CliActivation::Relu => Activation::Relu,
            CliActivation::Erf => Activation::Erf,
            CliActivation::Tanh => Activation::Tanh,
        };
    }
    if let Some(d) = &a.data {
        if d == "digits" {
            c.data.source = DataSource::Digits;
            c.data.dir = None;
        } else {
            c.data.source = DataSource::Idx;
            c.data.dir = Some(PathBuf::from(d));
        }
    }
    if c.data.source == DataSource::Idx && c.data.num_classes.is_none() {
        // The resolved config names the classes (the run's identity includes them).
        c.data.num_classes = Some(crate::data::idx::DEFAULT_NUM_CLASSES);
    }
    if a.train_size.is_some() {
        c.data.train_size = a.train_size;
    }
    if a.test_size.is_some() {
        c.data.test_size = a.test_size;
    }
    if let Some(s) = &a.seeds {
        c.seeds = s.clone();
    }
    if let Some(t) = a.regime_ntk_change {
        c.regime_ntk_change = t;
    }
    if let Some(n) = &a.name {
        c.name = n.clone();
    }
    c.validate()?;
    Ok(c)
}

/// Runs `ntk_compare` / `ltk ntk-compare` with parsed arguments.
pub fn run(a: &NtkCompareArgs) -> Result<()> {
    if let Some(dir) = &a.replot {
        let rd = RunDir::new(dir);
        let old: CompareSummary = read_json(&rd.summary_json()).map_err(|e| {
            Error::invalid(
                "--replot",
                "an ntk_compare run directory",
                format!("{}: {e}", dir.display()),
            )
        })?;
        let _lock = crate::runner::context::RunLock::acquire(dir)?;
        let s = summarize(
            &old.config,
            old.lr,
            old.lr_source,
            (old.train_size, old.test_size),
            old.results,
        )?;
        // The experiment layer's report: with the verdicts in summary.json.
        crate::runner::report::<NtkCompare>(&rd, &s)?;
        print_summary(&s, &rd);
        return Ok(());
    }
    let device = crate::device::parse(&a.device)?;
    let cfg = build_config(a)?;
    // Everything is checked before the run directory is created: the data
    // (sizes, labels) and the memory the widest network needs.
    let split = cfg.data.load()?;
    cfg.memory_estimate(&split)?.check(
        &format!("ntk_compare at width {}", cfg.widths.iter().max().unwrap_or(&0)),
        "--widths",
    )?;
    let shard: Option<Shard> = a.shard.as_deref().map(str::parse).transpose()?;
    let config_text =
        toml::to_string_pretty(&cfg).map_err(|e| Error::invalid("config", "a config TOML can hold", e))?;
    // The one run policy (crate::runner::context): locked; the same config
    // continues with its finished widths; another config is refused unless --force.
    let dir_name = match shard {
        Some(s) => s.dir_name(&cfg.name),
        None => cfg.name.clone(),
    };
    let root = crate::paths::run_root(&a.out, "run name (--name, or `name` in the config)", &dir_name)?;
    let ctx = RunContext::open(&root, NtkCompare::NAME, &config_text, a.force)?;
    if ctx.start == Start::Continued {
        eprintln!(
            "continuing the run in {} (same config; finished widths are kept)",
            root.display()
        );
    }
    let dir = &ctx.dir;
    let lr_path = NtkBase::lr_path(dir);
    // The rate is chosen once per run (it needs every width's kernel at init).
    let base = if ctx.start == Start::Continued && lr_path.exists() {
        NtkBase::with_lr_split(&cfg, read_json(&lr_path)?, split)?
    } else {
        let b = NtkBase::prepare_on(&cfg, split, &device)?;
        write_json(&lr_path, &b.lr)?;
        b
    };
    println!("{}", NtkCompare::banner(&base, &cfg));
    match crate::runner::run::<NtkCompare>(&base, &cfg, &ctx, &device, !a.quiet, shard)? {
        Outcome::Complete(s) => print_summary(&s, dir),
        Outcome::Shard { done, total } => crate::runner::args::print_shard_done(done, total, dir),
    }
    Ok(())
}

fn print_summary(s: &CompareSummary, dir: &RunDir) {
    print!("{}", NtkCompare::console(s));
    print!("{}", crate::report::verdict::claims_text(&s.claims()));
    let figures = dir.root().join("figures");
    if figures.is_dir() {
        println!("report: {}  figures: {}", dir.report_md().display(), figures.display());
    } else {
        println!(
            "report: {} (no figures: nothing was measured)",
            dir.report_md().display()
        );
    }
}
