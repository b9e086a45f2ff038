//! CSR (and COO) sparse matrix × dense vector, `y += W x`.
//!
//! The row-wise CSR SpMV of Saad, "Iterative Methods for Sparse Linear Systems", §3.4
//! (Algorithm 3.1), one row per output. `x` is small (at most a few tens of KiB) and stays in
//! L1/L2, so its random reads hit cache and the kernel streams values and indices.
//!
//! Each step takes `LANES` entries: one vector load of their values (16-bit values widened in
//! registers) and one FMA with a vector of their `x` values, put together from `LANES` scalar loads
//! (`vinsertps`; u16 indices read four at a time as one u64), into two accumulators. The scalar
//! loop this replaced (eight entries per iteration into four scalar accumulators) issued three
//! loads per entry, index, `x` and value, and was bound by the load ports; here an entry costs
//! about 1.4 loads. On 4096² at two threads, SpMV went from 587 to 431 µs at 70% sparsity and from
//! 103 to 75 µs at 95% (`secateurs bench kernels`); one thread on 4096² at 70–95% sparsity,
//! 1.43–1.70 against 1.89–2.14 ns per 8 entries. The gather form of Liu, Smelyanskiy, Chow & Dubey
//! ("Efficient Sparse Matrix-Vector Multiplication on x86-Based Many-Core Processors", ICS 2013:
//! `vgatherdps` of the `x` values) measured slower than either on this Zen 4 class CPU (2.3–2.5 ns
//! per 8), its gathers microcoded. The row's sum is `hsum(a0 + a1)` plus a scalar tail, another
//! order than the dense GEMV's, so CSR results match dense to rounding, not bit for bit.
//!
//! COO reuses the same row kernel: its entries are sorted row-major, so each row's entries are a
//! contiguous run, found by binary search on the row indices ([`CooSpans`]).

use super::simd::{per_isa, Idx, Simd, Val};

/// The entries `start..end` of each row.
pub(crate) trait RowSpans: Sync {
    /// Entries of row `r` (absolute positions in the value and index arrays).
    fn span(&self, r: usize) -> (usize, usize);
}

/// CSR row offsets.
pub(crate) struct CsrSpans<'a>(pub &'a [u32]);

impl RowSpans for CsrSpans<'_> {
    #[inline(always)]
    fn span(&self, r: usize) -> (usize, usize) {
        (self.0[r] as usize, self.0[r + 1] as usize)
    }
}

/// COO rows: the run of entries of row `r` in the sorted row indices.
pub(crate) struct CooSpans<'a, T>(pub &'a [T]);

impl<T: Copy + Into<u64> + Sync> RowSpans for CooSpans<'_, T> {
    #[inline]
    fn span(&self, r: usize) -> (usize, usize) {
        let r = r as u64;
        let a = self.0.partition_point(|&x| x.into() < r);
        let b = a + self.0[a..].partition_point(|&x| x.into() <= r);
        (a, b)
    }
}

/// Entries ahead of the one being read that the SpMV loop prefetches (4 KiB of f32 values):
/// at 70% sparsity on 4096² (30 MB, about this machine's L3) it measured ~15% faster.
const CSR_PREFETCH: usize = 1024;

/// `y[i] += Σ vals[k] x[idx[k]]` over the entries `k` of row `r0 + i`, for every `i < y.len()`.
///
/// # Safety
/// Every span of rows `r0..r0 + y.len()` lies inside `idx` and `vals`, every index in those spans
/// is below `x.len()` (both guaranteed by the formats' `from_parts` validation); the CPU supports
/// `S`.
#[inline(always)]
unsafe fn spmv_rows_body<S: Simd, V: Val, I: Idx, R: RowSpans>(
    spans: &R,
    r0: usize,
    idx: &[I::Raw],
    vals: &[V::Raw],
    x: &[f32],
    y: &mut [f32],
) {
    let ip = idx.as_ptr();
    let vp = vals.as_ptr();
    let xp = x.as_ptr();
    let l = S::LANES;
    for (i, yi) in y.iter_mut().enumerate() {
        let (a, b) = spans.span(r0 + i);
        debug_assert!(a <= b && b <= idx.len() && b <= vals.len());
        // Two vector accumulators, `2 LANES` entries per iteration: the values loaded as a
        // vector, their `x` put together from scalar loads.
        let (mut a0, mut a1) = (S::zero(), S::zero());
        let mut k = a;
        while k + 2 * l <= b {
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                // A hint only: `prefetcht0` never faults and changes no memory, whatever the
                // address (`wrapping_add` keeps the pointer arithmetic defined past the end).
                _mm_prefetch::<_MM_HINT_T0>(vp.wrapping_add(k + CSR_PREFETCH).cast());
                _mm_prefetch::<_MM_HINT_T0>(vp.wrapping_add(k + l + CSR_PREFETCH).cast());
                _mm_prefetch::<_MM_HINT_T0>(ip.wrapping_add(k + CSR_PREFETCH).cast());
            }
            a0 = S::fma(V::load::<S>(vp.add(k)), I::gather::<S>(xp, ip.add(k)), a0);
            a1 = S::fma(
                V::load::<S>(vp.add(k + l)),
                I::gather::<S>(xp, ip.add(k + l)),
                a1,
            );
            k += 2 * l;
        }
        if k + l <= b {
            a0 = S::fma(V::load::<S>(vp.add(k)), I::gather::<S>(xp, ip.add(k)), a0);
            k += l;
        }
        let mut s = S::hsum(S::add(a0, a1));
        while k < b {
            s += V::widen(*vp.add(k)) * *xp.add(I::get(*ip.add(k)));
            k += 1;
        }
        *yi += s;
    }
}

per_isa! {
    /// CSR/COO SpMV over a block of rows (see [`spmv_rows_body`]).
    pub(crate) fn spmv_rows<V: Val, I: Idx, R: RowSpans>(
        spans: &R,
        r0: usize,
        idx: &[I::Raw],
        vals: &[V::Raw],
        x: &[f32],
        y: &mut [f32],
    ) => spmv_rows_body
}
