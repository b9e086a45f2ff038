//! Criterion benchmarks of every kernel at n = 4096: dense f32/bf16 GEMV and GEMM, and CSR,
//! bitmask, N:M (2:4) and COO SpMV and SpMM (64 activation columns), at 50% and 90% random
//! sparsity (2:4 for N:M).
//!
//! `cargo bench -p secateurs-sparse --bench kernels` (filter with a substring, e.g.
//! `-- spmv/bitmask`). Throughput is reported in bytes of stored matrix per second, so the GEMV
//! and SpMV numbers compare directly with the machine's memory bandwidth.

mod common;

use common::{nm24, random};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use secateurs_sparse::{Format, PackedMatrix, ValueDtype};

const N: usize = 4096;
const COLUMNS: usize = 64;

/// The benchmarked matrices: (label, matrix).
fn matrices() -> Vec<(String, PackedMatrix)> {
    let mut out = Vec::new();
    let dense = random(N, N, 0.0, 1);
    for dtype in [ValueDtype::F32, ValueDtype::Bf16] {
        out.push((
            format!("dense/{dtype}"),
            PackedMatrix::encode(&dense, N, N, Some(Format::Dense), dtype).unwrap(),
        ));
    }
    for sparsity in [0.5, 0.9] {
        let w = random(N, N, sparsity, 2);
        for format in [Format::Csr, Format::Bitmask, Format::Coo] {
            for dtype in [ValueDtype::F32, ValueDtype::Bf16] {
                out.push((
                    format!("{format}/{dtype}/{sparsity}"),
                    PackedMatrix::encode(&w, N, N, Some(format), dtype).unwrap(),
                ));
            }
        }
    }
    let w = nm24(N, N, 3);
    for dtype in [ValueDtype::F32, ValueDtype::Bf16] {
        out.push((
            format!("nm/{dtype}/2:4"),
            PackedMatrix::encode(&w, N, N, Some(Format::Nm), dtype).unwrap(),
        ));
    }
    out
}

fn bench(c: &mut Criterion) {
    let ms = matrices();
    let x = random(1, N, 0.0, 9);
    let xm = random(COLUMNS, N, 0.0, 10);

    let mut g = c.benchmark_group("spmv");
    g.sample_size(30);
    for (label, m) in &ms {
        let mut y = vec![0f32; N];
        g.throughput(Throughput::Bytes(m.nbytes() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(label), m, |b, m| {
            b.iter(|| m.gemv(&x, &mut y))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("spmm64");
    g.sample_size(10);
    for (label, m) in &ms {
        let mut y = vec![0f32; N * COLUMNS];
        g.throughput(Throughput::Elements((2 * m.stored() * COLUMNS) as u64));
        g.bench_with_input(BenchmarkId::from_parameter(label), m, |b, m| {
            b.iter(|| m.matmul(&xm, COLUMNS, &mut y))
        });
    }
    g.finish();

    // The dense f32 entry point on raw slices (what the model's dense layers call).
    let w = random(N, N, 0.0, 1);
    let mut y = vec![0f32; N];
    let mut g = c.benchmark_group("gemv_f32_slice");
    g.throughput(Throughput::Bytes((N * N * 4) as u64));
    g.bench_function("4096x4096", |b| {
        b.iter(|| secateurs_sparse::kernels::gemv_f32(&w, N, N, &x, &mut y))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
