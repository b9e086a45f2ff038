//! End-to-end pruning of the tiny-llama fixture through the calibration loop:
//! - golden: masks identical to the PyTorch reference (scripts/torch_prune.py, fixture made by
//!   scripts/make_prune_fixtures.py) for magnitude and Wanda, SparseGPT weights within 1e-4
//!   relative, for unstructured 0.5, 2:4 and 4:8;
//! - ratio 0 changes nothing; a run interrupted after a layer and resumed from its checkpoint
//!   gives bit-identical weights.

use std::path::PathBuf;

use secateurs_model::model::{CausalLm, ModelFiles};
use secateurs_model::safetensors::SafetensorsSource;
use secateurs_model::weights::WeightSource;
use secateurs_prune::calibrate::{
    capture_inputs, prune_layers, LayerHook, MatrixOutcome, NoHook, PhaseTimes, PruneSettings,
};
use secateurs_prune::checkpoint::Checkpoint;
use secateurs_prune::methods::{Method, SparseGptOptions};
use secateurs_prune::pattern::Pattern;
use secateurs_prune::scope::Scope;
use secateurs_prune::{PruneError, Result};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tiny() -> CausalLm {
    ModelFiles::open(&root().join("../model/tests/fixtures/tiny-llama"))
        .unwrap()
        .load(&mut |_| {})
        .unwrap()
}

fn windows() -> Vec<Vec<u32>> {
    serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/e2e/windows.json")).unwrap(),
    )
    .unwrap()
}

fn settings(method: Method, pattern: Pattern) -> PruneSettings {
    PruneSettings {
        method,
        pattern,
        scope: Scope::default(),
        sparsegpt: SparseGptOptions::default(),
        error_samples: 2,
    }
}

fn prune(model: &mut CausalLm, s: &PruneSettings) -> Vec<MatrixOutcome> {
    let inputs = capture_inputs(model, &windows()).unwrap();
    prune_layers(
        model,
        inputs,
        0,
        s,
        &mut PhaseTimes::default(),
        &mut NoHook,
        &mut |_| {},
    )
    .unwrap()
}

fn weights(model: &CausalLm) -> Vec<(String, Vec<f32>)> {
    model
        .arch
        .tensors()
        .into_iter()
        .filter(|t| t.name.ends_with("_proj.weight"))
        .map(|t| (t.name, t.data.to_vec()))
        .collect()
}

fn bitmap(w: &[f32]) -> String {
    let mut out = vec![0u8; w.len().div_ceil(8)];
    for (i, v) in w.iter().enumerate() {
        if *v == 0.0 {
            out[i / 8] |= 1 << (i % 8);
        }
    }
    out.iter().map(|b| format!("{b:02x}")).collect()
}

const CASES: [(&str, Pattern); 3] = [
    ("0.5", Pattern::Unstructured { ratio: 0.5 }),
    ("2:4", Pattern::NOfM { n: 2, m: 4 }),
    ("4:8", Pattern::NOfM { n: 4, m: 8 }),
];

#[test]
fn magnitude_and_wanda_masks_equal_the_pytorch_reference() {
    let masks: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/e2e/masks.json")).unwrap(),
    )
    .unwrap();
    for method in [Method::Magnitude, Method::Wanda] {
        for (label, pattern) in CASES {
            let mut model = tiny();
            prune(&mut model, &settings(method, pattern));
            for (name, w) in weights(&model) {
                let want = masks[format!("{method}/{label}/{name}")].as_str().unwrap();
                assert_eq!(
                    bitmap(&w),
                    want,
                    "{method} {label} {name}: mask differs from the reference"
                );
            }
        }
    }
}

#[test]
fn sparsegpt_weights_match_the_pytorch_reference() {
    let reference =
        SafetensorsSource::open_file(&root().join("tests/fixtures/e2e/sparsegpt.safetensors"))
            .unwrap();
    for (label, pattern) in CASES {
        let mut model = tiny();
        prune(&mut model, &settings(Method::SparseGpt, pattern));
        for (name, w) in weights(&model) {
            let want = reference.load(&format!("{label}/{name}")).unwrap().data;
            let num: f64 = w
                .iter()
                .zip(&want)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum();
            let den: f64 = want.iter().map(|b| (*b as f64).powi(2)).sum();
            let rel = (num / den).sqrt();
            assert!(
                rel <= 1e-4,
                "sparsegpt {label} {name}: relative error {rel:e}"
            );
        }
    }
}

#[test]
fn ratio_zero_changes_nothing() {
    for method in [Method::Magnitude, Method::Wanda, Method::SparseGpt] {
        let mut model = tiny();
        let before = weights(&model);
        prune(
            &mut model,
            &settings(method, Pattern::Unstructured { ratio: 0.0 }),
        );
        assert_eq!(weights(&model), before, "{method}");
    }
}

#[test]
fn scope_restricts_pruning_to_attention_or_mlp() {
    let mut model = tiny();
    let before = weights(&model);
    let mut s = settings(Method::Wanda, Pattern::Unstructured { ratio: 0.5 });
    s.scope.role = "mlp".parse().unwrap();
    let outcomes = prune(&mut model, &s);
    assert!(outcomes.iter().all(|o| o.name.contains(".mlp.")));
    for ((name, w), (_, w0)) in weights(&model).iter().zip(&before) {
        assert_eq!(name.contains(".mlp."), w != w0, "{name}");
    }
}

/// Fails after the first layer, like a killed run.
struct Interrupt(Checkpoint);

impl LayerHook for Interrupt {
    fn layer_done(
        &mut self,
        layer: usize,
        model: &CausalLm,
        inputs: &[secateurs_model::ops::Matrix],
        o: &[MatrixOutcome],
    ) -> Result<()> {
        self.0.layer_done(layer, model, inputs, o)?;
        Err(PruneError::Calibration("interrupted".into()))
    }
}

#[test]
fn resumed_run_equals_uninterrupted_run() {
    let s = settings(Method::SparseGpt, Pattern::NOfM { n: 2, m: 4 });
    let mut straight = tiny();
    let straight_outcomes = prune(&mut straight, &s);

    let dir = tempfile::tempdir().unwrap();
    let ckpt = || Checkpoint::new(dir.path().join("ckpt"), "fp".into());
    let mut first = tiny();
    let inputs = capture_inputs(&first, &windows()).unwrap();
    let err = prune_layers(
        &mut first,
        inputs,
        0,
        &s,
        &mut PhaseTimes::default(),
        &mut Interrupt(ckpt()),
        &mut |_| {},
    );
    assert!(err.is_err());

    let mut resumed = tiny();
    let restored = ckpt().restore(&mut resumed).unwrap().expect("a checkpoint");
    assert_eq!(restored.next_layer, 1);
    let mut outcomes = restored.outcomes;
    outcomes.extend(
        prune_layers(
            &mut resumed,
            restored.inputs,
            1,
            &s,
            &mut PhaseTimes::default(),
            &mut ckpt(),
            &mut |_| {},
        )
        .unwrap(),
    );
    assert_eq!(weights(&resumed), weights(&straight));
    assert_eq!(outcomes.len(), straight_outcomes.len());

    // A checkpoint made with other settings is refused.
    let other = Checkpoint::new(dir.path().join("ckpt"), "other".into());
    assert!(other.restore(&mut tiny()).is_err());
}

#[test]
fn exported_directory_reloads_with_identical_logits() {
    let mut model = tiny();
    prune(
        &mut model,
        &settings(Method::Wanda, Pattern::NOfM { n: 2, m: 4 }),
    );
    let dir = tempfile::tempdir().unwrap();
    let files = ModelFiles::open(&root().join("../model/tests/fixtures/tiny-llama")).unwrap();
    secateurs_model::export::save_hf_dir(
        &model,
        Some(files.tokenizer().unwrap()),
        dir.path(),
        &Default::default(),
    )
    .unwrap();
    let reloaded = ModelFiles::open(dir.path()).unwrap();
    assert!(reloaded.tokenizer().is_ok());
    let reloaded = reloaded.load(&mut |_| {}).unwrap();
    let tokens: Vec<u32> = (0..24).map(|i| (i * 5 + 3) % 128).collect();
    assert_eq!(
        model.logits(&tokens).unwrap(),
        reloaded.logits(&tokens).unwrap()
    );
}
