//! What a sweep records for each point: the settings that identify it ([`PointKey`]), and what
//! was measured ([`PointRecord`]: perplexity and per-task accuracies with their 95 % intervals,
//! timings).
//!
//! A point's identity is its whole key: model content hash, method, scope, pattern, calibration
//! (windows, length, seed, source and token hash), SparseGPT options, task list, item limit,
//! evaluation seed and shots, and the perplexity windows. [`PointKey::id`] hashes the key's
//! canonical JSON, so a sweep rerun with any setting changed computes a different id and never
//! mistakes an old result for the point it asks for.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{io_err, Result};

/// The method name of the unpruned reference point.
pub const DENSE: &str = "dense";

/// Calibration settings of a pruned point (absent for dense and magnitude points, whose weights
/// do not depend on calibration data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationKey {
    /// Calibration sequences.
    pub nsamples: usize,
    /// Tokens per sequence.
    pub seqlen: usize,
    /// Seed of the window sampling.
    pub seed: u64,
    /// The calibration text (`default` or a path).
    pub source: String,
    /// FNV-1a hash of the sampled token windows.
    pub tokens_hash: String,
}

/// Everything that identifies a point of a sweep (or a model of a comparison).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointKey {
    /// Content hash of the model files ([`fingerprint_model`]).
    pub model_hash: String,
    /// `dense`, `magnitude`, `wanda` or `sparsegpt`.
    pub method: String,
    /// `all`, `attention` or `mlp` (`all` for dense).
    pub scope: String,
    /// `unstructured` or `N:M`.
    pub pattern: String,
    /// Target sparsity of the pruned matrices (0 for dense, N/M for N:M).
    pub sparsity: f64,
    /// Calibration, for methods that use it.
    pub calibration: Option<CalibrationKey>,
    /// SparseGPT damping and block size, for SparseGPT points (`damp=0.01,blocksize=128`).
    pub method_options: Option<String>,
    /// Task names, in order.
    pub tasks: Vec<String>,
    /// Items requested per task (the limit given, or the task's default), by task name.
    pub limits: BTreeMap<String, usize>,
    /// A hash of the built items (prompts and references): a change in a task's data or
    /// prompt format makes new points even when names and limits are unchanged.
    #[serde(default)]
    pub items_hash: String,
    /// Seed of the item sampling.
    pub eval_seed: u64,
    /// Few-shot demonstrations (`None`: each task's default).
    pub shots: Option<usize>,
    /// Perplexity windows (0: no perplexity).
    pub ppl_windows: usize,
    /// Tokens per perplexity window.
    pub ppl_seqlen: usize,
}

impl PointKey {
    /// A stable identifier: the first 16 hex digits of the SHA-256 of the key's JSON.
    pub fn id(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        let digest = Sha256::digest(json.as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether this is the unpruned reference.
    pub fn is_dense(&self) -> bool {
        self.method == DENSE
    }

    /// The evaluation settings without the model (tasks, limits, seeds, perplexity windows):
    /// models evaluated with the same settings can be compared.
    pub fn eval_settings(&self) -> String {
        format!(
            "{}|{:?}|{}|{}|{:?}|{}|{}",
            self.tasks.join(","),
            self.limits,
            self.items_hash,
            self.eval_seed,
            self.shots,
            self.ppl_windows,
            self.ppl_seqlen
        )
    }

    /// The model and its evaluation settings: points that share them can be compared with each
    /// other.
    pub fn eval_signature(&self) -> String {
        format!("{}|{}", self.model_hash, self.eval_settings())
    }

    /// A short label: `wanda all 0.5`, `sparsegpt mlp 2:4`, `dense`.
    pub fn label(&self) -> String {
        if self.is_dense() {
            return DENSE.to_string();
        }
        if self.pattern == "unstructured" {
            format!(
                "{} {} {}",
                self.method,
                self.scope,
                fmt_sparsity(self.sparsity)
            )
        } else {
            format!("{} {} {}", self.method, self.scope, self.pattern)
        }
    }
}

/// A sparsity as the grid writes it: `0.5`, `0.25` (at most 4 decimals, no trailing zeros).
pub fn fmt_sparsity(s: f64) -> String {
    let t = format!("{s:.4}");
    let t = t.trim_end_matches('0').trim_end_matches('.');
    if t.is_empty() {
        "0".into()
    } else {
        t.to_string()
    }
}

/// One task's result at one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskScore {
    /// Task name.
    pub task: String,
    /// Task family (`fact_recall`, `open_book`, `counterfactual`, `in_context`,
    /// `multiple_choice`).
    pub family: String,
    /// Name of the primary metric.
    pub metric: String,
    /// The primary metric.
    pub accuracy: f64,
    /// Lower end of its 95 % interval.
    pub lo: f64,
    /// Upper end of its 95 % interval.
    pub hi: f64,
    /// Items scored.
    pub n: usize,
    /// Items counted correct.
    pub successes: usize,
    /// Chance level, when the metric has one.
    pub chance: Option<f64>,
    /// Wall time of the task's scoring.
    pub seconds: f64,
    /// CPU time of the process during the scoring (all threads), when measured.
    #[serde(default)]
    pub cpu_seconds: Option<f64>,
}

/// Everything measured at one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointRecord {
    /// [`PointKey::id`] of `key`.
    pub id: String,
    /// The settings.
    pub key: PointKey,
    /// The model as given on the command line (informative; the key holds its hash).
    pub model: String,
    /// Parameters of the whole model (embeddings and head included).
    pub params: u64,
    /// Parameters of the decoder layers' linear layers (the prunable ones).
    pub linear_params: u64,
    /// Zeros among the decoder linear weights / `linear_params`.
    pub achieved_sparsity: f64,
    /// Perplexity on the evaluation text, when measured.
    pub perplexity: Option<f64>,
    /// Per-task results, in the key's task order.
    pub tasks: Vec<TaskScore>,
    /// Wall time of pruning (0 for dense).
    pub prune_seconds: f64,
    /// Wall time of perplexity and tasks.
    pub eval_seconds: f64,
    /// CPU time of the process while pruning (all threads), when measured. Against the wall
    /// time it shows how much of the machine the run had.
    #[serde(default)]
    pub prune_cpu_seconds: Option<f64>,
    /// CPU time of the process while evaluating, when measured.
    #[serde(default)]
    pub eval_cpu_seconds: Option<f64>,
    /// When the point finished (seconds since the Unix epoch).
    pub finished_unix: u64,
    /// secateurs version that produced it.
    pub secateurs: String,
}

impl PointRecord {
    /// The task named `name`.
    pub fn task(&self, name: &str) -> Option<&TaskScore> {
        self.tasks.iter().find(|t| t.task == name)
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A content hash of a model: SHA-256 over its regular files (a single file, or the files
/// directly inside a directory, sorted by name, each preceded by its name and length), first
/// 16 hex digits. Reading is streamed; a 100 MB GGUF takes well under a second.
///
/// # Errors
/// [`crate::ReportError::Io`] naming an unreadable file or directory.
pub fn fingerprint_model(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut files = Vec::new();
    if path.is_dir() {
        for e in std::fs::read_dir(path).map_err(io_err(path, "cannot list directory"))? {
            let e = e.map_err(io_err(path, "cannot list directory"))?;
            let p = e.path();
            if p.is_file() {
                files.push(p);
            }
        }
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for f in &files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let mut file = std::fs::File::open(f).map_err(io_err(f, "cannot open"))?;
        let len = file.metadata().map_err(io_err(f, "cannot stat"))?.len();
        h.update(name.as_bytes());
        h.update(len.to_le_bytes());
        loop {
            let n = file.read(&mut buf).map_err(io_err(f, "cannot read"))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
