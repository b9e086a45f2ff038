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
    order.clear();
    order.extend(0..scores.len());
    // `sort_by` is stable: equal scores keep increasing index order.
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    for &j in order.iter().take(k) {
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
