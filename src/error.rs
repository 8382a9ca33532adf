//! The crate's one error type. Every fallible library function returns
//! [`Result<T>`]; messages say what was wrong, what was expected and what was found.

use std::path::PathBuf;

/// All errors raised by the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    /// (The cause is part of the message, not a separate source, so that
    /// error chains do not print it twice.)
    #[error("I/O error on {path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    /// A file could not be written (disk full, permissions...).
    #[error("could not write {}: {what}", path.display())]
    Write { path: std::path::PathBuf, what: String },
    /// A data file is malformed (bad magic number, truncated, inconsistent counts...).
    #[error("bad data file {file}: {what}")]
    Data { file: String, what: String },
    /// A configuration value is out of range or inconsistent.
    #[error("invalid config value `{field}`: expected {expected}, got {got}")]
    Config {
        field: String,
        expected: String,
        got: String,
    },
    /// A TOML or JSON document could not be parsed.
    #[error("cannot parse {path}: {msg}")]
    Parse { path: String, msg: String },
    /// Two tensors or parameter sets do not line up.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    Shape {
        what: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    /// A named parameter (or mask entry) is missing or unexpected.
    #[error("parameter mismatch: {what}")]
    Param { what: String },
    /// Any other invalid argument.
    #[error("invalid {what}: expected {expected}, got {got}")]
    Invalid {
        what: String,
        expected: String,
        got: String,
    },
    /// Pruning would remove every remaining weight of a layer, disconnecting
    /// the network ("layer collapse", Tanaka et al. 2020, Sec. 3).
    #[error("invalid pruning layer `{layer}`: expected at least one weight left in every layer (lower the rate or the number of rounds), got all {before} remaining weights removed")]
    LayerCollapse { layer: String, before: usize },
    /// The training loss became NaN or infinite.
    #[error("training diverged at step {step}: loss = {loss} (try a smaller learning rate)")]
    Diverged { step: usize, loss: f32 },
    /// The requested device is not available in this build.
    #[error("device `{requested}` is unavailable: {why}")]
    Device { requested: String, why: String },
    /// A figure could not be drawn.
    #[error("plot {path}: {msg}")]
    Plot { path: String, msg: String },
    /// An error from candle.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// JSON (de)serialization failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// Crate-wide result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for an [`Error::Invalid`].
    pub fn invalid(what: impl Into<String>, expected: impl Into<String>, got: impl ToString) -> Self {
        Error::Invalid {
            what: what.into(),
            expected: expected.into(),
            got: got.to_string(),
        }
    }

    /// Shorthand for an [`Error::Config`].
    pub fn config(field: impl Into<String>, expected: impl Into<String>, got: impl ToString) -> Self {
        Error::Config {
            field: field.into(),
            expected: expected.into(),
            got: got.to_string(),
        }
    }

    /// Shorthand for an [`Error::Data`].
    pub fn data(file: impl Into<String>, what: impl Into<String>) -> Self {
        Error::Data {
            file: file.into(),
            what: what.into(),
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause: source,
        }
    }
}
