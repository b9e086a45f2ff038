//! Errors of the pruning crate: each names the tensor, layer, option or file at fault.

use std::path::PathBuf;

use secateurs_model::ModelError;

/// Errors raised while pruning.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// A sparsity ratio outside [0, 1).
    #[error("sparsity {value} is outside [0, 1)")]
    BadSparsity {
        /// The ratio given.
        value: f64,
    },
    /// An N:M pattern that is not 0 < N < M.
    #[error("pattern '{pattern}': {reason}")]
    BadPattern {
        /// The pattern as written.
        pattern: String,
        /// What is wrong.
        reason: String,
    },
    /// The N:M group size does not divide a matrix's input dimension.
    #[error("{tensor}: N:M group size {m} does not divide the input dimension {cols}")]
    PatternDoesNotDivide {
        /// Tensor at fault.
        tensor: String,
        /// Group size M.
        m: usize,
        /// Input dimension of the matrix.
        cols: usize,
    },
    /// The damped Hessian stayed non positive-definite after every retry.
    #[error("{layer}: Hessian is not positive definite even with damping {damping:e} (after retries); the calibration inputs may be degenerate")]
    NotPositiveDefinite {
        /// Linear layer at fault.
        layer: String,
        /// Largest damping tried (absolute, added to the diagonal).
        damping: f64,
    },
    /// A weight or statistic holds NaN or infinity.
    #[error("{tensor}: {what} contains a non-finite value (NaN or infinity)")]
    NonFinite {
        /// Tensor at fault.
        tensor: String,
        /// Which quantity (weights, calibration inputs, Hessian).
        what: &'static str,
    },
    /// A method that needs calibration statistics got none.
    #[error("{tensor}: no calibration inputs were observed before pruning")]
    NoStatistics {
        /// Tensor at fault.
        tensor: String,
    },
    /// The calibration text is empty or too short.
    #[error("calibration text: {0}")]
    Calibration(String),
    /// An invalid option or option file.
    #[error("{option}: {reason}")]
    BadOption {
        /// Option or file at fault.
        option: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// File at fault.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The model failed to load or run.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Result alias for this crate.
pub type Result<T, E = PruneError> = std::result::Result<T, E>;
