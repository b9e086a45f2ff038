//! Perplexity against a direct computation from full logits on the tiny fixture model.

use std::path::PathBuf;

use secateurs_eval::{perplexity, EvalError, PerplexityOptions};
use secateurs_model::model::ModelFiles;
use secateurs_model::ops::log_sum_exp;

fn tiny() -> secateurs_model::model::CausalLm {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/tiny-llama");
    ModelFiles::open(&dir).unwrap().load(&mut |_| {}).unwrap()
}

#[test]
fn tiled_perplexity_equals_full_logits_computation() {
    let model = tiny();
    let tokens: Vec<u32> = (0..100u32).map(|i| (i * 37 + 11) % 128).collect();
    let seqlen = 30;
    let report = perplexity(
        &model,
        &tokens,
        PerplexityOptions {
            seqlen,
            max_windows: None,
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(report.windows, 3);
    assert_eq!(report.predictions, 3 * 29);
    let mut nll = 0.0;
    for w in 0..3 {
        let win = &tokens[w * seqlen..(w + 1) * seqlen];
        let logits = model.logits(win).unwrap();
        for r in 0..seqlen - 1 {
            let row = logits.row(r);
            nll += log_sum_exp(row) - row[win[r + 1] as usize] as f64;
        }
    }
    let want = (nll / 87.0).exp();
    assert!(
        (report.perplexity / want - 1.0).abs() < 1e-9,
        "{} vs {want}",
        report.perplexity
    );
}

#[test]
fn too_short_text_and_bad_seqlen_are_errors() {
    let model = tiny();
    let e = perplexity(
        &model,
        &[1, 2, 3],
        PerplexityOptions {
            seqlen: 8,
            max_windows: None,
        },
        &mut |_, _| {},
    );
    assert!(matches!(
        e,
        Err(EvalError::TooShort {
            tokens: 3,
            seqlen: 8
        })
    ));
    let e = perplexity(
        &model,
        &[1, 2, 3],
        PerplexityOptions {
            seqlen: 1,
            max_windows: None,
        },
        &mut |_, _| {},
    );
    assert!(matches!(e, Err(EvalError::BadOption { .. })));
}
