//! Property tests of the formats and kernels: random shapes (odd sizes, columns that are not a
//! multiple of the SIMD width or of 64, single rows), sparsities, formats and value types.
//!
//! - `from_dense` → `to_dense` is exact (for 16-bit types: equal to the rounded dense matrix);
//! - `gemv` and `matmul`, at every ISA level this CPU has (the portable fallback included), equal
//!   the f64 dense product of the decoded matrix within float tolerance, and the scalar
//!   reference kernels;
//! - N:M patterns (2:4, 4:8, 1:4, ...) are detected and multiply correctly;
//! - `from_parts` rejects corrupted parts with an `Err`, never a panic.

use proptest::prelude::*;
use secateurs_sparse::bitmask::Bitmask;
use secateurs_sparse::coo::Coo;
use secateurs_sparse::csr::Csr;
use secateurs_sparse::kernels::{self, reference, Isa};
use secateurs_sparse::nm::NmMatrix;
use secateurs_sparse::{Format, Indices, PackedMatrix, ValueDtype, Values};

/// A deterministic pseudo-random stream (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [-1, 1), never exactly zero.
    fn value(&mut self) -> f32 {
        let v = (2.0 * self.unit() - 1.0) as f32;
        if v == 0.0 {
            0.5
        } else {
            v
        }
    }
}

/// A random dense matrix with each entry zero with probability `sparsity`.
fn random_dense(rows: usize, cols: usize, sparsity: f64, seed: u64) -> Vec<f32> {
    let mut rng = Rng(seed);
    (0..rows * cols)
        .map(|_| {
            if rng.unit() < sparsity {
                0.0
            } else {
                rng.value()
            }
        })
        .collect()
}

/// A random matrix whose groups of `m` columns hold at most `keep` non-zeros.
fn random_nm(rows: usize, cols: usize, keep: usize, m: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng(seed);
    let mut w = vec![0f32; rows * cols];
    for g in w.chunks_exact_mut(m) {
        // Keep a random subset of at most `keep` positions (sometimes fewer: padding path).
        let n = if rng.unit() < 0.2 {
            (rng.next() as usize) % (keep + 1)
        } else {
            keep
        };
        let mut pos: Vec<usize> = (0..m).collect();
        for i in 0..n {
            let j = i + (rng.next() as usize) % (m - i);
            pos.swap(i, j);
            g[pos[i]] = rng.value();
        }
    }
    w
}

fn rounded(w: &[f32], dtype: ValueDtype) -> Vec<f32> {
    w.iter().map(|&x| dtype.round(x)).collect()
}

fn dtype_of(i: usize) -> ValueDtype {
    [ValueDtype::F32, ValueDtype::Bf16, ValueDtype::F16][i % 3]
}

/// `y0 + W x` in f64 and the matching error bound (f32 accumulation of `cols` products).
fn dense_gemv(w: &[f32], rows: usize, cols: usize, x: &[f32], y0: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let mut want = Vec::with_capacity(rows);
    let mut tol = Vec::with_capacity(rows);
    for r in 0..rows {
        let row = &w[r * cols..(r + 1) * cols];
        let s: f64 = row
            .iter()
            .zip(x)
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum();
        let mag: f64 = row
            .iter()
            .zip(x)
            .map(|(&a, &b)| (f64::from(a) * f64::from(b)).abs())
            .sum();
        want.push(f64::from(y0[r]) + s);
        tol.push(1e-5 + 4e-6 * (mag + f64::from(y0[r]).abs()) * (1.0 + (cols as f64).log2()));
    }
    (want, tol)
}

fn check_close(got: &[f32], want: &[f64], tol: &[f64], what: &str) -> Result<(), TestCaseError> {
    for (i, ((&g, &w), &t)) in got.iter().zip(want).zip(tol).enumerate() {
        prop_assert!(
            (f64::from(g) - w).abs() <= t,
            "{what}: element {i}: got {g}, want {w} (tolerance {t})"
        );
    }
    Ok(())
}

/// Checks round trip, gemv and matmul of one encoded matrix on every ISA level.
fn check_matrix(
    m: &PackedMatrix,
    dense: &[f32],
    batch: usize,
    seed: u64,
) -> Result<(), TestCaseError> {
    let (rows, cols) = m.shape();
    let decoded = m.to_dense();
    prop_assert_eq!(
        &decoded,
        &rounded(dense, m.dtype()),
        "round trip of {}",
        m.describe()
    );
    let mut rng = Rng(seed ^ 0xABCD);
    let x: Vec<f32> = (0..batch * cols).map(|_| rng.value()).collect();
    let y0: Vec<f32> = (0..batch * rows).map(|_| rng.value()).collect();

    // gemv on the first activation row.
    let (want, tol) = dense_gemv(&decoded, rows, cols, &x[..cols], &y0[..rows]);
    let mut yr = y0[..rows].to_vec();
    reference::gemv(m, &x[..cols], &mut yr);
    check_close(
        &yr,
        &want,
        &tol,
        &format!("reference gemv {}", m.describe()),
    )?;
    let mut y = y0[..rows].to_vec();
    m.gemv(&x[..cols], &mut y);
    check_close(&y, &want, &tol, &format!("gemv {}", m.describe()))?;
    for isa in Isa::available() {
        let mut y = y0[..rows].to_vec();
        kernels::gemv_isa(isa, m, &x[..cols], &mut y);
        check_close(&y, &want, &tol, &format!("gemv {} on {isa}", m.describe()))?;
        // The fast path agrees with the scalar reference (different summation order only).
        let both: Vec<f64> = yr.iter().map(|&v| f64::from(v)).collect();
        let tol2: Vec<f64> = tol.iter().map(|t| 2.0 * t).collect();
        check_close(
            &y,
            &both,
            &tol2,
            &format!("gemv {} on {isa} vs reference", m.describe()),
        )?;
    }

    // matmul on the whole batch.
    let mut want = Vec::with_capacity(batch * rows);
    let mut tol = Vec::with_capacity(batch * rows);
    for b in 0..batch {
        let (w, t) = dense_gemv(
            &decoded,
            rows,
            cols,
            &x[b * cols..(b + 1) * cols],
            &y0[b * rows..(b + 1) * rows],
        );
        want.extend(w);
        tol.extend(t);
    }
    let mut y = y0.clone();
    m.matmul(&x, batch, &mut y);
    check_close(
        &y,
        &want,
        &tol,
        &format!("matmul {} batch {batch}", m.describe()),
    )?;
    for isa in Isa::available() {
        let mut y = y0.clone();
        kernels::matmul_isa(isa, m, &x, batch, &mut y);
        check_close(
            &y,
            &want,
            &tol,
            &format!("matmul {} batch {batch} on {isa}", m.describe()),
        )?;
    }
    let mut yr = y0.clone();
    reference::matmul(m, &x, batch, &mut yr);
    check_close(
        &yr,
        &want,
        &tol,
        &format!("reference matmul {}", m.describe()),
    )?;
    Ok(())
}

fn format_of(i: usize) -> Format {
    [Format::Dense, Format::Coo, Format::Csr, Format::Bitmask][i % 4]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Unstructured sparsity, every format but N:M, every value type.
    #[test]
    fn unstructured_round_trip_and_products(
        rows in 1usize..48,
        cols in 1usize..200,
        sparsity in 0.0f64..1.0,
        format in 0usize..4,
        dtype in 0usize..3,
        batch in 1usize..80,
        seed in any::<u64>(),
    ) {
        let w = random_dense(rows, cols, sparsity, seed);
        let m = PackedMatrix::encode(&w, rows, cols, Some(format_of(format)), dtype_of(dtype)).unwrap();
        prop_assert_eq!(m.format(), format_of(format));
        check_matrix(&m, &w, batch, seed)?;
    }

    /// CSR with u32 column indices (as matrices wider than 65536 columns store them) goes
    /// through the same products as with u16: every ISA level against the f64 definition,
    /// rows long enough for the vector loop (`2 LANES` entries per step) and for its tail.
    #[test]
    fn csr_with_u32_indices_gives_the_products(
        rows in 1usize..24,
        cols in 1usize..300,
        sparsity in 0.0f64..0.9,
        dtype in 0usize..3,
        batch in 1usize..8,
        seed in any::<u64>(),
    ) {
        let w = random_dense(rows, cols, sparsity, seed);
        let c = Csr::from_dense(&w, rows, cols, dtype_of(dtype)).unwrap();
        let idx: Vec<u32> = (0..c.nnz()).map(|i| c.col_idx().get(i) as u32).collect();
        let wide = Csr::from_parts(rows, cols, c.row_ptr().to_vec(), Indices::U32(idx), c.values().clone()).unwrap();
        prop_assert!(matches!(wide.col_idx(), Indices::U32(_)));
        check_matrix(&PackedMatrix::Csr(wide), &w, batch, seed)?;
    }

    /// Bitmask and N:M GEMV give the dense GEMV's result bit for bit (same row grouping, same
    /// accumulator per column chunk, same summation order), at every ISA level and value type,
    /// for short rows (one at a time) and long rows (four at a time) with ragged ends.
    #[test]
    fn bitmask_gemv_has_the_dense_digits(
        rows in 1usize..40,
        cols in prop_oneof![1usize..300, 321usize..600, 1000usize..1300],
        whole_words in any::<bool>(),
        sparsity in 0.0f64..1.0,
        nm in any::<bool>(),
        dtype in 0usize..3,
        seed in any::<u64>(),
    ) {
        // Whole 64-column words take the hand-scheduled AVX-512 loops for f32 rows (from six
        // words on, the multi-row one).
        let cols = if whole_words { cols.div_ceil(64) * 64 } else { cols };
        let cols = if nm { cols.div_ceil(4) * 4 } else { cols };
        let w = if nm {
            random_nm(rows, cols, 2, 4, seed)
        } else {
            random_dense(rows, cols, sparsity, seed)
        };
        let format = if nm { Format::Nm } else { Format::Bitmask };
        let sparse = PackedMatrix::encode(&w, rows, cols, Some(format), dtype_of(dtype)).unwrap();
        let dense = PackedMatrix::encode(&w, rows, cols, Some(Format::Dense), dtype_of(dtype)).unwrap();
        let x = random_dense(1, cols, 0.0, seed ^ 1);
        let y0 = random_dense(1, rows, 0.0, seed ^ 2);
        for isa in Isa::available() {
            let (mut ys, mut yd) = (y0.clone(), y0.clone());
            kernels::gemv_isa(isa, &sparse, &x, &mut ys);
            kernels::gemv_isa(isa, &dense, &x, &mut yd);
            if nm && cols % 32 == 0 {
                // The 2:4 select kernel sums in its own order: close, not equal.
                let want: Vec<f64> = yd.iter().map(|&v| v as f64).collect();
                let tol: Vec<f64> = yd.iter().map(|v| 1e-4 * (1.0 + v.abs() as f64)).collect();
                check_close(&ys, &want, &tol, "2:4 select kernel")?;
            } else {
                let same = ys.iter().zip(&yd).all(|(a, b)| a.to_bits() == b.to_bits());
                prop_assert!(same, "{} on {}: {:?} vs dense {:?}", format, isa, ys, yd);
            }
        }
    }

    /// A small batch through the GEMV kernels has, for every format, ISA and value type, the
    /// digits of one GEMV per row of the batch (so dense and bitmask storage prefill a short
    /// prompt identically); the same for the plain f32 entry points.
    #[test]
    fn gemv_batch_has_the_gemv_digits(
        rows in 1usize..300,
        cols in prop_oneof![1usize..200, Just(576usize), Just(1536usize)],
        batch in 1usize..=kernels::GEMV_BATCH_MAX,
        sparsity in 0.0f64..1.0,
        format in 0usize..5,
        dtype in 0usize..3,
        seed in any::<u64>(),
    ) {
        let (w, format) = if format == 4 {
            let cols = cols.div_ceil(4) * 4;
            (random_nm(rows, cols, 2, 4, seed), Format::Nm)
        } else {
            (random_dense(rows, cols, sparsity, seed), format_of(format))
        };
        let cols = w.len() / rows;
        let m = PackedMatrix::encode(&w, rows, cols, Some(format), dtype_of(dtype)).unwrap();
        let x = random_dense(batch, cols, 0.0, seed ^ 1);
        let y0 = random_dense(batch, rows, 0.0, seed ^ 2);
        for isa in Isa::available() {
            let mut yb = y0.clone();
            kernels::gemv_batch_isa(isa, &m, &x, batch, &mut yb);
            for b in 0..batch {
                let mut y1 = y0[b * rows..(b + 1) * rows].to_vec();
                kernels::gemv_isa(isa, &m, &x[b * cols..(b + 1) * cols], &mut y1);
                let same = yb[b * rows..(b + 1) * rows]
                    .iter()
                    .zip(&y1)
                    .all(|(a, c)| a.to_bits() == c.to_bits());
                prop_assert!(same, "{} on {}, batch row {}", format, isa, b);
            }
        }
        let wf = rounded(&w, ValueDtype::F32);
        let mut yb = y0.clone();
        kernels::gemv_batch_f32(&wf, rows, cols, &x, batch, &mut yb);
        for b in 0..batch {
            let mut y1 = y0[b * rows..(b + 1) * rows].to_vec();
            kernels::gemv_f32(&wf, rows, cols, &x[b * cols..(b + 1) * cols], &mut y1);
            let same = yb[b * rows..(b + 1) * rows]
                .iter()
                .zip(&y1)
                .all(|(a, c)| a.to_bits() == c.to_bits());
            prop_assert!(same, "gemv_batch_f32, batch row {}", b);
        }
    }

    /// Several matrices that read one vector, multiplied in one call (in one fork/join when one
    /// of them is too small to split on its own), give every output the digits of its own GEMV,
    /// for every format, ISA and value type.
    #[test]
    fn gemv_many_has_the_gemv_digits(
        shapes in prop::collection::vec((1usize..300, 0usize..5, 0.0f64..1.0), 1..4),
        big in any::<bool>(),
        cols in prop_oneof![1usize..200, Just(576usize)],
        dtype in 0usize..3,
        seed in any::<u64>(),
    ) {
        let cols = cols.div_ceil(4) * 4; // N:M 2:4 needs whole groups
        let mut packed = Vec::new();
        for (i, &(rows, format, sparsity)) in shapes.iter().enumerate() {
            let s = seed ^ (i as u64 + 3);
            let (w, format) = if format == 4 {
                (random_nm(rows, cols, 2, 4, s), Format::Nm)
            } else {
                (random_dense(rows, cols, sparsity, s), format_of(format))
            };
            packed.push(PackedMatrix::encode(&w, rows, cols, Some(format), dtype_of(dtype)).unwrap());
        }
        // A dense f32 matrix of at least 256 KiB: the products no longer fit one thread.
        let big_rows = if big { 64 * 1024 / cols + 1 } else { 0 };
        let wf = rounded(&random_dense(big_rows, cols, 0.0, seed ^ 7), ValueDtype::F32);
        let x = random_dense(1, cols, 0.0, seed ^ 1);
        let y0: Vec<Vec<f32>> = (0..=packed.len())
            .map(|i| {
                let rows = if i == 0 { big_rows } else { packed[i - 1].shape().0 };
                random_dense(1, rows, 0.0, seed ^ (100 + i as u64))
            })
            .collect();
        for isa in Isa::available() {
            let mut ys = y0.clone();
            let (first, rest) = ys.split_at_mut(1);
            let mut products = vec![(kernels::GemvWeight::DenseF32(&wf), first[0].as_mut_slice())];
            for (m, y) in packed.iter().zip(rest.iter_mut()) {
                products.push((kernels::GemvWeight::Packed(m), y.as_mut_slice()));
            }
            kernels::gemv_many_isa(isa, &x, products);
            let mut want = y0[0].clone();
            kernels::gemv_f32_isa(isa, &wf, big_rows, cols, &x, &mut want);
            let same = ys[0].iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
            prop_assert!(same, "dense f32 on {}", isa);
            for (i, m) in packed.iter().enumerate() {
                let mut want = y0[i + 1].clone();
                kernels::gemv_isa(isa, m, &x, &mut want);
                let same = ys[i + 1].iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                prop_assert!(same, "matrix {} ({:?}) on {}", i, m.format(), isa);
            }
        }
    }

    /// Automatic format choice keeps the products right.
    #[test]
    fn chosen_format_products(
        rows in 1usize..40,
        cols in 1usize..150,
        sparsity in 0.0f64..1.0,
        dtype in 0usize..3,
        batch in 1usize..20,
        seed in any::<u64>(),
    ) {
        let w = random_dense(rows, cols, sparsity, seed);
        let m = PackedMatrix::encode(&w, rows, cols, None, dtype_of(dtype)).unwrap();
        check_matrix(&m, &w, batch, seed)?;
    }

    /// N:M patterns: explicit 2:4, 4:8, 1:4, 2:8 and detection.
    #[test]
    fn nm_round_trip_and_products(
        rows in 1usize..24,
        groups in 1usize..40,
        pattern in 0usize..4,
        dtype in 0usize..3,
        batch in 1usize..70,
        seed in any::<u64>(),
    ) {
        let (keep, m) = [(2, 4), (4, 8), (1, 4), (2, 8)][pattern];
        let cols = groups * m;
        let w = random_nm(rows, cols, keep, m, seed);
        let nm = NmMatrix::from_dense(&w, rows, cols, keep, m, dtype_of(dtype)).unwrap();
        prop_assert_eq!((nm.keep(), nm.m()), (keep, m));
        check_matrix(&PackedMatrix::Nm(nm), &w, batch, seed)?;
        // Detection finds a pattern at least as tight.
        let auto = PackedMatrix::encode(&w, rows, cols, Some(Format::Nm), dtype_of(dtype)).unwrap();
        check_matrix(&auto, &w, batch.min(3), seed)?;
    }

    /// Corrupted CSR parts are rejected.
    #[test]
    fn csr_from_parts_rejects_corruption(
        rows in 1usize..20,
        cols in 1usize..80,
        sparsity in 0.0f64..0.9,
        kind in 0usize..6,
        pick in any::<u64>(),
        seed in any::<u64>(),
    ) {
        let w = random_dense(rows, cols, sparsity, seed);
        let c = Csr::from_dense(&w, rows, cols, ValueDtype::F32).unwrap();
        let mut row_ptr = c.row_ptr().to_vec();
        let mut idx: Vec<u32> = (0..c.nnz()).map(|i| c.col_idx().get(i) as u32).collect();
        let mut vals = c.values().to_f32();
        let nnz = c.nnz();
        match kind {
            0 if nnz > 0 => idx[pick as usize % nnz] = cols as u32 + (pick >> 40) as u32 % 7,
            1 if nnz > 0 => { vals.pop(); }
            2 => row_ptr.truncate(rows),
            3 => row_ptr[1 + pick as usize % rows] = nnz as u32 + 1 + (pick >> 40) as u32 % 5,
            4 => row_ptr[0] = 1,
            5 => { vals.push(1.0); idx.push(0); }
            _ => return Ok(()),
        }
        let r = Csr::from_parts(rows, cols, row_ptr, Indices::U32(idx), Values::F32(vals));
        prop_assert!(r.is_err());
    }

    /// Corrupted bitmask parts are rejected.
    #[test]
    fn bitmask_from_parts_rejects_corruption(
        rows in 1usize..20,
        cols in 1usize..150,
        sparsity in 0.0f64..0.9,
        kind in 0usize..4,
        seed in any::<u64>(),
    ) {
        let w = random_dense(rows, cols, sparsity, seed);
        let b = Bitmask::from_dense(&w, rows, cols, ValueDtype::Bf16).unwrap();
        let mut mask = b.mask().to_vec();
        let Values::Bf16(mut vals) = b.values().clone() else { unreachable!() };
        match kind {
            0 if !vals.is_empty() => { vals.pop(); }
            1 => vals.push(0x3f80),
            2 => { mask.pop(); }
            3 if cols % 64 != 0 => { let last = mask.len() - 1; mask[last] |= 1u64 << 63; }
            _ => return Ok(()),
        }
        prop_assert!(Bitmask::from_parts(rows, cols, mask, Values::Bf16(vals)).is_err());
    }

    /// Corrupted N:M parts are rejected.
    #[test]
    fn nm_from_parts_rejects_corruption(
        rows in 1usize..12,
        groups in 1usize..20,
        pattern in 0usize..3,
        kind in 0usize..4,
        pick in any::<u64>(),
        seed in any::<u64>(),
    ) {
        let (keep, m) = [(2, 4), (4, 8), (1, 4)][pattern];
        let cols = groups * m;
        let w = random_nm(rows, cols, keep, m, seed);
        let nm = NmMatrix::from_dense(&w, rows, cols, keep, m, ValueDtype::F32).unwrap();
        let mut vals = nm.values().to_f32();
        let mut idx = nm.indices().to_vec();
        match kind {
            0 => { vals.pop(); }
            1 => { idx.pop(); }
            // Two equal positions in a group are not strictly increasing.
            2 => {
                let bits = secateurs_sparse::nm::index_bits(m);
                let g = pick as usize % (rows * groups);
                if keep < 2 { return Ok(()); }
                let first = secateurs_sparse::nm::get_bits(&idx, g * keep * bits, bits);
                for b in 0..bits {
                    let pos = (g * keep + 1) * bits + b;
                    idx[pos / 8] &= !(1 << (pos % 8));
                    idx[pos / 8] |= (((first >> b) & 1) as u8) << (pos % 8);
                }
            }
            _ => { idx.push(0); }
        }
        prop_assert!(NmMatrix::from_parts(rows, cols, keep, m, Values::F32(vals), idx).is_err());
    }

    /// Corrupted COO parts are rejected.
    #[test]
    fn coo_from_parts_rejects_corruption(
        rows in 1usize..20,
        cols in 1usize..60,
        kind in 0usize..4,
        pick in any::<u64>(),
        seed in any::<u64>(),
    ) {
        let w = random_dense(rows, cols, 0.5, seed);
        let c = Coo::from_dense(&w, rows, cols, ValueDtype::F16).unwrap();
        let nnz = c.nnz();
        if nnz < 2 { return Ok(()); }
        let mut ri: Vec<u32> = (0..nnz).map(|i| c.row_idx().get(i) as u32).collect();
        let mut ci: Vec<u32> = (0..nnz).map(|i| c.col_idx().get(i) as u32).collect();
        let Values::F16(mut vals) = c.values().clone() else { unreachable!() };
        let i = pick as usize % nnz;
        match kind {
            0 => ri[i] = rows as u32,
            1 => ci[i] = cols as u32 + 3,
            2 => ri.swap(0, nnz - 1),
            _ => { vals.truncate(nnz - 1); }
        }
        if kind == 2 && ri[0] == ri[nnz - 1] { ci.swap(0, nnz - 1); }
        let r = Coo::from_parts(rows, cols, Indices::U32(ri), Indices::U32(ci), Values::F16(vals));
        prop_assert!(r.is_err());
    }
}

/// Matrices large enough for the parallel paths (row blocks over threads, SpMM tasks over tiles
/// and row blocks), every format and value type, every ISA level.
#[test]
fn large_matrices_parallel_paths() {
    let (rows, cols) = (517, 1000);
    for (i, &sparsity) in [0.0, 0.5, 0.93].iter().enumerate() {
        let w = random_dense(rows, cols, sparsity, 7 + i as u64);
        for dtype in [ValueDtype::F32, ValueDtype::Bf16, ValueDtype::F16] {
            for format in [Format::Dense, Format::Coo, Format::Csr, Format::Bitmask] {
                let m = PackedMatrix::encode(&w, rows, cols, Some(format), dtype).unwrap();
                check_matrix(&m, &w, 130, 11).unwrap();
            }
        }
    }
    let w = random_nm(300, 1024, 2, 4, 3);
    let m = PackedMatrix::encode(&w, 300, 1024, Some(Format::Nm), ValueDtype::Bf16).unwrap();
    check_matrix(&m, &w, 70, 5).unwrap();
}

/// The dense f32 entry point on every level, including shapes that are not multiples of 4 rows.
#[test]
fn gemv_f32_every_isa() {
    for (rows, cols) in [(1, 1), (3, 17), (4, 64), (7, 100), (33, 129), (600, 700)] {
        let w = random_dense(rows, cols, 0.0, (rows * cols) as u64);
        let x = random_dense(1, cols, 0.0, 99);
        let y0 = random_dense(1, rows, 0.0, 98);
        let (want, tol) = dense_gemv(&w, rows, cols, &x, &y0);
        let mut y = y0.clone();
        kernels::gemv_f32(&w, rows, cols, &x, &mut y);
        check_close(&y, &want, &tol, "gemv_f32").unwrap();
        for isa in Isa::available() {
            let mut y = y0.clone();
            kernels::gemv_f32_isa(isa, &w, rows, cols, &x, &mut y);
            check_close(&y, &want, &tol, &format!("gemv_f32 on {isa}")).unwrap();
        }
    }
}

/// The portable fallback is always available and is what the property tests run besides the
/// detected level; the detected level is the best this CPU has.
#[test]
fn scalar_fallback_is_exercised() {
    let levels = Isa::available();
    assert_eq!(levels[0], Isa::Scalar);
    assert!(Isa::Scalar.supported());
    assert!(Isa::active() <= Isa::detect());
    assert_eq!(*levels.last().unwrap(), Isa::detect());
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw") {
        assert_eq!(Isa::detect(), Isa::Avx512);
    }
    // A product on the scalar level gives the reference result.
    let w = random_dense(5, 37, 0.5, 1);
    let m = PackedMatrix::encode(&w, 5, 37, Some(Format::Bitmask), ValueDtype::Bf16).unwrap();
    let x = random_dense(1, 37, 0.0, 2);
    let mut a = vec![0f32; 5];
    let mut b = vec![0f32; 5];
    kernels::gemv_isa(Isa::Scalar, &m, &x, &mut a);
    reference::gemv(&m, &x, &mut b);
    for (p, q) in a.iter().zip(&b) {
        assert!((p - q).abs() <= 1e-5 * (1.0 + q.abs()));
    }
}

/// Empty shapes and all-zero matrices.
#[test]
fn degenerate_shapes() {
    for (rows, cols) in [(0, 5), (5, 0), (0, 0), (1, 1)] {
        let w = vec![0f32; rows * cols];
        for format in [Format::Dense, Format::Coo, Format::Csr, Format::Bitmask] {
            let m = PackedMatrix::encode(&w, rows, cols, Some(format), ValueDtype::F32).unwrap();
            let x = vec![1f32; 3 * cols];
            let mut y = vec![2f32; 3 * rows];
            m.matmul(&x, 3, &mut y);
            assert!(y.iter().all(|&v| v == 2.0));
            m.gemv(&x[..cols], &mut y[..rows]);
            assert!(y.iter().all(|&v| v == 2.0));
        }
    }
}

/// The 2:4 fast path (columns a multiple of 32) and its fallback (other multiples of 4), every
/// value type and ISA level, against the dense product.
#[test]
fn nm24_fast_path_and_fallback() {
    for (rows, cols) in [(1, 32), (5, 64), (7, 576), (3, 36), (9, 100), (2, 4)] {
        for dtype in [ValueDtype::F32, ValueDtype::Bf16, ValueDtype::F16] {
            let w = random_nm(rows, cols, 2, 4, (rows * cols) as u64);
            let m = PackedMatrix::Nm(NmMatrix::from_dense(&w, rows, cols, 2, 4, dtype).unwrap());
            check_matrix(&m, &w, 3, 17).unwrap();
        }
    }
}

/// The default model's row widths (576 and 1536 columns, nine and 24 words) and the narrowest
/// that the multi-row f32 loop takes (384, six words), with many rows, so that most of each
/// row block runs through that loop and its last rows through the one-row path: bitmask and
/// 4:8 results equal the dense GEMV bit for bit at every ISA level.
#[test]
fn multi_row_bitmask_loop_has_the_dense_digits() {
    for (rows, cols) in [(300, 576), (97, 1536), (41, 384), (64, 320)] {
        for (i, sparsity) in [0.5, 0.7, 0.9].into_iter().enumerate() {
            let seed = (rows * cols + i) as u64;
            let x = random_dense(1, cols, 0.0, seed ^ 1);
            let y0 = random_dense(1, rows, 0.0, seed ^ 2);
            let dense_w = random_dense(rows, cols, sparsity, seed);
            let nm_w = random_nm(rows, cols, 4, 8, seed);
            for (w, format) in [(&dense_w, Format::Bitmask), (&nm_w, Format::Nm)] {
                let sparse =
                    PackedMatrix::encode(w, rows, cols, Some(format), ValueDtype::F32).unwrap();
                let dense =
                    PackedMatrix::encode(w, rows, cols, Some(Format::Dense), ValueDtype::F32)
                        .unwrap();
                for isa in Isa::available() {
                    let (mut ys, mut yd) = (y0.clone(), y0.clone());
                    kernels::gemv_isa(isa, &sparse, &x, &mut ys);
                    kernels::gemv_isa(isa, &dense, &x, &mut yd);
                    let same = ys.iter().zip(&yd).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{format} {rows}x{cols} at {sparsity} on {isa}");
                }
            }
        }
    }
}
