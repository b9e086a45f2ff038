//! Measured memory bandwidth: the ceiling of memory-bound decoding.
//!
//! STREAM-style loops (McCalpin, "Memory Bandwidth and Machine Balance in Current High
//! Performance Computers", IEEE TCCA Newsletter 1995) over a buffer far larger than the last-level
//! cache, on every thread of the current rayon pool (each thread streams its own contiguous
//! share, the pages first touched by that thread), best of a few runs:
//!
//! - **read**: a SIMD sum of f32 (what a GEMV does with its weights), bytes read / time;
//! - **copy**: `dst.copy_from_slice(src)`, counted as STREAM counts it: bytes read + bytes
//!   written / time (the write-allocate traffic is not counted).
//!
//! Both return GB/s (10⁹ bytes per second).

use std::time::Instant;

use rayon::prelude::*;

use crate::kernels::simd::{per_isa, Isa, Simd};

/// Default buffer: 512 MiB, 16× a 32 MiB L3.
pub const DEFAULT_BYTES: usize = 512 << 20;
/// Default number of timed runs (the best is kept).
pub const DEFAULT_RUNS: usize = 5;

/// Read bandwidth (GB/s) over [`DEFAULT_BYTES`], best of [`DEFAULT_RUNS`].
pub fn measure_read_bandwidth() -> f64 {
    measure_read_bandwidth_with(DEFAULT_BYTES, DEFAULT_RUNS)
}

/// Copy bandwidth (GB/s, read + written bytes) over [`DEFAULT_BYTES`] (source and destination
/// of half that each), best of [`DEFAULT_RUNS`].
pub fn measure_copy_bandwidth() -> f64 {
    measure_copy_bandwidth_with(DEFAULT_BYTES, DEFAULT_RUNS)
}

/// Splits `n` elements into one contiguous share per thread (64-byte aligned boundaries).
fn share(n: usize) -> usize {
    n.div_ceil(rayon::current_num_threads().max(1))
        .next_multiple_of(16)
        .max(16)
}

/// Read bandwidth (GB/s) over a `bytes` buffer, best of `runs`.
pub fn measure_read_bandwidth_with(bytes: usize, runs: usize) -> f64 {
    let n = (bytes / 4).max(16);
    let chunk = share(n);
    let mut buf = vec![0f32; n];
    // First touch by the threads that will read (page placement), and nothing all-zero that a
    // clever OS could map to one page.
    buf.par_chunks_mut(chunk).for_each(|c| {
        c.iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x = (i % 7) as f32)
    });
    let isa = Isa::active();
    let mut best = f64::MAX;
    let mut sink = 0f32;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        sink += buf
            .par_chunks(chunk)
            // SAFETY: `isa` is the active level, which `Isa::active` only returns when supported;
            // `sum_body` reads exactly the slice it is given.
            .map(|c| unsafe { sum(isa, c) })
            .sum::<f32>();
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(sink);
    (n * 4) as f64 / best / 1e9
}

/// Copy bandwidth (GB/s, bytes read + bytes written) with `bytes / 2` each of source and
/// destination, best of `runs`.
pub fn measure_copy_bandwidth_with(bytes: usize, runs: usize) -> f64 {
    let n = (bytes / 8).max(16);
    let chunk = share(n);
    let mut src = vec![0f32; n];
    let mut dst = vec![0f32; n];
    src.par_chunks_mut(chunk).for_each(|c| {
        c.iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x = (i % 7) as f32)
    });
    dst.par_chunks_mut(chunk).for_each(|c| c.fill(1.0));
    let mut best = f64::MAX;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        dst.par_chunks_mut(chunk)
            .zip(src.par_chunks(chunk))
            .for_each(|(d, s)| d.copy_from_slice(s));
        best = best.min(t.elapsed().as_secs_f64());
        std::hint::black_box(&dst);
    }
    (2 * n * 4) as f64 / best / 1e9
}

/// Sum of `x` with four independent vector accumulators.
///
/// # Safety
/// The CPU supports `S`.
#[inline(always)]
unsafe fn sum_body<S: Simd>(x: &[f32], out: &mut f32) {
    let l = S::LANES;
    let p = x.as_ptr();
    let n = x.len();
    let mut a = [S::zero(); 4];
    let mut i = 0;
    while i + 4 * l <= n {
        for (j, acc) in a.iter_mut().enumerate() {
            *acc = S::add(*acc, S::load(p.add(i + j * l)));
        }
        i += 4 * l;
    }
    while i < n {
        a[0] = S::add(a[0], S::load_n(p.add(i), (n - i).min(l)));
        i += l;
    }
    *out = S::hsum(S::add(S::add(a[0], a[1]), S::add(a[2], a[3])));
}

per_isa! {
    fn sum_isa<>(x: &[f32], out: &mut f32) => sum_body
}

/// # Safety
/// `isa.supported()`.
unsafe fn sum(isa: Isa, x: &[f32]) -> f32 {
    let mut s = 0.0;
    sum_isa(isa, x, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_buffers_give_positive_bandwidth() {
        assert!(measure_read_bandwidth_with(1 << 20, 2) > 0.0);
        assert!(measure_copy_bandwidth_with(1 << 20, 2) > 0.0);
    }

    #[test]
    fn sum_is_correct_on_every_level() {
        let x: Vec<f32> = (0..1001).map(|i| (i % 5) as f32).collect();
        let want: f32 = x.iter().sum();
        for isa in Isa::available() {
            // SAFETY: `available` lists supported levels only.
            let got = unsafe { sum(isa, &x) };
            assert_eq!(got, want, "{isa}");
        }
    }
}
