//! The error type of this crate: every message is one line and names the
//! file or artifact it is about.

use std::path::PathBuf;

/// Everything that can go wrong while fetching, verifying, extracting or
/// reading the pinned model and data sets.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// No cache directory could be derived from the environment.
    #[error("cannot locate the cache directory: set SECATEURS_CACHE, XDG_CACHE_HOME or HOME")]
    NoCacheDir,

    /// A file that `secateurs fetch` produces is missing.
    #[error("{what} is not fetched yet ({} is missing): run `secateurs fetch`", path.display())]
    NotFetched {
        /// Human name of the missing data.
        what: String,
        /// The file that was looked for.
        path: PathBuf,
    },

    /// A downloaded or extracted file does not have its pinned sha256.
    #[error("sha256 mismatch for {what} ({}): expected {expected}, got {actual}", path.display())]
    HashMismatch {
        /// Which artifact or file.
        what: String,
        /// The file that was hashed.
        path: PathBuf,
        /// The pinned hash.
        expected: String,
        /// The hash actually computed.
        actual: String,
    },

    /// An external client (`python3`, `pip`, `npm`) is not installed.
    #[error("`{program}` is needed to fetch {what} but was not found: {hint}")]
    ToolMissing {
        /// The program or module that is missing.
        program: String,
        /// Which artifact needed it.
        what: String,
        /// What to install.
        hint: String,
    },

    /// An external client ran but failed.
    #[error("fetching {what} failed: `{command}` exited with {status}; stderr: {stderr_tail}")]
    ToolFailed {
        /// Which artifact was being fetched.
        what: String,
        /// The command line that was run.
        command: String,
        /// Exit status as text.
        status: String,
        /// The last few lines of the child's stderr, joined with ` | `.
        stderr_tail: String,
    },

    /// The client succeeded but the expected file is not where it should be.
    #[error("fetching {what}: `{command}` did not produce {}", expected.display())]
    DownloadMissing {
        /// Which artifact was being fetched.
        what: String,
        /// The command line that was run.
        command: String,
        /// The file that should have appeared.
        expected: PathBuf,
    },

    /// A file system operation failed.
    #[error("I/O error on {}: {err}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        err: std::io::Error,
    },

    /// An archive could not be read.
    #[error("cannot read archive {}: {message}", archive.display())]
    Archive {
        /// The archive file.
        archive: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// A required member is absent from an archive.
    #[error("archive {} has no member {member}", archive.display())]
    MissingMember {
        /// The archive file.
        archive: PathBuf,
        /// The member (or member pattern) that was required.
        member: String,
    },

    /// A JSON file could not be parsed.
    #[error("cannot parse JSON {}: {err}", path.display())]
    Json {
        /// The file that was parsed.
        path: PathBuf,
        /// The underlying error.
        err: serde_json::Error,
    },
}

impl DataError {
    /// Wrap an I/O error together with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            err,
        }
    }
}
