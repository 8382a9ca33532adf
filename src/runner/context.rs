//! The run context: one policy for every command's run directory.
//!
//! - **Name.** A run directory is one plain name inside its parent
//!   ([`crate::paths::check_run_path`]): never `.` or `..`, never a file or
//!   a symbolic link that leads elsewhere.
//! - **Lock.** `<root>/.lock` is created exclusively and holds the owner's
//!   pid, host, boot and process start time; a second process gets a clear
//!   error naming that process. A lock whose process has ended (a killed
//!   run), or whose pid now runs another process, is taken over; a lock of
//!   another host is refused with the command that clears it.
//! - **Config identity.** `<root>/config.toml` is the resolved config and
//!   `<root>/run.json` records the command kind and the SHA-256 of that
//!   text. Opening a directory with the same kind and config continues the
//!   run (finished units are kept); a different config or kind is refused
//!   with the differing keys named, unless `force`, which empties the
//!   directory after listing what it removes. `force` empties only a
//!   directory whose `run.json` this tool wrote for it (the record names its
//!   directory); any other directory is refused untouched. Nothing is deleted
//!   silently, and config.toml is only written for a fresh, grown or forced run.
//! - **Growth.** A config that only adds values to lists whose every value
//!   is one more independent unit (an experiment's `GROWS` keys, e.g. its
//!   seeds) grows the run: the finished units are kept, only the new ones
//!   run, and the result is the one a fresh run of the new config gives.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::paths::{check_run_path, read_json, write_json, write_text, RunDir};
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
    /// The same kind and config but for lists that only add units (e.g.
    /// more seeds): finished units are kept and only the new ones run.
    Grown { added: Vec<String> },
}

impl Start {
    /// Whether finished work in the directory is kept and reused.
    pub fn keeps_work(&self) -> bool {
        matches!(self, Start::Continued | Start::Grown { .. })
    }
}

#[derive(Serialize, Deserialize, Debug)]
struct RunRecord {
    kind: String,
    config_sha256: String,
    /// The name of the run directory this record was written in (absent in
    /// records written before it was kept): `--force` empties a directory
    /// only when its record names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dir: Option<String>,
    /// Where the run's results came from (not part of its identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provenance: Option<Provenance>,
}

impl PartialEq for RunRecord {
    /// The run's identity: kind, config and directory.
    fn eq(&self, o: &Self) -> bool {
        self.kind == o.kind && self.config_sha256 == o.config_sha256 && self.dir == o.dir
    }
}

/// What made a run: the tool's version (and git commit when built from a
/// checkout), the host, when it started and the command line. Written when
/// the run starts (fresh, forced or grown), kept when it continues.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Provenance {
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub host: String,
    /// Seconds since the Unix epoch (UTC).
    pub started_unix: u64,
    pub command: Vec<String>,
}

impl Provenance {
    /// This process's.
    pub fn now() -> Provenance {
        Provenance {
            version: env!("CARGO_PKG_VERSION").to_string(),
            commit: option_env!("LTK_GIT_COMMIT").map(str::to_string),
            host: host_name(),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            command: std::env::args().collect(),
        }
    }
}

/// Who holds a lock: enough to tell a live holder from a stale lock whose
/// pid was reused, and a lock of another machine (a shared file system) from
/// a local one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
struct LockOwner {
    pid: u32,
    host: String,
    /// `/proc/sys/kernel/random/boot_id`: a lock from before a reboot is stale.
    #[serde(default)]
    boot_id: String,
    /// The process's start time in clock ticks after boot (`/proc/<pid>/stat`
    /// field 22): a different start time means the pid was reused.
    #[serde(default)]
    start_ticks: Option<u64>,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// This machine's host name.
fn host_name() -> String {
    let h = read_trimmed("/proc/sys/kernel/hostname");
    if h.is_empty() {
        std::env::var("HOSTNAME").unwrap_or_else(|_| "unknown".into())
    } else {
        h
    }
}

/// The start time of process `pid` in clock ticks after boot, if it runs.
fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn process_alive(pid: u32) -> bool {
    // Linux (the platform this crate targets): a live process has /proc/<pid>.
    Path::new(&format!("/proc/{pid}")).exists()
}

impl LockOwner {
    fn this_process() -> LockOwner {
        let pid = std::process::id();
        LockOwner {
            pid,
            host: host_name(),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            start_ticks: process_start_ticks(pid),
        }
    }
}

/// What a lock file says about its holder.
enum Holder {
    /// Held by a process that runs now.
    Live(String),
    /// Held on another machine: it cannot be checked from here.
    OtherHost(String),
    /// Its process is gone, or the pid now runs another process: this says which.
    Stale(String),
}

fn describe_holder(text: &str, age: Option<std::time::Duration>) -> Holder {
    let me = LockOwner::this_process();
    if let Ok(o) = serde_json::from_str::<LockOwner>(text) {
        if o.host != me.host {
            return Holder::OtherHost(format!("process {} on host {}", o.pid, o.host));
        }
        if !o.boot_id.is_empty() && !me.boot_id.is_empty() && o.boot_id != me.boot_id {
            return Holder::Stale(format!("process {} of an earlier boot", o.pid));
        }
        if o.pid == me.pid && o.start_ticks == me.start_ticks {
            return Holder::Live(format!("this process ({})", o.pid));
        }
        return match (process_alive(o.pid), o.start_ticks, process_start_ticks(o.pid)) {
            (false, _, _) => Holder::Stale(format!("process {}, which has ended", o.pid)),
            (true, Some(a), Some(b)) if a != b => Holder::Stale(format!(
                "process {}, which has ended (the pid now belongs to another process)",
                o.pid
            )),
            _ => Holder::Live(format!("running process {}", o.pid)),
        };
    }
    // The plain pid written before the holder's identity was kept.
    if let Ok(pid) = text.trim().parse::<u32>() {
        return if pid != me.pid && process_alive(pid) {
            Holder::Live(format!("running process {pid}"))
        } else {
            Holder::Stale(format!("process {pid}, which has ended"))
        };
    }
    // Being written right now by another process, or damaged long ago.
    if age.is_some_and(|a| a < std::time::Duration::from_secs(10)) {
        Holder::Live("a process that is taking it now".into())
    } else {
        Holder::Stale("an unreadable lock file".into())
    }
}

/// An exclusive lock on a run directory, released on drop.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    /// What this process wrote: the lock is removed only while it still says so.
    content: String,
}

impl RunLock {
    /// Takes the lock of `root` (which must exist). The lock file holds the
    /// holder's pid, host, boot and process start time. A lock whose process
    /// has ended, whose pid now runs another process, or which predates a
    /// reboot is taken over (and said so); a live holder, or a holder on
    /// another host (a shared file system, e.g. another Slurm node), is
    /// refused with the command that clears the lock if that run is known to
    /// be dead.
    pub fn acquire(root: &Path) -> Result<RunLock> {
        let path = root.join(".lock");
        let me = LockOwner::this_process();
        for _ in 0..3 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let content = format!("{}\n", serde_json::to_string(&me)?);
                    if let Err(e) = f.write_all(content.as_bytes()) {
                        // No half-written lock is left behind (a full disk).
                        let _ = std::fs::remove_file(&path);
                        return Err(Error::io(&path, e));
                    }
                    return Ok(RunLock { path, content });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let age = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok());
                    let clear = format!("rm '{}'", path.display());
                    match describe_holder(&text, age) {
                        Holder::Live(who) => {
                            return Err(Error::invalid(
                                format!("run directory {}", root.display()),
                                "no other process writing it",
                                format!(
                                    "it is locked by {who} ({}); wait for it, or if that is not a run of this tool, clear the lock with: {clear}",
                                    path.display()
                                ),
                            ));
                        }
                        Holder::OtherHost(who) => {
                            return Err(Error::invalid(
                                format!("run directory {}", root.display()),
                                "no other process writing it",
                                format!(
                                    "it is locked by {who} ({}), which cannot be checked from host {}; if that run has ended, clear the lock with: {clear}",
                                    path.display(),
                                    me.host
                                ),
                            ));
                        }
                        Holder::Stale(who) => {
                            // Moved aside atomically, then checked: if another
                            // process took it over in between, its fresh lock
                            // is put back instead of removed.
                            let aside = root.join(format!(".lock.stale.{}", me.pid));
                            match std::fs::rename(&path, &aside) {
                                Ok(()) => {}
                                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                                Err(e) => return Err(Error::io(&path, e)),
                            }
                            let moved = std::fs::read_to_string(&aside).unwrap_or_default();
                            if moved == text {
                                eprintln!("taking over the stale lock {} of {who}", path.display());
                                let _ = std::fs::remove_file(&aside);
                            } else {
                                let _ = std::fs::hard_link(&aside, &path);
                                let _ = std::fs::remove_file(&aside);
                            }
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
        if std::fs::read_to_string(&self.path).is_ok_and(|t| t == self.content) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A locked run directory whose config matches the current one.
///
/// A fresh run that ends with an error before writing anything but its
/// `config.toml` and `run.json` leaves nothing behind when dropped: the
/// corrected command then starts afresh instead of being refused. A command
/// that finished says so with [`RunContext::keep`] (a shard with no units
/// of its own is such a run, and must stay for the merge).
#[derive(Debug)]
pub struct RunContext {
    pub dir: RunDir,
    pub start: Start,
    /// Remove config.toml and run.json on drop if nothing else was written
    /// and the command did not finish ([`RunContext::keep`]).
    clean_if_unused: std::sync::atomic::AtomicBool,
    /// The directory did not exist before this run.
    created: bool,
    lock: Option<RunLock>,
}

/// The files a run directory holds before any work is done.
const RUN_FILES: [&str; 3] = ["config.toml", "run.json", ".lock"];

impl Drop for RunContext {
    fn drop(&mut self) {
        if !self.clean_if_unused.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let root = self.dir.root().to_path_buf();
        let Ok(entries) = std::fs::read_dir(&root) else { return };
        let names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        if names.iter().all(|n| RUN_FILES.contains(&n.as_str())) {
            let _ = std::fs::remove_file(root.join("config.toml"));
            let _ = std::fs::remove_file(root.join("run.json"));
            drop(self.lock.take());
            if self.created {
                let _ = std::fs::remove_dir(&root);
            }
        }
    }
}

/// The lists of `grow` that `new` extends, as `key: old -> new`, when
/// every difference between the two config texts is such an extension (the
/// old values kept, in any order, new ones added); None otherwise.
fn grown_lists(old: &str, new: &str, grow: &[String]) -> Option<Vec<String>> {
    let (old_doc, new_doc): (toml::Table, toml::Table) = (old.parse().ok()?, new.parse().ok()?);
    let get = |doc: &toml::Table, key: &str| -> Option<toml::Value> {
        let mut parts = key.split('.');
        let mut v = doc.get(parts.next()?)?;
        for p in parts {
            v = v.as_table()?.get(p)?;
        }
        Some(v.clone())
    };
    let diff = config_diff(old, new);
    if diff.is_empty() {
        return None;
    }
    let mut added = Vec::new();
    for line in diff {
        let key = line.split(':').next()?.trim().to_string();
        if !grow.contains(&key) {
            return None;
        }
        let (o, n) = (get(&old_doc, &key)?, get(&new_doc, &key)?);
        let (o, n) = (o.as_array()?, n.as_array()?);
        if !o.iter().all(|x| n.contains(x)) {
            return None;
        }
        added.push(line);
    }
    Some(added)
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

/// Whether the TOML `config` names the run directory `dir` (`name = dir`,
/// or `dir` is one of its shards).
fn config_names_dir(config: &str, dir: &str) -> bool {
    let Ok(t) = config.parse::<toml::Table>() else {
        return false;
    };
    let Some(name) = t.get("name").and_then(|v| v.as_str()) else {
        return false;
    };
    dir == name || dir.strip_prefix(name).is_some_and(|rest| rest.starts_with(".shard-"))
}

impl RunContext {
    /// Opens (creating if needed) the run directory `root` for a run of
    /// `kind` with the resolved `config` text; see the module docs.
    pub fn open(root: &Path, kind: &str, config: &str, force: bool) -> Result<RunContext> {
        Self::open_growing(root, kind, config, force, &[])
    }

    /// [`RunContext::open`], where a config that differs from the run's
    /// only by values added to the lists named in `grow` (dotted keys, e.g.
    /// `imp.seeds`: lists whose every value is one more unit, and which no
    /// unit's record depends on) grows the run instead of being refused.
    pub fn open_growing(root: &Path, kind: &str, config: &str, force: bool, grow: &[String]) -> Result<RunContext> {
        check_run_path(root)?;
        let created = std::fs::symlink_metadata(root).is_err();
        let dir = RunDir::create(root)?;
        let lock = match RunLock::acquire(root) {
            Ok(l) => l,
            Err(e) => {
                if created {
                    let _ = std::fs::remove_dir(root);
                }
                return Err(e);
            }
        };
        let dir_name = root
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let mut record = RunRecord {
            kind: kind.to_string(),
            config_sha256: sha256_hex(config),
            dir: Some(dir_name.clone()),
            provenance: Some(Provenance::now()),
        };
        let cfg_path = dir.config();
        let rec_path = dir.file("run.json");
        let mut existing = std::fs::read_dir(root)
            .map_err(|e| Error::io(root, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.file_name().and_then(|n| n.to_str()) != Some(".lock"))
            .collect::<Vec<_>>();
        existing.sort();
        let mut ctx = RunContext {
            dir,
            start: Start::Fresh,
            clean_if_unused: std::sync::atomic::AtomicBool::new(existing.is_empty()),
            created,
            lock: Some(lock),
        };
        // A continued run whose record and config text are already these.
        let mut up_to_date = false;
        if !existing.is_empty() {
            // A run.json that does not parse is reported, not trusted.
            let (old_rec, rec_error): (Option<RunRecord>, Option<String>) = if rec_path.exists() {
                match read_json::<RunRecord>(&rec_path) {
                    Ok(r) => (Some(r), None),
                    Err(e) => (None, Some(e.to_string())),
                }
            } else {
                (None, None)
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
            let names = |paths: &[PathBuf]| {
                paths
                    .iter()
                    .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let grown = match (&old_rec, &old_cfg) {
                (Some(r), Some(old)) if same_kind && r.kind == kind && !same => grown_lists(old, config, grow),
                _ => None,
            };
            if same {
                ctx.start = Start::Continued;
                up_to_date = old_rec.as_ref() == Some(&record) && old_cfg.as_deref() == Some(config);
                // A continued run keeps the provenance of its start.
                if let Some(p) = old_rec.as_ref().and_then(|r| r.provenance.clone()) {
                    record.provenance = Some(p);
                }
            } else if let Some(added) = grown {
                ctx.start = Start::Grown { added };
            } else if force {
                // --force empties only what a run of this tool wrote.
                let refuse = |why: String| {
                    Err(Error::invalid(
                        format!("--force on {}", root.display()),
                        "a run directory written by this tool (its run.json names the directory)",
                        format!("{why}; nothing was removed (choose another --name, or move the files away yourself)"),
                    ))
                };
                match (&old_rec, &rec_error) {
                    (Some(r), _) => {
                        if let Some(d) = r.dir.as_deref().filter(|d| *d != dir_name) {
                            return refuse(format!(
                                "a run.json written for run directory `{d}`, not `{dir_name}` (a copied or renamed run)"
                            ));
                        }
                    }
                    // A damaged run.json beside a config.toml of this run (its `name` names the directory).
                    (None, Some(_)) if old_cfg.as_deref().is_some_and(|c| config_names_dir(c, &dir_name)) => {}
                    (None, Some(e)) if old_cfg.is_some() => {
                        return refuse(format!(
                            "an unreadable run.json ({e}) beside a config.toml whose `name` is not `{dir_name}`"
                        ))
                    }
                    (None, Some(e)) => return refuse(format!("an unreadable run.json ({e}) and no config.toml")),
                    (None, None) => {
                        return refuse(format!("a directory without run.json, holding: {}", names(&existing)));
                    }
                }
                eprintln!(
                    "--force: removing {} entries of the earlier run in {}: {}",
                    existing.len(),
                    root.display(),
                    names(&existing)
                );
                for p in &existing {
                    let r = if p.is_dir() && !p.is_symlink() {
                        std::fs::remove_dir_all(p)
                    } else {
                        std::fs::remove_file(p)
                    };
                    r.map_err(|e| Error::io(p, e))?;
                }
                ctx.start = Start::Restarted { removed: existing };
            } else {
                let why = match (&old_rec, &old_cfg, &rec_error) {
                    (Some(r), _, _) if r.kind != kind => {
                        format!("it holds a `{}` run, this is `{kind}`", r.kind)
                    }
                    (_, Some(old), _) => {
                        let d = config_diff(old, config);
                        if d.is_empty() {
                            "its config.toml was edited by hand (same keys, different text)".to_string()
                        } else {
                            format!("its config differs: {}", d.join("; "))
                        }
                    }
                    (_, None, Some(e)) => format!("its run.json is unreadable ({e})"),
                    _ => format!(
                        "it holds files of no run of this tool (no run.json): {}",
                        names(&existing)
                    ),
                };
                return Err(Error::invalid(
                    format!("run directory {}", root.display()),
                    "the same command and config to continue it, or --force to start over",
                    why,
                ));
            }
        }
        // Fresh and forced runs write their record and config; a continued
        // run only refreshes them when the same config is written
        // differently (or the record predates its `dir`). run.json comes
        // first: a run killed between the two writes continues from its record.
        if !up_to_date {
            write_json(&rec_path, &record)?;
            write_text(&cfg_path, config)?;
        }
        Ok(ctx)
    }

    /// Marks the run as finished: its directory stays, whatever it holds.
    pub fn keep(&self) {
        self.clean_if_unused.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}
