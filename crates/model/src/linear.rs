//! One linear layer whatever its storage (`y = x Wᵀ + b`). Model code only calls
//! [`Linear::forward`]; how the weight is stored (dense f32, or any format and value type of the
//! sparse crate: CSR, bitmask, N:M, dense bf16, ...) stays behind this type, like candle's
//! `QMatMul`. One row of input (decode) takes the GEMV kernels; more rows take GEMM / SpMM.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use secateurs_sparse::{kernels, Format, FormatError, PackedMatrix, ValueDtype};

use crate::ops::{gemm_into, threads, Matrix, View};

/// How a weight matrix is stored.
#[derive(Debug, Clone)]
pub enum LinearWeight {
    /// Dense row-major `(out_features, in_features)` f32, shareable (tied embeddings).
    Dense(Arc<Vec<f32>>),
    /// Any format of the sparse crate (including dense f16/bf16), shareable.
    Packed(Arc<PackedMatrix>),
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

    /// A layer over a packed matrix `(out_features, in_features)`.
    ///
    /// # Panics
    /// If the bias length disagrees with the matrix's rows.
    pub fn packed(weight: Arc<PackedMatrix>, bias: Option<Vec<f32>>) -> Self {
        let (out_features, in_features) = weight.shape();
        if let Some(b) = &bias {
            assert_eq!(b.len(), out_features, "bias does not match out_features");
        }
        Linear {
            weight: LinearWeight::Packed(weight),
            bias,
            in_features,
            out_features,
        }
    }

    /// The weight as a dense row-major `(out, in)` f32 buffer (borrowed when stored dense f32,
    /// decoded otherwise).
    pub fn dense_weight(&self) -> Cow<'_, [f32]> {
        match &self.weight {
            LinearWeight::Dense(w) => Cow::Borrowed(w.as_slice()),
            LinearWeight::Packed(p) => Cow::Owned(p.to_dense()),
        }
    }

    /// Re-stores the weight in `format` (`None`: the cheapest for its sparsity pattern) with
    /// values of `dtype`. `Some(Format::Dense)` with f32 gives back plain dense storage.
    ///
    /// # Errors
    /// A matrix that does not fit the format (no N:M pattern for `Format::Nm`).
    pub fn repack(&mut self, format: Option<Format>, dtype: ValueDtype) -> Result<(), FormatError> {
        let w = self.dense_weight();
        let packed = PackedMatrix::encode(&w, self.out_features, self.in_features, format, dtype)?;
        drop(w);
        self.weight = match packed {
            PackedMatrix::Dense(_) if dtype == ValueDtype::F32 => {
                LinearWeight::Dense(Arc::new(packed.to_dense()))
            }
            p => LinearWeight::Packed(Arc::new(p)),
        };
        Ok(())
    }

    /// Whether the weight is stored dense in f32 (a tile of its rows costs nothing to take).
    pub fn is_dense_f32(&self) -> bool {
        matches!(self.weight, LinearWeight::Dense(_))
    }

    /// A short description of the storage (`dense/f32`, `bitmask/bf16`, `nm 2:4/f32`, ...).
    pub fn storage(&self) -> String {
        match &self.weight {
            LinearWeight::Dense(_) => "dense/f32".into(),
            LinearWeight::Packed(p) => p.describe(),
        }
    }

    /// Bytes one product reads for the weight (values, indices and masks; not the bias).
    pub fn weight_bytes(&self) -> usize {
        match &self.weight {
            LinearWeight::Dense(w) => w.len() * 4,
            LinearWeight::Packed(p) => p.nbytes(),
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
        assert!(outputs.start <= outputs.end && outputs.end <= self.out_features);
        let n = outputs.len();
        let mut out = self.output_start(x, outputs.clone());
        let whole = outputs.start == 0 && outputs.end == self.out_features;
        match &self.weight {
            LinearWeight::Dense(w) if x.rows <= kernels::GEMV_BATCH_MAX => {
                // Decode: one GEMV over rows `outputs` of the (out, in) weight; a short prompt
                // or a few sequences: the same GEMV digits for every row (so dense and sparse
                // storage of the same weights prefill a prompt identically).
                let w = &w[outputs.start * self.in_features..outputs.end * self.in_features];
                if x.rows == 1 {
                    kernels::gemv_f32(w, n, self.in_features, &x.data, &mut out.data);
                } else {
                    let (cols, batch) = (self.in_features, x.rows);
                    kernels::gemv_batch_f32(w, n, cols, &x.data, batch, &mut out.data);
                }
            }
            LinearWeight::Packed(p) if whole => {
                if x.rows == 1 {
                    p.gemv(&x.data, &mut out.data);
                } else if x.rows <= kernels::GEMV_BATCH_MAX {
                    p.gemv_batch(&x.data, x.rows, &mut out.data);
                } else {
                    p.matmul(&x.data, x.rows, &mut out.data);
                }
            }
            LinearWeight::Packed(p) => {
                // A tile of a packed matrix: decode just those rows (rare; the vocabulary head
                // tiles only when stored dense).
                let all = p.to_dense();
                let w = &all[outputs.start * self.in_features..outputs.end * self.in_features];
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

    /// `[x W_iᵀ + b_i]` for several layers that read the same input `x (rows, in)` (q, k and v;
    /// gate and up), each `(rows, out_i)` with the digits [`Linear::forward`] gives it. A
    /// single row (decode) goes through [`kernels::gemv_many`], which runs all the products in
    /// one fork/join of the thread pool when one of them is too small to split on its own; more
    /// rows run layer by layer.
    ///
    /// # Panics
    /// If a layer's input width differs from `x`'s.
    pub fn forward_shared<const N: usize>(layers: [&Linear; N], x: &Matrix) -> [Matrix; N] {
        if x.rows != 1 {
            return layers.map(|l| l.forward(x));
        }
        let mut outs = layers.map(|l| l.output_start(x, 0..l.out_features));
        let products = layers
            .iter()
            .zip(outs.iter_mut())
            .map(|(l, o)| {
                let w = match &l.weight {
                    LinearWeight::Dense(w) => kernels::GemvWeight::DenseF32(w),
                    LinearWeight::Packed(p) => kernels::GemvWeight::Packed(p),
                };
                (w, o.data.as_mut_slice())
            })
            .collect();
        kernels::gemv_many(&x.data, products);
        outs
    }

    /// The output buffer of `x (rows, in)` for output features `outputs`, before the product:
    /// `(rows, outputs.len())`, each row the bias (or zeros).
    ///
    /// # Panics
    /// If `x` has the wrong width.
    fn output_start(&self, x: &Matrix, outputs: Range<usize>) -> Matrix {
        assert_eq!(x.cols, self.in_features, "linear input width mismatch");
        let n = outputs.len();
        let mut out = Matrix::zeros(x.rows, n);
        if let Some(b) = &self.bias {
            for row in out.data.chunks_exact_mut(n.max(1)) {
                row.copy_from_slice(&b[outputs.clone()]);
            }
        }
        out
    }

    /// Number of stored weight values (stored entries for sparse formats) plus the bias.
    pub fn num_params(&self) -> usize {
        let w = match &self.weight {
            LinearWeight::Dense(_) => self.out_features * self.in_features,
            LinearWeight::Packed(p) => p.stored(),
        };
        w + self.bias.as_ref().map_or(0, Vec::len)
    }
}
