//! SIMD lanes for the model's own vector code (the decode attention passes of
//! [`crate::attention`], the `exp` and SwiGLU gate of [`crate::vexp`]): one trait, [`Lanes`],
//! with an AVX-512 and an AVX2 + FMA level, so that each loop is written once, generic over the
//! level, and compiled per level inside a `#[target_feature]` function that inlines it (the
//! pattern of `secateurs_sparse::kernels::simd`, whose trait is private to that crate and
//! shaped for weight formats).
//!
//! # Safety
//! A level's methods may run only on a CPU with its features (AVX-512F; AVX2 and FMA), and
//! only inlined (`#[inline(always)]` all the way) into a function that enables them. Pointer
//! arguments address `Lanes::N` readable (or, for `store`, writable) floats.

use std::arch::x86_64::*;

/// One SIMD level: `N` f32 lanes in `V`.
pub(crate) trait Lanes: Copy {
    /// f32 lanes per vector.
    const N: usize;
    /// A vector of `N` floats.
    type V: Copy;
    /// Which lanes of the vectors seen so far held NaN (see [`Lanes::nan_or`]).
    type Nan: Copy;

    unsafe fn zero() -> Self::V;
    unsafe fn splat(x: f32) -> Self::V;
    unsafe fn load(p: *const f32) -> Self::V;
    unsafe fn store(p: *mut f32, v: Self::V);
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn sub(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn div(a: Self::V, b: Self::V) -> Self::V;
    /// `minps`/`maxps`: `b` where either lane is NaN.
    unsafe fn min(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn max(a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c`, rounded once.
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `c - a * b`, rounded once.
    unsafe fn fnma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// Each lane rounded to the nearest whole number (ties to even).
    unsafe fn round(a: Self::V) -> Self::V;
    /// `2^n` for lanes holding whole numbers `n` in `-126..=127`.
    unsafe fn pow2(n: Self::V) -> Self::V;
    /// `a` in the lanes where `x >= lo` (ordered: not where `x` is NaN), 0 elsewhere.
    unsafe fn keep_ge(x: Self::V, lo: f32, a: Self::V) -> Self::V;
    /// No lane seen yet.
    unsafe fn no_nan() -> Self::Nan;
    /// `seen` plus the NaN lanes of `a`.
    unsafe fn nan_or(seen: Self::Nan, a: Self::V) -> Self::Nan;
    unsafe fn any_nan(seen: Self::Nan) -> bool;
    /// The sum of the lanes (halves, then quarters, pairs and neighbours).
    unsafe fn hsum(a: Self::V) -> f32;
    /// The largest lane.
    unsafe fn hmax(a: Self::V) -> f32;
}

/// AVX-512F: 16 lanes.
#[derive(Clone, Copy)]
pub(crate) struct Avx512;

/// AVX2 and FMA: 8 lanes.
#[derive(Clone, Copy)]
pub(crate) struct Avx2;

impl Lanes for Avx512 {
    const N: usize = 16;
    type V = __m512;
    type Nan = __mmask16;

    #[inline(always)]
    unsafe fn zero() -> __m512 {
        _mm512_setzero_ps()
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m512 {
        _mm512_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        _mm512_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m512) {
        _mm512_storeu_ps(p, v)
    }
    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        _mm512_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: __m512, b: __m512) -> __m512 {
        _mm512_sub_ps(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: __m512, b: __m512) -> __m512 {
        _mm512_mul_ps(a, b)
    }
    #[inline(always)]
    unsafe fn div(a: __m512, b: __m512) -> __m512 {
        _mm512_div_ps(a, b)
    }
    #[inline(always)]
    unsafe fn min(a: __m512, b: __m512) -> __m512 {
        _mm512_min_ps(a, b)
    }
    #[inline(always)]
    unsafe fn max(a: __m512, b: __m512) -> __m512 {
        _mm512_max_ps(a, b)
    }
    #[inline(always)]
    unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
        _mm512_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn fnma(a: __m512, b: __m512, c: __m512) -> __m512 {
        _mm512_fnmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn round(a: __m512) -> __m512 {
        _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a)
    }
    #[inline(always)]
    unsafe fn pow2(n: __m512) -> __m512 {
        let e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
        _mm512_castsi512_ps(_mm512_slli_epi32::<23>(e))
    }
    #[inline(always)]
    unsafe fn keep_ge(x: __m512, lo: f32, a: __m512) -> __m512 {
        _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, _mm512_set1_ps(lo)), a)
    }
    #[inline(always)]
    unsafe fn no_nan() -> __mmask16 {
        0
    }
    #[inline(always)]
    unsafe fn nan_or(seen: __mmask16, a: __m512) -> __mmask16 {
        seen | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(a, a)
    }
    #[inline(always)]
    unsafe fn any_nan(seen: __mmask16) -> bool {
        seen != 0
    }
    #[inline(always)]
    unsafe fn hsum(a: __m512) -> f32 {
        _mm512_reduce_add_ps(a)
    }
    #[inline(always)]
    unsafe fn hmax(a: __m512) -> f32 {
        _mm512_reduce_max_ps(a)
    }
}

impl Lanes for Avx2 {
    const N: usize = 8;
    type V = __m256;
    type Nan = __m256;

    #[inline(always)]
    unsafe fn zero() -> __m256 {
        _mm256_setzero_ps()
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m256 {
        _mm256_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m256 {
        _mm256_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m256) {
        _mm256_storeu_ps(p, v)
    }
    #[inline(always)]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        _mm256_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: __m256, b: __m256) -> __m256 {
        _mm256_sub_ps(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: __m256, b: __m256) -> __m256 {
        _mm256_mul_ps(a, b)
    }
    #[inline(always)]
    unsafe fn div(a: __m256, b: __m256) -> __m256 {
        _mm256_div_ps(a, b)
    }
    #[inline(always)]
    unsafe fn min(a: __m256, b: __m256) -> __m256 {
        _mm256_min_ps(a, b)
    }
    #[inline(always)]
    unsafe fn max(a: __m256, b: __m256) -> __m256 {
        _mm256_max_ps(a, b)
    }
    #[inline(always)]
    unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
        _mm256_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn fnma(a: __m256, b: __m256, c: __m256) -> __m256 {
        _mm256_fnmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn round(a: __m256) -> __m256 {
        _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a)
    }
    #[inline(always)]
    unsafe fn pow2(n: __m256) -> __m256 {
        let e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
        _mm256_castsi256_ps(_mm256_slli_epi32::<23>(e))
    }
    #[inline(always)]
    unsafe fn keep_ge(x: __m256, lo: f32, a: __m256) -> __m256 {
        _mm256_and_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(x, _mm256_set1_ps(lo)), a)
    }
    #[inline(always)]
    unsafe fn no_nan() -> __m256 {
        _mm256_setzero_ps()
    }
    #[inline(always)]
    unsafe fn nan_or(seen: __m256, a: __m256) -> __m256 {
        _mm256_or_ps(seen, _mm256_cmp_ps::<_CMP_UNORD_Q>(a, a))
    }
    #[inline(always)]
    unsafe fn any_nan(seen: __m256) -> bool {
        _mm256_movemask_ps(seen) != 0
    }
    #[inline(always)]
    unsafe fn hsum(a: __m256) -> f32 {
        let h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
        let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)))
    }
    #[inline(always)]
    unsafe fn hmax(a: __m256) -> f32 {
        let h = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
        let h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)))
    }
}
