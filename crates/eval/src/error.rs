//! Errors of the evaluation crate.

use std::path::PathBuf;

use secateurs_data::DataError;
use secateurs_model::ModelError;

/// Errors raised while evaluating a model.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The model failed to run.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The task data could not be read (its message says to run `secateurs fetch` when the data
    /// is missing).
    #[error(transparent)]
    Data(#[from] DataError),
    /// The evaluation text is shorter than one window.
    #[error("text has {tokens} tokens, fewer than one window of --seqlen {seqlen}")]
    TooShort {
        /// Tokens in the text.
        tokens: usize,
        /// Window length asked for.
        seqlen: usize,
    },
    /// An option is out of range.
    #[error("{option}: {reason}")]
    BadOption {
        /// The option at fault.
        option: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A task name that the suite does not have.
    #[error("unknown task '{name}' (valid: {valid})")]
    UnknownTask {
        /// The name given.
        name: String,
        /// Every valid name, comma-separated (plus `all`).
        valid: String,
    },
    /// A data file parsed but does not have the structure a task needs.
    #[error("{}: {reason}", path.display())]
    BadData {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong, naming the field or item.
        reason: String,
    },
    /// The tokenizer cannot render a task's prompt format (e.g. a label that is not one token).
    #[error("task {task}: {reason}")]
    Format {
        /// The task at fault.
        task: String,
        /// What is wrong.
        reason: String,
    },
}
