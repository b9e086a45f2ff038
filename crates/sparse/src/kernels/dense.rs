//! Dense GEMV `y += W x` (f32, bf16, f16 weights; f32 activations and accumulation).
//!
//! A memory-bound streaming dot product (Williams, Waterman & Patterson, "Roofline", CACM 2009:
//! at one multiply-add per weight, GEMV's arithmetic intensity is far below any CPU's ridge point,
//! so the only goal is to stream `W` at full memory bandwidth). Rows are processed one at a time
//! with four accumulators (four independent FMA chains hide the FMA latency when `W` comes from
//! cache); 16-bit weights are
//! widened in registers (bf16: zero-extend and shift left 16; f16: `vcvtph2ps`), so the bytes read
//! per weight are the stored ones. Row tails use masked loads.

use super::simd::{per_isa, Simd, Val};

/// `y[i] += W[i, :] · x` for the `y.len()` rows stored at the start of `w`.
///
/// # Safety
/// `w.len() >= y.len() * x.len()`; the CPU supports `S`.
#[inline(always)]
unsafe fn gemv_rows_body<S: Simd, V: Val>(w: &[V::Raw], x: &[f32], y: &mut [f32]) {
    let cols = x.len();
    let rows = y.len();
    debug_assert!(w.len() >= rows * cols);
    let l = S::LANES;
    let wp = w.as_ptr();
    let xp = x.as_ptr();
    let mut r = 0;
    // One row at a time: `w` is read strictly sequentially, one stream the hardware prefetcher
    // follows across rows (four interleaved rows measured no faster on long rows and slower on
    // the model's 576-column rows). The bitmask kernel uses the same four accumulators per row,
    // so that its result equals this kernel's bit for bit.
    let main4 = cols - cols % (4 * l);
    while r < rows {
        let p = wp.add(r * cols);
        let (mut a0, mut a1, mut a2, mut a3) = (S::zero(), S::zero(), S::zero(), S::zero());
        let mut c = 0;
        while c < main4 {
            a0 = S::fma(V::load::<S>(p.add(c)), S::load(xp.add(c)), a0);
            a1 = S::fma(V::load::<S>(p.add(c + l)), S::load(xp.add(c + l)), a1);
            a2 = S::fma(
                V::load::<S>(p.add(c + 2 * l)),
                S::load(xp.add(c + 2 * l)),
                a2,
            );
            a3 = S::fma(
                V::load::<S>(p.add(c + 3 * l)),
                S::load(xp.add(c + 3 * l)),
                a3,
            );
            c += 4 * l;
        }
        while c < cols {
            let n = (cols - c).min(l);
            a0 = S::fma(V::load_n::<S>(p.add(c), n), S::load_n(xp.add(c), n), a0);
            c += l;
        }
        *y.get_unchecked_mut(r) += S::hsum(S::add(S::add(a0, a1), S::add(a2, a3)));
        r += 1;
    }
}

per_isa! {
    /// Dense GEMV over a block of rows (see [`gemv_rows_body`]).
    pub(crate) fn gemv_rows<V: Val>(w: &[V::Raw], x: &[f32], y: &mut [f32]) => gemv_rows_body
}
