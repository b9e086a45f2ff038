//! Attention of a single query row over cached keys and values: the decode step of scaled
//! dot-product attention (Vaswani et al. 2017, "Attention Is All You Need", eq. 1:
//! `softmax(q Kᵀ / √d_k) V`), for the query heads that share one kv head under grouped-query
//! attention (Ainslie et al. 2023, "GQA", §2.2).
//!
//! Prefill multiplies blocks of query rows by the keys through GEMM. A decode step has one
//! query row per head and a few hundred keys; there a GEMM call per head, a fork/join over the
//! heads and a scalar `exp` per score cost more than the arithmetic (in a bf16 decode of the
//! default model they took ~17 µs of each layer's ~300 µs). Here the query heads of one kv head
//! go together through three passes over its cached rows, each key and value row loaded once
//! for all of them:
//! 1. the dot products `q_h · k_j × scale` into one row of scores per head;
//! 2. each row's softmax, its `exp` the vector polynomial of [`crate::vexp`] (Cephes' `expf`,
//!    within 2 ulp of `exp`);
//! 3. the probability-weighted sum of the value rows, each head's output held in registers.
//!
//! The passes are written for AVX-512 and for AVX2 + FMA at head dimensions 64 and 128, picked
//! at run time; other CPUs and head dimensions take a scalar loop. The sums run in another order
//! than GEMM's, so decode scores can differ from prefill's in the last bits (tests hold the
//! outputs within 1e-5 of an f64 reference).

use crate::ops::softmax_prefix;

/// Rows of keys or values of one kv head: row `j` is `data[j * stride..j * stride + head_dim]`.
#[derive(Clone, Copy)]
pub struct KvRows<'a> {
    /// The rows' storage.
    pub data: &'a [f32],
    /// Floats from one row to the next (at least the head dimension).
    pub stride: usize,
}

impl KvRows<'_> {
    /// Row `j` (`hd` floats).
    #[inline(always)]
    fn row(&self, j: usize, hd: usize) -> &[f32] {
        &self.data[j * self.stride..j * self.stride + hd]
    }
}

/// Query heads that go through the passes together (their scores and outputs stay in
/// registers; a larger group is taken in parts of this many).
const MAX_GROUP: usize = 4;

/// `out (heads, hd)`: for each query head `q_h` of `q (heads, hd)`, its attention over the
/// first `keys` rows of `k` and `v`, `softmax_j(q_h · k_j × scale) · V`. `scores` is scratch
/// space.
///
/// # Panics
/// If `keys` or `hd` is 0, `q` is not whole rows of `hd`, `out` differs from `q` in length, or
/// `k` or `v` holds fewer than `keys` rows of `hd`.
#[allow(clippy::too_many_arguments)]
pub fn group_query(
    q: &[f32],
    hd: usize,
    k: KvRows<'_>,
    v: KvRows<'_>,
    keys: usize,
    scale: f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    group_query_with(Simd::detect(hd), q, hd, k, v, keys, scale, scores, out);
}

/// [`group_query`] with the passes of `simd`.
#[allow(clippy::too_many_arguments)]
fn group_query_with(
    simd: Simd,
    q: &[f32],
    hd: usize,
    k: KvRows<'_>,
    v: KvRows<'_>,
    keys: usize,
    scale: f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    assert!(keys > 0 && hd > 0, "attention over no keys or of width 0");
    assert!(
        q.len().is_multiple_of(hd) && out.len() == q.len(),
        "attention queries and outputs: whole rows of {hd}"
    );
    for (name, rows) in [("keys", k), ("values", v)] {
        assert!(
            rows.stride >= hd && (keys - 1) * rows.stride + hd <= rows.data.len(),
            "attention {name}: fewer than {keys} rows of {hd}"
        );
    }
    scores.clear();
    scores.resize(MAX_GROUP.min(q.len() / hd) * keys, 0.0);
    for (qg, og) in q.chunks(MAX_GROUP * hd).zip(out.chunks_mut(MAX_GROUP * hd)) {
        let g = qg.len() / hd;
        let s = &mut scores[..g * keys]; // (g, keys)
        simd.scores(qg, g, k, scale, s, keys);
        for row in s.chunks_exact_mut(keys) {
            simd.softmax(row);
        }
        simd.weighted_sum(s, g, keys, v, og);
    }
}

/// The instructions of the three passes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Simd {
    /// Any head dimension, no vector code of our own.
    Scalar,
    /// AVX-512F, head dimension 64 (`false`) or 128 (`true`).
    #[cfg(target_arch = "x86_64")]
    Avx512(bool),
    /// AVX2 + FMA, head dimension 64 (`false`) or 128 (`true`).
    #[cfg(target_arch = "x86_64")]
    Avx2(bool),
}

/// Calls `$f::<N, G>($args)` for the register count `N` (`$n1` or, when `$wide`, `$n2`) and the
/// group size `G` (`$g`, 1 to 4).
#[cfg(target_arch = "x86_64")]
macro_rules! by_shape {
    ($m:ident::$f:ident, $wide:expr, $g:expr, [$n1:literal, $n2:literal], ($($a:expr),*)) => {
        match ($wide, $g) {
            (false, 1) => $m::$f::<$n1, 1>($($a),*),
            (false, 2) => $m::$f::<$n1, 2>($($a),*),
            (false, 3) => $m::$f::<$n1, 3>($($a),*),
            (false, _) => $m::$f::<$n1, 4>($($a),*),
            (true, 1) => $m::$f::<$n2, 1>($($a),*),
            (true, 2) => $m::$f::<$n2, 2>($($a),*),
            (true, 3) => $m::$f::<$n2, 3>($($a),*),
            (true, _) => $m::$f::<$n2, 4>($($a),*),
        }
    };
}

impl Simd {
    /// The widest passes this CPU has for head dimension `hd` (called once per kv head and
    /// decode step: no allocation, and std caches the feature tests).
    fn detect(hd: usize) -> Simd {
        #[cfg(target_arch = "x86_64")]
        if hd == 64 || hd == 128 {
            let wide = hd == 128;
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Simd::Avx512(wide);
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Simd::Avx2(wide);
            }
        }
        let _ = hd;
        Simd::Scalar
    }

    /// Every kind of passes this CPU can run for head dimension `hd`, narrowest first (the
    /// tests run each).
    #[cfg(test)]
    fn available(hd: usize) -> Vec<Simd> {
        #[allow(unused_mut)]
        let mut out = vec![Simd::Scalar];
        #[cfg(target_arch = "x86_64")]
        if let Simd::Avx512(wide) = Simd::detect(hd) {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                out.push(Simd::Avx2(wide));
            }
        }
        let best = Simd::detect(hd);
        if best != Simd::Scalar {
            out.push(best);
        }
        out
    }

    /// `s[h * keys + j] = (q_h · k_j) × scale` for the `g` heads of `q (g, hd)` and `j < keys`.
    fn scores(self, q: &[f32], g: usize, k: KvRows<'_>, scale: f32, s: &mut [f32], keys: usize) {
        match self {
            Simd::Scalar => {
                let hd = q.len() / g;
                for (qh, sh) in q.chunks_exact(hd).zip(s.chunks_exact_mut(keys)) {
                    for (j, sj) in sh.iter_mut().enumerate() {
                        let d: f32 = qh.iter().zip(k.row(j, hd)).map(|(a, b)| a * b).sum();
                        *sj = d * scale;
                    }
                }
            }
            // SAFETY (both arms): `available` offered the arm only on a CPU with its features
            // and for its head dimension, and `g` heads of it make `q` (see `x86`).
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512(w) => unsafe {
                by_shape!(x86::scores_avx512, w, g, [4, 8], (q, k, scale, s, keys))
            },
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2(w) => unsafe {
                by_shape!(x86::scores_avx2, w, g, [8, 16], (q, k, scale, s, keys))
            },
        }
    }

    /// In-place softmax of a row of scores.
    fn softmax(self, row: &mut [f32]) {
        match self {
            Simd::Scalar => softmax_prefix(row, row.len()),
            // SAFETY: as in `scores`.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512(_) => unsafe { x86::softmax_avx512(row) },
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2(_) => unsafe { x86::softmax_avx2(row) },
        }
    }

    /// `out_h = Σ_j p[h * keys + j] · v_j` for the `g` heads of `out (g, hd)`.
    fn weighted_sum(self, p: &[f32], g: usize, keys: usize, v: KvRows<'_>, out: &mut [f32]) {
        match self {
            Simd::Scalar => {
                let hd = out.len() / g;
                for (oh, ph) in out.chunks_exact_mut(hd).zip(p.chunks_exact(keys)) {
                    oh.fill(0.0);
                    for (j, &pj) in ph.iter().enumerate() {
                        for (o, x) in oh.iter_mut().zip(v.row(j, hd)) {
                            *o += pj * x;
                        }
                    }
                }
            }
            // SAFETY: as in `scores`.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512(w) => unsafe {
                by_shape!(x86::weighted_sum_avx512, w, g, [4, 8], (p, keys, v, out))
            },
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2(w) => unsafe {
                by_shape!(x86::weighted_sum_avx2, w, g, [8, 16], (p, keys, v, out))
            },
        }
    }
}

/// The vector passes. `N` registers hold one row of the head dimension and `G` heads go
/// together. Each function's caller proves that the CPU has the enabled features; the
/// functions assert the lengths their loads and stores rely on, and every pointer they read or
/// write is `slice.as_ptr().add(i)` for a slice checked to hold `i + lanes` floats.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::KvRows;
    use crate::vexp::x86::{exp_avx2, exp_avx512};
    use std::arch::x86_64::*;

    /// # Safety
    /// AVX-512F, `q.len() == G * 16N`, `s.len() == G * keys`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn scores_avx512<const N: usize, const G: usize>(
        q: &[f32],
        k: KvRows<'_>,
        scale: f32,
        s: &mut [f32],
        keys: usize,
    ) {
        let hd = 16 * N;
        assert!(q.len() == G * hd && s.len() == G * keys);
        let mut qr = [[_mm512_setzero_ps(); N]; G];
        for (h, regs) in qr.iter_mut().enumerate() {
            for (c, r) in regs.iter_mut().enumerate() {
                // SAFETY: h * hd + 16c + 16 <= G * hd = q.len().
                *r = unsafe { _mm512_loadu_ps(q.as_ptr().add(h * hd + 16 * c)) };
            }
        }
        for j in 0..keys {
            let row = k.row(j, hd);
            let mut kr = [_mm512_setzero_ps(); N];
            for (c, r) in kr.iter_mut().enumerate() {
                // SAFETY: 16c + 16 <= hd = row.len().
                *r = unsafe { _mm512_loadu_ps(row.as_ptr().add(16 * c)) };
            }
            for (h, regs) in qr.iter().enumerate() {
                let mut acc = _mm512_mul_ps(regs[0], kr[0]);
                for c in 1..N {
                    acc = _mm512_fmadd_ps(regs[c], kr[c], acc);
                }
                s[h * keys + j] = _mm512_reduce_add_ps(acc) * scale;
            }
        }
    }

    /// # Safety
    /// AVX-512F, `out.len() == G * 16N`, `p.len() == G * keys`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn weighted_sum_avx512<const N: usize, const G: usize>(
        p: &[f32],
        keys: usize,
        v: KvRows<'_>,
        out: &mut [f32],
    ) {
        let hd = 16 * N;
        assert!(out.len() == G * hd && p.len() == G * keys);
        let mut acc = [[_mm512_setzero_ps(); N]; G];
        for j in 0..keys {
            let row = v.row(j, hd);
            let mut vr = [_mm512_setzero_ps(); N];
            for (c, r) in vr.iter_mut().enumerate() {
                // SAFETY: 16c + 16 <= hd = row.len().
                *r = unsafe { _mm512_loadu_ps(row.as_ptr().add(16 * c)) };
            }
            for (h, regs) in acc.iter_mut().enumerate() {
                let ph = _mm512_set1_ps(p[h * keys + j]);
                for (a, x) in regs.iter_mut().zip(&vr) {
                    *a = _mm512_fmadd_ps(ph, *x, *a);
                }
            }
        }
        for (h, regs) in acc.iter().enumerate() {
            for (c, a) in regs.iter().enumerate() {
                // SAFETY: h * hd + 16c + 16 <= G * hd = out.len().
                unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(h * hd + 16 * c), *a) };
            }
        }
    }

    /// # Safety
    /// AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn softmax_avx512(row: &mut [f32]) {
        let full = row.len() / 16 * 16;
        let tail: __mmask16 = ((1u32 << (row.len() - full)) - 1) as __mmask16;
        let ptr = row.as_mut_ptr();
        // SAFETY (every load and store below): lanes i..i + 16 with i + 16 <= full, or the
        // `tail` lanes full..row.len(); masked-off lanes are neither read nor written.
        let mut m = _mm512_set1_ps(f32::NEG_INFINITY);
        let mut nan: __mmask16 = 0;
        for i in (0..full).step_by(16) {
            let x = unsafe { _mm512_loadu_ps(ptr.add(i)) };
            nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
            m = _mm512_max_ps(m, x);
        }
        let t = unsafe { _mm512_maskz_loadu_ps(tail, ptr.add(full)) };
        nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(t, t);
        m = _mm512_mask_max_ps(m, tail, m, t);
        let max = _mm512_reduce_max_ps(m);
        if nan != 0 || !max.is_finite() {
            // As the scalar softmax: a NaN or infinite score makes the whole row NaN.
            row.fill(f32::NAN);
            return;
        }
        let max = _mm512_set1_ps(max);
        let mut sum = _mm512_setzero_ps();
        for i in (0..full).step_by(16) {
            let e = exp_avx512(_mm512_sub_ps(unsafe { _mm512_loadu_ps(ptr.add(i)) }, max));
            unsafe { _mm512_storeu_ps(ptr.add(i), e) };
            sum = _mm512_add_ps(sum, e);
        }
        let e = exp_avx512(_mm512_sub_ps(t, max));
        unsafe { _mm512_mask_storeu_ps(ptr.add(full), tail, e) };
        sum = _mm512_mask_add_ps(sum, tail, sum, e);
        let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(sum));
        for i in (0..full).step_by(16) {
            let x = unsafe { _mm512_loadu_ps(ptr.add(i)) };
            unsafe { _mm512_storeu_ps(ptr.add(i), _mm512_mul_ps(x, inv)) };
        }
        let x = unsafe { _mm512_maskz_loadu_ps(tail, ptr.add(full)) };
        unsafe { _mm512_mask_storeu_ps(ptr.add(full), tail, _mm512_mul_ps(x, inv)) };
    }

    /// The sum of 8 lanes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn sum_avx2(a: __m256) -> f32 {
        let h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
        let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)))
    }

    /// # Safety
    /// AVX2 and FMA, `q.len() == G * 8N`, `s.len() == G * keys`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn scores_avx2<const N: usize, const G: usize>(
        q: &[f32],
        k: KvRows<'_>,
        scale: f32,
        s: &mut [f32],
        keys: usize,
    ) {
        let hd = 8 * N;
        assert!(q.len() == G * hd && s.len() == G * keys);
        let mut qr = [[_mm256_setzero_ps(); N]; G];
        for (h, regs) in qr.iter_mut().enumerate() {
            for (c, r) in regs.iter_mut().enumerate() {
                // SAFETY: h * hd + 8c + 8 <= G * hd = q.len().
                *r = unsafe { _mm256_loadu_ps(q.as_ptr().add(h * hd + 8 * c)) };
            }
        }
        for j in 0..keys {
            let row = k.row(j, hd);
            for (h, regs) in qr.iter().enumerate() {
                // Two chains of FMAs, even and odd registers.
                let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
                for (c, qc) in regs.iter().enumerate() {
                    // SAFETY: 8c + 8 <= hd = row.len().
                    let kc = unsafe { _mm256_loadu_ps(row.as_ptr().add(8 * c)) };
                    if c % 2 == 0 {
                        a0 = _mm256_fmadd_ps(*qc, kc, a0);
                    } else {
                        a1 = _mm256_fmadd_ps(*qc, kc, a1);
                    }
                }
                s[h * keys + j] = sum_avx2(_mm256_add_ps(a0, a1)) * scale;
            }
        }
    }

    /// # Safety
    /// AVX2 and FMA, `out.len() == G * 8N`, `p.len() == G * keys`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn weighted_sum_avx2<const N: usize, const G: usize>(
        p: &[f32],
        keys: usize,
        v: KvRows<'_>,
        out: &mut [f32],
    ) {
        let hd = 8 * N;
        assert!(out.len() == G * hd && p.len() == G * keys);
        let mut acc = [[_mm256_setzero_ps(); N]; G];
        for j in 0..keys {
            let row = v.row(j, hd);
            for (h, regs) in acc.iter_mut().enumerate() {
                let ph = _mm256_set1_ps(p[h * keys + j]);
                for (c, a) in regs.iter_mut().enumerate() {
                    // SAFETY: 8c + 8 <= hd = row.len().
                    let x = unsafe { _mm256_loadu_ps(row.as_ptr().add(8 * c)) };
                    *a = _mm256_fmadd_ps(ph, x, *a);
                }
            }
        }
        for (h, regs) in acc.iter().enumerate() {
            for (c, a) in regs.iter().enumerate() {
                // SAFETY: h * hd + 8c + 8 <= G * hd = out.len().
                unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(h * hd + 8 * c), *a) };
            }
        }
    }

    /// # Safety
    /// AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn softmax_avx2(row: &mut [f32]) {
        let full = row.len() / 8 * 8;
        let (body, rest) = row.split_at_mut(full);
        // The last `rest.len() < 8` scores go through a padded copy.
        let mut pad = [f32::NEG_INFINITY; 8];
        pad[..rest.len()].copy_from_slice(rest);
        let ptr = body.as_mut_ptr();
        // SAFETY (every load and store below): lanes i..i + 8 with i + 8 <= full = body.len(),
        // or the 8 lanes of `pad`.
        let t = unsafe { _mm256_loadu_ps(pad.as_ptr()) };
        let mut m = t;
        let mut nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(t, t);
        for i in (0..full).step_by(8) {
            let x = unsafe { _mm256_loadu_ps(ptr.add(i)) };
            nan = _mm256_or_ps(nan, _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x));
            m = _mm256_max_ps(m, x);
        }
        let h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
        let h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        let max = _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
        if _mm256_movemask_ps(nan) != 0 || !max.is_finite() {
            // As the scalar softmax: a NaN or infinite score makes the whole row NaN.
            rest.fill(f32::NAN);
            body.fill(f32::NAN);
            return;
        }
        let max = _mm256_set1_ps(max);
        let mut sum = _mm256_setzero_ps();
        for i in (0..full).step_by(8) {
            let e = exp_avx2(_mm256_sub_ps(unsafe { _mm256_loadu_ps(ptr.add(i)) }, max));
            unsafe { _mm256_storeu_ps(ptr.add(i), e) };
            sum = _mm256_add_ps(sum, e);
        }
        unsafe { _mm256_storeu_ps(pad.as_mut_ptr(), exp_avx2(_mm256_sub_ps(t, max))) };
        let tail: f32 = pad[..rest.len()].iter().sum();
        let inv = 1.0 / (sum_avx2(sum) + tail);
        let iv = _mm256_set1_ps(inv);
        for i in (0..full).step_by(8) {
            let x = unsafe { _mm256_loadu_ps(ptr.add(i)) };
            unsafe { _mm256_storeu_ps(ptr.add(i), _mm256_mul_ps(x, iv)) };
        }
        for (r, e) in rest.iter_mut().zip(&pad) {
            *r = e * inv;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, in f64: `(heads, hd)` outputs.
    fn reference(q: &[f32], hd: usize, k: &[f32], v: &[f32], keys: usize, scale: f32) -> Vec<f64> {
        q.chunks(hd)
            .flat_map(|qh| {
                let s: Vec<f64> = (0..keys)
                    .map(|j| {
                        let d: f64 = (0..hd).map(|i| qh[i] as f64 * k[j * hd + i] as f64).sum();
                        d * scale as f64
                    })
                    .collect();
                let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = e.iter().sum();
                (0..hd)
                    .map(|i| (0..keys).map(|j| e[j] / z * v[j * hd + i] as f64).sum())
                    .collect::<Vec<f64>>()
            })
            .collect()
    }

    fn rng(seed: u64) -> impl FnMut() -> f32 {
        let mut s = seed;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        }
    }

    #[test]
    fn every_kind_of_passes_matches_the_definition() {
        let mut rnd = rng(7);
        let mut kinds_run = 0;
        for hd in [64, 128, 7, 80] {
            for heads in [1, 2, 3, 4, 5, 8] {
                for keys in [1, 15, 16, 17, 150] {
                    let q: Vec<f32> = (0..heads * hd).map(|_| 3.0 * rnd()).collect();
                    let k: Vec<f32> = (0..keys * hd).map(|_| rnd()).collect();
                    let v: Vec<f32> = (0..keys * hd).map(|_| rnd()).collect();
                    let scale = 1.0 / (hd as f32).sqrt();
                    let want = reference(&q, hd, &k, &v, keys, scale);
                    let rows = |d| KvRows {
                        data: d,
                        stride: hd,
                    };
                    for simd in Simd::available(hd) {
                        let mut out = vec![f32::NAN; heads * hd];
                        let mut scores = vec![f32::NAN; 3];
                        group_query_with(
                            simd,
                            &q,
                            hd,
                            rows(&k),
                            rows(&v),
                            keys,
                            scale,
                            &mut scores,
                            &mut out,
                        );
                        for (g, w) in out.iter().zip(&want) {
                            assert!(
                                (*g as f64 - w).abs() < 1e-5,
                                "{simd:?} hd {hd} heads {heads} keys {keys}: {g} vs {w}"
                            );
                        }
                        kinds_run += 1;
                    }
                }
            }
        }
        assert!(kinds_run >= 4 * 6 * 5);
    }

    #[test]
    fn reads_strided_rows_and_only_the_first_keys() {
        let hd = 64;
        // Rows of two kv heads side by side (stride 128); the rows past `keys` hold NaN.
        let (keys, stride) = (19, 128);
        let mut rnd = rng(3);
        let mut k = vec![f32::NAN; 24 * stride];
        let mut v = vec![f32::NAN; 24 * stride];
        for j in 0..keys {
            for i in 0..hd {
                k[j * stride + i] = rnd();
                v[j * stride + i] = rnd();
            }
        }
        let q: Vec<f32> = (0..3 * hd).map(|_| rnd()).collect();
        let dense = |m: &[f32]| -> Vec<f32> {
            (0..keys)
                .flat_map(|j| m[j * stride..j * stride + hd].to_vec())
                .collect()
        };
        let want = reference(&q, hd, &dense(&k), &dense(&v), keys, 0.125);
        for simd in Simd::available(hd) {
            let mut out = vec![0.0; 3 * hd];
            let rows = |data| KvRows { data, stride };
            group_query_with(
                simd,
                &q,
                hd,
                rows(&k),
                rows(&v),
                keys,
                0.125,
                &mut Vec::new(),
                &mut out,
            );
            for (g, w) in out.iter().zip(&want) {
                assert!((*g as f64 - w).abs() < 1e-5, "{simd:?}: {g} vs {w}");
            }
        }
    }

    #[test]
    fn a_nan_or_infinite_score_gives_nan_as_the_scalar_softmax_does() {
        let hd = 64;
        for bad in [f32::NAN, f32::INFINITY] {
            for keys in [5, 16, 21] {
                let q = vec![1.0f32; hd];
                let mut k = vec![0.1f32; keys * hd];
                k[(keys - 2) * hd] = bad;
                let v = vec![1.0f32; keys * hd];
                for simd in Simd::available(hd) {
                    let mut out = vec![0.0; hd];
                    let rows = |data| KvRows { data, stride: hd };
                    group_query_with(
                        simd,
                        &q,
                        hd,
                        rows(&k),
                        rows(&v),
                        keys,
                        0.125,
                        &mut Vec::new(),
                        &mut out,
                    );
                    assert!(
                        out.iter().all(|o| o.is_nan()),
                        "{simd:?} {bad} {keys}: {:?}",
                        &out[..2]
                    );
                }
            }
        }
    }

    #[test]
    fn a_score_far_below_the_maximum_gets_no_weight() {
        // Scores 0 and -200: the second value row must not contribute (its weight is 0).
        let hd = 64;
        let q = vec![1.0f32; hd];
        let mut k = vec![0.0f32; 2 * hd];
        k[hd..].fill(-200.0 * 8.0 / hd as f32);
        let mut v = vec![1.0f32; 2 * hd];
        v[hd..].fill(1e30);
        for simd in Simd::available(hd) {
            let mut out = vec![0.0; hd];
            let rows = |data| KvRows { data, stride: hd };
            group_query_with(
                simd,
                &q,
                hd,
                rows(&k),
                rows(&v),
                2,
                0.125,
                &mut Vec::new(),
                &mut out,
            );
            assert!(out.iter().all(|&o| o == 1.0), "{simd:?}: {:?}", &out[..4]);
        }
    }
}
