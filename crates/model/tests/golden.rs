//! Golden tests: our forward pass against transformers' float32 logits on tiny random models made
//! by `scripts/make_fixtures.py` (tiny-llama: GQA + tied embeddings; tiny-qwen2: untied head and
//! q/k/v bias; tiny-llama3: llama3 RoPE scaling, q/k/v/o and MLP biases).

use std::path::PathBuf;

use secateurs_model::model::ModelFiles;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn ids(v: &Value, key: &str) -> Vec<u32> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn check(name: &str) {
    let dir = fixture(name);
    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let files = ModelFiles::open(&dir).unwrap();
    let model = files.load(&mut |_| {}).unwrap();
    let input = ids(&reference, "input_ids");
    let logits = model.logits(&input).unwrap();
    let want = reference["logits"].as_array().unwrap();
    assert_eq!(logits.rows, want.len());
    let mut max_diff = 0.0f32;
    for (r, row) in want.iter().enumerate() {
        let row = row.as_array().unwrap();
        assert_eq!(row.len(), logits.cols);
        for (c, x) in row.iter().enumerate() {
            max_diff = max_diff.max((logits.row(r)[c] - x.as_f64().unwrap() as f32).abs());
        }
    }
    println!("{name}: max |logit difference| vs transformers = {max_diff:.3e}");
    assert!(
        max_diff <= 1e-4,
        "{name}: max abs logit difference {max_diff} > 1e-4"
    );

    // Greedy decoding through the KV cache reproduces transformers' generate().
    let prompt = ids(&reference, "prompt_ids");
    let want_gen = ids(&reference, "greedy_ids");
    let got = model
        .generate_greedy(&prompt, want_gen.len(), &[], &mut |_| {})
        .unwrap();
    assert_eq!(got, want_gen, "{name}: greedy continuation differs");
}

#[test]
fn tiny_llama_gqa_tied_matches_transformers() {
    check("tiny-llama");
}

#[test]
fn tiny_qwen2_untied_qkv_bias_matches_transformers() {
    check("tiny-qwen2");
}

#[test]
fn tiny_llama3_rope_scaling_and_biases_match_transformers() {
    check("tiny-llama3");
}

#[test]
fn cached_decoding_equals_full_forward() {
    let files = ModelFiles::open(&fixture("tiny-llama")).unwrap();
    let model = files.load(&mut |_| {}).unwrap();
    let tokens: Vec<u32> = (0..20).map(|i| (i * 7 + 3) % 128).collect();
    let full = model.forward_hidden(&tokens, 0, None).unwrap();
    let mut cache = model.new_cache();
    let a = model
        .forward_hidden(&tokens[..11], 0, Some(&mut cache))
        .unwrap();
    let b = model
        .forward_hidden(&tokens[11..], 11, Some(&mut cache))
        .unwrap();
    for r in 0..20 {
        let got = if r < 11 { a.row(r) } else { b.row(r - 11) };
        for (x, y) in got.iter().zip(full.row(r)) {
            assert!((x - y).abs() < 1e-5, "row {r}: {x} vs {y}");
        }
    }
}
