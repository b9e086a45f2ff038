//! Errors of the evaluation crate.

use secateurs_model::ModelError;

/// Errors raised while evaluating a model.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The model failed to run.
    #[error(transparent)]
    Model(#[from] ModelError),
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
}
