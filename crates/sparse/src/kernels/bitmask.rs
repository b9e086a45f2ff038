//! Bitmask (and N:M) sparse matrix × dense vector, `y += W x`.
//!
//! The bitmap-decoding SpMV of Flash-LLM's "tiled bitmap" format (Xia et al., "Flash-LLM", VLDB
//! 2024, §4.2) and of SparTA/DeepSparse-style CPU runtimes, on x86: for every `LANES` columns of a
//! row, the `LANES` mask bits select how many packed values to consume; an *expand* (AVX-512
//! `vexpandps`, or on AVX2 a `vpermps` with a 256-entry permutation table plus a zeroing AND)
//! scatters them to the lanes of their columns, zeroes the others, and one FMA with the dense
//! `x[c..c + LANES]` accumulates. The read pointer advances by the popcount of the bits. Unlike
//! CSR there are no indices to load and no gather: the kernel reads `density × value size + 1/8`
//! bytes per weight in one forward stream, which is what makes it beat dense GEMV from ~10%
//! sparsity up to ~90%.
//!
//! AVX-512 loads exactly `popcount` values with a fault-suppressing masked load (`bzhi` builds the
//! load mask) and expands in registers: measured faster on Zen 4 than the memory form
//! `vexpandps zmm{k}{z}, m512` (0.99 vs 1.7 ns per 16 cache-resident columns, one thread). f32
//! rows of whole 64-column words whose values are followed by at least `LANES` more (all rows but
//! the last few of a matrix) take a hand-scheduled loop instead
//! ([`Simd::bitmask_row_f32`](super::simd::Simd::bitmask_row_f32)): plain 16-value loads, the
//! accumulators in registers and a software prefetch 3 KiB ahead of the values twice per 64
//! columns (on 576-column rows in DRAM at 70% sparsity, one thread: 0.96–1.05 ns per 16 columns
//! against 1.5–1.8).
//! Rows are processed one at a time, so the values are read as one sequential stream that the
//! hardware prefetcher follows across rows. Interleaving rows (one load of `x` for several rows)
//! was measured slower: with four rows, 0.90× dense decode at 50% on the default model; with two
//! short rows, 0.79×; with two rows in the hand-scheduled loop, twice as slow from DRAM. Rows of
//! six words or more run, one after the other, in one multi-row loop
//! ([`Simd::bitmask_rows_f32`]) that keeps `x[0..384]` in registers for all of them, which saves
//! the `x` load of their first 24 chunks. bf16 rows of whole words take
//! [`Simd::bitmask_row_bf16`] where the level has one (AVX-512 with VBMI2: one `vpexpandw`
//! widens and expands a chunk). The chunk loop is unrolled by hand so the accumulators stay in
//! registers.
//!
//! **Same digits as dense.** Every `LANES`-column chunk goes into the accumulator it uses in the
//! dense GEMV ([`super::dense`]: four per row, by chunk index, the ragged end into the first), and
//! the accumulators are summed in the same order. A pruned weight contributes `0 × x = 0` to its
//! lane, so for finite activations `y` equals the dense GEMV of the matrix with its zeros bit for
//! bit (tested in `tests/props.rs`); decoding from bitmask or N:M storage gives the dense logits
//! exactly.
//!
//! N:M matrices use the same kernel through a mask derived from their per-group positions when
//! they are built (their values are stored group by group in column order, which is exactly the
//! bitmask order); their row `r` starts at value `r × (cols / m) × keep`.

use super::simd::{per_isa, Simd, Val};

/// Where each row's values start. Rows are contiguous: row `r + 1` starts where row `r`'s
/// values end (`start(r)` plus the popcount of its mask row), which the multi-row loop
/// ([`Simd::bitmask_rows_f32`]) relies on.
pub(crate) trait RowStarts: Sync {
    /// Position of the first value of row `r`.
    fn start(&self, r: usize) -> usize;
}

/// Bitmask rows: derived offsets.
pub(crate) struct OffsetStarts<'a>(pub &'a [usize]);

impl RowStarts for OffsetStarts<'_> {
    #[inline(always)]
    fn start(&self, r: usize) -> usize {
        self.0[r]
    }
}

/// N:M rows: a fixed number of values per row.
pub(crate) struct FixedStarts(pub usize);

impl RowStarts for FixedStarts {
    #[inline(always)]
    fn start(&self, r: usize) -> usize {
        r * self.0
    }
}

/// `y[i] += W[r0 + i, :] · x` for every `i < y.len()`; `mask` holds all rows' words
/// (`words_per_row = ceil(cols / 64)` each), `vals` all values.
///
/// # Safety
/// The mask rows `r0..r0 + y.len()` exist, padding bits beyond `cols = x.len()` are clear, and
/// row `r` owns the `popcount(mask row r)` values from `starts.start(r)` on, inside `vals` (all
/// established by `Bitmask::from_parts` / `NmMatrix::from_parts`); the CPU supports `S`.
#[inline(always)]
unsafe fn spmv_rows_body<S: Simd, V: Val, R: RowStarts>(
    mask: &[u64],
    starts: &R,
    r0: usize,
    vals: &[V::Raw],
    x: &[f32],
    y: &mut [f32],
) {
    let cols = x.len();
    let nv = vals.len();
    let mut first = 0; // the first row left to the one-row loop below
    if V::IS_F32 && cols.is_multiple_of(64) && !y.is_empty() {
        // Rows whose values are followed by at least `cols + LANES` more (all but the last few
        // of the matrix; `starts` increase with `r`, so they are the leading ones) may go
        // through the level's multi-row loop.
        let full = |i: usize| starts.start(r0 + i) + cols + S::LANES <= nv;
        let mut n_full = y.len();
        while n_full > 0 && !full(n_full - 1) {
            n_full -= 1;
        }
        let wpr = cols / 64;
        // SAFETY: rows `r0..r0 + n_full` have their `wpr` mask words (contract of this
        // function) and `x` has `64 wpr` columns; `y[..n_full]` is a separate buffer. A row's
        // values start where the previous row's end (the starts of `Bitmask` and `NmMatrix` are
        // the running popcounts of their rows, see `RowStarts`), and each of these rows has its
        // values and `LANES` more inside `vals` (`full`). `V::Raw` is f32.
        if n_full > 0
            && S::bitmask_rows_f32(
                mask.as_ptr().add(r0 * wpr),
                wpr,
                vals.as_ptr().add(starts.start(r0)).cast(),
                x.as_ptr(),
                y.as_mut_ptr(),
                n_full,
            )
        {
            first = n_full;
        }
    }
    for (i, yi) in y.iter_mut().enumerate().skip(first) {
        let r = r0 + i;
        let k = starts.start(r);
        // A row owns at most `cols` values, so when `cols + LANES` values follow its start every
        // expand of the row may read `LANES` values whole (no masked load); only the last rows
        // of the matrix take the exact-length path.
        *yi += if k + cols + S::LANES <= nv {
            spmv_row::<S, V, true>(mask, r, k, vals, x)
        } else {
            spmv_row::<S, V, false>(mask, r, k, vals, x)
        };
    }
}

/// Row `r` of the matrix times `x`, its values starting at `vals[k]`; `FULL`: every expand may
/// read `LANES` values.
///
/// # Safety
/// As [`spmv_rows_body`], for row `r`; with `FULL`, `k + x.len() + LANES <= vals.len()`.
#[inline(always)]
unsafe fn spmv_row<S: Simd, V: Val, const FULL: bool>(
    mask: &[u64],
    r: usize,
    mut k: usize,
    vals: &[V::Raw],
    x: &[f32],
) -> f32 {
    let l = S::LANES;
    let cols = x.len();
    let wpr = cols.div_ceil(64);
    let full_words = cols / 64;
    let lane_mask: u64 = if l == 64 { u64::MAX } else { (1u64 << l) - 1 };
    let vp = vals.as_ptr();
    let xp = x.as_ptr();
    // Chunks before these columns rotate over the four accumulators; the rest go into the
    // first, as in the dense kernel.
    let main4 = cols - cols % (4 * l);
    let words = mask.as_ptr().add(r * wpr);
    // Four accumulators: four independent FMA chains per 64 columns, in registers (the chunk
    // loop is unrolled by hand, so no accumulator is indexed dynamically).
    let (mut a0, mut a1, mut a2, mut a3) = (S::zero(), S::zero(), S::zero(), S::zero());
    // f32 rows of whole words with room to read whole chunks go through the level's
    // hand-scheduled loop when it has one.
    if FULL && V::IS_F32 && full_words == wpr {
        // SAFETY: the row's `wpr` mask words exist (contract of `spmv_rows_body`); `x` holds
        // `64 wpr` columns; `V::Raw` is f32, and with FULL the row's values and `LANES` more
        // are inside `vals`.
        if let Some(dot) = S::bitmask_row_f32(words, wpr, vp.add(k).cast(), xp) {
            return dot;
        }
    }
    if FULL && V::IS_BF16 && full_words == wpr {
        // SAFETY: as above; `V::Raw` is the bf16 bits (u16).
        if let Some(dot) = S::bitmask_row_bf16(words, wpr, vp.add(k).cast(), xp) {
            return dot;
        }
    }
    // Whole words: every column chunk is inside x.
    for j in 0..full_words {
        let word = *words.add(j);
        let xw = xp.add(j * 64);

        // One LANES-column chunk at offset `$q` of the word: the expand reads popcount(bits)
        // values of this row (inside `vals` by the contract), or LANES values with FULL.
        macro_rules! chunk {
            ($q:expr, $a:ident) => {{
                let bits = ((word >> $q) & lane_mask) as u32;
                let v = V::expand::<S>(bits, vp.add(k), FULL);
                $a = S::fma(v, S::load(xw.add($q)), $a);
                k += bits.count_ones() as usize;
            }};
        }
        if l == 16 {
            chunk!(0, a0);
            chunk!(16, a1);
            chunk!(32, a2);
            chunk!(48, a3);
        } else {
            debug_assert_eq!(l, 8);
            chunk!(0, a0);
            chunk!(8, a1);
            chunk!(16, a2);
            chunk!(24, a3);
            chunk!(32, a0);
            chunk!(40, a1);
            chunk!(48, a2);
            chunk!(56, a3);
        }
    }
    // The last, partial word: chunks past `cols` hold no bits; x is read with a masked load.
    if full_words < wpr {
        let word = *words.add(full_words);
        let mut q = 0;
        while full_words * 64 + q < cols {
            let bits = ((word >> q) & lane_mask) as u32;
            let c = full_words * 64 + q;
            let v = V::expand::<S>(bits, vp.add(k), FULL);
            let xv = S::load_n(xp.add(c), (cols - c).min(l));
            let acc = if c < main4 { (c / l) % 4 } else { 0 };
            match acc {
                1 => a1 = S::fma(v, xv, a1),
                2 => a2 = S::fma(v, xv, a2),
                3 => a3 = S::fma(v, xv, a3),
                _ => a0 = S::fma(v, xv, a0),
            }
            k += bits.count_ones() as usize;
            q += l;
        }
    }
    S::hsum(S::add(S::add(a0, a1), S::add(a2, a3)))
}

per_isa! {
    /// Bitmask/N:M SpMV over a block of rows (see [`spmv_rows_body`]).
    pub(crate) fn spmv_rows<V: Val, R: RowStarts>(
        mask: &[u64],
        starts: &R,
        r0: usize,
        vals: &[V::Raw],
        x: &[f32],
        y: &mut [f32],
    ) => spmv_rows_body
}
