//! SparseGPT (Frantar & Alistarh 2023 "SparseGPT: Massive Language Models Can Be Accurately
//! Pruned in One-Shot", Algorithm 1, as `fasterprune` in the authors' code).
//!
//! * Statistics: H = (2/n)·Σ XᵀX over the n observed tokens (eq. 1's layer-wise Hessian): each
//!   batch's XᵀX is a symmetric rank-k update in f32 (faer, rayon-parallel), summed into an f64
//!   running total; the 2/n is applied when factorizing. (The authors keep a running mean scaled
//!   per sequence instead; every quantity below is invariant to the scale of H.)
//! * Factorization: dead inputs (H_jj = 0) get H_jj = 1 and their weight column is zeroed;
//!   λ = damp·mean(diag H) is added to the diagonal; Hinv = the upper Cholesky factor of
//!   (H + λI)⁻¹ (§3.2, "Hessian synchronization" / eq. 5), computed as J·L⁻¹·J from the lower
//!   Cholesky factor L of the reversed J·(H + λI)·J (J: the exchange matrix) rather than by the
//!   reference's factorize–invert–factorize. If a Cholesky factorization fails the
//!   damping is multiplied by 10, up to `max_damp_retries` times. The factorization is cached
//!   until the next `observe`, so q, k and v (one input) share it.
//! * Mask and update (Algorithm 1): columns in blocks of `blocksize` (B_s = 128). Unstructured:
//!   per block, the threshold is the value at 0-based index floor(block_numel·ratio) of the sorted
//!   W²/diag(Hinv)² over the whole block, and every weight with a score <= it is masked (as the
//!   reference; that is one more than floor(block_numel·ratio) when there are no ties). N:M: at
//!   each column i ≡ 0 (mod M), per row the N smallest W²/diag(Hinv)² of columns i..i+M (using
//!   the weights as updated so far). Then, column by column, q = masked w, err = (w−q)/Hinv_ii,
//!   W[:, i:] −= err·Hinv[i, i:], and after each block the lazy update
//!   W[:, i2:] −= Err·Hinv[i1:i2, i2:]. All arithmetic in f64.
//!
//! Deviation: for N:M the block size is rounded up to a multiple of M so no group straddles two
//! blocks (the reference silently breaks the pattern there; with B_s = 128 and M | 128 the two
//! agree).

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::linalg::triangular_inverse::invert_lower_triangular;
use faer::{Accum, Mat, MatMut, MatRef, Par, Side};
use rayon::prelude::*;
use secateurs_model::ops::Matrix;

use super::select::{floor_count, kth_smallest, mark_smallest};
use super::{check_common, report, MatrixReport, ObserveState, Pruner, SparseGptOptions};
use crate::error::PruneError;
use crate::pattern::Pattern;

/// SparseGPT pruner: accumulates Σ XᵀX of one linear layer's inputs.
#[derive(Debug)]
pub struct SparseGpt {
    in_features: usize,
    opts: SparseGptOptions,
    /// Σ XᵀX; only the lower triangle is kept up to date. (in, in), column-major
    xtx: Mat<f64>,
    /// One batch's XᵀX in f32, reused across batches. (in, in), column-major
    batch: Mat<f32>,
    state: ObserveState,
    /// Cached factorization of the current statistics.
    factor: Option<Factor>,
}

/// A factorized Hessian.
#[derive(Debug, Clone)]
struct Factor {
    /// Upper Cholesky factor of (H + λI)⁻¹. (in, in), row-major
    hinv: Vec<f64>,
    /// Inputs that were always zero.
    dead: Vec<bool>,
    /// Relative damping used.
    rel_damping: f64,
    /// How often the damping was multiplied by 10.
    retries: u32,
}

impl SparseGpt {
    /// An empty SparseGPT pruner for a layer with `in_features` inputs.
    pub fn new(in_features: usize, opts: SparseGptOptions) -> Self {
        SparseGpt {
            in_features,
            opts,
            xtx: Mat::zeros(in_features, in_features),
            batch: Mat::zeros(in_features, in_features),
            state: ObserveState::default(),
            factor: None,
        }
    }

    /// A pruner whose statistics are a given Hessian `h` = (2/n)·Σ XᵀX, `(in, in)` row-major,
    /// as if `n` tokens had been observed. Meant for tests and for Hessians computed elsewhere.
    ///
    /// # Errors
    /// [`PruneError::BadOption`] when `h` is not `in_features²` long.
    pub fn from_hessian(
        h: &[f64],
        in_features: usize,
        n: usize,
        opts: SparseGptOptions,
    ) -> Result<Self, PruneError> {
        if in_features.checked_mul(in_features) != Some(h.len()) {
            return Err(PruneError::BadOption {
                option: "hessian".to_string(),
                reason: format!("{} values, expected {in_features}²", h.len()),
            });
        }
        let mut s = SparseGpt::new(in_features, opts);
        let scale = n as f64 / 2.0;
        s.xtx = Mat::from_fn(in_features, in_features, |i, j| {
            h[i * in_features + j] * scale
        });
        s.state.tokens = n;
        Ok(s)
    }

    /// The Hessian H = (2/n)·Σ XᵀX of the observed inputs, `(in, in)` row-major (no damping, no
    /// dead-column fix), or `None` before any token was observed.
    pub fn hessian(&self) -> Option<Vec<f64>> {
        let n = self.state.tokens;
        if n == 0 {
            return None;
        }
        let c = self.in_features;
        let scale = 2.0 / n as f64;
        // Only the lower triangle of Σ XᵀX is kept: H(i, j) = H(j, i) is its entry (max, min).
        Some(
            (0..c * c)
                .map(|k| {
                    let (i, j) = (k / c, k % c);
                    self.xtx[(i.max(j), i.min(j))] * scale
                })
                .collect(),
        )
    }

    /// Factorizes the damped Hessian, retrying with more damping.
    ///
    /// Works on the reversed Hessian R = J·H·J (J: the exchange matrix): if R + λI = L·Lᵀ then
    /// (H + λI)⁻¹ = (J·L⁻¹·J)ᵀ·(J·L⁻¹·J), and J·L⁻¹·J is upper triangular with a positive
    /// diagonal, so it is the upper Cholesky factor of the inverse. That is one factorization
    /// and one triangular inverse where the reference factorizes, inverts and factorizes again:
    /// the same matrix for ~2.5× fewer flops. Stored row-major, J·L⁻¹·J is L⁻¹ (row-major)
    /// read backwards.
    fn factorize(&self, name: &str) -> Result<Factor, PruneError> {
        let c = self.in_features;
        let non_finite = || PruneError::NonFinite {
            tensor: name.to_string(),
            what: "Hessian",
        };
        let scale = 2.0 / self.state.tokens as f64;
        // Upper triangle of R: R(i, j) = H(c−1−i, c−1−j), i ≤ j, which is the lower-triangle
        // entry of column c−1−j of Σ XᵀX. (in, in), column-major
        let mut rev = Mat::<f64>::zeros(c, c);
        for j in 0..c {
            let src = self.xtx.col_as_slice(c - 1 - j);
            for (i, dst) in rev.col_as_slice_mut(j)[..=j].iter_mut().enumerate() {
                let v = src[c - 1 - i] * scale;
                if !v.is_finite() {
                    return Err(non_finite());
                }
                *dst = v;
            }
        }
        // Dead inputs (H_jj = 0): H_jj = 1, weight column zeroed.
        let mut dead = vec![false; c];
        let mut diag = vec![0.0; c]; // of R
        for (i, d) in diag.iter_mut().enumerate() {
            *d = rev[(i, i)];
            if *d == 0.0 {
                dead[c - 1 - i] = true;
                *d = 1.0;
            }
        }
        let mean_diag = diag.iter().sum::<f64>() / c.max(1) as f64;
        let mut lambda = 0.0;
        for retries in 0..=self.opts.max_damp_retries {
            let rel = self.opts.damp * 10f64.powi(retries as i32);
            lambda = rel * mean_diag;
            for (i, d) in diag.iter().enumerate() {
                rev[(i, i)] = d + lambda;
            }
            let Ok(llt) = rev.llt(Side::Upper) else {
                continue;
            };
            let mut hinv = vec![0.0; c * c];
            invert_lower_triangular(
                MatMut::from_row_major_slice_mut(&mut hinv, c, c),
                llt.L(),
                Par::rayon(0),
            );
            // J·L⁻¹·J, row-major; the strict lower triangle stays zero, as faer writes only
            // the lower triangle of the inverse.
            hinv.reverse();
            if hinv.iter().any(|v| !v.is_finite()) || (0..c).any(|i| hinv[i * c + i] <= 0.0) {
                continue;
            }
            return Ok(Factor {
                hinv,
                dead,
                rel_damping: rel,
                retries,
            });
        }
        Err(PruneError::NotPositiveDefinite {
            layer: name.to_string(),
            damping: lambda,
        })
    }
}

/// One block of columns `i1..i2` of the OBS update (Algorithm 1's inner loop), shared by every
/// row of the weight matrix.
struct Block<'a> {
    /// Upper Cholesky factor of the inverse Hessian. (in, in), row-major
    hinv: &'a [f64],
    /// Its diagonal. (in)
    diag: &'a [f64],
    cols: usize,
    i1: usize,
    i2: usize,
    /// `(n, m)` for N:M, `None` for unstructured (mask given).
    nm: Option<(usize, usize)>,
}

impl Block<'_> {
    /// Runs the block on one row: `seg` is the row's columns `i1..i2`, `err` receives the
    /// scaled errors, `mask` the pruned columns (filled here for N:M). Uses the widest vector
    /// instructions of this CPU for the row updates; every variant runs the same scalar
    /// operations in the same order, so they give the same digits.
    fn update_row(&self, seg: &mut [f64], err: &mut [f64], mask: &mut [bool]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F (checked just above), the only requirement
                // of this `#[target_feature]` function; it reads and writes through safe slices.
                return unsafe { self.update_row_avx512(seg, err, mask) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above), as above.
                return unsafe { self.update_row_avx2(seg, err, mask) };
            }
        }
        self.update_row_scalar(seg, err, mask);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn update_row_avx512(&self, seg: &mut [f64], err: &mut [f64], mask: &mut [bool]) {
        self.update_row_scalar(seg, err, mask);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn update_row_avx2(&self, seg: &mut [f64], err: &mut [f64], mask: &mut [bool]) {
        self.update_row_scalar(seg, err, mask);
    }

    #[inline(always)]
    fn update_row_scalar(&self, seg: &mut [f64], err: &mut [f64], mask: &mut [bool]) {
        let (i1, i2, cols) = (self.i1, self.i2, self.cols);
        let count = i2 - i1;
        let diag = &self.diag[i1..i2];
        let mut scores = Vec::new();
        let mut order = Vec::new();
        for i in 0..count {
            if let Some((n, m)) = self.nm {
                if i % m == 0 {
                    scores.clear();
                    scores.extend((i..i + m).map(|j| seg[j] * seg[j] / (diag[j] * diag[j])));
                    mark_smallest(&scores, n, &mut mask[i..i + m], &mut order);
                }
            }
            let wv = seg[i];
            let q = if mask[i] { 0.0 } else { wv };
            let e = (wv - q) / diag[i];
            err[i] = e;
            if e != 0.0 {
                let ii = i1 + i;
                let hrow = &self.hinv[ii * cols + i1 + i + 1..ii * cols + i2];
                for (w, h) in seg[i + 1..].iter_mut().zip(hrow) {
                    *w -= e * h;
                }
            }
            seg[i] = q;
        }
    }
}

impl Pruner for SparseGpt {
    fn observe(&mut self, x: &Matrix) {
        if !self.state.record(x, self.in_features) || x.rows == 0 {
            return;
        }
        self.factor = None;
        let cols = self.in_features;
        // (tokens, in): this batch's XᵀX in f32 (a symmetric rank-k update at full f32 speed;
        // a batch is a few hundred tokens, so f32 sums lose ~1e-7 relative), added to the f64
        // running sum, which carries the precision across the whole calibration set.
        let xr = MatRef::from_row_major_slice(&x.data, x.rows, cols);
        triangular::matmul(
            self.batch.as_mut(),
            BlockStructure::TriangularLower,
            Accum::Replace,
            xr.transpose(),
            BlockStructure::Rectangular,
            xr,
            BlockStructure::Rectangular,
            1.0f32,
            Par::rayon(0),
        );
        for j in 0..cols {
            let src = &self.batch.col_as_slice(j)[j..];
            for (d, s) in self.xtx.col_as_slice_mut(j)[j..].iter_mut().zip(src) {
                *d += f64::from(*s);
            }
        }
    }

    fn prune(
        &mut self,
        name: &str,
        w: &mut [f32],
        rows: usize,
        cols: usize,
        pattern: &Pattern,
    ) -> Result<MatrixReport, PruneError> {
        check_common(name, w, rows, cols, pattern)?;
        self.state.check(name, self.in_features, cols)?;
        if pattern.is_noop() || w.is_empty() {
            return Ok(report(w));
        }
        if self.factor.is_none() {
            self.factor = Some(self.factorize(name)?);
        }
        let Some(factor) = self.factor.as_ref() else {
            return Err(PruneError::NoStatistics {
                tensor: name.to_string(),
            });
        };
        let hinv = &factor.hinv; // (in, in) upper, row-major
        let diag: Vec<f64> = (0..cols).map(|i| hinv[i * cols + i]).collect();

        // (out, in), row-major, f64
        let mut wd: Vec<f64> = w.iter().map(|v| f64::from(*v)).collect();
        for row in wd.chunks_exact_mut(cols) {
            for (v, d) in row.iter_mut().zip(&factor.dead) {
                if *d {
                    *v = 0.0;
                }
            }
        }

        let blocksize = match *pattern {
            Pattern::NOfM { m, .. } => self.opts.blocksize.max(1).div_ceil(m) * m,
            Pattern::Unstructured { .. } => self.opts.blocksize.max(1),
        };
        let mut i1 = 0;
        while i1 < cols {
            let i2 = (i1 + blocksize).min(cols);
            let count = i2 - i1;
            // Block mask for unstructured sparsity. (out, count)
            let mut mask = vec![false; rows * count];
            if let Pattern::Unstructured { ratio } = *pattern {
                let mut scores = vec![0.0f64; rows * count]; // (out, count)
                scores
                    .par_chunks_mut(count)
                    .zip(wd.par_chunks(cols))
                    .for_each(|(s, row)| {
                        for ((s, v), d) in s.iter_mut().zip(&row[i1..i2]).zip(&diag[i1..i2]) {
                            *s = v * v / (d * d);
                        }
                    });
                let k = floor_count(rows * count, ratio).min(rows * count - 1);
                let mut sorted = scores.clone();
                let threshold = kth_smallest(&mut sorted, k);
                for (m, s) in mask.iter_mut().zip(&scores) {
                    *m = *s <= threshold;
                }
            }
            // Column-by-column OBS update inside the block; rows are independent. (out, count)
            let mut err = vec![0.0f64; rows * count];
            let nm = match *pattern {
                Pattern::NOfM { n, m } => Some((n, m)),
                Pattern::Unstructured { .. } => None,
            };
            let block = Block {
                hinv,
                diag: &diag,
                cols,
                i1,
                i2,
                nm,
            };
            wd.par_chunks_mut(cols)
                .zip(err.par_chunks_mut(count))
                .zip(mask.par_chunks_mut(count))
                .for_each(|((row, err), mask)| block.update_row(&mut row[i1..i2], err, mask));
            // Lazy batch update of the remaining columns: W[:, i2:] -= Err · Hinv[i1:i2, i2:].
            if i2 < cols {
                let wview = MatMut::from_row_major_slice_mut(&mut wd, rows, cols);
                let (_, rest) = wview.split_at_col_mut(i2);
                let errv = MatRef::from_row_major_slice(&err, rows, count);
                let hv = MatRef::from_row_major_slice(hinv, cols, cols).submatrix(
                    i1,
                    i2,
                    count,
                    cols - i2,
                );
                matmul(rest, Accum::Add, errv, hv, -1.0, Par::rayon(0));
            }
            i1 = i2;
        }

        for (dst, src) in w.iter_mut().zip(&wd) {
            *dst = *src as f32;
        }
        let mut rep = report(w);
        rep.damping = Some(factor.rel_damping);
        rep.damping_retries = factor.retries;
        if factor.retries > 0 {
            rep.warnings.push(format!(
                "{name}: Hessian was not positive definite with relative damping {:e}; used {:e} after {} retries",
                self.opts.damp, factor.rel_damping, factor.retries
            ));
        }
        Ok(rep)
    }
}

#[cfg(test)]
mod tests {
    use faer::linalg::solvers::DenseSolveCore;

    use super::*;

    /// The reversed-order factorization gives the matrix the reference computes as
    /// `cholesky(cholesky_inverse(cholesky(H + λI)), upper=True)`, and marks dead inputs.
    #[test]
    fn factor_equals_cholesky_of_the_inverse() {
        let c = 37;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f32 / (1u64 << 53) as f32 - 0.5
        };
        let mut p = SparseGpt::new(c, SparseGptOptions::default());
        for _ in 0..3 {
            let mut data: Vec<f32> = (0..50 * c).map(|_| next()).collect();
            for row in data.chunks_exact_mut(c) {
                row[5] = 0.0; // a dead input
            }
            p.observe(&Matrix::from_vec(50, c, data));
        }
        let f = p.factorize("t").unwrap();
        assert!(f.dead[5] && f.dead.iter().filter(|d| **d).count() == 1);

        let full = p.hessian().unwrap();
        let mut h = Mat::from_fn(c, c, |i, j| full[i * c + j]);
        h[(5, 5)] = 1.0;
        let lambda = 0.01 * (0..c).map(|j| h[(j, j)]).sum::<f64>() / c as f64;
        for j in 0..c {
            h[(j, j)] += lambda;
        }
        let inv = h.llt(Side::Lower).unwrap().inverse();
        let l = inv.llt(Side::Lower).unwrap();
        let l = l.L();
        let mut worst = 0.0f64;
        for i in 0..c {
            for j in 0..c {
                let want = if j >= i { l[(j, i)] } else { 0.0 };
                worst = worst.max((f.hinv[i * c + j] - want).abs() / l[(i, i)]);
            }
        }
        assert!(worst < 1e-10, "largest difference {worst:e}");
    }
}
