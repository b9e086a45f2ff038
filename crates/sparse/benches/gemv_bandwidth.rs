//! GEMV throughput against the measured memory bandwidth (not criterion: one table, fast).
//!
//! `cargo bench -p secateurs-sparse --bench gemv_bandwidth` prints, for the decode shapes of the
//! default model and for 4096², the best time of each kernel, the bytes it reads per call, the
//! resulting GB/s and its fraction of the measured read bandwidth.

mod common;

use common::{nm24, random};
use std::time::Instant;

use secateurs_sparse::bandwidth::{measure_copy_bandwidth, measure_read_bandwidth};
use secateurs_sparse::kernels::Isa;
use secateurs_sparse::{Format, PackedMatrix, ValueDtype};

/// Best seconds of `f` over at least `min_s` seconds and 5 runs.
fn time(mut f: impl FnMut(), min_s: f64) -> f64 {
    f();
    let start = Instant::now();
    let mut best = f64::MAX;
    let mut n = 0;
    while n < 5 || start.elapsed().as_secs_f64() < min_s {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
        n += 1;
    }
    best
}

fn main() {
    let read = measure_read_bandwidth();
    let copy = measure_copy_bandwidth();
    println!(
        "threads {}, isa {}, read bandwidth {read:.1} GB/s, copy {copy:.1} GB/s",
        rayon::current_num_threads(),
        Isa::active()
    );
    println!(
        "{:<28} {:>10} {:>10} {:>8} {:>7} {:>9}",
        "matrix", "MB", "us", "GB/s", "%read", "vs dense"
    );
    let shapes = [
        (576, 576),
        (192, 576),
        (1536, 576),
        (576, 1536),
        (49152, 576),
        (4096, 4096),
    ];
    let skip_shapes = std::env::var("GEMV_ONLY").is_ok();
    for &(rows, cols) in shapes.iter().filter(|_| !skip_shapes) {
        for dtype in [ValueDtype::F32, ValueDtype::Bf16] {
            let w = random(rows, cols, 0.0, 1);
            let m = PackedMatrix::encode(&w, rows, cols, Some(Format::Dense), dtype).unwrap();
            row(&format!("{rows}x{cols} dense/{dtype}"), &m, read, None);
        }
    }
    if std::env::var("CF").is_ok() {
        // Compute floor: cache-resident matrices, ns per 16 columns.
        let (rows, cols) = (16, 2048);
        let x = random(1, cols, 0.0, 9);
        let mut y = vec![0f32; rows];
        for dtype in [ValueDtype::F32, ValueDtype::Bf16] {
            for (f, s) in [
                (Format::Dense, 0.0),
                (Format::Bitmask, 0.5),
                (Format::Bitmask, 0.95),
                (Format::Csr, 0.5),
            ] {
                let m = PackedMatrix::encode(&random(rows, cols, s, 4), rows, cols, Some(f), dtype)
                    .unwrap();
                let t = time(
                    || {
                        for _ in 0..100 {
                            m.gemv(&x, &mut y)
                        }
                    },
                    0.5,
                ) / 100.0;
                println!(
                    "floor {:<24} {:.3} ns per 16 columns",
                    format!("{} {s}", m.describe()),
                    t * 1e9 / (rows * cols / 16) as f64
                );
            }
        }
        return;
    }
    let n = 4096;
    let only = std::env::var("GEMV_ONLY").unwrap_or_default();
    for dtype in [ValueDtype::F32, ValueDtype::Bf16] {
        let mut ms: Vec<(String, PackedMatrix)> = Vec::new();
        ms.push((
            format!("{n}x{n} dense/{dtype}"),
            PackedMatrix::encode(&random(n, n, 0.0, 1), n, n, Some(Format::Dense), dtype).unwrap(),
        ));
        for s in [0.5, 0.7, 0.9, 0.95] {
            let w = random(n, n, s, 2);
            for f in [Format::Bitmask, Format::Csr] {
                let m = PackedMatrix::encode(&w, n, n, Some(f), dtype).unwrap();
                ms.push((format!("{n}x{n} {} {s}", m.describe()), m));
            }
        }
        let m = PackedMatrix::encode(&nm24(n, n, 3), n, n, Some(Format::Nm), dtype).unwrap();
        ms.push((format!("{n}x{n} {}", m.describe()), m));
        for (rows, cols) in [(49152, 576), (1536, 576), (576, 1536)] {
            let m = PackedMatrix::encode(
                &random(rows, cols, 0.0, 5),
                rows,
                cols,
                Some(Format::Dense),
                dtype,
            )
            .unwrap();
            ms.push((format!("head {rows}x{cols} {}", m.describe()), m));
        }
        ms.retain(|(name, _)| {
            only.is_empty() || name.contains("dense") || only.split(',').any(|o| name.contains(o))
        });
        // Round-robin timing: every matrix sees the same background load.
        let x = random(1, 4 * n, 0.0, 9);
        let mut y = vec![0f32; 49152];
        let mut best = vec![f64::MAX; ms.len()];
        let start = Instant::now();
        while start.elapsed().as_secs_f64() < 1.0 * ms.len() as f64 {
            for (i, (_, m)) in ms.iter().enumerate() {
                let (rows, cols) = m.shape();
                for _ in 0..3 {
                    let t = Instant::now();
                    m.gemv(&x[..cols], &mut y[..rows]);
                    best[i] = best[i].min(t.elapsed().as_secs_f64());
                }
            }
        }
        for (i, (name, m)) in ms.iter().enumerate() {
            let gbs = m.nbytes() as f64 / best[i] / 1e9;
            println!(
                "{name:<28} {:>10.2} {:>10.1} {gbs:>8.1} {:>6.0}% {:>8.2}x",
                m.nbytes() as f64 / 1e6,
                best[i] * 1e6,
                100.0 * gbs / read,
                best[0] / best[i]
            );
        }
    }
}

fn row(name: &str, m: &PackedMatrix, read: f64, dense: Option<f64>) -> f64 {
    let (rows, cols) = m.shape();
    let x = random(1, cols, 0.0, 9);
    let mut y = vec![0f32; rows];
    // Called from inside the rayon pool, as a decode loop running in `pool.install` does: the
    // row-block split then costs a join, not a cross-thread injection.
    let mut t_in = 0.0;
    rayon::scope(|s| s.spawn(|_| t_in = time(|| m.gemv(&x, &mut y), 0.5)));
    let t_out = time(|| m.gemv(&x, &mut y), 0.5);
    if std::env::var("CALL_OVERHEAD").is_ok() {
        println!(
            "  {name}: from the main thread {:.1} us, inside the pool {:.1} us",
            t_out * 1e6,
            t_in * 1e6
        );
    }
    let t = t_in;
    let gbs = m.nbytes() as f64 / t / 1e9;
    let vs = dense.map(|d| format!("{:.2}x", d / t)).unwrap_or_default();
    println!(
        "{name:<28} {:>10.2} {:>10.1} {gbs:>8.1} {:>6.0}% {vs:>9}",
        m.nbytes() as f64 / 1e6,
        t * 1e6,
        100.0 * gbs / read
    );
    t
}
