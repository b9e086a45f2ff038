//! `secateurs bench kernels`: seed 003's sparse-vs-dense experiment (random n×n matrices at
//! several sparsities), with our kernels — CSR and bitmask SpMV/SpMM against our dense GEMV/GEMM
//! at the same value type — and, side by side in the same run, scipy.sparse CSR and numpy dense on
//! the identical matrices (scripts/scipy_kernels.py).
//!
//! Both sides generate the matrices from the same seed with the same SplitMix64 stream (element
//! `i` of a stream is `splitmix64(base + i)`; see [`bench_matrix`] and `matrix()` in the script),
//! and the script returns each matrix's non-zero count and float64 checksum, which this command
//! checks against its own before printing any ratio.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args as ClapArgs;
use secateurs_sparse::bandwidth::measure_read_bandwidth_with;
use secateurs_sparse::kernels::Isa;
use secateurs_sparse::{Format, PackedMatrix, ValueDtype};
use serde::Serialize;
use serde_json::{json, Value};

/// Arguments of `secateurs bench kernels`.
#[derive(ClapArgs)]
#[command(after_help = "\
Examples:
  secateurs --threads 2 bench kernels
  secateurs bench kernels --dtype bf16 --python /opt/refenv/bin/python
  secateurs bench kernels --sizes 4096 --sparsities 0.5,0.7 --json

For every n and sparsity, builds a random n x n matrix (entries uniform in (-1, 1), each zero with
probability `sparsity`; at the sizes of --nm24 also a 2:4 matrix) and times, best of several runs:
our dense GEMV/GEMM, CSR and bitmask SpMV and SpMM (64 activation columns), at --dtype; then runs
scripts/scipy_kernels.py in the same invocation on the identical matrices (scipy.sparse CSR and
numpy dense, float32, same thread count for BLAS) and prints times and ratios: sparse over our
dense (> 1: sparse is faster) and ours over scipy. scipy is skipped with a note when the Python
interpreter lacks numpy/scipy.

The two sides alternate --rounds times (ours, scipy, ours, scipy, ...) and every kernel keeps its
best time over the rounds, ours and the reference's alike: on a shared machine whose speed drifts
over tens of seconds, one pass of each side would set times from different moments against each
other.")]
pub struct KernelsBenchArgs {
    /// Matrix sizes n (comma-separated).
    #[arg(long, default_value = "1000,4096", value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Sparsities (fraction of zeros, comma-separated).
    #[arg(long, default_value = "0.5,0.7,0.9,0.95", value_delimiter = ',')]
    sparsities: Vec<f64>,
    /// Sizes that also get a 2:4 structured matrix (comma-separated; "none" for none).
    #[arg(long, default_value = "4096")]
    nm24: String,
    /// Stored value type of our matrices (f32, bf16, f16); scipy always uses float32.
    #[arg(long, default_value = "f32")]
    dtype: ValueDtype,
    /// Activation columns of the SpMM (batch).
    #[arg(long, default_value_t = 64)]
    columns: usize,
    /// Seed of the random matrices (both sides).
    #[arg(long, default_value_t = 3)]
    seed: u64,
    /// Minimum seconds spent timing each kernel per round (best run kept).
    #[arg(long, default_value_t = 0.3)]
    min_time: f64,
    /// Rounds of our timings and the reference's, alternating; each kernel keeps its best.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Python interpreter with numpy + scipy.
    #[arg(long, default_value = "python3", env = "SECATEURS_PYTHON")]
    python: String,
    /// Reference script (default: scripts/scipy_kernels.py of the source tree).
    #[arg(long)]
    script: Option<PathBuf>,
    /// Skip the scipy/numpy side.
    #[arg(long)]
    no_reference: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// SplitMix64 (Steele, Lea & Flood 2014), the generator both sides share.
fn splitmix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// First index of stream `tag` of `seed`.
fn stream_base(seed: u64, tag: u64) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(tag) << 32
}

/// Element `i` of a stream: a value in (-1, 1) (exact in f32 after rounding) and a uniform.
fn element(base: u64, i: u64) -> (f32, f64) {
    let z = splitmix(base.wrapping_add(i));
    let u = (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    let v = ((z & 0xFF_FFFF) as f64 + 0.5) / (1u64 << 23) as f64 - 1.0;
    (v as f32, u)
}

fn stream(seed: u64, tag: u64, n: usize) -> Vec<f32> {
    let base = stream_base(seed, tag);
    (0..n as u64).map(|i| element(base, i).0).collect()
}

const PAIRS: [(usize, usize); 6] = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)];

/// The n×n matrix of one benchmark case (`matrix()` of scripts/scipy_kernels.py).
fn bench_matrix(n: usize, sparsity: f64, nm24: bool, seed: u64) -> Vec<f32> {
    let tag =
        1 + (sparsity * 1000.0).round() as u64 + if nm24 { 7919 } else { 0 } + n as u64 * 10_007;
    let base = stream_base(seed, tag);
    let mut w: Vec<f32> = (0..(n * n) as u64)
        .map(|i| {
            let (v, u) = element(base, i);
            if !nm24 && u < sparsity {
                0.0
            } else {
                v
            }
        })
        .collect();
    if nm24 {
        let gbase = stream_base(seed, tag + 1);
        for (g, group) in w.chunks_exact_mut(4).enumerate() {
            let (a, b) = PAIRS[(splitmix(gbase.wrapping_add(g as u64)) % 6) as usize];
            for (j, x) in group.iter_mut().enumerate() {
                if j != a && j != b {
                    *x = 0.0;
                }
            }
        }
    }
    w
}

/// Best seconds of `f` over at least `min_s` seconds and 3 runs (after one warm-up run).
fn best_time(min_s: f64, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut best = f64::MAX;
    let mut runs = 0;
    while runs < 3 || start.elapsed().as_secs_f64() < min_s {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
        runs += 1;
    }
    best
}

/// Our timings of one matrix.
#[derive(Serialize, Clone)]
struct Case {
    n: usize,
    sparsity: f64,
    pattern: &'static str,
    nnz: usize,
    checksum: f64,
    /// Bytes of each stored form.
    dense_bytes: usize,
    csr_bytes: usize,
    bitmask_bytes: usize,
    nm_bytes: Option<usize>,
    dense_gemv_s: f64,
    csr_spmv_s: f64,
    bitmask_spmv_s: f64,
    nm_spmv_s: Option<f64>,
    dense_gemm_s: f64,
    csr_spmm_s: f64,
    bitmask_spmm_s: f64,
    nm_spmm_s: Option<f64>,
}

/// The two products of the experiment.
#[derive(Clone, Copy)]
enum Product {
    /// Matrix × one vector (decode).
    Spmv,
    /// Matrix × `--columns` vectors (prefill).
    Spmm,
}

impl Product {
    /// The reference script's keys for its CSR and dense times of this product.
    fn reference_keys(self) -> (&'static str, &'static str) {
        match self {
            Product::Spmv => ("csr_spmv_s", "dense_gemv_s"),
            Product::Spmm => ("csr_spmm_s", "dense_gemm_s"),
        }
    }
}

/// Our times of one product: dense, CSR, bitmask and (2:4 matrices) N:M.
struct Times {
    dense: f64,
    csr: f64,
    bitmask: f64,
    nm: Option<f64>,
}

impl Times {
    /// The fastest sparse time and its format.
    fn best(&self) -> (&'static str, f64) {
        let mut best = ("csr", self.csr);
        if self.bitmask < best.1 {
            best = ("bitmask", self.bitmask);
        }
        if let Some(t) = self.nm.filter(|&t| t < best.1) {
            best = ("2:4", t);
        }
        best
    }
}

impl Case {
    /// Keeps, for every kernel, the faster of this case's time and `other`'s (the same matrix
    /// timed in another round).
    fn keep_best(&mut self, other: &Case) {
        let best = |a: &mut f64, b: f64| *a = a.min(b);
        let best_opt = |a: &mut Option<f64>, b: Option<f64>| {
            if let (Some(a), Some(b)) = (a.as_mut(), b) {
                *a = a.min(b);
            }
        };
        best(&mut self.dense_gemv_s, other.dense_gemv_s);
        best(&mut self.csr_spmv_s, other.csr_spmv_s);
        best(&mut self.bitmask_spmv_s, other.bitmask_spmv_s);
        best_opt(&mut self.nm_spmv_s, other.nm_spmv_s);
        best(&mut self.dense_gemm_s, other.dense_gemm_s);
        best(&mut self.csr_spmm_s, other.csr_spmm_s);
        best(&mut self.bitmask_spmm_s, other.bitmask_spmm_s);
        best_opt(&mut self.nm_spmm_s, other.nm_spmm_s);
    }

    /// Our times of `product`.
    fn times(&self, product: Product) -> Times {
        match product {
            Product::Spmv => Times {
                dense: self.dense_gemv_s,
                csr: self.csr_spmv_s,
                bitmask: self.bitmask_spmv_s,
                nm: self.nm_spmv_s,
            },
            Product::Spmm => Times {
                dense: self.dense_gemm_s,
                csr: self.csr_spmm_s,
                bitmask: self.bitmask_spmm_s,
                nm: self.nm_spmm_s,
            },
        }
    }

    /// Dense time over the fastest sparse time of `product` (> 1: sparse wins).
    fn sparse_over_dense(&self, product: Product) -> f64 {
        let t = self.times(product);
        t.dense / t.best().1
    }
}

/// Prints one table of the experiment: our times and the reference's, side by side.
fn print_table(
    title: &str,
    product: Product,
    cases: &[Case],
    ref_t: &dyn Fn(&Case, &str) -> Option<f64>,
) {
    let (ref_csr, ref_dense) = product.reference_keys();
    println!("{title}");
    println!(
        "{:>5} {:>8} {:>9} {:>9} {:>9} {:>9} {:>14} {:>9} {:>9} {:>11}",
        "n",
        "sparsity",
        "dense",
        "csr",
        "bitmask",
        "2:4",
        "sparse/dense",
        "scipy",
        "numpy",
        "csr/scipy"
    );
    for c in cases {
        let t = c.times(product);
        let (fmt, best) = t.best();
        println!(
            "{:>5} {:>8} {:>9} {:>9} {:>9} {:>9} {:>14} {:>9} {:>9} {:>11}",
            c.n,
            if c.pattern == "2:4" {
                "2:4".to_string()
            } else {
                format!("{:.2}", c.sparsity)
            },
            ms(t.dense),
            ms(t.csr),
            ms(t.bitmask),
            opt_ms(t.nm),
            format!("{:.2}x {fmt}", t.dense / best),
            opt_ms(ref_t(c, ref_csr)),
            opt_ms(ref_t(c, ref_dense)),
            ratio(ref_t(c, ref_csr), Some(t.csr)),
        );
    }
}

fn run_case(
    a: &KernelsBenchArgs,
    n: usize,
    sparsity: f64,
    nm24: bool,
    dense: &mut Option<(f64, f64)>,
) -> Result<Case> {
    let w = bench_matrix(n, sparsity, nm24, a.seed);
    let x = stream(a.seed, 2_000_000 + n as u64, n);
    // The script's X is (n, columns) row-major; ours is its transpose, (columns, n).
    let xm_t = stream(a.seed, 3_000_000 + n as u64, n * a.columns);
    let mut xm = vec![0f32; n * a.columns];
    for c in 0..n {
        for b in 0..a.columns {
            xm[b * n + c] = xm_t[c * a.columns + b];
        }
    }
    let nnz = w.iter().filter(|&&v| v != 0.0).count();
    let checksum: f64 = w.iter().map(|&v| f64::from(v)).sum();
    let enc = |f: Format| PackedMatrix::encode(&w, n, n, Some(f), a.dtype);
    let mut y = vec![0f32; n];
    let mut ym = vec![0f32; n * a.columns];
    let mut time_pair = |m: &PackedMatrix| -> (f64, f64) {
        let tv = best_time(a.min_time, || m.gemv(&x, &mut y));
        let tm = best_time(a.min_time, || m.matmul(&xm, a.columns, &mut ym));
        (tv, tm)
    };
    let d = enc(Format::Dense)?;
    // Dense timings do not depend on the values: once per size.
    let (dense_gemv_s, dense_gemm_s) = *dense.get_or_insert_with(|| time_pair(&d));
    let csr = enc(Format::Csr)?;
    let (csr_spmv_s, csr_spmm_s) = time_pair(&csr);
    let bm = enc(Format::Bitmask)?;
    let (bitmask_spmv_s, bitmask_spmm_s) = time_pair(&bm);
    let (nm_bytes, nm_spmv_s, nm_spmm_s) = if nm24 {
        let m = enc(Format::Nm)?;
        let (tv, tm) = time_pair(&m);
        (Some(m.nbytes()), Some(tv), Some(tm))
    } else {
        (None, None, None)
    };
    Ok(Case {
        n,
        sparsity,
        pattern: if nm24 { "2:4" } else { "random" },
        nnz,
        checksum,
        dense_bytes: d.nbytes(),
        csr_bytes: csr.nbytes(),
        bitmask_bytes: bm.nbytes(),
        nm_bytes,
        dense_gemv_s,
        csr_spmv_s,
        bitmask_spmv_s,
        nm_spmv_s,
        dense_gemm_s,
        csr_spmm_s,
        bitmask_spmm_s,
        nm_spmm_s,
    })
}

/// The reference row of a case, if the script ran and its matrix is identical to ours.
fn reference_for<'a>(reference: Option<&'a Value>, c: &Case) -> Option<&'a Value> {
    find_result(reference?, c.n as u64, c.pattern, c.sparsity)
}

/// The result of the reference script's output `reference` for size `n`, `pattern` and
/// `sparsity`.
fn find_result<'a>(
    reference: &'a Value,
    n: u64,
    pattern: &str,
    sparsity: f64,
) -> Option<&'a Value> {
    reference["results"].as_array()?.iter().find(|r| {
        r["n"].as_u64() == Some(n)
            && r["pattern"].as_str() == Some(pattern)
            && r["sparsity"]
                .as_f64()
                .is_some_and(|s| (s - sparsity).abs() < 1e-9)
    })
}

fn identical(r: &Value, c: &Case) -> bool {
    r["nnz"].as_u64() == Some(c.nnz as u64)
        && r["checksum"]
            .as_f64()
            .is_some_and(|s| (s - c.checksum).abs() <= 1e-9 * (1.0 + c.checksum.abs()))
}

fn ms(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.1}us", s * 1e6)
    } else {
        format!("{:.2}ms", s * 1e3)
    }
}

fn opt_ms(s: Option<f64>) -> String {
    s.map(ms).unwrap_or_else(|| "-".into())
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

/// One round of our timings: every case of `a`, in order.
fn time_cases(a: &KernelsBenchArgs, nm24: &[usize], round: usize) -> Result<Vec<Case>> {
    let mut cases = Vec::new();
    for &n in &a.sizes {
        // Dense is timed once per size and round (its time does not depend on the values).
        let mut dense = None;
        for &s in &a.sparsities {
            if !a.json {
                eprintln!(
                    "secateurs (round {round}/{}): n = {n}, sparsity {s} ...",
                    a.rounds
                );
            }
            cases.push(run_case(a, n, s, false, &mut dense)?);
        }
        if nm24.contains(&n) {
            if !a.json {
                eprintln!("secateurs (round {round}/{}): n = {n}, 2:4 ...", a.rounds);
            }
            cases.push(run_case(a, n, 0.5, true, &mut dense)?);
        }
    }
    Ok(cases)
}

/// One run of scripts/scipy_kernels.py on the matrices of `a`; `None` (with a note on stderr)
/// when it cannot run or its interpreter lacks numpy/scipy.
fn run_scipy(a: &KernelsBenchArgs, nm24: &[usize], threads: usize) -> Option<Value> {
    let join = |v: &[String]| v.join(",");
    let args: Vec<String> = vec![
        "--sizes".into(),
        join(&a.sizes.iter().map(|n| n.to_string()).collect::<Vec<_>>()),
        "--sparsities".into(),
        join(
            &a.sparsities
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        ),
        "--nm24".into(),
        join(&nm24.iter().map(|n| n.to_string()).collect::<Vec<_>>()),
        "--seed".into(),
        a.seed.to_string(),
        "--columns".into(),
        a.columns.to_string(),
        "--threads".into(),
        threads.to_string(),
        "--min-time".into(),
        a.min_time.to_string(),
    ];
    match crate::cmd::bench::run_reference(
        &a.python,
        a.script.as_deref(),
        "scipy_kernels.py",
        "scipy/numpy",
        a.json,
        &args,
    ) {
        Some(v) if v["available"].as_bool() == Some(true) => Some(v),
        Some(v) => {
            eprintln!(
                "note: scipy/numpy reference not run: {} lacks numpy/scipy ({}); pass \
                 --python with an interpreter that has them (e.g. /opt/refenv/bin/python)",
                a.python,
                v["error"].as_str().unwrap_or("import failed")
            );
            None
        }
        None => {
            eprintln!("note: scipy/numpy reference not run (see above)");
            None
        }
    }
}

/// `best` with every time (`*_s` field) of each result lowered to the same result's time in
/// `other` where that is faster (results matched by size, pattern and sparsity).
fn keep_best_reference(mut best: Value, other: &Value) -> Value {
    if let Some(results) = best["results"].as_array_mut() {
        for r in results {
            let (Some(n), Some(pattern), Some(sparsity)) = (
                r["n"].as_u64(),
                r["pattern"].as_str(),
                r["sparsity"].as_f64(),
            ) else {
                continue;
            };
            let Some(o) = find_result(other, n, pattern, sparsity) else {
                continue;
            };
            let Some(fields) = r.as_object_mut() else {
                continue;
            };
            for (k, v) in fields.iter_mut() {
                if let (true, Some(a), Some(b)) = (k.ends_with("_s"), v.as_f64(), o[k].as_f64()) {
                    if b < a {
                        *v = json!(b);
                    }
                }
            }
        }
    }
    best
}

/// Runs the benchmark.
pub fn run(a: KernelsBenchArgs) -> Result<()> {
    if a.sizes.is_empty() || a.sizes.contains(&0) {
        bail!("--sizes must list positive sizes");
    }
    if a.sparsities.iter().any(|s| !(0.0..1.0).contains(s)) {
        bail!("--sparsities must lie in [0, 1)");
    }
    if a.columns == 0 {
        bail!("--columns must be at least 1");
    }
    if a.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let nm24: Vec<usize> = a
        .nm24
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "none")
        .map(|s| s.parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("--nm24: {e}"))?;
    if nm24.iter().any(|&n| n % 4 != 0) {
        bail!("--nm24 sizes must be multiples of 4");
    }
    let threads = rayon::current_num_threads();
    let isa = Isa::active();
    if !a.json {
        eprintln!("measuring read bandwidth ...");
    }
    let read_gbs = measure_read_bandwidth_with(256 << 20, 3);
    let mut cases: Vec<Case> = Vec::new();
    let mut reference: Option<Value> = None;
    let mut reference_failed = a.no_reference;
    for round in 1..=a.rounds {
        let timed = time_cases(&a, &nm24, round)?;
        if cases.is_empty() {
            cases = timed;
        } else {
            for (c, t) in cases.iter_mut().zip(&timed) {
                c.keep_best(t);
            }
        }
        if !reference_failed {
            match run_scipy(&a, &nm24, threads) {
                Some(v) => {
                    reference = Some(match reference {
                        Some(old) => keep_best_reference(old, &v),
                        None => v,
                    })
                }
                None => reference_failed = true,
            }
        }
    }
    let mismatched: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            let r = reference_for(reference.as_ref(), c)?;
            (!identical(r, c)).then(|| format!("n={} {} {}", c.n, c.pattern, c.sparsity))
        })
        .collect();
    if !mismatched.is_empty() {
        bail!(
            "the reference generated different matrices ({}); refusing to compare",
            mismatched.join("; ")
        );
    }
    let ref_t =
        |c: &Case, key: &str| reference_for(reference.as_ref(), c).and_then(|r| r[key].as_f64());

    if a.json {
        let rows: Vec<Value> = cases
            .iter()
            .map(|c| {
                json!({
                    "secateurs": c,
                    "scipy": reference_for(reference.as_ref(), c),
                    "spmv_sparse_over_dense": c.sparse_over_dense(Product::Spmv),
                    "spmm_sparse_over_dense": c.sparse_over_dense(Product::Spmm),
                    "csr_spmv_ours_over_scipy": ref_t(c, "csr_spmv_s").map(|t| t / c.csr_spmv_s),
                    "csr_spmm_ours_over_scipy": ref_t(c, "csr_spmm_s").map(|t| t / c.csr_spmm_s),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "threads": threads, "isa": isa.name(), "dtype": a.dtype, "columns": a.columns,
                "rounds": a.rounds,
                "seed": a.seed, "read_bandwidth_gbs": read_gbs,
                "reference": reference.as_ref().map(|r| json!({
                    "numpy": r["numpy"], "scipy": r["scipy"], "threads": r["threads"],
                })),
                "cases": rows,
            }))?
        );
        return Ok(());
    }

    println!(
        "sparse vs dense kernels (seed 003's experiment): {threads} threads, {isa}, values {}, \
         read bandwidth {read_gbs:.1} GB/s",
        a.dtype
    );
    match &reference {
        Some(r) => println!(
            "reference: scipy {} CSR float32 (single-threaded) and numpy {} dense (BLAS, {} threads), \
             identical matrices (nnz and checksum verified)",
            r["scipy"].as_str().unwrap_or("?"),
            r["numpy"].as_str().unwrap_or("?"),
            r["threads"]
        ),
        None => println!("reference: not run"),
    }
    println!(
        "times: best of {} alternating rounds of ours and the reference's; ratios: sparse/dense = our \
         dense time / our best sparse time (> 1: sparse wins); ours/scipy = scipy time / our time",
        a.rounds
    );
    println!();
    print_table(
        "SpMV (decode: W x, one vector)",
        Product::Spmv,
        &cases,
        &ref_t,
    );
    println!();
    print_table(
        &format!("SpMM (prefill: W X, {} columns)", a.columns),
        Product::Spmm,
        &cases,
        &ref_t,
    );
    println!();
    for &n in &a.sizes {
        let random: Vec<&Case> = cases
            .iter()
            .filter(|c| c.n == n && c.pattern == "random")
            .collect();
        let over = |product: Product| {
            random
                .iter()
                .find(|c| {
                    let t = c.times(product);
                    t.best().1 < t.dense
                })
                .map(|c| format!("from sparsity {:.2}", c.sparsity))
                .unwrap_or_else(|| "at none of the sparsities".into())
        };
        println!(
            "n = {n}: sparse overtakes our dense SpMV {}, SpMM {}",
            over(Product::Spmv),
            over(Product::Spmm),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(t: f64, nm: Option<f64>) -> Case {
        Case {
            n: 64,
            sparsity: 0.5,
            pattern: "random",
            nnz: 2048,
            checksum: 1.0,
            dense_bytes: 1,
            csr_bytes: 1,
            bitmask_bytes: 1,
            nm_bytes: None,
            dense_gemv_s: t,
            csr_spmv_s: t + 1.0,
            bitmask_spmv_s: t + 2.0,
            nm_spmv_s: nm,
            dense_gemm_s: t + 3.0,
            csr_spmm_s: t + 4.0,
            bitmask_spmm_s: t + 5.0,
            nm_spmm_s: nm,
        }
    }

    #[test]
    fn our_rounds_keep_each_kernels_best_time() {
        let mut c = case(10.0, Some(9.0));
        c.keep_best(&case(1.0, Some(20.0)));
        assert_eq!(
            [
                c.dense_gemv_s,
                c.csr_spmv_s,
                c.bitmask_spmv_s,
                c.dense_gemm_s,
                c.csr_spmm_s,
                c.bitmask_spmm_s
            ],
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        assert_eq!((c.nm_spmv_s, c.nm_spmm_s), (Some(9.0), Some(9.0)));
        c.keep_best(&case(0.5, Some(2.0)));
        assert_eq!((c.dense_gemv_s, c.nm_spmv_s), (0.5, Some(2.0)));
        // A matrix without an N:M form stays without one.
        let mut c = case(3.0, None);
        c.keep_best(&case(1.0, None));
        assert_eq!((c.dense_gemv_s, c.nm_spmv_s), (1.0, None));
    }

    #[test]
    fn reference_rounds_keep_each_kernels_best_time() {
        let first = json!({"results": [
            {"n": 64, "pattern": "random", "sparsity": 0.5, "nnz": 2048,
             "csr_spmv_s": 2.0, "csr_spmm_s": 1.0, "dense_gemv_s": 5.0},
            {"n": 64, "pattern": "2:4", "sparsity": 0.5, "nnz": 2048, "csr_spmv_s": 7.0},
        ]});
        // The second round lists its results in another order and adds a case the first lacks.
        let second = json!({"results": [
            {"n": 64, "pattern": "2:4", "sparsity": 0.5, "nnz": 9, "csr_spmv_s": 3.0},
            {"n": 64, "pattern": "random", "sparsity": 0.5, "nnz": 1,
             "csr_spmv_s": 1.5, "csr_spmm_s": 4.0, "dense_gemv_s": 5.0},
            {"n": 128, "pattern": "random", "sparsity": 0.5, "csr_spmv_s": 0.1},
        ]});
        let best = keep_best_reference(first, &second);
        let r = best["results"].as_array().unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0]["csr_spmv_s"], json!(1.5));
        assert_eq!(r[0]["csr_spmm_s"], json!(1.0));
        assert_eq!(r[0]["dense_gemv_s"], json!(5.0));
        assert_eq!(r[1]["csr_spmv_s"], json!(3.0));
        // Counts are not times: the first round's stay.
        assert_eq!(r[0]["nnz"], json!(2048));
        assert_eq!(r[1]["nnz"], json!(2048));
    }
}
