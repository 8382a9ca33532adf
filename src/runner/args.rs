//! The flags every experiment shares ([`CommonArgs`]: config file, run
//! directory, data, model and training overrides, `--set`, `--shard`), and
//! what a command does with them: read the config, open the run directory,
//! run and print.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use super::context::{RunContext, Start};
use super::{Experiment, Outcome, Shard};
use crate::config::{DataSource, ExperimentConfig};
use crate::models::ModelConfig;
use crate::paths::{RunDir, DEFAULT_RUNS_DIR};
use crate::{Error, Result};

/// The flags of every experiment on the base config (and of `train`).
#[derive(Args, Clone, Debug)]
#[command(allow_negative_numbers = true)]
pub struct CommonArgs {
    /// Experiment TOML (see experiments/). Flags below override its values.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Set any config value: a dotted key and a TOML value, repeatable
    /// (e.g. --set imp.prune.rate=0.2 --set train.optimizer.lr=0.05).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Parent directory of run directories; the run goes to <out>/<name>.
    #[arg(long, default_value = DEFAULT_RUNS_DIR)]
    pub out: PathBuf,
    /// Run name (default: the config's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Compute device: cpu, or cuda[:N] in builds with the `cuda` feature.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Start over in a run directory that holds a run of another config
    /// (its files are removed, and listed). Without it, the same config
    /// continues an interrupted run from its last saved state.
    #[arg(long)]
    pub force: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Data set: digits (embedded), idx (needs --idx-dir), teacher
    /// (synthetic), modular, cifar10 / cifar100 (need --data-dir), numpy
    /// (--data-dir: an .npz file or a directory of .npy files with x_train,
    /// y_train, x_test, y_test), or a directory of IDX files (as
    /// `ntk_compare --data PATH`).
    #[arg(long, value_name = "SOURCE|DIR")]
    pub data: Option<String>,
    /// Data directory: IDX files (MNIST / Fashion-MNIST, e.g. /usr/share/datasets/fashion-mnist), or the CIFAR binary files with --data cifar10 / cifar100 (`--data-dir` is the same flag). Without --data it keeps a config's CIFAR, NumPy or IDX source, and means IDX files otherwise.
    #[arg(long, visible_alias = "data-dir")]
    pub idx_dir: Option<PathBuf>,
    /// Use a seeded random subset of this many training examples.
    #[arg(long)]
    pub train_size: Option<usize>,
    /// Move this fraction of the training labels to another class (seeded; test labels stay clean).
    #[arg(long)]
    pub label_noise: Option<f64>,
    /// Model: lenet300_100, mlp (with --hidden), conv, lenet5, conv2/4/6,
    /// resnet20/56 or vgg11/13/16/19. A model chosen here brings its paper's
    /// training defaults for what the config does not set (`ltk show-config`).
    #[arg(long, value_enum)]
    pub model: Option<ModelKind>,
    /// Channel multiplier of a ResNet or VGG (ResNet-20 x4: --model resnet20 --width 4).
    #[arg(long, value_name = "K")]
    pub width: Option<usize>,
    /// Hidden widths of an MLP, comma separated (e.g. 512,512).
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// Training length in epochs (replaces iterations).
    #[arg(long, conflicts_with = "iterations")]
    pub epochs: Option<f64>,
    /// Training length in optimizer steps (replaces epochs; `--steps`, as
    /// in `ntk_compare`, is the same flag).
    #[arg(long, visible_alias = "steps")]
    pub iterations: Option<usize>,
    /// Mini-batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Base learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Init seed (also the data-order seed unless --data-seed is given).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Data-order seed (the SGD noise).
    #[arg(long)]
    pub data_seed: Option<u64>,
    /// Run only shard i of n of the experiment's independent units (0-based,
    /// e.g. a Slurm array task: --shard $SLURM_ARRAY_TASK_ID/$N), into
    /// <out>/<name>.shard-i-of-n; `ltk merge` combines the shards.
    #[arg(long, value_name = "i/n", allow_hyphen_values = true)]
    pub shard: Option<String>,
}

impl CommonArgs {
    /// `--shard`, parsed.
    pub fn shard(&self) -> Result<Option<Shard>> {
        self.shard.as_deref().map(str::parse).transpose()
    }
}

/// The ids of the common flags: a config key with one of these names is
/// set with `--set` only.
pub fn reserved() -> Vec<String> {
    let c = CommonArgs::augment_args(clap::Command::new("common"));
    c.get_arguments()
        .map(|a| a.get_id().as_str().to_string())
        .chain(["help".to_string(), "version".to_string()])
        .collect()
}

/// `--model`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelKind {
    #[value(name = "lenet300_100")]
    Lenet300_100,
    Mlp,
    Conv,
    Lenet5,
    Conv2,
    Conv4,
    Conv6,
    /// ResNet-20 with BatchNorm (He et al. 2016 as open_lth builds it).
    Resnet20,
    /// ResNet-56 with BatchNorm.
    Resnet56,
    /// open_lth's CIFAR VGG-11 with BatchNorm.
    Vgg11,
    /// VGG-13 with BatchNorm.
    Vgg13,
    /// VGG-16 with BatchNorm (Frankle et al. 2020's VGG).
    Vgg16,
    /// VGG-19 with BatchNorm (Frankle & Carbin 2019's VGG).
    Vgg19,
}

/// Reads the config (the file, or the built-in default named `kind`),
/// applies `--set`, checks the experiment tables with `check` (the
/// registry's), and applies the data, model and training flags.
/// `owns_table`: whether `kind` reads a table of its own (a config without
/// one gets a note).
pub fn load_config(
    a: &CommonArgs,
    kind: &str,
    owns_table: bool,
    check: &dyn Fn(&BTreeMap<String, toml::Value>) -> Result<()>,
) -> Result<ExperimentConfig> {
    let (text, origin) = match &a.config {
        Some(p) => (
            std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?,
            p.display().to_string(),
        ),
        None => (format!("name = \"{kind}\"\n"), "the built-in config".to_string()),
    };
    let text = super::flags::apply_sets(text, &origin, &a.set)?;
    let mut config = ExperimentConfig::from_toml(&text, &origin)?;
    check(&config.tables).map_err(|e| Error::Parse {
        path: origin.clone(),
        msg: e.to_string(),
    })?;
    if let Some(p) = &a.config {
        if owns_table && !config.tables.contains_key(kind) {
            eprintln!(
                "note: {} has no [{kind}] table: the `{kind}` defaults apply (`ltk show-config --config {}` prints them)",
                p.display(),
                p.display()
            );
        }
    }
    apply_overrides(&mut config, a)?;
    // The model's training defaults and the data's preprocessing follow
    // the flags' model and data, for the keys the config does not set;
    // the training flags then override them.
    config.apply_defaults(&crate::config::SetKeys::of(&text));
    apply_train_overrides(&mut config, a);
    Ok(config)
}

/// `--data`: a source name, or a directory of IDX files.
fn data_flag(v: &str) -> Result<(DataSource, Option<PathBuf>)> {
    if let Ok(d) = <DataSource as clap::ValueEnum>::from_str(v, true) {
        return Ok((d, None));
    }
    let p = PathBuf::from(v);
    if p.is_dir() {
        return Ok((DataSource::Idx, Some(p)));
    }
    Err(Error::invalid(
        "--data",
        "digits, idx, teacher, modular, cifar10, cifar100, numpy, or a directory of IDX files",
        format!("`{v}` (no such directory)"),
    ))
}

fn apply_overrides(c: &mut ExperimentConfig, a: &CommonArgs) -> Result<()> {
    if let Some(n) = &a.name {
        c.name = n.clone();
    }
    let data = a.data.as_deref().map(data_flag).transpose()?;
    if let Some((_, Some(dir))) = &data {
        if a.idx_dir.is_some() {
            return Err(Error::invalid("--data DIR", "one data directory", "--idx-dir as well"));
        }
        c.data.dir = Some(dir.clone());
    }
    if let Some(d) = data.map(|d| d.0) {
        c.data.source = d;
    }
    if let Some(dir) = &a.idx_dir {
        c.data.dir = Some(dir.clone());
        // A directory alone keeps a config's directory source (CIFAR, NumPy,
        // IDX); from a source without one it means IDX files.
        let has_dir = matches!(
            c.data.source,
            DataSource::Idx | DataSource::Cifar10 | DataSource::Cifar100 | DataSource::Numpy
        );
        if a.data.is_none() && !has_dir {
            c.data.source = DataSource::Idx;
        }
    }
    if a.train_size.is_some() {
        c.data.train_size = a.train_size;
    }
    if a.label_noise.is_some() {
        c.data.label_noise = a.label_noise;
    }
    if let (Some(m), Some(_)) = (a.model, &a.hidden) {
        if m != ModelKind::Mlp {
            let name = clap::ValueEnum::to_possible_value(&m)
                .map(|v| v.get_name().to_string())
                .unwrap_or_default();
            return Err(Error::invalid(
                "--hidden",
                "the widths of an MLP (--model mlp --hidden ...)",
                format!("--model {name}, which has fixed layers"),
            ));
        }
    }
    if let Some(m) = a.model {
        c.model = match m {
            ModelKind::Lenet300_100 => ModelConfig::Lenet300_100,
            ModelKind::Mlp => ModelConfig::Mlp {
                hidden: a.hidden.clone().unwrap_or_else(|| vec![512]),
                activation: crate::models::Activation::Relu,
                parameterization: crate::models::Parameterization::Standard,
                w_std: None,
                b_std: None,
            },
            ModelKind::Conv => {
                toml::from_str("kind = \"conv\"").map_err(|e| Error::invalid("--model conv", "the default conv", e))?
            }
            ModelKind::Lenet5 => ModelConfig::Lenet5,
            ModelKind::Conv2 => ModelConfig::Conv2,
            ModelKind::Conv4 => ModelConfig::Conv4,
            ModelKind::Conv6 => ModelConfig::Conv6,
            ModelKind::Resnet20 => ModelConfig::Resnet { depth: 20, width: 16 },
            ModelKind::Resnet56 => ModelConfig::Resnet { depth: 56, width: 16 },
            ModelKind::Vgg11 | ModelKind::Vgg13 | ModelKind::Vgg16 | ModelKind::Vgg19 => ModelConfig::Vgg {
                depth: match m {
                    ModelKind::Vgg11 => 11,
                    ModelKind::Vgg13 => 13,
                    ModelKind::Vgg16 => 16,
                    _ => 19,
                },
                width_multiplier: 1,
            },
        };
    } else if let Some(h) = &a.hidden {
        match &mut c.model {
            ModelConfig::Mlp { hidden, .. } => *hidden = h.clone(),
            _ => {
                return Err(Error::invalid(
                    "--hidden",
                    "an MLP model (--model mlp)",
                    "another model",
                ))
            }
        }
    }
    if let Some(k) = a.width {
        let name = "--width";
        match &mut c.model {
            _ if k == 0 => return Err(Error::invalid(name, "a channel multiplier >= 1", 0)),
            ModelConfig::Resnet { width, .. } => *width = 16 * k,
            ModelConfig::Vgg { width_multiplier, .. } => *width_multiplier = k,
            _ => {
                return Err(Error::invalid(
                    name,
                    "a ResNet or VGG model (--model resnet20, resnet56, vgg11 ... vgg19)",
                    "another model",
                ))
            }
        }
    }
    Ok(())
}

/// The training flags (after the model's defaults).
fn apply_train_overrides(c: &mut ExperimentConfig, a: &CommonArgs) {
    if a.epochs.is_some() {
        c.train.epochs = a.epochs;
        c.train.iterations = None;
    }
    if a.iterations.is_some() {
        c.train.iterations = a.iterations;
        c.train.epochs = None;
    }
    if let Some(b) = a.batch_size {
        c.train.batch_size = b;
    }
    if let Some(lr) = a.lr {
        c.train.optimizer = c.train.optimizer.with_lr(lr);
    }
    if let Some(s) = a.seed {
        c.seed = s;
    }
    if a.data_seed.is_some() {
        c.train.data_seed = a.data_seed;
    }
}

/// Opens the run directory of `config` (`<out>/<name>`, or the shard's)
/// under the one run policy ([`RunContext`]): locked, the same config
/// continues, a changed one is refused unless `--force`.
/// `grow` names the lists (dotted keys) whose extension grows the run.
pub fn open_run(
    a: &CommonArgs,
    config: &ExperimentConfig,
    kind: &str,
    shard: Option<Shard>,
    grow: &[String],
) -> Result<RunContext> {
    let dir_name = match shard {
        Some(s) => s.dir_name(&config.name),
        None => config.name.clone(),
    };
    let root = crate::paths::run_root(&a.out, "run name (--name, or `name` in the config)", &dir_name)?;
    let ctx = RunContext::open_growing(&root, kind, &config.to_toml()?, a.force, grow)?;
    match &ctx.start {
        Start::Continued => eprintln!(
            "continuing the run in {} (same config; finished work is kept)",
            root.display()
        ),
        Start::Grown { added } => eprintln!(
            "growing the run in {} ({}): finished units are kept, the new ones run",
            root.display(),
            added.join("; ")
        ),
        _ => {}
    }
    Ok(ctx)
}

/// Runs an experiment in its run context and prints its tables and
/// verdicts (or, for a shard, how to merge).
pub fn run_and_print<E: Experiment>(
    base: &E::Base,
    cfg: &E::Config,
    ctx: &RunContext,
    device: &candle_core::Device,
    a: &CommonArgs,
    shard: Option<Shard>,
) -> Result<()> {
    let t0 = std::time::Instant::now();
    match super::run::<E>(base, cfg, ctx, device, !a.quiet, shard)? {
        Outcome::Complete(s) => {
            print!("{}", E::console(&s));
            println!(
                "{:.1} s; run directory {}",
                t0.elapsed().as_secs_f64(),
                ctx.dir.root().display()
            );
            print!("{}", crate::report::verdict::claims_text(&E::claims(&s)));
        }
        Outcome::Shard { done, total } => print_shard_done(done, total, &ctx.dir),
    }
    Ok(())
}

/// What a finished shard prints.
pub fn print_shard_done(done: usize, total: usize, dir: &RunDir) {
    let root = dir.root();
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let run = name.rsplit_once(".shard-").map(|(r, _)| r).unwrap_or(&name);
    println!(
        "shard done: {done} of {total} units in {}; combine the shards with `ltk merge {}/{run}.shard-*`",
        root.display(),
        crate::paths::parent_dir(root).display()
    );
}
