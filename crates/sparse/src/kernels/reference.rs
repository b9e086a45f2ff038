//! Scalar reference products: obviously correct, slow. The property tests compare every fast
//! kernel against these and against the dense product.

use crate::matrix::PackedMatrix;

/// `y += W x` for dense f32 `w (rows, cols)`.
pub fn gemv_f32(w: &[f32], rows: usize, cols: usize, x: &[f32], y: &mut [f32]) {
    for r in 0..rows {
        let row = &w[r * cols..(r + 1) * cols];
        y[r] += row.iter().zip(x).map(|(a, b)| a * b).sum::<f32>();
    }
}

/// `y += W x` for any format, entry by entry.
#[allow(clippy::needless_range_loop)] // index loops mirror the formats' definitions
pub fn gemv(m: &PackedMatrix, x: &[f32], y: &mut [f32]) {
    let (rows, cols) = m.shape();
    match m {
        PackedMatrix::Dense(d) => {
            let v = d.values();
            for r in 0..rows {
                y[r] += (0..cols).map(|c| v.get(r * cols + c) * x[c]).sum::<f32>();
            }
        }
        PackedMatrix::Coo(c) => {
            for i in 0..c.nnz() {
                y[c.row_idx().get(i)] += c.values().get(i) * x[c.col_idx().get(i)];
            }
        }
        PackedMatrix::Csr(c) => {
            let p = c.row_ptr();
            for r in 0..rows {
                y[r] += (p[r] as usize..p[r + 1] as usize)
                    .map(|i| c.values().get(i) * x[c.col_idx().get(i)])
                    .sum::<f32>();
            }
        }
        PackedMatrix::Bitmask(b) => {
            let wpr = crate::bitmask::words_per_row(cols);
            for r in 0..rows {
                let mut k = b.row_ptr()[r];
                let mut acc = 0f32;
                for (j, &word) in b.mask()[r * wpr..(r + 1) * wpr].iter().enumerate() {
                    let mut bits = word;
                    while bits != 0 {
                        let c = j * 64 + bits.trailing_zeros() as usize;
                        acc += b.values().get(k) * x[c];
                        k += 1;
                        bits &= bits - 1;
                    }
                }
                y[r] += acc;
            }
        }
        PackedMatrix::Nm(n) => {
            let gpr = cols / n.m();
            for r in 0..rows {
                let mut acc = 0f32;
                for g in 0..gpr {
                    for s in 0..n.keep() {
                        let k = (r * gpr + g) * n.keep() + s;
                        acc += n.values().get(k) * x[g * n.m() + n.position(k)];
                    }
                }
                y[r] += acc;
            }
        }
    }
}

/// `y += x Wᵀ` for `x (batch, cols)`, `y (batch, rows)`: one [`gemv`] per row of `x`.
pub fn matmul(m: &PackedMatrix, x: &[f32], batch: usize, y: &mut [f32]) {
    let (rows, cols) = m.shape();
    for b in 0..batch {
        gemv(
            m,
            &x[b * cols..(b + 1) * cols],
            &mut y[b * rows..(b + 1) * rows],
        );
    }
}
