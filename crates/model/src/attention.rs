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
//! The passes are written once over the crate's SIMD lanes (`lanes.rs`) and compiled for AVX-512
//! and for AVX2 + FMA at head dimensions 64 and 128, picked at run time; other CPUs and head
//! dimensions take a scalar loop. The sums run in another order than GEMM's, so decode scores can
//! differ from prefill's in the last bits (tests hold the outputs within 1e-5 of an f64 reference).

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

/// The vector passes, written once over [`Lanes`](crate::lanes::Lanes) and compiled per level. `N`
/// registers hold one row of the head dimension and `G` heads go together. Each entry point's
/// caller proves that the CPU has the enabled features; the passes assert the lengths their loads
/// and stores rely on, and every pointer they read or write is `slice.as_ptr().add(i)` for a slice
/// checked to hold `i + lanes` floats.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::KvRows;
    use crate::lanes::{Avx2, Avx512, Lanes};
    use crate::vexp::x86::exp;

    /// `s[h * keys + j] = (q_h · k_j) × scale`.
    ///
    /// # Safety
    /// As [`Lanes`]' methods; `q.len() == G * N * L::N`, `s.len() == G * keys`.
    #[inline(always)]
    unsafe fn scores<L: Lanes, const N: usize, const G: usize>(
        q: &[f32],
        k: KvRows<'_>,
        scale: f32,
        s: &mut [f32],
        keys: usize,
    ) {
        let hd = L::N * N;
        assert!(q.len() == G * hd && s.len() == G * keys);
        let mut qr = [[L::zero(); N]; G];
        for (h, regs) in qr.iter_mut().enumerate() {
            for (c, r) in regs.iter_mut().enumerate() {
                // SAFETY: h * hd + (c + 1) * L::N <= G * hd = q.len().
                *r = unsafe { L::load(q.as_ptr().add(h * hd + L::N * c)) };
            }
        }
        for j in 0..keys {
            let row = k.row(j, hd);
            let mut kr = [L::zero(); N];
            for (c, r) in kr.iter_mut().enumerate() {
                // SAFETY: (c + 1) * L::N <= hd = row.len().
                *r = unsafe { L::load(row.as_ptr().add(L::N * c)) };
            }
            for (h, regs) in qr.iter().enumerate() {
                let mut acc = L::mul(regs[0], kr[0]);
                for c in 1..N {
                    acc = L::fma(regs[c], kr[c], acc);
                }
                s[h * keys + j] = L::hsum(acc) * scale;
            }
        }
    }

    /// `out_h = Σ_j p[h * keys + j] · v_j`.
    ///
    /// # Safety
    /// As [`Lanes`]' methods; `out.len() == G * N * L::N`, `p.len() == G * keys`.
    #[inline(always)]
    unsafe fn weighted_sum<L: Lanes, const N: usize, const G: usize>(
        p: &[f32],
        keys: usize,
        v: KvRows<'_>,
        out: &mut [f32],
    ) {
        let hd = L::N * N;
        assert!(out.len() == G * hd && p.len() == G * keys);
        let mut acc = [[L::zero(); N]; G];
        for j in 0..keys {
            let row = v.row(j, hd);
            let mut vr = [L::zero(); N];
            for (c, r) in vr.iter_mut().enumerate() {
                // SAFETY: (c + 1) * L::N <= hd = row.len().
                *r = unsafe { L::load(row.as_ptr().add(L::N * c)) };
            }
            for (h, regs) in acc.iter_mut().enumerate() {
                let ph = L::splat(p[h * keys + j]);
                for (a, x) in regs.iter_mut().zip(&vr) {
                    *a = L::fma(ph, *x, *a);
                }
            }
        }
        for (h, regs) in acc.iter().enumerate() {
            for (c, a) in regs.iter().enumerate() {
                // SAFETY: h * hd + (c + 1) * L::N <= G * hd = out.len().
                unsafe { L::store(out.as_mut_ptr().add(h * hd + L::N * c), *a) };
            }
        }
    }

    /// In-place softmax of a row of scores; the last `len % N` go through a copy padded with
    /// `-∞` (which changes neither the maximum nor, as `e^-∞ = 0`, the sum).
    ///
    /// # Safety
    /// As [`Lanes`]' methods.
    #[inline(always)]
    unsafe fn softmax<L: Lanes>(row: &mut [f32]) {
        let full = row.len() / L::N * L::N;
        let (body, rest) = row.split_at_mut(full);
        let mut pad = [f32::NEG_INFINITY; 16]; // N <= 16
        pad[..rest.len()].copy_from_slice(rest);
        let ptr = body.as_mut_ptr();
        // SAFETY (every load and store below): lanes i..i + N with i + N <= full = body.len(),
        // or the first N lanes of `pad`.
        let t = unsafe { L::load(pad.as_ptr()) };
        let (mut m, mut nan) = (t, L::nan_or(L::no_nan(), t));
        for i in (0..full).step_by(L::N) {
            let x = unsafe { L::load(ptr.add(i)) };
            nan = L::nan_or(nan, x);
            m = L::max(m, x);
        }
        let max = L::hmax(m);
        if L::any_nan(nan) || !max.is_finite() {
            // As the scalar softmax: a NaN or infinite score makes the whole row NaN.
            row.fill(f32::NAN);
            return;
        }
        let mx = L::splat(max);
        let mut sum = L::zero();
        for i in (0..full).step_by(L::N) {
            let e = exp::<L>(L::sub(unsafe { L::load(ptr.add(i)) }, mx));
            unsafe { L::store(ptr.add(i), e) };
            sum = L::add(sum, e);
        }
        let e = exp::<L>(L::sub(t, mx));
        unsafe { L::store(pad.as_mut_ptr(), e) };
        sum = L::add(sum, e);
        let inv = 1.0 / L::hsum(sum);
        let iv = L::splat(inv);
        for i in (0..full).step_by(L::N) {
            let x = unsafe { L::load(ptr.add(i)) };
            unsafe { L::store(ptr.add(i), L::mul(x, iv)) };
        }
        for (r, e) in rest.iter_mut().zip(&pad) {
            *r = e * inv;
        }
    }

    /// The entry points of one level: the passes inlined into functions that enable its
    /// features.
    macro_rules! level {
        ($features:literal, $l:ty, $scores:ident, $weighted_sum:ident, $softmax:ident) => {
            /// # Safety
            #[doc = concat!("The CPU has ", $features, "; lengths as in [`scores`].")]
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $scores<const N: usize, const G: usize>(
                q: &[f32],
                k: KvRows<'_>,
                scale: f32,
                s: &mut [f32],
                keys: usize,
            ) {
                scores::<$l, N, G>(q, k, scale, s, keys)
            }

            /// # Safety
            #[doc = concat!("The CPU has ", $features, "; lengths as in [`weighted_sum`].")]
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $weighted_sum<const N: usize, const G: usize>(
                p: &[f32],
                keys: usize,
                v: KvRows<'_>,
                out: &mut [f32],
            ) {
                weighted_sum::<$l, N, G>(p, keys, v, out)
            }

            /// # Safety
            #[doc = concat!("The CPU has ", $features, ".")]
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $softmax(row: &mut [f32]) {
                softmax::<$l>(row)
            }
        };
    }

    level!(
        "avx512f",
        Avx512,
        scores_avx512,
        weighted_sum_avx512,
        softmax_avx512
    );
    level!(
        "avx2,fma",
        Avx2,
        scores_avx2,
        weighted_sum_avx2,
        softmax_avx2
    );
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
