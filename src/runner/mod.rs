//! The experiment layer: an experiment is its own config table, a fixed list
//! of independent units of work, how to run one unit, and how to summarize
//! and report the unit records. The runner owns everything else once: the
//! run directory policy ([`crate::runner::context::RunContext`]), one saved record per
//! finished unit (a killed run continues at the next unit), shards for
//! scheduler job arrays (`--shard i/n` runs every n-th unit), and merging
//! shard directories into one summary.
//!
//! Units are independent by contract, so a shard's records do not depend on
//! which other units ran: merging the shards of a run gives the same records
//! as one unsharded run, bit for bit (tested).

pub mod args;
pub mod cli;
pub mod context;
pub mod flags;
pub mod registry;

pub use registry::{Plugin, Registry};

use std::path::{Path, PathBuf};

use candle_core::Device;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::paths::{read_json, write_json, RunDir};
use crate::report::verdict::Claim;
use crate::runner::context::{sha256_hex, RunContext};
use crate::{Error, Result};

/// One experiment kind (see the module docs).
pub trait Experiment {
    /// The command and TOML table name (e.g. "supermask").
    const NAME: &'static str;
    /// One paragraph for `--help`: what it runs, after whom.
    const ABOUT: &'static str;
    /// Help for the command-line flags derived from the config table's keys
    /// ([`flags`]): every scalar or list key of the default table is a flag;
    /// a key listed here gets this help (and an alias), and an optional key
    /// the default omits becomes a flag too.
    const FLAGS: &'static [flags::Flag] = &[];
    /// The keys of its table (lists) whose every value is one more unit and
    /// which no unit's record reads (e.g. `seeds`): adding values to them
    /// grows a finished run instead of being refused
    /// ([`context::RunContext::open_growing`]).
    const GROWS: &'static [&'static str] = &[];
    /// Its config table.
    type Config: Clone + Default + Serialize + DeserializeOwned;
    /// A unit of work (e.g. one seed).
    type Unit: Clone + Serialize + DeserializeOwned + std::fmt::Debug;
    /// What one unit measures.
    type Record: Clone + Serialize + DeserializeOwned;
    /// The summary of all records.
    type Summary: Serialize + DeserializeOwned;
    /// What every unit shares, built once per process: the base config with
    /// its data ([`config::Experiment`]) for most experiments.
    type Base;

    /// Fills in the defaults that depend on the base experiment (e.g. the
    /// output layer's half pruning rate), so that the config written into
    /// the run directory is the one that runs. Idempotent.
    fn resolve(_base: &Self::Base, _cfg: &mut Self::Config) {}
    /// Validates the config against the base experiment (before any
    /// training) and lists the units in a fixed order.
    fn units(base: &Self::Base, cfg: &Self::Config) -> Result<Vec<Self::Unit>>;
    /// A file-name-safe key, unique among the units.
    fn unit_key(unit: &Self::Unit) -> String;
    /// Runs one unit.
    fn run_unit(base: &Self::Base, cfg: &Self::Config, unit: &Self::Unit, env: &UnitEnv) -> Result<Self::Record>;
    /// Combines the records of every unit (in unit order).
    fn summarize(base: &Self::Base, cfg: &Self::Config, records: Vec<Self::Record>) -> Result<Self::Summary>;
    /// Writes the tables, report.md and figures (the runner writes
    /// summary.json, [`report`]).
    fn write_report(dir: &RunDir, summary: &Self::Summary) -> Result<()>;
    /// The verdicts.
    fn claims(summary: &Self::Summary) -> Vec<Claim>;
    /// The tables printed to the terminal when the run completes.
    fn console(summary: &Self::Summary) -> String;
    /// The line printed before the run starts: what runs, on what.
    fn banner(base: &Self::Base, cfg: &Self::Config) -> String;
    /// Called when the command line sets `key` of the config table, with
    /// the table after the change (e.g. a flag that replaces other keys).
    fn on_flag(_table: &mut toml::Table, _key: &str) {}
}

/// [`Experiment::resolve`], then [`Experiment::units`]: the config as it
/// will run, checked, and its units.
pub fn prepare<E: Experiment>(base: &E::Base, cfg: &mut E::Config) -> Result<Vec<E::Unit>> {
    E::resolve(base, cfg);
    E::units(base, cfg)
}

/// What a unit may use besides its config: the device, progress display,
/// and the run directory for its own intermediate files (e.g. IMP's
/// per-round masks), which it may reuse when `resume` is set.
pub struct UnitEnv<'a> {
    pub device: &'a Device,
    pub progress: bool,
    pub dir: &'a RunDir,
    pub resume: bool,
}

/// Errors unless `seeds` (the units of a per-seed experiment, config field
/// `field`) is non-empty and has no repeats (repeats would share a unit key).
pub fn check_seeds(seeds: &[u64], field: &str) -> Result<()> {
    if seeds.is_empty() {
        return Err(Error::config(field, "at least one seed", "[]"));
    }
    let mut sorted = seeds.to_vec();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::config(field, "distinct seeds", w[0]));
    }
    Ok(())
}

/// Errors unless `densities` (target fractions of weights kept, config
/// field `field`) is non-empty with every value in (0, 1).
pub fn check_densities(densities: &[f64], field: &str) -> Result<()> {
    if densities.is_empty() {
        return Err(Error::config(field, "at least one density", "[]"));
    }
    if let Some(&d) = densities.iter().find(|&&d| !(d > 0.0 && d < 1.0)) {
        return Err(Error::config(field, "fractions of weights kept in (0, 1)", d));
    }
    Ok(())
}

/// Errors unless `factors` (width multipliers, config field `field`) is
/// non-empty, finite, > 0 and without repeats.
pub fn check_width_factors(factors: &[f64], field: &str) -> Result<()> {
    if factors.is_empty() {
        return Err(Error::config(field, "at least one width factor", "[]"));
    }
    if let Some(f) = factors.iter().find(|f| !(f.is_finite() && **f > 0.0)) {
        return Err(Error::config(field, "finite factors > 0", f));
    }
    let mut sorted = factors.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    if sorted.len() != factors.len() {
        return Err(Error::config(field, "distinct factors", format!("{factors:?}")));
    }
    Ok(())
}

/// The base training spec for one unit's run with data-order seed `seed`:
/// no checkpoints, evaluated once at the end.
pub fn unit_spec(exp: &crate::config::Experiment, seed: u64) -> crate::train::TrainSpec {
    crate::train::TrainSpec {
        data_seed: seed,
        checkpoint_steps: vec![],
        eval_every: 0,
        ..exp.spec.clone()
    }
}

/// Trains `exp.net` from `init` under `mask` ([`unit_spec`]) and returns
/// its final test accuracy.
pub fn train_masked(
    exp: &crate::config::Experiment,
    env: &UnitEnv,
    seed: u64,
    init: &crate::params::ParamSet,
    mask: &crate::params::Mask,
) -> Result<f64> {
    let mut model = crate::train::Supervised::new(exp.net.clone(), exp.config.train.loss, env.device);
    let out = crate::train::train(
        &mut model,
        init,
        &exp.split,
        &unit_spec(exp, seed),
        &crate::train::TrainOptions {
            mask: Some(mask),
            progress: env.progress,
            ..Default::default()
        },
    )?;
    Ok(out.last().map(|r| r.test_accuracy).unwrap_or(f64::NAN))
}

/// Shard `index` of `count` (0-based, as Slurm's `SLURM_ARRAY_TASK_ID` with
/// `--array=0-(n-1)`): the units whose position is `index` modulo `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = Error;
    fn from_str(s: &str) -> Result<Shard> {
        let bad = || Error::invalid("--shard", "i/n with 0 <= i < n (e.g. 0/4)", s);
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// The run directory name of this shard of run `name`.
    pub fn dir_name(&self, name: &str) -> String {
        format!("{name}.shard-{}-of-{}", self.index, self.count)
    }
}

/// How a call of [`run`] ended.
pub enum Outcome<S> {
    /// Every unit is done: the summary (written with its report).
    Complete(S),
    /// A shard finished its units; `ltk merge` combines the shards.
    Shard { done: usize, total: usize },
}

fn unit_path(dir: &RunDir, key: &str) -> PathBuf {
    dir.file(&format!("units/{key}.json"))
}

/// A finished unit on disk. The wall time is kept beside the record, not in
/// it, so that records (and summaries) are deterministic.
#[derive(Serialize, Deserialize)]
struct SavedUnit<U, R> {
    unit: U,
    record: R,
    seconds: f64,
}

/// Runs (or continues) an experiment in the run context: every unit of the
/// shard (all units without one) whose record is not saved yet; then, when
/// unsharded, the summary and report.
pub fn run<E: Experiment>(
    base: &E::Base,
    cfg: &E::Config,
    ctx: &RunContext,
    device: &Device,
    progress: bool,
    shard: Option<Shard>,
) -> Result<Outcome<E::Summary>> {
    let (records, total) = run_units::<E>(base, cfg, &ctx.dir, ctx.start.keeps_work(), device, progress, shard)?;
    // Finished: the directory stays even when this shard had no unit.
    ctx.keep();
    match shard {
        Some(_) => Ok(Outcome::Shard {
            done: records.len(),
            total,
        }),
        None => {
            let s = E::summarize(base, cfg, records)?;
            report::<E>(&ctx.dir, &s)?;
            Ok(Outcome::Complete(s))
        }
    }
}

/// Writes `summary.json` (the summary with its verdicts as `verdicts`, the
/// claims of the report, so that a program reading the summary gets them
/// without parsing the report), then the experiment's report, tables and
/// figures.
pub fn report<E: Experiment>(dir: &RunDir, s: &E::Summary) -> Result<()> {
    // Through text, so that f32 fields keep their shortest form (to_value
    // would widen them to f64 digits).
    let mut v: serde_json::Value = serde_json::from_str(&serde_json::to_string(s)?)?;
    if let serde_json::Value::Object(o) = &mut v {
        o.insert("verdicts".into(), serde_json::to_value(E::claims(s))?);
    }
    write_json(&dir.summary_json(), &v)?;
    E::write_report(dir, s)
}

/// Runs every unit in `dir` without the run policy (for library callers and
/// tests, which own their directory); `resume` reuses saved units.
pub fn run_in<E: Experiment>(
    base: &E::Base,
    cfg: &E::Config,
    dir: &RunDir,
    device: &Device,
    progress: bool,
    resume: bool,
) -> Result<E::Summary> {
    let (records, _) = run_units::<E>(base, cfg, dir, resume, device, progress, None)?;
    let s = E::summarize(base, cfg, records)?;
    report::<E>(dir, &s)?;
    Ok(s)
}

fn run_units<E: Experiment>(
    base: &E::Base,
    cfg: &E::Config,
    dir: &RunDir,
    resume: bool,
    device: &Device,
    progress: bool,
    shard: Option<Shard>,
) -> Result<(Vec<E::Record>, usize)> {
    let units = E::units(base, cfg)?;
    let mine: Vec<usize> = (0..units.len())
        .filter(|i| shard.is_none_or(|s| i % s.count == s.index))
        .collect();
    let saved = |i: &usize| resume && unit_path(dir, &E::unit_key(&units[*i])).exists();
    let mut progress_line = UnitProgress::new(E::NAME, mine.len(), mine.iter().filter(|i| saved(i)).count());
    let mut records = Vec::new();
    for i in mine {
        let unit = &units[i];
        let path = unit_path(dir, &E::unit_key(unit));
        let record = if resume && path.exists() {
            read_json::<SavedUnit<E::Unit, E::Record>>(&path)?.record
        } else {
            if progress {
                progress_line.starting(&E::unit_key(unit));
            }
            let t0 = std::time::Instant::now();
            let env = UnitEnv {
                device,
                progress,
                dir,
                resume,
            };
            let r = E::run_unit(base, cfg, unit, &env)?;
            // Written atomically (temporary file, then rename): its presence marks the unit done.
            write_json(
                &path,
                &SavedUnit {
                    unit: unit.clone(),
                    record: r.clone(),
                    seconds: t0.elapsed().as_secs_f64(),
                },
            )?;
            progress_line.finished(t0.elapsed().as_secs_f64());
            r
        };
        records.push(record);
    }
    Ok((records, units.len()))
}

/// The whole-experiment progress line (units done of total, with an ETA
/// from the mean time of the units this process ran), printed to stderr
/// before each unit, beside the unit's own progress bar.
struct UnitProgress {
    name: &'static str,
    total: usize,
    done: usize,
    ran: usize,
    seconds: f64,
}

impl UnitProgress {
    fn new(name: &'static str, total: usize, done: usize) -> Self {
        UnitProgress {
            name,
            total,
            done,
            ran: 0,
            seconds: 0.0,
        }
    }
    fn starting(&self, key: &str) {
        let eta = if self.ran > 0 {
            let left = (self.total - self.done) as f64 * self.seconds / self.ran as f64;
            format!(", ETA {}", crate::paths::human_seconds(left))
        } else {
            String::new()
        };
        eprintln!("[{} unit {}/{}: {key}{eta}]", self.name, self.done + 1, self.total);
    }
    fn finished(&mut self, seconds: f64) {
        self.done += 1;
        self.ran += 1;
        self.seconds += seconds;
    }
}

#[derive(Deserialize)]
struct RunJson {
    kind: String,
    config_sha256: String,
}

/// Merges shard directories of one run (same command and config) into the
/// run directory `ctx` (opened with that config): every unit's record must be
/// present in exactly one shard (or identical in several); then summarizes
/// and reports.
pub fn merge<E: Experiment>(
    base: &E::Base,
    cfg: &E::Config,
    config_text: &str,
    shards: &[PathBuf],
    ctx: &RunContext,
) -> Result<E::Summary> {
    let want = sha256_hex(config_text);
    for s in shards {
        let rec: RunJson = read_json(&s.join("run.json"))?;
        if rec.kind != E::NAME || rec.config_sha256 != want {
            return Err(Error::invalid(
                format!("shard {}", s.display()),
                format!("a `{}` run of the same config as the others", E::NAME),
                format!(
                    "a `{}` run with config SHA-256 {}…",
                    rec.kind,
                    rec.config_sha256.get(..12).unwrap_or(&rec.config_sha256)
                ),
            ));
        }
    }
    let units = E::units(base, cfg)?;
    // Every record is found and read before anything is written: a merge
    // that fails leaves the target as it was.
    let mut saved_units = Vec::with_capacity(units.len());
    for unit in &units {
        let key = E::unit_key(unit);
        let mut found: Option<(PathBuf, String, serde_json::Value)> = None;
        for s in shards {
            let p = s.join("units").join(format!("{key}.json"));
            if p.exists() {
                let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
                // The wall time is not part of the result: records that
                // differ only in it are the same.
                let mut v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Parse {
                    path: p.display().to_string(),
                    msg: e.to_string(),
                })?;
                if let Some(o) = v.as_object_mut() {
                    o.remove("seconds");
                }
                if let Some((q, _, w)) = &found {
                    if *w != v {
                        return Err(Error::invalid(
                            format!("unit `{key}`"),
                            "one record (or identical ones) across shards",
                            format!("different records in {} and {}", q.display(), p.display()),
                        ));
                    }
                } else {
                    found = Some((p, text, v));
                }
            }
        }
        let Some((p, text, _)) = found else {
            return Err(Error::invalid(
                format!("unit `{key}`"),
                "a record in one of the shards",
                "none: a shard has not finished (run it again to continue)",
            ));
        };
        let saved: SavedUnit<E::Unit, E::Record> = serde_json::from_str(&text).map_err(|e| Error::Parse {
            path: p.display().to_string(),
            msg: e.to_string(),
        })?;
        saved_units.push((key, saved));
    }
    let mut records = Vec::with_capacity(saved_units.len());
    for (key, saved) in saved_units {
        write_json(&unit_path(&ctx.dir, &key), &saved)?;
        records.push(saved.record);
    }
    // The units' artifacts (weights, masks, per-pair results...), so that
    // the merged run is a complete run.
    for s in shards {
        crate::paths::link_tree(s, ctx.dir.root(), &MERGE_SKIP)?;
    }
    let s = E::summarize(base, cfg, records)?;
    report::<E>(&ctx.dir, &s)?;
    Ok(s)
}

/// The entries of a shard directory that a merge writes itself.
const MERGE_SKIP: [&str; 7] = [
    ".lock",
    "config.toml",
    "run.json",
    "units",
    "summary.json",
    "report.md",
    "figures",
];

/// Checks the shard directories given to a merge before anything is
/// created: each is a shard directory of one run (`<name>.shard-<i>-of-<n>`,
/// one `n`), none is given twice, every shard `0..n` is there, and the
/// target `into` is none of them.
pub fn check_shards(shards: &[PathBuf], into: &Path) -> Result<()> {
    if shards.is_empty() {
        return Err(Error::invalid("ltk merge", "the shard directories of one run", "none"));
    }
    let canon = |p: &Path| std::fs::canonicalize(p).map_err(|e| Error::io(p, e));
    let mut seen: Vec<(PathBuf, &PathBuf)> = Vec::new();
    let mut parsed: Vec<(String, usize, usize)> = Vec::new();
    for s in shards {
        let c = canon(s)?;
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == c) {
            return Err(Error::invalid(
                format!("shard {}", s.display()),
                "each shard once",
                format!("the same directory as {}", first.display()),
            ));
        }
        seen.push((c, s));
        let name = s
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let shape = || {
            Error::invalid(
                format!("shard {}", s.display()),
                "a shard directory <name>.shard-<i>-of-<n> written by --shard i/n",
                format!("`{name}` (a run that is not a shard cannot be merged)"),
            )
        };
        let (run, tail) = name.rsplit_once(".shard-").ok_or_else(shape)?;
        let (i, n) = tail.split_once("-of-").ok_or_else(shape)?;
        let (i, n): (usize, usize) = (i.parse().map_err(|_| shape())?, n.parse().map_err(|_| shape())?);
        if n == 0 || i >= n {
            return Err(shape());
        }
        parsed.push((run.to_string(), i, n));
    }
    let (run, _, n) = parsed[0].clone();
    if let Some((s, (r, _, m))) = shards.iter().zip(&parsed).find(|(_, (r, _, m))| *r != run || *m != n) {
        return Err(Error::invalid(
            format!("shard {}", s.display()),
            format!("a shard of `{run}` split {n} ways, like {}", shards[0].display()),
            format!("a shard of `{r}` split {m} ways"),
        ));
    }
    let missing: Vec<String> = (0..n)
        .filter(|i| !parsed.iter().any(|p| p.1 == *i))
        .map(|i| format!("{run}.shard-{i}-of-{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::invalid(
            format!("shards of `{run}`"),
            format!("all {n} shards"),
            format!("{} of them; missing: {}", parsed.len(), missing.join(", ")),
        ));
    }
    // The target, or the folder it will be made in, must not lie inside a
    // shard (the artifacts are linked from the shards into it).
    if let Ok(p) = canon(crate::paths::parent_dir(into)) {
        if let Some((_, s)) = seen.iter().find(|(k, _)| p.starts_with(k)) {
            return Err(Error::invalid(
                format!("merge target {}", into.display()),
                "a run directory outside the shards",
                format!("a directory inside shard {}", s.display()),
            ));
        }
    }
    if std::fs::symlink_metadata(into).is_ok() {
        let t = canon(into)?;
        if let Some((_, s)) = seen.iter().find(|(k, _)| *k == t) {
            return Err(Error::invalid(
                format!("merge target {}", into.display()),
                "a run directory other than the shards",
                format!("shard {} itself", s.display()),
            ));
        }
    }
    Ok(())
}

/// The shard directories of run `name` under `parent` (`name.shard-i-of-n`).
pub fn find_shards(parent: &Path, name: &str) -> Result<Vec<PathBuf>> {
    let prefix = format!("{name}.shard-");
    let mut out: Vec<PathBuf> = std::fs::read_dir(parent)
        .map_err(|e| Error::io(parent, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    out.sort();
    Ok(out)
}
