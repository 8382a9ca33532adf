//! The `ntk_compare` command, shared by the `ntk_compare` binary (the
//! command users were told to run) and `ltk ntk-compare`: train a network
//! and its tangent-space linearization side by side across widths and
//! report how far apart they end up (Lee et al. 2019).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use lottery_tangent::config::DataSource;
use lottery_tangent::experiment::{self, Experiment, Shard};
use lottery_tangent::models::{Activation, Parameterization};
use lottery_tangent::ntk::compare::{self, CompareConfig, CompareSummary, LrRecord, NtkBase, NtkCompare};
use lottery_tangent::paths::{read_json, write_json, RunDir, DEFAULT_RUNS_DIR};
use lottery_tangent::run::{RunContext, Start};

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
    /// Widths, comma separated (default 64,128,256,512,1024,2048).
    #[arg(long, value_delimiter = ',')]
    widths: Option<Vec<usize>>,
    /// Hidden layers (default 2).
    #[arg(long)]
    depth: Option<usize>,
    /// Optimizer steps (default 500).
    #[arg(long)]
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
    /// Compute device (the structured kernels and the linearization run on the CPU).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Parent of the run directory (the run goes to <out>/<name>).
    #[arg(long, default_value = DEFAULT_RUNS_DIR)]
    out: PathBuf,
    /// Run name (default ntk_compare).
    #[arg(long)]
    name: Option<String>,
    /// Accepted for old scripts: re-running the same config always keeps the
    /// finished widths and runs only the missing ones.
    #[arg(long, conflicts_with = "force")]
    resume: bool,
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

fn build_config(a: &NtkCompareArgs) -> Result<CompareConfig> {
    let mut c = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            toml::from_str::<CompareConfig>(&text)
                .map_err(|e| lottery_tangent::config::toml_error(&text, &p.display().to_string(), &e))?
        }
        None => CompareConfig::default(),
    };
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
        c.data.num_classes = Some(lottery_tangent::data::idx::DEFAULT_NUM_CLASSES);
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
        let old: CompareSummary =
            read_json(&rd.summary_json()).with_context(|| format!("{} is not an ntk_compare run", dir.display()))?;
        let _lock = lottery_tangent::run::RunLock::acquire(dir)?;
        let s = compare::summarize(
            &old.config,
            old.lr,
            old.lr_source,
            (old.train_size, old.test_size),
            old.results,
        )?;
        // The experiment layer's report: with the verdicts in summary.json.
        experiment::report::<NtkCompare>(&rd, &s)?;
        print_summary(&s, &rd);
        return Ok(());
    }
    let device = lottery_tangent::device::parse(&a.device)?;
    if !device.is_cpu() {
        bail!("ntk_compare's structured kernels and linearization run on the CPU only; use --device cpu");
    }
    let cfg = build_config(a)?;
    // Everything is checked before the run directory is created: the data
    // (sizes, labels) and the memory the widest network needs.
    let split = cfg.data.load().context("loading the data")?;
    cfg.memory_estimate(&split)?.check(
        &format!("ntk_compare at width {}", cfg.widths.iter().max().unwrap_or(&0)),
        "--widths",
    )?;
    let shard: Option<Shard> = a.shard.as_deref().map(str::parse).transpose()?;
    let config_text = toml::to_string_pretty(&cfg)?;
    // The one run policy (lottery_tangent::run): locked; the same config
    // continues with its finished widths; another config is refused unless --force.
    let dir_name = match shard {
        Some(s) => s.dir_name(&cfg.name),
        None => cfg.name.clone(),
    };
    let root = lottery_tangent::paths::run_root(&a.out, "run name (--name, or `name` in the config)", &dir_name)?;
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
        let b = NtkBase::prepare_with(&cfg, split).context("choosing the learning rate")?;
        write_json(&lr_path, &b.lr)?;
        b
    };
    println!(
        "ntk_compare: {} hidden layers, widths {:?}, {} train / {} test ({}), {} steps, lr {:.4} ({})",
        cfg.depth,
        cfg.widths,
        base.split.train.len(),
        base.split.test.len(),
        base.split.train.name,
        cfg.steps,
        base.lr.lr,
        base.lr.source
    );
    match experiment::run::<NtkCompare>(&base, &cfg, &ctx, &device, !a.quiet, shard)? {
        experiment::Outcome::Complete(s) => print_summary(&s, dir),
        experiment::Outcome::Shard { done, total } => println!(
            "shard done: {done} of {total} units in {}; combine the shards with `ltk merge {}/{}.shard-*`",
            dir.root().display(),
            a.out.display(),
            cfg.name
        ),
    }
    Ok(())
}

/// `ltk merge` of ntk_compare shards: the learning rate comes from the first
/// shard (every shard chose the same one from the same config).
#[allow(dead_code)] // called by `ltk merge`; the `ntk_compare` alias has no merge
pub fn merge(config_text: &str, shards: &[PathBuf], ctx: &RunContext) -> Result<()> {
    let cfg: CompareConfig = toml::from_str(config_text).context("the shards' config.toml")?;
    let lr: LrRecord = read_json(&NtkBase::lr_path(&RunDir::new(&shards[0])))?;
    let base = NtkBase::with_lr(&cfg, lr.clone())?;
    let s = experiment::merge::<NtkCompare>(&base, &cfg, config_text, shards, ctx)?;
    write_json(&NtkBase::lr_path(&ctx.dir), &lr)?;
    print_summary(&s, &ctx.dir);
    Ok(())
}

fn print_summary(s: &CompareSummary, dir: &RunDir) {
    print!("{}", NtkCompare::console(s));
    print!("{}", lottery_tangent::verdict::claims_text(&s.claims()));
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
