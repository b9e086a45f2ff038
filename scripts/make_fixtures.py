#!/usr/bin/env python3
"""Make the tiny random models and reference logits used by secateurs' golden tests.

Needs: python3 with torch, transformers (>= 4.45) and tokenizers (see scripts/requirements.txt).
Run from the repository root:

    python3 scripts/make_fixtures.py crates/model/tests/fixtures

For each fixture it writes a Hugging Face directory (config.json, model.safetensors,
tokenizer.json) and `reference.json` holding transformers' float32 logits for fixed token ids and
the greedy continuation of a prompt (which exercises our KV cache). The weights are random
(seeded), not trained: what matters is that our forward pass equals transformers' on them.
"""
import json
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, decoders
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

VOCAB = 128
WORDS = ["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(VOCAB - 3)]


def tiny_tokenizer() -> Tokenizer:
    """A word-level tokenizer over VOCAB words w0..w124, so the CLI can run on the fixtures."""
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return tok


FIXTURES = {
    # SmolLM2's shape in miniature: GQA (4 query heads over 2 kv heads), tied embeddings.
    "tiny-llama": (LlamaForCausalLM, LlamaConfig, dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2)),
    # Qwen2: untied head and bias on q/k/v.
    "tiny-qwen2": (Qwen2ForCausalLM, Qwen2Config, dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=80, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=128,
        rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=False,
        use_sliding_window=False, bos_token_id=1, eos_token_id=2)),
    # LLaMA 3 style: rope_scaling llama3, bias on q/k/v/o and the MLP, untied head.
    "tiny-llama3": (LlamaForCausalLM, LlamaConfig, dict(
        vocab_size=VOCAB, hidden_size=48, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=3, num_key_value_heads=3, head_dim=16, max_position_embeddings=128,
        rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=False,
        attention_bias=True, mlp_bias=True,
        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                          high_freq_factor=4.0, original_max_position_embeddings=16),
        bos_token_id=1, eos_token_id=2)),
}


def make(out: Path, name: str, seed: int) -> None:
    cls, cfg_cls, kw = FIXTURES[name]
    torch.manual_seed(seed)
    model = cls(cfg_cls(**kw)).eval().to(torch.float32)
    with torch.no_grad():
        # Default init is tiny (std 0.02); widen it so the test sees non-trivial attention.
        for n, p in model.named_parameters():
            if n.endswith("bias"):
                p.normal_(0.0, 0.1)
            elif "norm" in n:
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0.0, 0.08)
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    tiny_tokenizer().save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>", "bos_token": "<s>"}))
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(3, VOCAB, (1, 37), generator=g)
    with torch.no_grad():
        logits = model(ids).logits[0]
        prompt = ids[:, :9]
        gen = model.generate(prompt, max_new_tokens=12, do_sample=False, eos_token_id=None,
                             pad_token_id=0, attention_mask=torch.ones_like(prompt))
    ref = {
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
        "input_ids": ids[0].tolist(),
        "logits": [[float(x) for x in row] for row in logits],
        "prompt_ids": prompt[0].tolist(),
        "greedy_ids": gen[0, prompt.shape[1]:].tolist(),
    }
    (d / "reference.json").write_text(json.dumps(ref))
    print(f"{d}: {sum(p.numel() for p in model.parameters())} parameters")


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "crates/model/tests/fixtures")
    for i, name in enumerate(FIXTURES):
        make(out, name, seed=1234 + i)


if __name__ == "__main__":
    main()
