//! One linear layer whatever its storage (`y = x Wᵀ + b`). Model code only calls
//! [`Linear::forward`]; how the weight is stored stays behind this type (today dense f32; sparse
//! formats from the sparse crate join as further variants without touching the architectures).

use std::ops::Range;
use std::sync::Arc;

use crate::ops::{gemm_into, threads, Matrix, View};

/// How a weight matrix is stored.
#[derive(Debug, Clone)]
pub enum LinearWeight {
    /// Dense row-major `(out_features, in_features)` f32, shareable (tied embeddings).
    Dense(Arc<Vec<f32>>),
}

/// A linear layer: weight `(out_features, in_features)` and optional bias `(out_features)`.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: LinearWeight,
    bias: Option<Vec<f32>>,
    in_features: usize,
    out_features: usize,
}

impl Linear {
    /// A dense layer from a row-major `(out_features, in_features)` buffer.
    ///
    /// # Panics
    /// If the buffer or bias length disagrees with the shape (callers validate shapes on load).
    pub fn dense(
        weight: Arc<Vec<f32>>,
        out_features: usize,
        in_features: usize,
        bias: Option<Vec<f32>>,
    ) -> Self {
        assert_eq!(
            weight.len(),
            out_features * in_features,
            "weight does not match its shape"
        );
        if let Some(b) = &bias {
            assert_eq!(b.len(), out_features, "bias does not match out_features");
        }
        Linear {
            weight: LinearWeight::Dense(weight),
            bias,
            in_features,
            out_features,
        }
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// The bias, if any.
    pub fn bias(&self) -> Option<&[f32]> {
        self.bias.as_deref()
    }

    /// The storage of the weight.
    pub fn weight(&self) -> &LinearWeight {
        &self.weight
    }

    /// The weight as a dense row-major `(out, in)` buffer.
    pub fn dense_weight(&self) -> &[f32] {
        match &self.weight {
            LinearWeight::Dense(w) => w,
        }
    }

    /// Replaces the weight by a dense buffer of the same shape (used by pruners).
    ///
    /// # Panics
    /// If the length differs from `out_features * in_features`.
    pub fn set_dense_weight(&mut self, w: Vec<f32>) {
        assert_eq!(w.len(), self.out_features * self.in_features);
        self.weight = LinearWeight::Dense(Arc::new(w));
    }

    /// `x (rows, in) → (rows, out)`, using the whole thread pool.
    pub fn forward(&self, x: &Matrix) -> Matrix {
        self.forward_outputs(x, 0..self.out_features, threads())
    }

    /// Only output features `outputs` of `x (rows, in)`: `(rows, outputs.len())`, computed with
    /// at most `threads` threads. Lets a caller tile a huge layer (the vocabulary head) so each
    /// tile stays in cache.
    ///
    /// # Panics
    /// If `outputs` is out of range or `x` has the wrong width.
    pub fn forward_outputs(&self, x: &Matrix, outputs: Range<usize>, threads: usize) -> Matrix {
        assert_eq!(x.cols, self.in_features, "linear input width mismatch");
        assert!(outputs.start <= outputs.end && outputs.end <= self.out_features);
        let n = outputs.len();
        let mut out = Matrix::zeros(x.rows, n);
        if let Some(b) = &self.bias {
            for r in 0..x.rows {
                out.data[r * n..(r + 1) * n].copy_from_slice(&b[outputs.clone()]);
            }
        }
        match &self.weight {
            LinearWeight::Dense(w) => {
                // (rows, in) · (in, n): the transpose of rows `outputs` of the (out, in) weight.
                let w = &w[outputs.start * self.in_features..outputs.end * self.in_features];
                let wt = View::row_major(w, n, self.in_features).t();
                gemm_into(
                    &mut out.data,
                    n,
                    View::row_major(&x.data, x.rows, x.cols),
                    wt,
                    self.bias.is_some(),
                    threads,
                );
            }
        }
        out
    }

    /// Number of stored weight values (non-zeros for sparse storage later).
    pub fn num_params(&self) -> usize {
        self.out_features * self.in_features + self.bias.as_ref().map_or(0, Vec::len)
    }
}
