//! Compressed sparse row (seed 003 §"sparse formats"; Saad, "Iterative Methods for Sparse Linear
//! Systems", §3.4). Layout:
//!
//! - `row_ptr`: `rows + 1` u32 offsets; row `r` owns entries `row_ptr[r]..row_ptr[r + 1]`;
//! - `col_idx`: one column per stored entry, strictly increasing within a row, u16 when
//!   `cols <= 65,536` else u32;
//! - `values`: one value per stored entry (f32, f16 or bf16).
//!
//! Bytes per stored entry: value size + index width (6 for f32/u16), plus `4 (rows + 1)`.

use crate::error::{check_len, FormatError, Result};
use crate::values::{Indices, ValueDtype, Values};

/// A CSR matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    rows: usize,
    cols: usize,
    row_ptr: Vec<u32>,
    col_idx: Indices,
    values: Values,
}

impl Csr {
    /// Stores the non-zeros of a dense row-major `(rows, cols)` matrix.
    ///
    /// # Errors
    /// A buffer that does not match the shape, or more than `u32::MAX` non-zeros.
    pub fn from_dense(w: &[f32], rows: usize, cols: usize, dtype: ValueDtype) -> Result<Self> {
        check_len("dense buffer", rows * cols, w.len())?;
        let nnz = w.iter().filter(|&&x| x != 0.0).count();
        if nnz > u32::MAX as usize {
            return Err(FormatError::Unsupported(format!(
                "{nnz} non-zeros do not fit CSR's u32 row offsets"
            )));
        }
        let mut row_ptr = Vec::with_capacity(rows + 1);
        let mut col_idx = Indices::with_bound(cols, nnz);
        let mut values = Values::with_capacity(dtype, nnz);
        row_ptr.push(0u32);
        for r in 0..rows {
            for (c, &x) in w[r * cols..(r + 1) * cols].iter().enumerate() {
                if x != 0.0 {
                    col_idx.push(c);
                    values.push(x);
                }
            }
            row_ptr.push(col_idx.len() as u32);
        }
        Ok(Csr {
            rows,
            cols,
            row_ptr,
            col_idx,
            values,
        })
    }

    /// Builds a matrix from its parts, validating every rule of the layout (so that no kernel can
    /// read out of bounds).
    ///
    /// # Errors
    /// Wrong lengths, offsets that decrease or overrun, columns out of range or not increasing.
    pub fn from_parts(
        rows: usize,
        cols: usize,
        row_ptr: Vec<u32>,
        col_idx: Indices,
        values: Values,
    ) -> Result<Self> {
        check_len("row_ptr", rows + 1, row_ptr.len())?;
        let nnz = values.len();
        check_len("col_idx", nnz, col_idx.len())?;
        if row_ptr[0] != 0 {
            return Err(FormatError::Index(format!(
                "row_ptr[0] is {}, not 0",
                row_ptr[0]
            )));
        }
        check_len(
            "row_ptr[rows] (stored entries)",
            nnz,
            row_ptr[rows] as usize,
        )?;
        for r in 0..rows {
            let (a, b) = (row_ptr[r] as usize, row_ptr[r + 1] as usize);
            if b < a || b > nnz {
                return Err(FormatError::Index(format!(
                    "row {r}: offsets {a}..{b} are decreasing or beyond the {nnz} entries"
                )));
            }
            let mut prev: Option<usize> = None;
            for i in a..b {
                let c = col_idx.get(i);
                if c >= cols {
                    return Err(FormatError::Index(format!(
                        "row {r}: column {c} is outside the {cols} columns"
                    )));
                }
                if prev.is_some_and(|p| c <= p) {
                    return Err(FormatError::Index(format!(
                        "row {r}: columns are not strictly increasing at entry {i}"
                    )));
                }
                prev = Some(c);
            }
        }
        Ok(Csr {
            rows,
            cols,
            row_ptr,
            col_idx,
            values,
        })
    }

    /// The dense row-major matrix.
    pub fn to_dense(&self) -> Vec<f32> {
        let mut w = vec![0f32; self.rows * self.cols];
        for r in 0..self.rows {
            for i in self.row_ptr[r] as usize..self.row_ptr[r + 1] as usize {
                w[r * self.cols + self.col_idx.get(i)] = self.values.get(i);
            }
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

    /// Row offsets (`rows + 1`).
    pub fn row_ptr(&self) -> &[u32] {
        &self.row_ptr
    }

    /// Column of each stored entry.
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

    /// Bytes of storage (offsets, indices and values).
    pub fn nbytes(&self) -> usize {
        4 * self.row_ptr.len() + self.col_idx.nbytes() + self.values.nbytes()
    }

    /// Estimated bytes for `nnz` entries without building the matrix.
    pub fn estimate_bytes(rows: usize, cols: usize, nnz: usize, dtype: ValueDtype) -> usize {
        let iw = if cols <= 65_536 { 2 } else { 4 };
        4 * (rows + 1) + nnz * (iw + dtype.size())
    }
}
