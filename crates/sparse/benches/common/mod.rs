//! Helpers shared by the benchmarks.

/// A deterministic random matrix with each entry zero with probability `sparsity` (xorshift64;
/// a kept entry is `u - 0.5 + 0.001` for its uniform draw `u`).
pub fn random(rows: usize, cols: usize, sparsity: f64, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..rows * cols)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            if u < sparsity {
                0.0
            } else {
                (u - 0.5) as f32 + 1e-3
            }
        })
        .collect()
}

/// A 2:4 matrix: two zeros in every group of four, at positions that vary from group to group
/// (the kept entries as [`random`] draws them).
pub fn nm24(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut w = random(rows, cols, 0.0, seed);
    for (i, g) in w.chunks_exact_mut(4).enumerate() {
        let a = i % 4;
        g[a] = 0.0;
        g[(a + 1 + i % 3) % 4] = 0.0;
    }
    w
}
