#!/usr/bin/env python3
"""Seed 003's sparse-vs-dense experiment in scipy/numpy, the reference side of
`secateurs bench kernels`.

Generates the very same random n x n float32 matrices as secateurs (a SplitMix64 stream indexed by
element, see `matrix` below and crates/cli/src/cmd/bench_kernels.rs), stores them as
scipy.sparse CSR and as a numpy dense array, and times

  - SpMV: A @ x  (x: n float32),        CSR and dense (numpy/BLAS)
  - SpMM: A @ X  (X: n x 64 float32, C-contiguous), CSR and dense

best of several runs. Prints one JSON object on the last line of stdout, with nnz and a float64
checksum of every matrix so the caller can verify both sides multiplied identical matrices.

Usage: scipy_kernels.py --sizes 1000,4096 --sparsities 0.5,0.7,0.9,0.95 --nm24 4096
                        --seed 3 --columns 64 --threads 2 --min-time 0.3
"""

import argparse
import json
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="1000,4096")
    p.add_argument("--sparsities", default="0.5,0.7,0.9,0.95")
    p.add_argument("--nm24", default="4096", help="sizes that also get a 2:4 matrix ('' for none)")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--columns", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--min-time", type=float, default=0.3)
    return p.parse_args()


ARGS = parse_args()
# BLAS threads must be fixed before numpy is imported.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

try:
    import numpy as np
    import scipy
    import scipy.sparse as sp
except ImportError as e:  # the caller prints a note and shows its own side only
    print(json.dumps({"available": False, "error": str(e)}))
    sys.exit(0)

M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix(idx):
    """SplitMix64 of uint64 indices (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = idx + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def stream_base(seed, tag):
    """First index of the stream `tag` of `seed` (matches `stream_base` in bench_kernels.rs)."""
    return np.uint64((seed * 1_000_003 + tag) % (1 << 64)) << np.uint64(32)


def values(seed, tag, count):
    """`count` values in (-1, 1) and uniforms in [0, 1) of one stream."""
    idx = stream_base(seed, tag) + np.arange(count, dtype=np.uint64)
    z = splitmix(idx)
    u = (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    v = ((z & np.uint64(0xFFFFFF)).astype(np.float64) + 0.5) / float(1 << 23) - 1.0
    return v.astype(np.float32), u


PAIRS = np.array([(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)], dtype=np.int64)


def matrix(n, sparsity, nm24, seed):
    """The dense float32 n x n matrix of secateurs' `bench_matrix`."""
    tag = 1 + int(round(sparsity * 1000)) + (7919 if nm24 else 0) + n * 10_007
    v, u = values(seed, tag, n * n)
    if nm24:
        groups = n * n // 4
        gz = splitmix(stream_base(seed, tag + 1) + np.arange(groups, dtype=np.uint64))
        pair = PAIRS[(gz % np.uint64(6)).astype(np.int64)]
        keep = np.zeros((groups, 4), dtype=bool)
        rows = np.arange(groups)
        keep[rows, pair[:, 0]] = True
        keep[rows, pair[:, 1]] = True
        v = np.where(keep.reshape(-1), v, np.float32(0))
    else:
        v = np.where(u < sparsity, np.float32(0), v)
    return v.reshape(n, n)


def best_time(f, min_time):
    f()
    best = float("inf")
    start = time.perf_counter()
    runs = 0
    while runs < 3 or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
        runs += 1
    return best


def main():
    sizes = [int(s) for s in ARGS.sizes.split(",") if s]
    sparsities = [float(s) for s in ARGS.sparsities.split(",") if s]
    nm_sizes = {int(s) for s in ARGS.nm24.split(",") if s}
    results = []
    for n in sizes:
        xv, _ = values(ARGS.seed, 2_000_000 + n, n)
        xm, _ = values(ARGS.seed, 3_000_000 + n, n * ARGS.columns)
        X = np.ascontiguousarray(xm.reshape(n, ARGS.columns))
        cases = [(s, False) for s in sparsities] + ([(0.5, True)] if n in nm_sizes else [])
        dense_gemv = None
        dense_gemm = None
        for sparsity, nm24 in cases:
            d = matrix(n, sparsity, nm24, ARGS.seed)
            a = sp.csr_matrix(d)
            if dense_gemv is None:
                # numpy dense timings do not depend on the values: time them once per size.
                dense_gemv = best_time(lambda: d @ xv, ARGS.min_time)
                dense_gemm = best_time(lambda: d @ X, ARGS.min_time)
            results.append(
                {
                    "n": n,
                    "sparsity": sparsity,
                    "pattern": "2:4" if nm24 else "random",
                    "nnz": int(a.nnz),
                    "checksum": float(d.astype(np.float64).sum()),
                    "csr_spmv_s": best_time(lambda: a @ xv, ARGS.min_time),
                    "csr_spmm_s": best_time(lambda: a @ X, ARGS.min_time),
                    "dense_gemv_s": dense_gemv,
                    "dense_gemm_s": dense_gemm,
                }
            )
    print(
        json.dumps(
            {
                "available": True,
                "numpy": np.__version__,
                "scipy": scipy.__version__,
                "threads": ARGS.threads,
                "columns": ARGS.columns,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
