//! The run context: one policy for every command's run directory.
//!
//! - **Lock.** `<root>/.lock` is created exclusively and holds the owner's
//!   pid; a second process gets a clear error naming that pid. A lock whose
//!   process no longer exists (a killed run) is taken over.
//! - **Config identity.** `<root>/config.toml` is the resolved config and
//!   `<root>/run.json` records the command kind and the SHA-256 of that
//!   text. Opening a directory with the same kind and config continues the
//!   run (finished units are kept); a different config or kind is refused
//!   with the differing keys named, unless `force`, which empties the
//!   directory and reports what it removed. Nothing is deleted silently, and
//!   config.toml is only written for a fresh or forced run.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::paths::{read_json, write_json, write_text, RunDir};
use crate::{Error, Result};

/// What opening a run directory did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// A new run directory.
    Fresh,
    /// The same kind and config: finished units are kept.
    Continued,
    /// `force` emptied a directory of another config; these entries were removed.
    Restarted { removed: Vec<PathBuf> },
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct RunRecord {
    kind: String,
    config_sha256: String,
}

/// An exclusive lock on a run directory, released on drop.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

fn process_alive(pid: u32) -> bool {
    // Linux (the platform this crate targets): a live process has /proc/<pid>.
    Path::new(&format!("/proc/{pid}")).exists()
}

impl RunLock {
    /// Takes the lock of `root` (which must exist).
    pub fn acquire(root: &Path) -> Result<RunLock> {
        let path = root.join(".lock");
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    writeln!(f, "{}", std::process::id()).map_err(|e| Error::io(&path, e))?;
                    return Ok(RunLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    match text.trim().parse::<u32>() {
                        Ok(pid) if pid != std::process::id() && process_alive(pid) => {
                            return Err(Error::invalid(
                                format!("run directory {}", root.display()),
                                "no other process writing it",
                                format!("it is locked by running process {pid} ({})", path.display()),
                            ));
                        }
                        // A stale lock (its process is gone) or an unreadable one.
                        _ => {
                            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                        }
                    }
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::invalid(
            format!("lock {}", path.display()),
            "a lock that can be taken",
            "another process keeps recreating it",
        ))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A locked run directory whose config matches the current one.
#[derive(Debug)]
pub struct RunContext {
    pub dir: RunDir,
    pub start: Start,
    _lock: RunLock,
}

/// SHA-256 of `text`, in hex.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, x) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// The keys whose values differ between two TOML texts, as `key: old -> new`
/// (`(absent)` for a missing key).
pub fn config_diff(old: &str, new: &str) -> Vec<String> {
    let parse = |s: &str| -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        match s.parse::<toml::Value>() {
            Ok(v) => flatten("", &v, &mut m),
            Err(_) => {
                m.insert("(unparseable config.toml)".into(), s.to_string());
            }
        }
        m
    };
    let (a, b) = (parse(old), parse(new));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            format!(
                "{k}: {} -> {}",
                a.get(k).map(String::as_str).unwrap_or("(absent)"),
                b.get(k).map(String::as_str).unwrap_or("(absent)")
            )
        })
        .collect()
}

impl RunContext {
    /// Opens (creating if needed) the run directory `root` for a run of
    /// `kind` with the resolved `config` text; see the module docs.
    pub fn open(root: &Path, kind: &str, config: &str, force: bool) -> Result<RunContext> {
        let dir = RunDir::create(root)?;
        let lock = RunLock::acquire(root)?;
        let record = RunRecord {
            kind: kind.to_string(),
            config_sha256: sha256_hex(config),
        };
        let cfg_path = dir.config();
        let rec_path = dir.file("run.json");
        let existing = std::fs::read_dir(root)
            .map_err(|e| Error::io(root, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.file_name().and_then(|n| n.to_str()) != Some(".lock"))
            .collect::<Vec<_>>();
        let start = if existing.is_empty() {
            Start::Fresh
        } else {
            let old_rec: Option<RunRecord> = if rec_path.exists() {
                Some(read_json(&rec_path)?)
            } else {
                None
            };
            let old_cfg = std::fs::read_to_string(&cfg_path).ok();
            // The same command and the same config: the same text, or the
            // same keys and values written differently (a directory from
            // before run.json existed, or another TOML formatting).
            let same_kind = old_rec.as_ref().is_none_or(|r| r.kind == kind);
            let same_config = old_rec
                .as_ref()
                .is_some_and(|r| r.config_sha256 == record.config_sha256)
                || old_cfg
                    .as_deref()
                    .is_some_and(|old| config_diff(old, config).is_empty());
            let same = same_kind && same_config && (old_rec.is_some() || old_cfg.is_some());
            if same {
                Start::Continued
            } else if force {
                let mut removed = existing.clone();
                removed.sort();
                for p in &removed {
                    let r = if p.is_dir() {
                        std::fs::remove_dir_all(p)
                    } else {
                        std::fs::remove_file(p)
                    };
                    r.map_err(|e| Error::io(p, e))?;
                }
                Start::Restarted { removed }
            } else {
                let why = match (&old_rec, &old_cfg) {
                    (Some(r), _) if r.kind != kind => {
                        format!("it holds a `{}` run, this is `{kind}`", r.kind)
                    }
                    (_, Some(old)) => {
                        let d = config_diff(old, config);
                        if d.is_empty() {
                            "its config.toml was edited by hand (same keys, different text)".to_string()
                        } else {
                            format!("its config differs: {}", d.join("; "))
                        }
                    }
                    _ => "it holds files of an unknown run (no run.json)".to_string(),
                };
                return Err(Error::invalid(
                    format!("run directory {}", root.display()),
                    "the same command and config to continue it, or --force to start over",
                    why,
                ));
            }
        };
        // Fresh and forced runs write their config; a continued run only
        // refreshes the text when it is the same config written differently.
        let cfg_text = std::fs::read_to_string(&cfg_path).ok();
        if start != Start::Continued || cfg_text.as_deref() != Some(config) {
            write_text(&cfg_path, config)?;
        }
        if start != Start::Continued || !rec_path.exists() || cfg_text.as_deref() != Some(config) {
            write_json(&rec_path, &record)?;
        }
        Ok(RunContext {
            dir,
            start,
            _lock: lock,
        })
    }
}
