//! Writing a model back out as a Hugging Face directory: `config.json`, `model.safetensors`
//! (f32, pruned weights stored as exact zeros) and the tokenizer files. The caller chooses the
//! directory; `secateurs prune` writes into a temporary one and renames it into place.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

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
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        header.insert(
            "__metadata__".into(),
            serde_json::to_value(metadata).unwrap_or_default(),
        );
    }
    let mut offset = 0usize;
    for t in tensors {
        let bytes = t.data.len() * 4;
        header.insert(
            t.name.clone(),
            serde_json::json!({"dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut text = serde_json::to_string(&header).map_err(|e| ModelError::Input(e.to_string()))?;
    while (8 + text.len()) % 8 != 0 {
        text.push(' ');
    }
    let file = File::create(path).map_err(io_err(path))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(&(text.len() as u64).to_le_bytes())
        .map_err(io_err(path))?;
    w.write_all(text.as_bytes()).map_err(io_err(path))?;
    let mut buf = Vec::with_capacity(1 << 16);
    for t in tensors {
        for chunk in t.data.chunks(1 << 14) {
            buf.clear();
            for v in chunk {
                buf.extend_from_slice(&v.to_le_bytes());
            }
            w.write_all(&buf).map_err(io_err(path))?;
        }
    }
    w.flush().map_err(io_err(path))?;
    w.into_inner()
        .map_err(|e| ModelError::Io {
            path: path.to_path_buf(),
            source: e.into_error(),
        })?
        .sync_all()
        .map_err(io_err(path))
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
