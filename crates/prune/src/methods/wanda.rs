//! Wanda (Sun et al. 2023 "A Simple and Effective Pruning Approach for Large Language Models",
//! eq. 1): score S_ij = |W_ij| · ‖X_j‖₂, compared within each output row (§3 "comparison group").
//!
//! Statistics: the plain sum Σ_t x_tj² per input column, in f64. The authors' code keeps a
//! running mean instead (`scaler_row`); the two differ by one constant factor per layer, which
//! multiplies every score of a matrix alike and so never changes a mask.
//!
//! * Unstructured: within each row, the floor(cols·ratio) smallest scores are zeroed (stable
//!   order: ties go to the lower index, as `torch.sort(stable=True)`).
//! * N:M: in each group of M consecutive weights of a row, the N smallest scores are zeroed.

use rayon::prelude::*;
use secateurs_model::ops::Matrix;

use super::select::{floor_count, mark_n_of_m, mark_smallest};
use super::{check_common, report, MatrixReport, ObserveState, Pruner};
use crate::error::PruneError;
use crate::pattern::Pattern;

/// Wanda pruner: accumulates ‖X_j‖₂² per input column.
#[derive(Debug, Clone)]
pub struct Wanda {
    in_features: usize,
    /// Σ_t x_tj², one per input column. (in,)
    sq_norms: Vec<f64>,
    state: ObserveState,
}

impl Wanda {
    /// An empty Wanda pruner for a layer with `in_features` inputs.
    pub fn new(in_features: usize) -> Self {
        Wanda {
            in_features,
            sq_norms: vec![0.0; in_features],
            state: ObserveState::default(),
        }
    }

    /// Σ_t x_tj² per input column, over every observed token.
    pub fn squared_norms(&self) -> &[f64] {
        &self.sq_norms
    }
}

impl Pruner for Wanda {
    fn observe(&mut self, x: &Matrix) {
        if !self.state.record(x, self.in_features) || x.rows == 0 {
            return;
        }
        let cols = self.in_features;
        // Sum over token chunks in parallel, then reduce. x: (tokens, in)
        let chunk_rows = 64;
        let partial = x
            .data
            .par_chunks(chunk_rows * cols)
            .map(|chunk| {
                let mut acc = vec![0.0f64; cols];
                for row in chunk.chunks_exact(cols) {
                    for (a, v) in acc.iter_mut().zip(row) {
                        let v = f64::from(*v);
                        *a += v * v;
                    }
                }
                acc
            })
            .reduce(
                || vec![0.0f64; cols],
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(&b) {
                        *x += y;
                    }
                    a
                },
            );
        for (s, p) in self.sq_norms.iter_mut().zip(&partial) {
            *s += p;
        }
    }

    fn prune(
        &mut self,
        name: &str,
        w: &mut [f32],
        rows: usize,
        cols: usize,
        pattern: &Pattern,
    ) -> Result<MatrixReport, PruneError> {
        check_common(name, w, rows, cols, pattern)?;
        self.state.check(name, self.in_features, cols)?;
        if pattern.is_noop() || w.is_empty() {
            return Ok(report(w));
        }
        let norms: Vec<f64> = self.sq_norms.iter().map(|s| s.sqrt()).collect(); // (in,)
        let pattern = *pattern;
        w.par_chunks_mut(cols).for_each(|row| {
            let scores: Vec<f64> = row
                .iter()
                .zip(&norms)
                .map(|(v, n)| f64::from(v.abs()) * n)
                .collect();
            let mut mask = vec![false; cols];
            match pattern {
                Pattern::Unstructured { ratio } => {
                    let k = floor_count(cols, ratio);
                    mark_smallest(&scores, k, &mut mask, &mut Vec::with_capacity(cols));
                }
                Pattern::NOfM { n, m } => mark_n_of_m(&scores, n, m, &mut mask),
            }
            for (v, m) in row.iter_mut().zip(&mask) {
                if *m {
                    *v = 0.0;
                }
            }
        });
        Ok(report(w))
    }
}
