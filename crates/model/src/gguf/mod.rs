//! GGUF support: a memory-mapped reader for GGUF v2/v3 files, dequantization
//! of common ggml tensor types to `f32`, and a `tokenizers::Tokenizer`
//! built from the tokenizer metadata.
//!
//! The file format is specified in ggml's `docs/gguf.md`.

pub mod dequant;
pub mod error;
pub mod reader;
pub mod tokenizer;
pub mod types;

pub use dequant::{dequantize, DequantError};
pub use error::GgufError;
pub use reader::{GgufFile, GgufTensorInfo, DEFAULT_ALIGNMENT, MAX_DIMS};
pub use tokenizer::{tokenizer_from_gguf, GgufTokenizerInfo};
pub use types::{GgmlType, GgufArray, GgufValue};
