#!/usr/bin/env python3
"""Reference one-shot pruning in PyTorch, for timing secateurs against and for end-to-end golden
checks: the sequential layer-by-layer scheme of Wanda (Sun et al. 2023) and SparseGPT (Frantar &
Alistarh 2023), written from the papers' algorithms the way their public code runs them
(locuslab/wanda lib/prune.py, IST-DASLab/sparsegpt sparsegpt.py): hooks on every linear layer
of a decoder layer, one forward pass over the calibration sequences to gather statistics,
pruning, and a second forward pass with the pruned weights to feed the next layer.

Needs: python3 with torch, transformers, gguf, accelerate (scripts/requirements.txt).

    python3 scripts/torch_prune.py --model MODEL(.gguf|dir) --calibration windows.json \
        --method wanda|sparsegpt|magnitude [--sparsity 0.5 | --pattern 2:4] [--threads 2] \
        [--save OUT_DIR] [--json]

windows.json is a list of token-id lists (what `secateurs prune --save-calibration` writes), so
both implementations see exactly the same calibration tokens. N:M means N zeros in every M
consecutive weights of a row. Prints phase times (forward, statistics, solve) as JSON.
"""
import argparse
import json
import math
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

KINDS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
         "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def load(model: str):
    p = Path(model)
    if p.suffix == ".gguf":
        return AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name, torch_dtype=torch.float32)
    return AutoModelForCausalLM.from_pretrained(str(p), torch_dtype=torch.float32)


class Stats:
    """Per-linear statistics: Wanda's squared column norms (running mean over sequences) or
    SparseGPT's Hessian 2/n XᵀX (running mean, float32 as the reference code keeps it)."""

    def __init__(self, method: str, cols: int):
        self.method, self.n = method, 0
        self.scaler = torch.zeros(cols, dtype=torch.float32)
        self.H = torch.zeros(cols, cols, dtype=torch.float32) if method == "sparsegpt" else None

    def add(self, x: torch.Tensor):  # x (tokens, cols)
        t = 1
        x = x.float()
        if self.method == "wanda":
            self.scaler *= self.n / (self.n + t)
            self.n += t
            self.scaler += torch.norm(x, p=2, dim=0) ** 2 / self.n
        elif self.method == "sparsegpt":
            self.H *= self.n / (self.n + t)
            self.n += t
            x = math.sqrt(2 / self.n) * x
            self.H += x.t() @ x


def nm_mask(score: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """True where pruned: the n smallest scores of every m consecutive columns."""
    rows, cols = score.shape
    g = score.reshape(rows, cols // m, m)
    idx = torch.topk(g, n, dim=-1, largest=False)[1]
    mask = torch.zeros_like(g, dtype=torch.bool).scatter_(-1, idx, True)
    return mask.reshape(rows, cols)


def prune_magnitude(W, ratio, nm):
    s = W.abs()
    if nm:
        return nm_mask(s, *nm)
    k = int(W.numel() * ratio)
    thresh = torch.sort(s.flatten())[0][k]
    return s <= thresh


def prune_wanda(W, stats, ratio, nm):
    s = W.abs() * torch.sqrt(stats.scaler.reshape(1, -1))
    if nm:
        return nm_mask(s, *nm)
    order = torch.sort(s, dim=-1, stable=True)[1]
    mask = torch.zeros_like(s, dtype=torch.bool)
    mask.scatter_(1, order[:, : int(s.shape[1] * ratio)], True)
    return mask


def prune_sparsegpt(W, stats, ratio, nm, blocksize=128, percdamp=0.01):
    W = W.clone().float()
    H = stats.H.clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    damp = percdamp * torch.mean(torch.diag(H))
    H += damp * torch.eye(H.shape[0])
    L = torch.linalg.cholesky(H)
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(L), upper=True)
    rows, cols = W.shape
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        E1 = torch.zeros_like(W1)
        H1 = Hinv[i1:i2, i1:i2]
        if nm is None:
            score = W1 ** 2 / torch.diag(H1).reshape(1, -1) ** 2
            thresh = torch.sort(score.flatten())[0][int(score.numel() * ratio)]
            mask1 = score <= thresh
        else:
            mask1 = torch.zeros_like(W1, dtype=torch.bool)
        for i in range(i2 - i1):
            w = W1[:, i]
            d = H1[i, i]
            if nm is not None and i % nm[1] == 0:
                score = W1[:, i:i + nm[1]] ** 2 / torch.diag(H1)[i:i + nm[1]].reshape(1, -1) ** 2
                mask1[:, i:i + nm[1]] = nm_mask(score, *nm)
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err = (w - q) / d
            W1[:, i:] -= err.unsqueeze(1) @ H1[i, i:].unsqueeze(0)
            E1[:, i] = err
        W[:, i1:i2] = Q1
        W[:, i2:] -= E1 @ Hinv[i1:i2, i2:]
    return W


def run_layer(layer, x, pos):
    out = layer(x, position_embeddings=pos, attention_mask=None)
    return out[0] if isinstance(out, tuple) else out


def prune_model(model, samples: torch.Tensor, method: str, ratio: float, nm):
    """Prunes `model` in place with the sequential scheme; returns phase times in seconds."""
    n, seqlen = samples.shape
    times = {"forward": 0.0, "statistics": 0.0, "solve": 0.0}
    with torch.inference_mode():
        inps = model.model.embed_tokens(samples)  # (n, seqlen, hidden)
        position_ids = torch.arange(seqlen).unsqueeze(0)
        pos = model.model.rotary_emb(inps[:1], position_ids)
        for layer in model.model.layers:
            mods = {k: layer.get_submodule(k) for k in KINDS}
            if method != "magnitude":
                stats = {k: Stats(method, m.in_features) for k, m in mods.items()}
                hook_time = [0.0]

                def make_hook(k):
                    def hook(_m, inp, _out):
                        t = time.perf_counter()
                        stats[k].add(inp[0].reshape(-1, inp[0].shape[-1]))
                        hook_time[0] += time.perf_counter() - t
                    return hook

                handles = [m.register_forward_hook(make_hook(k)) for k, m in mods.items()]
                t = time.perf_counter()
                for j in range(n):
                    run_layer(layer, inps[j:j + 1], pos)
                total = time.perf_counter() - t
                for h in handles:
                    h.remove()
                times["statistics"] += hook_time[0]
                times["forward"] += total - hook_time[0]
            t = time.perf_counter()
            for k, m in mods.items():
                W = m.weight.data
                if method == "magnitude":
                    W[prune_magnitude(W, ratio, nm)] = 0
                elif method == "wanda":
                    W[prune_wanda(W, stats[k], ratio, nm)] = 0
                else:
                    m.weight.data = prune_sparsegpt(W, stats[k], ratio, nm).to(W.dtype)
            times["solve"] += time.perf_counter() - t
            t = time.perf_counter()
            outs = torch.cat([run_layer(layer, inps[j:j + 1], pos) for j in range(n)])
            times["forward"] += time.perf_counter() - t
            inps = outs
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--calibration", required=True)
    ap.add_argument("--method", choices=["magnitude", "wanda", "sparsegpt"], default="wanda")
    ap.add_argument("--sparsity", type=float, default=0.5)
    ap.add_argument("--pattern", default=None, help="N:M, N zeros in every M weights")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save", default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    nm = tuple(int(v) for v in args.pattern.split(":")) if args.pattern else None

    t0 = time.perf_counter()
    model = load(args.model).eval()
    load_s = time.perf_counter() - t0
    samples = torch.tensor(json.loads(Path(args.calibration).read_text()), dtype=torch.long)
    n, seqlen = samples.shape
    t_all = time.perf_counter()
    times = prune_model(model, samples, args.method, args.sparsity, nm)
    wall = time.perf_counter() - t_all
    zeros = sum(int((layer.get_submodule(k).weight == 0).sum()) for layer in model.model.layers for k in KINDS)
    total = sum(layer.get_submodule(k).weight.numel() for layer in model.model.layers for k in KINDS)
    if args.save:
        model.save_pretrained(args.save, safe_serialization=True)
    out = {"method": args.method, "pattern": args.pattern or args.sparsity, "nsamples": n, "seqlen": seqlen,
           "threads": torch.get_num_threads(), "load_seconds": load_s, "prune_seconds": wall,
           "phases": times, "sparsity": zeros / total, "torch": torch.__version__}
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
