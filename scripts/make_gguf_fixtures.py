#!/usr/bin/env python3
"""Generate the GGUF test fixtures in crates/model/tests/fixtures/gguf/.

Requirements: Python 3.10+, ``numpy`` and ``gguf`` (gguf-py, the llama.cpp
GGUF library; tested with 0.19.0). The ``--tokenizer`` mode also needs
``transformers`` and ``torch`` (transformers' GGUF tokenizer conversion is
the reference).

Usage:
    python3 scripts/make_gguf_fixtures.py
        Writes small.gguf / small_align64.gguf (same tensors, default and
        64-byte alignment), small_expected.json (tensor manifest) and
        small_expected.f32 (little-endian f32 reference values, concatenated
        in manifest order; produced by gguf.quants.dequantize).
    python3 scripts/make_gguf_fixtures.py --tokenizer MODEL.gguf
        Writes tokenizer_golden.json: strings and the token ids transformers
        produces for them from MODEL.gguf (SmolLM2-135M-Instruct.Q4_1.gguf).

The output is deterministic (fixed seed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

OUT_DIR = Path(__file__).resolve().parent.parent / "crates" / "model" / "tests" / "fixtures" / "gguf"

TOKENIZER_STRINGS = [
    "Hello world",
    "12345 apples",
    "year 2024: 3.14159",
    "Zürich café 東京",
    "<|im_start|>user\nHi<|im_end|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n",
    "   leading spaces",
    "trailing spaces   ",
    "a\n\n\nb",
    "tabs\t\tand   runs    of  spaces",
    "def f(x):\n    return x**2  # square\n",
    "Hello, world!!! ... (really?) [yes] {no}",
    "emoji 🙂🎉👩‍👩‍👧",
    "<repo_name>secateurs<file_sep>main.rs<|endoftext|>",
    "don't won't it's I'm we'll they've",
    "",
]


def random_k_blocks(rng: np.random.Generator, n_blocks: int, type_size: int, d_offsets: list[int]) -> np.ndarray:
    """Random raw K-quant blocks whose f16 scale fields are finite and moderate."""
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for off in d_offsets:
        d = (rng.uniform(0.001, 0.05, size=n_blocks) * rng.choice([-1.0, 1.0], size=n_blocks)).astype(np.float16)
        blocks[:, off:off + 2] = d.view(np.uint8).reshape(n_blocks, 2)
    return blocks


def build_tensors(gguf) -> list[tuple[str, np.ndarray, object, np.ndarray]]:
    """(name, array to write, raw_dtype or None, expected f32 values) for each tensor."""
    Q = gguf.GGMLQuantizationType
    rng = np.random.default_rng(20240611)
    out = []

    def quantized(name: str, shape: tuple[int, ...], qtype) -> None:
        data = rng.normal(0.0, 1.0, size=shape).astype(np.float32)
        # Include exact zeros and large values in the first row.
        data.reshape(-1)[:4] = [0.0, 0.0, 7.5, -7.5]
        raw = gguf.quants.quantize(data, qtype)
        out.append((name, raw, qtype, gguf.quants.dequantize(raw, qtype).astype(np.float32)))

    f32 = rng.normal(size=(3, 5)).astype(np.float32)
    out.append(("t.f32", f32, None, f32))
    f32_1d = rng.normal(size=(7,)).astype(np.float32)
    out.append(("t.f32_1d", f32_1d, None, f32_1d))
    f32_3d = rng.normal(size=(2, 3, 4)).astype(np.float32)
    out.append(("t.f32_3d", f32_3d, None, f32_3d))
    f16 = rng.normal(size=(4, 8)).astype(np.float16)
    out.append(("t.f16", f16, None, f16.astype(np.float32)))
    quantized("t.bf16", (2, 16), Q.BF16)
    quantized("t.q8_0", (4, 64), Q.Q8_0)
    quantized("t.q8_0_4d", (2, 2, 2, 32), Q.Q8_0)
    quantized("t.q4_0", (3, 64), Q.Q4_0)
    quantized("t.q4_1", (2, 96), Q.Q4_1)

    # K-quants: gguf-py only dequantizes them, so write random valid blocks.
    q4k = random_k_blocks(rng, 4, 144, [0, 2]).reshape(2, 2 * 144)
    out.append(("t.q4_k", q4k, Q.Q4_K, gguf.quants.dequantize(q4k, Q.Q4_K).astype(np.float32)))
    q6k = random_k_blocks(rng, 3, 210, [208]).reshape(3, 210)
    out.append(("t.q6_k", q6k, Q.Q6_K, gguf.quants.dequantize(q6k, Q.Q6_K).astype(np.float32)))

    # A type we can parse but not dequantize.
    q5 = gguf.quants.quantize(rng.normal(size=(1, 32)).astype(np.float32), Q.Q5_0)
    out.append(("t.q5_0_unsupported", q5, Q.Q5_0, None))
    return out


def add_metadata(w) -> None:
    w.add_name("secateurs gguf fixture")
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 1.5)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo wörld ✓")
    w.add_uint64("test.u64", 2**63 + 5)
    w.add_int64("test.i64", -(2**62))
    w.add_float64("test.f64", -1234.5678)
    w.add_array("test.array_i32", [1, -2, 3])
    w.add_array("test.array_str", ["a", "bc", "东京"])
    w.add_array("test.array_f32", [0.5, -0.25])
    w.add_array("test.array_nested", [[1, 2], [3]])
    w.add_block_count(2)
    w.add_rope_freq_base(10000.0)


def write_gguf(gguf, path: Path, tensors, alignment: int | None) -> None:
    w = gguf.GGUFWriter(str(path), "fixture")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    add_metadata(w)
    for name, arr, raw_dtype, _ in tensors:
        if raw_dtype is None:
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, arr, raw_dtype=raw_dtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def make_tensor_fixtures() -> None:
    import gguf

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    tensors = build_tensors(gguf)
    write_gguf(gguf, OUT_DIR / "small.gguf", tensors, None)
    write_gguf(gguf, OUT_DIR / "small_align64.gguf", tensors, 64)

    manifest = []
    values = []
    offset = 0
    reader = gguf.GGUFReader(str(OUT_DIR / "small.gguf"))
    by_name = {t.name: t for t in reader.tensors}
    for name, _, _, expected in tensors:
        t = by_name[name]
        entry = {
            "name": name,
            "type": t.tensor_type.name,
            "dims": [int(d) for d in t.shape],
            "shape": [int(d) for d in reversed(t.shape)],
        }
        if expected is not None:
            flat = expected.reshape(-1).astype("<f4")
            assert flat.size == int(np.prod(t.shape)), name
            entry["values_offset"] = offset
            entry["values_len"] = int(flat.size)
            offset += flat.size
            values.append(flat)
        manifest.append(entry)
    (OUT_DIR / "small_expected.f32").write_bytes(np.concatenate(values).astype("<f4").tobytes())
    (OUT_DIR / "small_expected.json").write_text(json.dumps({"tensors": manifest}, indent=1) + "\n")
    print(f"wrote {len(tensors)} tensors to {OUT_DIR}")


def make_tokenizer_fixture(model_gguf: str) -> None:
    from transformers import AutoTokenizer

    path = Path(model_gguf).resolve()
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    cases = []
    for text in TOKENIZER_STRINGS:
        ids = tok(text, add_special_tokens=True)["input_ids"]
        cases.append({"text": text, "ids": [int(i) for i in ids]})
    # One case per line keeps the file small and diffable.
    lines = ",\n  ".join(json.dumps(c, ensure_ascii=False) for c in cases)
    text = '{\n "model": %s,\n "cases": [\n  %s\n ]\n}\n' % (json.dumps(path.name), lines)
    json.loads(text)
    (OUT_DIR / "tokenizer_golden.json").write_text(text)
    print(f"wrote {len(cases)} tokenizer cases to {OUT_DIR / 'tokenizer_golden.json'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", metavar="MODEL_GGUF", help="write tokenizer_golden.json from this model file")
    args = ap.parse_args()
    if args.tokenizer:
        make_tokenizer_fixture(args.tokenizer)
    else:
        make_tensor_fixtures()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
