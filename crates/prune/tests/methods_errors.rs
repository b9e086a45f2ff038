//! Bad input and degenerate statistics for the pruners (Frantar & Alistarh 2023 §3.2 and the
//! authors' dead-input / damping handling): each error names the tensor or layer at fault, and
//! leaves the weights unchanged.

use secateurs_model::ops::Matrix;
use secateurs_prune::methods::{new_pruner, Method, Pruner, SparseGpt, SparseGptOptions};
use secateurs_prune::pattern::Pattern;
use secateurs_prune::PruneError;

const NAME: &str = "model.layers.3.self_attn.q_proj";

fn x(tokens: usize, cols: usize) -> Matrix {
    let data = (0..tokens * cols)
        .map(|i| ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * 2.0)
        .collect();
    Matrix {
        rows: tokens,
        cols,
        data,
    }
}

fn w(rows: usize, cols: usize) -> Vec<f32> {
    (0..rows * cols)
        .map(|i| ((i * 104_729 % 997) as f32 / 997.0 - 0.5) + 0.001)
        .collect()
}

fn pruner(method: Method, cols: usize, tokens: usize) -> Box<dyn Pruner> {
    let mut p = new_pruner(method, cols, &SparseGptOptions::default());
    if tokens > 0 {
        p.observe(&x(tokens, cols));
    }
    p
}

#[test]
fn bad_patterns() {
    for method in Method::ALL {
        for ratio in [-0.1, 1.0, f64::NAN, 1.5] {
            let mut p = pruner(method, 16, 32);
            let mut wt = w(4, 16);
            let before = wt.clone();
            let e = p
                .prune(NAME, &mut wt, 4, 16, &Pattern::Unstructured { ratio })
                .unwrap_err();
            assert!(matches!(e, PruneError::BadSparsity { .. }), "{e}");
            assert_eq!(wt, before);
        }
        for (n, m) in [(4, 4), (5, 4), (0, 4)] {
            let mut p = pruner(method, 16, 32);
            let e = p
                .prune(NAME, &mut w(4, 16), 4, 16, &Pattern::NOfM { n, m })
                .unwrap_err();
            assert!(matches!(e, PruneError::BadPattern { .. }), "{e}");
        }
        let mut p = pruner(method, 18, 32);
        let e = p
            .prune(NAME, &mut w(4, 18), 4, 18, &Pattern::NOfM { n: 2, m: 4 })
            .unwrap_err();
        assert!(
            matches!(e, PruneError::PatternDoesNotDivide { ref tensor, m: 4, cols: 18 } if tensor == NAME),
            "{e}"
        );
        // Wrong length of w.
        let mut p = pruner(method, 16, 32);
        let e = p
            .prune(
                NAME,
                &mut w(4, 15),
                4,
                16,
                &Pattern::Unstructured { ratio: 0.5 },
            )
            .unwrap_err();
        assert!(matches!(e, PruneError::BadOption { .. }), "{e}");
    }
    assert!(matches!(
        Pattern::parse("-0.1"),
        Err(PruneError::BadSparsity { .. })
    ));
    assert!(matches!(
        Pattern::parse("4:2"),
        Err(PruneError::BadPattern { .. })
    ));
    assert!("sparsegpt".parse::<Method>().is_ok());
    assert!("obs".parse::<Method>().is_err());
}

#[test]
fn nan_weights_and_inputs() {
    for method in Method::ALL {
        let mut p = pruner(method, 16, 32);
        let mut wt = w(4, 16);
        wt[5] = f32::NAN;
        let e = p
            .prune(NAME, &mut wt, 4, 16, &Pattern::NOfM { n: 2, m: 4 })
            .unwrap_err();
        assert!(
            matches!(e, PruneError::NonFinite { ref tensor, what: "weights" } if tensor == NAME),
            "{e}"
        );
        assert!(e.to_string().contains(NAME));

        let mut p = pruner(method, 16, 32);
        let mut bad = x(8, 16);
        bad.data[3] = f32::NAN;
        p.observe(&bad);
        let mut wt = w(4, 16);
        let before = wt.clone();
        let r = p.prune(NAME, &mut wt, 4, 16, &Pattern::Unstructured { ratio: 0.5 });
        if method == Method::Magnitude {
            assert!(r.is_ok());
        } else {
            let e = r.unwrap_err();
            assert!(
                matches!(
                    e,
                    PruneError::NonFinite {
                        what: "calibration inputs",
                        ..
                    }
                ),
                "{e}"
            );
            assert_eq!(wt, before);
        }
    }
}

#[test]
fn no_statistics() {
    for method in [Method::Wanda, Method::SparseGpt] {
        let mut p = pruner(method, 16, 0);
        let e = p
            .prune(
                NAME,
                &mut w(4, 16),
                4,
                16,
                &Pattern::Unstructured { ratio: 0.5 },
            )
            .unwrap_err();
        assert!(
            matches!(e, PruneError::NoStatistics { ref tensor } if tensor == NAME),
            "{e}"
        );
        // A batch of the wrong width is reported, not silently accumulated.
        let mut p = pruner(method, 16, 32);
        p.observe(&x(4, 12));
        let e = p
            .prune(
                NAME,
                &mut w(4, 16),
                4,
                16,
                &Pattern::Unstructured { ratio: 0.5 },
            )
            .unwrap_err();
        assert!(matches!(e, PruneError::BadOption { .. }), "{e}");
    }
    // Magnitude needs none.
    let mut p = pruner(Method::Magnitude, 16, 0);
    assert!(p
        .prune(
            NAME,
            &mut w(4, 16),
            4,
            16,
            &Pattern::Unstructured { ratio: 0.5 }
        )
        .is_ok());
}

#[test]
fn rank_deficient_inputs_recover() {
    // 5 tokens over 24 columns, column 7 duplicates column 2, column 11 is always zero.
    let cols = 24;
    let mut xm = x(5, cols);
    for t in 0..5 {
        xm.data[t * cols + 7] = xm.data[t * cols + 2];
        xm.data[t * cols + 11] = 0.0;
    }
    for pattern in [
        Pattern::Unstructured { ratio: 0.5 },
        Pattern::NOfM { n: 2, m: 4 },
    ] {
        let mut p = new_pruner(Method::SparseGpt, cols, &SparseGptOptions::default());
        p.observe(&xm.clone());
        let mut wt = w(6, cols);
        let rep = p.prune(NAME, &mut wt, 6, cols, &pattern).unwrap();
        assert!(wt.iter().all(|v| v.is_finite()));
        assert_eq!(rep.damping, Some(0.01));
        assert_eq!(rep.damping_retries, 0);
        // The dead input's weights are zero.
        assert!((0..6).all(|r| wt[r * cols + 11] == 0.0));
        assert!(rep.zeros * 2 >= wt.len());
    }
}

#[test]
fn indefinite_hessian_retries_damping() {
    // diag(1, 1, 1, -0.05): mean 0.7375, λ = 0.0074 fails, λ = 0.074 succeeds.
    let c = 4;
    let mut h = vec![0.0; c * c];
    for (i, v) in [1.0, 1.0, 1.0, -0.05].into_iter().enumerate() {
        h[i * c + i] = v;
    }
    let mut p = SparseGpt::from_hessian(&h, c, 10, SparseGptOptions::default()).unwrap();
    let mut wt = w(3, c);
    let rep = p
        .prune(NAME, &mut wt, 3, c, &Pattern::NOfM { n: 2, m: 4 })
        .unwrap();
    assert_eq!(rep.damping_retries, 1);
    assert!((rep.damping.unwrap() - 0.1).abs() < 1e-12);
    assert_eq!(rep.warnings.len(), 1);
    assert!(rep.warnings[0].contains(NAME), "{}", rep.warnings[0]);
    assert!(wt.iter().all(|v| v.is_finite()));
    // The cached factorization reports the same damping for the next matrix (k_proj).
    let rep = p
        .prune("k_proj", &mut w(3, c), 3, c, &Pattern::NOfM { n: 2, m: 4 })
        .unwrap();
    assert_eq!(rep.damping_retries, 1);
    assert!(rep.warnings[0].contains("k_proj"));
}

#[test]
fn negative_definite_hessian_fails() {
    let c = 8;
    let mut h = vec![0.0; c * c];
    for i in 0..c {
        h[i * c + i] = -1.0;
    }
    let mut p = SparseGpt::from_hessian(&h, c, 10, SparseGptOptions::default()).unwrap();
    let mut wt = w(3, c);
    let before = wt.clone();
    let e = p
        .prune(NAME, &mut wt, 3, c, &Pattern::Unstructured { ratio: 0.5 })
        .unwrap_err();
    assert!(
        matches!(e, PruneError::NotPositiveDefinite { ref layer, .. } if layer == NAME),
        "{e}"
    );
    assert!(e.to_string().contains(NAME));
    assert_eq!(wt, before);
    assert!(SparseGpt::from_hessian(&h[1..], c, 10, SparseGptOptions::default()).is_err());
}

#[test]
fn cached_factorization_matches_fresh() {
    // q, k, v pruned from one pruner equal three fresh pruners; observing again invalidates.
    let cols = 32;
    let pattern = Pattern::Unstructured { ratio: 0.5 };
    let mut shared = new_pruner(Method::SparseGpt, cols, &SparseGptOptions::default());
    shared.observe(&x(40, cols));
    for seed in 0..3 {
        let mut a: Vec<f32> = w(5, cols).iter().map(|v| v * (seed as f32 + 1.0)).collect();
        let mut b = a.clone();
        shared.prune(NAME, &mut a, 5, cols, &pattern).unwrap();
        let mut fresh = pruner(Method::SparseGpt, cols, 40);
        fresh.prune(NAME, &mut b, 5, cols, &pattern).unwrap();
        assert_eq!(a, b);
    }
    shared.observe(&x(10, cols));
    let mut a = w(5, cols);
    let mut b = a.clone();
    shared.prune(NAME, &mut a, 5, cols, &pattern).unwrap();
    let mut fresh = new_pruner(Method::SparseGpt, cols, &SparseGptOptions::default());
    fresh.observe(&x(40, cols));
    fresh.observe(&x(10, cols));
    fresh.prune(NAME, &mut b, 5, cols, &pattern).unwrap();
    assert_eq!(a, b);
}
