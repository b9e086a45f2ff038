//! Dense matrix × matrix `y += x Wᵀ` (prefill with dense weights), on the `gemm` crate's
//! packed, register-blocked GEMM (the BLIS design: Van Zee & van de Geijn, "BLIS: A Framework for
//! Rapidly Instantiating BLAS Functionality", ACM TOMS 2015). f32 weights are used in place
//! through strides (`Wᵀ` is `W` with swapped strides); 16-bit weights are widened to f32 one block
//! of rows at a time (at most [`WIDEN_BYTES`] of scratch), each block a GEMM of its own.

use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};

use crate::values::Values;

/// Scratch for one block of widened 16-bit rows.
const WIDEN_BYTES: usize = 8 << 20;
/// Below this many multiply-adds the GEMM runs on the calling thread.
const PARALLEL_MIN_WORK: usize = 1 << 20;

/// `y (batch, n) [:, col0..col0 + n] += x (batch, k) · w (n, k)ᵀ`, where `y` has rows of `ld`.
#[allow(clippy::too_many_arguments)]
fn gemm_block(
    y: &mut [f32],
    ld: usize,
    col0: usize,
    x: &[f32],
    batch: usize,
    w: &[f32],
    n: usize,
    k: usize,
) {
    assert!(batch > 0 && n > 0 && k > 0);
    assert_eq!(x.len(), batch * k);
    assert_eq!(w.len(), n * k);
    assert!(col0 + n <= ld && y.len() == batch * ld);
    let threads = rayon::current_num_threads();
    let par = if threads > 1 && batch * n * k >= PARALLEL_MIN_WORK {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts prove every element gemm addresses is inside its slice: dst element
    // (i, j) is `col0 + i * ld + j` with i < batch, j < n, col0 + n <= ld, so below batch * ld;
    // lhs (i, l) is `i * k + l` < batch * k; rhs (l, j) = w[j][l] is `j * k + l` < n * k. `y` is
    // borrowed mutably, so it aliases neither `x` nor `w`.
    unsafe {
        gemm::gemm(
            batch,
            n,
            k,
            y.as_mut_ptr().add(col0),
            1,
            ld as isize,
            true,
            x.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            k as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// `y += x Wᵀ` for dense `W (rows, cols)` stored as `values`.
pub(crate) fn matmul(
    values: &Values,
    rows: usize,
    cols: usize,
    x: &[f32],
    batch: usize,
    y: &mut [f32],
) {
    if batch == 0 || rows == 0 || cols == 0 {
        return;
    }
    match values {
        Values::F32(w) => gemm_block(y, rows, 0, x, batch, w, rows, cols),
        Values::Bf16(w) | Values::F16(w) => {
            let block = (WIDEN_BYTES / (4 * cols)).clamp(1, rows);
            let mut scratch = vec![0f32; block * cols];
            for r0 in (0..rows).step_by(block) {
                let n = block.min(rows - r0);
                let src = &w[r0 * cols..(r0 + n) * cols];
                let dst = &mut scratch[..n * cols];
                match values {
                    Values::Bf16(_) => src
                        .reinterpret_cast::<half::bf16>()
                        .convert_to_f32_slice(dst),
                    _ => src
                        .reinterpret_cast::<half::f16>()
                        .convert_to_f32_slice(dst),
                }
                gemm_block(y, rows, r0, x, batch, dst, n, cols);
            }
        }
    }
}
