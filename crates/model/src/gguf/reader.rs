//! Memory-mapped GGUF v2/v3 reader.
//!
//! Layout (ggml's `docs/gguf.md`, all integers little-endian):
//!
//! ```text
//! u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//! n_kv × { string key | u32 value_type | value }
//! n_tensors × { string name | u32 n_dims | n_dims × u64 dim | u32 ggml_type | u64 offset }
//! padding to `general.alignment` (default 32)
//! tensor data; each tensor at data_start + offset (offset a multiple of the alignment)
//! ```
//!
//! where `string` is `u64 len` + `len` UTF-8 bytes and an array value is
//! `u32 element_type | u64 len | elements`.
//!
//! Every count and length read from the header is checked against the bytes
//! that remain before anything is allocated, so a corrupt file yields a
//! [`GgufError`] naming the file and field rather than a panic or a huge
//! allocation. Allocations for metadata stay within a small constant factor
//! of the file size.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::dequant::{self, DequantError};
use super::error::GgufError;
use super::types::{GgmlType, GgufArray, GgufValue, ValueType};

/// The `GGUF` magic bytes.
const MAGIC: [u8; 4] = *b"GGUF";
/// Alignment of the tensor data section when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Maximum number of tensor dimensions (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;
/// Maximum nesting of arrays inside arrays.
const MAX_ARRAY_DEPTH: u32 = 8;
/// Smallest encoding of one metadata key/value pair: key length, type id
/// and a one-byte value.
const MIN_KV_SIZE: u64 = 8 + 4 + 1;
/// Smallest encoding of one tensor info: name length, n_dims, type, offset.
const MIN_TENSOR_INFO_SIZE: u64 = 8 + 4 + 4 + 8;

/// Description of one tensor stored in a GGUF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufTensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` varies fastest.
    pub dims: Vec<u64>,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Offset of the data relative to the start of the data section.
    pub offset: u64,
}

impl GgufTensorInfo {
    /// Row-major (HF-style) shape: the ggml dims reversed.
    pub fn shape(&self) -> Vec<usize> {
        self.dims
            .iter()
            .rev()
            .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
            .collect()
    }

    /// Number of elements (saturating; exact for tensors of a parsed file,
    /// whose dims were validated).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |acc, &d| acc.saturating_mul(d))
    }

    /// Number of bytes of data (saturating; exact for tensors of a parsed
    /// file).
    pub fn n_bytes(&self) -> u64 {
        let (block, size) = self.ggml_type.block_layout();
        (self.n_elements() / block).saturating_mul(size)
    }
}

/// The bytes of a GGUF file: a read-only memory map or an owned buffer.
enum Backing {
    Mmap(Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mmap(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

/// An opened, validated GGUF file.
pub struct GgufFile {
    path: PathBuf,
    backing: Backing,
    version: u32,
    alignment: u64,
    /// Absolute offset of the tensor data section.
    data_start: u64,
    metadata: BTreeMap<String, GgufValue>,
    tensors: Vec<GgufTensorInfo>,
    by_name: HashMap<String, usize>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("n_kv", &self.metadata.len())
            .field("n_tensors", &self.tensors.len())
            .finish_non_exhaustive()
    }
}

impl GgufFile {
    /// Memory-maps and parses the GGUF file at `path`, validating the
    /// header, metadata and every tensor's data range.
    ///
    /// # Errors
    /// [`GgufError::Io`] if the file cannot be opened or mapped; any other
    /// variant if the file is not a well-formed GGUF v2/v3 file.
    pub fn open(path: &Path) -> Result<GgufFile, GgufError> {
        let io_err = |source| GgufError::Io {
            file: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        let backing = if len == 0 {
            Backing::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only and private to this struct. As with
            // any memory map, the file must not be truncated or modified by
            // another process while it is open; GGUF model files are
            // treated as immutable.
            Backing::Mmap(unsafe { Mmap::map(&file) }.map_err(io_err)?)
        };
        Self::parse(path.to_path_buf(), backing)
    }

    /// Parses a GGUF file held in memory. `name` is used in error messages.
    ///
    /// # Errors
    /// As for [`GgufFile::open`], except that no I/O happens.
    pub fn from_bytes(name: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        Self::parse(name.into(), Backing::Owned(bytes))
    }

    fn parse(path: PathBuf, backing: Backing) -> Result<GgufFile, GgufError> {
        let header = parse_header(&path, backing.bytes())?;
        let by_name = header
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(GgufFile {
            path,
            backing,
            version: header.version,
            alignment: header.alignment,
            data_start: header.data_start,
            metadata: header.metadata,
            tensors: header.tensors,
            by_name,
        })
    }

    /// Path the file was opened from (or the name given to [`GgufFile::from_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// GGUF format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Alignment of tensor data (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute byte offset of the tensor data section.
    pub fn data_offset(&self) -> u64 {
        self.data_start
    }

    /// All metadata key/value pairs.
    pub fn metadata(&self) -> &BTreeMap<String, GgufValue> {
        &self.metadata
    }

    /// The metadata value for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }

    fn missing(&self, key: &str) -> GgufError {
        GgufError::MissingKey {
            file: self.path.clone(),
            key: key.to_string(),
        }
    }

    fn wrong_type(&self, key: &str, expected: &'static str, found: &GgufValue) -> GgufError {
        GgufError::WrongType {
            file: self.path.clone(),
            key: key.to_string(),
            expected,
            found: found.type_name(),
        }
    }

    /// Looks up `key` and converts it with `conv`; `Ok(None)` if absent.
    fn get_opt_with<'a, T>(
        &'a self,
        key: &str,
        expected: &'static str,
        conv: impl FnOnce(&'a GgufValue) -> Option<T>,
    ) -> Result<Option<T>, GgufError> {
        match self.metadata.get(key) {
            None => Ok(None),
            Some(v) => conv(v)
                .map(Some)
                .ok_or_else(|| self.wrong_type(key, expected, v)),
        }
    }

    fn get_with<'a, T>(
        &'a self,
        key: &str,
        expected: &'static str,
        conv: impl FnOnce(&'a GgufValue) -> Option<T>,
    ) -> Result<T, GgufError> {
        self.get_opt_with(key, expected, conv)?
            .ok_or_else(|| self.missing(key))
    }

    /// An integer value (of any integer type) that fits in `u32`.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`] or [`GgufError::WrongType`].
    pub fn get_u32(&self, key: &str) -> Result<u32, GgufError> {
        self.get_with(key, "u32", GgufValue::as_u32)
    }

    /// An integer value (of any integer type) that fits in `u64`.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`] or [`GgufError::WrongType`].
    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        self.get_with(key, "u64", GgufValue::as_u64)
    }

    /// An integer value (of any integer type) that fits in `i64`.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`] or [`GgufError::WrongType`].
    pub fn get_i64(&self, key: &str) -> Result<i64, GgufError> {
        self.get_with(key, "i64", GgufValue::as_i64)
    }

    /// An `f32` value (an `f64` is accepted and rounded).
    ///
    /// # Errors
    /// [`GgufError::MissingKey`] or [`GgufError::WrongType`].
    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        self.get_with(key, "f32", GgufValue::as_f32)
    }

    /// A bool value.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`] or [`GgufError::WrongType`].
    pub fn get_bool(&self, key: &str) -> Result<bool, GgufError> {
        self.get_with(key, "bool", GgufValue::as_bool)
    }

    /// A string value.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`] or [`GgufError::WrongType`].
    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        self.get_with(key, "string", GgufValue::as_str)
    }

    /// An array-of-strings value.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`] or [`GgufError::WrongType`].
    pub fn get_str_array(&self, key: &str) -> Result<&[String], GgufError> {
        self.get_with(key, "array<string>", |v| match v {
            GgufValue::Array(GgufArray::String(s)) => Some(s.as_slice()),
            _ => None,
        })
    }

    /// An array-of-i32 value.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`] or [`GgufError::WrongType`].
    pub fn get_i32_array(&self, key: &str) -> Result<&[i32], GgufError> {
        self.get_with(key, "array<i32>", |v| match v {
            GgufValue::Array(GgufArray::I32(s)) => Some(s.as_slice()),
            _ => None,
        })
    }

    /// Like [`GgufFile::get_u32`] but `Ok(None)` when the key is absent.
    ///
    /// # Errors
    /// [`GgufError::WrongType`].
    pub fn get_u32_opt(&self, key: &str) -> Result<Option<u32>, GgufError> {
        self.get_opt_with(key, "u32", GgufValue::as_u32)
    }

    /// Like [`GgufFile::get_f32`] but `Ok(None)` when the key is absent.
    ///
    /// # Errors
    /// [`GgufError::WrongType`].
    pub fn get_f32_opt(&self, key: &str) -> Result<Option<f32>, GgufError> {
        self.get_opt_with(key, "f32", GgufValue::as_f32)
    }

    /// Like [`GgufFile::get_bool`] but `Ok(None)` when the key is absent.
    ///
    /// # Errors
    /// [`GgufError::WrongType`].
    pub fn get_bool_opt(&self, key: &str) -> Result<Option<bool>, GgufError> {
        self.get_opt_with(key, "bool", GgufValue::as_bool)
    }

    /// Like [`GgufFile::get_str`] but `Ok(None)` when the key is absent.
    ///
    /// # Errors
    /// [`GgufError::WrongType`].
    pub fn get_str_opt(&self, key: &str) -> Result<Option<&str>, GgufError> {
        self.get_opt_with(key, "string", GgufValue::as_str)
    }

    /// `general.architecture`, e.g. `"llama"`.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`] or [`GgufError::WrongType`].
    pub fn architecture(&self) -> Result<&str, GgufError> {
        self.get_str("general.architecture")
    }

    /// All tensor descriptions, in file order.
    pub fn tensors(&self) -> &[GgufTensorInfo] {
        &self.tensors
    }

    /// The description of tensor `name`, if present.
    pub fn tensor_info(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.by_name.get(name).and_then(|&i| self.tensors.get(i))
    }

    fn require_tensor(&self, name: &str) -> Result<&GgufTensorInfo, GgufError> {
        self.tensor_info(name)
            .ok_or_else(|| GgufError::TensorNotFound {
                file: self.path.clone(),
                tensor: name.to_string(),
            })
    }

    /// The raw (possibly quantized) bytes of tensor `name`.
    ///
    /// # Errors
    /// [`GgufError::TensorNotFound`]; [`GgufError::TensorDataOutOfBounds`]
    /// cannot happen for a file that opened successfully.
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8], GgufError> {
        let info = self.require_tensor(name)?;
        let bytes = self.backing.bytes();
        let start = self.data_start.checked_add(info.offset);
        let end = start.and_then(|s| s.checked_add(info.n_bytes()));
        let range = match (start, end) {
            (Some(s), Some(e)) => usize::try_from(s)
                .ok()
                .zip(usize::try_from(e).ok())
                .and_then(|(s, e)| bytes.get(s..e)),
            _ => None,
        };
        range.ok_or_else(|| GgufError::TensorDataOutOfBounds {
            file: self.path.clone(),
            tensor: name.to_string(),
            start: start.unwrap_or(u64::MAX),
            end: end.unwrap_or(u64::MAX),
            file_size: bytes.len() as u64,
        })
    }

    /// Tensor `name` converted to `f32`, in row-major order for
    /// [`GgufTensorInfo::shape`].
    ///
    /// # Errors
    /// [`GgufError::TensorNotFound`]; [`GgufError::UnsupportedTensorType`]
    /// when the tensor's type cannot be dequantized.
    pub fn tensor_f32(&self, name: &str) -> Result<Vec<f32>, GgufError> {
        let info = self.require_tensor(name)?;
        let data = self.tensor_bytes(name)?;
        let n = usize::try_from(info.n_elements()).map_err(|_| GgufError::Invalid {
            file: self.path.clone(),
            field: format!("tensor '{name}' dims"),
            reason: "element count does not fit in memory".into(),
        })?;
        dequant::dequantize(info.ggml_type, data, n).map_err(|e| match e {
            DequantError::Unsupported(t) => GgufError::UnsupportedTensorType {
                file: self.path.clone(),
                tensor: name.to_string(),
                type_name: t.name().to_string(),
            },
            other => GgufError::Invalid {
                file: self.path.clone(),
                field: format!("tensor '{name}' data"),
                reason: other.to_string(),
            },
        })
    }
}

/// The parsed, validated header of a GGUF file.
struct Header {
    version: u32,
    alignment: u64,
    data_start: u64,
    metadata: BTreeMap<String, GgufValue>,
    tensors: Vec<GgufTensorInfo>,
}

/// A bounds-checked little-endian reader over the file bytes.
struct Cursor<'a> {
    path: &'a Path,
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn file_size(&self) -> u64 {
        self.data.len() as u64
    }

    fn remaining(&self) -> u64 {
        (self.data.len().saturating_sub(self.pos)) as u64
    }

    fn invalid(&self, field: impl Into<String>, reason: impl Into<String>) -> GgufError {
        GgufError::Invalid {
            file: self.path.to_path_buf(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Takes `n` bytes; `field` describes them for the error message.
    fn take(&mut self, n: u64, field: impl FnOnce() -> String) -> Result<&'a [u8], GgufError> {
        let slice = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .and_then(|end| self.data.get(self.pos..end).map(|s| (s, end)));
        match slice {
            Some((s, end)) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(GgufError::Truncated {
                file: self.path.to_path_buf(),
                field: field(),
                offset: self.pos as u64,
                needed: n,
                file_size: self.file_size(),
            }),
        }
    }

    fn array<const N: usize>(
        &mut self,
        field: impl FnOnce() -> String,
    ) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, field: impl FnOnce() -> String) -> Result<u32, GgufError> {
        self.array(field).map(u32::from_le_bytes)
    }

    fn u64(&mut self, field: impl FnOnce() -> String) -> Result<u64, GgufError> {
        self.array(field).map(u64::from_le_bytes)
    }

    /// Checks that `count` items of at least `min_size` bytes each can fit
    /// in the remaining bytes, so that `count` is safe to allocate for.
    fn check_count(
        &self,
        count: u64,
        min_size: u64,
        field: impl FnOnce() -> String,
    ) -> Result<usize, GgufError> {
        let fits = count
            .checked_mul(min_size)
            .is_some_and(|need| need <= self.remaining());
        match usize::try_from(count) {
            Ok(c) if fits => Ok(c),
            _ => Err(self.invalid(
                field(),
                format!(
                    "count {count} (at least {min_size} bytes each) exceeds the {} bytes remaining after offset {}",
                    self.remaining(),
                    self.pos
                ),
            )),
        }
    }

    fn string(&mut self, field: &dyn Fn() -> String) -> Result<String, GgufError> {
        let len = self.u64(|| format!("{} (string length)", field()))?;
        let start = self.pos;
        let bytes = self.take(len, || format!("{} (string of {len} bytes)", field()))?;
        String::from_utf8(bytes.to_vec()).map_err(|e| {
            self.invalid(
                field(),
                format!("string at offset {start} is not valid UTF-8: {e}"),
            )
        })
    }

    fn value_type(&mut self, field: &dyn Fn() -> String) -> Result<ValueType, GgufError> {
        let id = self.u32(|| format!("{} (value type)", field()))?;
        ValueType::from_id(id).ok_or_else(|| GgufError::UnknownValueType {
            file: self.path.to_path_buf(),
            field: field(),
            type_id: id,
        })
    }

    fn value(
        &mut self,
        ty: ValueType,
        field: &dyn Fn() -> String,
        depth: u32,
    ) -> Result<GgufValue, GgufError> {
        Ok(match ty {
            ValueType::U8 => GgufValue::U8(u8::from_le_bytes(self.array(field)?)),
            ValueType::I8 => GgufValue::I8(i8::from_le_bytes(self.array(field)?)),
            ValueType::U16 => GgufValue::U16(u16::from_le_bytes(self.array(field)?)),
            ValueType::I16 => GgufValue::I16(i16::from_le_bytes(self.array(field)?)),
            ValueType::U32 => GgufValue::U32(u32::from_le_bytes(self.array(field)?)),
            ValueType::I32 => GgufValue::I32(i32::from_le_bytes(self.array(field)?)),
            ValueType::F32 => GgufValue::F32(f32::from_le_bytes(self.array(field)?)),
            ValueType::U64 => GgufValue::U64(u64::from_le_bytes(self.array(field)?)),
            ValueType::I64 => GgufValue::I64(i64::from_le_bytes(self.array(field)?)),
            ValueType::F64 => GgufValue::F64(f64::from_le_bytes(self.array(field)?)),
            ValueType::Bool => GgufValue::Bool(self.bool(field)?),
            ValueType::String => GgufValue::String(self.string(field)?),
            ValueType::Array => GgufValue::Array(self.array_value(field, depth)?),
        })
    }

    fn bool(&mut self, field: &dyn Fn() -> String) -> Result<bool, GgufError> {
        match self.array::<1>(field)? {
            [0] => Ok(false),
            [1] => Ok(true),
            [b] => Err(self.invalid(field(), format!("bool byte is {b}, expected 0 or 1"))),
        }
    }

    /// Reads `n` fixed-size elements with `conv`.
    fn fixed<T, const N: usize>(
        &mut self,
        n: usize,
        conv: fn([u8; N]) -> T,
        field: &dyn Fn() -> String,
    ) -> Result<Vec<T>, GgufError> {
        let bytes = self.take((n as u64).saturating_mul(N as u64), field)?;
        Ok(bytes
            .chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                conv(a)
            })
            .collect())
    }

    fn array_value(
        &mut self,
        field: &dyn Fn() -> String,
        depth: u32,
    ) -> Result<GgufArray, GgufError> {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(self.invalid(
                field(),
                format!("arrays nested more than {MAX_ARRAY_DEPTH} deep"),
            ));
        }
        let elem_field = || format!("{} (array element type)", field());
        let elem = self.value_type(&elem_field)?;
        let len = self.u64(|| format!("{} (array length)", field()))?;
        let n = self.check_count(len, elem.min_encoded_size(), || {
            format!("{} (array length)", field())
        })?;
        let item = |i: usize| move || format!("{}[{i}]", field());
        Ok(match elem {
            ValueType::U8 => GgufArray::U8(self.fixed(n, u8::from_le_bytes, field)?),
            ValueType::I8 => GgufArray::I8(self.fixed(n, i8::from_le_bytes, field)?),
            ValueType::U16 => GgufArray::U16(self.fixed(n, u16::from_le_bytes, field)?),
            ValueType::I16 => GgufArray::I16(self.fixed(n, i16::from_le_bytes, field)?),
            ValueType::U32 => GgufArray::U32(self.fixed(n, u32::from_le_bytes, field)?),
            ValueType::I32 => GgufArray::I32(self.fixed(n, i32::from_le_bytes, field)?),
            ValueType::F32 => GgufArray::F32(self.fixed(n, f32::from_le_bytes, field)?),
            ValueType::U64 => GgufArray::U64(self.fixed(n, u64::from_le_bytes, field)?),
            ValueType::I64 => GgufArray::I64(self.fixed(n, i64::from_le_bytes, field)?),
            ValueType::F64 => GgufArray::F64(self.fixed(n, f64::from_le_bytes, field)?),
            ValueType::Bool => {
                let mut v = Vec::with_capacity(n);
                for i in 0..n {
                    v.push(self.bool(&item(i))?);
                }
                GgufArray::Bool(v)
            }
            ValueType::String => {
                let mut v = Vec::with_capacity(n);
                for i in 0..n {
                    v.push(self.string(&item(i))?);
                }
                GgufArray::String(v)
            }
            ValueType::Array => {
                let mut v = Vec::with_capacity(n);
                for i in 0..n {
                    v.push(self.array_value(&item(i), depth + 1)?);
                }
                GgufArray::Array(v)
            }
        })
    }
}

/// Parses and validates everything except the tensor data itself.
fn parse_header(path: &Path, data: &[u8]) -> Result<Header, GgufError> {
    let mut c = Cursor { path, data, pos: 0 };
    let magic = c.array::<4>(|| "magic".into())?;
    if magic != MAGIC {
        return Err(GgufError::BadMagic {
            file: path.to_path_buf(),
            found: magic,
        });
    }
    let version = c.u32(|| "version".into())?;
    if version != 2 && version != 3 {
        return Err(GgufError::UnsupportedVersion {
            file: path.to_path_buf(),
            version,
        });
    }
    let n_tensors = c.u64(|| "tensor count".into())?;
    let n_kv = c.u64(|| "metadata key/value count".into())?;
    let n_kv = c.check_count(n_kv, MIN_KV_SIZE, || "metadata key/value count".into())?;
    // The tensor infos follow the metadata, so they must fit too.
    c.check_count(n_tensors, MIN_TENSOR_INFO_SIZE, || "tensor count".into())?;

    let mut metadata = BTreeMap::new();
    for i in 0..n_kv {
        let key = c.string(&|| format!("metadata key #{i}"))?;
        let field = || format!("metadata '{key}'");
        let ty = c.value_type(&field)?;
        let value = c.value(ty, &field, 0)?;
        if metadata.insert(key.clone(), value).is_some() {
            return Err(GgufError::Duplicate {
                file: path.to_path_buf(),
                what: "metadata key",
                name: key,
            });
        }
    }

    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(GgufValue::U32(a)) if *a != 0 && a.is_power_of_two() => u64::from(*a),
        Some(v) => {
            return Err(c.invalid(
                "metadata 'general.alignment'",
                format!("must be a non-zero power of two u32, got {v:?}"),
            ))
        }
    };

    let n_tensors = c.check_count(n_tensors, MIN_TENSOR_INFO_SIZE, || "tensor count".into())?;
    let mut tensors: Vec<GgufTensorInfo> = Vec::with_capacity(n_tensors);
    let mut seen = std::collections::HashSet::with_capacity(n_tensors);
    for i in 0..n_tensors {
        let info = parse_tensor_info(&mut c, i, alignment)?;
        if !seen.insert(info.name.clone()) {
            return Err(GgufError::Duplicate {
                file: path.to_path_buf(),
                what: "tensor name",
                name: info.name,
            });
        }
        tensors.push(info);
    }

    // Data section starts at the next multiple of the alignment.
    let header_end = c.pos as u64;
    let data_start = header_end
        .checked_next_multiple_of(alignment)
        .ok_or_else(|| c.invalid("data section offset", "overflows u64"))?;
    let file_size = c.file_size();
    for t in &tensors {
        let start = data_start.checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(t.n_bytes()));
        match (start, end) {
            (Some(_), Some(e)) if e <= file_size => {}
            _ => {
                return Err(GgufError::TensorDataOutOfBounds {
                    file: path.to_path_buf(),
                    tensor: t.name.clone(),
                    start: start.unwrap_or(u64::MAX),
                    end: end.unwrap_or(u64::MAX),
                    file_size,
                })
            }
        }
    }

    Ok(Header {
        version,
        alignment,
        data_start,
        metadata,
        tensors,
    })
}

/// Parses tensor info `index` and validates its dims, type and offset.
fn parse_tensor_info(
    c: &mut Cursor<'_>,
    index: usize,
    alignment: u64,
) -> Result<GgufTensorInfo, GgufError> {
    let name = c.string(&|| format!("tensor #{index} name"))?;
    let field = |what: &str| format!("tensor '{name}' {what}");
    let n_dims = c.u32(|| field("n_dims"))?;
    if n_dims > MAX_DIMS {
        return Err(c.invalid(
            field("n_dims"),
            format!("{n_dims} exceeds the maximum of {MAX_DIMS}"),
        ));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for d in 0..n_dims {
        let dim = c.u64(|| field(&format!("dim {d}")))?;
        if i64::try_from(dim).is_err() {
            return Err(c.invalid(
                field(&format!("dim {d}")),
                format!("{dim} exceeds i64::MAX"),
            ));
        }
        dims.push(dim);
    }
    let type_id = c.u32(|| field("type"))?;
    let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownTensorType {
        file: c.path.to_path_buf(),
        tensor: name.clone(),
        type_id,
    })?;
    let offset = c.u64(|| field("data offset"))?;

    let n_elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| i64::try_from(n).is_ok())
        .ok_or_else(|| {
            c.invalid(
                field("dims"),
                format!("element count of {dims:?} overflows"),
            )
        })?;
    let (block, type_size) = ggml_type.block_layout();
    let row = dims.first().copied().unwrap_or(1);
    if row % block != 0 {
        return Err(c.invalid(
            field("dims"),
            format!("first dim {row} is not a multiple of the {ggml_type} block size {block}"),
        ));
    }
    if (n_elements / block).checked_mul(type_size).is_none() {
        return Err(c.invalid(field("dims"), "byte size overflows u64"));
    }
    if offset % alignment != 0 {
        return Err(c.invalid(
            field("data offset"),
            format!("{offset} is not a multiple of the alignment {alignment}"),
        ));
    }
    Ok(GgufTensorInfo {
        name,
        dims,
        ggml_type,
        offset,
    })
}
