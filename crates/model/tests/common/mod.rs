//! Helpers shared by the integration tests that run the tiny fixture model.

use std::path::PathBuf;

use secateurs_model::model::{CausalLm, ModelFiles};

/// The tiny random LLaMA of `tests/fixtures/tiny-llama`.
pub fn load() -> CausalLm {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-llama");
    ModelFiles::open(&dir).unwrap().load(&mut |_| {}).unwrap()
}

/// Largest absolute difference of two equally long slices.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
