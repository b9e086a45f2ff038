//! Writing a model back out as a Hugging Face directory: `config.json`, `model.safetensors`
//! (f32, pruned weights stored as exact zeros) and the tokenizer files. The caller chooses the
//! directory; `secateurs prune` writes into a temporary one and renames it into place.
//!
//! [`write_safetensors`] writes tensors of any safetensors dtype from their exact bytes (the
//! compressed checkpoint and `secateurs decompress` use it); [`encode_exact`] turns f32 values
//! into f32/f16/bf16 bytes only when no bit changes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use secateurs_sparse::ValueDtype;

use crate::arch::NamedTensor;
use crate::error::{ModelError, Result};
use crate::model::CausalLm;
use crate::tokenizer::Tokenizer;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A tensor as little-endian bytes of any safetensors dtype (`F32`, `BF16`, `U8`, `U64`, ...).
#[derive(Debug, Clone)]
pub struct RawTensor<'a> {
    /// Tensor name.
    pub name: String,
    /// Safetensors dtype name; its size (see [`crate::safetensors::dtype_size`]) times the
    /// number of elements of `shape` must equal `data.len()`.
    pub dtype: String,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// The bytes.
    pub data: Cow<'a, [u8]>,
}

/// The header JSON of tensors laid out contiguously in the given order, `metadata` in
/// `__metadata__` (omitted when empty), padded with spaces so that the data starts at a multiple
/// of 8 bytes, as the format recommends.
fn header_text<'a>(
    entries: impl Iterator<Item = (&'a str, &'a str, &'a [usize], usize)>,
    metadata: &BTreeMap<String, String>,
) -> Result<String> {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        header.insert(
            "__metadata__".into(),
            serde_json::to_value(metadata).unwrap_or_default(),
        );
    }
    let mut offset = 0usize;
    for (name, dtype, shape, bytes) in entries {
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut text = serde_json::to_string(&header).map_err(|e| ModelError::Input(e.to_string()))?;
    while (8 + text.len()) % 8 != 0 {
        text.push(' ');
    }
    Ok(text)
}

/// Writes the 8-byte length, `header` exactly as given, then each chunk produced by `data`, and
/// syncs the file.
fn write_file(
    path: &Path,
    header: &str,
    data: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let file = File::create(path).map_err(io_err(path))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(&(header.len() as u64).to_le_bytes())
        .map_err(io_err(path))?;
    w.write_all(header.as_bytes()).map_err(io_err(path))?;
    data(&mut w).map_err(io_err(path))?;
    w.flush().map_err(io_err(path))?;
    w.into_inner()
        .map_err(|e| ModelError::Io {
            path: path.to_path_buf(),
            source: e.into_error(),
        })?
        .sync_all()
        .map_err(io_err(path))
}

/// Writes `tensors` as a safetensors file of f32 values, with `metadata` in the header's
/// `__metadata__`. The header is padded with spaces to a multiple of 8 bytes, as the format
/// recommends, so the data is aligned.
///
/// # Errors
/// I/O errors naming `path`.
pub fn write_safetensors_f32(
    path: &Path,
    tensors: &[NamedTensor<'_>],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let text = header_text(
        tensors
            .iter()
            .map(|t| (t.name.as_str(), "F32", t.shape.as_slice(), t.data.len() * 4)),
        metadata,
    )?;
    write_file(path, &text, &mut |w| {
        let mut buf = Vec::with_capacity(1 << 16);
        for t in tensors {
            for chunk in t.data.chunks(1 << 14) {
                buf.clear();
                for v in chunk {
                    buf.extend_from_slice(&v.to_le_bytes());
                }
                w.write_all(&buf)?;
            }
        }
        Ok(())
    })
}

/// Writes tensors of any dtypes as one safetensors file, contiguous in the given order, with
/// `metadata` in `__metadata__`. The caller orders tensors by decreasing element size when it
/// wants every tensor aligned to its element size (the header is padded to 8 bytes).
///
/// # Errors
/// A tensor whose byte count disagrees with its dtype and shape, or an unknown dtype (naming
/// the tensor), and I/O errors naming `path`.
pub fn write_safetensors(
    path: &Path,
    tensors: &[RawTensor<'_>],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    for t in tensors {
        let size = crate::safetensors::dtype_size(&t.dtype).ok_or_else(|| ModelError::Tensor {
            path: path.to_path_buf(),
            tensor: t.name.clone(),
            reason: format!("'{}' is not a safetensors dtype", t.dtype),
        })?;
        let numel = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if numel.and_then(|n| n.checked_mul(size)) != Some(t.data.len()) {
            return Err(ModelError::Tensor {
                path: path.to_path_buf(),
                tensor: t.name.clone(),
                reason: format!(
                    "{} bytes do not hold shape {:?} of {}",
                    t.data.len(),
                    t.shape,
                    t.dtype
                ),
            });
        }
    }
    let text = header_text(
        tensors.iter().map(|t| {
            (
                t.name.as_str(),
                t.dtype.as_str(),
                t.shape.as_slice(),
                t.data.len(),
            )
        }),
        metadata,
    )?;
    write_file(path, &text, &mut |w| {
        for t in tensors {
            w.write_all(&t.data)?;
        }
        Ok(())
    })
}

/// Writes a safetensors file whose header JSON is `header` exactly (a header read from another
/// file, so that the result is byte-identical to it), followed by `data` in order. The caller
/// guarantees that `data` matches the header's offsets.
///
/// # Errors
/// I/O errors naming `path`.
pub fn write_safetensors_verbatim(path: &Path, header: &str, data: &[&[u8]]) -> Result<()> {
    write_file(path, header, &mut |w| {
        for d in data {
            w.write_all(d)?;
        }
        Ok(())
    })
}

/// Little-endian bytes of `data` stored as `dtype` (f16/bf16 round to nearest even), or `None`
/// when some value would change (then the conversion would not be exact). Exact conversion keeps
/// every bit: a bf16 checkpoint widened to f32 and narrowed back is byte-identical, negative
/// zeros included.
pub fn encode_exact(data: &[f32], dtype: ValueDtype) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() * dtype.size());
    match dtype {
        ValueDtype::F32 => {
            for v in data {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        ValueDtype::F16 => {
            for &v in data {
                let h = half::f16::from_f32(v);
                if h.to_f32().to_bits() != v.to_bits() {
                    return None;
                }
                out.extend_from_slice(&h.to_le_bytes());
            }
        }
        ValueDtype::Bf16 => {
            for &v in data {
                let h = half::bf16::from_f32(v);
                if h.to_f32().to_bits() != v.to_bits() {
                    return None;
                }
                out.extend_from_slice(&h.to_le_bytes());
            }
        }
    }
    Some(out)
}

/// Writes `config.json`, `model.safetensors` and (when given) the tokenizer files into `dir`,
/// which must exist. `metadata` goes into the safetensors header.
///
/// # Errors
/// I/O errors naming the file.
pub fn save_hf_dir(
    model: &CausalLm,
    tokenizer: Option<&Tokenizer>,
    dir: &Path,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let cfg_path = dir.join("config.json");
    let cfg = serde_json::to_string_pretty(&model.arch.hf_config())
        .map_err(|e| ModelError::Input(e.to_string()))?;
    std::fs::write(&cfg_path, cfg + "\n").map_err(io_err(&cfg_path))?;
    write_safetensors_f32(
        &dir.join("model.safetensors"),
        &model.arch.tensors(),
        metadata,
    )?;
    if let Some(t) = tokenizer {
        t.save_to_dir(dir)?;
    }
    Ok(())
}
