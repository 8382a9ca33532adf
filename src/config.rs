//! Experiment configs: serde TOML with unknown fields rejected, validated once
//! into a checked [`Experiment`] (data loaded, network built, training spec
//! resolved). The resolved config is written into every run directory.
//!
//! ```toml
//! name = "lenet_fashion"
//! seed = 0                       # init seed
//! [data]
//! source = "idx"                 # digits | idx | teacher
//! dir = "/usr/share/datasets/fashion-mnist"
//! preprocess = "standardize"     # none | scale | standardize
//! [model]
//! kind = "lenet300_100"          # mlp | lenet300_100 | conv
//! [train]
//! epochs = 2
//! batch_size = 60
//! [train.optimizer]
//! kind = "sgd"
//! lr = 0.1
//! momentum = 0.9
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::augment::Augment;
use crate::data::{self, Preprocess, Split};
use crate::models::{ModelConfig, Network};
use crate::train::optim::{AdamConfig, SgdConfig};
use crate::train::{Loss, OptimizerConfig, Schedule, TrainSpec};
use crate::{Error, Result};

/// Where the data comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DataSource {
    /// The embedded UCI digits (8x8, 1797 images).
    #[default]
    Digits,
    /// A directory of IDX files (MNIST, Fashion-MNIST).
    Idx,
    /// Seeded random-teacher regression data (tests).
    Teacher,
    /// (a + b) mod p over every pair of residues, one-hot operands
    /// (`modulus`, `train_fraction`; grokking, Power et al. 2022).
    Modular,
    /// CIFAR-10 in its binary format (`dir`: data_batch_1.bin … test_batch.bin).
    Cifar10,
    /// CIFAR-100 in its binary format (`dir`: train.bin, test.bin); fine
    /// labels, or the 20 coarse ones with `coarse_labels = true`.
    Cifar100,
    /// Your own data: `dir` is an `.npz` file or a directory of `.npy` files
    /// with `x_train, y_train, x_test, y_test` ([`crate::data::numpy`]).
    Numpy,
}

/// `[data]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    #[serde(default)]
    pub source: DataSource,
    /// Data directory: IDX files (source = "idx"), CIFAR binary files
    /// (source = "cifar10" / "cifar100"), or an `.npz` file or directory of
    /// `.npy` files (source = "numpy").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// CIFAR-100's 20 coarse labels instead of its 100 fine ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coarse_labels: Option<bool>,
    /// Keep a seeded random subset of this many training examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_size: Option<usize>,
    /// Keep the first this many test examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_size: Option<usize>,
    /// Move this many training examples into a validation set.
    #[serde(default)]
    pub validation_size: usize,
    /// Zero-pad every image, centered, to this many pixels square (e.g. 32:
    /// Fashion-MNIST at CIFAR's size), before preprocessing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_to: Option<usize>,
    #[serde(default = "default_preprocess")]
    pub preprocess: Preprocess,
    /// Seed of the train/test/validation split and subsetting.
    #[serde(default)]
    pub split_seed: u64,
    /// Test fraction of the digits split.
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// The prime p of modular data (default 97).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modulus: Option<u64>,
    /// Fraction of the p² pairs used for training, modular data (default 0.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_fraction: Option<f64>,
    /// Number of classes of an IDX data set (default 10, as MNIST and
    /// Fashion-MNIST); every label of every split must be below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_classes: Option<usize>,
    /// Fraction of training labels replaced by another class, seeded by
    /// `split_seed` (Nakkiran et al. 2019's label noise); test labels stay clean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_noise: Option<f64>,
}

fn default_preprocess() -> Preprocess {
    Preprocess::Standardize
}
fn default_test_fraction() -> f64 {
    0.25
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            source: DataSource::Digits,
            dir: None,
            coarse_labels: None,
            train_size: None,
            test_size: None,
            validation_size: 0,
            pad_to: None,
            preprocess: default_preprocess(),
            split_seed: 0,
            test_fraction: default_test_fraction(),
            modulus: None,
            train_fraction: None,
            num_classes: None,
            label_noise: None,
        }
    }
}

impl DataConfig {
    /// Loads, splits, subsets and preprocesses the data.
    pub fn load(&self) -> Result<Split> {
        if self.source != DataSource::Modular && (self.modulus.is_some() || self.train_fraction.is_some()) {
            return Err(Error::config(
                "data.modulus / data.train_fraction",
                "source = \"modular\" (they describe modular data)",
                format!("source {:?}", self.source),
            ));
        }
        if !matches!(self.source, DataSource::Idx | DataSource::Numpy) && self.num_classes.is_some() {
            return Err(Error::config(
                "data.num_classes",
                "source = \"idx\" or \"numpy\" (the other sources know their classes)",
                format!("source {:?}", self.source),
            ));
        }
        if self.source != DataSource::Cifar100 && self.coarse_labels.is_some() {
            return Err(Error::config(
                "data.coarse_labels",
                "source = \"cifar100\" (only CIFAR-100 has coarse labels)",
                format!("source {:?}", self.source),
            ));
        }
        let mut split = match self.source {
            DataSource::Digits => data::digits::load(self.test_fraction, self.split_seed)?,
            DataSource::Numpy => {
                let path = self.dir.as_ref().ok_or_else(|| {
                    Error::config(
                        "data.dir",
                        "an .npz file or a directory of .npy files (--data-dir PATH)",
                        "nothing",
                    )
                })?;
                data::numpy::load(path, self.num_classes)?
            }
            DataSource::Cifar10 | DataSource::Cifar100 => {
                let kind = match self.source {
                    DataSource::Cifar10 => data::cifar::Cifar::Ten,
                    _ => data::cifar::Cifar::Hundred {
                        coarse: self.coarse_labels.unwrap_or(false),
                    },
                };
                let dir = self.dir.as_ref().ok_or_else(|| {
                    Error::config(
                        "data.dir",
                        "the directory of the CIFAR binary files (--data-dir DIR)",
                        "nothing",
                    )
                })?;
                data::cifar::load_dir(dir, kind)?
            }
            DataSource::Idx => {
                let dir = self.dir.as_ref().ok_or_else(|| {
                    Error::config("data.dir", "a directory of IDX files when source = \"idx\"", "nothing")
                })?;
                data::idx::load_dir(dir, self.num_classes.unwrap_or(data::idx::DEFAULT_NUM_CLASSES))?
            }
            DataSource::Modular => {
                if self.preprocess != crate::data::Preprocess::None || self.validation_size > 0 {
                    return Err(Error::config(
                        "data",
                        "preprocess = \"none\" and no validation_size with modular data (one-hot operands, every pair once)",
                        format!("preprocess {:?}, validation_size {}", self.preprocess, self.validation_size),
                    ));
                }
                if self.train_size.is_some() || self.test_size.is_some() {
                    return Err(Error::config(
                        "data.train_size / data.test_size",
                        "train_fraction with modular data",
                        "a size",
                    ));
                }
                if self.label_noise.is_some() {
                    return Err(Error::config(
                        "data.label_noise",
                        "no label noise with modular data (not supported there)",
                        "a fraction",
                    ));
                }
                return data::modular::addition(
                    self.modulus.unwrap_or(97),
                    self.train_fraction.unwrap_or(0.4),
                    self.split_seed,
                );
            }
            DataSource::Teacher => {
                let n = self.train_size.unwrap_or(512);
                let t = self.test_size.unwrap_or(256);
                data::synthetic::teacher_regression(n, t, 16, 4, 32, self.split_seed)?
            }
        };
        if let Some(side) = self.pad_to {
            split = split.pad_to(side)?;
        }
        if self.validation_size > 0 {
            split = split.with_validation(self.validation_size, self.split_seed)?;
        }
        if let (Some(n), false) = (self.train_size, self.source == DataSource::Teacher) {
            split = split.with_train_size(n, self.split_seed)?;
        }
        if let (Some(n), false) = (self.test_size, self.source == DataSource::Teacher) {
            split = split.with_test_size(n)?;
        }
        if let Some(p) = self.label_noise {
            split = split.with_label_noise(p, self.split_seed)?;
        }
        Ok(split.preprocess(self.preprocess))
    }
}

/// `[train]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    #[serde(default)]
    pub schedule: Schedule,
    #[serde(default)]
    pub loss: Loss,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Training length in optimizer steps (give this or `epochs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<usize>,
    /// Training length in epochs (may be fractional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<f64>,
    /// Evaluate every this many steps; default once per epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_every: Option<usize>,
    #[serde(default = "default_eval_chunk")]
    pub eval_chunk: usize,
    /// Steps whose parameters are saved (for rewinding).
    #[serde(default)]
    pub checkpoint_at: Vec<usize>,
    /// Save resumable state every this many steps; default = the eval interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_every: Option<usize>,
    /// Seed of the data order; default = the experiment seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_seed: Option<u64>,
    /// Data augmentation, part of the data order (default: none).
    #[serde(default, skip_serializing_if = "Augment::is_identity")]
    pub augment: Augment,
}

fn default_batch() -> usize {
    60
}
fn default_eval_chunk() -> usize {
    1000
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            optimizer: OptimizerConfig::default(),
            schedule: Schedule::default(),
            loss: Loss::default(),
            batch_size: default_batch(),
            iterations: None,
            epochs: Some(10.0),
            eval_every: None,
            eval_chunk: default_eval_chunk(),
            checkpoint_at: Vec::new(),
            save_every: None,
            data_seed: None,
            augment: Augment::default(),
        }
    }
}

impl TrainConfig {
    /// Resolves lengths and seeds into a checked [`TrainSpec`] for `train_len` examples.
    pub fn resolve(&self, train_len: usize, seed: u64) -> Result<TrainSpec> {
        // Beyond any run this tool can finish, and beyond the integers a
        // config file holds (TOML integers are signed 64-bit).
        const MAX_STEPS: usize = 1_000_000_000_000;
        if self.batch_size == 0 || self.batch_size > train_len {
            return Err(Error::config(
                "train.batch_size",
                format!("1..={train_len} (the training set size)"),
                self.batch_size,
            ));
        }
        let per_epoch = train_len / self.batch_size;
        self.schedule.validate()?;
        let steps = match (self.iterations, self.epochs) {
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "train.iterations / train.epochs",
                    "only one of the two",
                    "both",
                ))
            }
            (Some(0), None) => return Err(Error::config("train.iterations", "> 0", 0)),
            (Some(i), None) => i,
            (None, Some(e)) if !(e.is_finite() && e > 0.0) => {
                return Err(Error::config("train.epochs", "a finite value > 0", e))
            }
            (None, Some(e)) => {
                let steps = (e * per_epoch as f64).round();
                if steps > MAX_STEPS as f64 {
                    return Err(Error::config(
                        "train.epochs",
                        format!("at most {MAX_STEPS} optimizer steps ({per_epoch} per epoch)"),
                        format!("{e:e} epochs ({steps:.3e} steps)"),
                    ));
                }
                (steps as usize).max(1)
            }
            (None, None) => 10 * per_epoch,
        };
        if steps > MAX_STEPS {
            return Err(Error::config(
                "train.iterations",
                format!("at most {MAX_STEPS} optimizer steps"),
                steps,
            ));
        }
        let eval_every = self.eval_every.unwrap_or(per_epoch);
        let spec = TrainSpec {
            optimizer: self.optimizer.clone(),
            schedule: self.schedule.in_steps(per_epoch),
            batch_size: self.batch_size,
            steps,
            eval_every,
            eval_chunk: self.eval_chunk,
            checkpoint_steps: self.checkpoint_at.clone(),
            save_every: self.save_every.unwrap_or(eval_every),
            data_seed: self.data_seed.unwrap_or(seed),
            augment: self.augment,
        };
        spec.validate(train_len)?;
        Ok(spec)
    }
}

/// The training settings a model's paper (or its reference code) gives,
/// used for the `[train]` keys a config leaves out ([`ExperimentConfig::apply_defaults`]).
#[derive(Clone, Debug, PartialEq)]
pub struct PaperDefaults {
    /// Whose settings they are.
    pub source: &'static str,
    pub optimizer: OptimizerConfig,
    pub schedule: Schedule,
    pub batch_size: usize,
    /// Training length: optimizer steps, or epochs.
    pub iterations: Option<usize>,
    pub epochs: Option<f64>,
    /// Data augmentation on CIFAR data (none on other data).
    pub augment: Augment,
}

/// The paper's training settings for `model` on `source` data, or None for
/// the models whose default is this tool's quick generic one (SGD 0.1,
/// batch 60, 10 epochs: the MLPs, LeNet-300-100, LeNet-5 and `conv`; the
/// papers' LeNet settings are in experiments/imp_lenet_fashion.toml).
///
/// - Conv-2/4/6: Frankle & Carbin 2019, Fig. 2: Adam at 2e-4 / 3e-4 / 3e-4,
///   batch 60, 20K / 25K / 30K iterations, no augmentation.
/// - ResNets and VGGs: open_lth's `default_hparams` for `cifar_resnet_20`
///   and `cifar_vgg_16` (`models/cifar_resnet.py`, `models/cifar_vgg.py`):
///   SGD 0.1, momentum 0.9, weight decay 1e-4, batch 128, 160 epochs, rate
///   x0.1 at epochs 80 and 120; on CIFAR data, open_lth's augmentation
///   (`datasets/cifar10.py`: random 32x32 crop after 4-pixel padding, random
///   horizontal flip).
pub fn paper_defaults(model: &ModelConfig, source: DataSource) -> Option<PaperDefaults> {
    let cifar = matches!(source, DataSource::Cifar10 | DataSource::Cifar100);
    let adam = |lr: f64| {
        OptimizerConfig::Adam(AdamConfig {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        })
    };
    let conv = |lr: f64, iterations: usize| PaperDefaults {
        source: "Frankle & Carbin 2019, Fig. 2",
        optimizer: adam(lr),
        schedule: Schedule::default(),
        batch_size: 60,
        iterations: Some(iterations),
        epochs: None,
        augment: Augment::default(),
    };
    match model {
        ModelConfig::Conv2 => Some(conv(2e-4, 20_000)),
        ModelConfig::Conv4 => Some(conv(3e-4, 25_000)),
        ModelConfig::Conv6 => Some(conv(3e-4, 30_000)),
        ModelConfig::Resnet { .. } | ModelConfig::Vgg { .. } => Some(PaperDefaults {
            source: if matches!(model, ModelConfig::Resnet { .. }) {
                "open_lth, models/cifar_resnet.py default_hparams"
            } else {
                "open_lth, models/cifar_vgg.py default_hparams"
            },
            optimizer: OptimizerConfig::Sgd(SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                weight_decay: 1e-4,
                nesterov: false,
            }),
            schedule: Schedule::Step {
                milestones: Vec::new(),
                milestone_epochs: vec![80.0, 120.0],
                gamma: 0.1,
                warmup_steps: 0,
            },
            batch_size: 128,
            iterations: None,
            epochs: Some(160.0),
            augment: if cifar {
                Augment {
                    crop_padding: 4,
                    horizontal_flip: true,
                }
            } else {
                Augment::default()
            },
        }),
        _ => None,
    }
}

/// The keys a config's text sets (dotted: `train.optimizer`,
/// `data.preprocess`, ...), so that defaults that depend on other keys (the
/// model's training settings, the data's preprocessing) fill only the others.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetKeys(pub std::collections::BTreeSet<String>);

impl SetKeys {
    /// The `[data]` and `[train]` keys of a TOML text (none if it does not parse).
    pub fn of(text: &str) -> Self {
        let mut keys = std::collections::BTreeSet::new();
        if let Ok(t) = text.parse::<toml::Table>() {
            for table in ["data", "train"] {
                if let Some(d) = t.get(table).and_then(|d| d.as_table()) {
                    keys.extend(d.keys().map(|k| format!("{table}.{k}")));
                }
            }
        }
        SetKeys(keys)
    }

    fn has(&self, key: &str) -> bool {
        self.0.contains(key)
    }
}

/// A whole experiment as written in TOML: the base config (name, seed,
/// data, model, train) and the experiments' own tables (`[imp]`, `[lmc]`,
/// ...), kept here as raw TOML. The base config knows nothing of
/// experiments: each experiment deserializes its own table
/// ([`ExperimentConfig::table`]); the runner's registry rejects unknown
/// tables and keys when a command reads the file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentConfig {
    #[serde(default = "default_name")]
    pub name: String,
    /// Init seed (and default data-order seed).
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub data: DataConfig,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub train: TrainConfig,
    /// The experiment tables, by name.
    #[serde(flatten)]
    pub tables: BTreeMap<String, toml::Value>,
}

fn default_name() -> String {
    "experiment".into()
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        ExperimentConfig {
            name: default_name(),
            seed: 0,
            data: DataConfig::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            tables: BTreeMap::new(),
        }
    }
}

/// A checked experiment: data loaded, network built, lengths resolved.
#[derive(Clone, Debug)]
pub struct Experiment {
    pub config: ExperimentConfig,
    pub split: Split,
    pub net: Network,
    pub spec: TrainSpec,
}

impl Experiment {
    /// The same experiment with init seed `seed` and data-order seed `seed`
    /// (unless the config fixes `train.data_seed`); the data split is unchanged.
    pub fn with_seed(&self, seed: u64) -> Experiment {
        let mut e = self.clone();
        e.config.seed = seed;
        e.spec.data_seed = self.config.train.data_seed.unwrap_or(seed);
        e
    }

    /// The same experiment on the fully connected network `mlp` (e.g. a
    /// wider or deeper copy of its model); the config's `[model]` is
    /// rewritten to match, so run identities and caches tell them apart.
    pub fn with_mlp(&self, mlp: crate::models::Mlp) -> Result<Experiment> {
        let mut e = self.clone();
        e.config.model = crate::models::ModelConfig::Mlp {
            hidden: mlp.hidden.clone(),
            activation: mlp.activation,
            parameterization: mlp.parameterization,
            w_std: Some(mlp.w_std),
            b_std: Some(mlp.b_std),
        };
        e.net = crate::models::Network::Mlp(mlp);
        Ok(e)
    }

    /// The same experiment on the ResNet `depth` x `width` (e.g. a deeper
    /// copy of its model); `[model]` is rewritten to match.
    pub fn with_resnet(&self, depth: usize, width: usize) -> Result<Experiment> {
        let mut e = self.clone();
        e.config.model = crate::models::ModelConfig::Resnet { depth, width };
        e.net = e.config.model.build(e.split.train.shape, e.split.train.num_classes)?;
        Ok(e)
    }

    /// What determines a training run besides its spec, init and mask: the
    /// data, the model and the loss (for [`crate::train::cache`]).
    pub fn training_identity(&self) -> Result<String> {
        let c = &self.config;
        let data = toml::to_string(&c.data).map_err(|e| Error::Parse {
            path: "[data]".into(),
            msg: e.to_string(),
        })?;
        let model = toml::to_string(&c.model).map_err(|e| Error::Parse {
            path: "[model]".into(),
            msg: e.to_string(),
        })?;
        Ok(format!(
            "{}\n[data]\n{data}\n[model]\n{model}\nloss = {:?}\n",
            self.net.describe(),
            c.train.loss
        ))
    }
}

/// A TOML error as an [`Error::Parse`] of `origin`, naming the key when the
/// parser could only point at its table: a wrong type inside a table read
/// through a `kind` tag (the optimizer, the model, the schedule) is reported
/// by serde at the table header, so the key whose value has the reported
/// type and value is found in that table and named.
pub fn toml_error(text: &str, origin: &str, e: &toml::de::Error) -> Error {
    let msg = match locate_key(text, e) {
        Some((key, Some(line))) => format!("key `{key}` at line {line}: {}", e.message()),
        Some((key, None)) => format!("key `{key}`: {e}"),
        None => e.to_string(),
    };
    Error::Parse {
        path: origin.into(),
        msg,
    }
}

/// The dotted key and, where found, its 1-based line.
fn locate_key(text: &str, e: &toml::de::Error) -> Option<(String, Option<usize>)> {
    let span = e.span()?;
    let start = span.start;
    // The span covers the whole table: its first line is the header.
    let header = text.get(span.clone())?.lines().next()?.trim();
    let path = header
        .strip_prefix('[')?
        .strip_suffix(']')?
        .trim_matches(['[', ']'])
        .trim();
    // "invalid type: string \"fast\", expected f64" or "invalid value: integer `0`, ..."
    let m = e.message();
    let rest = m
        .strip_prefix("invalid type: ")
        .or_else(|| m.strip_prefix("invalid value: "))?;
    let found = rest.split(", expected").next()?.trim();
    let doc: toml::Table = text.parse().ok()?;
    let mut table = &doc;
    for part in path.split('.') {
        table = match table.get(part.trim().trim_matches('"'))? {
            toml::Value::Table(t) => t,
            toml::Value::Array(a) => match a.last()? {
                toml::Value::Table(t) => t,
                _ => return None,
            },
            _ => return None,
        };
    }
    let describe = |v: &toml::Value| -> String {
        match v {
            toml::Value::String(s) => format!("string {s:?}"),
            toml::Value::Integer(i) => format!("integer `{i}`"),
            toml::Value::Float(f) => format!("floating point `{f}`"),
            toml::Value::Boolean(b) => format!("boolean `{b}`"),
            toml::Value::Array(_) => "sequence".into(),
            toml::Value::Table(_) => "map".into(),
            toml::Value::Datetime(d) => format!("datetime `{d}`"),
        }
    };
    let hits: Vec<&String> = table
        .iter()
        .filter(|(_, v)| describe(v) == found)
        .map(|(k, _)| k)
        .collect();
    let [k] = hits.as_slice() else { return None };
    // The key's line inside the table's span.
    let body = text.get(span)?;
    let line = body
        .lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(k.as_str())
                .or_else(|| l.strip_prefix(&format!("\"{k}\"")))
                .is_some_and(|r| r.trim_start().starts_with('='))
        })
        .map(|i| {
            text[..start].lines().count()
                + i
                + if text[..start].ends_with('\n') || start == 0 {
                    1
                } else {
                    0
                }
        });
    Some((format!("{path}.{k}"), line))
}

/// The keys of unsigned integers above `i64::MAX` in `v`, with their values.
fn find_big_integers(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, u64)>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64().filter(|&u| u > i64::MAX as u64) {
                out.push((prefix.to_string(), u));
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| find_big_integers(prefix, x, out)),
        serde_json::Value::Object(o) => o.iter().for_each(|(k, x)| find_big_integers(&join(k), x, out)),
        _ => {}
    }
}

impl ExperimentConfig {
    /// Fills the keys the config text does not set (`set`) with the
    /// defaults that depend on other keys:
    /// - `data.preprocess`: none for modular data (one-hot operands),
    ///   per-channel standardization for CIFAR, standardization otherwise;
    /// - the model's paper training settings ([`paper_defaults`]):
    ///   `train.optimizer`, `train.schedule`, `train.batch_size`, the length
    ///   (`train.iterations` / `train.epochs`) and `train.augment`; for a
    ///   model without them, the generic defaults.
    ///
    /// Called when a config is read, and again after command-line flags
    /// change the model or the data.
    pub fn apply_defaults(&mut self, set: &SetKeys) {
        if !set.has("data.preprocess") {
            self.data.preprocess = match self.data.source {
                DataSource::Modular => crate::data::Preprocess::None,
                DataSource::Cifar10 | DataSource::Cifar100 => crate::data::Preprocess::StandardizeChannels,
                _ => default_preprocess(),
            };
        }
        let generic = TrainConfig::default();
        let paper = paper_defaults(&self.model, self.data.source);
        let t = &mut self.train;
        if !set.has("train.optimizer") {
            t.optimizer = paper.as_ref().map_or(generic.optimizer, |d| d.optimizer.clone());
        }
        if !set.has("train.schedule") {
            t.schedule = paper.as_ref().map_or(generic.schedule, |d| d.schedule.clone());
        }
        if !set.has("train.batch_size") {
            t.batch_size = paper.as_ref().map_or(generic.batch_size, |d| d.batch_size);
        }
        if !set.has("train.iterations") && !set.has("train.epochs") {
            (t.iterations, t.epochs) = paper.as_ref().map_or((None, None), |d| (d.iterations, d.epochs));
        }
        if !set.has("train.augment") {
            t.augment = paper.as_ref().map_or(generic.augment, |d| d.augment);
        }
    }

    /// Parses TOML text (`origin` names it in errors); unknown keys of the
    /// base config are errors (the experiment tables are checked by the
    /// experiment that owns them).
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let mut c: ExperimentConfig = toml::from_str(text).map_err(|e| toml_error(text, origin, &e))?;
        c.apply_defaults(&SetKeys::of(text));
        // Beside the base keys, only tables (which experiment owns each is
        // the registry's to check): a stray value is a misspelt base key.
        if let Some((k, _)) = c.tables.iter().find(|(_, v)| !v.is_table()) {
            return Err(Error::Parse {
                path: origin.into(),
                msg: Error::config(
                    k.clone(),
                    "one of name, seed, [data], [model], [train], or an experiment table",
                    "an unknown key",
                )
                .to_string(),
            });
        }
        Ok(c)
    }

    /// The experiment table `name`, deserialized (None when absent).
    pub fn table<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        match self.tables.get(name) {
            None => Ok(None),
            Some(v) => v
                .clone()
                .try_into()
                .map(Some)
                .map_err(|e: toml::de::Error| Error::Parse {
                    path: format!("[{name}]"),
                    msg: e.to_string(),
                }),
        }
    }

    /// Sets the experiment table `name`.
    pub fn set_table<T: Serialize>(&mut self, name: &str, value: &T) -> Result<()> {
        let v = toml::Value::try_from(value).map_err(|e| Error::Parse {
            path: format!("[{name}]"),
            msg: e.to_string(),
        })?;
        self.tables.insert(name.to_string(), v);
        Ok(())
    }

    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// The config as TOML text.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| {
            // TOML integers are signed 64-bit: name a value beyond them.
            let mut big = Vec::new();
            if let Ok(v) = serde_json::to_value(self) {
                find_big_integers("", &v, &mut big);
            }
            match big.first() {
                Some((key, value)) => Error::config(
                    key.clone(),
                    format!("at most {} (the largest integer a config file holds)", i64::MAX),
                    value,
                ),
                None => Error::Parse {
                    path: "config".into(),
                    msg: e.to_string(),
                },
            }
        })
    }

    /// Validates everything and loads the data.
    pub fn resolve(&self) -> Result<Experiment> {
        crate::paths::check_run_name("run name (`name`, or --name)", &self.name)?;
        if !(self.data.test_fraction > 0.0 && self.data.test_fraction < 1.0) {
            return Err(Error::config(
                "data.test_fraction",
                "a value in (0, 1)",
                self.data.test_fraction,
            ));
        }
        let split = self.data.load()?;
        let net = self.model.build(split.train.shape, split.train.num_classes)?;
        // Weights, gradients, optimizer state and the initial weights kept
        // for rewinding, at the least: refused before any is allocated.
        let p = crate::memory::parameter_count(net.param_shapes().iter().map(|(_, s)| s));
        crate::memory::check_training(
            &net.describe(),
            p,
            "smaller layers (`[model]` hidden / --hidden, or width)",
        )?;
        let spec = self.train.resolve(split.train.len(), self.seed)?;
        spec.augment.validate(split.train.shape)?;
        // The resolved config names the classes (the run's identity includes them).
        let mut config = self.clone();
        if config.data.source == DataSource::Idx && config.data.num_classes.is_none() {
            config.data.num_classes = Some(data::idx::DEFAULT_NUM_CLASSES);
        }
        Ok(Experiment {
            config,
            split,
            net,
            spec,
        })
    }
}
