//! `prune_report.json`: what was pruned, how, with which calibration data, the achieved sparsity
//! and reconstruction error of every matrix, phase times and peak memory.

use serde::Serialize;

use crate::calibrate::{MatrixOutcome, PhaseTimes, PruneSettings};

/// Calibration data description.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationInfo {
    /// Where the text came from.
    pub source: String,
    /// Number of sequences.
    pub nsamples: usize,
    /// Tokens per sequence.
    pub seqlen: usize,
    /// Sampling seed.
    pub seed: u64,
    /// Hash of the token ids ([`crate::sampling::tokens_hash`]).
    pub tokens_hash: String,
}

/// Totals over the pruned matrices and over all decoder-layer linear weights.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    /// Matrices pruned.
    pub matrices: usize,
    /// Weights in pruned matrices.
    pub pruned_matrix_params: usize,
    /// Zeros in pruned matrices.
    pub zeros: usize,
    /// `zeros / pruned_matrix_params`.
    pub sparsity_of_pruned: f64,
    /// Weights of all decoder-layer linear layers (pruned or not).
    pub linear_params: usize,
    /// Zeros over all decoder-layer linear layers.
    pub linear_zeros: usize,
    /// `linear_zeros / linear_params`.
    pub sparsity_of_linear: f64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    /// secateurs version.
    pub secateurs: String,
    /// The model pruned.
    pub model: String,
    /// Settings.
    pub settings: PruneSettings,
    /// Calibration data.
    pub calibration: CalibrationInfo,
    /// Totals.
    pub totals: Totals,
    /// Per-matrix outcomes.
    pub matrices: Vec<MatrixOutcome>,
    /// Phase times (seconds) of the calibration loop.
    pub phases: PhaseTimes,
    /// Wall time of loading, calibration capture, pruning and export (seconds).
    pub wall: serde_json::Value,
    /// Peak resident memory of the process, in bytes (Linux `VmHWM`), when known.
    pub peak_memory_bytes: Option<u64>,
    /// Perplexity before/after, when `--eval` was given.
    pub eval: Option<serde_json::Value>,
    /// Whether the run resumed from a checkpoint.
    pub resumed_from_layer: Option<usize>,
}

/// Peak resident set size of this process (Linux `/proc/self/status` `VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
