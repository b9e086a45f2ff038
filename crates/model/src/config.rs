//! Model hyper-parameters, read from a Hugging Face `config.json` (or built from GGUF metadata).
//!
//! One struct serves the whole LLaMA family (LLaMA 1/2/3, SmolLM, Qwen2); the `arch` field says
//! which [`crate::arch`] implementation runs it.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::error::{ModelError, Result};

/// Architectures this build can run, by their Hugging Face class name.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["LlamaForCausalLM", "Qwen2ForCausalLM"];

/// Which decoder-layer implementation runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ArchKind {
    /// LLaMA family: RMSNorm, RoPE, GQA, SwiGLU (also SmolLM, Mistral-style without sliding window).
    Llama,
    /// Qwen2: LLaMA with bias on q/k/v.
    Qwen2,
}

/// LLaMA 3 RoPE frequency scaling (`rope_scaling.rope_type == "llama3"`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Llama3RopeScaling {
    /// Overall scaling factor.
    pub factor: f32,
    /// Wavelengths above `original_max_position_embeddings / low_freq_factor` are divided by `factor`.
    pub low_freq_factor: f32,
    /// Wavelengths below `original_max_position_embeddings / high_freq_factor` are kept.
    pub high_freq_factor: f32,
    /// Context length the model was pre-trained with.
    pub original_max_position_embeddings: usize,
}

/// Hyper-parameters of a LLaMA-family decoder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelConfig {
    /// Hugging Face architecture class name (e.g. `LlamaForCausalLM`).
    pub architecture: String,
    /// Implementation that runs it.
    pub arch: ArchKind,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads (grouped-query attention when smaller than `num_heads`).
    pub num_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f32,
    /// RoPE base.
    pub rope_theta: f32,
    /// Optional LLaMA 3 RoPE scaling.
    pub rope_scaling: Option<Llama3RopeScaling>,
    /// Longest context the model supports.
    pub max_position_embeddings: usize,
    /// Whether `lm_head` shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Beginning-of-sequence token id, if any.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token id, if any.
    pub eos_token_id: Option<u32>,
}

impl ModelConfig {
    /// Reads a Hugging Face `config.json`.
    ///
    /// # Errors
    /// I/O errors, invalid JSON, a missing or out-of-range field, or an unsupported architecture
    /// (each naming the file and field).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| ModelError::Config {
            path: path.to_path_buf(),
            field: "<json>".into(),
            reason: e.to_string(),
        })?;
        Self::from_json(&value, path)
    }

    /// Builds the config from a parsed `config.json`; `path` is only used in error messages.
    ///
    /// # Errors
    /// As [`ModelConfig::from_file`].
    pub fn from_json(v: &Value, path: &Path) -> Result<Self> {
        let f = Fields { v, path };
        let architecture = match v.get("architectures").and_then(|a| a.get(0)) {
            Some(Value::String(s)) => s.clone(),
            _ => match v.get("model_type").and_then(Value::as_str) {
                Some("llama") => "LlamaForCausalLM".to_string(),
                Some("qwen2") => "Qwen2ForCausalLM".to_string(),
                Some(other) => other.to_string(),
                None => return Err(f.err("architectures", "missing (and no 'model_type')")),
            },
        };
        let arch = match architecture.as_str() {
            "LlamaForCausalLM" => ArchKind::Llama,
            "Qwen2ForCausalLM" => ArchKind::Qwen2,
            _ => {
                return Err(ModelError::UnsupportedArchitecture {
                    path: path.to_path_buf(),
                    field: "architectures".into(),
                    name: architecture,
                    supported: SUPPORTED_ARCHITECTURES.join(", "),
                })
            }
        };
        let hidden_size = f.usize("hidden_size")?;
        let num_heads = f.usize("num_attention_heads")?;
        let num_kv_heads = f.opt_usize("num_key_value_heads")?.unwrap_or(num_heads);
        if num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(f.err(
                "num_key_value_heads",
                &format!("{num_kv_heads} does not divide num_attention_heads = {num_heads}"),
            ));
        }
        let head_dim = match f.opt_usize("head_dim")? {
            Some(d) => d,
            None => {
                if hidden_size % num_heads != 0 {
                    return Err(f.err(
                        "num_attention_heads",
                        &format!("{num_heads} does not divide hidden_size = {hidden_size}"),
                    ));
                }
                hidden_size / num_heads
            }
        };
        if head_dim % 2 != 0 {
            return Err(f.err(
                "head_dim",
                &format!("{head_dim} is odd; RoPE needs an even width"),
            ));
        }
        // transformers ≥ 5 writes `rope_parameters` {rope_type, rope_theta, ...}; older versions
        // write `rope_theta` and `rope_scaling`.
        let rope_params = v.get("rope_parameters").filter(|p| p.is_object());
        let scaling_value = match v.get("rope_scaling") {
            Some(rs) if !rs.is_null() => Some(rs),
            _ => rope_params,
        };
        let rope_scaling = match scaling_value {
            Some(rs) if !is_default_rope(rs) => Some(parse_rope_scaling(rs, path)?),
            _ => None,
        };
        let rope_theta = match f.opt_f32("rope_theta")? {
            Some(t) => Some(t),
            None => match rope_params {
                Some(p) => Fields { v: p, path }.opt_f32("rope_theta")?,
                None => None,
            },
        };
        let config = ModelConfig {
            architecture,
            arch,
            vocab_size: f.usize("vocab_size")?,
            hidden_size,
            intermediate_size: f.usize("intermediate_size")?,
            num_layers: f.usize("num_hidden_layers")?,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: f.opt_f32("rms_norm_eps")?.unwrap_or(1e-6),
            rope_theta: rope_theta.unwrap_or(10_000.0),
            rope_scaling,
            max_position_embeddings: f.opt_usize("max_position_embeddings")?.unwrap_or(2048),
            tie_word_embeddings: match v.get("tie_word_embeddings") {
                Some(Value::Bool(b)) => *b,
                // LlamaConfig and Qwen2Config both default to an untied head.
                None | Some(Value::Null) => false,
                Some(_) => return Err(f.err("tie_word_embeddings", "not a boolean")),
            },
            bos_token_id: f.opt_token_id("bos_token_id")?,
            eos_token_id: f.opt_token_id("eos_token_id")?,
        };
        if !config.rope_theta.is_finite() || config.rope_theta <= 0.0 {
            return Err(f.err("rope_theta", "must be a positive number"));
        }
        if !config.rms_norm_eps.is_finite() || config.rms_norm_eps < 0.0 {
            return Err(f.err("rms_norm_eps", "must be a non-negative number"));
        }
        Ok(config)
    }

    /// Parameters in the decoder layers' linear layers (attention + MLP), the ones pruning touches.
    pub fn linear_params_per_layer(&self) -> usize {
        let q = self.num_heads * self.head_dim;
        let kv = self.num_kv_heads * self.head_dim;
        self.hidden_size * (q + 2 * kv)
            + q * self.hidden_size
            + 3 * self.hidden_size * self.intermediate_size
    }
}

fn rope_type(rs: &Value) -> &str {
    rs.get("rope_type")
        .or_else(|| rs.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default")
}

fn is_default_rope(rs: &Value) -> bool {
    rope_type(rs) == "default"
}

fn parse_rope_scaling(rs: &Value, path: &Path) -> Result<Llama3RopeScaling> {
    let f = Fields { v: rs, path };
    let kind = rope_type(rs);
    if kind != "llama3" {
        return Err(f.err(
            "rope_scaling.rope_type",
            &format!("'{kind}' is not supported (supported: llama3)"),
        ));
    }
    Ok(Llama3RopeScaling {
        factor: f.f32("factor")?,
        low_freq_factor: f.f32("low_freq_factor")?,
        high_freq_factor: f.f32("high_freq_factor")?,
        original_max_position_embeddings: f.usize("original_max_position_embeddings")?,
    })
}

/// Typed field access with errors naming the file and field.
struct Fields<'a> {
    v: &'a Value,
    path: &'a Path,
}

impl Fields<'_> {
    fn err(&self, field: &str, reason: &str) -> ModelError {
        ModelError::Config {
            path: self.path.to_path_buf(),
            field: field.to_string(),
            reason: reason.to_string(),
        }
    }

    fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        match self.v.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(x) => match x.as_u64() {
                Some(n) if n > 0 && n <= (1 << 31) => Ok(Some(n as usize)),
                _ => Err(self.err(key, &format!("expected a positive integer, found {x}"))),
            },
        }
    }

    fn usize(&self, key: &str) -> Result<usize> {
        self.opt_usize(key)?.ok_or_else(|| self.err(key, "missing"))
    }

    fn opt_f32(&self, key: &str) -> Result<Option<f32>> {
        match self.v.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(x) => x
                .as_f64()
                .map(|n| Some(n as f32))
                .ok_or_else(|| self.err(key, &format!("expected a number, found {x}"))),
        }
    }

    fn f32(&self, key: &str) -> Result<f32> {
        self.opt_f32(key)?.ok_or_else(|| self.err(key, "missing"))
    }

    fn opt_token_id(&self, key: &str) -> Result<Option<u32>> {
        match self.v.get(key) {
            None | Some(Value::Null) => Ok(None),
            // Some configs list several end tokens; the first is the canonical one.
            Some(Value::Array(a)) => Ok(a.first().and_then(Value::as_u64).map(|n| n as u32)),
            Some(x) => x
                .as_u64()
                .filter(|n| *n <= u32::MAX as u64)
                .map(|n| Some(n as u32))
                .ok_or_else(|| self.err(key, &format!("expected a token id, found {x}"))),
        }
    }
}
