//! A GGUF file seen as a [`WeightSource`] with Hugging Face tensor names and a [`ModelConfig`]
//! built from its metadata.
//!
//! llama.cpp's converter (`convert_hf_to_gguf.py`, `LlamaModel.permute`) reorders the rows of
//! every LLaMA q/k projection so that each head's two rotary halves are interleaved (its RoPE
//! rotates adjacent pairs). We undo that here: within each head of width d, GGUF row `2i + s`
//! is Hugging Face row `s·d/2 + i` (s ∈ {0, 1}, i < d/2). Qwen2 files use the "NeoX" rotary
//! layout and are not permuted.

use std::path::{Path, PathBuf};

use crate::config::{ArchKind, ModelConfig};
use crate::error::{ModelError, Result};
use crate::gguf::{tokenizer_from_gguf, GgufFile, GgufTokenizerInfo};
use crate::tokenizer::Tokenizer;
use crate::weights::{TensorF32, WeightSource};

/// Hugging Face name → GGUF name for the per-layer tensors.
const LAYER_NAMES: &[(&str, &str)] = &[
    ("input_layernorm.weight", "attn_norm.weight"),
    ("post_attention_layernorm.weight", "ffn_norm.weight"),
    ("self_attn.q_proj.weight", "attn_q.weight"),
    ("self_attn.q_proj.bias", "attn_q.bias"),
    ("self_attn.k_proj.weight", "attn_k.weight"),
    ("self_attn.k_proj.bias", "attn_k.bias"),
    ("self_attn.v_proj.weight", "attn_v.weight"),
    ("self_attn.v_proj.bias", "attn_v.bias"),
    ("self_attn.o_proj.weight", "attn_output.weight"),
    ("self_attn.o_proj.bias", "attn_output.bias"),
    ("mlp.gate_proj.weight", "ffn_gate.weight"),
    ("mlp.up_proj.weight", "ffn_up.weight"),
    ("mlp.down_proj.weight", "ffn_down.weight"),
];

/// Model-level tensors.
const GLOBAL_NAMES: &[(&str, &str)] = &[
    ("model.embed_tokens.weight", "token_embd.weight"),
    ("model.norm.weight", "output_norm.weight"),
    ("lm_head.weight", "output.weight"),
];

/// A GGUF model file.
pub struct GgufSource {
    file: GgufFile,
    arch_name: String,
}

impl GgufSource {
    /// Opens and validates a GGUF file.
    ///
    /// # Errors
    /// Any GGUF parse error (naming the file and field).
    pub fn open(path: &Path) -> Result<Self> {
        let file = GgufFile::open(path)?;
        let arch_name = file.architecture()?.to_string();
        Ok(GgufSource { file, arch_name })
    }

    /// The underlying file.
    pub fn file(&self) -> &GgufFile {
        &self.file
    }

    fn path(&self) -> PathBuf {
        self.file.path().to_path_buf()
    }

    /// Hyper-parameters from the `{arch}.*` metadata keys.
    ///
    /// # Errors
    /// An unsupported `general.architecture`, or a missing or invalid key (naming it).
    pub fn config(&self) -> Result<ModelConfig> {
        let a = self.arch_name.as_str();
        let arch = match a {
            "llama" => ArchKind::Llama,
            "qwen2" => ArchKind::Qwen2,
            other => {
                return Err(ModelError::UnsupportedArchitecture {
                    path: self.path(),
                    field: "general.architecture".into(),
                    name: other.to_string(),
                    supported: "llama, qwen2".into(),
                })
            }
        };
        if self.file.tensor_info("rope_freqs.weight").is_some() {
            return Err(ModelError::Tensor {
                path: self.path(),
                tensor: "rope_freqs.weight".into(),
                reason: "RoPE frequency factors (LLaMA 3.1 GGUF) are not supported yet; use the Hugging Face checkpoint".into(),
            });
        }
        let f = &self.file;
        let key = |k: &str| format!("{a}.{k}");
        let u = |k: &str| -> Result<usize> { Ok(f.get_u32(&key(k))? as usize) };
        let hidden_size = u("embedding_length")?;
        let num_heads = u("attention.head_count")?;
        let num_kv_heads = f
            .get_u32_opt(&key("attention.head_count_kv"))?
            .map_or(num_heads, |x| x as usize);
        let bad = |field: &str, reason: String| ModelError::Config {
            path: self.path(),
            field: field.to_string(),
            reason,
        };
        if num_heads == 0 || hidden_size % num_heads != 0 {
            return Err(bad(
                &key("attention.head_count"),
                format!("{num_heads} does not divide embedding_length {hidden_size}"),
            ));
        }
        if num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(bad(
                &key("attention.head_count_kv"),
                format!("{num_kv_heads} does not divide head_count {num_heads}"),
            ));
        }
        let head_dim = match f.get_u32_opt(&key("attention.key_length"))? {
            Some(d) => d as usize,
            None => hidden_size / num_heads,
        };
        if head_dim % 2 != 0 {
            return Err(bad(
                &key("attention.key_length"),
                format!("{head_dim} is odd"),
            ));
        }
        let embd = f
            .tensor_info("token_embd.weight")
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.path(),
                tensor: "token_embd.weight".into(),
            })?;
        let vocab_size = embd.shape().first().copied().unwrap_or(0);
        let tok_id = |k: &str| -> Result<Option<u32>> { Ok(f.get_u32_opt(k)?) };
        Ok(ModelConfig {
            architecture: match arch {
                ArchKind::Llama => "LlamaForCausalLM".into(),
                ArchKind::Qwen2 => "Qwen2ForCausalLM".into(),
            },
            arch,
            vocab_size,
            hidden_size,
            intermediate_size: u("feed_forward_length")?,
            num_layers: u("block_count")?,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: f
                .get_f32_opt(&key("attention.layer_norm_rms_epsilon"))?
                .unwrap_or(1e-6),
            rope_theta: f.get_f32_opt(&key("rope.freq_base"))?.unwrap_or(10_000.0),
            rope_scaling: None,
            max_position_embeddings: f
                .get_u32_opt(&key("context_length"))?
                .map_or(2048, |x| x as usize),
            tie_word_embeddings: f.tensor_info("output.weight").is_none(),
            bos_token_id: tok_id("tokenizer.ggml.bos_token_id")?,
            eos_token_id: tok_id("tokenizer.ggml.eos_token_id")?,
        })
    }

    /// The tokenizer rebuilt from `tokenizer.ggml.*`.
    ///
    /// # Errors
    /// Missing or unsupported tokenizer metadata.
    pub fn tokenizer(&self) -> Result<Tokenizer> {
        let inner = tokenizer_from_gguf(&self.file)?;
        let info = GgufTokenizerInfo::from_gguf(&self.file)?;
        let mut tok = Tokenizer::new(inner, self.path());
        tok.chat_template = info.chat_template;
        tok.eos_id = info.eos_id;
        tok.bos_id = info.bos_id;
        Ok(tok)
    }

    /// GGUF name of a Hugging Face tensor name.
    fn gguf_name(hf: &str) -> Option<String> {
        if let Some((_, g)) = GLOBAL_NAMES.iter().find(|(h, _)| *h == hf) {
            return Some((*g).to_string());
        }
        let rest = hf.strip_prefix("model.layers.")?;
        let (idx, tail) = rest.split_once('.')?;
        let i: usize = idx.parse().ok()?;
        let (_, g) = LAYER_NAMES.iter().find(|(h, _)| *h == tail)?;
        Some(format!("blk.{i}.{g}"))
    }

    /// Hugging Face name of a GGUF tensor name.
    fn hf_name(gguf: &str) -> Option<String> {
        if let Some((h, _)) = GLOBAL_NAMES.iter().find(|(_, g)| *g == gguf) {
            return Some((*h).to_string());
        }
        let rest = gguf.strip_prefix("blk.")?;
        let (idx, tail) = rest.split_once('.')?;
        let i: usize = idx.parse().ok()?;
        let (h, _) = LAYER_NAMES.iter().find(|(_, g)| *g == tail)?;
        Some(format!("model.layers.{i}.{h}"))
    }

    /// Heads whose rows llama.cpp interleaved for this tensor, if any.
    fn permuted_heads(&self, hf: &str) -> Result<Option<usize>> {
        if self.arch_name != "llama" {
            return Ok(None);
        }
        let a = &self.arch_name;
        if hf.contains(".self_attn.q_proj.") {
            return Ok(Some(
                self.file.get_u32(&format!("{a}.attention.head_count"))? as usize,
            ));
        }
        if hf.contains(".self_attn.k_proj.") {
            let heads = match self
                .file
                .get_u32_opt(&format!("{a}.attention.head_count_kv"))?
            {
                Some(h) => h,
                None => self.file.get_u32(&format!("{a}.attention.head_count"))?,
            };
            return Ok(Some(heads as usize));
        }
        Ok(None)
    }
}

/// Undoes llama.cpp's q/k row interleaving: `rows` rows of `cols` values, `heads` heads.
///
/// Returns `None` when the rows do not split into heads of even width.
pub fn unpermute_rows(data: &[f32], rows: usize, cols: usize, heads: usize) -> Option<Vec<f32>> {
    if heads == 0
        || !rows.is_multiple_of(heads)
        || !(rows / heads).is_multiple_of(2)
        || data.len() != rows * cols
    {
        return None;
    }
    let hd = rows / heads;
    let half = hd / 2;
    let mut out = vec![0.0f32; data.len()];
    for h in 0..heads {
        for i in 0..half {
            for s in 0..2 {
                let src = h * hd + 2 * i + s;
                let dst = h * hd + s * half + i;
                out[dst * cols..(dst + 1) * cols]
                    .copy_from_slice(&data[src * cols..(src + 1) * cols]);
            }
        }
    }
    Some(out)
}

impl WeightSource for GgufSource {
    fn label(&self) -> &Path {
        self.file.path()
    }

    fn contains(&self, name: &str) -> bool {
        Self::gguf_name(name).is_some_and(|g| self.file.tensor_info(&g).is_some())
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .file
            .tensors()
            .iter()
            .filter_map(|t| Self::hf_name(&t.name))
            .collect();
        v.sort();
        v
    }

    fn storage_dtype(&self, name: &str) -> Option<String> {
        let g = Self::gguf_name(name)?;
        self.file
            .tensor_info(&g)
            .map(|t| t.ggml_type.name().to_string())
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let g = Self::gguf_name(name)?;
        self.file.tensor_info(&g).map(|t| t.shape())
    }

    fn load(&self, name: &str) -> Result<TensorF32> {
        let g = Self::gguf_name(name).ok_or_else(|| ModelError::MissingTensor {
            path: self.path(),
            tensor: name.to_string(),
        })?;
        let info = self
            .file
            .tensor_info(&g)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.path(),
                tensor: format!("{g} (for {name})"),
            })?;
        let shape = info.shape();
        let mut data = self.file.tensor_f32(&g)?;
        if let Some(heads) = self.permuted_heads(name)? {
            let rows = shape.first().copied().unwrap_or(0);
            let cols = if shape.len() > 1 {
                shape[1..].iter().product()
            } else {
                1
            };
            data = unpermute_rows(&data, rows, cols, heads).ok_or_else(|| ModelError::Tensor {
                path: self.path(),
                tensor: g.clone(),
                reason: format!("{rows} rows do not split into {heads} heads of even width"),
            })?;
        }
        Ok(TensorF32 { shape, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// llama.cpp's permutation, written independently from its description:
    /// reshape (heads, 2, hd/2, cols) → swap axes 1 and 2 → (heads, hd/2, 2, cols).
    fn permute(data: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
        let hd = rows / heads;
        let half = hd / 2;
        let mut out = vec![0.0; data.len()];
        for h in 0..heads {
            for s in 0..2 {
                for i in 0..half {
                    let src = h * hd + s * half + i;
                    let dst = h * hd + i * 2 + s;
                    out[dst * cols..(dst + 1) * cols]
                        .copy_from_slice(&data[src * cols..(src + 1) * cols]);
                }
            }
        }
        out
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permutation() {
        let (rows, cols, heads) = (24, 3, 3);
        let data: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let p = permute(&data, rows, cols, heads);
        assert_ne!(p, data);
        assert_eq!(unpermute_rows(&p, rows, cols, heads).unwrap(), data);
        assert!(unpermute_rows(&p, rows, cols, 5).is_none());
    }

    #[test]
    fn names_map_both_ways() {
        for hf in [
            "model.layers.7.self_attn.k_proj.weight",
            "model.embed_tokens.weight",
            "lm_head.weight",
        ] {
            let g = GgufSource::gguf_name(hf).unwrap();
            assert_eq!(GgufSource::hf_name(&g).unwrap(), hf);
        }
        assert!(GgufSource::gguf_name("model.layers.x.mlp.up_proj.weight").is_none());
    }
}
