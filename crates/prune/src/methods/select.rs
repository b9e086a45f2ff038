//! Mask selection shared by the pruners (Sun et al. 2023, §3 "comparison group"; Frantar &
//! Alistarh 2023, §3.3 "n:m sparsity"): the k smallest scores of a group, with ties broken towards
//! the lower index (as `torch.sort(stable=True)`), and the k-th smallest value of a set.

/// Marks in `mask` the `k` smallest entries of `scores` (`k <= scores.len()`); ties go to the
/// lower index.
pub(crate) fn mark_smallest(scores: &[f64], k: usize, mask: &mut [bool], order: &mut Vec<usize>) {
    debug_assert_eq!(scores.len(), mask.len());
    if k == 0 {
        return;
    }
    if k >= scores.len() {
        mask.fill(true);
        return;
    }
    order.clear();
    order.extend(0..scores.len());
    // The first k of a stable sort are the k smallest under (score, index): a selection finds
    // that set in linear time.
    order.select_nth_unstable_by(k - 1, |&a, &b| {
        scores[a].total_cmp(&scores[b]).then(a.cmp(&b))
    });
    for &j in &order[..k] {
        mask[j] = true;
    }
}

/// Marks, in every group of `m` consecutive entries of `scores`, the `n` smallest.
/// `scores.len()` must be a multiple of `m`.
pub(crate) fn mark_n_of_m(scores: &[f64], n: usize, m: usize, mask: &mut [bool]) {
    let mut order = Vec::with_capacity(m);
    for (s, k) in scores.chunks_exact(m).zip(mask.chunks_exact_mut(m)) {
        mark_smallest(s, n, k, &mut order);
    }
}

/// The value at 0-based index `k` of `values` sorted ascending (reorders `values`).
pub(crate) fn kth_smallest(values: &mut [f64], k: usize) -> f64 {
    let (_, kth, _) = values.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
    *kth
}

/// `floor(count * ratio)`, computed as Python's `int(count * ratio)`.
pub(crate) fn floor_count(count: usize, ratio: f64) -> usize {
    ((count as f64) * ratio).floor() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The selection marks exactly the first k of a stable sort, ties included.
    #[test]
    fn mark_smallest_matches_a_stable_sort() {
        let mut seed = 12345u64;
        for len in 1..40 {
            for _ in 0..20 {
                let scores: Vec<f64> = (0..len)
                    .map(|_| {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        ((seed >> 60) % 4) as f64 // many ties
                    })
                    .collect();
                for k in 0..=len {
                    let mut want = vec![false; len];
                    let mut sorted: Vec<usize> = (0..len).collect();
                    sorted.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
                    for &j in &sorted[..k] {
                        want[j] = true;
                    }
                    let mut got = vec![false; len];
                    mark_smallest(&scores, k, &mut got, &mut Vec::new());
                    assert_eq!(got, want, "scores {scores:?}, k {k}");
                }
            }
        }
    }
}
