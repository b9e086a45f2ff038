//! Coordinate list (seed 003 §"sparse formats"): one `(row, column, value)` triple per stored
//! entry, sorted by row then column. The simplest interchange format; the kernels favour CSR and
//! bitmask, and the format chooser never picks COO on its own (only `--format coo`).
//!
//! Layout: `row_idx` and `col_idx` (u16 when the dimension allows, else u32) and `values`, all of
//! length `nnz`.

use crate::error::{check_len, FormatError, Result};
use crate::values::{Indices, ValueDtype, Values};

/// A COO matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Coo {
    rows: usize,
    cols: usize,
    row_idx: Indices,
    col_idx: Indices,
    values: Values,
}

impl Coo {
    /// Stores the non-zeros of a dense row-major `(rows, cols)` matrix.
    ///
    /// # Errors
    /// A buffer that does not match the shape.
    pub fn from_dense(w: &[f32], rows: usize, cols: usize, dtype: ValueDtype) -> Result<Self> {
        check_len("dense buffer", rows * cols, w.len())?;
        let nnz = w.iter().filter(|&&x| x != 0.0).count();
        let mut row_idx = Indices::with_bound(rows, nnz);
        let mut col_idx = Indices::with_bound(cols, nnz);
        let mut values = Values::with_capacity(dtype, nnz);
        for (i, &x) in w.iter().enumerate() {
            if x != 0.0 {
                row_idx.push(i / cols);
                col_idx.push(i % cols);
                values.push(x);
            }
        }
        Ok(Coo {
            rows,
            cols,
            row_idx,
            col_idx,
            values,
        })
    }

    /// Builds a matrix from its parts, validating bounds and the row-major order.
    ///
    /// # Errors
    /// Wrong lengths, indices out of range, unsorted or repeated coordinates.
    pub fn from_parts(
        rows: usize,
        cols: usize,
        row_idx: Indices,
        col_idx: Indices,
        values: Values,
    ) -> Result<Self> {
        let nnz = values.len();
        check_len("row_idx", nnz, row_idx.len())?;
        check_len("col_idx", nnz, col_idx.len())?;
        let mut prev: Option<usize> = None;
        for i in 0..nnz {
            let (r, c) = (row_idx.get(i), col_idx.get(i));
            if r >= rows || c >= cols {
                return Err(FormatError::Index(format!(
                    "entry {i}: ({r}, {c}) is outside the {rows}x{cols} matrix"
                )));
            }
            let flat = r * cols + c;
            if prev.is_some_and(|p| flat <= p) {
                return Err(FormatError::Index(format!(
                    "entry {i}: coordinates are not sorted row-major or repeat"
                )));
            }
            prev = Some(flat);
        }
        Ok(Coo {
            rows,
            cols,
            row_idx,
            col_idx,
            values,
        })
    }

    /// The dense row-major matrix.
    pub fn to_dense(&self) -> Vec<f32> {
        let mut w = vec![0f32; self.rows * self.cols];
        for i in 0..self.nnz() {
            w[self.row_idx.get(i) * self.cols + self.col_idx.get(i)] = self.values.get(i);
        }
        w
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row of each entry.
    pub fn row_idx(&self) -> &Indices {
        &self.row_idx
    }

    /// Column of each entry.
    pub fn col_idx(&self) -> &Indices {
        &self.col_idx
    }

    /// Stored values.
    pub fn values(&self) -> &Values {
        &self.values
    }

    /// Stored entries.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// Bytes of storage.
    pub fn nbytes(&self) -> usize {
        self.row_idx.nbytes() + self.col_idx.nbytes() + self.values.nbytes()
    }
}
