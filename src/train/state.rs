//! Resumable training state, saved atomically as one unit.
//!
//! A state is three files (parameters, optimizer state, progress). Renaming
//! them into place one after another lets a kill between two renames leave
//! files of different steps, which a resume would silently mix. Instead each
//! save writes a fresh directory `state/sSTEP-ID.partial/` (ID unique to this
//! save), renames it to `state/sSTEP-ID/` (one rename to a new name), and
//! only then switches the pointer file
//! `state/CURRENT` to it (written to a temporary file and renamed: one more
//! atomic step). A kill at any point leaves `CURRENT` naming a complete
//! state, the previous one or the new one; leftovers are removed by the next
//! save. On load the progress file's step must match the directory's name and
//! every file must be present, so a damaged state is an error naming the
//! file, never a silent mix. Atomic against a killed process; surviving a
//! power loss would also need fsync, which is not done.

use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};

use crate::params::ParamSet;
use crate::paths::{read_json, write_json, write_text, RunDir};
use crate::{Error, Result};

const PARAMS: &str = "params.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const PROGRESS: &str = "progress.json";

/// A name no earlier save used: step, process id and a nanosecond clock.
fn name_of(step: usize) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("s{step:08}-{}-{nanos}", std::process::id())
}

/// The step in a state name `sSTEP-...`.
fn step_of_name(name: &str) -> Option<usize> {
    name.strip_prefix('s')?.split('-').next()?.parse().ok()
}

/// A loaded state: parameters, optimizer state, progress and its step.
pub struct Loaded<P> {
    pub step: usize,
    pub params: ParamSet,
    pub optimizer: ParamSet,
    pub progress: P,
}

/// Saves a state for `step` atomically (see the module docs).
pub fn save<P: Serialize>(
    dir: &RunDir,
    step: usize,
    params: &ParamSet,
    optimizer: &ParamSet,
    progress: &P,
) -> Result<()> {
    let root = dir.state_dir();
    std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    let name = name_of(step);
    let partial = root.join(format!("{name}.partial"));
    std::fs::create_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
    let written = params
        .save(&partial.join(PARAMS))
        .and_then(|()| optimizer.save(&partial.join(OPTIMIZER)))
        .and_then(|()| write_json(&partial.join(PROGRESS), progress));
    if let Err(e) = written {
        // A failed save (e.g. a full disk) leaves nothing behind; a kill here
        // leaves a partial directory that the next save removes.
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e);
    }
    let done = root.join(&name);
    std::fs::rename(&partial, &done).map_err(|e| Error::io(&done, e))?;
    write_text(&dir.state_current(), &format!("{name}\n"))?;
    // Remove every other state and leftover partial directory.
    for entry in std::fs::read_dir(&root).map_err(|e| Error::io(&root, e))? {
        let entry = entry.map_err(|e| Error::io(&root, e))?;
        let p = entry.path();
        let n = entry.file_name().to_string_lossy().to_string();
        if p.is_dir() && n != name && n.starts_with('s') {
            std::fs::remove_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        }
    }
    Ok(())
}

fn current_name(dir: &RunDir) -> Result<Option<String>> {
    let cur = dir.state_current();
    if !cur.exists() {
        return Ok(None);
    }
    let s = std::fs::read_to_string(&cur).map_err(|e| Error::io(&cur, e))?;
    Ok(Some(s.trim().to_string()))
}

fn require(path: PathBuf) -> Result<PathBuf> {
    if path.exists() {
        Ok(path)
    } else {
        Err(Error::invalid(
            "saved training state",
            "a complete state (parameters, optimizer, progress)",
            format!(
                "{} is missing: the state is damaged; rerun with --force to start over",
                path.display()
            ),
        ))
    }
}

/// Loads the current state, if any. `step_of` reads the step from the progress record.
pub fn load<P: DeserializeOwned>(dir: &RunDir, step_of: impl Fn(&P) -> usize) -> Result<Option<Loaded<P>>> {
    let Some(name) = current_name(dir)? else {
        return Ok(None);
    };
    let d = dir.state_dir().join(&name);
    let step: usize = step_of_name(&name).ok_or_else(|| {
        Error::invalid(
            format!("{}", dir.state_current().display()),
            "a state name sSTEP",
            &name,
        )
    })?;
    let progress: P = read_json(&require(d.join(PROGRESS))?)?;
    if step_of(&progress) != step {
        return Err(Error::invalid(
            format!("saved training state {}", d.display()),
            format!("progress at step {step}"),
            format!(
                "step {} (a damaged state; rerun with --force to start over)",
                step_of(&progress)
            ),
        ));
    }
    Ok(Some(Loaded {
        step,
        params: ParamSet::load(&require(d.join(PARAMS))?)?,
        optimizer: ParamSet::load(&require(d.join(OPTIMIZER))?)?,
        progress,
    }))
}

/// Whether `dir` holds a resumable state.
pub fn exists(dir: &RunDir) -> bool {
    Path::new(&dir.state_current()).exists()
}
