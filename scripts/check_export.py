#!/usr/bin/env python3
"""Check that a directory written by `secateurs prune` loads in Hugging Face transformers and gives
the same logits as secateurs' own forward pass of it.

Needs: python3 with torch, transformers, numpy (scripts/requirements.txt), and a built secateurs.

    python3 scripts/check_export.py OUT_DIR [--secateurs target/release/secateurs] [--tol 1e-4]

Prints the maximum absolute logit difference and exits non-zero when it exceeds --tol.
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM

PROMPT = "The capital of France is Paris. The capital of Italy is Rome, and the capital of Spain is"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--secateurs", default="target/release/secateurs")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "logits.f32"
        res = subprocess.run([args.secateurs, "logits", args.model_dir, "--prompt", PROMPT, "--out", str(out)],
                             check=True, capture_output=True, text=True)
        meta = json.loads(res.stdout.strip().splitlines()[-1])
        ours = np.fromfile(out, dtype="<f4").reshape(meta["rows"], meta["vocab"])
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, torch_dtype=torch.float32).eval()
    with torch.inference_mode():
        ref = model(torch.tensor([meta["token_ids"]])).logits[0].numpy()
    diff = float(np.abs(ref - ours).max())
    zeros = sum(int((p == 0).sum()) for n, p in model.named_parameters() if "layers" in n and p.dim() == 2)
    total = sum(p.numel() for n, p in model.named_parameters() if "layers" in n and p.dim() == 2)
    print(json.dumps({"model": args.model_dir, "tokens": meta["rows"], "max_abs_logit_diff": diff,
                      "max_abs_logit": float(np.abs(ref).max()),
                      "decoder_linear_sparsity_seen_by_transformers": zeros / total}))
    sys.exit(0 if diff <= args.tol else 1)


if __name__ == "__main__":
    main()
