//! Cached training, as open_lth caches runs by their hyperparameters: a
//! training call is keyed by everything that determines its result (the
//! data, model and loss identity, the training spec, the initial parameters,
//! the mask, frozen values, start step and starting optimizer state) and
//! trained once; later calls with the same key load the stored outcome, bit
//! for bit (training is deterministic for a key).
//!
//! The cache lives inside a run directory (`<run>/cache/train`, see
//! [`crate::paths::RunDir::train_cache`]): its lifetime is the run's, so a
//! changed config (refused, or `--force`, which empties the directory) or a
//! new code version in a new run never reuses a stale result.
//!
//! Layout: `<cache>/<sha256>/{outcome.json, final.safetensors,
//! ckpt_<step>.safetensors, opt_<step>.safetensors}`. An entry is written to a
//! fresh `<sha256>.partial-…` directory and renamed into place, so a killed
//! process never leaves a half entry, and two processes computing the same
//! key at once are harmless (identical contents; the second rename loses).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::objective::Trainable;
use super::trainer::{train, EvalRecord, TrainOptions, TrainOutcome, TrainSpec};
use crate::data::Split;
use crate::params::ParamSet;
use crate::paths::{read_json, write_json};
use crate::{Error, Result};

fn hash_params(h: &mut Sha256, tag: &str, p: Option<&ParamSet>) {
    h.update(tag.as_bytes());
    match p {
        None => h.update(b"none"),
        Some(p) => {
            for (k, a) in p.iter() {
                h.update(k.as_bytes());
                h.update(format!("{:?}", a.shape).as_bytes());
                for v in &a.data {
                    h.update(v.to_le_bytes());
                }
            }
        }
    }
}

/// The cache key of a training call (see the module docs).
pub fn key(identity: &str, init: &ParamSet, spec: &TrainSpec, opts: &TrainOptions) -> Result<String> {
    let mut h = Sha256::new();
    h.update(identity.as_bytes());
    h.update(serde_json::to_string(spec)?.as_bytes());
    h.update(
        format!(
            "start_step={};keep_opt={}",
            opts.start_step, opts.keep_optimizer_checkpoints
        )
        .as_bytes(),
    );
    hash_params(&mut h, "init", Some(init));
    hash_params(&mut h, "mask", opts.mask.map(|m| &m.0));
    hash_params(&mut h, "frozen", opts.frozen);
    hash_params(&mut h, "optimizer", opts.optimizer_state);
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[derive(Serialize, Deserialize)]
struct Stored {
    history: Vec<EvalRecord>,
    checkpoints: Vec<usize>,
    optimizer_checkpoints: Vec<usize>,
    start_step: usize,
    steps_done: usize,
    completed: bool,
    seconds: f64,
    samples_per_second: f64,
}

fn save(dir: &Path, o: &TrainOutcome) -> Result<()> {
    o.params.save(&dir.join("final.safetensors"))?;
    for (s, p) in &o.checkpoints {
        p.save(&dir.join(format!("ckpt_{s}.safetensors")))?;
    }
    for (s, p) in &o.optimizer_checkpoints {
        p.save(&dir.join(format!("opt_{s}.safetensors")))?;
    }
    write_json(
        &dir.join("outcome.json"),
        &Stored {
            history: o.history.clone(),
            checkpoints: o.checkpoints.keys().copied().collect(),
            optimizer_checkpoints: o.optimizer_checkpoints.keys().copied().collect(),
            start_step: o.start_step,
            steps_done: o.steps_done,
            completed: o.completed,
            seconds: o.seconds,
            samples_per_second: o.samples_per_second,
        },
    )
}

fn load(dir: &Path) -> Result<TrainOutcome> {
    let s: Stored = read_json(&dir.join("outcome.json"))?;
    let mut checkpoints = BTreeMap::new();
    for step in s.checkpoints {
        checkpoints.insert(step, ParamSet::load(&dir.join(format!("ckpt_{step}.safetensors")))?);
    }
    let mut optimizer_checkpoints = BTreeMap::new();
    for step in s.optimizer_checkpoints {
        optimizer_checkpoints.insert(step, ParamSet::load(&dir.join(format!("opt_{step}.safetensors")))?);
    }
    Ok(TrainOutcome {
        params: ParamSet::load(&dir.join("final.safetensors"))?,
        history: s.history,
        checkpoints,
        optimizer_checkpoints,
        start_step: s.start_step,
        steps_done: s.steps_done,
        completed: s.completed,
        seconds: s.seconds,
        samples_per_second: s.samples_per_second,
    })
}

/// [`train`] through the cache at `cache` (see the module docs). `identity`
/// names the data, model and loss (e.g. [`crate::config::Experiment::training_identity`]).
/// Calls that save resumable state or stop early are not cached.
pub fn cached_train(
    cache: &Path,
    identity: &str,
    model: &mut dyn Trainable,
    init: &ParamSet,
    split: &Split,
    spec: &TrainSpec,
    opts: &TrainOptions,
) -> Result<TrainOutcome> {
    if opts.run_dir.is_some() || opts.stop_after.is_some() {
        return Err(Error::invalid(
            "cached training",
            "a call without a run directory or stop_after",
            "one that saves state or stops early",
        ));
    }
    let k = key(identity, init, spec, opts)?;
    let done: PathBuf = cache.join(&k);
    if done.join("outcome.json").exists() {
        return load(&done);
    }
    let out = train(model, init, split, spec, opts)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let partial = cache.join(format!("{k}.partial-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
    save(&partial, &out)?;
    if std::fs::rename(&partial, &done).is_err() {
        // Another process stored the same key first: keep its entry.
        let _ = std::fs::remove_dir_all(&partial);
    }
    Ok(out)
}
