//! Sparse matrix × dense matrix (prefill, perplexity): `y += x Wᵀ` with `x (batch, cols)`,
//! `y (batch, rows)` row-major, for CSR, COO, bitmask and N:M.
//!
//! The row-wise "Gustavson" SpMM (Gustavson, "Two fast algorithms for sparse matrices", ACM TOMS
//! 1978) in the register-blocked form of Intel MKL's CSR×dense and of Yang, Buluç & Owens,
//! "Design Principles for Sparse Matrix Multiplication on the GPU" (Euro-Par 2018): `x` is first
//! transposed into tiles `xt[c][0..TW]` of `TW = NV × LANES` batch rows (zero-padded), so the
//! `TW` activations of one column are contiguous. For each stored entry `(r, c, v)` the kernel
//! broadcasts `v` and does `NV` FMAs `acc[r][..] += v × xt[c][..]`, with the `NV` accumulators of
//! row `r` in registers for the whole row (two alternating sets, so 2·NV independent FMA chains
//! hide the FMA latency). Each stored value is thus read once per tile, not once per batch row,
//! and each FMA does `LANES` useful multiply-adds. `NV` is chosen so a tile (`cols × TW × 4`
//! bytes) fits in L2. Work is split into (tile, block of `RB` rows) tasks; a task transposes its
//! `RB × TW` results back into `y` (disjoint elements per task).

use super::bitmask::RowStarts;
use super::csr::RowSpans;
use super::simd::{per_isa, Idx, Simd, Val};

/// Rows per task.
pub(crate) const RB: usize = 32;
/// Widest tile (AVX-512, NV = 4).
pub(crate) const MAX_TW: usize = 64;
/// Largest transposed tile, bytes (half of this CPU class's 1 MiB L2).
const TILE_BYTES: usize = 512 * 1024;

/// The tile width for `lanes`-wide vectors: `NV × lanes` with `NV` in {1, 2, 4}, as wide as the
/// batch needs and the L2 budget allows.
pub(crate) fn tile_width(lanes: usize, cols: usize, batch: usize) -> usize {
    let mut nv = 4;
    while nv > 1 && (cols * nv * lanes * 4 > TILE_BYTES || (nv / 2) * lanes >= batch) {
        nv /= 2;
    }
    nv * lanes
}

/// Transposes batch rows `b0..b0 + tw` of `x (batch, cols)` into `out (cols, tw)`, zero-padding
/// rows past `batch`.
pub(crate) fn transpose_tile(
    x: &[f32],
    batch: usize,
    cols: usize,
    b0: usize,
    tw: usize,
    out: &mut [f32],
) {
    debug_assert_eq!(out.len(), cols * tw);
    let nb = (batch - b0).min(tw);
    if nb < tw {
        out.fill(0.0);
    }
    // Blocks of 64 columns keep both the reads and the writes within a few cache lines.
    for c0 in (0..cols).step_by(64) {
        let c1 = (c0 + 64).min(cols);
        for l in 0..nb {
            let src = &x[(b0 + l) * cols + c0..(b0 + l) * cols + c1];
            for (j, &v) in src.iter().enumerate() {
                out[(c0 + j) * tw + l] = v;
            }
        }
    }
}

/// Writes a task's `RB × tw` block into `y`: `y[(b0 + l) * rows + r0 + i] += buf[i * tw + l]`.
///
/// # Safety
/// `out` addresses `y (batch, rows)`, `r0 + nr <= rows`, `b0 + nb <= batch`, and no other thread
/// touches these elements meanwhile.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn write_back(
    buf: &[f32],
    tw: usize,
    nr: usize,
    nb: usize,
    out: *mut f32,
    rows: usize,
    r0: usize,
    b0: usize,
) {
    for l in 0..nb {
        let dst = out.add((b0 + l) * rows + r0);
        for i in 0..nr {
            *dst.add(i) += buf[i * tw + l];
        }
    }
}

/// One task of CSR/COO SpMM: rows `r0..r0 + nr`, batch rows `b0..b0 + nb` of the tile `xt`.
///
/// # Safety
/// Spans inside `idx`/`vals`, indices below `cols` (format validation); `xt.len() == cols × tw`;
/// `tw == NV × S::LANES` for some NV in {1, 2, 4}; the [`write_back`] contract; the CPU
/// supports `S`.
#[inline(always)]
unsafe fn csr_task_body<S: Simd, V: Val, I: Idx, R: RowSpans>(
    spans: &R,
    idx: &[I::Raw],
    vals: &[V::Raw],
    xt: &[f32],
    tw: usize,
    task: Task,
) {
    match tw / S::LANES {
        1 => csr_task_nv::<S, V, I, R, 1>(spans, idx, vals, xt, task),
        2 => csr_task_nv::<S, V, I, R, 2>(spans, idx, vals, xt, task),
        _ => csr_task_nv::<S, V, I, R, 4>(spans, idx, vals, xt, task),
    }
}

/// Where a task writes.
#[derive(Clone, Copy)]
pub(crate) struct Task {
    /// `y`'s data.
    pub out: *mut f32,
    /// `y`'s row length (the matrix's rows).
    pub rows: usize,
    /// First matrix row.
    pub r0: usize,
    /// Matrix rows of the task (at most [`RB`]).
    pub nr: usize,
    /// First batch row of the tile.
    pub b0: usize,
    /// Valid batch rows of the tile.
    pub nb: usize,
}

#[inline(always)]
unsafe fn fma_entry<S: Simd, const NV: usize>(acc: &mut [S::F; NV], v: f32, p: *const f32) {
    let s = S::splat(v);
    for (j, a) in acc.iter_mut().enumerate() {
        *a = S::fma(s, S::load(p.add(j * S::LANES)), *a);
    }
}

#[inline(always)]
unsafe fn store_row<S: Simd, const NV: usize>(buf: &mut [f32], a: &[S::F; NV], b: &[S::F; NV]) {
    for j in 0..NV {
        S::store(buf.as_mut_ptr().add(j * S::LANES), S::add(a[j], b[j]));
    }
}

#[inline(always)]
unsafe fn csr_task_nv<S: Simd, V: Val, I: Idx, R: RowSpans, const NV: usize>(
    spans: &R,
    idx: &[I::Raw],
    vals: &[V::Raw],
    xt: &[f32],
    t: Task,
) {
    let tw = NV * S::LANES;
    let mut buf = [0f32; RB * MAX_TW];
    let xp = xt.as_ptr();
    for i in 0..t.nr {
        let (a, b) = spans.span(t.r0 + i);
        let mut acc0 = [S::zero(); NV];
        let mut acc1 = [S::zero(); NV];
        let mut k = a;
        while k + 2 <= b {
            // Indices are below cols, so `c * tw + tw <= xt.len()`.
            let c0 = I::get(*idx.get_unchecked(k));
            let c1 = I::get(*idx.get_unchecked(k + 1));
            let v0 = V::widen(*vals.get_unchecked(k));
            let v1 = V::widen(*vals.get_unchecked(k + 1));
            fma_entry::<S, NV>(&mut acc0, v0, xp.add(c0 * tw));
            fma_entry::<S, NV>(&mut acc1, v1, xp.add(c1 * tw));
            k += 2;
        }
        if k < b {
            let c0 = I::get(*idx.get_unchecked(k));
            fma_entry::<S, NV>(&mut acc0, V::widen(*vals.get_unchecked(k)), xp.add(c0 * tw));
        }
        store_row::<S, NV>(&mut buf[i * tw..(i + 1) * tw], &acc0, &acc1);
    }
    write_back(&buf, tw, t.nr, t.nb, t.out, t.rows, t.r0, t.b0);
}

per_isa! {
    /// One CSR/COO SpMM task (see [`csr_task_body`]).
    pub(crate) fn csr_task<V: Val, I: Idx, R: RowSpans>(
        spans: &R,
        idx: &[I::Raw],
        vals: &[V::Raw],
        xt: &[f32],
        tw: usize,
        task: Task,
    ) => csr_task_body
}

/// One task of bitmask/N:M SpMM.
///
/// # Safety
/// The bitmask contract of `kernels::bitmask` for rows `r0..r0 + nr` (with `cols` columns), the
/// tile and write-back contracts of [`csr_task_body`].
#[inline(always)]
unsafe fn bitmask_task_body<S: Simd, V: Val, R: RowStarts>(
    mask: &[u64],
    starts: &R,
    vals: &[V::Raw],
    cols: usize,
    xt: &[f32],
    tw: usize,
    task: Task,
) {
    match tw / S::LANES {
        1 => bitmask_task_nv::<S, V, R, 1>(mask, starts, vals, cols, xt, task),
        2 => bitmask_task_nv::<S, V, R, 2>(mask, starts, vals, cols, xt, task),
        _ => bitmask_task_nv::<S, V, R, 4>(mask, starts, vals, cols, xt, task),
    }
}

#[inline(always)]
unsafe fn bitmask_task_nv<S: Simd, V: Val, R: RowStarts, const NV: usize>(
    mask: &[u64],
    starts: &R,
    vals: &[V::Raw],
    cols: usize,
    xt: &[f32],
    t: Task,
) {
    let tw = NV * S::LANES;
    let wpr = cols.div_ceil(64);
    let mut buf = [0f32; RB * MAX_TW];
    let xp = xt.as_ptr();
    let vp = vals.as_ptr();
    for i in 0..t.nr {
        let r = t.r0 + i;
        let mut k = starts.start(r);
        let mut acc0 = [S::zero(); NV];
        let mut acc1 = [S::zero(); NV];
        for j in 0..wpr {
            // Set bits are columns below cols (padding bits are clear), and each consumes one of
            // the row's values.
            let mut w = *mask.get_unchecked(r * wpr + j);
            while w != 0 {
                let c0 = j * 64 + w.trailing_zeros() as usize;
                w &= w - 1;
                let v0 = V::widen(*vp.add(k));
                if w != 0 {
                    let c1 = j * 64 + w.trailing_zeros() as usize;
                    w &= w - 1;
                    let v1 = V::widen(*vp.add(k + 1));
                    fma_entry::<S, NV>(&mut acc0, v0, xp.add(c0 * tw));
                    fma_entry::<S, NV>(&mut acc1, v1, xp.add(c1 * tw));
                    k += 2;
                } else {
                    fma_entry::<S, NV>(&mut acc0, v0, xp.add(c0 * tw));
                    k += 1;
                }
            }
        }
        store_row::<S, NV>(&mut buf[i * tw..(i + 1) * tw], &acc0, &acc1);
    }
    write_back(&buf, tw, t.nr, t.nb, t.out, t.rows, t.r0, t.b0);
}

per_isa! {
    /// One bitmask/N:M SpMM task (see [`bitmask_task_body`]).
    pub(crate) fn bitmask_task<V: Val, R: RowStarts>(
        mask: &[u64],
        starts: &R,
        vals: &[V::Raw],
        cols: usize,
        xt: &[f32],
        tw: usize,
        task: Task,
    ) => bitmask_task_body
}
