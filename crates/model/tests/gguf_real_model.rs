//! Checks against the real default model (SmolLM2-135M-Instruct Q4_1 GGUF).
//! Skipped unless `SECATEURS_MODEL_GGUF` names the file.

mod gguf_support;

use std::collections::BTreeMap;
use std::time::Instant;

use gguf_support::real_model;
use rayon::prelude::*;
use secateurs_model::gguf::GgufFile;

#[test]
fn real_model_metadata_and_all_tensors_dequantize() {
    let Some(path) = real_model("real_model_metadata_and_all_tensors_dequantize") else {
        return;
    };
    let t0 = Instant::now();
    let file = GgufFile::open(&path).expect("open model");
    println!("open + parse: {:?}", t0.elapsed());
    assert_eq!(file.version(), 3);
    assert_eq!(file.architecture().expect("arch"), "llama");
    assert_eq!(file.get_u32("llama.block_count").expect("blocks"), 30);
    assert_eq!(file.get_u32("llama.embedding_length").expect("emb"), 576);
    assert_eq!(
        file.get_u32("llama.attention.head_count").expect("heads"),
        9
    );
    assert_eq!(
        file.get_u32("llama.attention.head_count_kv")
            .expect("kv heads"),
        3
    );
    assert_eq!(file.get_str("tokenizer.ggml.pre").expect("pre"), "smollm");
    assert_eq!(file.tensors().len(), 272);
    assert!(file.tensor_info("blk.0.attn_q.weight").is_some());

    // Distinct tensor kinds (name with the block number removed) and types.
    let mut kinds: BTreeMap<String, String> = BTreeMap::new();
    for t in file.tensors() {
        let kind = match t.name.split_once('.') {
            Some(("blk", rest)) => format!("blk.N.{}", rest.split_once('.').map_or(rest, |r| r.1)),
            _ => t.name.clone(),
        };
        kinds.insert(kind, format!("{} {:?}", t.ggml_type, t.shape()));
    }
    for (k, v) in &kinds {
        println!("{k}: {v}");
    }

    // Timing: tensors one after another, each dequantized in parallel.
    let t0 = Instant::now();
    let mut total = 0usize;
    for t in file.tensors() {
        total += file.tensor_f32(&t.name).map(|v| v.len()).unwrap_or(0);
    }
    println!(
        "dequantized {total} values from {} tensors in {:?}",
        file.tensors().len(),
        t0.elapsed()
    );

    let checked: usize = file
        .tensors()
        .par_iter()
        .map(|t| {
            let v = file.tensor_f32(&t.name).expect("dequantize");
            assert_eq!(v.len() as u64, t.n_elements());
            assert!(
                v.iter().all(|x| x.is_finite()),
                "{} has non-finite values",
                t.name
            );
            v.len()
        })
        .sum();
    assert_eq!(checked, total);
}
