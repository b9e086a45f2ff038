//! Numeric kernels of the forward pass on row-major f32 buffers: matrix products (through the
//! `gemm` crate), RMSNorm, rotary embeddings, SiLU and a numerically stable softmax.

use rayon::prelude::*;

/// A row-major matrix: `rows` vectors of `cols` values.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Number of rows (tokens).
    pub rows: usize,
    /// Number of columns (features).
    pub cols: usize,
    /// `rows * cols` values, row-major.
    pub data: Vec<f32>,
}

impl Matrix {
    /// A zero matrix.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Matrix {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// Wraps a buffer; `data.len()` must equal `rows * cols`.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f32>) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "matrix buffer does not match its shape"
        );
        Matrix { rows, cols, data }
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Selects rows `[start, end)` into a new matrix.
    pub fn slice_rows(&self, start: usize, end: usize) -> Matrix {
        Matrix::from_vec(
            end - start,
            self.cols,
            self.data[start * self.cols..end * self.cols].to_vec(),
        )
    }
}

/// Work (multiply-adds) below which a product runs on one thread: spawning costs more.
const PARALLEL_MIN_WORK: usize = 1 << 18;

/// A strided read-only view used to describe gemm operands without copying.
#[derive(Clone, Copy)]
pub struct View<'a> {
    /// Backing buffer.
    pub data: &'a [f32],
    /// Logical rows.
    pub rows: usize,
    /// Logical columns.
    pub cols: usize,
    /// Distance between consecutive rows, in elements.
    pub row_stride: usize,
    /// Distance between consecutive columns, in elements.
    pub col_stride: usize,
}

impl<'a> View<'a> {
    /// A dense row-major view.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        View {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of this view (no copy).
    pub fn t(self) -> Self {
        View {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Whether every addressed element lies inside `data`.
    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride
                < self.data.len()
    }
}

/// `out (a.rows, b.cols) = a · b`, or `out += a · b` when `accumulate`. `out` is row-major with
/// row stride `out_stride` (≥ `b.cols`). `threads` > 1 lets gemm split the work.
///
/// # Panics
/// If the shapes disagree or a view addresses memory outside its buffer (programming errors: all
/// shapes are validated when a model is loaded).
pub fn gemm_into(
    out: &mut [f32],
    out_stride: usize,
    a: View,
    b: View,
    accumulate: bool,
    threads: usize,
) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    assert!(
        a.in_bounds() && b.in_bounds(),
        "gemm operand view out of bounds"
    );
    let (m, n, k) = (a.rows, b.cols, a.cols);
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        out_stride >= n && (m - 1) * out_stride + n <= out.len(),
        "gemm output too small"
    );
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                out[r * out_stride..r * out_stride + n].fill(0.0);
            }
        }
        return;
    }
    let par = if threads > 1 && m * n * k >= PARALLEL_MIN_WORK {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above prove that every element gemm addresses — (m-1)*rs + (n-1)*cs for
    // the output and likewise for both operands, all strides non-negative — lies inside the
    // corresponding slice; `out` is borrowed mutably, so it cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            out_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// Threads one matrix product may use: the whole pool when called from outside it, one when
/// already running on a pool worker (the caller parallelizes at a coarser grain, e.g. over
/// heads or over perplexity windows, which scales better than splitting each product).
pub fn threads() -> usize {
    if rayon::current_thread_index().is_some() {
        1
    } else {
        rayon::current_num_threads()
    }
}

/// RMSNorm (Zhang & Sennrich 2019), as LLaMA computes it: `x / sqrt(mean(x²) + eps) * weight`.
pub fn rms_norm(x: &Matrix, weight: &[f32], eps: f32) -> Matrix {
    assert_eq!(weight.len(), x.cols);
    let mut out = Matrix::zeros(x.rows, x.cols);
    let cols = x.cols;
    out.data
        .par_chunks_mut(cols.max(1))
        .zip(x.data.par_chunks(cols.max(1)))
        .with_min_len(16)
        .for_each(|(o, r)| {
            let ss: f32 = r.iter().map(|v| v * v).sum::<f32>() / cols as f32;
            let inv = 1.0 / (ss + eps).sqrt();
            for ((o, v), w) in o.iter_mut().zip(r).zip(weight) {
                *o = w * (v * inv);
            }
        });
    out
}

/// `silu(gate) * up`, elementwise, written into `gate` (SwiGLU of Shazeer 2020).
pub fn swiglu_inplace(gate: &mut [f32], up: &[f32]) {
    gate.par_chunks_mut(4096)
        .zip(up.par_chunks(4096))
        .for_each(|(g, u)| crate::vexp::silu_mul(g, u));
}

/// In-place softmax of a row; entries at or past `valid` are set to 0 (masked).
pub fn softmax_prefix(row: &mut [f32], valid: usize) {
    let (head, tail) = row.split_at_mut(valid.min(row.len()));
    tail.fill(0.0);
    let max = head.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for v in head.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in head.iter_mut() {
        *v *= inv;
    }
}

/// `log(sum(exp(row)))`, computed stably in f64.
pub fn log_sum_exp(row: &[f32]) -> f64 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let s: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
    max + s.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], m: usize, k: usize, b: &[f32], n: usize) -> Vec<f32> {
        let mut o = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                o[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        o
    }

    #[test]
    fn gemm_matches_naive_including_transposed_views() {
        let (m, k, n) = (7, 5, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let want = naive(&a, m, k, &b, n);
        let mut out = vec![0.0; m * n];
        gemm_into(
            &mut out,
            n,
            View::row_major(&a, m, k),
            View::row_major(&b, k, n),
            false,
            1,
        );
        for (x, y) in out.iter().zip(&want) {
            assert!((x - y).abs() < 1e-5);
        }
        // b stored transposed (n, k): the view's transpose gives back (k, n).
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let mut out2 = vec![1.0; m * n];
        gemm_into(
            &mut out2,
            n,
            View::row_major(&a, m, k),
            View::row_major(&bt, n, k).t(),
            true,
            2,
        );
        for (x, y) in out2.iter().zip(&want) {
            assert!((x - (y + 1.0)).abs() < 1e-5);
        }
    }

    #[test]
    fn softmax_masks_and_normalizes() {
        let mut r = vec![1.0, 2.0, 3.0, 100.0];
        softmax_prefix(&mut r, 3);
        assert_eq!(r[3], 0.0);
        assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(r[2] > r[1] && r[1] > r[0]);
    }

    #[test]
    fn rms_norm_unit_weight_gives_unit_rms() {
        let x = Matrix::from_vec(2, 4, vec![1.0, 2.0, 3.0, 4.0, -1.0, 0.5, 0.0, 2.0]);
        let y = rms_norm(&x, &[1.0; 4], 0.0);
        for r in 0..2 {
            let ms: f32 = y.row(r).iter().map(|v| v * v).sum::<f32>() / 4.0;
            assert!((ms - 1.0).abs() < 1e-5);
        }
    }
}
