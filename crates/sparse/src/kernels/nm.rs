//! 2:4 sparse matrix × dense vector, `y += W x`, without expanding the values.
//!
//! The N:M formulation of Mishra et al., "Accelerating Sparse Deep Neural Networks" (2021, §3):
//! a 2:4 row stores exactly two values per group of four columns, so `LANES` consecutive stored
//! values cover `2 × LANES` columns and are multiplied by a *selection* of `x` rather than
//! expanded to dense lanes. The `LANES` 2-bit positions (one `2 × LANES`-bit field of the packed
//! index stream) are decoded in registers (broadcast, variable shift, mask, plus the group base
//! `4 (j / 2)`) into a permutation of the `2 × LANES` activations of the step (AVX-512
//! `vpermt2ps` over two registers; AVX2 two `vpermps` and a blend); one full-width FMA then uses
//! every lane. Per 32 columns of f32 this reads 64 bytes of values and 4 bytes of positions, does
//! one FMA and no popcount chain, unlike the generic bitmask kernel that N:M otherwise uses.
//!
//! Used for 2:4 matrices whose column count is a multiple of 32 (so every step starts on a byte
//! of the position stream); other N:M patterns and shapes use the bitmask kernel on the derived
//! mask.

use super::simd::{per_isa, Simd, Val};

/// Whether [`spmv24_rows`] handles a `keep:m` matrix with `cols` columns.
pub(crate) fn fast24(keep: usize, m: usize, cols: usize) -> bool {
    keep == 2 && m == 4 && cols.is_multiple_of(32)
}

/// `y[i] += W[r0 + i, :] · x` for a 2:4 matrix: `vals` all stored values (`cols / 2` per row),
/// `idx` the packed 2-bit positions.
///
/// # Safety
/// `fast24(2, 4, x.len())`; rows `r0..r0 + y.len()` exist, so their `cols / 2` values and
/// `cols / 8` position bytes are inside `vals` and `idx` (lengths validated by
/// `NmMatrix::from_parts`); the CPU supports `S`.
#[inline(always)]
unsafe fn spmv24_rows_body<S: Simd, V: Val>(
    vals: &[V::Raw],
    idx: &[u8],
    r0: usize,
    x: &[f32],
    y: &mut [f32],
) {
    let l = S::LANES;
    let cols = x.len();
    let per_row = cols / 2;
    let steps = cols / (2 * l);
    let vp = vals.as_ptr();
    let ip = idx.as_ptr();
    let xp = x.as_ptr();
    // Bytes of positions per step: 2 bits × LANES values.
    let pb = l / 4;
    for (i, yi) in y.iter_mut().enumerate() {
        let mut k = (r0 + i) * per_row;
        let mut a0 = S::zero();
        let mut a1 = S::zero();
        let mut t = 0;
        while t + 2 <= steps {
            // k is a multiple of LANES (cols / 2 is a multiple of 16), so the step's positions
            // start on byte k / 4.
            let mut f0 = 0u32;
            let mut f1 = 0u32;
            std::ptr::copy_nonoverlapping(ip.add(k / 4), (&mut f0 as *mut u32).cast::<u8>(), pb);
            std::ptr::copy_nonoverlapping(
                ip.add(k / 4 + pb),
                (&mut f1 as *mut u32).cast::<u8>(),
                pb,
            );
            let x0 = S::select24(xp.add(t * 2 * l), u32::from_le(f0));
            let x1 = S::select24(xp.add((t + 1) * 2 * l), u32::from_le(f1));
            a0 = S::fma(V::load::<S>(vp.add(k)), x0, a0);
            a1 = S::fma(V::load::<S>(vp.add(k + l)), x1, a1);
            k += 2 * l;
            t += 2;
        }
        if t < steps {
            let mut f0 = 0u32;
            std::ptr::copy_nonoverlapping(ip.add(k / 4), (&mut f0 as *mut u32).cast::<u8>(), pb);
            let x0 = S::select24(xp.add(t * 2 * l), u32::from_le(f0));
            a0 = S::fma(V::load::<S>(vp.add(k)), x0, a0);
        }
        *yi += S::hsum(S::add(a0, a1));
    }
}

per_isa! {
    /// 2:4 SpMV over a block of rows (see [`spmv24_rows_body`]).
    pub(crate) fn spmv24_rows<V: Val>(
        vals: &[V::Raw],
        idx: &[u8],
        r0: usize,
        x: &[f32],
        y: &mut [f32],
    ) => spmv24_rows_body
}
