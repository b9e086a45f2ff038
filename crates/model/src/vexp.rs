//! A vector `e^x` and the SwiGLU gate built on it.
//!
//! The exponential is Cephes' `expf` (S. L. Moshier, "Methods and Programs for Mathematical
//! Functions", 1989; `cephes/single/expf.c`) on SIMD lanes: `x = n·ln2 + r` with
//! `n = round(x / ln2)` and `|r| ≤ ln2/2` (`ln2` split in two, Cody and Waite 1980, so that
//! `n · LN2_HI` is exact), then `e^r ≈ 1 + r + r² · P(r)` with a degree-5 `P`, and `2^n` built
//! in the exponent bits. Within 2 ulp of `exp` on `[-87, 88]` (tested). Below `EXP_MIN` a lane is
//! 0 (`2^n` would not be a normal float); above `EXP_MAX` it is `e^EXP_MAX` (≈ 2.4e38).
//!
//! Users: the decode softmax ([`crate::attention`]) and [`silu_mul`], the SwiGLU gate of the
//! LLaMA MLP (Shazeer 2020, "GLU Variants Improve Transformer", eq. 5:
//! `SwiGLU(x) = Swish₁(xW) ⊗ xV`, `Swish₁(z) = z · σ(z) = z / (1 + e^-z)`), where a scalar
//! `exp` per element took 2.35 µs of each 1536-wide decode layer (0.33 µs with the vector
//! `exp`; ~140 µs of a bf16 token of the default model as timed in place).

/// `gate[i] = silu(gate[i]) · up[i]` = `gate[i] / (1 + e^-gate[i]) · up[i]`, with the vector
/// `exp` where the CPU has AVX-512 or AVX2 + FMA and `f32::exp` otherwise.
///
/// The vector and scalar paths agree to a few ulp; they differ where `e^-gate` overflows
/// (`gate < -88.4`): the vector `exp` saturates, so `gate = -∞` gives `-∞ · up` instead of
/// the scalar NaN, and a finite `gate` there gives ±0 or a tiny value either way. A NaN in
/// `gate` or `up` gives NaN on both.
///
/// # Panics
/// If `gate` and `up` differ in length.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    assert_eq!(
        gate.len(),
        up.len(),
        "silu_mul: gate and up differ in length"
    );
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F; the lengths are equal (asserted above).
            return unsafe { x86::silu_mul_avx512(gate, up) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA; the lengths are equal.
            return unsafe { x86::silu_mul_avx2(gate, up) };
        }
    }
    silu_mul_scalar(gate, up);
}

/// [`silu_mul`] with `f32::exp`.
fn silu_mul_scalar(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// The vector `exp` and the `silu_mul` loop, written once over [`Lanes`](crate::lanes::Lanes)
/// and compiled per level. Their callers prove that the CPU has the enabled features; the loop
/// reads and writes whole vectors inside the slices, and the last `len % N` elements through a
/// padded copy.
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use crate::lanes::{Avx2, Avx512, Lanes};

    /// `ln 2` split in two (Cody–Waite): `LN2_HI` has few mantissa bits, so `n · LN2_HI` is
    /// exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    /// Cephes `expf`'s polynomial: `e^r ≈ 1 + r + r² · P(r)` on `|r| ≤ ln2/2`.
    const EXP_P: [f32; 6] = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ];
    /// Below this `e^x` is 0 here (`2^n` would not be a normal float; `exp` gives denormals
    /// down to -103.9, which no softmax weight can tell from 0).
    const EXP_MIN: f32 = -87.336_55;
    const EXP_MAX: f32 = 88.376_26;

    /// `e^x` on the lanes of `x0` (see the module doc): 0 below `EXP_MIN` and for NaN, `x`
    /// clamped to `EXP_MAX` above.
    ///
    /// # Safety
    /// As [`Lanes`]' methods.
    #[inline(always)]
    pub(crate) unsafe fn exp<L: Lanes>(x0: L::V) -> L::V {
        let x = L::min(L::max(x0, L::splat(EXP_MIN)), L::splat(EXP_MAX));
        let n = L::round(L::mul(x, L::splat(std::f32::consts::LOG2_E)));
        let r = L::fnma(n, L::splat(LN2_HI), x);
        let r = L::fnma(n, L::splat(LN2_LO), r);
        let mut y = L::splat(EXP_P[0]);
        for &c in &EXP_P[1..] {
            y = L::fma(y, r, L::splat(c));
        }
        let y = L::fma(y, L::mul(r, r), L::add(r, L::splat(1.0)));
        L::keep_ge(x0, EXP_MIN, L::mul(y, L::pow2(n)))
    }

    /// `silu(g) · u` on the lanes of `g` and `u`.
    #[inline(always)]
    unsafe fn silu_mul_v<L: Lanes>(g: L::V, u: L::V) -> L::V {
        let e = exp::<L>(L::sub(L::zero(), g));
        L::mul(L::div(g, L::add(L::splat(1.0), e)), u)
    }

    /// [`super::silu_mul`] over the lanes of `L`.
    ///
    /// # Safety
    /// As [`Lanes`]' methods; `gate.len() == up.len()`.
    #[inline(always)]
    unsafe fn silu_mul_lanes<L: Lanes>(gate: &mut [f32], up: &[f32]) {
        let mut gs = gate.chunks_exact_mut(L::N);
        let mut us = up.chunks_exact(L::N);
        for (g, u) in (&mut gs).zip(&mut us) {
            // SAFETY: `g` and `u` hold `N` floats each.
            unsafe {
                let y = silu_mul_v::<L>(L::load(g.as_ptr()), L::load(u.as_ptr()));
                L::store(g.as_mut_ptr(), y);
            }
        }
        let (g, u) = (gs.into_remainder(), us.remainder());
        if !g.is_empty() {
            // The last `len % N` through zero-padded copies (`N <= 16`).
            let (mut gp, mut up) = ([0.0f32; 16], [0.0f32; 16]);
            gp[..g.len()].copy_from_slice(g);
            up[..u.len()].copy_from_slice(u);
            // SAFETY: `gp` and `up` hold at least `N` floats each.
            unsafe {
                let y = silu_mul_v::<L>(L::load(gp.as_ptr()), L::load(up.as_ptr()));
                L::store(gp.as_mut_ptr(), y);
            }
            let n = g.len();
            g.copy_from_slice(&gp[..n]);
        }
    }

    /// # Safety
    /// AVX-512F, `gate.len() == up.len()`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn silu_mul_avx512(gate: &mut [f32], up: &[f32]) {
        silu_mul_lanes::<Avx512>(gate, up)
    }

    /// # Safety
    /// AVX2 and FMA, `gate.len() == up.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn silu_mul_avx2(gate: &mut [f32], up: &[f32]) {
        silu_mul_lanes::<Avx2>(gate, up)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// `e^x` of 16 floats, `L::N` at a time.
        #[inline(always)]
        unsafe fn exp16<L: Lanes>(x: &[f32; 16]) -> [f32; 16] {
            let mut o = [0.0f32; 16];
            for i in (0..16).step_by(L::N) {
                // SAFETY: `i + N <= 16` floats of `x` and `o`.
                unsafe { L::store(o.as_mut_ptr().add(i), exp::<L>(L::load(x.as_ptr().add(i)))) };
            }
            o
        }

        #[target_feature(enable = "avx512f")]
        unsafe fn exp16_avx512(x: &[f32; 16]) -> [f32; 16] {
            exp16::<Avx512>(x)
        }

        #[target_feature(enable = "avx2,fma")]
        unsafe fn exp16_avx2(x: &[f32; 16]) -> [f32; 16] {
            exp16::<Avx2>(x)
        }

        /// Relative error of the vector `exp` against f64 over softmax's arguments (`≤ 0`) and
        /// SiLU's (`-gate`, either sign).
        #[test]
        fn vector_exp_is_within_two_ulp_of_exp() {
            let xs: Vec<f32> = (0..=400_000)
                .map(|i| -87.0 + 175.0 * i as f32 / 400_000.0)
                .chain([
                    0.0,
                    -1e-30,
                    1e-30,
                    -0.5 * std::f32::consts::LN_2,
                    -87.3,
                    88.3,
                ])
                .collect();
            let mut worst = 0.0f64;
            for chunk in xs.chunks(16) {
                let mut lanes = [0.0f32; 16];
                lanes[..chunk.len()].copy_from_slice(chunk);
                let mut got = Vec::new();
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    got.push(unsafe { exp16_avx512(&lanes) });
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has AVX2 and FMA.
                    got.push(unsafe { exp16_avx2(&lanes) });
                }
                for o in &got {
                    for (x, e) in chunk.iter().zip(o) {
                        let want = (*x as f64).exp();
                        let ulp = f64::from(f32::EPSILON) * want;
                        worst = worst.max((*e as f64 - want).abs() / ulp);
                    }
                }
            }
            assert!(worst <= 2.0, "worst error {worst} ulp");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `silu(g) · u` in f64.
    fn reference(g: f32, u: f32) -> f64 {
        let g = g as f64;
        g / (1.0 + (-g).exp()) * u as f64
    }

    fn rng(seed: u64) -> impl FnMut() -> f32 {
        let mut s = seed;
        move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }
    }

    /// Every path this CPU has, named, for `silu_mul`'s tests.
    #[allow(clippy::type_complexity)]
    fn paths() -> Vec<(&'static str, Box<dyn Fn(&mut [f32], &[f32])>)> {
        #[allow(unused_mut)]
        let mut out: Vec<(&'static str, Box<dyn Fn(&mut [f32], &[f32])>)> = vec![
            ("dispatch", Box::new(silu_mul)),
            ("scalar", Box::new(silu_mul_scalar)),
        ];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F; the tests pass slices of equal length.
                out.push((
                    "avx512",
                    Box::new(|g, u| unsafe { x86::silu_mul_avx512(g, u) }),
                ));
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU has AVX2 and FMA; the tests pass slices of equal length.
                out.push(("avx2", Box::new(|g, u| unsafe { x86::silu_mul_avx2(g, u) })));
            }
        }
        out
    }

    #[test]
    fn every_path_matches_the_definition_at_every_length() {
        let mut r = rng(7);
        for len in (0..=40).chain([1536, 1537]) {
            let g: Vec<f32> = (0..len).map(|_| 12.0 * r()).collect();
            let u: Vec<f32> = (0..len).map(|_| 3.0 * r()).collect();
            for (name, f) in paths() {
                let mut got = g.clone();
                f(&mut got, &u);
                for i in 0..len {
                    let want = reference(g[i], u[i]);
                    let err = (got[i] as f64 - want).abs();
                    assert!(
                        err <= 4.0 * f64::from(f32::EPSILON) * want.abs() + 1e-30,
                        "{name}, len {len}, i {i}: {} against {want}",
                        got[i]
                    );
                }
            }
        }
    }

    #[test]
    fn extreme_gates_give_zero_or_the_gate_and_nan_stays_nan() {
        let g = [
            -100.0,
            -88.5,
            100.0,
            0.0,
            -0.0,
            f32::NAN,
            1.0,
            f32::INFINITY,
            2.0,
        ];
        let u = [2.0, 2.0, 2.0, 5.0, 5.0, 1.0, f32::NAN, 1.0, 0.5];
        for (name, f) in paths() {
            let mut got = g;
            f(&mut got, &u);
            assert!(got[0].abs() < 1e-30 && got[0] <= 0.0, "{name}: {}", got[0]);
            assert!(got[1].abs() < 1e-30 && got[1] <= 0.0, "{name}: {}", got[1]);
            assert_eq!(got[2], 200.0, "{name}");
            assert_eq!(got[3], 0.0, "{name}");
            assert_eq!(got[4], 0.0, "{name}");
            assert!(got[5].is_nan() && got[6].is_nan(), "{name}: {got:?}");
            assert_eq!(got[7], f32::INFINITY, "{name}");
            assert!((got[8] as f64 - reference(2.0, 0.5)).abs() < 1e-6, "{name}");
        }
    }

    #[test]
    #[should_panic(expected = "differ in length")]
    fn unequal_lengths_panic() {
        silu_mul(&mut [1.0, 2.0], &[1.0]);
    }
}
