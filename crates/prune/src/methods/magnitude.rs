//! Magnitude pruning, the baseline of Sun et al. 2023 "A Simple and Effective Pruning Approach
//! for Large Language Models" (§4, as `prune_magnitude` in the authors' code): score S_ij = |W_ij|.
//!
//! * Unstructured: one threshold for the whole matrix, t = the value at 0-based index
//!   k = floor(numel·ratio) of the ascending sorted scores, and every weight with S_ij <= t is
//!   zeroed. Like the reference this zeroes k + 1 weights when there are no ties (more with ties).
//!   Ratio 0 is special-cased to prune nothing (the reference would zero the smallest weight).
//! * N:M: in each group of M consecutive weights of a row, the N smallest scores are zeroed
//!   (ties to the lower index).

use secateurs_model::ops::Matrix;

use super::select::{floor_count, kth_smallest, mark_n_of_m};
use super::{check_common, report, MatrixReport, Pruner};
use crate::error::PruneError;
use crate::pattern::Pattern;

/// Magnitude pruner; needs no calibration inputs and ignores any it is given.
#[derive(Debug, Clone, Default)]
pub struct Magnitude;

impl Magnitude {
    /// A magnitude pruner.
    pub fn new() -> Self {
        Magnitude
    }
}

impl Pruner for Magnitude {
    fn observe(&mut self, _x: &Matrix) {}

    fn prune(
        &mut self,
        name: &str,
        w: &mut [f32],
        rows: usize,
        cols: usize,
        pattern: &Pattern,
    ) -> Result<MatrixReport, PruneError> {
        check_common(name, w, rows, cols, pattern)?;
        if pattern.is_noop() || w.is_empty() {
            return Ok(report(w));
        }
        // (out, in)
        let scores: Vec<f64> = w.iter().map(|v| f64::from(v.abs())).collect();
        let mut mask = vec![false; w.len()];
        match *pattern {
            Pattern::Unstructured { ratio } => {
                let k = floor_count(w.len(), ratio).min(w.len() - 1);
                let mut sorted = scores.clone();
                let threshold = kth_smallest(&mut sorted, k);
                for (m, s) in mask.iter_mut().zip(&scores) {
                    *m = *s <= threshold;
                }
            }
            Pattern::NOfM { n, m } => {
                for (s, k) in scores.chunks_exact(cols).zip(mask.chunks_exact_mut(cols)) {
                    mark_n_of_m(s, n, m, k);
                }
            }
        }
        for (v, m) in w.iter_mut().zip(&mask) {
            if *m {
                *v = 0.0;
            }
        }
        Ok(report(w))
    }
}
