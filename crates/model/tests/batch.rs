//! `DecoderLayer::forward_batch` (several sequences stacked into one input, as the evaluation
//! engine runs them) gives each sequence what `forward` gives it alone, leaves the same KV
//! caches behind, and rejects parts that do not tile the input.

mod common;

use common::{load, max_diff};
use secateurs_model::arch::{LayerKvCache, NoObserver, SeqPart};
use secateurs_model::ops::Matrix;

/// (cached prefix, new tokens) of each sequence: a prompt after a cached prefix, a single decode
/// step, and a fresh sequence from position 0.
const SEQS: [(&[u32], &[u32]); 3] = [
    (&[1, 5, 9, 17, 33], &[2, 8, 40]),
    (&[3, 11, 7, 20], &[6]),
    (&[], &[4, 12, 19, 25, 30, 2]),
];

#[test]
fn a_batch_equals_its_sequences_run_alone() {
    let model = load();
    let hidden = model.config().hidden_size;
    // Caches holding each sequence's prefix.
    let prefill = |prefix: &[u32]| -> Vec<LayerKvCache> {
        let mut cache = model.new_cache();
        if !prefix.is_empty() {
            model.forward_hidden(prefix, 0, Some(&mut cache)).unwrap();
        }
        cache
    };
    let mut alone: Vec<Vec<LayerKvCache>> = SEQS.iter().map(|s| prefill(s.0)).collect();
    let mut batched: Vec<Vec<LayerKvCache>> = SEQS.iter().map(|s| prefill(s.0)).collect();

    let mut xs: Vec<Matrix> = SEQS
        .iter()
        .map(|s| model.arch.embed(s.1, s.0.len()).unwrap()) // (new, hidden)
        .collect();
    let mut stacked = Matrix::from_vec(
        xs.iter().map(|x| x.rows).sum(),
        hidden,
        xs.iter().flat_map(|x| x.data.iter().copied()).collect(),
    ); // (Σ new, hidden)
    for (li, layer) in model.arch.layers().iter().enumerate() {
        for (i, x) in xs.iter_mut().enumerate() {
            *x = layer
                .forward(x, SEQS[i].0.len(), Some(&mut alone[i][li]), &mut NoObserver)
                .unwrap();
        }
        let mut parts: Vec<SeqPart<'_>> = batched
            .iter_mut()
            .zip(&SEQS)
            .map(|(c, s)| SeqPart {
                start: s.0.len(),
                rows: s.1.len(),
                cache: Some(&mut c[li]),
            })
            .collect();
        stacked = layer.forward_batch(&stacked, &mut parts).unwrap();
    }
    let expected: Vec<f32> = xs.iter().flat_map(|x| x.data.iter().copied()).collect();
    let d = max_diff(&stacked.data, &expected);
    assert!(d <= 1e-5, "batched hidden states differ by {d}");
    for (a, b) in alone.iter().zip(&batched) {
        for (ca, cb) in a.iter().zip(b) {
            assert_eq!(ca.len, cb.len);
            assert_eq!((ca.k.len(), ca.v.len()), (cb.k.len(), cb.v.len()));
            for (ha, hb) in ca.k.iter().chain(&ca.v).zip(cb.k.iter().chain(&cb.v)) {
                assert!(max_diff(ha, hb) <= 1e-5);
            }
        }
    }
}

#[test]
fn parts_must_tile_the_input_and_match_their_caches() {
    let model = load();
    let layer = &model.arch.layers()[0];
    let x = model.arch.embed(&[1, 2, 3], 0).unwrap(); // (3, hidden)
    let mut c = LayerKvCache::default();
    let mut short = [SeqPart {
        start: 0,
        rows: 2,
        cache: Some(&mut c),
    }];
    let e = layer.forward_batch(&x, &mut short).unwrap_err().to_string();
    assert!(e.contains("covers 2 rows"), "{e}");
    let mut c2 = LayerKvCache::default();
    let mut behind = [SeqPart {
        start: 5,
        rows: 3,
        cache: Some(&mut c2),
    }];
    let e = layer
        .forward_batch(&x, &mut behind)
        .unwrap_err()
        .to_string();
    assert!(e.contains("KV cache holds 0 positions"), "{e}");
    let mut uncached = [SeqPart {
        start: 1,
        rows: 3,
        cache: None,
    }];
    assert!(layer.forward_batch(&x, &mut uncached).is_err());
}

#[test]
fn kv_cache_keeps_each_head_contiguous_and_truncates() {
    // Two positions of two kv heads of width 2: rows (k0 k1 | k2 k3).
    let mut c = LayerKvCache::default();
    c.append(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0], 2, 2);
    c.append(&[11.0, 12.0, 13.0, 14.0], &[15.0, 16.0, 17.0, 18.0], 2, 2);
    assert_eq!(c.len, 2);
    assert_eq!(
        c.k,
        vec![vec![1.0, 2.0, 11.0, 12.0], vec![3.0, 4.0, 13.0, 14.0]]
    );
    assert_eq!(
        c.v,
        vec![vec![5.0, 6.0, 15.0, 16.0], vec![7.0, 8.0, 17.0, 18.0]]
    );
    c.truncate(5);
    assert_eq!(c.len, 2);
    c.truncate(1);
    assert_eq!(c.len, 1);
    assert_eq!(c.k, vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
    assert_eq!(c.v, vec![vec![5.0, 6.0], vec![7.0, 8.0]]);
}
