//! One type for a weight matrix in any format, chosen per matrix from its measured sparsity
//! pattern (fewest bytes read per product, since decode is memory-bound) or forced by the user.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::bitmask::Bitmask;
use crate::coo::Coo;
use crate::csr::Csr;
use crate::dense::DenseMatrix;
use crate::error::{check_len, Result};
use crate::kernels;
use crate::nm::{self, NmMatrix};
use crate::values::ValueDtype;

/// A storage format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Every value stored.
    Dense,
    /// Coordinate triples.
    Coo,
    /// Compressed sparse row.
    Csr,
    /// One bit per weight plus packed values.
    Bitmask,
    /// N:M compressed (kept values + per-group positions); the pattern is detected.
    Nm,
}

impl Format {
    /// All formats.
    pub const ALL: [Format; 5] = [
        Format::Dense,
        Format::Coo,
        Format::Csr,
        Format::Bitmask,
        Format::Nm,
    ];
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Dense => "dense",
            Format::Coo => "coo",
            Format::Csr => "csr",
            Format::Bitmask => "bitmask",
            Format::Nm => "nm",
        })
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "dense" => Ok(Format::Dense),
            "coo" => Ok(Format::Coo),
            "csr" => Ok(Format::Csr),
            "bitmask" => Ok(Format::Bitmask),
            "nm" | "n:m" => Ok(Format::Nm),
            _ => Err(format!(
                "unknown format '{s}' (expected dense, coo, csr, bitmask or nm)"
            )),
        }
    }
}

/// A weight matrix `(rows, cols)` of a linear layer `y = W x` in one of the formats.
#[derive(Debug, Clone, PartialEq)]
pub enum PackedMatrix {
    /// Dense.
    Dense(DenseMatrix),
    /// COO.
    Coo(Coo),
    /// CSR.
    Csr(Csr),
    /// Bitmask.
    Bitmask(Bitmask),
    /// N:M.
    Nm(NmMatrix),
}

/// The N:M pattern `(keep, m)` with the fewest bytes that a matrix satisfies, if any group size
/// of [`nm::GROUP_SIZES`] gives one with `keep < m`.
pub fn detect_nm(w: &[f32], rows: usize, cols: usize, dtype: ValueDtype) -> Option<(usize, usize)> {
    nm::GROUP_SIZES
        .iter()
        .filter_map(|&m| {
            let keep = nm::max_per_group(w, cols, m)?.max(1);
            (keep < m).then_some((keep, m))
        })
        .min_by_key(|&(keep, m)| NmMatrix::estimate_bytes(rows, cols, keep, m, dtype))
}

/// The format that stores `w` in the fewest bytes (N:M within 2% of it wins); dense unless a
/// sparse format saves at least 10% (a sparse kernel does more work per byte, so a marginal
/// saving is not worth it). COO is never chosen.
pub fn choose_format(w: &[f32], rows: usize, cols: usize, dtype: ValueDtype) -> Format {
    let nnz = w.iter().filter(|&&x| x != 0.0).count();
    let dense = rows * cols * dtype.size();
    let mut best = (Format::Csr, Csr::estimate_bytes(rows, cols, nnz, dtype));
    let bm = Bitmask::estimate_bytes(rows, cols, nnz, dtype);
    if bm <= best.1 {
        best = (Format::Bitmask, bm);
    }
    if let Some((keep, m)) = detect_nm(w, rows, cols, dtype) {
        // N:M: take it unless it stores over 2% more (a 2:4 matrix with a few extra zeros is a
        // slightly smaller bitmask). Its 2:4 select kernel needs no expand; where the multi-row
        // bitmask loop is faster (f32 rows of six words or more on AVX-512) the GEMV runs that
        // loop on N:M storage too (`kernels::nm24_by_mask`).
        let b = NmMatrix::estimate_bytes(rows, cols, keep, m, dtype);
        if (b as f64) <= 1.02 * best.1 as f64 {
            best = (Format::Nm, b);
        }
    }
    if (best.1 as f64) < 0.9 * dense as f64 {
        best.0
    } else {
        Format::Dense
    }
}

impl PackedMatrix {
    /// Encodes a dense row-major `(rows, cols)` matrix in `format` (`None`: [`choose_format`])
    /// with values stored as `dtype`.
    ///
    /// # Errors
    /// A buffer that does not match the shape, or a matrix that does not fit the format (an
    /// [`Format::Nm`] request for a matrix with no N:M pattern).
    pub fn encode(
        w: &[f32],
        rows: usize,
        cols: usize,
        format: Option<Format>,
        dtype: ValueDtype,
    ) -> Result<Self> {
        check_len("dense buffer", rows * cols, w.len())?;
        let format = format.unwrap_or_else(|| choose_format(w, rows, cols, dtype));
        Ok(match format {
            Format::Dense => PackedMatrix::Dense(DenseMatrix::from_dense(w, rows, cols, dtype)?),
            Format::Coo => PackedMatrix::Coo(Coo::from_dense(w, rows, cols, dtype)?),
            Format::Csr => PackedMatrix::Csr(Csr::from_dense(w, rows, cols, dtype)?),
            Format::Bitmask => PackedMatrix::Bitmask(Bitmask::from_dense(w, rows, cols, dtype)?),
            Format::Nm => {
                let (keep, m) = detect_nm(w, rows, cols, dtype).ok_or_else(|| {
                    crate::FormatError::Unsupported(format!(
                        "the {rows}x{cols} matrix has no N:M pattern with M in {:?}",
                        nm::GROUP_SIZES
                    ))
                })?;
                PackedMatrix::Nm(NmMatrix::from_dense(w, rows, cols, keep, m, dtype)?)
            }
        })
    }

    /// The dense row-major matrix (exact: every format is lossless for its stored values).
    pub fn to_dense(&self) -> Vec<f32> {
        match self {
            PackedMatrix::Dense(m) => m.to_dense(),
            PackedMatrix::Coo(m) => m.to_dense(),
            PackedMatrix::Csr(m) => m.to_dense(),
            PackedMatrix::Bitmask(m) => m.to_dense(),
            PackedMatrix::Nm(m) => m.to_dense(),
        }
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        match self {
            PackedMatrix::Dense(m) => (m.rows(), m.cols()),
            PackedMatrix::Coo(m) => (m.rows(), m.cols()),
            PackedMatrix::Csr(m) => (m.rows(), m.cols()),
            PackedMatrix::Bitmask(m) => (m.rows(), m.cols()),
            PackedMatrix::Nm(m) => (m.rows(), m.cols()),
        }
    }

    /// The format.
    pub fn format(&self) -> Format {
        match self {
            PackedMatrix::Dense(_) => Format::Dense,
            PackedMatrix::Coo(_) => Format::Coo,
            PackedMatrix::Csr(_) => Format::Csr,
            PackedMatrix::Bitmask(_) => Format::Bitmask,
            PackedMatrix::Nm(_) => Format::Nm,
        }
    }

    /// A short description: `bitmask/bf16`, `nm 2:4/f32`, ...
    pub fn describe(&self) -> String {
        match self {
            PackedMatrix::Nm(m) => format!("nm {}:{}/{}", m.keep(), m.m(), self.dtype()),
            _ => format!("{}/{}", self.format(), self.dtype()),
        }
    }

    /// The value type.
    pub fn dtype(&self) -> ValueDtype {
        match self {
            PackedMatrix::Dense(m) => m.values().dtype(),
            PackedMatrix::Coo(m) => m.values().dtype(),
            PackedMatrix::Csr(m) => m.values().dtype(),
            PackedMatrix::Bitmask(m) => m.values().dtype(),
            PackedMatrix::Nm(m) => m.values().dtype(),
        }
    }

    /// Stored values (every value for dense; padding zeros included for N:M).
    pub fn stored(&self) -> usize {
        match self {
            PackedMatrix::Dense(m) => m.values().len(),
            PackedMatrix::Coo(m) => m.nnz(),
            PackedMatrix::Csr(m) => m.nnz(),
            PackedMatrix::Bitmask(m) => m.nnz(),
            PackedMatrix::Nm(m) => m.nnz(),
        }
    }

    /// Bytes of storage: what one product reads from memory.
    pub fn nbytes(&self) -> usize {
        match self {
            PackedMatrix::Dense(m) => m.nbytes(),
            PackedMatrix::Coo(m) => m.nbytes(),
            PackedMatrix::Csr(m) => m.nbytes(),
            PackedMatrix::Bitmask(m) => m.nbytes(),
            PackedMatrix::Nm(m) => m.nbytes(),
        }
    }

    /// `y += W x` for one vector: `x (cols)`, `y (rows)`.
    ///
    /// # Panics
    /// If `x` or `y` has the wrong length.
    pub fn gemv(&self, x: &[f32], y: &mut [f32]) {
        let (rows, cols) = self.shape();
        assert_eq!(x.len(), cols, "gemv input length");
        assert_eq!(y.len(), rows, "gemv output length");
        kernels::gemv(self, x, y);
    }

    /// `y += x Wᵀ` for a small batch through the GEMV kernels: every output has the digits
    /// [`PackedMatrix::gemv`] gives for its row of `x` (see [`kernels::gemv_batch_isa`]).
    ///
    /// # Panics
    /// If `x` or `y` has the wrong length.
    pub fn gemv_batch(&self, x: &[f32], batch: usize, y: &mut [f32]) {
        let (rows, cols) = self.shape();
        assert_eq!(x.len(), batch * cols, "gemv_batch input length");
        assert_eq!(y.len(), batch * rows, "gemv_batch output length");
        kernels::gemv_batch(self, x, batch, y);
    }

    /// `y += x Wᵀ` for a batch: `x (batch, cols)` and `y (batch, rows)`, row-major.
    ///
    /// # Panics
    /// If `x` or `y` has the wrong length.
    pub fn matmul(&self, x: &[f32], batch: usize, y: &mut [f32]) {
        let (rows, cols) = self.shape();
        assert_eq!(x.len(), batch * cols, "matmul input length");
        assert_eq!(y.len(), batch * rows, "matmul output length");
        kernels::matmul(self, x, batch, y);
    }
}
