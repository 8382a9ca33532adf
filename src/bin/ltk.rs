//! `ltk`: the lottery-ticket / tangent-kernel toolkit's main command.
//!
//! Subcommands parse arguments, load configs and data, call the library and
//! write results; all the math lives in the library.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use lottery_tangent::config::{DataSource, ExperimentConfig};
use lottery_tangent::experiment::{self, Experiment, Shard};
use lottery_tangent::imp::{self, ImpConfig};
use lottery_tangent::lmc::{self, LmcConfig};
use lottery_tangent::models::ModelConfig;
use lottery_tangent::ntk::compare::{CompareConfig, NtkCompare};
use lottery_tangent::paths::{read_json, RunDir, DEFAULT_RUNS_DIR};
use lottery_tangent::run::{RunContext, Start};
use lottery_tangent::strong::experiment::{Strong, StrongConfig};
use lottery_tangent::supermask;
use lottery_tangent::supermask::SupermaskConfig;
use lottery_tangent::train::report::{plot_history, TrainSummary};
use lottery_tangent::train::{self, EvalRecord, Supervised, TrainOptions};

#[derive(Parser)]
#[command(
    name = "ltk",
    version,
    about = "Lottery tickets and neural tangent kernels: run experiments, check the theory, draw figures."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[path = "shared/ntk_compare_cli.rs"]
mod ntk_compare_cli;

#[derive(Subcommand)]
enum Command {
    /// Full network vs. its linearization across widths (Lee et al. 2019), with verdicts; the same as the `ntk_compare` binary.
    #[command(allow_negative_numbers = true)]
    NtkCompare(ntk_compare_cli::NtkCompareArgs),
    /// Train a network from an experiment TOML (or the built-in default: LeNet-300-100 on the embedded digits).
    Train(TrainArgs),
    /// Iterative magnitude pruning with rewinding, controls and Zhou et al. variants (the TOML's [imp] table).
    Imp(ImpArgs),
    /// Linear mode connectivity / instability analysis under SGD noise (the TOML's [lmc] table).
    Lmc(LmcArgs),
    /// Strong lottery tickets: subset-sum pruning of random networks (Pensia et al. 2020) and edge-popup (the TOML's [strong] table).
    Strong(StrongArgs),
    /// Supermasks (Zhou et al. 2019): one-shot masks by each criterion applied to the untrained network (the TOML's [supermask] table).
    Supermask(SupermaskArgs),
    /// Pruning at initialization (random, magnitude, SNIP, GraSP, SynFlow, PHEW) against the IMP ticket, with the shuffle and reinit sanity checks of Frankle et al. 2021 (the TOML's [pai] table).
    Pai(PaiArgs),
    /// Masks (IMP ticket, supermask, PHEW, edge-popup, a weight-agnostic search, random) evaluated with one shared weight value, no training (Gaier & Ha 2019; the TOML's [weight_agnostic] table).
    WeightAgnostic(WeightAgnosticArgs),
    /// Multi-prize tickets (Diffenderfer & Kailkhura 2021): biprop subnetworks of random binary weights (and sign activations) vs the dense trained network, across widths (the TOML's [multi_prize] table).
    MultiPrize(MultiPrizeArgs),
    /// Elastic tickets (Chen et al. 2021): IMP tickets stretched to twice the depth and squeezed to half, against IMP on the receiving network and random masks (the TOML's [elastic] table).
    Elastic(ElasticArgs),
    /// Tickets and scale: IMP on the MLP scaled by width factors, tickets compared at the same number of remaining weights (the TOML's [ticket_scale] table).
    TicketScale(TicketScaleArgs),
    /// Grokking on modular addition (Power et al. 2022): the network and its linearization from the same init, accuracy, weight norm and NTK change over log-spaced steps (the TOML's [grokking] table; `[data] source = "modular"`).
    Grokking(GrokkingArgs),
    /// Kernel velocity and stability (Fort et al. 2020): along one dense run per seed, the NTK's distance between Θ_t and Θ_t+Δ and to Θ_T, beside the LMC instability of children spawned at each k (the TOML's [kernel_velocity] table).
    KernelVelocity(KernelVelocityArgs),
    /// Tickets in the tangent space: IMP tickets (rewinding k = 0 and k > 0), random reinit, random pruning and pruning-at-init masks, each with its masked NTK at the start (spectrum, effective rank, label alignment), its accuracy trained and linearized at the start, and its NTK change (the TOML's [ticket_ntk] table).
    TicketNtk(TicketNtkArgs),
    /// Model-wise double descent with label noise (Nakkiran et al. 2019): test error vs width for the network, its linearization, NTK kernel regression and IMP tickets (the TOML's [double_descent] table; `[data] label_noise`).
    DoubleDescent(DoubleDescentArgs),
    /// IMP with rewinding to k = 0 and k > 0 at several learning rates (and warmup), with each subnetwork's instability (the TOML's [lr_rewind] table).
    LrRewind(LrRewindArgs),
    /// Lueker's subset-sum experiment: best approximation error of n Uniform[-1,1] candidates vs n.
    SubsetSum(SubsetSumArgs),
    /// Re-draw the figures of a run directory from its saved metrics.json.
    Plot {
        /// The run directory (contains metrics.json).
        run: PathBuf,
    },
    /// Combine the shard directories of one run (same command and config) into
    /// one run directory with its summary, report and figures.
    Merge {
        /// Shard directories (e.g. runs/NAME.shard-*).
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// The merged run directory (default: <parent>/<name> of the shards).
        #[arg(long)]
        into: Option<PathBuf>,
    },
    /// Print an experiment config with every default filled in (the built-in one without --config).
    ShowConfig {
        /// Experiment TOML to resolve.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Args)]
struct ImpArgs {
    #[command(flatten)]
    common: TrainArgs,
    /// Pruning rounds after the dense run.
    #[arg(long)]
    rounds: Option<usize>,
    /// IMP replicates (init and data-order seeds), comma separated.
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
    /// Rewind step k (0 = original init).
    #[arg(long)]
    rewind_step: Option<usize>,
}

#[derive(Args)]
struct LmcArgs {
    #[command(flatten)]
    common: TrainArgs,
    /// Spawn steps k, comma separated (e.g. 0,25,100,500,2000).
    #[arg(long, value_delimiter = ',')]
    ks: Option<Vec<usize>>,
    /// Pairs of copies per k.
    #[arg(long)]
    pairs: Option<usize>,
    /// Interpolation points.
    #[arg(long)]
    points: Option<usize>,
    /// One-mask mode: analyze the subnetwork with this fixed mask at every k
    /// (e.g. runs/imp_x/seed_0/round_07/mask.safetensors); replaces [lmc.imp].
    /// Not Frankle et al. 2020's per-k IMP procedure, which [lmc.imp] runs.
    #[arg(long)]
    mask: Option<PathBuf>,
    /// Start each child from the parent's optimizer state (momentum) at k
    /// instead of a fresh optimizer (the default, as in open_lth).
    #[arg(long)]
    inherit_optimizer_state: bool,
}

#[derive(Args)]
struct StrongArgs {
    #[command(flatten)]
    common: TrainArgs,
    /// Random paths per target weight, comma separated (e.g. 2,4,8,16,21).
    #[arg(long, value_delimiter = ',')]
    paths: Option<Vec<usize>>,
    /// Edge-popup kept fractions, comma separated (empty skips edge-popup).
    #[arg(long, value_delimiter = ',')]
    keep: Option<Vec<f64>>,
}

#[derive(Args)]
struct SupermaskArgs {
    #[command(flatten)]
    common: TrainArgs,
    #[command(flatten)]
    masks: MaskArgs,
}

/// `--densities` and `--seeds` of the mask experiments.
#[derive(Args)]
struct MaskArgs {
    /// Target densities (fractions of weights kept), comma separated.
    #[arg(long, value_delimiter = ',')]
    densities: Option<Vec<f64>>,
    /// Replicates (init and data-order seeds), comma separated.
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
}

impl MaskArgs {
    /// Replaces a config's densities and seeds by those given on the command line.
    fn apply(&self, densities: &mut Vec<f64>, seeds: &mut Vec<u64>) {
        if let Some(d) = &self.densities {
            *densities = d.clone();
        }
        if let Some(s) = &self.seeds {
            *seeds = s.clone();
        }
    }
}

#[derive(Args)]
struct PaiArgs {
    #[command(flatten)]
    common: TrainArgs,
    /// Methods, comma separated.
    #[arg(long, value_delimiter = ',', value_enum)]
    methods: Option<Vec<lottery_tangent::pai::PaiMethod>>,
    #[command(flatten)]
    masks: MaskArgs,
}

#[derive(Args)]
struct WeightAgnosticArgs {
    #[command(flatten)]
    common: TrainArgs,
    #[command(flatten)]
    masks: MaskArgs,
    /// Shared weight values, comma separated.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    weights: Option<Vec<f32>>,
}

#[derive(Args)]
struct MultiPrizeArgs {
    #[command(flatten)]
    common: TrainArgs,
    /// Multipliers of the hidden widths, comma separated (e.g. 0.25,0.5,1,2).
    #[arg(long, value_delimiter = ',')]
    width_factors: Option<Vec<f64>>,
    /// Fraction of every layer kept by the pruned arms.
    #[arg(long)]
    keep: Option<f64>,
    /// Pruned arms, comma separated (the dense target always runs).
    #[arg(long, value_delimiter = ',', value_enum)]
    arms: Option<Vec<lottery_tangent::multi_prize::Arm>>,
    /// Replicates (init and data-order seeds), comma separated.
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
}

#[derive(Args)]
struct ElasticArgs {
    #[command(flatten)]
    common: TrainArgs,
    #[command(flatten)]
    masks: MaskArgs,
    /// Blocks (hidden-to-hidden layers) of the shallow network; the deep one has twice as many.
    #[arg(long)]
    blocks: Option<usize>,
}

#[derive(Args)]
struct TicketScaleArgs {
    #[command(flatten)]
    common: TrainArgs,
    /// Remaining weights as fractions of the unscaled network's (comma separated), and seeds.
    #[command(flatten)]
    masks: MaskArgs,
    /// Multipliers of the hidden widths, comma separated (e.g. 0.5,1,2,4).
    #[arg(long, value_delimiter = ',')]
    width_factors: Option<Vec<f64>>,
}

#[derive(Args)]
struct GrokkingArgs {
    #[command(flatten)]
    common: TrainArgs,
    /// Replicates (init and data-order seeds), comma separated.
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
    /// Train the network only, not its linearization.
    #[arg(long)]
    no_linearize: bool,
}

#[derive(Args)]
struct DoubleDescentArgs {
    #[command(flatten)]
    common: TrainArgs,
    /// Hidden widths, comma separated.
    #[arg(long, value_delimiter = ',')]
    widths: Option<Vec<usize>>,
    /// Replicates (init and data-order seeds), comma separated.
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
}

#[derive(Args)]
struct TicketNtkArgs {
    #[command(flatten)]
    common: TrainArgs,
    /// Target densities (comma separated) and seeds.
    #[command(flatten)]
    masks: MaskArgs,
    /// IMP rewinding steps k, comma separated.
    #[arg(long, value_delimiter = ',')]
    rewind_steps: Option<Vec<usize>>,
    /// Skip the linearized runs.
    #[arg(long)]
    no_linearize: bool,
}

#[derive(Args)]
struct KernelVelocityArgs {
    #[command(flatten)]
    common: TrainArgs,
    /// Replicates (parents: init and data-order seeds), comma separated.
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
    /// Spawn steps k of the LMC children, comma separated.
    #[arg(long, value_delimiter = ',')]
    ks: Option<Vec<usize>>,
    /// Pairs of children per k.
    #[arg(long)]
    pairs: Option<usize>,
    /// Δ: the velocity compares the kernels at t and t + Δ.
    #[arg(long)]
    delta: Option<usize>,
}

#[derive(Args)]
struct LrRewindArgs {
    #[command(flatten)]
    common: TrainArgs,
    /// Rewinding steps k, comma separated.
    #[arg(long, value_delimiter = ',')]
    ks: Option<Vec<usize>>,
}

#[derive(Args)]
struct SubsetSumArgs {
    /// Candidate counts n, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "4,6,8,10,12,14,16,18,20,22,24")]
    ns: Vec<usize>,
    /// Independent draws of the candidates per n.
    #[arg(long, default_value_t = 20)]
    trials: usize,
    /// Evenly spaced targets in [-1, 1].
    #[arg(long, default_value_t = 201)]
    grid: usize,
    /// Seed of the candidate draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Parent of the run directory.
    #[arg(long, default_value = DEFAULT_RUNS_DIR)]
    out: PathBuf,
    /// Run name.
    #[arg(long, default_value = "subset_sum")]
    name: String,
    /// Start over in a run directory of another config or command.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
struct TrainArgs {
    /// Experiment TOML (see experiments/). Flags below override its values.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Parent directory of run directories; the run goes to <out>/<name>.
    #[arg(long, default_value = DEFAULT_RUNS_DIR)]
    out: PathBuf,
    /// Run name (default: the config's name).
    #[arg(long)]
    name: Option<String>,
    /// Compute device: cpu, or cuda[:N] in builds with the `cuda` feature.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Accepted for old scripts: re-running the same config always continues
    /// an interrupted run from its last saved state.
    #[arg(long, conflicts_with = "force")]
    resume: bool,
    /// Start over in a run directory that holds a run of another config
    /// (its files are removed, and listed).
    #[arg(long)]
    force: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Data set: digits (embedded), idx (needs --idx-dir) or teacher (synthetic).
    #[arg(long, value_enum)]
    data: Option<DataSource>,
    /// Directory of IDX files (MNIST / Fashion-MNIST), e.g. /usr/share/datasets/fashion-mnist.
    #[arg(long)]
    idx_dir: Option<PathBuf>,
    /// Use a seeded random subset of this many training examples.
    #[arg(long)]
    train_size: Option<usize>,
    /// Move this fraction of the training labels to another class (seeded; test labels stay clean).
    #[arg(long)]
    label_noise: Option<f64>,
    /// Model: lenet300_100, mlp (with --hidden) or conv.
    #[arg(long, value_enum)]
    model: Option<ModelKind>,
    /// Hidden widths of an MLP, comma separated (e.g. 512,512).
    #[arg(long, value_delimiter = ',')]
    hidden: Option<Vec<usize>>,
    /// Training length in epochs (replaces iterations).
    #[arg(long, conflicts_with = "iterations")]
    epochs: Option<f64>,
    /// Training length in optimizer steps (replaces epochs).
    #[arg(long)]
    iterations: Option<usize>,
    /// Mini-batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Base learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Init seed (also the data-order seed unless --data-seed is given).
    #[arg(long)]
    seed: Option<u64>,
    /// Data-order seed (the SGD noise).
    #[arg(long)]
    data_seed: Option<u64>,
    /// Run only shard i of n of the experiment's independent units (0-based,
    /// e.g. a Slurm array task: --shard $SLURM_ARRAY_TASK_ID/$N), into
    /// <out>/<name>.shard-i-of-n; `ltk merge` combines the shards.
    /// Supported by: imp, lmc, lr-rewind, ntk-compare, pai, strong, supermask.
    #[arg(long, value_name = "i/n", allow_hyphen_values = true)]
    shard: Option<String>,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    match Cli::parse().command {
        Command::NtkCompare(a) => ntk_compare_cli::run(&a),
        Command::Train(a) => cmd_train(a),
        Command::Imp(a) => cmd_imp(a),
        Command::Lmc(a) => cmd_lmc(a),
        Command::Strong(a) => cmd_strong(a),
        Command::Supermask(a) => cmd_supermask(a),
        Command::Pai(a) => cmd_pai(a),
        Command::WeightAgnostic(a) => cmd_weight_agnostic(a),
        Command::MultiPrize(a) => cmd_multi_prize(a),
        Command::Elastic(a) => cmd_elastic(a),
        Command::TicketScale(a) => cmd_ticket_scale(a),
        Command::Grokking(a) => cmd_grokking(a),
        Command::KernelVelocity(a) => cmd_kernel_velocity(a),
        Command::TicketNtk(a) => cmd_ticket_ntk(a),
        Command::DoubleDescent(a) => cmd_double_descent(a),
        Command::LrRewind(a) => cmd_lr_rewind(a),
        Command::Merge { shards, into } => cmd_merge(shards, into),
        Command::SubsetSum(a) => cmd_subset_sum(a),
        Command::Plot { run } => cmd_plot(run),
        Command::ShowConfig { config } => {
            let mut c = match config {
                Some(p) => ExperimentConfig::load(&p)?,
                None => ExperimentConfig::default(),
            };
            let exp = c.resolve()?;
            // Show the pruning rates actually used (the output layer's default half rate).
            let prunable = exp.net.prunable();
            if let Some(mut i) = c.table::<ImpConfig>("imp")? {
                i.prune = i.prune.resolved(&prunable);
                c.set_table("imp", &i)?;
            }
            if let Some(mut l) = c.table::<LmcConfig>("lmc")? {
                if let Some(li) = l.imp.as_mut() {
                    li.prune = li.prune.resolved(&prunable);
                }
                c.set_table("lmc", &l)?;
            }
            if let Some(mut m) = c.table::<SupermaskConfig>("supermask")? {
                m.prune = m.prune.resolved(&prunable);
                c.set_table("supermask", &m)?;
            }
            if let Some(mut p) = c.table::<lottery_tangent::pai::experiment::PaiConfig>("pai")? {
                p.prune = p.prune.resolved(&prunable);
                c.set_table("pai", &p)?;
            }
            if let Some(mut w) = c.table::<lottery_tangent::weight_agnostic::WeightAgnosticConfig>("weight_agnostic")? {
                w.prune = w.prune.resolved(&prunable);
                c.set_table("weight_agnostic", &w)?;
            }
            if let Some(st) = c.table::<StrongConfig>("strong")? {
                c.set_table("strong", &st)?;
            }
            print!("{}", c.to_toml()?);
            Ok(())
        }
    }
}

/// `--model`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ModelKind {
    #[value(name = "lenet300_100")]
    Lenet300_100,
    Mlp,
    Conv,
    Lenet5,
    Conv2,
    Conv4,
    Conv6,
    /// ResNet-20 with BatchNorm (depth and width: `kind = "resnet"` in a config).
    Resnet20,
}

/// Commands on the experiment layer (shards and merge).
const SHARDED: [&str; 15] = [
    "double_descent",
    "elastic",
    "grokking",
    "imp",
    "kernel_velocity",
    "lmc",
    "lr_rewind",
    "multi_prize",
    "ntk_compare",
    "pai",
    "strong",
    "supermask",
    "ticket_ntk",
    "ticket_scale",
    "weight_agnostic",
];

fn apply_overrides(c: &mut ExperimentConfig, a: &TrainArgs) -> Result<()> {
    if let Some(n) = &a.name {
        c.name = n.clone();
    }
    if let Some(d) = a.data {
        if d == DataSource::Modular && c.data.source != DataSource::Modular {
            // One-hot operands: the image default (standardize) does not apply.
            c.data.preprocess = lottery_tangent::data::Preprocess::None;
        }
        c.data.source = d;
    }
    if let Some(dir) = &a.idx_dir {
        c.data.dir = Some(dir.clone());
        if a.data.is_none() {
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
            bail!("--hidden sets the widths of an MLP; --model {name} has fixed layers (use --model mlp --hidden ...)");
        }
    }
    if let Some(m) = a.model {
        c.model = match m {
            ModelKind::Lenet300_100 => ModelConfig::Lenet300_100,
            ModelKind::Mlp => ModelConfig::Mlp {
                hidden: a.hidden.clone().unwrap_or_else(|| vec![512]),
                activation: lottery_tangent::models::Activation::Relu,
                parameterization: lottery_tangent::models::Parameterization::Standard,
                w_std: None,
                b_std: None,
            },
            ModelKind::Conv => toml::from_str("kind = \"conv\"")?,
            ModelKind::Lenet5 => ModelConfig::Lenet5,
            ModelKind::Conv2 => ModelConfig::Conv2,
            ModelKind::Conv4 => ModelConfig::Conv4,
            ModelKind::Conv6 => ModelConfig::Conv6,
            ModelKind::Resnet20 => ModelConfig::Resnet { depth: 20, width: 16 },
        };
    } else if let Some(h) = &a.hidden {
        match &mut c.model {
            ModelConfig::Mlp { hidden, .. } => *hidden = h.clone(),
            _ => bail!("--hidden needs an MLP model (--model mlp)"),
        }
    }
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
    Ok(())
}

/// Loads the config, applies the flags, resolves it and opens the run
/// directory under the one run policy (`lottery_tangent::run`): locked, the
/// same config continues, a changed one is refused unless `--force`.
/// `section` applies the subcommand's own flags to its config table and
/// validates it, before any directory is created.
fn prepare(
    a: &TrainArgs,
    kind: &str,
    section: impl FnOnce(&mut lottery_tangent::config::Experiment) -> Result<()>,
) -> Result<(lottery_tangent::config::Experiment, RunContext, candle_core::Device)> {
    let mut config = match &a.config {
        Some(p) => ExperimentConfig::load(p)?,
        None => ExperimentConfig {
            name: kind.into(),
            ..Default::default()
        },
    };
    if let Some(p) = &a.config {
        if lottery_tangent::experiment::TABLES.contains(&kind) && !config.tables.contains_key(kind) {
            eprintln!(
                "note: {} has no [{kind}] table: the `{kind}` defaults apply (`ltk show-config --config {}` prints them)",
                p.display(),
                p.display()
            );
        }
    }
    apply_overrides(&mut config, a)?;
    let device = lottery_tangent::device::parse(&a.device)?;
    let mut exp = config.resolve().context("invalid experiment")?;
    section(&mut exp).context("invalid experiment")?;
    let shard: Option<Shard> = a.shard.as_deref().map(str::parse).transpose()?;
    if shard.is_some() && !SHARDED.contains(&kind) {
        bail!("--shard: `{kind}` is not on the experiment layer yet; shards work with: {SHARDED:?}");
    }
    let dir_name = match shard {
        Some(s) => s.dir_name(&exp.config.name),
        None => exp.config.name.clone(),
    };
    let root = lottery_tangent::paths::run_root(&a.out, "run name (--name, or `name` in the config)", &dir_name)?;
    let ctx = RunContext::open(&root, kind, &exp.config.to_toml()?, a.force)?;
    if ctx.start == Start::Continued {
        eprintln!(
            "continuing the run in {} (same config; finished work is kept)",
            root.display()
        );
    }
    Ok((exp, ctx, device))
}

fn cmd_train(a: TrainArgs) -> Result<()> {
    let (exp, ctx, device) = prepare(&a, "train", |_| Ok(()))?;
    let (dir, resume) = (&ctx.dir, ctx.start == Start::Continued);
    let root = dir.root().to_path_buf();
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
    print_history(&out.history);
    println!(
        "final test accuracy {:.2}% after {} steps ({:.1} epochs); {:.0} samples/s; run directory {}",
        100.0 * summary.final_test_accuracy,
        summary.steps,
        summary.epochs,
        summary.samples_per_second,
        root.display()
    );
    Ok(())
}

fn print_history(h: &[EvalRecord]) {
    println!(
        "{:>8} {:>7} {:>11} {:>10} {:>9}",
        "step", "epoch", "train loss", "test loss", "test acc"
    );
    for r in h {
        let tl = r.train_loss.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into());
        println!(
            "{:>8} {:>7.2} {:>11} {:>10.4} {:>8.2}%",
            r.step,
            r.epoch,
            tl,
            r.test_loss,
            100.0 * r.test_accuracy
        );
    }
}

fn cmd_plot(run: PathBuf) -> Result<()> {
    let dir = RunDir::new(&run);
    let history: Vec<EvalRecord> =
        read_json(&dir.metrics_json()).with_context(|| format!("{} is not a training run directory", run.display()))?;
    // A run another process is writing is not redrawn under it.
    let _lock = lottery_tangent::run::RunLock::acquire(&run)?;
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

fn cmd_imp(a: ImpArgs) -> Result<()> {
    let (exp, ctx, device) = prepare(&a.common, "imp", |exp| {
        let mut cfg = exp.config.table::<ImpConfig>("imp")?.unwrap_or_default();
        if let Some(r) = a.rounds {
            cfg.rounds = r;
        }
        if let Some(s) = &a.seeds {
            cfg.seeds = s.clone();
        }
        if let Some(k) = a.rewind_step {
            cfg.rewind_step = k;
        }
        cfg.prune = cfg.prune.resolved(&exp.net.prunable());
        cfg.validate(exp)?;
        exp.config.set_table("imp", &cfg)?;
        Ok(())
    })?;
    let cfg = exp.config.table::<ImpConfig>("imp")?.unwrap_or_default();
    println!(
        "{}: IMP on {} ({}), {} rounds, rewind to step {}, {:?} pruning at rate {} ({:?}), seeds {:?}, {} steps per run",
        exp.config.name,
        exp.net.describe(),
        exp.split.train.name,
        cfg.rounds,
        cfg.rewind_step,
        cfg.prune.criterion,
        cfg.prune.rate,
        cfg.prune.scope,
        cfg.seeds,
        exp.spec.steps
    );
    run_experiment::<imp::Imp>(&exp, &cfg, &ctx, &device, &a.common)
}

fn cmd_lmc(a: LmcArgs) -> Result<()> {
    let (exp, ctx, device) = prepare(&a.common, "lmc", |exp| {
        let mut cfg = exp.config.table::<LmcConfig>("lmc")?.unwrap_or_default();
        if let Some(k) = &a.ks {
            cfg.ks = k.clone();
        }
        if let Some(p) = a.pairs {
            cfg.pairs = p;
        }
        if let Some(p) = a.points {
            cfg.points = p;
        }
        if a.inherit_optimizer_state {
            cfg.inherit_optimizer_state = true;
        }
        if a.mask.is_some() {
            cfg.mask = a.mask.clone();
            cfg.sparse_density = None;
            cfg.imp = None;
        }
        if let Some(i) = &mut cfg.imp {
            i.prune = i.prune.resolved(&exp.net.prunable());
        }
        cfg.plan(exp)?;
        exp.config.set_table("lmc", &cfg)?;
        Ok(())
    })?;
    let cfg = exp.config.table::<LmcConfig>("lmc")?.unwrap_or_default();
    println!(
        "{}: instability analysis of {} on {}, k in {:?}, {} pairs, {} points, {} steps",
        exp.config.name,
        exp.net.describe(),
        exp.split.train.name,
        cfg.ks,
        cfg.pairs,
        cfg.points,
        exp.spec.steps
    );
    run_experiment::<lmc::Lmc>(&exp, &cfg, &ctx, &device, &a.common)
}

/// Runs an experiment on the layer in its run context and prints its tables
/// and verdicts (or, for a shard, how to merge).
fn run_experiment<E: Experiment<Base = lottery_tangent::config::Experiment>>(
    exp: &lottery_tangent::config::Experiment,
    cfg: &E::Config,
    ctx: &RunContext,
    device: &candle_core::Device,
    a: &TrainArgs,
) -> Result<()> {
    let shard: Option<Shard> = a.shard.as_deref().map(str::parse).transpose()?;
    let t0 = std::time::Instant::now();
    match experiment::run::<E>(exp, cfg, ctx, device, !a.quiet, shard)? {
        experiment::Outcome::Complete(s) => {
            print!("{}", E::console(&s));
            println!(
                "{:.1} s; run directory {}",
                t0.elapsed().as_secs_f64(),
                ctx.dir.root().display()
            );
            print!("{}", lottery_tangent::verdict::claims_text(&E::claims(&s)));
        }
        experiment::Outcome::Shard { done, total } => print_shard_done(done, total, &ctx.dir, &a.out, &exp.config.name),
    }
    Ok(())
}

/// Merges shards of one experiment and prints its tables and verdicts.
fn merge_experiment<E: Experiment<Base = lottery_tangent::config::Experiment>>(
    exp: &lottery_tangent::config::Experiment,
    config_text: &str,
    shards: &[PathBuf],
    ctx: &RunContext,
) -> Result<()> {
    let cfg = exp.config.table::<E::Config>(E::NAME)?.unwrap_or_default();
    let s = experiment::merge::<E>(exp, &cfg, config_text, shards, ctx)?;
    print!("{}", E::console(&s));
    print!("{}", lottery_tangent::verdict::claims_text(&E::claims(&s)));
    Ok(())
}

fn cmd_strong(a: StrongArgs) -> Result<()> {
    let (exp, ctx, device) = prepare(&a.common, "strong", |exp| {
        let mut cfg = exp.config.table::<StrongConfig>("strong")?.unwrap_or_default();
        if let Some(p) = &a.paths {
            cfg.paths = p.clone();
        }
        if let Some(k) = &a.keep {
            cfg.edge_popup_keep = k.clone();
        }
        cfg.validate(&exp.net)?;
        exp.config.set_table("strong", &cfg)?;
        Ok(())
    })?;
    let cfg = exp.config.table::<StrongConfig>("strong")?.unwrap_or_default();
    println!(
        "{}: strong tickets for target {} on {}; paths per weight {:?}; edge-popup kept fractions {:?}",
        exp.config.name,
        exp.net.describe(),
        exp.split.train.name,
        cfg.paths,
        cfg.edge_popup_keep
    );
    run_experiment::<Strong>(&exp, &cfg, &ctx, &device, &a.common)
}

fn cmd_supermask(a: SupermaskArgs) -> Result<()> {
    let (exp, ctx, device) = prepare(&a.common, "supermask", |exp| {
        let mut cfg = exp.config.table::<SupermaskConfig>("supermask")?.unwrap_or_default();
        a.masks.apply(&mut cfg.densities, &mut cfg.seeds);
        cfg.prune = cfg.prune.resolved(&exp.net.prunable());
        cfg.plan(exp)?;
        exp.config.set_table("supermask", &cfg)?;
        Ok(())
    })?;
    let cfg = exp.config.table::<SupermaskConfig>("supermask")?.unwrap_or_default();
    println!(
        "{}: supermasks of {} on {}, criteria {:?}, densities {:?}, seeds {:?}, {} steps per dense run",
        exp.config.name,
        exp.net.describe(),
        exp.split.train.name,
        cfg.criteria.iter().map(|c| c.name()).collect::<Vec<_>>(),
        cfg.densities,
        cfg.seeds,
        exp.spec.steps
    );
    run_experiment::<supermask::Supermask>(&exp, &cfg, &ctx, &device, &a.common)
}

fn cmd_pai(a: PaiArgs) -> Result<()> {
    use lottery_tangent::pai::experiment::{Pai, PaiConfig};
    let (exp, ctx, device) = prepare(&a.common, "pai", |exp| {
        let mut cfg = exp.config.table::<PaiConfig>("pai")?.unwrap_or_default();
        if let Some(m) = &a.methods {
            cfg.methods = m.clone();
        }
        a.masks.apply(&mut cfg.densities, &mut cfg.seeds);
        cfg.prune = cfg.prune.resolved(&exp.net.prunable());
        cfg.plan(exp)?;
        exp.config.set_table("pai", &cfg)?;
        Ok(())
    })?;
    let cfg = exp.config.table::<PaiConfig>("pai")?.unwrap_or_default();
    println!(
        "{}: pruning at initialization of {} on {}, methods {:?}{}, densities {:?}, seeds {:?}, {} steps per network",
        exp.config.name,
        exp.net.describe(),
        exp.split.train.name,
        cfg.methods.iter().map(|m| m.name()).collect::<Vec<_>>(),
        if cfg.imp { " and the IMP ticket" } else { "" },
        cfg.densities,
        cfg.seeds,
        exp.spec.steps
    );
    run_experiment::<Pai>(&exp, &cfg, &ctx, &device, &a.common)
}

fn cmd_weight_agnostic(a: WeightAgnosticArgs) -> Result<()> {
    use lottery_tangent::weight_agnostic::{WeightAgnostic, WeightAgnosticConfig};
    let (exp, ctx, device) = prepare(&a.common, "weight_agnostic", |exp| {
        let mut cfg = exp
            .config
            .table::<WeightAgnosticConfig>("weight_agnostic")?
            .unwrap_or_default();
        a.masks.apply(&mut cfg.densities, &mut cfg.seeds);
        if let Some(w) = &a.weights {
            cfg.weights = w.clone();
        }
        cfg.prune = cfg.prune.resolved(&exp.net.prunable());
        cfg.plan(exp)?;
        exp.config.set_table("weight_agnostic", &cfg)?;
        Ok(())
    })?;
    let cfg = exp
        .config
        .table::<WeightAgnosticConfig>("weight_agnostic")?
        .unwrap_or_default();
    println!(
        "{}: shared-weight evaluation of {} on {}, densities {:?}, w {:?}, seeds {:?}, {} steps per IMP run",
        exp.config.name,
        exp.net.describe(),
        exp.split.train.name,
        cfg.densities,
        cfg.weights,
        cfg.seeds,
        exp.spec.steps
    );
    run_experiment::<WeightAgnostic>(&exp, &cfg, &ctx, &device, &a.common)
}

fn cmd_multi_prize(a: MultiPrizeArgs) -> Result<()> {
    use lottery_tangent::multi_prize::{MultiPrize, MultiPrizeConfig};
    let (exp, ctx, device) = prepare(&a.common, "multi_prize", |exp| {
        let mut cfg = exp.config.table::<MultiPrizeConfig>("multi_prize")?.unwrap_or_default();
        if let Some(w) = &a.width_factors {
            cfg.width_factors = w.clone();
        }
        if let Some(k) = a.keep {
            cfg.keep = k;
        }
        if let Some(arms) = &a.arms {
            cfg.arms = arms.clone();
        }
        if let Some(s) = &a.seeds {
            cfg.seeds = s.clone();
        }
        cfg.validate(exp)?;
        exp.config.set_table("multi_prize", &cfg)?;
        Ok(())
    })?;
    let cfg = exp.config.table::<MultiPrizeConfig>("multi_prize")?.unwrap_or_default();
    println!(
        "{}: multi-prize tickets of {} on {}, width factors {:?}, {:.0}% kept, arms dense + {:?}, seeds {:?}, {} steps per network",
        exp.config.name,
        exp.net.describe(),
        exp.split.train.name,
        cfg.width_factors,
        100.0 * cfg.keep,
        cfg.arms.iter().map(|a| a.name()).collect::<Vec<_>>(),
        cfg.seeds,
        exp.spec.steps
    );
    run_experiment::<MultiPrize>(&exp, &cfg, &ctx, &device, &a.common)
}

fn cmd_elastic(a: ElasticArgs) -> Result<()> {
    use lottery_tangent::elastic::{Elastic, ElasticConfig};
    let (exp, ctx, device) = prepare(&a.common, "elastic", |exp| {
        let mut cfg = exp.config.table::<ElasticConfig>("elastic")?.unwrap_or_default();
        a.masks.apply(&mut cfg.densities, &mut cfg.seeds);
        if let Some(b) = a.blocks {
            cfg.blocks = b;
        }
        cfg.plan(exp)?;
        exp.config.set_table("elastic", &cfg)?;
        Ok(())
    })?;
    let cfg = exp.config.table::<ElasticConfig>("elastic")?.unwrap_or_default();
    let plan = cfg.plan(&exp)?;
    println!(
        "{}: elastic tickets between {} and {} on {}, densities {:?}, seeds {:?}, {} steps per network",
        exp.config.name,
        lottery_tangent::models::Network::Mlp(plan.shallow).describe(),
        lottery_tangent::models::Network::Mlp(plan.deep).describe(),
        exp.split.train.name,
        cfg.densities,
        cfg.seeds,
        exp.spec.steps
    );
    run_experiment::<Elastic>(&exp, &cfg, &ctx, &device, &a.common)
}

fn cmd_ticket_scale(a: TicketScaleArgs) -> Result<()> {
    use lottery_tangent::ticket_scale::{TicketScale, TicketScaleConfig};
    let (exp, ctx, device) = prepare(&a.common, "ticket_scale", |exp| {
        let mut cfg = exp
            .config
            .table::<TicketScaleConfig>("ticket_scale")?
            .unwrap_or_default();
        a.masks.apply(&mut cfg.densities, &mut cfg.seeds);
        if let Some(w) = &a.width_factors {
            cfg.width_factors = w.clone();
        }
        cfg.plan(exp)?;
        exp.config.set_table("ticket_scale", &cfg)?;
        Ok(())
    })?;
    let cfg = exp
        .config
        .table::<TicketScaleConfig>("ticket_scale")?
        .unwrap_or_default();
    let (targets, plans) = cfg.plan(&exp)?;
    println!(
        "{}: tickets of {} scaled by {:?} on {}, at {:?} remaining weights (IMP rounds per width {:?}), seeds {:?}, {} steps per network",
        exp.config.name,
        exp.net.describe(),
        cfg.width_factors,
        exp.split.train.name,
        targets,
        plans.iter().map(|p| p.rounds.iter().map(|r| r.0).collect::<Vec<_>>()).collect::<Vec<_>>(),
        cfg.seeds,
        exp.spec.steps
    );
    run_experiment::<TicketScale>(&exp, &cfg, &ctx, &device, &a.common)
}

fn cmd_double_descent(a: DoubleDescentArgs) -> Result<()> {
    use lottery_tangent::double_descent::{DoubleDescent, DoubleDescentConfig};
    let (exp, ctx, device) = prepare(&a.common, "double_descent", |exp| {
        let mut cfg = exp
            .config
            .table::<DoubleDescentConfig>("double_descent")?
            .unwrap_or_default();
        if let Some(w) = &a.widths {
            cfg.widths = w.clone();
        }
        if let Some(s) = &a.seeds {
            cfg.seeds = s.clone();
        }
        cfg.plan(exp)?;
        exp.config.set_table("double_descent", &cfg)?;
        Ok(())
    })?;
    let cfg = exp
        .config
        .table::<DoubleDescentConfig>("double_descent")?
        .unwrap_or_default();
    println!(
        "{}: double descent of {} on {} ({} train with {:.0}% noisy labels / {} test), {} steps, widths {:?}, seeds {:?}",
        exp.config.name,
        exp.net.describe(),
        exp.split.train.name,
        exp.split.train.len(),
        100.0 * exp.config.data.label_noise.unwrap_or(0.0),
        exp.split.test.len(),
        exp.spec.steps,
        cfg.widths,
        cfg.seeds
    );
    run_experiment::<DoubleDescent>(&exp, &cfg, &ctx, &device, &a.common)
}

fn cmd_ticket_ntk(a: TicketNtkArgs) -> Result<()> {
    use lottery_tangent::ticket_ntk::{TicketNtk, TicketNtkConfig};
    let (exp, ctx, device) = prepare(&a.common, "ticket_ntk", |exp| {
        let mut cfg = exp.config.table::<TicketNtkConfig>("ticket_ntk")?.unwrap_or_default();
        a.masks.apply(&mut cfg.densities, &mut cfg.seeds);
        if let Some(k) = &a.rewind_steps {
            cfg.rewind_steps = k.clone();
        }
        if a.no_linearize {
            cfg.linearize = false;
        }
        cfg.plan(exp)?;
        exp.config.set_table("ticket_ntk", &cfg)?;
        Ok(())
    })?;
    let cfg = exp.config.table::<TicketNtkConfig>("ticket_ntk")?.unwrap_or_default();
    println!(
        "{}: tickets in the tangent space of {} on {} ({} train / {} test), {} steps, densities {:?}, rewinding to {:?}, methods {:?}, seeds {:?}",
        exp.config.name,
        exp.net.describe(),
        exp.split.train.name,
        exp.split.train.len(),
        exp.split.test.len(),
        exp.spec.steps,
        cfg.densities,
        cfg.rewind_steps,
        cfg.methods.iter().map(|m| m.name()).collect::<Vec<_>>(),
        cfg.seeds
    );
    run_experiment::<TicketNtk>(&exp, &cfg, &ctx, &device, &a.common)
}

fn cmd_kernel_velocity(a: KernelVelocityArgs) -> Result<()> {
    use lottery_tangent::kernel_velocity::{KernelVelocity, KernelVelocityConfig};
    let (exp, ctx, device) = prepare(&a.common, "kernel_velocity", |exp| {
        let mut cfg = exp
            .config
            .table::<KernelVelocityConfig>("kernel_velocity")?
            .unwrap_or_default();
        if let Some(s) = &a.seeds {
            cfg.seeds = s.clone();
        }
        if let Some(k) = &a.ks {
            cfg.ks = k.clone();
        }
        if let Some(p) = a.pairs {
            cfg.pairs = p;
        }
        if let Some(d) = a.delta {
            cfg.delta = d;
        }
        cfg.validate(exp)?;
        exp.config.set_table("kernel_velocity", &cfg)?;
        Ok(())
    })?;
    let cfg = exp
        .config
        .table::<KernelVelocityConfig>("kernel_velocity")?
        .unwrap_or_default();
    println!(
        "{}: kernel velocity and stability of {} on {} ({} train / {} test), {} steps, Δ = {}, spawn steps {:?} with {} pairs, seeds {:?}",
        exp.config.name,
        exp.net.describe(),
        exp.split.train.name,
        exp.split.train.len(),
        exp.split.test.len(),
        exp.spec.steps,
        cfg.delta,
        cfg.ks,
        cfg.pairs,
        cfg.seeds
    );
    run_experiment::<KernelVelocity>(&exp, &cfg, &ctx, &device, &a.common)
}

fn cmd_grokking(a: GrokkingArgs) -> Result<()> {
    use lottery_tangent::grokking::{Grokking, GrokkingConfig};
    let (exp, ctx, device) = prepare(&a.common, "grokking", |exp| {
        let mut cfg = exp.config.table::<GrokkingConfig>("grokking")?.unwrap_or_default();
        if let Some(s) = &a.seeds {
            cfg.seeds = s.clone();
        }
        if a.no_linearize {
            cfg.linearize = false;
        }
        cfg.validate(exp)?;
        exp.config.set_table("grokking", &cfg)?;
        Ok(())
    })?;
    let cfg = exp.config.table::<GrokkingConfig>("grokking")?.unwrap_or_default();
    println!(
        "{}: grokking of {} on {} ({} train / {} test), {} steps, {} evaluations, seeds {:?}{}",
        exp.config.name,
        exp.net.describe(),
        exp.split.train.name,
        exp.split.train.len(),
        exp.split.test.len(),
        exp.spec.steps,
        cfg.evals,
        cfg.seeds,
        if cfg.linearize { ", and its linearization" } else { "" }
    );
    run_experiment::<Grokking>(&exp, &cfg, &ctx, &device, &a.common)
}

fn cmd_lr_rewind(a: LrRewindArgs) -> Result<()> {
    use lottery_tangent::lr_rewind::{LrRewind, LrRewindConfig};
    let (exp, ctx, device) = prepare(&a.common, "lr_rewind", |exp| {
        let mut cfg = exp.config.table::<LrRewindConfig>("lr_rewind")?.unwrap_or_default();
        if let Some(k) = &a.ks {
            cfg.ks = k.clone();
        }
        cfg.prune = cfg.prune.resolved(&exp.net.prunable());
        cfg.validate(exp)?;
        exp.config.set_table("lr_rewind", &cfg)?;
        Ok(())
    })?;
    let cfg = exp.config.table::<LrRewindConfig>("lr_rewind")?.unwrap_or_default();
    println!(
        "{}: IMP with rewinding to k in {:?} on {} ({}), settings {:?}, target densities {:?}, {} pairs, {} steps",
        exp.config.name,
        cfg.ks,
        exp.net.describe(),
        exp.split.train.name,
        cfg.settings
            .iter()
            .map(|s| format!("{} (lr {}, warmup {})", s.name, s.lr, s.warmup_steps))
            .collect::<Vec<_>>(),
        cfg.densities,
        cfg.pairs,
        exp.spec.steps
    );
    run_experiment::<LrRewind>(&exp, &cfg, &ctx, &device, &a.common)
}

fn print_shard_done(done: usize, total: usize, dir: &RunDir, out: &std::path::Path, name: &str) {
    println!(
        "shard done: {done} of {total} units in {}; combine the shards with `ltk merge {}/{name}.shard-*`",
        dir.root().display(),
        out.display()
    );
}

fn cmd_merge(shards: Vec<PathBuf>, into: Option<PathBuf>) -> Result<()> {
    let first = &shards[0];
    let config_text = std::fs::read_to_string(first.join("config.toml"))
        .with_context(|| format!("{} is not a run directory (no config.toml)", first.display()))?;
    let kind: serde_json::Value = read_json(&first.join("run.json"))?;
    let kind = kind["kind"].as_str().unwrap_or("").to_string();
    if kind == NtkCompare::NAME {
        let cfg: CompareConfig = toml::from_str(&config_text).context("the shards' config.toml")?;
        let into = into.unwrap_or_else(|| first.with_file_name(&cfg.name));
        lottery_tangent::experiment::check_shards(&shards, &into)?;
        let ctx = RunContext::open(&into, &kind, &config_text, false)?;
        ntk_compare_cli::merge(&config_text, &shards, &ctx)?;
        println!("merged {} shards into {}", shards.len(), into.display());
        return Ok(());
    }
    let config = ExperimentConfig::from_toml(&config_text, &first.join("config.toml").display().to_string())?;
    let exp = config.resolve().context("invalid experiment")?;
    let into = match into {
        Some(p) => p,
        None => first.with_file_name(&exp.config.name),
    };
    lottery_tangent::experiment::check_shards(&shards, &into)?;
    let ctx = RunContext::open(&into, &kind, &config_text, false)?;
    match kind.as_str() {
        "imp" => merge_experiment::<imp::Imp>(&exp, &config_text, &shards, &ctx)?,
        "grokking" => merge_experiment::<lottery_tangent::grokking::Grokking>(&exp, &config_text, &shards, &ctx)?,
        "double_descent" => {
            merge_experiment::<lottery_tangent::double_descent::DoubleDescent>(&exp, &config_text, &shards, &ctx)?
        }
        "ticket_ntk" => merge_experiment::<lottery_tangent::ticket_ntk::TicketNtk>(&exp, &config_text, &shards, &ctx)?,
        "kernel_velocity" => {
            merge_experiment::<lottery_tangent::kernel_velocity::KernelVelocity>(&exp, &config_text, &shards, &ctx)?
        }
        "ticket_scale" => {
            merge_experiment::<lottery_tangent::ticket_scale::TicketScale>(&exp, &config_text, &shards, &ctx)?
        }
        "elastic" => merge_experiment::<lottery_tangent::elastic::Elastic>(&exp, &config_text, &shards, &ctx)?,
        "lmc" => merge_experiment::<lmc::Lmc>(&exp, &config_text, &shards, &ctx)?,
        "lr_rewind" => merge_experiment::<lottery_tangent::lr_rewind::LrRewind>(&exp, &config_text, &shards, &ctx)?,
        "strong" => merge_experiment::<Strong>(&exp, &config_text, &shards, &ctx)?,
        "supermask" => merge_experiment::<supermask::Supermask>(&exp, &config_text, &shards, &ctx)?,
        "pai" => merge_experiment::<lottery_tangent::pai::experiment::Pai>(&exp, &config_text, &shards, &ctx)?,
        "multi_prize" => {
            merge_experiment::<lottery_tangent::multi_prize::MultiPrize>(&exp, &config_text, &shards, &ctx)?
        }
        "weight_agnostic" => {
            merge_experiment::<lottery_tangent::weight_agnostic::WeightAgnostic>(&exp, &config_text, &shards, &ctx)?
        }
        other => bail!("ltk merge: `{other}` runs have no shards yet (supported: {SHARDED:?})"),
    }
    println!("merged {} shards into {}", shards.len(), into.display());
    Ok(())
}

fn cmd_subset_sum(a: SubsetSumArgs) -> Result<()> {
    use lottery_tangent::strong::lueker;
    let config = format!(
        "ns = {:?}\ntrials = {}\ngrid = {}\nseed = {}\n",
        a.ns, a.trials, a.grid, a.seed
    );
    lueker::check_args(&a.ns, a.trials, a.grid)?;
    let root = lottery_tangent::paths::run_root(&a.out, "--name", &a.name)?;
    let ctx = RunContext::open(&root, "subset_sum", &config, a.force)?;
    let dir = &ctx.dir;
    let t = std::time::Instant::now();
    let r = lueker::experiment(&a.ns, a.trials, a.grid, a.seed)?;
    lottery_tangent::paths::write_json(&dir.summary_json(), &r)?;
    lueker::plot(&r, &dir.figure("lueker"))?;
    println!(
        "{:>4} {:>12} {:>12} {:>16}",
        "n", "mean error", "max error", "median max error"
    );
    for p in &r.points {
        println!(
            "{:>4} {:>12.3e} {:>12.3e} {:>16.3e}",
            p.n, p.mean_error, p.max_error, p.median_max_error
        );
    }
    println!(
        "fitted ln(max error) = {:.3} {:+.3} n  (error ~ e^({:.3} n) = 2^({:.3} n)); ln(mean error) rate {:+.3}",
        r.intercept_max,
        r.rate_max,
        r.rate_max,
        r.rate_max / std::f64::consts::LN_2,
        r.rate_mean
    );
    let claims = lueker::claims(&r);
    lottery_tangent::paths::write_text(
        &dir.report_md(),
        &format!(
            "# Lueker: subset-sum error vs. number of candidates\n\n| n | mean error | max error | median max error |\n|---:|---:|---:|---:|\n{}\n![lueker](figures/lueker.png)\n\n{}",
            r.points
                .iter()
                .map(|p| format!(
                    "| {} | {:.3e} | {:.3e} | {:.3e} |\n",
                    p.n, p.mean_error, p.max_error, p.median_max_error
                ))
                .collect::<String>(),
            lottery_tangent::verdict::claims_markdown(&claims)
        ),
    )?;
    println!(
        "{:.1} s; run directory {}",
        t.elapsed().as_secs_f64(),
        dir.root().display()
    );
    print!("{}", lottery_tangent::verdict::claims_text(&claims));
    Ok(())
}
