//! The engine runs unchanged on any weight storage: a pruned tiny model stored dense, COO, CSR,
//! bitmask or N:M (f32 and bf16 values) gives the same logits, both for a whole sequence (the
//! SpMM / prefill path) and token by token through the KV cache (the GEMV / decode path).

mod common;

use common::{load, max_diff};
use secateurs_model::arch::LinearKind;
use secateurs_model::model::CausalLm;
use secateurs_sparse::{Format, ValueDtype};

/// Zeroes, in every group of 4 weights, the 2 smallest magnitudes (so the model is 2:4 sparse,
/// hence also 50% unstructured).
fn prune_2_4(model: &mut CausalLm) {
    for layer in model.arch.layers_mut() {
        for kind in LinearKind::ALL {
            let lin = layer.linear_mut(kind).unwrap();
            let mut w = lin.dense_weight().into_owned();
            for g in w.chunks_exact_mut(4) {
                let mut idx = [0usize, 1, 2, 3];
                idx.sort_by(|&a, &b| g[a].abs().total_cmp(&g[b].abs()));
                g[idx[0]] = 0.0;
                g[idx[1]] = 0.0;
            }
            lin.set_dense_weight(w);
        }
    }
}

const TOKENS: [u32; 12] = [1, 5, 9, 17, 33, 2, 8, 40, 3, 11, 7, 20];

/// Logits of the whole sequence, and of each position decoded one token at a time.
fn run(model: &CausalLm) -> (Vec<f32>, Vec<f32>) {
    let full = model.logits(&TOKENS).unwrap().data;
    let mut cache = model.new_cache();
    let mut steps = Vec::new();
    for (pos, &t) in TOKENS.iter().enumerate() {
        let h = model.forward_hidden(&[t], pos, Some(&mut cache)).unwrap(); // (1, hidden)
        steps.extend(model.arch.head().forward(&h).data);
    }
    (full, steps)
}

#[test]
fn every_format_gives_the_dense_logits() {
    for dtype in [ValueDtype::F32, ValueDtype::Bf16] {
        let mut model = load();
        prune_2_4(&mut model);
        // The reference: the same (rounded) values stored dense.
        model.repack(Some(Format::Dense), dtype).unwrap();
        let (full, steps) = run(&model);
        assert!(
            max_diff(&full, &steps) < 1e-4,
            "prefill and decode disagree"
        );
        for format in [
            None,
            Some(Format::Coo),
            Some(Format::Csr),
            Some(Format::Bitmask),
            Some(Format::Nm),
            Some(Format::Dense),
        ] {
            let (before, after) = model.repack(format, dtype).unwrap();
            let (f, s) = run(&model);
            let (df, ds) = (max_diff(&full, &f), max_diff(&steps, &s));
            println!("{format:?} {dtype}: {before} -> {after} bytes, max diff {df:.2e} / {ds:.2e}");
            assert!(df <= 1e-4 && ds <= 1e-4, "{format:?} {dtype}: {df} {ds}");
            if matches!(format, Some(Format::Bitmask | Format::Nm) | None) {
                assert!(
                    after < before,
                    "{format:?} should read fewer bytes than dense"
                );
            }
        }
    }
}

#[test]
fn sparse_storage_keeps_greedy_decoding() {
    let mut model = load();
    prune_2_4(&mut model);
    let dense = model
        .generate_greedy(&TOKENS[..4], 8, &[], &mut |_| {})
        .unwrap();
    model.repack(None, ValueDtype::F32).unwrap();
    let sparse = model
        .generate_greedy(&TOKENS[..4], 8, &[], &mut |_| {})
        .unwrap();
    assert_eq!(dense, sparse);
    assert!(model
        .arch
        .layers()
        .iter()
        .flat_map(|l| l.linears())
        .all(|(_, lin)| lin.storage() != "dense/f32"));
}

#[test]
fn nm_request_on_unstructured_weights_is_an_error() {
    let mut model = load();
    // Dense weights have no N:M pattern: asking for one names the matrix.
    let err = model.repack(Some(Format::Nm), ValueDtype::F32).unwrap_err();
    assert!(err.to_string().contains("model.layers.0."), "{err}");
}
