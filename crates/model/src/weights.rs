//! Named-tensor sources: where a model's weights come from (safetensors, GGUF), seen through one
//! trait with Hugging Face tensor names, so that architectures never care about the file format.

use std::path::Path;

use crate::error::{ModelError, Result};

/// A dense f32 tensor in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorF32 {
    /// Row-major shape (Hugging Face / PyTorch order).
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f32>,
}

impl TensorF32 {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }
}

/// A set of named tensors, addressed by their Hugging Face names
/// (`model.layers.0.self_attn.q_proj.weight`, ...).
pub trait WeightSource: Send + Sync {
    /// The file or directory the tensors come from (for messages).
    fn label(&self) -> &Path;
    /// Whether a tensor of that name exists.
    fn contains(&self, name: &str) -> bool;
    /// All tensor names, sorted.
    fn names(&self) -> Vec<String>;
    /// How the tensor is stored on disk (`F32`, `BF16`, `Q4_1`, ...).
    fn storage_dtype(&self, name: &str) -> Option<String>;
    /// Shape of a tensor without loading it.
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    /// Loads (and converts / dequantizes) one tensor to f32.
    ///
    /// # Errors
    /// A missing tensor, or a tensor whose data cannot be read or converted.
    fn load(&self, name: &str) -> Result<TensorF32>;

    /// A linear layer's weight in the sparse format it is stored in, or `None` when the source
    /// stores it dense (the caller then uses [`WeightSource::load_checked`]). Compressed
    /// checkpoints override this so pruned weights load without ever being densified.
    ///
    /// # Errors
    /// A stored matrix whose parts are inconsistent (naming the tensor).
    fn load_packed(&self, _name: &str) -> Result<Option<secateurs_sparse::PackedMatrix>> {
        Ok(None)
    }

    /// Loads a tensor and checks its shape and that every value is finite.
    ///
    /// # Errors
    /// As [`WeightSource::load`], plus a shape mismatch or a NaN/infinite value (naming the tensor).
    fn load_checked(&self, name: &str, shape: &[usize]) -> Result<TensorF32> {
        let t = self.load(name)?;
        if t.shape != shape {
            return Err(ModelError::Tensor {
                path: self.label().to_path_buf(),
                tensor: name.to_string(),
                reason: format!(
                    "shape {:?} does not match the config's {:?}",
                    t.shape, shape
                ),
            });
        }
        if let Some(i) = t.data.iter().position(|x| !x.is_finite()) {
            return Err(ModelError::Tensor {
                path: self.label().to_path_buf(),
                tensor: name.to_string(),
                reason: format!("non-finite value {} at flat index {i}", t.data[i]),
            });
        }
        Ok(t)
    }
}
