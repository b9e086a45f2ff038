//! Evaluation of secateurs models:
//!
//! * [`perplexity`]: perplexity over non-overlapping windows;
//! * the capability suite of issue 3 ([`tasks`]): closed-book fact recall, open-book QA,
//!   counterfactual context, in-context learning of a linear classifier and zero-shot multiple
//!   choice, each built deterministically from pinned data and scored by [`runner`] with 95 %
//!   Wilson intervals ([`ci`]) and documented answer normalization ([`normalize`]).

pub mod ci;
pub mod error;
pub mod normalize;
pub mod perplexity;
pub mod rng;
pub mod runner;
mod scoring;
pub mod tasks;

pub use error::EvalError;
pub use perplexity::{perplexity, PerplexityOptions, PerplexityReport};
pub use runner::{
    build_tasks, evaluate, score_task, score_tasks, EvalOptions, EvalReport, Sample, TaskResult,
};
pub use tasks::{BuildOptions, Family, TaskData, TaskInfo, TASKS};
