//! Errors produced while reading GGUF files (see ggml's `docs/gguf.md` for
//! the format).
//!
//! Every variant's `Display` is a single line that starts with the path of
//! the offending file and names the field, metadata key or tensor involved,
//! so a message can be shown to a user as-is.

use std::path::PathBuf;

/// An error while opening, parsing or decoding a GGUF file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    /// The file could not be opened or memory-mapped.
    #[error("{}: cannot read file: {source}", file.display())]
    Io {
        /// Path of the file.
        file: PathBuf,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The file does not start with the `GGUF` magic bytes.
    #[error("{}: not a GGUF file (magic bytes are {found:02x?}, expected \"GGUF\")", file.display())]
    BadMagic {
        /// Path of the file.
        file: PathBuf,
        /// The first four bytes of the file.
        found: [u8; 4],
    },

    /// The GGUF version is not 2 or 3.
    #[error("{}: unsupported GGUF version {version} (only versions 2 and 3 are supported)", file.display())]
    UnsupportedVersion {
        /// Path of the file.
        file: PathBuf,
        /// The version number found in the header.
        version: u32,
    },

    /// The file ended before a header field could be read completely.
    #[error(
        "{}: truncated file: {field} needs {needed} bytes at offset {offset} but the file is {file_size} bytes",
        file.display(), field = one_line(field))]
    Truncated {
        /// Path of the file.
        file: PathBuf,
        /// Description of the field being read.
        field: String,
        /// Byte offset at which the field starts.
        offset: u64,
        /// Number of bytes the field needs.
        needed: u64,
        /// Size of the file in bytes.
        file_size: u64,
    },

    /// A header field holds a value that is not allowed by the format.
    #[error("{}: invalid {field}: {reason}", file.display(), field = one_line(field), reason = one_line(reason))]
    Invalid {
        /// Path of the file.
        file: PathBuf,
        /// Description of the field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A metadata value has a type id that is not defined by the format.
    #[error("{}: {field}: unknown metadata value type id {type_id}", file.display(), field = one_line(field))]
    UnknownValueType {
        /// Path of the file.
        file: PathBuf,
        /// Description of the field (includes the key).
        field: String,
        /// The type id found.
        type_id: u32,
    },

    /// A tensor has a ggml type id that is not known.
    #[error("{}: tensor '{tensor}': unknown ggml tensor type id {type_id}", file.display(), tensor = one_line(tensor))]
    UnknownTensorType {
        /// Path of the file.
        file: PathBuf,
        /// Tensor name.
        tensor: String,
        /// The type id found.
        type_id: u32,
    },

    /// A tensor's ggml type is known but cannot be dequantized by this crate.
    #[error(
        "{}: tensor '{tensor}': tensor type {type_name} is not supported for dequantization",
        file.display(), tensor = one_line(tensor), type_name = one_line(type_name))]
    UnsupportedTensorType {
        /// Path of the file.
        file: PathBuf,
        /// Tensor name.
        tensor: String,
        /// Name of the ggml type (e.g. `Q5_K`).
        type_name: String,
    },

    /// A tensor's data lies (partly) outside the file.
    #[error(
        "{}: tensor '{tensor}': data range {start}..{end} exceeds file size {file_size}",
        file.display(), tensor = one_line(tensor))]
    TensorDataOutOfBounds {
        /// Path of the file.
        file: PathBuf,
        /// Tensor name.
        tensor: String,
        /// Absolute start offset of the data.
        start: u64,
        /// Absolute end offset (exclusive) of the data.
        end: u64,
        /// Size of the file in bytes.
        file_size: u64,
    },

    /// The same metadata key or tensor name occurs twice.
    #[error("{}: duplicate {what} '{name}'", file.display(), name = one_line(name))]
    Duplicate {
        /// Path of the file.
        file: PathBuf,
        /// `"metadata key"` or `"tensor name"`.
        what: &'static str,
        /// The duplicated name.
        name: String,
    },

    /// A required metadata key is absent.
    #[error("{}: missing metadata key '{key}'", file.display(), key = one_line(key))]
    MissingKey {
        /// Path of the file.
        file: PathBuf,
        /// The key that was looked up.
        key: String,
    },

    /// A metadata key holds a value of another type than requested.
    #[error("{}: metadata key '{key}' has type {found}, expected {expected}", file.display(), key = one_line(key), found = one_line(found))]
    WrongType {
        /// Path of the file.
        file: PathBuf,
        /// The key that was looked up.
        key: String,
        /// The requested type.
        expected: &'static str,
        /// The type stored in the file.
        found: String,
    },

    /// No tensor with the requested name exists.
    #[error("{}: no tensor named '{tensor}'", file.display(), tensor = one_line(tensor))]
    TensorNotFound {
        /// Path of the file.
        file: PathBuf,
        /// The requested tensor name.
        tensor: String,
    },

    /// The tokenizer described by the metadata is not supported.
    #[error("{}: unsupported tokenizer: {what}", file.display(), what = one_line(what))]
    UnsupportedTokenizer {
        /// Path of the file.
        file: PathBuf,
        /// What is unsupported (e.g. `tokenizer.ggml.pre = 'qwen2'`).
        what: String,
    },

    /// The tokenizer metadata is inconsistent or the tokenizer could not be built.
    #[error("{}: cannot build tokenizer: {message}", file.display(), message = one_line(message))]
    Tokenizer {
        /// Path of the file.
        file: PathBuf,
        /// Description of the problem.
        message: String,
    },
}

/// A name or message read from the file, on one line: control characters (a corrupted name may
/// hold a newline) are written as escapes, everything else as is.
fn one_line(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}
