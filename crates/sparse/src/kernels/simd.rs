//! Instruction-set detection and the small SIMD vocabulary the kernels are written in.
//!
//! Every kernel is a generic `#[inline(always)]` function over a [`Simd`] implementation; it is
//! instantiated three times, inside a `#[target_feature]` entry point per ISA level (AVX-512,
//! AVX2+FMA) and once without any (portable scalar fallback), so LLVM compiles the same loop with
//! the instructions of each level. The level is detected once per process
//! (`is_x86_feature_detected!`, cached) and can be lowered, never raised, with the environment
//! variable `SECATEURS_ISA=scalar|avx2|avx512` (benchmarks and tests of the fallback paths).
//!
//! Contract of the `unsafe fn`s of [`Simd`] and [`Val`] (the SAFETY comments of the kernels refer
//! to it): a full-width load reads exactly `LANES` elements starting at the pointer; a `_n` load
//! reads exactly the first `n <= LANES` elements (masked loads, which do not fault on masked-off
//! elements, or an element-wise copy) and zero-fills the rest; `expand` reads exactly
//! `popcount(bits)` elements unless the caller states that `LANES` are readable; `select24`
//! reads `2 × LANES` elements. The caller proves those elements are in bounds, and calls
//! the methods of an ISA level only when the CPU supports it (the implementations for [`Avx2`] and
//! [`Avx512`] are only reached from entry points guarded by [`Isa::detect`]).

use std::sync::OnceLock;

/// The fewest 64-column words per row with which the AVX-512 multi-row bitmask loop
/// (`Simd::bitmask_rows_f32`) runs f32 rows: it keeps the first six words' `x` in registers.
pub(crate) const MULTI_ROW_WORDS: usize = 6;

/// An instruction-set level the kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable Rust (8-lane arrays; LLVM may use SSE2).
    Scalar,
    /// AVX2 + FMA + F16C.
    Avx2,
    /// AVX-512 F/BW/VL (+ AVX2, FMA, F16C).
    Avx512,
}

impl Isa {
    /// All levels, lowest first.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512];

    /// The best level this CPU supports (detected once, then cached).
    pub fn detect() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(detect_uncached)
    }

    /// Whether this CPU can run kernels compiled for `self`.
    pub fn supported(self) -> bool {
        self <= Isa::detect()
    }

    /// The level the public kernels use: [`Isa::detect`], lowered by `SECATEURS_ISA` if set.
    pub fn active() -> Isa {
        static ACTIVE: OnceLock<Isa> = OnceLock::new();
        *ACTIVE.get_or_init(|| {
            let best = Isa::detect();
            match std::env::var("SECATEURS_ISA")
                .ok()
                .as_deref()
                .map(str::parse::<Isa>)
            {
                Some(Ok(want)) => want.min(best),
                _ => best,
            }
        })
    }

    /// Levels this CPU supports, lowest first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.supported()).collect()
    }

    /// Lower-case name (`scalar`, `avx2`, `avx512`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Isa {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "scalar" | "none" | "portable" => Ok(Isa::Scalar),
            "avx2" => Ok(Isa::Avx2),
            "avx512" | "avx-512" => Ok(Isa::Avx512),
            _ => Err(format!(
                "unknown ISA '{s}' (expected scalar, avx2 or avx512)"
            )),
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn detect_uncached() -> Isa {
    let avx2 = is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
        && is_x86_feature_detected!("bmi1")
        && is_x86_feature_detected!("bmi2")
        && is_x86_feature_detected!("popcnt");
    let avx512 = avx2
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl");
    if avx512 {
        Isa::Avx512
    } else if avx2 {
        Isa::Avx2
    } else {
        Isa::Scalar
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect_uncached() -> Isa {
    Isa::Scalar
}

/// One SIMD level: `LANES` f32 lanes in `F`.
///
/// # Safety
/// See the module documentation: pointers must address the elements each method reads, and the
/// CPU must support the level.
pub(crate) trait Simd: Copy {
    /// f32 lanes per vector.
    const LANES: usize;
    /// A vector of f32.
    type F: Copy;

    unsafe fn zero() -> Self::F;
    unsafe fn splat(x: f32) -> Self::F;
    unsafe fn add(a: Self::F, b: Self::F) -> Self::F;
    /// `a * b + c`.
    unsafe fn fma(a: Self::F, b: Self::F, c: Self::F) -> Self::F;
    unsafe fn hsum(a: Self::F) -> f32;

    unsafe fn load(p: *const f32) -> Self::F;
    unsafe fn load_n(p: *const f32, n: usize) -> Self::F;
    unsafe fn store(p: *mut f32, v: Self::F);
    unsafe fn load_bf16(p: *const u16) -> Self::F;
    unsafe fn load_bf16_n(p: *const u16, n: usize) -> Self::F;
    unsafe fn load_f16(p: *const u16) -> Self::F;
    unsafe fn load_f16_n(p: *const u16, n: usize) -> Self::F;

    /// Lanes whose bit is set in `bits` receive the next values from `p`, the others zero.
    /// Reads `popcount(bits)` values, or `LANES` when `full` (the caller proves they exist).
    unsafe fn expand_f32(bits: u32, p: *const f32, full: bool) -> Self::F;
    unsafe fn expand_bf16(bits: u32, p: *const u16, full: bool) -> Self::F;
    unsafe fn expand_f16(bits: u32, p: *const u16, full: bool) -> Self::F;

    /// One row of a bitmask SpMV with f32 values over `n` whole 64-column words (see
    /// [`super::bitmask`]), for levels with a hand-scheduled loop: returns the row's dot product
    /// with `x`, summed exactly as the generic loop sums it (chunk `q` of every word into
    /// accumulator `q`, then `hsum((a0 + a1) + (a2 + a3))`). `None`: this level has no such loop
    /// and the caller runs the generic one.
    ///
    /// # Safety
    /// `words[0..n]` and `x[0..64 n]` are readable, and from `vals` on, the values of the
    /// words (their popcount) plus `LANES` more are readable.
    #[inline(always)]
    unsafe fn bitmask_row_f32(
        _words: *const u64,
        _n: usize,
        _vals: *const f32,
        _x: *const f32,
    ) -> Option<f32> {
        None
    }

    /// [`Simd::bitmask_row_f32`] for bf16 values: one row over `n` whole 64-column words, summed
    /// as the generic loop sums it. `None`: this level (or this CPU) has no such loop.
    ///
    /// # Safety
    /// As [`Simd::bitmask_row_f32`], with `vals` pointing to bf16 bits.
    #[inline(always)]
    unsafe fn bitmask_row_bf16(
        _words: *const u64,
        _n: usize,
        _vals: *const u16,
        _x: *const f32,
    ) -> Option<f32> {
        None
    }

    /// Rows of a bitmask SpMV with f32 values, each of `n` whole 64-column words, for levels
    /// with a hand-scheduled multi-row loop: `y[i] += row i · x` for `i < rows`, every row summed
    /// exactly as [`Simd::bitmask_row_f32`] sums it. `false`: this level has no such loop for
    /// `n` (the caller runs one row at a time); nothing was written.
    ///
    /// # Safety
    /// `words[0..rows n]`, `x[0..64 n]` and `y[0..rows]` are valid (`y` for writes too, and not
    /// overlapping the others); row `i`'s values start at `vals` plus the popcounts of the rows
    /// before it, and from each row's start its values plus `LANES` more are readable.
    #[inline(always)]
    unsafe fn bitmask_rows_f32(
        _words: *const u64,
        _n: usize,
        _vals: *const f32,
        _x: *const f32,
        _y: *mut f32,
        _rows: usize,
    ) -> bool {
        false
    }

    /// Lane `j` gets `x[idx[j]]` for the `LANES` u16 indices from `idx`: scalar loads put
    /// together in registers, the indices read four at a time as one u64 (see [`super::csr`]
    /// for why not `vgatherdps`).
    unsafe fn gather_u16(x: *const f32, idx: *const u16) -> Self::F;
    /// As [`Simd::gather_u16`], for u32 indices.
    unsafe fn gather_u32(x: *const f32, idx: *const u32) -> Self::F;

    /// 2:4 selection: lane `j` gets `x[4 (j / 2) + pos_j]`, where `pos_j` is bits `2j..2j + 2`
    /// of `pos` (the packed positions of `LANES` kept values covering `2 LANES` columns).
    /// Reads `x[0..2 LANES]`.
    unsafe fn select24(x: *const f32, pos: u32) -> Self::F;
}

/// A stored value type: f32, or a 16-bit type kept as raw bits and widened in registers.
pub(crate) trait Val: 'static {
    /// `Raw` is `f32`.
    const IS_F32: bool = false;
    /// The values are bf16 bits.
    const IS_BF16: bool = false;
    type Raw: Copy + Send + Sync + 'static;
    fn widen(r: Self::Raw) -> f32;
    unsafe fn load<S: Simd>(p: *const Self::Raw) -> S::F;
    unsafe fn load_n<S: Simd>(p: *const Self::Raw, n: usize) -> S::F;
    unsafe fn expand<S: Simd>(bits: u32, p: *const Self::Raw, full: bool) -> S::F;
}

/// f32 values.
pub(crate) struct F32;
/// bf16 values (raw bits).
pub(crate) struct Bf16;
/// f16 values (raw bits).
pub(crate) struct F16;

impl Val for F32 {
    const IS_F32: bool = true;
    type Raw = f32;
    #[inline(always)]
    fn widen(r: f32) -> f32 {
        r
    }
    #[inline(always)]
    unsafe fn load<S: Simd>(p: *const f32) -> S::F {
        S::load(p)
    }
    #[inline(always)]
    unsafe fn load_n<S: Simd>(p: *const f32, n: usize) -> S::F {
        S::load_n(p, n)
    }
    #[inline(always)]
    unsafe fn expand<S: Simd>(bits: u32, p: *const f32, full: bool) -> S::F {
        S::expand_f32(bits, p, full)
    }
}

impl Val for Bf16 {
    const IS_BF16: bool = true;
    type Raw = u16;
    #[inline(always)]
    fn widen(r: u16) -> f32 {
        bf16_to_f32(r)
    }
    #[inline(always)]
    unsafe fn load<S: Simd>(p: *const u16) -> S::F {
        S::load_bf16(p)
    }
    #[inline(always)]
    unsafe fn load_n<S: Simd>(p: *const u16, n: usize) -> S::F {
        S::load_bf16_n(p, n)
    }
    #[inline(always)]
    unsafe fn expand<S: Simd>(bits: u32, p: *const u16, full: bool) -> S::F {
        S::expand_bf16(bits, p, full)
    }
}

impl Val for F16 {
    type Raw = u16;
    #[inline(always)]
    fn widen(r: u16) -> f32 {
        half::f16::from_bits(r).to_f32()
    }
    #[inline(always)]
    unsafe fn load<S: Simd>(p: *const u16) -> S::F {
        S::load_f16(p)
    }
    #[inline(always)]
    unsafe fn load_n<S: Simd>(p: *const u16, n: usize) -> S::F {
        S::load_f16_n(p, n)
    }
    #[inline(always)]
    unsafe fn expand<S: Simd>(bits: u32, p: *const u16, full: bool) -> S::F {
        S::expand_f16(bits, p, full)
    }
}

/// A stored index type (u16 or u32).
pub(crate) trait Idx: 'static {
    type Raw: Copy + Send + Sync + 'static;
    fn get(r: Self::Raw) -> usize;
    /// `x` at the `S::LANES` indices from `p` ([`Simd::gather_u16`] / [`Simd::gather_u32`]).
    ///
    /// # Safety
    /// `p[0..S::LANES]` is readable and every index there is inside `x`; the CPU supports `S`.
    unsafe fn gather<S: Simd>(x: *const f32, p: *const Self::Raw) -> S::F;
}

/// u16 indices.
pub(crate) struct U16;
/// u32 indices.
pub(crate) struct U32;

impl Idx for U16 {
    type Raw = u16;
    #[inline(always)]
    fn get(r: u16) -> usize {
        usize::from(r)
    }
    #[inline(always)]
    unsafe fn gather<S: Simd>(x: *const f32, p: *const u16) -> S::F {
        S::gather_u16(x, p)
    }
}

impl Idx for U32 {
    type Raw = u32;
    #[inline(always)]
    fn get(r: u32) -> usize {
        r as usize
    }
    #[inline(always)]
    unsafe fn gather<S: Simd>(x: *const f32, p: *const u32) -> S::F {
        S::gather_u32(x, p)
    }
}

/// bf16 bits to f32: the bf16 pattern is the top half of the f32 pattern.
#[inline(always)]
pub(crate) fn bf16_to_f32(b: u16) -> f32 {
    f32::from_bits(u32::from(b) << 16)
}

// ---------------------------------------------------------------------------------------------
// Portable fallback.

/// Portable level: 8-lane arrays.
#[derive(Clone, Copy)]
pub(crate) struct Scalar;

const SL: usize = 8;

impl Simd for Scalar {
    const LANES: usize = SL;
    type F = [f32; SL];

    #[inline(always)]
    unsafe fn zero() -> Self::F {
        [0.0; SL]
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self::F {
        [x; SL]
    }
    #[inline(always)]
    unsafe fn add(a: Self::F, b: Self::F) -> Self::F {
        std::array::from_fn(|i| a[i] + b[i])
    }
    #[inline(always)]
    unsafe fn fma(a: Self::F, b: Self::F, c: Self::F) -> Self::F {
        // Not `mul_add`: without hardware FMA that is a libm call per lane.
        std::array::from_fn(|i| a[i] * b[i] + c[i])
    }
    #[inline(always)]
    unsafe fn hsum(a: Self::F) -> f32 {
        ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]))
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self::F {
        p.cast::<[f32; SL]>().read_unaligned()
    }
    #[inline(always)]
    unsafe fn load_n(p: *const f32, n: usize) -> Self::F {
        let mut v = [0.0; SL];
        for (i, o) in v.iter_mut().enumerate().take(n) {
            *o = *p.add(i);
        }
        v
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self::F) {
        p.cast::<[f32; SL]>().write_unaligned(v)
    }
    #[inline(always)]
    unsafe fn load_bf16(p: *const u16) -> Self::F {
        let r = p.cast::<[u16; SL]>().read_unaligned();
        std::array::from_fn(|i| bf16_to_f32(r[i]))
    }
    #[inline(always)]
    unsafe fn load_bf16_n(p: *const u16, n: usize) -> Self::F {
        let mut v = [0.0; SL];
        for (i, o) in v.iter_mut().enumerate().take(n) {
            *o = bf16_to_f32(*p.add(i));
        }
        v
    }
    #[inline(always)]
    unsafe fn load_f16(p: *const u16) -> Self::F {
        let r = p.cast::<[u16; SL]>().read_unaligned();
        std::array::from_fn(|i| F16::widen(r[i]))
    }
    #[inline(always)]
    unsafe fn load_f16_n(p: *const u16, n: usize) -> Self::F {
        let mut v = [0.0; SL];
        for (i, o) in v.iter_mut().enumerate().take(n) {
            *o = F16::widen(*p.add(i));
        }
        v
    }
    #[inline(always)]
    unsafe fn expand_f32(bits: u32, p: *const f32, _full: bool) -> Self::F {
        scalar_expand(bits, p, |x| x)
    }
    #[inline(always)]
    unsafe fn expand_bf16(bits: u32, p: *const u16, _full: bool) -> Self::F {
        scalar_expand(bits, p, bf16_to_f32)
    }
    #[inline(always)]
    unsafe fn expand_f16(bits: u32, p: *const u16, _full: bool) -> Self::F {
        scalar_expand(bits, p, F16::widen)
    }
    #[inline(always)]
    unsafe fn gather_u16(x: *const f32, idx: *const u16) -> Self::F {
        std::array::from_fn(|j| *x.add(usize::from(*idx.add(j))))
    }
    #[inline(always)]
    unsafe fn gather_u32(x: *const f32, idx: *const u32) -> Self::F {
        std::array::from_fn(|j| *x.add(*idx.add(j) as usize))
    }
    #[inline(always)]
    unsafe fn select24(x: *const f32, pos: u32) -> Self::F {
        std::array::from_fn(|j| *x.add(4 * (j / 2) + ((pos >> (2 * j)) & 3) as usize))
    }
}

#[inline(always)]
unsafe fn scalar_expand<R: Copy>(bits: u32, p: *const R, widen: impl Fn(R) -> f32) -> [f32; SL] {
    let mut v = [0.0; SL];
    let mut k = 0;
    for (i, o) in v.iter_mut().enumerate() {
        if (bits >> i) & 1 == 1 {
            *o = widen(*p.add(k));
            k += 1;
        }
    }
    v
}

// ---------------------------------------------------------------------------------------------
// AVX2 + FMA + F16C.

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Simd;

    /// AVX2 level: 8 lanes.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx2;

    /// For each 8-bit mask, the source lane of every destination lane of an expand (the number
    /// of set bits below it), or -1 (lane zeroed: permutevar reads lane 7, the AND clears it).
    static EXPAND8: [[i32; 8]; 256] = {
        let mut t = [[0i32; 8]; 256];
        let mut m = 0;
        while m < 256 {
            let mut k = 0;
            let mut l = 0;
            while l < 8 {
                if (m >> l) & 1 == 1 {
                    t[m][l] = k;
                    k += 1;
                } else {
                    t[m][l] = -1;
                }
                l += 1;
            }
            m += 1;
        }
        t
    };

    #[inline(always)]
    unsafe fn mask8(n: usize) -> __m256i {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }

    #[inline(always)]
    unsafe fn copy_u16_8(p: *const u16, n: usize) -> __m128i {
        let mut b = [0u16; 8];
        std::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), n.min(8));
        _mm_loadu_si128(b.as_ptr().cast())
    }

    /// `x[idx[0..4]]` for four u16 indices, read as one u64.
    #[inline(always)]
    unsafe fn gather4_u16(x: *const f32, idx: *const u16) -> __m128 {
        let w = idx.cast::<u64>().read_unaligned();
        let g = |s: u32| *x.add(((w >> s) & 0xffff) as usize);
        _mm_set_ps(g(48), g(32), g(16), g(0))
    }

    /// `x[idx[0..4]]` for four u32 indices.
    #[inline(always)]
    unsafe fn gather4_u32(x: *const f32, idx: *const u32) -> __m128 {
        let g = |j: usize| *x.add(*idx.add(j) as usize);
        _mm_set_ps(g(3), g(2), g(1), g(0))
    }

    #[inline(always)]
    unsafe fn bf16x8(r: __m128i) -> __m256 {
        _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(r)))
    }

    #[inline(always)]
    unsafe fn expand8(bits: u32, v: __m256) -> __m256 {
        let t = _mm256_loadu_si256(EXPAND8[(bits & 0xff) as usize].as_ptr().cast());
        let keep = _mm256_cmpgt_epi32(t, _mm256_set1_epi32(-1));
        _mm256_and_ps(_mm256_permutevar8x32_ps(v, t), _mm256_castsi256_ps(keep))
    }

    impl Simd for Avx2 {
        const LANES: usize = 8;
        type F = __m256;

        #[inline(always)]
        unsafe fn zero() -> __m256 {
            _mm256_setzero_ps()
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m256 {
            _mm256_set1_ps(x)
        }
        #[inline(always)]
        unsafe fn add(a: __m256, b: __m256) -> __m256 {
            _mm256_add_ps(a, b)
        }
        #[inline(always)]
        unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
            _mm256_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn hsum(a: __m256) -> f32 {
            let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_shuffle_ps::<1>(s, s));
            _mm_cvtss_f32(s)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m256 {
            _mm256_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn load_n(p: *const f32, n: usize) -> __m256 {
            _mm256_maskload_ps(p, mask8(n))
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m256) {
            _mm256_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn load_bf16(p: *const u16) -> __m256 {
            bf16x8(_mm_loadu_si128(p.cast()))
        }
        #[inline(always)]
        unsafe fn load_bf16_n(p: *const u16, n: usize) -> __m256 {
            bf16x8(copy_u16_8(p, n))
        }
        #[inline(always)]
        unsafe fn load_f16(p: *const u16) -> __m256 {
            _mm256_cvtph_ps(_mm_loadu_si128(p.cast()))
        }
        #[inline(always)]
        unsafe fn load_f16_n(p: *const u16, n: usize) -> __m256 {
            _mm256_cvtph_ps(copy_u16_8(p, n))
        }
        #[inline(always)]
        unsafe fn expand_f32(bits: u32, p: *const f32, full: bool) -> __m256 {
            let v = if full {
                _mm256_loadu_ps(p)
            } else {
                _mm256_maskload_ps(p, mask8(bits.count_ones() as usize))
            };
            expand8(bits, v)
        }
        #[inline(always)]
        unsafe fn expand_bf16(bits: u32, p: *const u16, full: bool) -> __m256 {
            let r = if full {
                _mm_loadu_si128(p.cast())
            } else {
                copy_u16_8(p, bits.count_ones() as usize)
            };
            expand8(bits, bf16x8(r))
        }
        #[inline(always)]
        unsafe fn expand_f16(bits: u32, p: *const u16, full: bool) -> __m256 {
            let r = if full {
                _mm_loadu_si128(p.cast())
            } else {
                copy_u16_8(p, bits.count_ones() as usize)
            };
            expand8(bits, _mm256_cvtph_ps(r))
        }
        #[inline(always)]
        unsafe fn gather_u16(x: *const f32, idx: *const u16) -> __m256 {
            _mm256_set_m128(gather4_u16(x, idx.add(4)), gather4_u16(x, idx))
        }
        #[inline(always)]
        unsafe fn gather_u32(x: *const f32, idx: *const u32) -> __m256 {
            _mm256_set_m128(gather4_u32(x, idx.add(4)), gather4_u32(x, idx))
        }
        #[inline(always)]
        unsafe fn select24(x: *const f32, pos: u32) -> __m256 {
            let p = _mm256_and_si256(
                _mm256_srlv_epi32(
                    _mm256_set1_epi32(pos as i32),
                    _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14),
                ),
                _mm256_set1_epi32(3),
            );
            let p = _mm256_add_epi32(p, _mm256_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12));
            let lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(x), p);
            let hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(x.add(8)), p);
            let use_hi = _mm256_castsi256_ps(_mm256_cmpgt_epi32(p, _mm256_set1_epi32(7)));
            _mm256_blendv_ps(lo, hi, use_hi)
        }
    }

    /// AVX-512 level: 16 lanes.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx512;

    #[inline(always)]
    fn kmask(n: usize) -> __mmask16 {
        if n >= 16 {
            0xffff
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    }

    /// `lo` in lanes 0..8, `hi` in 8..16 (AVX-512F only: `vinsertf32x8` would need DQ).
    #[inline(always)]
    unsafe fn join8(lo: __m256, hi: __m256) -> __m512 {
        let lo = _mm512_castpd256_pd512(_mm256_castps_pd(lo));
        _mm512_castpd_ps(_mm512_insertf64x4::<1>(lo, _mm256_castps_pd(hi)))
    }

    #[inline(always)]
    unsafe fn bf16x16(r: __m256i) -> __m512 {
        _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(r)))
    }

    /// One 16-column chunk of the bitmask loops ([`bitmask_row_f32_avx512`],
    /// [`bitmask_rows_f32_avx512`]), its bits in the low 16 of `w` and of mask register `$k`:
    /// load 16 values, expand them to the set bits' lanes, FMA with `x` (operand `$x`: in memory
    /// at `[{xp} + offset]`, or a register) into accumulator `$acc`, and step the value pointer
    /// by the popcount.
    ///
    /// On Zen 4 a chunk takes ~2.5 cycles even with `x` in a register and everything in L1: the
    /// register `vexpandps` (1.72 cycles a zmm) and the FMA (1.06) share vector pipes. A
    /// `vpermps` by the lanes' ranks would be cheaper (1.49 cycles with the FMA), but computing
    /// the ranks from the mask, or fetching them from a table, costs what it saves
    /// (`scripts/expand_pipes.c`; docs/results.md).
    macro_rules! bitmask_chunk {
        ($k:literal, $acc:literal, $x:literal) => {
            concat!(
                "movzx {c}, {w:x}\n",
                "popcnt {c}, {c}\n",
                "vmovups {t}, zmmword ptr [{vp}]\n",
                "vexpandps {t} {{",
                $k,
                "}} {{z}}, {t}\n",
                "vfmadd231ps {",
                $acc,
                "}, {t}, ",
                $x,
                "\n",
                "lea {vp}, [{vp} + 4*{c}]",
            )
        };
    }

    /// The four chunks of the mask word in `w`, `w` shifted down by 16 between them, with the
    /// values prefetched [`BITMASK_PREFETCH`] bytes ahead before the first and the third. Their
    /// parts of `x` are the operands `$x0`..`$x3` (registers), or with no arguments the four
    /// vectors in memory at `{xp}`.
    ///
    /// The chunks' expand masks come from one `kmovq k1, w` and three `kshiftrq` (k2..k4 hold
    /// `w >> 16`, `>> 32`, `>> 48`; an expand of 16 lanes reads the low 16 bits): on Zen 4 a move
    /// from a general register into a mask register costs more than a shift between mask
    /// registers. Against one `kmovw k1, w` per chunk, with everything in L1: 2.51 against 2.81
    /// cycles per chunk for the bare sequences (`x` in a register, 70% sparsity), and 0.867
    /// against 0.913 ns per 16 columns for `bitmask_rows_f32_avx512` on a 16 × 2048 matrix (0.842
    /// against 0.891 at 50%; one thread, the two alternating in one process, best of 20). Decoding
    /// streams its weights from DRAM and did not measurably change (per-round ratios of the
    /// default model's weight stream, both threads: medians 0.996–1.005 at 70% and 50%).
    macro_rules! bitmask_word {
        () => {
            bitmask_word!(
                "zmmword ptr [{xp} + 0]",
                "zmmword ptr [{xp} + 64]",
                "zmmword ptr [{xp} + 128]",
                "zmmword ptr [{xp} + 192]"
            )
        };
        ($x0:literal, $x1:literal, $x2:literal, $x3:literal) => {
            concat!(
                "kmovq k1, {w}\n",
                "kshiftrq k2, k1, 16\n",
                "kshiftrq k3, k1, 32\n",
                "kshiftrq k4, k1, 48\n",
                "prefetcht0 [{vp} + {ahead}]\n",
                bitmask_chunk!("k1", "a0", $x0),
                "\nshr {w}, 16\n",
                bitmask_chunk!("k2", "a1", $x1),
                "\nprefetcht0 [{vp} + {ahead}]\n",
                "shr {w}, 16\n",
                bitmask_chunk!("k3", "a2", $x2),
                "\nshr {w}, 16\n",
                bitmask_chunk!("k4", "a3", $x3),
            )
        };
    }

    /// How far ahead of the values being read [`bitmask_row_f32_avx512`] prefetches, bytes.
    /// Measured on Zen 4 with the values in DRAM and 576-column rows (the default model's), one
    /// thread: 2–8 KiB ahead took 0.96–1.05 ns per 16-column chunk at 70% sparsity against
    /// 1.37–1.48 without (256 B: 1.32, 1 KiB: 1.14, 16 KiB: 1.05), and 5–10% less at 50%.
    /// With two prefetches per word (below), on the model-shaped stream with both threads, 3 KiB
    /// was the fastest of 1, 2, 3 and 4 KiB, or within the machine's noise of it, in most
    /// alternations at 50% and at 70%.
    const BITMASK_PREFETCH: usize = 3072;

    /// One f32 row of the bitmask SpMV over `n` whole words, its loop scheduled by hand.
    ///
    /// Why assembly: every 16-column chunk needs one plain 64-byte load of the next values and a
    /// register `vexpandps` by the chunk's mask bits. Written with intrinsics, LLVM either keeps
    /// an exact-length masked load (two more instructions per chunk for its mask) or folds the
    /// plain load into the memory form of `vexpandps`, which Zen 4 runs about 1.7× slower than
    /// load + register expand. Per chunk this loop issues `kmovw`, `movzx`, `popcnt`, the load,
    /// the expand, one FMA with `x` from memory and the pointer step, and prefetches the values
    /// [`BITMASK_PREFETCH`] bytes ahead twice per word, before its first and third chunks: at 50%
    /// density a word holds 128 bytes of values, two cache lines, and one prefetch per word left
    /// every other line to the hardware prefetcher. On the model-shaped stream (30 layers × the
    /// seven shapes, both threads, variants alternating in one process) the second prefetch
    /// moved 50% from 26.6–31.0 GB/s (mean 28.2) to 28.1–32.6 (mean 30.2) in runs where the
    /// machine's read probe gave ~32 GB/s, and from 32.1–33.8 to 32.9–38.7 where it gave 41–52;
    /// 70% (1.2 lines per word) stayed within its noise, 25–33 GB/s either way. Measured
    /// against the intrinsics loop on the same data, one thread: 0.97–1.24 vs 1.23–1.44 ns per
    /// chunk with everything in L2, and 0.96–1.05 vs 1.52–1.80 ns from DRAM at 70% sparsity.
    /// (Computing the four chunk offsets of a word independently, off the pointer's dependency
    /// chain, measured no faster.) Chunk `q` of each word accumulates into accumulator `q` and
    /// the four are summed as in the generic loop (the dense kernel's order). The accumulators
    /// stay in registers: passing them through memory to and from a loop-only function cost
    /// ~10 ns per row, a third of a 576-column row at 70% sparsity.
    ///
    /// # Safety
    /// The CPU supports AVX-512F and AVX-512BW; `words[0..n]` and `x[0..64 n]` are readable; the
    /// values of the words (the sum of their popcounts) and 16 more are readable from `vals`
    /// (every chunk loads 16 values whole, and its last value can be the row's last).
    #[target_feature(enable = "avx512f,avx512bw,popcnt")]
    unsafe fn bitmask_row_f32_avx512(
        words: *const u64,
        n: usize,
        vals: *const f32,
        x: *const f32,
    ) -> f32 {
        if n == 0 {
            return 0.0;
        }
        let (mut a0, mut a1, mut a2, mut a3) = (
            _mm512_setzero_ps(),
            _mm512_setzero_ps(),
            _mm512_setzero_ps(),
            _mm512_setzero_ps(),
        );
        let mut wp = words;
        let mut vp = vals;
        let mut xp = x;
        let end = words.add(n);
        // SAFETY: the loop reads `words[0..n]` (one qword per iteration, `wp` steps by 8 bytes
        // until `end`), `x[0..64 n]` (four 64-byte FMA operands per word, `xp` steps by 256
        // bytes) and 16 floats at `vp` per chunk, where `vp` has advanced by the popcount of
        // every earlier chunk: the last load starts at most at the last value of the words and
        // reads 16 floats, which the caller guarantees readable. `prefetcht0` never faults. The
        // block writes no memory (`readonly`), uses no stack (`nostack`) and clobbers only the
        // registers declared below (k1..k4 and the flags).
        std::arch::asm!(
            "2:",
            "mov {w}, qword ptr [{wp}]",
            // The four 16-bit chunks of the word, `w` shifted down by 16 between them.
            bitmask_word!(),
            "add {xp}, 256",
            "add {wp}, 8",
            "cmp {wp}, {end}",
            "jb 2b",
            ahead = const BITMASK_PREFETCH,
            w = out(reg) _,
            c = out(reg) _,
            t = out(zmm_reg) _,
            wp = inout(reg) wp,
            vp = inout(reg) vp,
            xp = inout(reg) xp,
            end = in(reg) end,
            a0 = inout(zmm_reg) a0,
            a1 = inout(zmm_reg) a1,
            a2 = inout(zmm_reg) a2,
            a3 = inout(zmm_reg) a3,
            out("k1") _,
            out("k2") _,
            out("k3") _,
            out("k4") _,
            options(nostack, readonly),
        );
        let _ = (wp, vp, xp);
        _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)))
    }

    /// One bf16 row of the bitmask SpMV over `n` whole words, where the CPU has AVX-512 VBMI2.
    ///
    /// The generic chunk widens 16 bf16 values to f32 (`vpmovzxwd`, a shift) and then expands
    /// them to their lanes (`vpexpandd`). Here one `vpexpandw` does both: the chunk's 16 mask
    /// bits are spread to the odd bits of a 32-bit mask (`pdep` with `0xAAAA_AAAA`), so the
    /// `i`-th stored value lands in the high half of dword lane `i` of its column and zero
    /// masking clears every low half and every unstored lane, which is exactly the f32 with the
    /// bf16's bits (bf16 → f32 is a shift left by 16). Same chunks, same accumulators, same
    /// reduction as the generic loop, so the same digits. Measured on an Intel Xeon (AMX/AVX-512
    /// FP16 generation), one thread, everything in L1 (`scripts/expand_pipes.c`): 0.73–0.77 ns
    /// per 16-column chunk against 1.02–1.09 for the widen-then-expand sequence; earlier, on
    /// Zen 4, 0.54 against 0.58. The values are prefetched [`BITMASK_PREFETCH`] bytes ahead once
    /// per word (a word of bf16 values at 50% density is one cache line).
    ///
    /// # Safety
    /// The CPU supports AVX-512F, AVX-512BW, AVX-512 VBMI2 and BMI2; `words[0..n]` and
    /// `x[0..64 n]` are readable; from `vals` on, the values of the words (the sum of their
    /// popcounts) and 16 more are readable (every chunk loads 16 values whole).
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi2,bmi2,popcnt")]
    unsafe fn bitmask_row_bf16_vbmi2(
        words: *const u64,
        n: usize,
        vals: *const u16,
        x: *const f32,
    ) -> f32 {
        let [mut a0, mut a1, mut a2, mut a3] = [_mm512_setzero_ps(); 4];
        let mut vp = vals;
        for j in 0..n {
            // SAFETY (the block): `j < n`, so word `j` and `x[64 j..64 j + 64]` are readable;
            // every chunk's 16-value load starts at a value of these words, or just past the
            // last, and the caller guarantees 16 values readable from there; `_mm_prefetch`
            // never faults (its address is formed with wrapping arithmetic).
            let w = *words.add(j);
            let xw = x.add(64 * j);
            _mm_prefetch::<_MM_HINT_T0>(vp.cast::<i8>().wrapping_add(BITMASK_PREFETCH));
            macro_rules! chunk {
                ($q:literal, $a:ident) => {{
                    let bits = ((w >> (16 * $q)) & 0xffff) as u32;
                    let k = _pdep_u32(bits, 0xAAAA_AAAA);
                    let raw = _mm512_zextsi256_si512(_mm256_loadu_si256(vp.cast()));
                    let v = _mm512_castsi512_ps(_mm512_maskz_expand_epi16(k, raw));
                    $a = _mm512_fmadd_ps(v, _mm512_loadu_ps(xw.add(16 * $q)), $a);
                    vp = vp.add(bits.count_ones() as usize);
                }};
            }
            chunk!(0, a0);
            chunk!(1, a1);
            chunk!(2, a2);
            chunk!(3, a3);
        }
        _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)))
    }

    /// Words of a row whose part of `x` [`bitmask_rows_f32_avx512`] keeps in registers: 24
    /// chunks of 16 columns, in zmm8–zmm31.
    const XREG_WORDS: usize = super::MULTI_ROW_WORDS;

    /// Rows of the bitmask SpMV with f32 values over `n >= XREG_WORDS` whole words each, one
    /// after the other in one loop: `y[i] += row i · x`.
    ///
    /// The one-row loop ([`bitmask_row_f32_avx512`]) issues two loads per 16 columns, the values
    /// and `x`, and is bound by them (docs/results.md). Here `x[0..384]` is loaded into 24
    /// registers once for all the rows, so the first six words of every row read only their
    /// values; later words read `x` from memory as before. Each row's chunks go into the same
    /// accumulators in the same order, and the four are reduced in the order
    /// `_mm512_reduce_add_ps((a0 + a1) + (a2 + a3))` uses (halves, then quarters, pairs and
    /// neighbours), so every `y[i]` gets the digits of the one-row loop and of the dense GEMV.
    /// The rows' values are read as the one forward stream they form (row `i + 1` starts where
    /// row `i` ends) and prefetched as in the one-row loop. On 576-column rows (the default
    /// model's), one thread, 70% sparsity: 0.945–0.964 ns per chunk from DRAM against
    /// 1.046–1.053 for one row at a time.
    ///
    /// # Safety
    /// The CPU supports AVX-512F and AVX-512BW; `n >= XREG_WORDS`; `words[0..rows n]` and
    /// `x[0..64 n]` are readable and `y[0..rows]` writable, `y` overlapping neither; row `i`'s
    /// values start at `vals` plus the popcounts of rows `0..i`, and from there its values and
    /// 16 more are readable.
    #[target_feature(enable = "avx512f,avx512bw,popcnt")]
    unsafe fn bitmask_rows_f32_avx512(
        words: *const u64,
        n: usize,
        vals: *const f32,
        x: *const f32,
        y: *mut f32,
        rows: usize,
    ) {
        debug_assert!(n >= XREG_WORDS);
        if rows == 0 {
            return;
        }
        // x[0..384] as 24 vectors (n >= 6 words, so x holds at least 384 columns).
        let mut xr = [_mm512_setzero_ps(); 4 * XREG_WORDS];
        for (i, v) in xr.iter_mut().enumerate() {
            *v = _mm512_loadu_ps(x.add(16 * i));
        }
        let mut wp = words;
        let mut vp = vals;
        let mut yp = y;
        let yend = y.add(rows);
        let mut wend = words.add(n);
        let stride = n * 8;
        let xrest = x.add(64 * XREG_WORDS);
        // SAFETY: per row, the block reads the row's `n` mask words (`wp` steps through them,
        // then by `8 n` bytes per row until `rows` rows are done), `x[384..64 n]` (the later
        // words' FMA operands, from `xrest` on) and 16 floats at `vp` per chunk, where `vp` has
        // advanced by the popcount of every earlier chunk of this and the earlier rows: by the
        // contract that is inside the row's values plus 16, which are readable. It writes only
        // `y[i]`, once per row, after reading it (`yp` steps by 4 bytes until `yend`).
        // `prefetcht0` never faults. No stack (`nostack`); it clobbers the registers declared
        // below, k1..k4 and the flags.
        std::arch::asm!(
            "2:",
            "vpxord {a0}, {a0}, {a0}",
            "vpxord {a1}, {a1}, {a1}",
            "vpxord {a2}, {a2}, {a2}",
            "vpxord {a3}, {a3}, {a3}",
            // Words 0..6: x in zmm8..zmm31.
            "mov {w}, qword ptr [{wp} + 0]",
            bitmask_word!("zmm8", "zmm9", "zmm10", "zmm11"),
            "mov {w}, qword ptr [{wp} + 8]",
            bitmask_word!("zmm12", "zmm13", "zmm14", "zmm15"),
            "mov {w}, qword ptr [{wp} + 16]",
            bitmask_word!("zmm16", "zmm17", "zmm18", "zmm19"),
            "mov {w}, qword ptr [{wp} + 24]",
            bitmask_word!("zmm20", "zmm21", "zmm22", "zmm23"),
            "mov {w}, qword ptr [{wp} + 32]",
            bitmask_word!("zmm24", "zmm25", "zmm26", "zmm27"),
            "mov {w}, qword ptr [{wp} + 40]",
            bitmask_word!("zmm28", "zmm29", "zmm30", "zmm31"),
            // Words 6..n: x from memory.
            "lea {wq}, [{wp} + {xbytes}]",
            "mov {xp}, {xrest}",
            "cmp {wq}, {wend}",
            "jae 4f",
            "3:",
            "mov {w}, qword ptr [{wq}]",
            bitmask_word!(),
            "add {xp}, 256",
            "add {wq}, 8",
            "cmp {wq}, {wend}",
            "jb 3b",
            "4:",
            // ((a0 + a1) + (a2 + a3)), then halves, quarters, pairs and neighbours, as
            // `_mm512_reduce_add_ps`; then y[i] += it.
            "vaddps {s}, {a0}, {a1}",
            "vaddps {u}, {a2}, {a3}",
            "vaddps {s}, {s}, {u}",
            "vextractf64x4 {u:y}, {s}, 1",
            "vaddps {s:y}, {s:y}, {u:y}",
            "vextractf128 {u:x}, {s:y}, 1",
            "vaddps {s:x}, {s:x}, {u:x}",
            "vshufpd {u:x}, {s:x}, {s:x}, 1",
            "vaddps {s:x}, {s:x}, {u:x}",
            "vmovshdup {u:x}, {s:x}",
            "vaddss {s:x}, {s:x}, {u:x}",
            "vaddss {s:x}, {s:x}, dword ptr [{yp}]",
            "vmovss dword ptr [{yp}], {s:x}",
            "add {yp}, 4",
            "mov {wp}, {wq}",
            "add {wend}, {stride}",
            "cmp {yp}, {yend}",
            "jb 2b",
            ahead = const BITMASK_PREFETCH,
            xbytes = const 8 * XREG_WORDS,
            w = out(reg) _,
            c = out(reg) _,
            wq = out(reg) _,
            xp = out(reg) _,
            wp = inout(reg) wp,
            vp = inout(reg) vp,
            yp = inout(reg) yp,
            wend = inout(reg) wend,
            xrest = in(reg) xrest,
            stride = in(reg) stride,
            yend = in(reg) yend,
            a0 = out(zmm_reg) _,
            a1 = out(zmm_reg) _,
            a2 = out(zmm_reg) _,
            a3 = out(zmm_reg) _,
            t = out(zmm_reg) _,
            s = out(zmm_reg) _,
            u = out(zmm_reg) _,
            in("zmm8") xr[0],
            in("zmm9") xr[1],
            in("zmm10") xr[2],
            in("zmm11") xr[3],
            in("zmm12") xr[4],
            in("zmm13") xr[5],
            in("zmm14") xr[6],
            in("zmm15") xr[7],
            in("zmm16") xr[8],
            in("zmm17") xr[9],
            in("zmm18") xr[10],
            in("zmm19") xr[11],
            in("zmm20") xr[12],
            in("zmm21") xr[13],
            in("zmm22") xr[14],
            in("zmm23") xr[15],
            in("zmm24") xr[16],
            in("zmm25") xr[17],
            in("zmm26") xr[18],
            in("zmm27") xr[19],
            in("zmm28") xr[20],
            in("zmm29") xr[21],
            in("zmm30") xr[22],
            in("zmm31") xr[23],
            out("k1") _,
            out("k2") _,
            out("k3") _,
            out("k4") _,
            options(nostack),
        );
        let _ = (wp, vp, yp, wend);
    }

    /// The 16-bit values an expand by `bits` consumes: 16 whole when `full` (the caller
    /// proves they are readable), else a masked load of exactly `popcount(bits)` (no fault
    /// past them).
    #[inline(always)]
    unsafe fn load16_for_expand(bits: u32, p: *const u16, full: bool) -> __m256i {
        if full {
            _mm256_loadu_si256(p.cast())
        } else {
            _mm256_maskz_loadu_epi16(_bzhi_u32(0xffff, bits.count_ones()) as __mmask16, p.cast())
        }
    }

    impl Simd for Avx512 {
        const LANES: usize = 16;
        type F = __m512;

        #[inline(always)]
        unsafe fn zero() -> __m512 {
            _mm512_setzero_ps()
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m512 {
            _mm512_set1_ps(x)
        }
        #[inline(always)]
        unsafe fn add(a: __m512, b: __m512) -> __m512 {
            _mm512_add_ps(a, b)
        }
        #[inline(always)]
        unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn hsum(a: __m512) -> f32 {
            _mm512_reduce_add_ps(a)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m512 {
            _mm512_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn load_n(p: *const f32, n: usize) -> __m512 {
            _mm512_maskz_loadu_ps(kmask(n), p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m512) {
            _mm512_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn load_bf16(p: *const u16) -> __m512 {
            bf16x16(_mm256_loadu_si256(p.cast()))
        }
        #[inline(always)]
        unsafe fn load_bf16_n(p: *const u16, n: usize) -> __m512 {
            bf16x16(_mm256_maskz_loadu_epi16(kmask(n), p.cast()))
        }
        #[inline(always)]
        unsafe fn load_f16(p: *const u16) -> __m512 {
            _mm512_cvtph_ps(_mm256_loadu_si256(p.cast()))
        }
        #[inline(always)]
        unsafe fn load_f16_n(p: *const u16, n: usize) -> __m512 {
            _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(kmask(n), p.cast()))
        }
        #[inline(always)]
        unsafe fn expand_f32(bits: u32, p: *const f32, _full: bool) -> __m512 {
            // A masked load of exactly popcount(bits) values (fault-suppressed beyond them),
            // then a register expand: measured faster on Zen 4 than the memory form
            // `vexpandps zmm{k}{z}, m512`. Masked even when `full`: LLVM folds a plain load into
            // that memory form. Whole f32 rows take `bitmask_row_f32` instead.
            let v = _mm512_maskz_loadu_ps(_bzhi_u32(0xffff, bits.count_ones()) as __mmask16, p);
            _mm512_maskz_expand_ps(bits as __mmask16, v)
        }
        #[inline(always)]
        unsafe fn expand_bf16(bits: u32, p: *const u16, full: bool) -> __m512 {
            // The raw values, widened, then expanded to the lanes of the set bits.
            let r = load16_for_expand(bits, p, full);
            _mm512_castsi512_ps(_mm512_maskz_expand_epi32(
                bits as __mmask16,
                _mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(r)),
            ))
        }
        #[inline(always)]
        unsafe fn expand_f16(bits: u32, p: *const u16, full: bool) -> __m512 {
            let r = load16_for_expand(bits, p, full);
            _mm512_maskz_expand_ps(bits as __mmask16, _mm512_cvtph_ps(r))
        }
        #[inline(always)]
        unsafe fn bitmask_row_f32(
            words: *const u64,
            n: usize,
            vals: *const f32,
            x: *const f32,
        ) -> Option<f32> {
            Some(bitmask_row_f32_avx512(words, n, vals, x))
        }
        #[inline(always)]
        unsafe fn bitmask_row_bf16(
            words: *const u64,
            n: usize,
            vals: *const u16,
            x: *const f32,
        ) -> Option<f32> {
            // std caches the CPUID answer: one load and a bit test per row. BMI2 comes with
            // this level (`detect_uncached`); VBMI2 is not part of it.
            if std::arch::is_x86_feature_detected!("avx512vbmi2") {
                // SAFETY: the CPU has AVX-512F/BW and BMI2 (this level) and VBMI2 (checked
                // above); the memory contract is this function's.
                Some(bitmask_row_bf16_vbmi2(words, n, vals, x))
            } else {
                None
            }
        }
        #[inline(always)]
        unsafe fn bitmask_rows_f32(
            words: *const u64,
            n: usize,
            vals: *const f32,
            x: *const f32,
            y: *mut f32,
            rows: usize,
        ) -> bool {
            if n < XREG_WORDS {
                return false;
            }
            bitmask_rows_f32_avx512(words, n, vals, x, y, rows);
            true
        }
        #[inline(always)]
        unsafe fn gather_u16(x: *const f32, idx: *const u16) -> __m512 {
            join8(Avx2::gather_u16(x, idx), Avx2::gather_u16(x, idx.add(8)))
        }
        #[inline(always)]
        unsafe fn gather_u32(x: *const f32, idx: *const u32) -> __m512 {
            join8(Avx2::gather_u32(x, idx), Avx2::gather_u32(x, idx.add(8)))
        }
        #[inline(always)]
        unsafe fn select24(x: *const f32, pos: u32) -> __m512 {
            let p = _mm512_and_si512(
                _mm512_srlv_epi32(
                    _mm512_set1_epi32(pos as i32),
                    _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30),
                ),
                _mm512_set1_epi32(3),
            );
            let p = _mm512_add_epi32(
                p,
                _mm512_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12, 16, 16, 20, 20, 24, 24, 28, 28),
            );
            _mm512_permutex2var_ps(_mm512_loadu_ps(x), p, _mm512_loadu_ps(x.add(16)))
        }
    }
}

/// Instantiates a generic kernel body once per ISA level and defines a dispatcher
/// `unsafe fn $name(isa, args...)` that calls the instance of `isa`: one without target features
/// (portable fallback) and two `#[target_feature]` functions, so that LLVM compiles the inlined
/// generic body `$body::<S, ...>` with the instructions of AVX2 and of AVX-512 respectively.
///
/// The dispatcher is `unsafe`: its caller proves `isa.supported()` and the memory contract of
/// `$body`.
macro_rules! per_isa {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident <$($g:ident : $bound:path),*> ($($arg:ident : $ty:ty),* $(,)?)
            => $body:ident
    ) => {
        $(#[$meta])*
        ///
        /// # Safety
        /// `isa.supported()`, and the memory contract of the generic body.
        #[allow(clippy::too_many_arguments)]
        $vis unsafe fn $name<$($g: $bound),*>(isa: $crate::kernels::simd::Isa, $($arg: $ty),*) {
            #[allow(clippy::too_many_arguments)]
            unsafe fn scalar<$($g: $bound),*>($($arg: $ty),*) {
                $body::<$crate::kernels::simd::Scalar, $($g),*>($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[allow(clippy::too_many_arguments)]
            #[target_feature(enable = "avx2,fma,f16c,bmi1,bmi2,popcnt")]
            unsafe fn avx2<$($g: $bound),*>($($arg: $ty),*) {
                $body::<$crate::kernels::simd::Avx2, $($g),*>($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[allow(clippy::too_many_arguments)]
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c,bmi1,bmi2,popcnt")]
            unsafe fn avx512<$($g: $bound),*>($($arg: $ty),*) {
                $body::<$crate::kernels::simd::Avx512, $($g),*>($($arg),*)
            }
            match isa {
                #[cfg(target_arch = "x86_64")]
                $crate::kernels::simd::Isa::Avx512 => avx512::<$($g),*>($($arg),*),
                #[cfg(target_arch = "x86_64")]
                $crate::kernels::simd::Isa::Avx2 => avx2::<$($g),*>($($arg),*),
                _ => scalar::<$($g),*>($($arg),*),
            }
        }
    };
}

pub(crate) use per_isa;
