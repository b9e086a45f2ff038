//! The error type of the model crate: every variant names the file, tensor or field at fault,
//! and its message is one line.

use std::path::PathBuf;

use crate::gguf::GgufError;

/// Errors raised while loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// File at fault.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// A safetensors header is malformed; `field` names the part of the header at fault.
    #[error("{path}: invalid safetensors file: field '{field}': {reason}")]
    Safetensors {
        /// File at fault.
        path: PathBuf,
        /// Header field (or tensor name) at fault.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor is present but unusable (dtype, shape, values).
    #[error("{path}: tensor '{tensor}': {reason}")]
    Tensor {
        /// File at fault.
        path: PathBuf,
        /// Tensor at fault.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor the architecture needs is absent.
    #[error("{path}: missing tensor '{tensor}'")]
    MissingTensor {
        /// File (or directory) searched.
        path: PathBuf,
        /// Tensor that was expected.
        tensor: String,
    },
    /// A configuration field is missing or invalid.
    #[error("{path}: field '{field}': {reason}")]
    Config {
        /// File at fault.
        path: PathBuf,
        /// Field at fault.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The configuration names an architecture this build does not implement.
    #[error("{path}: field '{field}': unsupported architecture '{name}' (supported: {supported})")]
    UnsupportedArchitecture {
        /// File at fault.
        path: PathBuf,
        /// Field holding the architecture name.
        field: String,
        /// The architecture named there.
        name: String,
        /// The architectures we support.
        supported: String,
    },
    /// The tokenizer is missing or cannot be loaded.
    #[error("{path}: tokenizer: {reason}")]
    Tokenizer {
        /// File at fault (or the one that was expected).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The path is neither a model directory, a safetensors file nor a GGUF file.
    #[error("{path}: not a model: {reason}")]
    NotAModel {
        /// Path given by the user.
        path: PathBuf,
        /// Why it was rejected.
        reason: String,
    },
    /// Invalid arguments to a model call (token ids out of range, empty input, ...).
    #[error("{0}")]
    Input(String),
    /// A GGUF file could not be read.
    #[error(transparent)]
    Gguf(#[from] GgufError),
}

/// Result alias for this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
