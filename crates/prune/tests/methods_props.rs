//! Property tests of the pruners (seed 000; Sun et al. 2023; Frantar & Alistarh 2023): the
//! achieved sparsity is the one the pattern asks for, and ratio 0 changes nothing.

use proptest::prelude::*;
use secateurs_model::ops::Matrix;
use secateurs_prune::methods::{new_pruner, Method, SparseGptOptions};
use secateurs_prune::pattern::Pattern;

/// Deterministic pseudo-random data from `seed` (splitmix64): non-zero, tie-free-in-practice
/// weights with |w| in [0.05, 2] and random sign, and inputs in [-3, 3].
fn data(n_w: usize, n_x: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 // [0, 1)
    };
    let w = (0..n_w)
        .map(|_| {
            let a = 0.05 + 1.95 * next();
            (if next() < 0.5 { -a } else { a }) as f32
        })
        .collect();
    let x = (0..n_x).map(|_| (6.0 * next() - 3.0) as f32).collect();
    (w, x)
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Magnitude),
        Just(Method::Wanda),
        Just(Method::SparseGpt)
    ]
}

/// Prunes `w` with `method`, observing `x` in two batches.
fn prune(
    method: Method,
    w: &mut [f32],
    rows: usize,
    cols: usize,
    x: &[f32],
    pattern: &Pattern,
    blocksize: usize,
) {
    let opts = SparseGptOptions {
        blocksize,
        ..SparseGptOptions::default()
    };
    let mut p = new_pruner(method, cols, &opts);
    let tokens = x.len() / cols;
    let half = tokens / 2;
    for (a, b) in [(0, half), (half, tokens)] {
        p.observe(&Matrix {
            rows: b - a,
            cols,
            data: x[a * cols..b * cols].to_vec(),
        });
    }
    let rep = p.prune("blk.0.attn_q", w, rows, cols, pattern).unwrap();
    assert_eq!(rep.zeros, w.iter().filter(|v| **v == 0.0).count());
    assert!(w.iter().all(|v| v.is_finite()));
}

fn floor(count: usize, ratio: f64) -> usize {
    (count as f64 * ratio).floor() as usize
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn n_of_m_is_exact(
        method in method(),
        (n, m) in prop_oneof![Just((1usize, 2usize)), Just((2, 4)), Just((4, 8)), Just((1, 4)), Just((3, 4)), Just((5, 8))],
        groups in 1usize..8,
        rows in 1usize..10,
        tokens in 2usize..40,
        blocksize in prop_oneof![Just(3usize), Just(8), Just(128)],
        seed in any::<u64>(),
    ) {
        let cols = groups * m;
        let (w0, x) = data(rows * cols, tokens * cols, seed);
        let mut w = w0.clone();
        let pattern = Pattern::NOfM { n, m };
        prune(method, &mut w, rows, cols, &x, &pattern, blocksize);
        for (r, row) in w.chunks_exact(cols).enumerate() {
            for (g, group) in row.chunks_exact(m).enumerate() {
                let zeros = group.iter().filter(|v| **v == 0.0).count();
                prop_assert_eq!(zeros, n, "{} row {} group {}", method, r, g);
            }
        }
        if method != Method::SparseGpt {
            // Kept weights are untouched.
            for (a, b) in w.iter().zip(&w0) {
                prop_assert!(*a == 0.0 || a.to_bits() == b.to_bits());
            }
        }
    }

    #[test]
    fn unstructured_count(
        method in method(),
        ratio in 0.01f64..0.95,
        rows in 1usize..12,
        cols in 1usize..40,
        tokens in 2usize..40,
        blocksize in prop_oneof![Just(1usize), Just(7), Just(16), Just(128)],
        seed in any::<u64>(),
    ) {
        let (w0, x) = data(rows * cols, tokens * cols, seed);
        let mut w = w0.clone();
        prune(method, &mut w, rows, cols, &x, &Pattern::Unstructured { ratio }, blocksize);
        let zeros = w.iter().filter(|v| **v == 0.0).count();
        match method {
            Method::Magnitude => {
                // Reference rule: every |w| <= the sorted |w| at 0-based index floor(numel·ratio).
                let mut s: Vec<f32> = w0.iter().map(|v| v.abs()).collect();
                s.sort_by(|a, b| a.total_cmp(b));
                let t = s[floor(s.len(), ratio)];
                let expected = s.iter().filter(|v| **v <= t).count();
                prop_assert_eq!(zeros, expected);
                prop_assert!(zeros > floor(s.len(), ratio));
            }
            Method::Wanda => {
                for row in w.chunks_exact(cols) {
                    let z = row.iter().filter(|v| **v == 0.0).count();
                    prop_assert_eq!(z, floor(cols, ratio));
                }
            }
            Method::SparseGpt => {
                // One threshold per block: floor(block_numel·ratio) + 1 zeros per block (no ties).
                let mut expected = 0;
                let mut i1 = 0;
                while i1 < cols {
                    let count = blocksize.min(cols - i1);
                    expected += floor(rows * count, ratio) + 1;
                    i1 += count;
                }
                prop_assert_eq!(zeros, expected);
            }
        }
    }

    #[test]
    fn ratio_zero_is_identity(
        method in method(),
        rows in 1usize..8,
        cols in 1usize..24,
        tokens in 0usize..20,
        seed in any::<u64>(),
    ) {
        let (mut w0, x) = data(rows * cols, tokens.max(1) * cols, seed);
        w0[0] = 0.0;
        let mut w = w0.clone();
        prune(method, &mut w, rows, cols, &x, &Pattern::Unstructured { ratio: 0.0 }, 128);
        let same = w.iter().zip(&w0).all(|(a, b)| a.to_bits() == b.to_bits());
        prop_assert!(same);
    }
}
