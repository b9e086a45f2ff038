//! Tokenizers: a Hugging Face `tokenizer.json` (with the chat template of
//! `tokenizer_config.json`), or one rebuilt from GGUF metadata.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokenizers::Tokenizer as HfTokenizer;

use crate::error::{ModelError, Result};

/// A tokenizer plus what generation needs to know about it.
pub struct Tokenizer {
    inner: HfTokenizer,
    source: PathBuf,
    /// Jinja chat template, if the model ships one.
    pub chat_template: Option<String>,
    /// End-of-sequence token id, if known.
    pub eos_id: Option<u32>,
    /// Beginning-of-sequence token id, if known.
    pub bos_id: Option<u32>,
}

impl Tokenizer {
    /// Wraps an already-built tokenizer.
    pub fn new(inner: HfTokenizer, source: PathBuf) -> Self {
        Tokenizer {
            inner,
            source,
            chat_template: None,
            eos_id: None,
            bos_id: None,
        }
    }

    /// Loads `dir/tokenizer.json` and, when present, the chat template and special tokens of
    /// `dir/tokenizer_config.json`.
    ///
    /// # Errors
    /// A missing or unparsable `tokenizer.json` (naming the file).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(ModelError::Tokenizer {
                path,
                reason: "file not found (the model directory must contain tokenizer.json)".into(),
            });
        }
        let inner = HfTokenizer::from_file(&path).map_err(|e| ModelError::Tokenizer {
            path: path.clone(),
            reason: first_line(&e.to_string()),
        })?;
        let mut tok = Tokenizer::new(inner, path);
        let cfg_path = dir.join("tokenizer_config.json");
        if let Ok(text) = std::fs::read_to_string(&cfg_path) {
            let v: Value = serde_json::from_str(&text).map_err(|e| ModelError::Tokenizer {
                path: cfg_path.clone(),
                reason: format!("invalid JSON: {e}"),
            })?;
            tok.chat_template = v
                .get("chat_template")
                .and_then(Value::as_str)
                .map(str::to_string);
            let special = |key: &str| {
                let s = match v.get(key) {
                    Some(Value::String(s)) => Some(s.as_str()),
                    Some(Value::Object(o)) => o.get("content").and_then(Value::as_str),
                    _ => None,
                };
                s.and_then(|s| tok.inner.token_to_id(s))
            };
            tok.eos_id = special("eos_token");
            tok.bos_id = special("bos_token");
        }
        Ok(tok)
    }

    /// Where the tokenizer came from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Token id of a literal token string, if it exists.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Encodes text; special tokens written literally (`<|im_start|>`) are recognized, and the
    /// tokenizer's post-processor (BOS) is applied.
    ///
    /// # Errors
    /// Tokenizer failures (rare: e.g. a pathological regex input).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.inner
            .encode(text, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ModelError::Tokenizer {
                path: self.source.clone(),
                reason: first_line(&e.to_string()),
            })
    }

    /// Decodes ids to text, keeping special tokens.
    ///
    /// # Errors
    /// An id outside the vocabulary.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| ModelError::Tokenizer {
                path: self.source.clone(),
                reason: first_line(&e.to_string()),
            })
    }

    /// Writes `tokenizer.json` and `tokenizer_config.json` (chat template and special tokens) into
    /// `dir`, so that Hugging Face libraries and [`Tokenizer::from_dir`] load the same tokenizer.
    ///
    /// # Errors
    /// I/O or serialization failures naming the file.
    pub fn save_to_dir(&self, dir: &Path) -> Result<()> {
        let path = dir.join("tokenizer.json");
        self.inner
            .save(&path, false)
            .map_err(|e| ModelError::Tokenizer {
                path: path.clone(),
                reason: first_line(&e.to_string()),
            })?;
        let name = |id: Option<u32>| id.and_then(|i| self.inner.id_to_token(i));
        let mut cfg = serde_json::json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "clean_up_tokenization_spaces": false,
        });
        if let Some(t) = name(self.eos_id) {
            cfg["eos_token"] = t.into();
        }
        if let Some(t) = name(self.bos_id) {
            cfg["bos_token"] = t.into();
        }
        if let Some(t) = &self.chat_template {
            cfg["chat_template"] = t.clone().into();
        }
        let cfg_path = dir.join("tokenizer_config.json");
        std::fs::write(
            &cfg_path,
            serde_json::to_string_pretty(&cfg).unwrap_or_default(),
        )
        .map_err(|source| ModelError::Io {
            path: cfg_path.clone(),
            source,
        })
    }

    /// Renders the chat template for one user message, ready for generation.
    ///
    /// # Errors
    /// No chat template, or a template that fails to render.
    pub fn apply_chat_template(&self, user_message: &str) -> Result<String> {
        let template = self
            .chat_template
            .as_deref()
            .ok_or_else(|| ModelError::Tokenizer {
                path: self.source.clone(),
                reason: "the model has no chat template; run without --chat".into(),
            })?;
        let mut env = minijinja::Environment::new();
        env.add_template("chat", template)
            .map_err(|e| ModelError::Tokenizer {
                path: self.source.clone(),
                reason: format!("chat template: {e}"),
            })?;
        let tmpl = env
            .get_template("chat")
            .map_err(|e| ModelError::Tokenizer {
                path: self.source.clone(),
                reason: format!("chat template: {e}"),
            })?;
        let eos = self
            .eos_id
            .and_then(|i| self.inner.id_to_token(i))
            .unwrap_or_default();
        let bos = self
            .bos_id
            .and_then(|i| self.inner.id_to_token(i))
            .unwrap_or_default();
        tmpl.render(minijinja::context! {
            messages => vec![minijinja::context! { role => "user", content => user_message }],
            add_generation_prompt => true,
            eos_token => eos,
            bos_token => bos,
        })
        .map_err(|e| ModelError::Tokenizer {
            path: self.source.clone(),
            reason: format!("chat template: {e}"),
        })
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}
