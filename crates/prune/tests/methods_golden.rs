//! Golden tests of the three pruners against `scripts/prune_reference.py` (torch float64
//! re-implementations of Sun et al. 2023 eq. 1 / magnitude, and Frantar & Alistarh 2023
//! Algorithm 1). Masks of magnitude and Wanda must be identical; SparseGPT weights within 1e-4.

use std::path::{Path, PathBuf};

use secateurs_model::ops::Matrix;
use secateurs_prune::methods::{new_pruner, Method, SparseGptOptions};
use secateurs_prune::pattern::Pattern;
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/methods")
}

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn f32s(name: &str) -> Vec<f32> {
    bytes(name)
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn f64s(name: &str) -> Vec<f64> {
    bytes(name)
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

struct Case {
    name: String,
    rows: usize,
    cols: usize,
    batches: Vec<usize>,
    blocksize: usize,
    damp: f64,
    w: Vec<f32>,
    x: Vec<f32>,
    results: Vec<Value>,
}

fn cases() -> Vec<Case> {
    let index: Value = serde_json::from_slice(&bytes("index.json")).unwrap();
    index["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            rows: c["rows"].as_u64().unwrap() as usize,
            cols: c["cols"].as_u64().unwrap() as usize,
            batches: c["batches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_u64().unwrap() as usize)
                .collect(),
            blocksize: c["blocksize"].as_u64().unwrap() as usize,
            damp: c["damp"].as_f64().unwrap(),
            w: f32s(c["w"].as_str().unwrap()),
            x: f32s(c["x"].as_str().unwrap()),
            results: c["results"].as_array().unwrap().clone(),
        })
        .collect()
}

/// Runs `method` on a case, feeding the calibration inputs in the reference's batches.
fn run(case: &Case, method: Method, pattern: &Pattern) -> Vec<f32> {
    let opts = SparseGptOptions {
        damp: case.damp,
        blocksize: case.blocksize,
        ..SparseGptOptions::default()
    };
    let mut pruner = new_pruner(method, case.cols, &opts);
    let mut start = 0;
    for &t in &case.batches {
        let data = case.x[start * case.cols..(start + t) * case.cols].to_vec();
        pruner.observe(&Matrix {
            rows: t,
            cols: case.cols,
            data,
        });
        start += t;
    }
    let mut w = case.w.clone();
    let rep = pruner
        .prune("test.weight", &mut w, case.rows, case.cols, pattern)
        .unwrap();
    assert_eq!(rep.numel, w.len());
    assert_eq!(rep.zeros, w.iter().filter(|v| **v == 0.0).count());
    w
}

#[test]
fn magnitude_and_wanda_masks_match_reference() {
    for case in cases() {
        for r in &case.results {
            let pattern = Pattern::parse(r["pattern"].as_str().unwrap()).unwrap();
            for (method, key) in [
                (Method::Magnitude, "magnitude_mask"),
                (Method::Wanda, "wanda_mask"),
            ] {
                let expected = bytes(r[key].as_str().unwrap());
                let w = run(&case, method, &pattern);
                let mut diffs = 0;
                for (i, (e, (new, old))) in expected.iter().zip(w.iter().zip(&case.w)).enumerate() {
                    let pruned = *new == 0.0;
                    if pruned != (*e == 1) {
                        diffs += 1;
                    }
                    if !pruned {
                        assert_eq!(new.to_bits(), old.to_bits(), "kept weight {i} changed");
                    }
                }
                assert_eq!(
                    diffs, 0,
                    "case {} {method} {pattern}: {diffs} mask entries differ",
                    case.name
                );
            }
        }
    }
}

#[test]
fn sparsegpt_weights_match_reference() {
    for case in cases() {
        for r in &case.results {
            let pattern = Pattern::parse(r["pattern"].as_str().unwrap()).unwrap();
            let expected = f64s(r["sparsegpt_w"].as_str().unwrap());
            let w = run(&case, Method::SparseGpt, &pattern);
            let (mut num, mut den, mut max_abs, mut max_ref) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
            let mut mask_diffs = 0;
            for (a, e) in w.iter().zip(&expected) {
                let d = f64::from(*a) - e;
                num += d * d;
                den += e * e;
                max_abs = max_abs.max(d.abs());
                max_ref = max_ref.max(e.abs());
                if (*a == 0.0) != (*e == 0.0) {
                    mask_diffs += 1;
                }
            }
            let rel = (num / den).sqrt();
            let rel_max = max_abs / max_ref;
            println!(
                "case {} sparsegpt {pattern}: rel fro {rel:.2e}, max abs / max |W| {rel_max:.2e}, zeros {} (ref {})",
                case.name,
                w.iter().filter(|v| **v == 0.0).count(),
                r["sparsegpt_zeros"]
            );
            assert_eq!(mask_diffs, 0, "case {} {pattern}", case.name);
            assert!(rel < 1e-4, "case {} {pattern}: rel {rel:e}", case.name);
            assert!(
                rel_max < 1e-4,
                "case {} {pattern}: max {rel_max:e}",
                case.name
            );
        }
    }
}
