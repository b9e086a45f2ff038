//! Dense GEMV `y += W x` (f32, bf16, f16 weights; f32 activations and accumulation).
//!
//! A memory-bound streaming dot product (Williams, Waterman & Patterson, "Roofline", CACM 2009:
//! at one multiply-add per weight, GEMV's arithmetic intensity is far below any CPU's ridge point,
//! so the only goal is to stream `W` at full memory bandwidth). Rows are processed one at a time
//! with four accumulators (four independent FMA chains hide the FMA latency when `W` comes from
//! cache); 16-bit weights are
//! widened in registers (bf16: zero-extend and shift left 16; f16: `vcvtph2ps`), so the bytes read
//! per weight are the stored ones. Row tails use masked loads.
//!
//! With 16-lane vectors (AVX-512, 32 registers) the first [`XREG_CHUNKS`] chunks of `x` stay in
//! registers for every row of the block ([`gemv_rows_xreg`]): streaming from DRAM, the loop is
//! bound by how many loads the core keeps in flight, not by arithmetic, and an `x` load per
//! 16 weights halves the weight bytes each load slot brings in for bf16 (a 32-byte weight load
//! and a 64-byte `x` load per 16 columns). Each row's chunks go into the same accumulators in the
//! same order as in the plain loop, so the digits do not change.

use super::simd::{per_isa, Simd, Val};

/// `y[i] += W[i, :] · x` for the `y.len()` rows stored at the start of `w`: [`gemv_rows_xreg`]
/// where it applies, else [`gemv_rows_plain_body`] (the same digits either way).
///
/// # Safety
/// `w.len() >= y.len() * x.len()`; the CPU supports `S`.
#[inline(always)]
unsafe fn gemv_rows_body<S: Simd, V: Val>(w: &[V::Raw], x: &[f32], y: &mut [f32]) {
    let cols = x.len();
    if S::LANES == 16 && cols.is_multiple_of(4 * S::LANES) && cols >= XREG_CHUNKS * S::LANES {
        if !V::IS_F32 && prefetch_16bit() {
            gemv_rows_xreg::<S, V, true>(w, x, y);
        } else {
            gemv_rows_xreg::<S, V, false>(w, x, y);
        }
    } else {
        gemv_rows_plain_body::<S, V>(w, x, y);
    }
}

/// Chunks `c / LANES ..+ 4` of a row whose weights start at `p`: chunk `q` into accumulator
/// `q`, with its part of `x` loaded from `xp`.
///
/// # Safety
/// `p[c..c + 4 LANES]` and `xp[c..c + 4 LANES]` are readable; the CPU supports `S`.
#[inline(always)]
unsafe fn four_chunks<S: Simd, V: Val>(
    p: *const V::Raw,
    xp: *const f32,
    c: usize,
    (a0, a1, a2, a3): (S::F, S::F, S::F, S::F),
) -> (S::F, S::F, S::F, S::F) {
    let l = S::LANES;
    (
        S::fma(V::load::<S>(p.add(c)), S::load(xp.add(c)), a0),
        S::fma(V::load::<S>(p.add(c + l)), S::load(xp.add(c + l)), a1),
        S::fma(
            V::load::<S>(p.add(c + 2 * l)),
            S::load(xp.add(c + 2 * l)),
            a2,
        ),
        S::fma(
            V::load::<S>(p.add(c + 3 * l)),
            S::load(xp.add(c + 3 * l)),
            a3,
        ),
    )
}

/// The plain loop of [`gemv_rows_body`]: `x` loaded beside every chunk of weights.
///
/// # Safety
/// As [`gemv_rows_body`].
#[inline(always)]
unsafe fn gemv_rows_plain_body<S: Simd, V: Val>(w: &[V::Raw], x: &[f32], y: &mut [f32]) {
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
            (a0, a1, a2, a3) = four_chunks::<S, V>(p, xp, c, (a0, a1, a2, a3));
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

/// Chunks of `x` (16 columns each) that [`gemv_rows_xreg`] keeps in registers: 24 of the 32
/// vector registers, next to four accumulators and the widened weights.
///
/// Measured on Zen 4 (2 threads) with the default model's weight stream (`cargo bench -p
/// secateurs-sparse --bench decode_stream`, `DECODE_STREAM=bf16`: 30 layers' seven matrices of
/// 576 and 1536 columns and the 49152 × 576 head; the plain loop and this one alternating in
/// each of 30 rounds, each round after a read-bandwidth probe). In the rounds whose probe read
/// 53–62 GB/s: bf16 weights 31.7–34.4 GB/s (median 33.0, 56% of the probe) with the plain loop
/// against 45.7–51.2 (median 48.4, 81%); f32 weights 37.7–46.7 (median 43.8, 75%) against
/// 44.1–51.7 (median 48.9, 84%). In the rounds whose probe read 33–36 GB/s: bf16 28.8–30.2
/// against 33.9–39.4, f32 30.7–33.2 against 32.5–33.8. A timing-only variant with no `x` loads
/// at all had moved bf16 from 26.6–30.5 to 31.3–37.3 GB/s in other slow rounds, so the `x`
/// loads, not the widening, held it back.
const XREG_CHUNKS: usize = 24;

/// How far ahead of the weights being read [`gemv_rows_xreg`] prefetches 16-bit weights, bytes:
/// one `prefetcht0` per 64-byte line. Measured on an Intel Xeon with AVX-512 and AMX (2 vCPUs,
/// read probe ~30 GB/s), the default model decoding in bf16 (`bench decode --dtype bf16`, runs
/// with and without the prefetch alternating in one process, four pairs each, ms per token):
/// 1536 bytes ahead, 12.6–14.6 against 14.1–15.1 without, and 13.5–14.7 against 15.0–15.4 in a
/// second process; 768, 14.0–15.0 against 15.0–15.5; 2048, 14.2–15.2 against 15.4–16.1; 3072,
/// 14.5–15.9 against 14.0–14.6 (slower); one prefetch per two lines 1024 bytes ahead,
/// 14.0–14.9 against 14.8–15.0. f32 weights gained nothing: one prefetch per four lines 1024
/// bytes ahead, 21.3–22.5 against 21.5–21.9; one per two lines, 22.3–24.0 against 21.8–22.3
/// (slower); so their loop has none. On Zen 4 (2 vCPUs, AMD EPYC family 25 model 17) the same
/// prefetch slows bf16 down: runs without it, 1536 and 4096 bytes ahead alternating, three of
/// each, gave 114.4, 111.1, 116.0 tokens/s (86–92% of the probe, median column) against 95.8,
/// 106.9, 105.7 (66–82%) and 102.8, 103.8, 106.9 (75–79%), so only Intel CPUs take it
/// ([`prefetch_16bit`]).
const PREFETCH_16BIT: usize = 1536;

/// Whether [`gemv_rows_xreg`] prefetches 16-bit weights: on Intel CPUs (CPUID vendor
/// `GenuineIntel`), where it was measured faster; not elsewhere (slower on Zen 4, unmeasured on
/// other CPUs, whose hardware prefetchers then work alone). Read once per process.
fn prefetch_16bit() -> bool {
    static INTEL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *INTEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            // Leaf 0: the vendor string in ebx, edx, ecx.
            let r = std::arch::x86_64::__cpuid(0);
            let mut v = [0u8; 12];
            v[0..4].copy_from_slice(&r.ebx.to_le_bytes());
            v[4..8].copy_from_slice(&r.edx.to_le_bytes());
            v[8..12].copy_from_slice(&r.ecx.to_le_bytes());
            &v == b"GenuineIntel"
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Asks for the cache line [`PREFETCH_16BIT`] bytes after `p` (a hint: never faults, so the
/// address may lie past the matrix; it is formed with wrapping arithmetic for that reason).
#[inline(always)]
fn prefetch_ahead<R>(p: *const R) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` (SSE, part of x86-64's baseline) reads no memory architecturally
    // and cannot fault, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            p.cast::<i8>().wrapping_add(PREFETCH_16BIT),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// [`gemv_rows_body`] for 16-lane vectors and rows of a whole number of 64-column words, at least
/// [`XREG_CHUNKS`] chunks long: `x[0..16 XREG_CHUNKS]` is loaded into registers once for all the
/// rows, so those chunks of every row load only their weights; later chunks load `x` as the
/// plain loop does. Chunk `c` goes into accumulator `c % 4` in column order, as in the plain
/// loop, so every `y[i]` gets the same digits. `PREFETCH`: prefetch the weights
/// [`PREFETCH_16BIT`] bytes ahead (16-bit weights on Intel, see [`prefetch_16bit`]).
///
/// # Safety
/// As [`gemv_rows_body`], and `S::LANES == 16`, `x.len() % 64 == 0`,
/// `x.len() >= 16 XREG_CHUNKS`.
#[inline(always)]
unsafe fn gemv_rows_xreg<S: Simd, V: Val, const PREFETCH: bool>(
    w: &[V::Raw],
    x: &[f32],
    y: &mut [f32],
) {
    let cols = x.len();
    let l = S::LANES;
    debug_assert!(l == 16 && cols.is_multiple_of(4 * l) && cols >= XREG_CHUNKS * l);
    debug_assert!(w.len() >= y.len() * cols);
    let wp = w.as_ptr();
    let xp = x.as_ptr();
    let mut xr = [S::zero(); XREG_CHUNKS]; // (XREG_CHUNKS, 16): x[0..384]
    for (i, v) in xr.iter_mut().enumerate() {
        *v = S::load(xp.add(i * l));
    }
    for (r, yr) in y.iter_mut().enumerate() {
        let p = wp.add(r * cols);
        let (mut a0, mut a1, mut a2, mut a3) = (S::zero(), S::zero(), S::zero(), S::zero());
        // Chunks 4g..4g + 4 with their `x` from `xr`, written out so that the indices are
        // constants and `xr` stays in registers (in the 16-bit instances, which need a register
        // for the widening, LLVM keeps 23 there and reloads one from the stack per row).
        macro_rules! group {
            ($g:literal) => {
                if PREFETCH {
                    // 16-bit weights on Intel: the two lines of these 64 weights, ahead (see
                    // `PREFETCH_16BIT`).
                    prefetch_ahead(p.add(4 * $g * l));
                    prefetch_ahead(p.add((4 * $g + 2) * l));
                }
                a0 = S::fma(V::load::<S>(p.add(4 * $g * l)), xr[4 * $g], a0);
                a1 = S::fma(V::load::<S>(p.add((4 * $g + 1) * l)), xr[4 * $g + 1], a1);
                a2 = S::fma(V::load::<S>(p.add((4 * $g + 2) * l)), xr[4 * $g + 2], a2);
                a3 = S::fma(V::load::<S>(p.add((4 * $g + 3) * l)), xr[4 * $g + 3], a3);
            };
        }
        const _: () = assert!(XREG_CHUNKS == 24, "one group! per four chunks below");
        group!(0);
        group!(1);
        group!(2);
        group!(3);
        group!(4);
        group!(5);
        let mut c = XREG_CHUNKS * l;
        while c < cols {
            if PREFETCH {
                prefetch_ahead(p.add(c));
                prefetch_ahead(p.add(c + 2 * l));
            }
            (a0, a1, a2, a3) = four_chunks::<S, V>(p, xp, c, (a0, a1, a2, a3));
            c += 4 * l;
        }
        *yr += S::hsum(S::add(S::add(a0, a1), S::add(a2, a3)));
    }
}

per_isa! {
    /// Dense GEMV over a block of rows (see [`gemv_rows_body`]).
    pub(crate) fn gemv_rows<V: Val>(w: &[V::Raw], x: &[f32], y: &mut [f32]) => gemv_rows_body
}

#[cfg(test)]
per_isa! {
    /// [`gemv_rows_plain_body`] at every level (tests).
    fn gemv_rows_plain<V: Val>(w: &[V::Raw], x: &[f32], y: &mut [f32]) => gemv_rows_plain_body
}

#[cfg(test)]
mod tests {
    use super::super::simd::{Bf16, Isa, F16, F32};
    use super::*;

    /// xorshift floats in (-0.5, 0.5).
    fn rand(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// The AVX-512 `x`-in-registers loop with the 16-bit prefetch on or off, called directly:
    /// the dispatcher takes only one of the two on a given CPU (see [`prefetch_16bit`]).
    ///
    /// # Safety
    /// As [`gemv_rows_xreg`], and the CPU supports AVX-512.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c,bmi1,bmi2,popcnt")]
    unsafe fn xreg_avx512<V: Val, const PREFETCH: bool>(w: &[V::Raw], x: &[f32], y: &mut [f32]) {
        gemv_rows_xreg::<super::super::simd::Avx512, V, PREFETCH>(w, x, y)
    }

    /// Every level's dispatching loop against its plain loop, bit for bit, on shapes that take
    /// the `x`-in-registers loop at 16 lanes (384, 576, 1536 columns) and shapes that do not
    /// (320: too short; 400: not whole words), with a non-zero `y` to add to. At the AVX-512
    /// level, the shapes that take it also run both of its prefetch instances directly.
    fn same_digits<V: Val>(raw: impl Fn(f32) -> V::Raw) {
        for isa in Isa::available() {
            for (rows, cols) in [(7, 384), (5, 576), (3, 1536), (4, 320), (3, 400)] {
                let w: Vec<V::Raw> = rand(rows * cols, cols as u64)
                    .into_iter()
                    .map(&raw)
                    .collect();
                let x = rand(cols, 7);
                let y0 = rand(rows, 9);
                let (mut a, mut b) = (y0.clone(), y0.clone());
                // SAFETY: `isa` is available; `w` holds `rows` rows of `cols` = `x.len()`.
                unsafe {
                    gemv_rows::<V>(isa, &w, &x, &mut a);
                    gemv_rows_plain::<V>(isa, &w, &x, &mut b);
                }
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
                assert_eq!(bits(&a), bits(&b), "{isa:?} {rows}x{cols}");
                #[cfg(target_arch = "x86_64")]
                if isa == Isa::Avx512 && cols % 64 == 0 && cols >= 16 * XREG_CHUNKS {
                    let (mut on, mut off) = (y0.clone(), y0);
                    // SAFETY: AVX-512 is available; the shape is one the loop takes.
                    unsafe {
                        xreg_avx512::<V, true>(&w, &x, &mut on);
                        xreg_avx512::<V, false>(&w, &x, &mut off);
                    }
                    assert_eq!(bits(&on), bits(&b), "prefetch on, {rows}x{cols}");
                    assert_eq!(bits(&off), bits(&b), "prefetch off, {rows}x{cols}");
                }
            }
        }
    }

    #[test]
    fn x_in_registers_keeps_the_digits_f32() {
        same_digits::<F32>(|v| v);
    }

    #[test]
    fn x_in_registers_keeps_the_digits_bf16() {
        same_digits::<Bf16>(|v| (v.to_bits() >> 16) as u16);
    }

    #[test]
    fn x_in_registers_keeps_the_digits_f16() {
        // f16 bits of a value in (-0.5, 0.5): any u16 with exponent below 15 is one; build it
        // from the f32 bits (sign, a small exponent, the top mantissa bits).
        same_digits::<F16>(|v| {
            let b = v.to_bits();
            (((b >> 16) & 0x8000) | ((b >> 13) & 0x03ff) | (10 << 10)) as u16
        });
    }
}
