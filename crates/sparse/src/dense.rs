//! Dense storage in any [`ValueDtype`] (the baseline every sparse format is measured against,
//! and the 16-bit dense weights of `--dtype bf16`).

use crate::error::{check_len, Result};
use crate::values::{ValueDtype, Values};

/// A dense row-major `(rows, cols)` matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseMatrix {
    rows: usize,
    cols: usize,
    values: Values,
}

impl DenseMatrix {
    /// Stores a dense row-major matrix as `dtype`.
    ///
    /// # Errors
    /// A buffer that does not match the shape.
    pub fn from_dense(w: &[f32], rows: usize, cols: usize, dtype: ValueDtype) -> Result<Self> {
        check_len("dense buffer", rows * cols, w.len())?;
        Ok(DenseMatrix {
            rows,
            cols,
            values: Values::from_f32(w, dtype),
        })
    }

    /// Builds a matrix from its values.
    ///
    /// # Errors
    /// A value count that does not match the shape.
    pub fn from_parts(rows: usize, cols: usize, values: Values) -> Result<Self> {
        check_len("values", rows * cols, values.len())?;
        Ok(DenseMatrix { rows, cols, values })
    }

    /// The matrix widened to f32.
    pub fn to_dense(&self) -> Vec<f32> {
        self.values.to_f32()
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The values, row-major.
    pub fn values(&self) -> &Values {
        &self.values
    }

    /// Bytes of storage.
    pub fn nbytes(&self) -> usize {
        self.values.nbytes()
    }
}
