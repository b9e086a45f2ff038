//! Tokenizer built from GGUF metadata: hand-made byte-level BPE files, and a
//! golden test against transformers' ids for the real SmolLM2 GGUF
//! (`tests/fixtures/gguf/tokenizer_golden.json`, made by
//! `scripts/make_gguf_fixtures.py --tokenizer`; skipped unless
//! `SECATEURS_MODEL_GGUF` points at the model file).

mod gguf_support;

use gguf_support::{fixture, fixture_bytes, real_model, Writer};
use proptest::prelude::*;
use secateurs_model::gguf::{tokenizer_from_gguf, GgufError, GgufFile, GgufTokenizerInfo};

/// GPT-2's byte → char table, spelled out independently of the crate.
fn byte_chars() -> Vec<String> {
    let mut printable: Vec<u32> = (0x21..=0x7E)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut extra = 256;
    let mut out = Vec::new();
    for b in 0u32..256 {
        let c = if printable.contains(&b) {
            b
        } else {
            extra += 1;
            extra - 1
        };
        out.push(char::from_u32(c).expect("char").to_string());
    }
    printable.clear();
    out
}

/// A toy byte-level vocabulary: 256 byte tokens, "he", "ll", "hell",
/// "Ġw", control `<|end|>` and user-defined `<think>`.
fn toy(w: &mut Writer, pre: Option<&str>) -> Vec<String> {
    let mut tokens = byte_chars();
    for t in ["he", "ll", "hell", "Ġw", "<|end|>", "<think>"] {
        tokens.push(t.to_string());
    }
    let mut types = vec![1i32; tokens.len()];
    let n = types.len();
    types[n - 2] = 3;
    types[n - 1] = 4;
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    w.kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str_array("tokenizer.ggml.tokens", &refs)
        .kv_str_array("tokenizer.ggml.merges", &["h e", "l l", "he ll", "Ġ w"])
        .kv_i32_array("tokenizer.ggml.token_type", &types)
        .kv_u32("tokenizer.ggml.bos_token_id", (n - 2) as u32)
        .kv_u32("tokenizer.ggml.eos_token_id", (n - 2) as u32)
        .kv_str("tokenizer.chat_template", "{{ x }}");
    if let Some(p) = pre {
        w.kv_str("tokenizer.ggml.pre", p);
    }
    tokens
}

fn id_of(tokens: &[String], t: &str) -> u32 {
    tokens.iter().position(|x| x == t).expect("token") as u32
}

#[test]
fn toy_byte_level_bpe() {
    let mut w = Writer::default();
    let tokens = toy(&mut w, Some("smollm"));
    let file = GgufFile::from_bytes("toy.gguf", w.finish()).expect("parse");
    let tok = tokenizer_from_gguf(&file).expect("tokenizer");
    let text = "hello w<|end|>12<think>";
    let enc = tok.encode(text, true).expect("encode");
    let want: Vec<u32> = ["hell", "o", "Ġw", "<|end|>", "1", "2", "<think>"]
        .iter()
        .map(|t| id_of(&tokens, t))
        .collect();
    assert_eq!(enc.get_ids(), want.as_slice());
    assert_eq!(tok.decode(enc.get_ids(), false).expect("decode"), text);
    // Control tokens are special: skipped when asked.
    assert_eq!(
        tok.decode(enc.get_ids(), true).expect("decode"),
        "hello w12<think>"
    );

    let info = GgufTokenizerInfo::from_gguf(&file).expect("info");
    assert_eq!(info.bos_id, Some(id_of(&tokens, "<|end|>")));
    assert_eq!(info.chat_template.as_deref(), Some("{{ x }}"));
}

#[test]
fn add_bos_token_prepends_bos() {
    let mut w = Writer::default();
    let tokens = toy(&mut w, None);
    w.kv_bool("tokenizer.ggml.add_bos_token", true);
    let file = GgufFile::from_bytes("bos.gguf", w.finish()).expect("parse");
    let tok = tokenizer_from_gguf(&file).expect("tokenizer");
    let ids = tok.encode("he", true).expect("encode").get_ids().to_vec();
    assert_eq!(ids, vec![id_of(&tokens, "<|end|>"), id_of(&tokens, "he")]);
    let ids = tok.encode("he", false).expect("encode").get_ids().to_vec();
    assert_eq!(ids, vec![id_of(&tokens, "he")]);
}

#[test]
fn unsupported_tokenizers_are_named() {
    let mut w = Writer::default();
    toy(&mut w, Some("qwen2"));
    let file = GgufFile::from_bytes("pre.gguf", w.finish()).expect("parse");
    let err = tokenizer_from_gguf(&file).expect_err("qwen2 pre");
    assert!(matches!(err, GgufError::UnsupportedTokenizer { .. }));
    assert!(
        err.to_string().contains("'qwen2'") && err.to_string().starts_with("pre.gguf"),
        "{err}"
    );

    let bytes = Writer::default()
        .kv_str("tokenizer.ggml.model", "llama")
        .finish();
    let file = GgufFile::from_bytes("spm.gguf", bytes).expect("parse");
    let err = tokenizer_from_gguf(&file).expect_err("llama");
    assert!(err.to_string().contains("'llama'"), "{err}");

    let file = GgufFile::open(&fixture("small.gguf")).expect("open");
    let err = tokenizer_from_gguf(&file).expect_err("no tokenizer");
    assert!(err.to_string().contains("tokenizer.ggml.model"), "{err}");
}

#[test]
fn inconsistent_tokenizer_metadata_is_an_error() {
    let mut w = Writer::default();
    toy(&mut w, None);
    w.kv_str_array("tokenizer.ggml.merges", &["hx"]);
    // Duplicate key is a parse error; build a fresh file instead.
    assert!(GgufFile::from_bytes("dup.gguf", w.finish()).is_err());

    let bytes = Writer::default()
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str_array("tokenizer.ggml.tokens", &["a", "b"])
        .kv_str_array("tokenizer.ggml.merges", &["ab"])
        .finish();
    let file = GgufFile::from_bytes("merge.gguf", bytes).expect("parse");
    let err = tokenizer_from_gguf(&file).expect_err("bad merge");
    assert!(
        err.to_string().contains("tokenizer.ggml.merges[0]"),
        "{err}"
    );

    let bytes = Writer::default()
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str_array("tokenizer.ggml.tokens", &["a", "b"])
        .kv_str_array("tokenizer.ggml.merges", &["a c"])
        .finish();
    let file = GgufFile::from_bytes("merge.gguf", bytes).expect("parse");
    let err = tokenizer_from_gguf(&file).expect_err("unknown merge token");
    assert!(err.to_string().contains("not in the vocabulary"), "{err}");

    // The merged token "ab" is missing (the tokenizers crate would panic).
    let bytes = Writer::default()
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str_array("tokenizer.ggml.tokens", &["a", "b"])
        .kv_str_array("tokenizer.ggml.merges", &["a b"])
        .finish();
    let file = GgufFile::from_bytes("merge.gguf", bytes).expect("parse");
    let err = tokenizer_from_gguf(&file).expect_err("missing merge result");
    assert!(err.to_string().contains("merges into a token"), "{err}");

    let bytes = Writer::default()
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str_array("tokenizer.ggml.tokens", &["a", "b", "ab"])
        .kv_str_array("tokenizer.ggml.merges", &["a b"])
        .kv_i32_array("tokenizer.ggml.token_type", &[1])
        .finish();
    let file = GgufFile::from_bytes("types.gguf", bytes).expect("parse");
    let err = tokenizer_from_gguf(&file).expect_err("length mismatch");
    assert!(err.to_string().contains("token_type"), "{err}");

    let bytes = Writer::default()
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str_array("tokenizer.ggml.tokens", &["a", "b", "ab"])
        .kv_str_array("tokenizer.ggml.merges", &["a b"])
        .kv_bool("tokenizer.ggml.add_bos_token", true)
        .kv_u32("tokenizer.ggml.bos_token_id", 7)
        .finish();
    let file = GgufFile::from_bytes("bos.gguf", bytes).expect("parse");
    let err = tokenizer_from_gguf(&file).expect_err("bos out of range");
    assert!(err.to_string().contains("bos_token_id = 7"), "{err}");
}

#[test]
fn golden_ids_match_transformers() {
    let Some(path) = real_model("golden_ids_match_transformers") else {
        return;
    };
    let golden: serde_json::Value =
        serde_json::from_slice(&fixture_bytes("tokenizer_golden.json")).expect("golden json");
    let file = GgufFile::open(&path).expect("open model");
    let tok = tokenizer_from_gguf(&file).expect("tokenizer");
    let info = GgufTokenizerInfo::from_gguf(&file).expect("info");
    assert_eq!(info.bos_id, Some(1));
    assert_eq!(info.eos_id, Some(2));
    assert!(info
        .chat_template
        .as_deref()
        .is_some_and(|t| t.contains("<|im_start|>")));
    let cases = golden["cases"].as_array().expect("cases");
    assert!(cases.len() >= 15);
    for case in cases {
        let text = case["text"].as_str().expect("text");
        let want: Vec<u32> = case["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_u64().expect("id") as u32)
            .collect();
        let enc = tok.encode(text, true).expect("encode");
        assert_eq!(enc.get_ids(), want.as_slice(), "ids for {text:?}");
        let back = tok.decode(enc.get_ids(), false).expect("decode");
        assert_eq!(back, text, "round trip of {text:?}");
    }
    println!("{} golden strings match", cases.len());
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Corrupting the toy tokenizer file never panics, while parsing,
    /// building the tokenizer or encoding.
    #[test]
    fn mutated_tokenizer_metadata_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut w = Writer::default();
        toy(&mut w, Some("smollm"));
        w.kv_bool("tokenizer.ggml.add_bos_token", true);
        let mut b = w.finish();
        for (idx, v) in &edits {
            let i = idx.index(b.len());
            b[i] = *v;
        }
        if let Ok(f) = GgufFile::from_bytes("fuzz.gguf", b) {
            match tokenizer_from_gguf(&f) {
                Ok(tok) => {
                    let _ = tok.encode("hello world 123 <|end|>", true);
                }
                Err(e) => prop_assert!(e.to_string().starts_with("fuzz.gguf: ")),
            }
        }
    }
}
