//! CSR (and COO) sparse matrix × dense vector, `y += W x`.
//!
//! The row-wise CSR SpMV of Saad, "Iterative Methods for Sparse Linear Systems", §3.4
//! (Algorithm 3.1), one row per output, eight entries per iteration into four independent
//! accumulators (16-bit values widened on load). `x` is small (at most a few tens of KiB) and stays
//! in L1/L2, so its random reads hit cache and the kernel streams values and indices.
//!
//! The gather form of Liu, Smelyanskiy, Chow & Dubey ("Efficient Sparse Matrix-Vector
//! Multiplication on x86-Based Many-Core Processors", ICS 2013: `vgatherdps` of `LANES` `x`
//! values per step) was implemented and measured slower on this Zen 4 class CPU (3.0 ns vs
//! 2.1 ns per 8 cache-resident entries, one thread): its gathers are microcoded, while scalar
//! loads issue three per cycle. The kernel is still compiled per ISA level (FMA contraction and
//! F16C widening under AVX2/AVX-512).
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
    for (i, yi) in y.iter_mut().enumerate() {
        let (a, b) = spans.span(r0 + i);
        debug_assert!(a <= b && b <= idx.len() && b <= vals.len());
        // Four independent accumulators, eight entries per iteration.
        let (mut s0, mut s1, mut s2, mut s3) = (0f32, 0f32, 0f32, 0f32);
        let mut k = a;
        macro_rules! term {
            ($k:expr) => {
                V::widen(*vp.add($k)) * *xp.add(I::get(*ip.add($k)))
            };
        }
        while k + 8 <= b {
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                // A hint only: `prefetcht0` never faults and changes no memory, whatever the
                // address (`wrapping_add` keeps the pointer arithmetic defined past the end).
                _mm_prefetch::<_MM_HINT_T0>(vp.wrapping_add(k + CSR_PREFETCH).cast());
                _mm_prefetch::<_MM_HINT_T0>(ip.wrapping_add(k + CSR_PREFETCH).cast());
            }
            s0 += term!(k) + term!(k + 4);
            s1 += term!(k + 1) + term!(k + 5);
            s2 += term!(k + 2) + term!(k + 6);
            s3 += term!(k + 3) + term!(k + 7);
            k += 8;
        }
        while k < b {
            s0 += term!(k);
            k += 1;
        }
        *yi += (s0 + s1) + (s2 + s3);
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
