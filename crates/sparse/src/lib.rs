//! Sparse storage and compute for pruned weight matrices (seed 003: COO, CSR and k:n formats, and
//! when sparse beats dense).
//!
//! Every format stores a row-major `(rows, cols)` weight `W` of a linear layer `y = W x` and
//! converts losslessly from and to dense f32 (exact when the values are stored as f32, or when
//! they were already representable in the chosen 16-bit type). [`PackedMatrix`] hides the format
//! behind one type with the two products the model needs: [`PackedMatrix::gemv`] (decode, one
//! token) and [`PackedMatrix::matmul`] (prefill, a batch of tokens).

pub mod bandwidth;
pub mod bitmask;
pub mod coo;
pub mod csr;
pub mod dense;
pub mod error;
pub mod kernels;
pub mod matrix;
pub mod nm;
pub mod values;

pub use error::{FormatError, Result};
pub use matrix::{Format, PackedMatrix};
pub use values::{Indices, ValueDtype, Values};
