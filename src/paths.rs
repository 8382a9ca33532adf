//! The one place that knows the layout of a run directory:
//!
//! ```text
//! <root>/config.toml            resolved config
//! <root>/metrics.csv|json       evaluation history
//! <root>/summary.json, report.md
//! <root>/checkpoints/step_XXXXXXXX.safetensors
//! <root>/state/CURRENT                  name of the complete state to resume from
//! <root>/state/sXXXXXXXX/{params,optimizer}.safetensors, progress.json
//! <root>/figures/<name>.png
//! <root>/<child>/...            nested runs (one per width, round, seed...)
//! ```

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{Error, Result};

/// Default parent of run directories.
pub const DEFAULT_RUNS_DIR: &str = "runs";

/// A run directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// A run directory at `root` (not created yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }

    /// Creates the directory (and parents).
    pub fn create(root: impl Into<PathBuf>) -> Result<Self> {
        let r = RunDir::new(root);
        std::fs::create_dir_all(&r.root).map_err(|e| Error::io(&r.root, e))?;
        Ok(r)
    }

    /// The root path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A nested run directory (created).
    pub fn child(&self, name: &str) -> Result<RunDir> {
        RunDir::create(self.root.join(name))
    }

    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn metrics_csv(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
    pub fn metrics_json(&self) -> PathBuf {
        self.root.join("metrics.json")
    }
    pub fn summary_json(&self) -> PathBuf {
        self.root.join("summary.json")
    }
    pub fn report_md(&self) -> PathBuf {
        self.root.join("report.md")
    }
    /// Parameters saved at training step `step`.
    pub fn checkpoint(&self, step: usize) -> PathBuf {
        self.root
            .join("checkpoints")
            .join(format!("step_{step:08}.safetensors"))
    }
    /// The directory of resumable training states.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }
    /// The pointer to the current complete state (see [`crate::train::state`]).
    pub fn state_current(&self) -> PathBuf {
        self.state_dir().join("CURRENT")
    }
    /// The cache of training runs of this run directory (see [`crate::train::cache`]).
    pub fn train_cache(&self) -> PathBuf {
        self.root.join("cache").join("train")
    }
    /// A PNG figure called `name`.
    pub fn figure(&self, name: &str) -> PathBuf {
        self.root.join("figures").join(format!("{name}.png"))
    }
    /// Any other file in the run directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

/// The directory holding `path` (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Checks that `name` can name a run directory: one plain path component
/// (not empty, not `.` or `..`, no `/` or `\`, no control characters, at
/// most 200 bytes so that shard suffixes still fit a file name). `what` names
/// the flag or key it came from, for the message.
pub fn check_run_name(what: &str, name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::invalid(
            what,
            "a run name that is one plain directory name (letters, digits, `_`, `-`, `.`; not `.` or `..`)",
            format!("{name:?} ({why})"),
        ))
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name == "." || name == ".." {
        return bad("it names the directory itself or its parent, not a new directory inside it");
    }
    if name.contains(['/', '\\']) {
        return bad("it contains a path separator");
    }
    if name.chars().any(char::is_control) {
        return bad("it contains a control character");
    }
    if name.trim() != name {
        return bad("it starts or ends with white space");
    }
    if name.len() > 200 {
        return bad("longer than 200 bytes");
    }
    Ok(())
}

/// The run directory `<out>/<name>` after checking `name`
/// ([`check_run_name`]) and checking that the path resolves inside `out`:
/// an existing entry there must be a directory (not a file), and a symbolic
/// link must not lead outside `out` or nowhere.
pub fn run_root(out: &Path, what: &str, name: &str) -> Result<PathBuf> {
    check_run_name(what, name)?;
    let root = out.join(name);
    check_run_path(&root)?;
    Ok(root)
}

/// Checks that `root` can be a run directory: its last component is a plain
/// name, and whatever already exists there is a directory inside its parent
/// (a file, a dangling symbolic link, or a link to another place is refused,
/// naming the path).
pub fn check_run_path(root: &Path) -> Result<()> {
    let text = root.to_string_lossy();
    let last = text.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if last.is_empty() || last == "." || last == ".." {
        return Err(Error::invalid(
            "run directory",
            "a path whose last component is a plain directory name (not `.` or `..`)",
            root.display(),
        ));
    }
    let meta = match std::fs::symlink_metadata(root) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(root, e)),
    };
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(root).map_err(|e| Error::io(root, e))?;
        let resolved = match std::fs::canonicalize(root) {
            Ok(r) => r,
            Err(_) => {
                return Err(Error::invalid(
                    format!("run directory {}", root.display()),
                    "a directory, or nothing (a new run)",
                    format!(
                        "a symbolic link to {}, which does not exist (remove the link or choose another name)",
                        target.display()
                    ),
                ))
            }
        };
        let parent = parent_dir(root);
        let parent = std::fs::canonicalize(parent).map_err(|e| Error::io(parent, e))?;
        if resolved.parent() != Some(parent.as_path()) || !resolved.is_dir() {
            return Err(Error::invalid(
                format!("run directory {}", root.display()),
                format!("a directory inside {}", parent.display()),
                format!(
                    "a symbolic link to {} (a run never writes outside its parent directory; use --out to put runs elsewhere)",
                    resolved.display()
                ),
            ));
        }
        return Ok(());
    }
    if !meta.is_dir() {
        return Err(Error::invalid(
            format!("run directory {}", root.display()),
            "a directory, or nothing (a new run)",
            "a file of that name (move it away or choose another name)",
        ));
    }
    Ok(())
}

/// Hard-links (or, across file systems, copies) every file under `src`
/// into the same place under `dst`, creating directories, except the
/// top-level entries named in `skip`. A file already at its place in `dst`
/// is kept.
pub fn link_tree(src: &Path, dst: &Path, skip: &[&str]) -> Result<()> {
    let entries = std::fs::read_dir(src).map_err(|e| Error::io(src, e))?;
    for e in entries {
        let e = e.map_err(|e| Error::io(src, e))?;
        let name = e.file_name();
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let (from, to) = (e.path(), dst.join(&name));
        let ft = e.file_type().map_err(|e| Error::io(&from, e))?;
        if ft.is_dir() {
            std::fs::create_dir_all(&to).map_err(|e| Error::io(&to, e))?;
            link_tree(&from, &to, &[])?;
        } else if ft.is_file() && std::fs::symlink_metadata(&to).is_err() {
            if std::fs::hard_link(&from, &to).is_err() {
                // Another file system: an atomic copy (never a truncated file).
                write_atomic_with(&to, "", |tmp| {
                    std::fs::copy(&from, tmp).map(|_| ()).map_err(|e| e.to_string())
                })?;
            }
        }
    }
    Ok(())
}

/// The one atomic-write helper: `fill` writes the complete file at a fresh
/// temporary path beside `path` (its directory is created if missing), which
/// then replaces `path` in one rename. A reader, or a run killed mid-write,
/// sees the old file or the new one, never part of one. Errors name `path`.
/// The temporary name ends in `suffix` (e.g. ".png" for a writer that picks
/// the format from the extension).
pub fn write_atomic_with(
    path: &Path,
    suffix: &str,
    fill: impl FnOnce(&Path) -> std::result::Result<(), String>,
) -> Result<()> {
    let dir = parent_dir(path);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut builder = tempfile::Builder::new();
    // Results are shared files: created as 0666 less the umask, like any
    // other file a user's program writes (the temporary-file default is 0600).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let tmp = builder
        .prefix(&format!(".{name}."))
        .suffix(&format!(".tmp{suffix}"))
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    fill(tmp.path()).map_err(|what| Error::Write {
        path: path.to_path_buf(),
        what,
    })?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Writes `bytes` to `path` atomically ([`write_atomic_with`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, "", |tmp| std::fs::write(tmp, bytes).map_err(|e| e.to_string()))
}

/// Writes `text` to `path` atomically, creating parent directories.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, text.as_bytes())
}

/// Writes `value` as pretty JSON.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_text(path, &serde_json::to_string_pretty(value)?)
}

/// Reads JSON from `path`.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let s = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&s).map_err(|e| Error::Parse {
        path: path.display().to_string(),
        msg: e.to_string(),
    })
}

/// Writes a CSV file from a header and rows of already formatted cells
/// (the `csv` crate quotes any cell that needs it), atomically.
pub fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let err = |e: csv::Error| Error::Write {
        path: path.to_path_buf(),
        what: e.to_string(),
    };
    w.write_record(header).map_err(err)?;
    for r in rows {
        w.write_record(r).map_err(err)?;
    }
    let bytes = w.into_inner().map_err(|e| Error::Write {
        path: path.to_path_buf(),
        what: e.to_string(),
    })?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_when_needed_and_ragged_rows_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        write_csv(&p, &["a", "b"], &[vec!["1".into(), "x, \"y\"".into()]]).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a,b\n1,\"x, \"\"y\"\"\"\n");
        let e = write_csv(&p, &["a", "b"], &[vec!["1".into()]]).unwrap_err().to_string();
        assert!(e.contains("t.csv"), "{e}");
    }
}

/// A duration for people: `42 s`, `3 min 20 s`, `1 h 05 min`.
pub fn human_seconds(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

/// Writes a float32 array of `shape` as a NumPy `.npy` file (format 1.0:
/// magic, header dict, C-order little-endian data), atomically. Written by
/// hand: the format is a 10-byte preamble and one header line.
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(Error::Shape {
            what: format!("array for {}", path.display()),
            expected: shape.to_vec(),
            got: vec![data.len()],
        });
    }
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Preamble (10 bytes) + header + '\n' is padded to a multiple of 64.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + 4 * data.len());
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    write_atomic(path, &bytes)
}
