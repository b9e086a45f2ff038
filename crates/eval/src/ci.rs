//! Confidence intervals for accuracies.
//!
//! [`wilson`] is the Wilson score interval (Wilson 1927) for a binomial proportion; unlike the
//! normal ("Wald") interval it stays inside `[0, 1]` and behaves at 0 % and 100 %.
//!
//! Some tasks score several items that share one prompt (the questions of one SQuAD paragraph,
//! the queries of one in-context sequence). Such items are not independent, so
//! [`clustered_wilson`] first estimates the intra-cluster correlation ρ with the one-way ANOVA
//! estimator and shrinks the sample size to the Kish effective size
//! `n_eff = n / (1 + (m_w − 1)·ρ)`, with `m_w = Σ mᵢ² / n` the size-weighted mean cluster size;
//! it then returns the Wilson interval of the same proportion at `n_eff`. With clusters of one
//! item this is exactly [`wilson`].

use serde::Serialize;

/// `z` of a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A proportion with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Proportion {
    /// Successes / items.
    pub value: f64,
    /// Lower end of the 95 % interval.
    pub lo: f64,
    /// Upper end of the 95 % interval.
    pub hi: f64,
    /// Items scored.
    pub n: usize,
    /// Successes.
    pub successes: usize,
    /// Effective sample size used for the interval (`n` unless items are clustered).
    pub n_eff: f64,
}

impl Proportion {
    /// Half the width of the interval.
    pub fn half_width(&self) -> f64 {
        (self.hi - self.lo) / 2.0
    }
}

/// Wilson score interval `(lo, hi)` for `successes` out of `n` (both may be fractional, as for an
/// effective sample size) at normal quantile `z`. `n = 0` gives `(0, 1)`.
pub fn wilson(successes: f64, n: f64, z: f64) -> (f64, f64) {
    if n <= 0.0 {
        return (0.0, 1.0);
    }
    let p = (successes / n).clamp(0.0, 1.0);
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The 95 % Wilson interval of independent items.
pub fn proportion(successes: usize, n: usize) -> Proportion {
    let (lo, hi) = wilson(successes as f64, n as f64, Z95);
    Proportion {
        value: if n == 0 {
            0.0
        } else {
            successes as f64 / n as f64
        },
        lo,
        hi,
        n,
        successes,
        n_eff: n as f64,
    }
}

/// Intra-cluster correlation of binary outcomes by the one-way ANOVA estimator, clamped to
/// `[0, 1]`; `clusters` holds `(successes, size)` of each non-empty cluster. Returns 0 when it
/// cannot be estimated (fewer than two clusters, every cluster of size one, or no variation).
pub fn icc(clusters: &[(usize, usize)]) -> f64 {
    let clusters: Vec<(f64, f64)> = clusters
        .iter()
        .filter(|c| c.1 > 0)
        .map(|&(s, m)| (s as f64, m as f64))
        .collect();
    let k = clusters.len() as f64;
    let n: f64 = clusters.iter().map(|c| c.1).sum();
    if clusters.len() < 2 || n <= k {
        return 0.0;
    }
    let p = clusters.iter().map(|c| c.0).sum::<f64>() / n;
    // Between- and within-cluster mean squares of the 0/1 outcomes.
    let ssb: f64 = clusters.iter().map(|&(s, m)| m * (s / m - p).powi(2)).sum();
    let ssw: f64 = clusters.iter().map(|&(s, m)| s * (1.0 - s / m)).sum();
    let msb = ssb / (k - 1.0);
    let msw = ssw / (n - k);
    let m0 = (n - clusters.iter().map(|c| c.1 * c.1).sum::<f64>() / n) / (k - 1.0);
    let denom = msb + (m0 - 1.0) * msw;
    if denom <= 0.0 {
        return 0.0;
    }
    ((msb - msw) / denom).clamp(0.0, 1.0)
}

/// The 95 % interval of items grouped in clusters (`(successes, size)` per cluster), with the
/// sample size shrunk by the design effect (see the module docs).
pub fn clustered_proportion(clusters: &[(usize, usize)]) -> Proportion {
    let n: usize = clusters.iter().map(|c| c.1).sum();
    let successes: usize = clusters.iter().map(|c| c.0).sum();
    if n == 0 {
        return proportion(0, 0);
    }
    let rho = icc(clusters);
    let m_w = clusters.iter().map(|c| (c.1 * c.1) as f64).sum::<f64>() / n as f64;
    let deff = 1.0 + (m_w - 1.0) * rho;
    let n_eff = n as f64 / deff;
    let p = successes as f64 / n as f64;
    let (lo, hi) = wilson(p * n_eff, n_eff, Z95);
    Proportion {
        value: p,
        lo,
        hi,
        n,
        successes,
        n_eff,
    }
}

/// Wilson interval of a proportion given as per-cluster counts; shorthand for callers that hold
/// `(successes, size)` pairs and want [`clustered_proportion`].
pub fn clustered_wilson(clusters: &[(usize, usize)]) -> (f64, f64) {
    let p = clustered_proportion(clusters);
    (p.lo, p.hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-5
    }

    #[test]
    fn wilson_known_values() {
        // Reference values from the closed form, as printed by e.g. R's prop.test(correct=FALSE)
        // and statsmodels' proportion_confint(method="wilson").
        let (lo, hi) = wilson(8.0, 10.0, Z95);
        assert!(close(lo, 0.49016) && close(hi, 0.94331), "{lo} {hi}");
        let (lo, hi) = wilson(0.0, 10.0, Z95);
        assert!(close(lo, 0.0) && close(hi, 0.27753), "{lo} {hi}");
        let (lo, hi) = wilson(10.0, 10.0, Z95);
        assert!(close(lo, 0.72247) && close(hi, 1.0), "{lo} {hi}");
        let (lo, hi) = wilson(50.0, 100.0, Z95);
        assert!(close(lo, 0.40383) && close(hi, 0.59617), "{lo} {hi}");
        let (lo, hi) = wilson(1.0, 3.0, Z95);
        assert!(close(lo, 0.06149) && close(hi, 0.79234), "{lo} {hi}");
        assert_eq!(wilson(0.0, 0.0, Z95), (0.0, 1.0));
    }

    #[test]
    fn half_width_at_384_items_is_five_points() {
        // The classic sample size for ±5 points at p = 0.5.
        let p = proportion(192, 384);
        assert!(
            p.half_width() < 0.05 && p.half_width() > 0.049,
            "{}",
            p.half_width()
        );
    }

    #[test]
    fn singleton_clusters_equal_plain_wilson() {
        let clusters: Vec<(usize, usize)> = (0..40).map(|i| (usize::from(i % 3 == 0), 1)).collect();
        let a = clustered_proportion(&clusters);
        let b = proportion(14, 40);
        assert_eq!(a.successes, 14);
        assert!(close(a.lo, b.lo) && close(a.hi, b.hi));
        assert!(close(a.n_eff, 40.0));
    }

    #[test]
    fn icc_extremes() {
        // Perfectly homogeneous clusters: every cluster all-right or all-wrong → ρ = 1.
        let same = [(5, 5), (0, 5), (5, 5), (0, 5)];
        assert!(close(icc(&same), 1.0));
        let p = clustered_proportion(&same);
        // n_eff = 20 / (1 + 4·1) = 4 clusters.
        assert!(close(p.n_eff, 4.0), "{}", p.n_eff);
        let (lo, hi) = wilson(2.0, 4.0, Z95);
        assert!(close(p.lo, lo) && close(p.hi, hi));
        // Identical proportions in every cluster → no between-cluster variance → ρ = 0.
        assert!(close(icc(&[(2, 4), (2, 4), (2, 4)]), 0.0));
        assert!(close(icc(&[(1, 1)]), 0.0));
    }

    #[test]
    fn icc_matches_the_anova_formula() {
        // Hand-computed: clusters (3/4, 1/4, 2/4): p = 0.5, SSB = 4·(.0625+.0625+0) = 0.5,
        // MSB = 0.25; SSW = 3·.25 + 1·.75 + 2·.5 = 2.5, MSW = 2.5/9; m0 = 4;
        // ρ = (0.25 − 0.27778) / (0.25 + 3·0.27778) = −0.0256 → clamped to 0.
        assert!(close(icc(&[(3, 4), (1, 4), (2, 4)]), 0.0));
        // (4/4, 0/4, 2/4): SSB = 4·(.25+.25+0) = 2, MSB = 1; SSW = 0+0+1 = 1, MSW = 1/9;
        // ρ = (1 − 1/9) / (1 + 3/9) = 0.6667.
        assert!(close(icc(&[(4, 4), (0, 4), (2, 4)]), 2.0 / 3.0));
    }
}
