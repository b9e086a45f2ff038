//! N:M compressed format: every group of `m` consecutive weights in a row keeps at most `keep`
//! values (2:4 and 4:8 sparsity of Mishra et al. 2021, "Accelerating Sparse Deep Neural
//! Networks", §3; seed 003's k:n format). Layout:
//!
//! - `values`: `rows * (cols / m) * keep` values, group by group, in column order within a group;
//! - `indices`: one `ceil(log2 m)`-bit position per stored value (0..m, strictly increasing within
//!   its group), packed least-significant bit first into bytes, the last byte zero-padded.
//!
//! A group with fewer than `keep` non-zeros stores explicit zeros at its lowest free positions, so
//! every group has exactly `keep` entries and a kernel needs no per-group counts. 2:4 in f32 costs
//! 2 values + 4 bits per 4 weights: 2.125 bytes per weight, the same as a bitmask at 50%.

use crate::error::{check_len, FormatError, Result};
use crate::values::{ValueDtype, Values};

/// An N:M compressed matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct NmMatrix {
    rows: usize,
    cols: usize,
    keep: usize,
    m: usize,
    values: Values,
    indices: Vec<u8>,
    /// Derived when built (never stored): the stored positions as a bitmask, `ceil(cols / 64)`
    /// u64 words per row with the bitmask format's layout, so the bitmask kernels run N:M too.
    mask: Vec<u64>,
}

/// The bitmask (layout of [`crate::bitmask`]) of the stored positions of a valid N:M matrix.
fn derive_mask(rows: usize, cols: usize, keep: usize, m: usize, indices: &[u8]) -> Vec<u64> {
    let bits = index_bits(m);
    let wpr = crate::bitmask::words_per_row(cols);
    let gpr = cols / m;
    let mut mask = vec![0u64; rows * wpr];
    for r in 0..rows {
        for g in 0..gpr {
            for s in 0..keep {
                let p = get_bits(indices, ((r * gpr + g) * keep + s) * bits, bits);
                let c = g * m + p;
                mask[r * wpr + c / 64] |= 1u64 << (c % 64);
            }
        }
    }
    mask
}

/// Bits per stored position for groups of `m`.
pub fn index_bits(m: usize) -> usize {
    (usize::BITS - (m.max(2) - 1).leading_zeros()) as usize
}

/// Group sizes the automatic detection tries.
pub const GROUP_SIZES: [usize; 3] = [4, 8, 16];

fn check_shape(cols: usize, keep: usize, m: usize) -> Result<()> {
    if !(2..=256).contains(&m) || keep == 0 || keep >= m {
        return Err(FormatError::Unsupported(format!(
            "{keep}:{m} is not a valid N:M pattern (need 0 < N < M <= 256)"
        )));
    }
    if !cols.is_multiple_of(m) {
        return Err(FormatError::Unsupported(format!(
            "{cols} columns are not a multiple of the group size {m}"
        )));
    }
    Ok(())
}

/// The largest number of non-zeros in any group of `m` (or `None` if `m` does not divide `cols`).
pub fn max_per_group(w: &[f32], cols: usize, m: usize) -> Option<usize> {
    if m == 0 || !cols.is_multiple_of(m) {
        return None;
    }
    Some(
        w.chunks_exact(m)
            .map(|g| g.iter().filter(|&&x| x != 0.0).count())
            .max()
            .unwrap_or(0),
    )
}

/// Writes `v` (`bits` wide) at bit offset `pos` of an LSB-first stream.
fn put_bits(buf: &mut [u8], pos: usize, bits: usize, v: usize) {
    for b in 0..bits {
        if (v >> b) & 1 == 1 {
            buf[(pos + b) / 8] |= 1 << ((pos + b) % 8);
        }
    }
}

/// Reads a `bits`-wide value at bit offset `pos` of an LSB-first stream.
#[inline]
pub fn get_bits(buf: &[u8], pos: usize, bits: usize) -> usize {
    let mut v = 0usize;
    for b in 0..bits {
        v |= usize::from((buf[(pos + b) / 8] >> ((pos + b) % 8)) & 1) << b;
    }
    v
}

impl NmMatrix {
    /// Stores a dense row-major `(rows, cols)` matrix whose groups of `m` hold at most `keep`
    /// non-zeros each.
    ///
    /// # Errors
    /// A buffer that does not match the shape, an invalid pattern, `m` not dividing `cols`, or a
    /// group with more than `keep` non-zeros (naming its row and column).
    pub fn from_dense(
        w: &[f32],
        rows: usize,
        cols: usize,
        keep: usize,
        m: usize,
        dtype: ValueDtype,
    ) -> Result<Self> {
        check_len("dense buffer", rows * cols, w.len())?;
        check_shape(cols, keep, m)?;
        let bits = index_bits(m);
        let groups = rows * cols / m;
        let mut values = Values::with_capacity(dtype, groups * keep);
        let mut indices = vec![0u8; (groups * keep * bits).div_ceil(8)];
        let mut slot = 0;
        for (g, group) in w.chunks_exact(m).enumerate() {
            let nz: Vec<usize> = (0..m).filter(|&j| group[j] != 0.0).collect();
            if nz.len() > keep {
                return Err(FormatError::Unsupported(format!(
                    "row {}, columns {}..{}: {} non-zeros in a group that keeps {keep} of {m}",
                    g * m / cols,
                    (g * m) % cols,
                    (g * m) % cols + m,
                    nz.len()
                )));
            }
            // Pad with the lowest free positions, then store in increasing order.
            let mut pos = nz.clone();
            let mut j = 0;
            while pos.len() < keep {
                if !nz.contains(&j) {
                    pos.push(j);
                }
                j += 1;
            }
            pos.sort_unstable();
            for &p in &pos {
                values.push(group[p]);
                put_bits(&mut indices, slot * bits, bits, p);
                slot += 1;
            }
        }
        let mask = derive_mask(rows, cols, keep, m, &indices);
        Ok(NmMatrix {
            rows,
            cols,
            keep,
            m,
            values,
            indices,
            mask,
        })
    }

    /// Builds a matrix from its parts, validating lengths and that positions are in range and
    /// strictly increasing within each group.
    ///
    /// # Errors
    /// An invalid pattern or shape, wrong lengths, or bad positions (naming the group).
    pub fn from_parts(
        rows: usize,
        cols: usize,
        keep: usize,
        m: usize,
        values: Values,
        indices: Vec<u8>,
    ) -> Result<Self> {
        check_shape(cols, keep, m)?;
        let bits = index_bits(m);
        let groups = rows * (cols / m);
        check_len("values", groups * keep, values.len())?;
        check_len(
            "index bytes",
            (groups * keep * bits).div_ceil(8),
            indices.len(),
        )?;
        for g in 0..groups {
            let mut prev: Option<usize> = None;
            for s in 0..keep {
                let p = get_bits(&indices, (g * keep + s) * bits, bits);
                if p >= m || prev.is_some_and(|q| p <= q) {
                    return Err(FormatError::Index(format!(
                        "group {g} (row {}): position {p} is out of range 0..{m} or not increasing",
                        g / (cols / m)
                    )));
                }
                prev = Some(p);
            }
        }
        let mask = derive_mask(rows, cols, keep, m, &indices);
        Ok(NmMatrix {
            rows,
            cols,
            keep,
            m,
            values,
            indices,
            mask,
        })
    }

    /// The dense row-major matrix.
    pub fn to_dense(&self) -> Vec<f32> {
        let bits = index_bits(self.m);
        let mut w = vec![0f32; self.rows * self.cols];
        for g in 0..self.rows * self.cols / self.m {
            for s in 0..self.keep {
                let k = g * self.keep + s;
                let p = get_bits(&self.indices, k * bits, bits);
                w[g * self.m + p] = self.values.get(k);
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

    /// Values kept per group.
    pub fn keep(&self) -> usize {
        self.keep
    }

    /// Group size.
    pub fn m(&self) -> usize {
        self.m
    }

    /// Stored values (`keep` per group).
    pub fn values(&self) -> &Values {
        &self.values
    }

    /// Packed positions.
    pub fn indices(&self) -> &[u8] {
        &self.indices
    }

    /// The stored positions as bitmask words (derived, see the struct).
    pub(crate) fn mask_words(&self) -> &[u64] {
        &self.mask
    }

    /// Position (0..m) of stored value `k` within its group.
    #[inline]
    pub fn position(&self, k: usize) -> usize {
        get_bits(&self.indices, k * index_bits(self.m), index_bits(self.m))
    }

    /// Stored entries (including padding zeros).
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// Bytes of storage.
    pub fn nbytes(&self) -> usize {
        self.values.nbytes() + self.indices.len()
    }

    /// Estimated bytes of a `keep:m` matrix.
    pub fn estimate_bytes(
        rows: usize,
        cols: usize,
        keep: usize,
        m: usize,
        dtype: ValueDtype,
    ) -> usize {
        let stored = rows * (cols / m) * keep;
        stored * dtype.size() + (stored * index_bits(m)).div_ceil(8)
    }
}
