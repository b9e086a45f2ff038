#!/usr/bin/env python3
"""Reference perplexity with Hugging Face transformers + PyTorch, for comparison with secateurs.

Needs: python3 with torch, transformers (>= 4.45), gguf and numpy (scripts/requirements.txt).

    python3 scripts/torch_perplexity.py --model MODEL.gguf --text eval.txt --seqlen 512 \
        --windows 16 --threads 2 [--json]

The committed reference value crates/cli/tests/fixtures/reference_perplexity.json was made with

    python3 scripts/torch_perplexity.py --model $SECATEURS_CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf \
        --text $SECATEURS_CACHE/text/eval.txt --seqlen 512 --windows 16 --json

MODEL is a .gguf file (loaded with `gguf_file=`, dequantized to float32) or a Hugging Face
directory. The protocol is the one secateurs implements (and SparseGPT/Wanda's evaluation code):
tokenize the whole text, cut floor(n / seqlen) non-overlapping windows, score every next-token
prediction inside each window, perplexity = exp(mean NLL). Timing covers the forward passes only,
like `secateurs perplexity`'s throughput.
"""
import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def load(model: str):
    p = Path(model)
    if p.suffix == ".gguf":
        kw = dict(gguf_file=p.name)
        src = str(p.parent)
    else:
        kw = {}
        src = str(p)
    tok = AutoTokenizer.from_pretrained(src, **kw)
    lm = AutoModelForCausalLM.from_pretrained(src, torch_dtype=torch.float32, **kw).eval()
    return tok, lm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--seqlen", type=int, default=512)
    ap.add_argument("--windows", type=int, default=None, help="evaluate only the first N windows")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    tok, lm = load(args.model)
    raw = Path(args.text).read_bytes()
    text = raw.decode("utf-8")
    ids = tok(text, return_tensors="pt", add_special_tokens=False).input_ids[0]
    n = ids.numel() // args.seqlen
    if args.windows is not None:
        n = min(n, args.windows)
    if n == 0:
        sys.exit(f"text has {ids.numel()} tokens, fewer than one window of {args.seqlen}")
    nll, count = 0.0, 0
    with torch.inference_mode():
        lm(ids[: args.seqlen].unsqueeze(0))  # warm-up, not timed (as secateurs' pool is warm)
        t0 = time.perf_counter()
        for w in range(n):
            x = ids[w * args.seqlen:(w + 1) * args.seqlen].unsqueeze(0)
            logits = lm(x).logits[0, :-1].double()
            target = x[0, 1:]
            nll += torch.nn.functional.cross_entropy(logits, target, reduction="sum").item()
            count += target.numel()
        secs = time.perf_counter() - t0
    out = {
        "perplexity": math.exp(nll / count),
        "mean_nll": nll / count,
        "windows": n,
        "seqlen": args.seqlen,
        "predictions": count,
        "text_tokens": ids.numel(),
        "seconds": secs,
        "tokens_per_second": n * args.seqlen / secs,
        "threads": torch.get_num_threads(),
        "text_sha256": hashlib.sha256(raw).hexdigest(),
        "model": Path(args.model).name,
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
    }
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:>18}: {v}")


if __name__ == "__main__":
    main()
