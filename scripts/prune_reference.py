#!/usr/bin/env python3
"""Golden references for crates/prune/tests/methods_golden.rs.

Needs: python3 with torch (>= 2.0) and numpy. Run from the repository root:

    python3 scripts/prune_reference.py

Re-implements, in torch float64, the three per-matrix pruning methods as the papers and the
authors' code define them:

* magnitude (Sun et al. 2023, baseline of locuslab/wanda): score |W|; unstructured uses one
  threshold per matrix, the sorted score at 0-based index int(numel * ratio), and masks every
  score <= it; N:M masks the N smallest scores of every M consecutive inputs of a row.
* Wanda (Sun et al. 2023, eq. 1): score |W_ij| * ||X_j||_2 with the running mean of ||X_j||^2 over
  batches, as the authors keep it; unstructured masks the int(cols * ratio) smallest scores of
  each row (stable sort); N:M as above.
* SparseGPT (Frantar & Alistarh 2023, Algorithm 1): H = running mean of 2 X^T X, dead inputs,
  relative damping 0.01, Hinv = upper Cholesky factor of (H + lambda I)^-1, blocks of B columns
  with per-block threshold (unstructured) or per-group N smallest of w^2 / Hinv_ii^2 (N:M),
  column-wise OBS updates and lazy block updates.

Writes little-endian binaries plus index.json into crates/prune/tests/fixtures/methods/.
"""

import json
import os

import numpy as np
import torch

OUT = os.path.join("crates", "prune", "tests", "fixtures", "methods")
SEED = 20240611
BATCHES = [128, 128, 44]  # tokens per observe() call; 300 in all
PATTERNS = ["0.5", "0.3", "2:4", "4:8"]


def parse(pattern):
    """Returns (ratio, n, m); n = m = 0 for unstructured."""
    if ":" in pattern:
        n, m = pattern.split(":")
        return 0.0, int(n), int(m)
    return float(pattern), 0, 0


def smallest_n_per_group(score, n, m):
    """Boolean mask of the n smallest scores in each group of m consecutive columns of each row."""
    rows, cols = score.shape
    mask = torch.zeros_like(score, dtype=torch.bool)
    for start in range(0, cols, m):
        group = score[:, start:start + m]
        idx = torch.sort(group, dim=1, stable=True).indices[:, :n]
        mask[:, start:start + m].scatter_(1, idx, True)
    return mask


def magnitude_mask(w, pattern):
    ratio, n, m = parse(pattern)
    score = w.abs()
    if n:
        return smallest_n_per_group(score, n, m)
    threshold = torch.sort(score.flatten()).values[int(score.numel() * ratio)]
    return score <= threshold


def wanda_mask(w, x, pattern):
    ratio, n, m = parse(pattern)
    # Running mean of the squared column norms over batches (the scale does not matter).
    mean_sq = torch.zeros(w.shape[1], dtype=torch.float64)
    seen = 0
    start = 0
    for t in BATCHES:
        xb = x[start:start + t]
        start += t
        mean_sq *= seen / (seen + t)
        seen += t
        mean_sq += (xb * xb).sum(dim=0) / seen
    score = w.abs() * mean_sq.sqrt().reshape(1, -1)
    if n:
        return smallest_n_per_group(score, n, m)
    keep_out = int(w.shape[1] * ratio)
    mask = torch.zeros_like(score, dtype=torch.bool)
    idx = torch.sort(score, dim=1, stable=True).indices[:, :keep_out]
    mask.scatter_(1, idx, True)
    return mask


def sparsegpt(w, x, pattern, blocksize, damp=0.01):
    ratio, n, m = parse(pattern)
    rows, cols = w.shape
    h = torch.zeros(cols, cols, dtype=torch.float64)
    seen = 0
    start = 0
    for t in BATCHES:
        xb = x[start:start + t]
        start += t
        h *= seen / (seen + t)
        seen += t
        xs = xb * (2.0 / seen) ** 0.5
        h += xs.T @ xs
    w = w.clone()
    dead = torch.diag(h) == 0
    idx = torch.nonzero(dead).flatten()
    h[idx, idx] = 1.0
    w[:, dead] = 0.0
    h += torch.eye(cols, dtype=torch.float64) * (damp * torch.diag(h).mean())
    inv = torch.cholesky_inverse(torch.linalg.cholesky(h))
    hinv = torch.linalg.cholesky(inv, upper=True)
    diag = torch.diag(hinv)

    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        blk = w[:, i1:i2].clone()
        errs = torch.zeros_like(blk)
        d_blk = diag[i1:i2]
        if n:
            mask = torch.zeros_like(blk, dtype=torch.bool)
        else:
            score = blk ** 2 / d_blk.reshape(1, -1) ** 2
            threshold = torch.sort(score.flatten()).values[int(score.numel() * ratio)]
            mask = score <= threshold
        for i in range(i2 - i1):
            if n and i % m == 0:
                score = blk[:, i:i + m] ** 2 / d_blk[i:i + m].reshape(1, -1) ** 2
                mask[:, i:i + m] |= smallest_n_per_group(score, n, m)
            col = blk[:, i].clone()
            q = torch.where(mask[:, i], torch.zeros_like(col), col)
            e = (col - q) / d_blk[i]
            blk[:, i:] -= e.reshape(-1, 1) @ hinv[i1 + i, i1:i2][i:].reshape(1, -1)
            blk[:, i] = q
            errs[:, i] = e
        w[:, i1:i2] = blk
        w[:, i2:] -= errs @ hinv[i1:i2, i2:]
    return w


def save(name, array, dtype):
    path = os.path.join(OUT, name)
    np.ascontiguousarray(array, dtype=dtype).astype(dtype.newbyteorder("<")).tofile(path)
    return name


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(SEED)
    cases = []
    specs = [
        # name, rows, cols, dead input columns, SparseGPT block size
        ("a", 24, 64, [5, 40], 128),
        ("b", 40, 128, [3, 77, 100], 32),
    ]
    for name, rows, cols, dead, blocksize in specs:
        # f32-representable values, so Rust sees exactly the same inputs.
        w = rng.standard_normal((rows, cols)).astype(np.float32)
        scale = rng.uniform(0.2, 3.0, size=cols).astype(np.float32)  # uneven column norms
        x = (rng.standard_normal((sum(BATCHES), cols)) * scale).astype(np.float32)
        x[:, dead] = 0.0
        wt = torch.from_numpy(w.astype(np.float64))
        xt = torch.from_numpy(x.astype(np.float64))
        case = {
            "name": name,
            "rows": rows,
            "cols": cols,
            "tokens": sum(BATCHES),
            "batches": BATCHES,
            "dead": dead,
            "blocksize": blocksize,
            "damp": 0.01,
            "w": save(f"{name}_w.f32", w, np.dtype(np.float32)),
            "x": save(f"{name}_x.f32", x, np.dtype(np.float32)),
            "results": [],
        }
        for pattern in PATTERNS:
            tag = pattern.replace(":", "of").replace(".", "p")
            mag = magnitude_mask(wt, pattern).numpy()
            wan = wanda_mask(wt, xt, pattern).numpy()
            sgpt = sparsegpt(wt, xt, pattern, blocksize).numpy()
            case["results"].append({
                "pattern": pattern,
                "magnitude_mask": save(f"{name}_{tag}_magnitude.u8", mag, np.dtype(np.uint8)),
                "wanda_mask": save(f"{name}_{tag}_wanda.u8", wan, np.dtype(np.uint8)),
                "sparsegpt_w": save(f"{name}_{tag}_sparsegpt.f64", sgpt, np.dtype(np.float64)),
                "magnitude_zeros": int(mag.sum()),
                "wanda_zeros": int(wan.sum()),
                "sparsegpt_zeros": int((sgpt == 0).sum()),
            })
        cases.append(case)
    index = {
        "generator": "scripts/prune_reference.py",
        "seed": SEED,
        "torch": torch.__version__,
        "layout": "row-major little-endian; w (rows, cols) f32; x (tokens, cols) f32; masks u8 (1 = pruned); sparsegpt_w f64",
        "cases": cases,
    }
    with open(os.path.join(OUT, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
