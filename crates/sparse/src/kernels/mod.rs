//! Products of a stored matrix with dense vectors and matrices.
//!
//! [`reference`] holds plain scalar loops, the ground truth of the property tests. The functions
//! of this module are what the model calls; they dispatch to the fastest implementation for the
//! running CPU ([`Isa::active`]: AVX-512, AVX2+FMA or portable) and split the rows over the rayon
//! pool when the matrix is large enough to pay for it (inside a decode step, over the step's
//! spinning [`team`]).
//!
//! | product | dense | CSR / COO | bitmask / N:M |
//! | --- | --- | --- | --- |
//! | `gemv` (decode) | [`dense`] streaming GEMV | [`csr`] gather SpMV | [`bitmask`] expand SpMV, [`nm`] 2:4 select |
//! | `matmul` (prefill) | [`dense_mm`] (gemm crate) | [`spmm`] tiled Gustavson | [`spmm`] |
//!
//! The `*_isa` functions run one given ISA level (tests and benchmarks of every level); the others
//! use [`Isa::active`].

pub mod reference;

pub(crate) mod bitmask;
pub(crate) mod csr;
pub(crate) mod dense;
pub(crate) mod dense_mm;
pub(crate) mod nm;
pub mod simd;
pub(crate) mod spmm;
pub mod team;

use rayon::prelude::*;

pub use simd::Isa;

use crate::matrix::PackedMatrix;
use crate::values::ValueDtype;
use crate::values::{Indices, Values};
use bitmask::{FixedStarts, OffsetStarts};
use csr::{CooSpans, CsrSpans};
use simd::{Bf16, F16, F32, U16, U32};

/// Below this many bytes of matrix a product runs on the calling thread (the rayon fork/join
/// costs a few microseconds, the time to stream ~100 KiB).
const PAR_MIN_BYTES: usize = 192 * 1024;
/// From this many bytes on, rows are split into 4 blocks per thread (work stealing evens out a
/// thread slowed by other load).
const PAR_FINE_BYTES: usize = 8 << 20;

/// Runs `f(r0, y[r0..r1])` over blocks of rows, in parallel when `bytes` (what the product
/// reads) is large enough.
fn par_rows<F>(y: &mut [f32], bytes: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let rows = y.len();
    let threads = rayon::current_num_threads();
    if threads <= 1 || bytes < PAR_MIN_BYTES || rows < 2 {
        f(0, y);
        return;
    }
    let blocks = if bytes >= PAR_FINE_BYTES {
        4 * threads
    } else {
        threads
    };
    let chunk = rows.div_ceil(blocks);
    // Inside a decode step's team (see [`team`]), the same blocks go to its spinning threads.
    let in_team = team::with_current(|t| {
        t.map(|t| t.for_each_part(y.chunks_mut(chunk).collect(), |i, ys| f(i * chunk, ys)))
    });
    if in_team.is_some() {
        return;
    }
    y.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, ys)| f(i * chunk, ys));
}

/// `x` itself when it starts on a 64-byte boundary, else a copy of it that does (see
/// [`aligned_x`]).
enum AlignedX<'a> {
    Borrowed(&'a [f32]),
    /// `x` is `buf[skip..]`.
    Copied {
        buf: Vec<f32>,
        skip: usize,
    },
}

impl std::ops::Deref for AlignedX<'_> {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        match self {
            AlignedX::Borrowed(x) => x,
            AlignedX::Copied { buf, skip } => &buf[*skip..],
        }
    }
}

/// `x` on a 64-byte boundary, copied there when it is not.
///
/// The GEMV kernels read `x` in 64-byte vectors (AVX-512) once per row, so from a misaligned
/// `x` every such load spans two cache lines, an extra load slot in loops that are bound by
/// their loads (the bitmask loop: one value load, one `x` load per 16 columns). A `Vec<f32>`
/// from the global allocator is only 16-byte aligned, so the decode path's activations usually
/// are not. Measured on bitmask matrices of the default model's seven shapes, 30 layers
/// streamed from DRAM, `x` aligned and four bytes off alternating in one process (medians of
/// 12 each): at 70% sparsity 11.48 against 12.16 ms on one thread, 7.28 against 7.77 ms on two;
/// at 50%, 11.99 against 12.55 ms on one thread and no difference on two. The copy (a few KiB
/// per product) changes no value, so every output keeps its digits.
fn aligned_x(x: &[f32]) -> AlignedX<'_> {
    const ALIGN: usize = 64;
    if x.len() < 16 || (x.as_ptr() as usize).is_multiple_of(ALIGN) {
        return AlignedX::Borrowed(x);
    }
    let mut buf = vec![0f32; x.len() + ALIGN / 4 - 1];
    // The first element of `buf` on a 64-byte boundary: f32 elements are 4-byte aligned, so it
    // is at most 15 elements in.
    let skip = (ALIGN - buf.as_ptr() as usize % ALIGN) % ALIGN / 4;
    buf[skip..skip + x.len()].copy_from_slice(x);
    buf.truncate(skip + x.len());
    AlignedX::Copied { buf, skip }
}

fn check_isa(isa: Isa) {
    assert!(
        isa.supported(),
        "this CPU does not support the {isa} kernels (best: {})",
        Isa::detect()
    );
}

/// `y += W x`: `w (rows, cols)` dense f32 row-major, `x (cols)`, `y (rows)`.
///
/// # Panics
/// If a buffer length disagrees with the shape.
pub fn gemv_f32(w: &[f32], rows: usize, cols: usize, x: &[f32], y: &mut [f32]) {
    gemv_f32_isa(Isa::active(), w, rows, cols, x, y);
}

/// [`gemv_f32`] with the kernels of `isa`.
///
/// # Panics
/// If a buffer length disagrees with the shape, or the CPU lacks `isa`.
pub fn gemv_f32_isa(isa: Isa, w: &[f32], rows: usize, cols: usize, x: &[f32], y: &mut [f32]) {
    check_isa(isa);
    assert_eq!(w.len(), rows * cols);
    assert_eq!(x.len(), cols);
    assert_eq!(y.len(), rows);
    let x = aligned_x(x);
    par_rows(y, std::mem::size_of_val(w), |r0, ys| {
        dense_block::<F32>(isa, w, r0, &x, ys)
    });
}

/// `y (batch, rows) += x (batch, cols) Wᵀ` for a small batch, with the digits of [`gemv_f32`]
/// for every row of `x` (see [`gemv_batch_isa`]); `w (rows, cols)` dense f32 row-major.
///
/// # Panics
/// If a buffer length disagrees with the shape.
pub fn gemv_batch_f32(w: &[f32], rows: usize, cols: usize, x: &[f32], batch: usize, y: &mut [f32]) {
    let isa = Isa::active();
    assert_eq!(w.len(), rows * cols);
    assert_eq!(x.len(), batch * cols);
    assert_eq!(y.len(), batch * rows);
    batch_rows(rows, batch, std::mem::size_of_val(w), x, y, |r0, xb, ys| {
        dense_block::<F32>(isa, w, r0, xb, ys)
    });
}

/// Rows `r0..r0 + y.len()` of `W x` for a dense row-major `w (rows, x.len())`, on this thread.
///
/// # Panics
/// If `w` has fewer than `r0 + y.len()` rows.
fn dense_block<V: simd::Val>(isa: Isa, w: &[V::Raw], r0: usize, x: &[f32], y: &mut [f32]) {
    let cols = x.len();
    let w = &w[r0 * cols..(r0 + y.len()) * cols];
    // SAFETY: `isa` is supported (every caller passed `check_isa` or took `Isa::active()`);
    // the slice above holds exactly `y.len()` rows of `cols = x.len()`.
    unsafe { dense::gemv_rows::<V>(isa, w, x, y) }
}

/// Dispatches on the value array: binds the type `$V` (a [`simd::Val`]) and the raw slice `$v`.
macro_rules! with_values {
    ($values:expr, $V:ident, $v:ident => $body:expr) => {
        match $values {
            Values::F32($v) => {
                type $V = F32;
                $body
            }
            Values::Bf16($v) => {
                type $V = Bf16;
                $body
            }
            Values::F16($v) => {
                type $V = F16;
                $body
            }
        }
    };
}

/// Dispatches on an index array: binds the type `$I` (a [`simd::Idx`]) and the raw slice `$i`.
macro_rules! with_indices {
    ($indices:expr, $I:ident, $i:ident => $body:expr) => {
        match $indices {
            Indices::U16($i) => {
                type $I = U16;
                $body
            }
            Indices::U32($i) => {
                type $I = U32;
                $body
            }
        }
    };
}

/// `y += W x` for any stored matrix with the active ISA.
pub(crate) fn gemv(m: &PackedMatrix, x: &[f32], y: &mut [f32]) {
    gemv_isa(Isa::active(), m, x, y);
}

/// `y += W x` with the kernels of `isa`.
///
/// # Panics
/// If `x` or `y` has the wrong length, or the CPU lacks `isa`.
pub fn gemv_isa(isa: Isa, m: &PackedMatrix, x: &[f32], y: &mut [f32]) {
    check_isa(isa);
    let (rows, cols) = m.shape();
    assert_eq!(x.len(), cols, "gemv input length");
    assert_eq!(y.len(), rows, "gemv output length");
    if rows == 0 || cols == 0 {
        return;
    }
    let x = aligned_x(x);
    par_rows(y, m.nbytes(), |r0, ys| gemv_block(isa, m, r0, &x, ys));
}

/// One matrix of a [`gemv_many`] product.
#[derive(Clone, Copy, Debug)]
pub enum GemvWeight<'a> {
    /// Dense row-major f32 `(y.len(), x.len())`.
    DenseF32(&'a [f32]),
    /// Any stored matrix of shape `(y.len(), x.len())`.
    Packed(&'a PackedMatrix),
}

impl GemvWeight<'_> {
    fn nbytes(&self) -> usize {
        match self {
            GemvWeight::DenseF32(w) => std::mem::size_of_val(*w),
            GemvWeight::Packed(m) => m.nbytes(),
        }
    }

    /// `y += W x` on its own: [`gemv_f32_isa`] or [`gemv_isa`] (each splits its rows over the
    /// pool when it is large enough).
    fn gemv(&self, isa: Isa, x: &[f32], y: &mut [f32]) {
        match self {
            GemvWeight::DenseF32(w) => gemv_f32_isa(isa, w, y.len(), x.len(), x, y),
            GemvWeight::Packed(m) => gemv_isa(isa, m, x, y),
        }
    }

    /// `ys += W[r0..r0 + ys.len()] x` on this thread.
    fn block(&self, isa: Isa, r0: usize, x: &[f32], ys: &mut [f32]) {
        match self {
            GemvWeight::DenseF32(d) => dense_block::<F32>(isa, d, r0, x, ys),
            GemvWeight::Packed(m) => gemv_block(isa, m, r0, x, ys),
        }
    }
}

/// `y_i += W_i x` for several matrices that read the same vector (a layer's q, k and v, or its
/// gate and up projections), with the active ISA. When one of them is too small to split over
/// the pool on its own (a sparse GQA layer's k and v), all of them run in one fork/join: their
/// rows, one matrix after the other, are cut into runs of about equal bytes that the threads
/// share (separate calls would leave the other threads idle during the small matrices, and
/// each call pays a fork/join). Every output element has the digits [`gemv_isa`] gives it.
///
/// # Panics
/// If a matrix's shape disagrees with `x` and its output.
pub fn gemv_many(x: &[f32], products: Vec<(GemvWeight<'_>, &mut [f32])>) {
    gemv_many_isa(Isa::active(), x, products);
}

/// [`gemv_many`] with the kernels of `isa`.
///
/// # Panics
/// If a matrix's shape disagrees with `x` and its output, or the CPU lacks `isa`.
pub fn gemv_many_isa(isa: Isa, x: &[f32], products: Vec<(GemvWeight<'_>, &mut [f32])>) {
    check_isa(isa);
    let cols = x.len();
    for (w, y) in &products {
        match w {
            GemvWeight::DenseF32(d) => {
                assert_eq!(d.len(), y.len() * cols, "gemv_many dense weight length")
            }
            GemvWeight::Packed(m) => assert_eq!(m.shape(), (y.len(), cols), "gemv_many shape"),
        }
    }
    let total: usize = products.iter().map(|(w, _)| w.nbytes()).sum();
    let threads = rayon::current_num_threads();
    let xa = aligned_x(x);
    let x = &*xa;
    // All too small to split (they run on this thread), or all big enough to split on their
    // own: one product after the other. (One fork/join each measured a few percent faster than
    // one for all on the default model's dense q, k and v through rayon; inside a decode
    // step's team, where a split costs a barrier and no wake-up, one for all saved ~100 µs of a
    // bf16 token's ~8 ms, timed alternating in one process.)
    if threads <= 1
        || total < PAR_MIN_BYTES
        || (products.iter().all(|(w, _)| w.nbytes() >= PAR_MIN_BYTES)
            && team::with_current(|t| t.is_none()))
    {
        for (w, y) in products {
            w.gemv(isa, x, y);
        }
        return;
    }
    if cols == 0 {
        return; // every product is empty: y += 0
    }
    // The rows of all the matrices, one after the other, cut into `segments` runs of about
    // equal bytes (one per thread, as `par_rows` cuts one matrix; four per thread for large
    // products); a run can span the end of one matrix and the start of the next.
    let segments = if total >= PAR_FINE_BYTES {
        4 * threads
    } else {
        threads
    };
    let mut runs: Vec<Vec<(GemvWeight<'_>, usize, &mut [f32])>> =
        (0..segments).map(|_| Vec::new()).collect();
    let mut before = 0usize; // bytes of the matrices before this one
    for (w, y) in products {
        let (rows, bytes) = (y.len(), w.nbytes());
        let mut rest = y;
        let mut r0 = 0;
        for (s, run) in runs.iter_mut().enumerate() {
            // This run ends at byte `end` of the concatenation: row `r1` of this matrix.
            let end = ((s as u128 + 1) * total as u128 / segments as u128) as usize;
            let r1 = if end <= before {
                0
            } else {
                (((end - before) as u128 * rows as u128) / bytes.max(1) as u128).min(rows as u128)
                    as usize
            };
            let r1 = if s + 1 == segments { rows } else { r1.max(r0) };
            if r1 > r0 {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(r1 - r0);
                run.push((w, r0, head));
                rest = tail;
                r0 = r1;
            }
        }
        before += bytes;
    }
    // Inside a decode step's team (see [`team`]), the same runs go to its spinning threads.
    let in_team = team::with_current(|t| {
        t.map(|t| {
            t.for_each_part(std::mem::take(&mut runs), |_, run| {
                for (w, r0, ys) in run.iter_mut() {
                    w.block(isa, *r0, x, ys);
                }
            })
        })
    });
    if in_team.is_some() {
        return;
    }
    runs.into_par_iter().with_max_len(1).for_each(|run| {
        for (w, r0, ys) in run {
            w.block(isa, r0, x, ys);
        }
    });
}

/// `y (batch, rows) += x (batch, cols) Wᵀ` for a small batch with the active ISA (see
/// [`gemv_batch_isa`]).
pub(crate) fn gemv_batch(m: &PackedMatrix, x: &[f32], batch: usize, y: &mut [f32]) {
    gemv_batch_isa(Isa::active(), m, x, batch, y);
}

/// `y (batch, rows) += x (batch, cols) Wᵀ` for a small batch (a short prompt's prefill, a few
/// sequences decoded together) through the GEMV kernels of `isa`: every output element has the
/// digits [`gemv_isa`] gives for its row of `x`, so a prompt prefilled from dense and from
/// bitmask storage of the same weights gives the same hidden states bit for bit (the SpMM and
/// GEMM kernels sum in different orders). Blocks of rows of at most [`BATCH_BLOCK_BYTES`] are
/// multiplied with every vector in turn while they stay in cache, so the matrix is read from
/// memory about once; the GEMV kernels then run on cached rows, which for a batch of up to
/// [`GEMV_BATCH_MAX`] costs about what a register-blocked GEMM of so few rows does.
///
/// # Panics
/// If `x` or `y` has the wrong length, or the CPU lacks `isa`.
pub fn gemv_batch_isa(isa: Isa, m: &PackedMatrix, x: &[f32], batch: usize, y: &mut [f32]) {
    check_isa(isa);
    let (rows, cols) = m.shape();
    assert_eq!(x.len(), batch * cols, "gemv_batch input length");
    assert_eq!(y.len(), batch * rows, "gemv_batch output length");
    batch_rows(rows, batch, m.nbytes(), x, y, |r0, xb, ys| {
        gemv_block(isa, m, r0, xb, ys)
    });
}

/// The batch size up to which a layer's product runs through [`gemv_batch`] (see there);
/// larger batches go through the GEMM / SpMM kernels.
pub const GEMV_BATCH_MAX: usize = 8;

/// Matrix bytes per block of rows in [`gemv_batch_isa`] (a quarter of this CPU class's L2, so
/// the block, the vectors and the outputs stay cached across the batch).
const BATCH_BLOCK_BYTES: usize = 256 * 1024;

/// Runs `f(r0, x_b, out)` — rows `r0..r0 + out.len()` of the product with vector `x_b` — for
/// every block of rows and every vector of the batch, block-major, and adds the results into
/// `y (batch, rows)`. `bytes` is the matrix's size (sets the block height). An empty product
/// does nothing.
fn batch_rows<F>(rows: usize, batch: usize, bytes: usize, x: &[f32], y: &mut [f32], f: F)
where
    F: Fn(usize, &[f32], &mut [f32]) + Sync,
{
    if rows == 0 || batch == 0 || x.is_empty() {
        return;
    }
    let cols = x.len() / batch;
    let block = (BATCH_BLOCK_BYTES as u128 * rows as u128 / bytes.max(1) as u128)
        .clamp(1, rows as u128) as usize;
    let nblocks = rows.div_ceil(block);
    // One block: its (batch, block rows) products, each output starting from 0 so that adding
    // it to `y` below makes exactly the one addition `*y += dot` of the GEMV kernels.
    let run = |bi: usize| -> Vec<f32> {
        let r0 = bi * block;
        let nr = block.min(rows - r0);
        let mut out = vec![0.0f32; batch * nr];
        for (b, ob) in out.chunks_mut(nr).enumerate() {
            f(r0, &x[b * cols..(b + 1) * cols], ob);
        }
        out
    };
    let outs: Vec<Vec<f32>> =
        if rayon::current_num_threads() > 1 && bytes >= PAR_MIN_BYTES && nblocks > 1 {
            (0..nblocks).into_par_iter().map(run).collect()
        } else {
            (0..nblocks).map(run).collect()
        };
    for (bi, out) in outs.iter().enumerate() {
        let r0 = bi * block;
        let nr = out.len() / batch;
        for b in 0..batch {
            let yb = &mut y[b * rows + r0..b * rows + r0 + nr];
            for (yv, o) in yb.iter_mut().zip(&out[b * nr..(b + 1) * nr]) {
                *yv += o;
            }
        }
    }
}

/// Whether a 2:4 matrix's GEMV runs the bitmask kernel over its derived mask instead of the 2:4
/// select kernel: with f32 values on AVX-512 and rows wide enough for the multi-row loop
/// (whole 64-column words, at least [`simd::MULTI_ROW_WORDS`]), which keeps `x[0..384]` in
/// registers. Both read the same bytes (2.125 per weight); the multi-row loop measured faster
/// on the default model's 576- and 1536-column rows and on 4096-column rows (docs/results.md),
/// and it sums in the dense order, so the result equals the dense GEMV bit for bit.
pub(crate) fn nm24_by_mask(isa: Isa, dtype: ValueDtype, cols: usize) -> bool {
    isa == Isa::Avx512
        && dtype == ValueDtype::F32
        && cols.is_multiple_of(64)
        && cols / 64 >= simd::MULTI_ROW_WORDS
}

/// Rows `r0..r0 + y.len()` of `W x` for any stored matrix, on this thread.
fn gemv_block(isa: Isa, m: &PackedMatrix, r0: usize, x: &[f32], y: &mut [f32]) {
    let cols = x.len();
    // SAFETY (the sparse arms): `isa` passed `check_isa`; `r0 + y.len() <= rows` (the callers
    // split `0..rows`); the matrix passed `from_parts` (or was built by `from_dense`), which
    // validated what each kernel reads: CSR/COO, every row's span
    // inside `idx`/`vals` and every column index below `cols == x.len()`; bitmask, the mask
    // length (`rows × ceil(cols / 64)` words), clear padding bits, and each row's popcount
    // matching its values from `starts.start(r)` on (for N:M, the derived mask has exactly
    // `keep` bits per group); 2:4 under `fast24`, `rows × cols / 2` values and
    // `rows × cols / 8` index bytes.
    match m {
        PackedMatrix::Dense(d) => {
            with_values!(d.values(), V, v => dense_block::<V>(isa, v, r0, x, y))
        }
        PackedMatrix::Csr(c) => {
            let spans = CsrSpans(c.row_ptr());
            with_values!(c.values(), V, v => with_indices!(c.col_idx(), I, idx =>
                unsafe { csr::spmv_rows::<V, I, _>(isa, &spans, r0, idx, v, x, y) }))
        }
        PackedMatrix::Coo(c) => match c.row_idx() {
            Indices::U16(rows_idx) => {
                let spans = CooSpans(rows_idx.as_slice());
                with_values!(c.values(), V, v => with_indices!(c.col_idx(), I, idx =>
                    unsafe { csr::spmv_rows::<V, I, _>(isa, &spans, r0, idx, v, x, y) }))
            }
            Indices::U32(rows_idx) => {
                let spans = CooSpans(rows_idx.as_slice());
                with_values!(c.values(), V, v => with_indices!(c.col_idx(), I, idx =>
                    unsafe { csr::spmv_rows::<V, I, _>(isa, &spans, r0, idx, v, x, y) }))
            }
        },
        PackedMatrix::Bitmask(b) => {
            let starts = OffsetStarts(b.row_ptr());
            with_values!(b.values(), V, v =>
                unsafe { bitmask::spmv_rows::<V, _>(isa, b.mask(), &starts, r0, v, x, y) })
        }
        PackedMatrix::Nm(n)
            if nm::fast24(n.keep(), n.m(), cols)
                && !nm24_by_mask(isa, n.values().dtype(), cols) =>
        {
            with_values!(n.values(), V, v =>
                unsafe { nm::spmv24_rows::<V>(isa, v, n.indices(), r0, x, y) })
        }
        PackedMatrix::Nm(n) => {
            let starts = FixedStarts((cols / n.m()) * n.keep());
            with_values!(n.values(), V, v =>
                unsafe { bitmask::spmv_rows::<V, _>(isa, n.mask_words(), &starts, r0, v, x, y) })
        }
    }
}

/// `y += x Wᵀ` with the active ISA: `x (batch, cols)`, `y (batch, rows)`.
pub(crate) fn matmul(m: &PackedMatrix, x: &[f32], batch: usize, y: &mut [f32]) {
    matmul_isa(Isa::active(), m, x, batch, y);
}

/// A raw output pointer shared by tasks that write disjoint elements.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: the pointer is only dereferenced by SpMM tasks, each writing a set of elements no other
// task writes (see `matmul_isa`), while the owning `&mut [f32]` is borrowed for the whole call.
unsafe impl Send for SharedOut {}
// SAFETY: as above.
unsafe impl Sync for SharedOut {}
impl SharedOut {
    fn get(self) -> *mut f32 {
        self.0
    }
}

fn lanes(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 16,
        _ => 8,
    }
}

/// `y += x Wᵀ` with the kernels of `isa`.
///
/// # Panics
/// If `x` or `y` has the wrong length, or the CPU lacks `isa`.
pub fn matmul_isa(isa: Isa, m: &PackedMatrix, x: &[f32], batch: usize, y: &mut [f32]) {
    check_isa(isa);
    let (rows, cols) = m.shape();
    assert_eq!(x.len(), batch * cols, "matmul input length");
    assert_eq!(y.len(), batch * rows, "matmul output length");
    if batch == 0 || rows == 0 || cols == 0 {
        return;
    }
    if batch == 1 {
        return gemv_isa(isa, m, x, y);
    }
    if let PackedMatrix::Dense(d) = m {
        return dense_mm::matmul(d.values(), rows, cols, x, batch, y);
    }
    let tw = spmm::tile_width(lanes(isa), cols, batch);
    let ntiles = batch.div_ceil(tw);
    let mut xt = vec![0f32; ntiles * cols * tw];
    let transpose =
        |(t, tile): (usize, &mut [f32])| spmm::transpose_tile(x, batch, cols, t * tw, tw, tile);
    if ntiles * cols * tw >= PAR_MIN_BYTES / 4 {
        xt.par_chunks_mut(cols * tw).enumerate().for_each(transpose);
    } else {
        xt.chunks_mut(cols * tw).enumerate().for_each(transpose);
    }
    let nrb = rows.div_ceil(spmm::RB);
    let out = SharedOut(y.as_mut_ptr());
    let task = |i: usize| {
        let (t, rb) = (i / nrb, i % nrb);
        let r0 = rb * spmm::RB;
        spmm::Task {
            out: out.get(),
            rows,
            r0,
            nr: spmm::RB.min(rows - r0),
            b0: t * tw,
            nb: tw.min(batch - t * tw),
        }
    };
    let tile = |i: usize| &xt[(i / nrb) * cols * tw..(i / nrb + 1) * cols * tw];
    let run = |f: &(dyn Fn(usize) + Sync)| {
        if m.nbytes() * ntiles >= PAR_MIN_BYTES && rayon::current_num_threads() > 1 {
            (0..ntiles * nrb).into_par_iter().for_each(f);
        } else {
            (0..ntiles * nrb).for_each(f);
        }
    };
    // SAFETY (all tasks below): `isa` passed `check_isa`; the matrix passed `from_parts`
    // validation (spans/popcounts inside the value and index arrays, indices and set bits below
    // `cols`); each tile has `cols × tw` elements with `tw = NV × lanes(isa)`; task `i` writes
    // exactly the elements `(b, r)` of `y` with `b` in its tile's `b0..b0 + nb` (< batch) and
    // `r` in its `r0..r0 + nr` (< rows), and distinct tasks have distinct (tile, row block)
    // pairs, so no element is written by two tasks; `y` stays mutably borrowed until they end.
    match m {
        PackedMatrix::Dense(_) => unreachable!(),
        PackedMatrix::Csr(c) => {
            let spans = CsrSpans(c.row_ptr());
            with_values!(c.values(), V, v => with_indices!(c.col_idx(), I, idx =>
                run(&|i| unsafe { spmm::csr_task::<V, I, _>(isa, &spans, idx, v, tile(i), tw, task(i)) })))
        }
        PackedMatrix::Coo(c) => match c.row_idx() {
            Indices::U16(ri) => {
                let spans = CooSpans(ri.as_slice());
                with_values!(c.values(), V, v => with_indices!(c.col_idx(), I, idx =>
                    run(&|i| unsafe { spmm::csr_task::<V, I, _>(isa, &spans, idx, v, tile(i), tw, task(i)) })))
            }
            Indices::U32(ri) => {
                let spans = CooSpans(ri.as_slice());
                with_values!(c.values(), V, v => with_indices!(c.col_idx(), I, idx =>
                    run(&|i| unsafe { spmm::csr_task::<V, I, _>(isa, &spans, idx, v, tile(i), tw, task(i)) })))
            }
        },
        PackedMatrix::Bitmask(b) => {
            let starts = OffsetStarts(b.row_ptr());
            with_values!(b.values(), V, v =>
                run(&|i| unsafe { spmm::bitmask_task::<V, _>(isa, b.mask(), &starts, v, cols, tile(i), tw, task(i)) }))
        }
        PackedMatrix::Nm(n) => {
            let starts = FixedStarts((cols / n.m()) * n.keep());
            with_values!(n.values(), V, v =>
                run(&|i| unsafe { spmm::bitmask_task::<V, _>(isa, n.mask_words(), &starts, v, cols, tile(i), tw, task(i)) }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_x_copies_misaligned_vectors_to_a_64_byte_boundary() {
        let buf: Vec<f32> = (0..200).map(|i| i as f32 * 0.5 - 7.0).collect();
        let mut copied = 0;
        for start in 0..16 {
            let x = &buf[start..start + 150];
            let a = aligned_x(x);
            assert_eq!(&*a, x, "start {start}: values");
            assert_eq!(a.as_ptr() as usize % 64, 0, "start {start}: alignment");
            match a {
                AlignedX::Borrowed(b) => assert_eq!(b.as_ptr(), x.as_ptr()),
                AlignedX::Copied { .. } => copied += 1,
            }
        }
        // Exactly one of 16 consecutive 4-byte offsets is already on a 64-byte boundary.
        assert_eq!(copied, 15);
        // Short vectors are left where they are.
        assert!(matches!(aligned_x(&buf[1..9]), AlignedX::Borrowed(_)));
    }

    /// A 2:4 matrix with f32 values and rows of six words or more takes the multi-row bitmask
    /// loop on AVX-512 (`nm24_by_mask`), so its GEMV has the dense digits bit for bit; narrower
    /// rows, 16-bit values and the other levels keep the 2:4 select kernel.
    #[test]
    fn nm24_rows_of_six_words_take_the_multi_row_loop_with_the_dense_digits() {
        assert!(nm24_by_mask(Isa::Avx512, ValueDtype::F32, 576));
        assert!(nm24_by_mask(Isa::Avx512, ValueDtype::F32, 384));
        assert!(!nm24_by_mask(Isa::Avx512, ValueDtype::F32, 320));
        assert!(!nm24_by_mask(Isa::Avx512, ValueDtype::F32, 608));
        assert!(!nm24_by_mask(Isa::Avx512, ValueDtype::Bf16, 576));
        assert!(!nm24_by_mask(Isa::Avx2, ValueDtype::F32, 576));
        if !Isa::available().contains(&Isa::Avx512) {
            println!("skipped: this CPU has no AVX-512, the only level that takes the loop");
            return;
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (rows, cols) in [(300, 576), (97, 1536), (41, 384), (9, 4096)] {
            // (rows, cols): two random values kept in each group of four.
            let mut w = vec![0f32; rows * cols];
            for g in w.chunks_mut(4) {
                let a = (next() % 4) as usize;
                let b = (a + 1 + (next() % 3) as usize) % 4;
                for j in [a, b] {
                    g[j] = (next() % 2001) as f32 / 1000.0 - 1.0 + 1e-3;
                }
            }
            let x: Vec<f32> = (0..cols)
                .map(|_| (next() % 2001) as f32 / 500.0 - 2.0)
                .collect();
            let nm = PackedMatrix::encode(&w, rows, cols, Some(crate::Format::Nm), ValueDtype::F32)
                .unwrap();
            assert!(matches!(nm, PackedMatrix::Nm(ref n) if n.keep() == 2 && n.m() == 4));
            let dense =
                PackedMatrix::encode(&w, rows, cols, Some(crate::Format::Dense), ValueDtype::F32)
                    .unwrap();
            let (mut ys, mut yd) = (vec![0.5f32; rows], vec![0.5f32; rows]);
            gemv_isa(Isa::Avx512, &nm, &x, &mut ys);
            gemv_isa(Isa::Avx512, &dense, &x, &mut yd);
            let same = ys.iter().zip(&yd).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same,
                "2:4 {rows}x{cols}: {:?} vs dense {:?}",
                &ys[..3],
                &yd[..3]
            );
        }
    }
}
