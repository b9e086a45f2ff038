#!/usr/bin/env python3
"""Make the end-to-end pruning golden fixture: the tiny-llama test model pruned by the PyTorch
reference (scripts/torch_prune.py: magnitude, Wanda, SparseGPT × 0.5, 2:4, 4:8) on fixed
calibration windows. Needs torch + transformers (scripts/requirements.txt). From the repo root:

    python3 scripts/make_prune_fixtures.py crates/prune/tests/fixtures/e2e

Writes windows.json (8 windows × 32 tokens of the tiny vocabulary, seed 0), masks.json (for
magnitude and Wanda: per matrix, the pruned positions as a hex bitmap, bit i of the flat
row-major index) and sparsegpt.safetensors (SparseGPT's pruned weights, float32).
"""
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

sys.path.insert(0, str(Path(__file__).parent))
from torch_prune import KINDS, prune_model  # noqa: E402

TINY = Path(__file__).parent.parent / "crates/model/tests/fixtures/tiny-llama"
CASES = [("0.5", 0.5, None), ("2:4", 0.0, (2, 4)), ("4:8", 0.0, (4, 8))]


def bitmap(mask: torch.Tensor) -> str:
    bits = mask.flatten().tolist()
    out = bytearray((len(bits) + 7) // 8)
    for i, b in enumerate(bits):
        if b:
            out[i // 8] |= 1 << (i % 8)
    return out.hex()


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "crates/prune/tests/fixtures/e2e")
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    windows = torch.randint(3, 128, (8, 32), generator=g)
    (out / "windows.json").write_text(json.dumps(windows.tolist()))
    masks, sgpt = {}, {}
    for method in ["magnitude", "wanda", "sparsegpt"]:
        for label, ratio, nm in CASES:
            model = AutoModelForCausalLM.from_pretrained(TINY, torch_dtype=torch.float32).eval()
            prune_model(model, windows, method, ratio, nm)
            for i, layer in enumerate(model.model.layers):
                for k in KINDS:
                    name = f"model.layers.{i}.{k}.weight"
                    w = layer.get_submodule(k).weight.data
                    if method == "sparsegpt":
                        sgpt[f"{label}/{name}"] = w.clone().contiguous()
                    else:
                        masks[f"{method}/{label}/{name}"] = bitmap(w == 0)
    (out / "masks.json").write_text(json.dumps(masks))
    save_file(sgpt, str(out / "sparsegpt.safetensors"))
    print(f"wrote {out}: {len(masks)} masks, {len(sgpt)} SparseGPT matrices")


if __name__ == "__main__":
    main()
