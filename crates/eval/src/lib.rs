//! Evaluation of secateurs models. Today: perplexity ([`perplexity`]); the capability suite,
//! sweeps and reports come with later issues.

pub mod error;
pub mod perplexity;

pub use error::EvalError;
pub use perplexity::{perplexity, PerplexityOptions, PerplexityReport};
