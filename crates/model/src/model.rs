//! Loading a causal LM from a path (Hugging Face directory, `.safetensors` file or `.gguf` file)
//! and running it: full-sequence forward for perplexity and greedy generation with a KV cache.

use std::path::{Path, PathBuf};

use crate::arch::llama::LlamaModel;
use crate::arch::{Architecture, LayerKvCache, LinearKind, NoObserver};
use crate::config::{ArchKind, ModelConfig};
use crate::error::{ModelError, Result};
use crate::gguf_source::GgufSource;
use crate::ops::Matrix;
use crate::safetensors::SafetensorsSource;
use crate::tokenizer::Tokenizer;
use crate::weights::WeightSource;
use secateurs_sparse::kernels::team;

/// The on-disk format a model was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelFormat {
    /// Hugging Face directory (`config.json` + safetensors + `tokenizer.json`).
    HfDir,
    /// A single GGUF file (llama.cpp).
    Gguf,
    /// A compressed sparse checkpoint directory (`secateurs compress`, docs/compressed.md).
    Compressed,
}

/// A model's config, weights and (if found) tokenizer, opened but not yet loaded into memory.
pub struct ModelFiles {
    /// What the user named.
    pub path: PathBuf,
    /// Its format.
    pub format: ModelFormat,
    /// Hyper-parameters.
    pub config: ModelConfig,
    /// Named tensors (memory-mapped).
    pub weights: Box<dyn WeightSource>,
    /// The tokenizer, or why there is none.
    pub tokenizer: Result<Tokenizer>,
}

impl ModelFiles {
    /// Opens a model: a directory with `config.json` (Hugging Face or compressed checkpoint), or
    /// a `.gguf` file. Tensors are memory-mapped, not read.
    ///
    /// # Errors
    /// A path that is none of these, an invalid config or unsupported architecture, or a
    /// malformed weight file (each naming the file and field). A missing tokenizer is not an
    /// error here: it is reported by [`ModelFiles::tokenizer`] to the commands that need one.
    pub fn open(path: &Path) -> Result<Self> {
        if path.is_dir() {
            let cfg_path = path.join("config.json");
            if !cfg_path.is_file() {
                return Err(ModelError::NotAModel {
                    path: path.to_path_buf(),
                    reason: "directory has no config.json".into(),
                });
            }
            let config = ModelConfig::from_file(&cfg_path)?;
            let tokenizer = Tokenizer::from_dir(path);
            // A compressed checkpoint (`secateurs compress`) is a safetensors file too, marked in
            // its `__metadata__`; its linear weights load in their stored sparse format.
            let (format, weights): (ModelFormat, Box<dyn WeightSource>) =
                if crate::compressed::is_compressed_dir(path) {
                    (
                        ModelFormat::Compressed,
                        Box::new(crate::compressed::CompressedSource::open_dir(path)?),
                    )
                } else {
                    (
                        ModelFormat::HfDir,
                        Box::new(SafetensorsSource::open_dir(path)?),
                    )
                };
            return Ok(ModelFiles {
                path: path.to_path_buf(),
                format,
                config,
                weights,
                tokenizer,
            });
        }
        if !path.exists() {
            return Err(ModelError::NotAModel {
                path: path.to_path_buf(),
                reason: "no such file or directory".into(),
            });
        }
        if is_gguf(path)? {
            let src = GgufSource::open(path)?;
            let config = src.config()?;
            let tokenizer = src.tokenizer();
            return Ok(ModelFiles {
                path: path.to_path_buf(),
                format: ModelFormat::Gguf,
                config,
                weights: Box::new(src),
                tokenizer,
            });
        }
        Err(ModelError::NotAModel {
            path: path.to_path_buf(),
            reason: "expected a Hugging Face model directory or a .gguf file".into(),
        })
    }

    /// The tokenizer, or the error explaining why there is none.
    ///
    /// # Errors
    /// The model has no (loadable) tokenizer.
    pub fn tokenizer(&self) -> Result<&Tokenizer> {
        match &self.tokenizer {
            Ok(t) => Ok(t),
            // The stored error cannot be moved out; rebuild it, keeping the file it names.
            Err(ModelError::Tokenizer { path, reason }) => Err(ModelError::Tokenizer {
                path: path.clone(),
                reason: reason.clone(),
            }),
            Err(e) => Err(ModelError::Tokenizer {
                path: self.path.clone(),
                reason: e.to_string(),
            }),
        }
    }

    /// Reads every tensor into memory and builds the architecture. `progress(i)` is called after
    /// decoder layer `i`.
    ///
    /// # Errors
    /// Missing tensors, wrong shapes or non-finite values (naming the tensor).
    pub fn load(&self, progress: &mut dyn FnMut(usize)) -> Result<CausalLm> {
        let arch: Box<dyn Architecture> = match self.config.arch {
            ArchKind::Llama | ArchKind::Qwen2 => Box::new(LlamaModel::load(
                self.config.clone(),
                self.weights.as_ref(),
                progress,
            )?),
        };
        Ok(CausalLm { arch })
    }
}

fn is_gguf(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut magic = [0u8; 4];
    Ok(f.read_exact(&mut magic).is_ok() && &magic == b"GGUF")
}

/// A loaded causal language model.
pub struct CausalLm {
    /// The architecture holding the weights.
    pub arch: Box<dyn Architecture>,
}

impl CausalLm {
    /// Hyper-parameters.
    pub fn config(&self) -> &ModelConfig {
        self.arch.config()
    }

    /// Runs all decoder layers and the final norm on `tokens` (positions `start..`), returning
    /// `(tokens.len(), hidden)` normalized hidden states.
    ///
    /// # Errors
    /// Token ids outside the vocabulary, too long an input, or a cache of the wrong length.
    pub fn forward_hidden(
        &self,
        tokens: &[u32],
        start: usize,
        mut cache: Option<&mut [LayerKvCache]>,
    ) -> Result<Matrix> {
        if tokens.is_empty() {
            return Err(ModelError::Input("empty input: no tokens to run".into()));
        }
        let mut x = self.arch.embed(tokens, start)?; // (seq, hidden)
        for (i, layer) in self.arch.layers().iter().enumerate() {
            let c = cache.as_deref_mut().map(|c| &mut c[i]);
            x = layer.forward(&x, start, c, &mut NoObserver)?;
        }
        Ok(self.arch.final_norm(&x))
    }

    /// Logits `(tokens.len(), vocab)` of a whole sequence starting at position 0.
    ///
    /// # Errors
    /// As [`CausalLm::forward_hidden`].
    pub fn logits(&self, tokens: &[u32]) -> Result<Matrix> {
        let h = self.forward_hidden(tokens, 0, None)?;
        Ok(self.arch.head().forward(&h))
    }

    /// Re-stores every decoder linear layer in `format` (`None`: per matrix, the format with the
    /// fewest bytes for its sparsity pattern) with values of `dtype`; the head is re-stored
    /// dense in `dtype` (it is never sparse). Returns the bytes a decode step reads for weights
    /// before and after.
    ///
    /// # Errors
    /// A matrix that does not fit the requested format, naming it.
    pub fn repack(
        &mut self,
        format: Option<secateurs_sparse::Format>,
        dtype: secateurs_sparse::ValueDtype,
    ) -> Result<(usize, usize)> {
        let before = self.weight_bytes();
        for (i, layer) in self.arch.layers_mut().iter_mut().enumerate() {
            for kind in LinearKind::ALL {
                let name = format!("model.layers.{i}.{}.weight", layer.linear_name(kind));
                if let Some(lin) = layer.linear_mut(kind) {
                    lin.repack(format, dtype)
                        .map_err(|e| ModelError::Input(format!("{name}: {e}")))?;
                }
            }
        }
        self.arch
            .head_mut()
            .repack(Some(secateurs_sparse::Format::Dense), dtype)
            .map_err(|e| ModelError::Input(format!("lm_head.weight: {e}")))?;
        Ok((before, self.weight_bytes()))
    }

    /// Bytes of weights one decode step reads: every linear layer (stored entries, indices and
    /// masks) plus the head; the embedding contributes one row and is not counted.
    pub fn weight_bytes(&self) -> usize {
        let layers: usize = self
            .arch
            .layers()
            .iter()
            .flat_map(|l| l.linears())
            .map(|(_, lin)| lin.weight_bytes())
            .sum();
        layers + self.arch.head().weight_bytes()
    }

    /// A fresh, empty KV cache for every layer.
    pub fn new_cache(&self) -> Vec<LayerKvCache> {
        vec![LayerKvCache::default(); self.arch.layers().len()]
    }

    /// Greedy decoding: feeds `prompt`, then repeatedly appends the arg-max token, up to
    /// `max_new` tokens or until a token in `stop` (included in the output). `on_token` sees each
    /// new token as it is produced.
    ///
    /// # Errors
    /// An empty prompt, token ids outside the vocabulary, or a prompt plus `max_new` longer than
    /// the model's context.
    pub fn generate_greedy(
        &self,
        prompt: &[u32],
        max_new: usize,
        stop: &[u32],
        on_token: &mut dyn FnMut(u32),
    ) -> Result<Vec<u32>> {
        let mut cache = self.new_cache();
        let mut out = Vec::with_capacity(max_new);
        let mut pos = 0;
        let mut input: Vec<u32> = prompt.to_vec();
        for _ in 0..max_new {
            // One-token steps run on a pool worker that leads the other workers as a spinning
            // team (`kernels::team`): each of the ~200 small GEMVs of a step starts on every
            // thread at once instead of waking sleeping workers through rayon.
            let mut step = || -> Result<Matrix> {
                let h = self.forward_hidden(&input, pos, Some(&mut cache))?;
                let last = h.slice_rows(h.rows - 1, h.rows); // (1, hidden)
                Ok(self.arch.head().forward(&last)) // (1, vocab)
            };
            let logits = if input.len() == 1 {
                team::run(step)?
            } else {
                step()?
            };
            pos += input.len();
            let next = argmax(&logits.data);
            out.push(next);
            on_token(next);
            if stop.contains(&next) {
                break;
            }
            input = vec![next];
        }
        Ok(out)
    }
}

/// Index of the largest value (first one on ties, as `torch.argmax`).
pub fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}
