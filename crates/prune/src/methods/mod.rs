//! Per-matrix pruners (seed 000): magnitude (the baseline of Sun et al. 2023, §4), Wanda (Sun et
//! al. 2023, eq. 1) and SparseGPT (Frantar & Alistarh 2023, Algorithm 1). Each one accumulates
//! statistics of one linear layer's inputs with [`Pruner::observe`] and then prunes one or more
//! weight matrices that read those inputs with [`Pruner::prune`].
//!
//! Convention: a weight is row-major `(out, in)` f32; calibration inputs are `(tokens, in)`.

use std::fmt;
use std::str::FromStr;

use secateurs_model::ops::Matrix;
use serde::{Deserialize, Serialize};

use crate::error::PruneError;
use crate::pattern::Pattern;

pub mod magnitude;
mod select;
pub mod sparsegpt;
pub mod wanda;

pub use magnitude::Magnitude;
pub use sparsegpt::SparseGpt;
pub use wanda::Wanda;

/// A pruning method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// |W|, no calibration data.
    Magnitude,
    /// |W|·‖X_j‖₂ (Sun et al. 2023).
    Wanda,
    /// Optimal-brain-surgeon reconstruction (Frantar & Alistarh 2023).
    SparseGpt,
}

impl Method {
    /// Every method, in a stable order.
    pub const ALL: [Method; 3] = [Method::Magnitude, Method::Wanda, Method::SparseGpt];

    /// The lowercase name that [`FromStr`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Method::Magnitude => "magnitude",
            Method::Wanda => "wanda",
            Method::SparseGpt => "sparsegpt",
        }
    }

    /// Whether the method needs calibration inputs.
    pub fn needs_calibration(self) -> bool {
        !matches!(self, Method::Magnitude)
    }
}

impl FromStr for Method {
    type Err = PruneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "magnitude" => Ok(Method::Magnitude),
            "wanda" => Ok(Method::Wanda),
            "sparsegpt" => Ok(Method::SparseGpt),
            _ => Err(PruneError::BadOption {
                option: "method".to_string(),
                reason: format!("unknown method '{s}' (expected magnitude, wanda or sparsegpt)"),
            }),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Options of SparseGPT (defaults are those of the paper's code).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SparseGptOptions {
    /// Relative damping: λ = damp · mean(diag H) is added to the diagonal of H.
    pub damp: f64,
    /// Columns per lazy-update block.
    pub blocksize: usize,
    /// How often the damping is multiplied by 10 and the Cholesky factorization retried.
    pub max_damp_retries: u32,
}

impl Default for SparseGptOptions {
    fn default() -> Self {
        SparseGptOptions {
            damp: 0.01,
            blocksize: 128,
            max_damp_retries: 4,
        }
    }
}

/// What pruning did to one matrix.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MatrixReport {
    /// Zero weights after pruning (including any that were zero before).
    pub zeros: usize,
    /// Number of weights.
    pub numel: usize,
    /// Relative damping actually used (SparseGPT only).
    pub damping: Option<f64>,
    /// How often the damping had to be increased (SparseGPT only).
    pub damping_retries: u32,
    /// Human-readable warnings, each naming the matrix.
    pub warnings: Vec<String>,
}

/// A pruner for the weight matrices that read one linear layer's input.
pub trait Pruner: Send {
    /// Accumulates statistics from one batch of inputs x (tokens, in_features) of this linear layer.
    ///
    /// A batch with the wrong width or with non-finite values is remembered and reported as an
    /// error by the next [`Pruner::prune`].
    fn observe(&mut self, x: &Matrix);

    /// Prunes `w` (rows=out, cols=in, row-major) in place to `pattern`. May be called several times
    /// on the same statistics (q, k, v share one input, so one pruner serves all three; cache
    /// expensive factorizations between calls).
    ///
    /// # Errors
    /// [`PruneError::BadSparsity`], [`PruneError::BadPattern`] or
    /// [`PruneError::PatternDoesNotDivide`] for a bad pattern; [`PruneError::BadOption`] when
    /// `w` is not `rows * cols` long or `cols` differs from the observed inputs;
    /// [`PruneError::NonFinite`] for NaN/inf in the weights or the inputs;
    /// [`PruneError::NoStatistics`] when a calibrated method observed no tokens;
    /// [`PruneError::NotPositiveDefinite`] when SparseGPT's Hessian cannot be factorized.
    /// On error `w` is unchanged.
    fn prune(
        &mut self,
        name: &str,
        w: &mut [f32],
        rows: usize,
        cols: usize,
        pattern: &Pattern,
    ) -> Result<MatrixReport, PruneError>;
}

/// Builds an empty pruner for a linear layer with `in_features` inputs.
pub fn new_pruner(method: Method, in_features: usize, opts: &SparseGptOptions) -> Box<dyn Pruner> {
    match method {
        Method::Magnitude => Box::new(Magnitude::new()),
        Method::Wanda => Box::new(Wanda::new(in_features)),
        Method::SparseGpt => Box::new(SparseGpt::new(in_features, *opts)),
    }
}

/// Checks shared by every method: pattern, shape and finite weights.
fn check_common(
    name: &str,
    w: &[f32],
    rows: usize,
    cols: usize,
    pattern: &Pattern,
) -> Result<(), PruneError> {
    pattern.validate()?;
    pattern.check_cols(name, cols)?;
    if rows.checked_mul(cols) != Some(w.len()) {
        return Err(PruneError::BadOption {
            option: name.to_string(),
            reason: format!("weight has {} values, expected {rows} x {cols}", w.len()),
        });
    }
    if w.iter().any(|v| !v.is_finite()) {
        return Err(PruneError::NonFinite {
            tensor: name.to_string(),
            what: "weights",
        });
    }
    Ok(())
}

/// State shared by the calibrated pruners: how many tokens were seen and whether any batch was bad.
#[derive(Debug, Clone, Default)]
struct ObserveState {
    /// Tokens observed.
    tokens: usize,
    /// A batch held NaN or infinity.
    non_finite: bool,
    /// The first batch whose width differed from `in_features`.
    bad_width: Option<usize>,
}

impl ObserveState {
    /// Records `x`; returns false when the batch must not be accumulated.
    fn record(&mut self, x: &Matrix, in_features: usize) -> bool {
        if x.cols != in_features || x.data.len() != x.rows * x.cols {
            self.bad_width.get_or_insert(x.cols);
            return false;
        }
        if x.data.iter().any(|v| !v.is_finite()) {
            self.non_finite = true;
            return false;
        }
        self.tokens += x.rows;
        true
    }

    /// The error to report for this state, if any.
    fn check(&self, name: &str, in_features: usize, cols: usize) -> Result<(), PruneError> {
        if cols != in_features {
            return Err(PruneError::BadOption {
                option: name.to_string(),
                reason: format!(
                    "weight has {cols} input features but the pruner observed {in_features}"
                ),
            });
        }
        if let Some(width) = self.bad_width {
            return Err(PruneError::BadOption {
                option: name.to_string(),
                reason: format!("a calibration batch has {width} columns, expected {in_features}"),
            });
        }
        if self.non_finite {
            return Err(PruneError::NonFinite {
                tensor: name.to_string(),
                what: "calibration inputs",
            });
        }
        if self.tokens == 0 {
            return Err(PruneError::NoStatistics {
                tensor: name.to_string(),
            });
        }
        Ok(())
    }
}

/// Builds the report of a pruned (or untouched) matrix.
fn report(w: &[f32]) -> MatrixReport {
    MatrixReport {
        zeros: w.iter().filter(|v| **v == 0.0).count(),
        numel: w.len(),
        ..MatrixReport::default()
    }
}
