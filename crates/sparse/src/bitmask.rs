//! Bitmask format: one bit per weight marks the stored entries, and the stored values follow
//! packed in row-major order (the layout of SparseGPT/Wanda-era sparse runtimes such as
//! DeepSparse and of Flash-LLM's "tiled bitmap"; seed 003 discusses why a dense index per value
//! wastes bytes at moderate sparsity).
//!
//! Layout:
//! - `mask`: `rows * words_per_row` u64 words, `words_per_row = ceil(cols / 64)`; bit `c % 64` of
//!   word `r * words_per_row + c / 64` is set when `W[r][c]` is stored; padding bits are zero;
//! - `values`: the stored values, row by row, in column order.
//!
//! Bytes per weight: `density * value_size + 1/8`. At 50% density in f32 that is 2.125 bytes
//! against 4 dense and 3 for CSR with u16 indices; CSR wins only below about 6% density.
//! Row offsets into `values` are derived (popcounts) when the matrix is built, never stored.

use crate::error::{check_len, FormatError, Result};
use crate::values::{ValueDtype, Values};

/// A bitmask matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Bitmask {
    rows: usize,
    cols: usize,
    mask: Vec<u64>,
    values: Values,
    /// Derived: `rows + 1` offsets of each row's first value.
    row_ptr: Vec<usize>,
}

/// u64 words per mask row.
pub fn words_per_row(cols: usize) -> usize {
    cols.div_ceil(64)
}

impl Bitmask {
    /// Stores the non-zeros of a dense row-major `(rows, cols)` matrix.
    ///
    /// # Errors
    /// A buffer that does not match the shape.
    pub fn from_dense(w: &[f32], rows: usize, cols: usize, dtype: ValueDtype) -> Result<Self> {
        check_len("dense buffer", rows * cols, w.len())?;
        let wpr = words_per_row(cols);
        let nnz = w.iter().filter(|&&x| x != 0.0).count();
        let mut mask = vec![0u64; rows * wpr];
        let mut values = Values::with_capacity(dtype, nnz);
        for r in 0..rows {
            for (c, &x) in w[r * cols..(r + 1) * cols].iter().enumerate() {
                if x != 0.0 {
                    mask[r * wpr + c / 64] |= 1u64 << (c % 64);
                    values.push(x);
                }
            }
        }
        Self::from_parts(rows, cols, mask, values)
    }

    /// Builds a matrix from its parts, validating that the mask's population equals the number of
    /// values and that padding bits are clear.
    ///
    /// # Errors
    /// Wrong lengths, set padding bits, or a population that disagrees with the values.
    pub fn from_parts(rows: usize, cols: usize, mask: Vec<u64>, values: Values) -> Result<Self> {
        let wpr = words_per_row(cols);
        check_len("mask words", rows * wpr, mask.len())?;
        let tail = cols % 64;
        let mut row_ptr = Vec::with_capacity(rows + 1);
        row_ptr.push(0usize);
        let mut total = 0usize;
        for r in 0..rows {
            let row = &mask[r * wpr..(r + 1) * wpr];
            if tail != 0 && wpr > 0 && row[wpr - 1] >> tail != 0 {
                return Err(FormatError::Index(format!(
                    "row {r}: mask bits set beyond column {cols}"
                )));
            }
            total += row.iter().map(|w| w.count_ones() as usize).sum::<usize>();
            row_ptr.push(total);
        }
        check_len("values (mask population)", total, values.len())?;
        Ok(Bitmask {
            rows,
            cols,
            mask,
            values,
            row_ptr,
        })
    }

    /// The dense row-major matrix.
    pub fn to_dense(&self) -> Vec<f32> {
        let wpr = words_per_row(self.cols);
        let mut w = vec![0f32; self.rows * self.cols];
        let mut k = 0;
        for r in 0..self.rows {
            for (j, &word) in self.mask[r * wpr..(r + 1) * wpr].iter().enumerate() {
                let mut bits = word;
                while bits != 0 {
                    let b = bits.trailing_zeros() as usize;
                    w[r * self.cols + j * 64 + b] = self.values.get(k);
                    k += 1;
                    bits &= bits - 1;
                }
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

    /// The mask words.
    pub fn mask(&self) -> &[u64] {
        &self.mask
    }

    /// Stored values.
    pub fn values(&self) -> &Values {
        &self.values
    }

    /// Offsets of each row's first value (`rows + 1`).
    pub fn row_ptr(&self) -> &[usize] {
        &self.row_ptr
    }

    /// Stored entries.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// Bytes of storage (mask and values).
    pub fn nbytes(&self) -> usize {
        8 * self.mask.len() + self.values.nbytes()
    }

    /// Estimated bytes for `nnz` entries without building the matrix.
    pub fn estimate_bytes(rows: usize, cols: usize, nnz: usize, dtype: ValueDtype) -> usize {
        8 * rows * words_per_row(cols) + nnz * dtype.size()
    }
}
