//! The error type of the report crate: every variant names the file or field at fault and prints
//! as one line.

use std::path::PathBuf;

/// Errors of reading, writing and rendering sweep results.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or directory could not be read, written, created or renamed.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done ("cannot read", "cannot rename into place", ...).
        action: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line of `results.jsonl` or `results.csv` is malformed.
    #[error("{path}:{line}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A command-line value (sparsity grid, pattern list, ...) is malformed.
    #[error("{option}: {reason}")]
    BadOption {
        /// The option, e.g. `--sparsity`.
        option: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A plot could not be drawn or encoded.
    #[error("{path}: cannot draw plot: {reason}")]
    Plot {
        /// The output file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// There is nothing to report.
    #[error("{path}: {reason}")]
    Empty {
        /// The results file.
        path: PathBuf,
        /// Why nothing can be reported.
        reason: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;

/// Shorthand for [`ReportError::Io`].
pub(crate) fn io_err(
    path: impl Into<PathBuf>,
    action: &'static str,
) -> impl FnOnce(std::io::Error) -> ReportError {
    let path = path.into();
    move |source| ReportError::Io {
        path,
        action,
        source,
    }
}

/// Writes `bytes` to `path` through a temporary sibling file that is renamed into place, so a
/// reader never sees a half-written file.
///
/// # Errors
/// [`ReportError::Io`] naming the file that could not be written or renamed.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).map_err(io_err(&tmp, "cannot write"))?;
    std::fs::rename(&tmp, path).map_err(io_err(path, "cannot rename into place"))?;
    Ok(())
}
