//! Model formats, tokenizers and the LLaMA-family forward pass of secateurs.
//!
//! - [`model::ModelFiles::open`] opens a Hugging Face directory or a GGUF file (memory-mapped);
//!   [`model::ModelFiles::load`] builds a [`model::CausalLm`].
//! - [`arch::Architecture`] / [`arch::DecoderLayer`] expose the model as embed → decoder layers →
//!   final norm → head, so a layer can run alone and its linear inputs can be observed.
//! - [`linear::Linear`] hides how a weight is stored.
//! - [`compressed`] reads and writes the sparse compressed checkpoint (`secateurs compress`).

pub mod arch;
pub mod attention;
pub mod compressed;
pub mod config;
pub mod error;
pub mod export;
pub mod gguf;
pub mod gguf_source;
#[cfg(target_arch = "x86_64")]
mod lanes;
pub mod linear;
pub mod model;
pub mod ops;
pub mod rope;
pub mod safetensors;
pub mod tokenizer;
pub mod vexp;
pub mod weights;

pub use error::{ModelError, Result};
