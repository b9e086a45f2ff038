//! Memory-mapped reading of Hugging Face safetensors checkpoints (single file or sharded with
//! `model.safetensors.index.json`), converting f32/f16/bf16 tensors to f32 one tensor at a time.
//!
//! Format: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
//! `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the end of the header), then
//! the data. Every offset and size is validated against the file length before any tensor is
//! read, so a corrupt header gives an error naming the file and field, never an out-of-bounds read
//! or an allocation larger than the file.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde_json::Value;

use crate::error::{ModelError, Result};
use crate::weights::{TensorF32, WeightSource};

/// Largest header we accept (the format's own limit).
const MAX_HEADER: u64 = 100 * 1024 * 1024;

/// Element types we can convert to f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StDtype {
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    BF16,
}

impl StDtype {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "F32" => Some(Self::F32),
            "F16" => Some(Self::F16),
            "BF16" => Some(Self::BF16),
            _ => None,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::BF16 => 2,
        }
    }

    /// Name as written in safetensors headers.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::BF16 => "BF16",
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    file: usize,
    dtype: StDtype,
    shape: Vec<usize>,
    /// Absolute byte range in the file.
    begin: usize,
    end: usize,
}

/// One or more memory-mapped safetensors files seen as one set of named tensors.
pub struct SafetensorsSource {
    label: PathBuf,
    files: Vec<(PathBuf, Mmap)>,
    entries: HashMap<String, Entry>,
}

impl SafetensorsSource {
    /// Opens one `.safetensors` file.
    ///
    /// # Errors
    /// I/O errors, or a malformed header (naming the file and field).
    pub fn open_file(path: &Path) -> Result<Self> {
        let mut src = SafetensorsSource {
            label: path.to_path_buf(),
            files: Vec::new(),
            entries: HashMap::new(),
        };
        src.add_file(path)?;
        Ok(src)
    }

    /// Opens the weights of a Hugging Face model directory: `model.safetensors`, or the shards
    /// listed in `model.safetensors.index.json`.
    ///
    /// # Errors
    /// Neither file present, an unreadable index, or any shard error.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        if single.is_file() {
            return Self::open_file(&single);
        }
        if !index.is_file() {
            return Err(ModelError::NotAModel {
                path: dir.to_path_buf(),
                reason: "neither model.safetensors nor model.safetensors.index.json found".into(),
            });
        }
        let text = std::fs::read_to_string(&index).map_err(|source| ModelError::Io {
            path: index.clone(),
            source,
        })?;
        let v: Value = serde_json::from_str(&text).map_err(|e| ModelError::Safetensors {
            path: index.clone(),
            field: "<json>".into(),
            reason: e.to_string(),
        })?;
        let map = v
            .get("weight_map")
            .and_then(Value::as_object)
            .ok_or_else(|| ModelError::Safetensors {
                path: index.clone(),
                field: "weight_map".into(),
                reason: "missing or not an object".into(),
            })?;
        let mut shards: Vec<String> = Vec::new();
        for (name, file) in map {
            let file = file.as_str().ok_or_else(|| ModelError::Safetensors {
                path: index.clone(),
                field: format!("weight_map.{name}"),
                reason: "not a file name".into(),
            })?;
            if file.contains('/') || file.contains('\\') || file.starts_with('.') {
                return Err(ModelError::Safetensors {
                    path: index.clone(),
                    field: format!("weight_map.{name}"),
                    reason: format!("shard name '{file}' must be a plain file name"),
                });
            }
            if !shards.iter().any(|s| s == file) {
                shards.push(file.to_string());
            }
        }
        shards.sort();
        let mut src = SafetensorsSource {
            label: dir.to_path_buf(),
            files: Vec::new(),
            entries: HashMap::new(),
        };
        for shard in shards {
            src.add_file(&dir.join(shard))?;
        }
        for name in map.keys() {
            if !src.entries.contains_key(name) {
                return Err(ModelError::MissingTensor {
                    path: index.clone(),
                    tensor: name.clone(),
                });
            }
        }
        Ok(src)
    }

    fn add_file(&mut self, path: &Path) -> Result<()> {
        let io = |source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the map is read-only; we never write through it. Like every mmap-based loader,
        // we rely on the user not truncating the file while it is open (documented in the README).
        let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
        let file_index = self.files.len();
        let entries = parse_header(path, &mmap)?;
        for (name, (dtype, shape, begin, end)) in entries {
            self.entries.insert(
                name,
                Entry {
                    file: file_index,
                    dtype,
                    shape,
                    begin,
                    end,
                },
            );
        }
        self.files.push((path.to_path_buf(), mmap));
        Ok(())
    }

    /// Dtype of a tensor, if present.
    pub fn dtype(&self, name: &str) -> Option<StDtype> {
        self.entries.get(name).map(|e| e.dtype)
    }
}

type HeaderEntry = (StDtype, Vec<usize>, usize, usize);

/// Bytes per element of a safetensors dtype name, for every type the format defines.
pub fn dtype_size(name: &str) -> Option<usize> {
    Some(match name {
        "BOOL" | "U8" | "I8" | "F8_E4M3" | "F8_E5M2" => 1,
        "U16" | "I16" | "F16" | "BF16" => 2,
        "U32" | "I32" | "F32" => 4,
        "U64" | "I64" | "F64" => 8,
        _ => return None,
    })
}

/// One tensor of a safetensors header, of any dtype, validated against the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// Dtype name as written (`F32`, `U8`, ...), one that [`dtype_size`] knows.
    pub dtype: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Absolute byte range in the file; its length is `numel * dtype_size`.
    pub begin: usize,
    /// End of the range (exclusive).
    pub end: usize,
}

/// A parsed and validated safetensors header.
#[derive(Debug, Clone, Default)]
pub struct RawHeader {
    /// The string-valued entries of `__metadata__` (entries of another type are skipped).
    pub metadata: BTreeMap<String, String>,
    /// Every tensor by name.
    pub tensors: BTreeMap<String, RawEntry>,
    /// The header JSON exactly as stored (trailing padding included).
    pub text: String,
    /// Offset of the first data byte (`8 + header length`).
    pub data_start: usize,
}

/// Parses and validates a safetensors header of any dtypes against the file `bytes`: the header
/// length, UTF-8 and JSON, every dtype, shape and data range (inside the file, sized exactly for
/// the shape). Ranges are not required to be contiguous.
///
/// # Errors
/// [`ModelError::Safetensors`] naming `path` and the field at fault.
pub fn parse_raw_header(path: &Path, bytes: &[u8]) -> Result<RawHeader> {
    let bad = |field: &str, reason: String| ModelError::Safetensors {
        path: path.to_path_buf(),
        field: field.to_string(),
        reason,
    };
    let file_len = bytes.len() as u64;
    let Some(len_bytes) = bytes.get(..8) else {
        return Err(bad(
            "header_length",
            format!("file is {file_len} bytes, too short for the 8-byte header length"),
        ));
    };
    let mut arr = [0u8; 8];
    arr.copy_from_slice(len_bytes);
    let n = u64::from_le_bytes(arr);
    if n > MAX_HEADER || n > file_len - 8 {
        return Err(bad(
            "header_length",
            format!("header length {n} exceeds the file ({file_len} bytes): truncated or not safetensors"),
        ));
    }
    let data_start = 8 + n as usize;
    let header = &bytes[8..data_start];
    let header =
        std::str::from_utf8(header).map_err(|e| bad("header", format!("not UTF-8: {e}")))?;
    let v: Value =
        serde_json::from_str(header).map_err(|e| bad("header", format!("invalid JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad("header", "not a JSON object".into()))?;
    let data_len = file_len - data_start as u64;
    let mut out = RawHeader {
        text: header.to_string(),
        data_start,
        ..RawHeader::default()
    };
    for (name, info) in obj {
        if name == "__metadata__" {
            if let Some(m) = info.as_object() {
                for (k, v) in m {
                    if let Some(s) = v.as_str() {
                        out.metadata.insert(k.clone(), s.to_string());
                    }
                }
            }
            continue;
        }
        let dtype = info
            .get("dtype")
            .and_then(Value::as_str)
            .unwrap_or("<missing>");
        let size = dtype_size(dtype).ok_or_else(|| {
            bad(
                &format!("{name}.dtype"),
                format!("dtype '{dtype}' is not a safetensors dtype"),
            )
        })?;
        let shape: Vec<usize> = info
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                    .collect()
            })
            .ok_or_else(|| {
                bad(
                    &format!("{name}.shape"),
                    "missing or not a list of sizes".into(),
                )
            })?;
        let offs = info
            .get("data_offsets")
            .and_then(Value::as_array)
            .filter(|a| a.len() == 2)
            .and_then(|a| Some((a[0].as_u64()?, a[1].as_u64()?)))
            .ok_or_else(|| {
                bad(
                    &format!("{name}.data_offsets"),
                    "missing or not [begin, end]".into(),
                )
            })?;
        let (b, e) = offs;
        if b > e || e > data_len {
            return Err(bad(
                &format!("{name}.data_offsets"),
                format!(
                    "range {b}..{e} exceeds the {data_len} data bytes of the file (truncated?)"
                ),
            ));
        }
        let numel = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .ok_or_else(|| bad(&format!("{name}.shape"), "size overflows".into()))?;
        let expected = numel.checked_mul(size as u64);
        if expected != Some(e - b) {
            return Err(bad(
                &format!("{name}.data_offsets"),
                format!(
                    "range holds {} bytes but shape {shape:?} of {dtype} needs {}",
                    e - b,
                    expected.map_or("too many".to_string(), |x| x.to_string())
                ),
            ));
        }
        out.tensors.insert(
            name.clone(),
            RawEntry {
                dtype: dtype.to_string(),
                shape,
                begin: data_start + b as usize,
                end: data_start + e as usize,
            },
        );
    }
    Ok(out)
}

/// Parses and validates a safetensors header whose tensors are all f32, f16 or bf16.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<BTreeMap<String, HeaderEntry>> {
    let raw = parse_raw_header(path, bytes)?;
    let mut out = BTreeMap::new();
    for (name, e) in raw.tensors {
        let dtype = StDtype::parse(&e.dtype).ok_or_else(|| ModelError::Safetensors {
            path: path.to_path_buf(),
            field: format!("{name}.dtype"),
            reason: format!("dtype '{}' is not supported (F32, F16, BF16)", e.dtype),
        })?;
        out.insert(name, (dtype, e.shape, e.begin, e.end));
    }
    Ok(out)
}

impl WeightSource for SafetensorsSource {
    fn label(&self) -> &Path {
        &self.label
    }

    fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.entries.keys().cloned().collect();
        v.sort();
        v
    }

    fn storage_dtype(&self, name: &str) -> Option<String> {
        self.dtype(name).map(|d| d.name().to_string())
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.entries.get(name).map(|e| e.shape.clone())
    }

    fn load(&self, name: &str) -> Result<TensorF32> {
        let e = self
            .entries
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.label.clone(),
                tensor: name.to_string(),
            })?;
        let (path, mmap) = &self.files[e.file];
        let raw = mmap.get(e.begin..e.end).ok_or_else(|| ModelError::Tensor {
            path: path.clone(),
            tensor: name.to_string(),
            reason: "data range outside the file (was it truncated while open?)".into(),
        })?;
        let data: Vec<f32> = match e.dtype {
            StDtype::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            StDtype::F16 => raw
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            StDtype::BF16 => raw
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        };
        Ok(TensorF32 {
            shape: e.shape.clone(),
            data,
        })
    }
}
