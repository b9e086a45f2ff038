//! One-shot pruning of LLM linear layers (seed 000; Sun et al. 2023 "Wanda"; Frantar & Alistarh
//! 2023 "SparseGPT"): per-matrix pruners ([`methods`]) over a sparsity [`pattern`], driven by a
//! layer-streamed calibration loop written once for every architecture.

pub mod calibrate;
pub mod checkpoint;
pub mod error;
pub mod methods;
pub mod pattern;
pub mod report;
pub mod sampling;
pub mod scope;

pub use error::{PruneError, Result};
