//! `secateurs bench kernels` on small matrices: the JSON report holds every case once whatever
//! the number of rounds, with positive times, and `--rounds 0` is refused in one line.

use std::process::Command;

fn bench(extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_secateurs"))
        .args([
            "--threads",
            "2",
            "bench",
            "kernels",
            "--sizes",
            "64",
            "--sparsities",
            "0.5,0.9",
            "--nm24",
            "64",
            "--min-time",
            "0.001",
            "--no-reference",
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn rounds_merge_into_one_row_per_case() {
    let out = bench(&["--rounds", "3", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rounds"], 3);
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3, "{v}");
    for c in cases {
        let ours = &c["secateurs"];
        for key in ["dense_gemv_s", "csr_spmv_s", "bitmask_spmv_s", "csr_spmm_s"] {
            let t = ours[key].as_f64().unwrap();
            assert!(t > 0.0 && t.is_finite(), "{key} = {t}");
        }
        assert!(c["scipy"].is_null());
    }
    assert_eq!(cases[2]["secateurs"]["pattern"], "2:4");
    assert!(cases[2]["secateurs"]["nm_spmv_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn zero_rounds_is_refused() {
    let out = bench(&["--rounds", "0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("--rounds must be at least 1"), "{stderr}");
}
