#!/usr/bin/env python3
"""Reference greedy decoding speed with Hugging Face transformers + PyTorch `generate`, for
`secateurs bench decode`.

Needs: python3 with torch, transformers (>= 4.45), gguf and numpy (scripts/requirements.txt).

    python3 scripts/torch_decode.py --model MODEL.gguf --prompt 'The capital of France is' \
        --new-tokens 128 --threads 2 [--json]

MODEL is a .gguf file (loaded with `gguf_file=`, dequantized to float32) or a Hugging Face
directory. Batch 1, float32, KV cache on (transformers' default), greedy. Decode speed is
measured as secateurs measures it: (N - 1) new tokens divided by the time between the first new
token and the last, here as the difference of two timed `generate` calls (N tokens and 1 token,
each the best of `--repeat` runs), so prompt prefill is excluded on both sides.
"""
import argparse
import json
import time

import torch

from torch_perplexity import load  # same directory: one loader for GGUF files and HF directories


def timed_generate(lm, ids, n: int, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = lm.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
            num_beams=1,
            pad_token_id=lm.config.eos_token_id,
        )
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt", default="The capital of France is")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    tok, lm = load(args.model)
    ids = tok(args.prompt, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.inference_mode():
        timed_generate(lm, ids, 8, 1)  # warm-up
        t1, _ = timed_generate(lm, ids, 1, args.repeat)
        tn, out = timed_generate(lm, ids, args.new_tokens, args.repeat)
    decode = max(tn - t1, 1e-9)
    new = out[0, ids.shape[1]:].tolist()
    result = {
        "tokens_per_second": (args.new_tokens - 1) / decode,
        "decode_seconds": decode,
        "generate_seconds": tn,
        "new_tokens": args.new_tokens,
        "prompt_tokens": ids.shape[1],
        "threads": args.threads,
        "tokens": new,
        "torch": torch.__version__,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['tokens_per_second']:.1f} tokens/s decode ({args.new_tokens} new tokens)")


if __name__ == "__main__":
    main()
