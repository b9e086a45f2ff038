//! The compressed checkpoint: pruned weights stored sparse in an ordinary safetensors file
//! (layout in `docs/compressed.md`).
//!
//! Each logical tensor (a Hugging Face tensor name) becomes one or more stored safetensors
//! tensors, its *parts*, and one `__metadata__` entry `secateurs.tensor.<name>` whose JSON value
//! gives the format, shape, value dtype, source dtype, N:M pattern and, per part, the stored
//! tensor, element dtype, element count and codec:
//!
//! | format    | parts                                                              |
//! |-----------|--------------------------------------------------------------------|
//! | `dense`   | `values`                                                           |
//! | `bitmask` | `mask` (U64), `values`                                             |
//! | `csr`     | `row_ptr` (U32), `col_idx` (U16/U32), `values`                     |
//! | `coo`     | `row_idx` (U16/U32), `col_idx` (U16/U32), `values`                 |
//! | `nm`      | `indices` (U8, packed positions), `values`                         |
//!
//! plus an optional `negzero` part (U64 flat indices of `-0.0` weights, which the sparse formats
//! store as `+0.0`), so that decompression is bit-exact. Part layouts are those of the
//! `secateurs-sparse` formats. Codecs: `none` (the part is a plain tensor of its element dtype;
//! mmap-friendly), `zstd` (one zstd frame of the little-endian bytes, stored as U8) and
//! `zstd-planes` (elements split into byte planes, most significant first, after rotating float
//! bits left by one so that the exponent fills the first plane, then one zstd frame; the
//! ZipNN-style split that lets the exponent plane compress to ~2 bits per value). Every zstd
//! frame carries a content checksum, which the reader requires and verifies.
//!
//! A dense tensor stored with codec `none` is a plain tensor under its own name, so a
//! checkpoint written with `--format dense --codec none` is a standard safetensors file any
//! loader reads.
//!
//! Reading validates everything at the file level before any matrix is built (metadata against
//! the header, lengths against the shape, codec streams decoded to exactly the expected size);
//! the sparse crate's `from_parts` then validates the structure (indices in range, ordering,
//! mask population), so a corrupt file gives an error naming the file and tensor, never a panic
//! or an out-of-bounds read.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use secateurs_sparse::bitmask::{words_per_row, Bitmask};
use secateurs_sparse::coo::Coo;
use secateurs_sparse::csr::Csr;
use secateurs_sparse::dense::DenseMatrix;
use secateurs_sparse::nm::{index_bits, NmMatrix};
use secateurs_sparse::{Format, FormatError, Indices, PackedMatrix, ValueDtype, Values};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::export::{write_safetensors, RawTensor};
use crate::safetensors::{parse_raw_header, RawHeader};
use crate::weights::{TensorF32, WeightSource};

/// `__metadata__` key marking a compressed checkpoint; its value is the layout version.
pub const MARKER_KEY: &str = "secateurs.compressed";
/// The layout version this build reads and writes.
pub const LAYOUT_VERSION: &str = "1";
/// `__metadata__` key holding the source file's header JSON, verbatim (when the source was one
/// safetensors file), so that `decompress` can rebuild it byte for byte.
pub const SOURCE_HEADER_KEY: &str = "secateurs.source_header";
/// Prefix of the per-tensor `__metadata__` keys.
pub const TENSOR_KEY_PREFIX: &str = "secateurs.tensor.";
/// File name of the weights in a compressed directory.
pub const FILE_NAME: &str = "model.safetensors";
/// Largest number of elements of one tensor we accept (2^36: far above any real weight).
const MAX_NUMEL: u64 = 1 << 36;

/// How a part's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Raw little-endian elements (a plain tensor of the part's dtype).
    None,
    /// One zstd frame of the little-endian bytes.
    Zstd,
    /// Byte planes (most significant first; float bits rotated left by one), then one zstd frame.
    ZstdPlanes,
}

impl Codec {
    /// The name written in the metadata.
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Zstd => "zstd",
            Codec::ZstdPlanes => "zstd-planes",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Codec::None),
            "zstd" => Some(Codec::Zstd),
            "zstd-planes" => Some(Codec::ZstdPlanes),
            _ => None,
        }
    }
}

/// The part of a stored matrix (see the module docs for which formats use which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum PartKind {
    Values,
    Mask,
    RowPtr,
    RowIdx,
    ColIdx,
    Indices,
    NegZero,
}

impl PartKind {
    const ALL: [PartKind; 7] = [
        PartKind::Values,
        PartKind::Mask,
        PartKind::RowPtr,
        PartKind::RowIdx,
        PartKind::ColIdx,
        PartKind::Indices,
        PartKind::NegZero,
    ];

    fn name(self) -> &'static str {
        match self {
            PartKind::Values => "values",
            PartKind::Mask => "mask",
            PartKind::RowPtr => "row_ptr",
            PartKind::RowIdx => "row_idx",
            PartKind::ColIdx => "col_idx",
            PartKind::Indices => "indices",
            PartKind::NegZero => "negzero",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }

    /// Parts a format requires (`negzero` is optional for the sparse formats).
    fn required(format: Format) -> &'static [PartKind] {
        match format {
            Format::Dense => &[PartKind::Values],
            Format::Bitmask => &[PartKind::Mask, PartKind::Values],
            Format::Csr => &[PartKind::RowPtr, PartKind::ColIdx, PartKind::Values],
            Format::Coo => &[PartKind::RowIdx, PartKind::ColIdx, PartKind::Values],
            Format::Nm => &[PartKind::Indices, PartKind::Values],
        }
    }

    /// The codec the writer tries for this part when compression is on.
    fn preferred_codec(self) -> Codec {
        match self {
            PartKind::Mask | PartKind::Indices => Codec::Zstd,
            _ => Codec::ZstdPlanes,
        }
    }
}

/// One part as described in the metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartMeta {
    /// Name of the stored safetensors tensor.
    tensor: String,
    /// Element dtype (`F32`, `F16`, `BF16`, `U8`, `U16`, `U32`, `U64`).
    dtype: String,
    /// Number of elements (after decoding).
    len: u64,
    /// Codec name.
    codec: String,
}

/// The metadata of one logical tensor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TensorMeta {
    /// `dense`, `bitmask`, `csr`, `coo` or `nm`.
    format: String,
    /// Logical shape.
    shape: Vec<u64>,
    /// Stored value dtype (`F32`, `F16`, `BF16`).
    dtype: String,
    /// How the source stored the tensor (`F32`, `BF16`, `Q4_1`, ...).
    source_dtype: String,
    /// `[N, M]` of an N:M matrix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nm: Option<[u64; 2]>,
    /// Parts by kind name.
    parts: BTreeMap<String, PartMeta>,
}

/// Options of [`compress`].
#[derive(Debug, Clone, Copy)]
pub struct CompressOptions {
    /// Format of the decoder's linear weights (`None`: per matrix, the format with the fewest
    /// bytes, as the loader would choose). Other tensors are always dense.
    pub format: Option<Format>,
    /// Value dtype of every tensor (`None`: the source's dtype; quantized tensors become f32).
    pub dtype: Option<ValueDtype>,
    /// Whether parts are compressed (zstd, byte planes for values); `false` stores raw tensors.
    pub compress: bool,
    /// zstd level (1..=22; 3 is zstd's default).
    pub level: i32,
}

impl Default for CompressOptions {
    fn default() -> Self {
        CompressOptions {
            format: None,
            dtype: None,
            compress: true,
            level: 3,
        }
    }
}

/// What [`compress`] wrote for one tensor.
#[derive(Debug, Clone, Serialize)]
pub struct TensorReport {
    /// Hugging Face tensor name.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Number of elements.
    pub params: usize,
    /// How the source stored it.
    pub source_dtype: String,
    /// Storage: `bitmask/bf16`, `nm 2:4/f32`, `dense/bf16`, ...
    pub storage: String,
    /// Bytes of the stored parts (after the codec).
    pub stored_bytes: usize,
    /// Bytes of the parts before the codec.
    pub raw_bytes: usize,
    /// Codec of each part (`values: zstd-planes`, ...).
    pub codecs: BTreeMap<String, String>,
}

/// What [`compress`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct CompressReport {
    /// One entry per tensor, in name order.
    pub tensors: Vec<TensorReport>,
    /// Size of the written file.
    pub file_bytes: u64,
}

fn tensor_err(path: &Path, tensor: &str, reason: impl Into<String>) -> ModelError {
    ModelError::Tensor {
        path: path.to_path_buf(),
        tensor: tensor.to_string(),
        reason: reason.into(),
    }
}

/// Whether a tensor is a decoder linear weight (the tensors that pruning makes sparse and that
/// may be stored in a sparse format): 2-D, under `.layers.`, named `*.weight`.
pub fn is_sparse_candidate(name: &str, shape: &[usize]) -> bool {
    shape.len() == 2 && name.contains(".layers.") && name.ends_with(".weight")
}

/// The value dtype a source dtype name keeps (`F32`, `F16`, `BF16`; anything else is f32).
pub fn keep_dtype(source_dtype: &str) -> ValueDtype {
    ValueDtype::from_safetensors_name(source_dtype.split_whitespace().next().unwrap_or(""))
        .unwrap_or(ValueDtype::F32)
}

// ---------------------------------------------------------------------------------------------
// Codecs

fn is_float(dtype: &str) -> bool {
    matches!(dtype, "F32" | "F16" | "BF16")
}

/// Splits little-endian elements of `size` bytes into byte planes, most significant byte first;
/// float bits are first rotated left by one (sign to the bottom, exponent to the top).
fn to_planes(bytes: &[u8], size: usize, float: bool) -> Vec<u8> {
    let n = bytes.len() / size;
    let mut out = vec![0u8; n * size];
    match size {
        1 => out.copy_from_slice(bytes),
        2 => {
            let (p0, p1) = out.split_at_mut(n);
            for (i, c) in bytes.chunks_exact(2).enumerate() {
                let mut v = u16::from_le_bytes([c[0], c[1]]);
                if float {
                    v = v.rotate_left(1);
                }
                let [hi, lo] = v.to_be_bytes();
                p0[i] = hi;
                p1[i] = lo;
            }
        }
        4 => {
            for (i, c) in bytes.chunks_exact(4).enumerate() {
                let mut v = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                if float {
                    v = v.rotate_left(1);
                }
                for (p, b) in v.to_be_bytes().into_iter().enumerate() {
                    out[p * n + i] = b;
                }
            }
        }
        _ => {
            let bits = 8 * size as u32;
            for (i, el) in bytes.chunks_exact(size).enumerate() {
                let mut v = 0u64;
                for (b, &x) in el.iter().enumerate() {
                    v |= u64::from(x) << (8 * b);
                }
                if float {
                    v = ((v << 1) | (v >> (bits - 1))) & (u64::MAX >> (64 - bits));
                }
                for p in 0..size {
                    out[p * n + i] = (v >> (8 * (size - 1 - p))) as u8;
                }
            }
        }
    }
    out
}

/// Inverse of [`to_planes`]; `planes.len()` must be a multiple of `size`.
fn from_planes(planes: &[u8], size: usize, float: bool) -> Vec<u8> {
    let n = planes.len() / size;
    let mut out = vec![0u8; n * size];
    match size {
        1 => out.copy_from_slice(planes),
        2 => {
            let (p0, p1) = planes.split_at(n);
            for ((o, &hi), &lo) in out.chunks_exact_mut(2).zip(p0).zip(p1) {
                let mut v = u16::from_be_bytes([hi, lo]);
                if float {
                    v = v.rotate_right(1);
                }
                o.copy_from_slice(&v.to_le_bytes());
            }
        }
        4 => {
            for (i, o) in out.chunks_exact_mut(4).enumerate() {
                let mut v = u32::from_be_bytes([
                    planes[i],
                    planes[n + i],
                    planes[2 * n + i],
                    planes[3 * n + i],
                ]);
                if float {
                    v = v.rotate_right(1);
                }
                o.copy_from_slice(&v.to_le_bytes());
            }
        }
        _ => {
            let bits = 8 * size as u32;
            for (i, el) in out.chunks_exact_mut(size).enumerate() {
                let mut v = 0u64;
                for p in 0..size {
                    v |= u64::from(planes[p * n + i]) << (8 * (size - 1 - p));
                }
                if float {
                    v = ((v >> 1) | (v << (bits - 1))) & (u64::MAX >> (64 - bits));
                }
                for (b, x) in el.iter_mut().enumerate() {
                    *x = (v >> (8 * b)) as u8;
                }
            }
        }
    }
    out
}

/// Encodes a part's raw bytes; `None` when the codec does not make it smaller.
fn encode_part(
    raw: &[u8],
    dtype: &str,
    codec: Codec,
    level: i32,
) -> Result<Option<Vec<u8>>, String> {
    let size = crate::safetensors::dtype_size(dtype).unwrap_or(1);
    let input = match codec {
        Codec::None => return Ok(None),
        Codec::Zstd => std::borrow::Cow::Borrowed(raw),
        Codec::ZstdPlanes => std::borrow::Cow::Owned(to_planes(raw, size, is_float(dtype))),
    };
    let mut c = zstd::bulk::Compressor::new(level).map_err(|e| format!("zstd: {e}"))?;
    // A content checksum, so that a corrupted stream is an error rather than wrong weights.
    c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
        .map_err(|e| format!("zstd: {e}"))?;
    let z = c.compress(&input).map_err(|e| format!("zstd: {e}"))?;
    Ok((z.len() < raw.len()).then_some(z))
}

/// Decodes a part to exactly `expected` bytes.
fn decode_part(data: &[u8], dtype: &str, codec: Codec, expected: usize) -> Result<Vec<u8>, String> {
    let size = crate::safetensors::dtype_size(dtype).unwrap_or(1);
    let raw = match codec {
        Codec::None => {
            if data.len() != expected {
                return Err(format!("holds {} bytes, expected {expected}", data.len()));
            }
            return Ok(data.to_vec());
        }
        Codec::Zstd | Codec::ZstdPlanes => {
            // One zstd frame (magic 0xFD2FB528) whose descriptor sets the checksum flag.
            if data.get(..4) != Some(&[0x28, 0xB5, 0x2F, 0xFD][..]) {
                return Err("not a zstd frame (bad magic number)".into());
            }
            if data.get(4).is_none_or(|d| d & 0x04 == 0) {
                return Err("zstd frame without a content checksum".into());
            }
            let mut dec = zstd::stream::read::Decoder::with_buffer(data)
                .map_err(|e| format!("corrupt zstd stream: {e}"))?;
            // Grow with the data actually decoded, never trusting a declared size up front.
            let mut out =
                Vec::with_capacity(expected.min(data.len().saturating_mul(4)).min(64 << 20));
            (&mut dec)
                .take(expected as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("corrupt zstd stream: {e}"))?;
            if out.len() != expected {
                return Err(format!(
                    "zstd stream decodes to {}{} bytes, expected {expected}",
                    out.len(),
                    if out.len() > expected { " or more" } else { "" }
                ));
            }
            out
        }
    };
    Ok(if codec == Codec::ZstdPlanes {
        from_planes(&raw, size, is_float(dtype))
    } else {
        raw
    })
}

// ---------------------------------------------------------------------------------------------
// Writing

/// One encoded part before naming.
struct EncodedPart {
    kind: PartKind,
    dtype: String,
    len: usize,
    raw: Vec<u8>,
}

fn u32_bytes(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn u64_bytes(v: impl Iterator<Item = u64>) -> Vec<u8> {
    v.flat_map(|x| x.to_le_bytes()).collect()
}

fn index_part(kind: PartKind, idx: &Indices) -> EncodedPart {
    EncodedPart {
        kind,
        dtype: if idx.width() == 2 { "U16" } else { "U32" }.into(),
        len: idx.len(),
        raw: idx.to_le_bytes(),
    }
}

fn values_part(v: &Values) -> EncodedPart {
    EncodedPart {
        kind: PartKind::Values,
        dtype: v.dtype().safetensors_name().into(),
        len: v.len(),
        raw: v.to_le_bytes(),
    }
}

/// The parts of a packed matrix.
fn matrix_parts(p: &PackedMatrix) -> Vec<EncodedPart> {
    match p {
        PackedMatrix::Dense(m) => vec![values_part(m.values())],
        PackedMatrix::Bitmask(m) => vec![
            EncodedPart {
                kind: PartKind::Mask,
                dtype: "U64".into(),
                len: m.mask().len(),
                raw: u64_bytes(m.mask().iter().copied()),
            },
            values_part(m.values()),
        ],
        PackedMatrix::Csr(m) => vec![
            EncodedPart {
                kind: PartKind::RowPtr,
                dtype: "U32".into(),
                len: m.row_ptr().len(),
                raw: u32_bytes(m.row_ptr()),
            },
            index_part(PartKind::ColIdx, m.col_idx()),
            values_part(m.values()),
        ],
        PackedMatrix::Coo(m) => vec![
            index_part(PartKind::RowIdx, m.row_idx()),
            index_part(PartKind::ColIdx, m.col_idx()),
            values_part(m.values()),
        ],
        PackedMatrix::Nm(m) => vec![
            EncodedPart {
                kind: PartKind::Indices,
                dtype: "U8".into(),
                len: m.indices().len(),
                raw: m.indices().to_vec(),
            },
            values_part(m.values()),
        ],
    }
}

/// An encoded tensor: storage description, format, N:M pattern and parts.
type EncodedTensor = (String, Format, Option<[u64; 2]>, Vec<EncodedPart>);

/// Encodes one tensor: its storage description, N:M pattern and parts.
fn encode_tensor(
    label: &Path,
    name: &str,
    t: &TensorF32,
    dtype: ValueDtype,
    opts: &CompressOptions,
) -> Result<EncodedTensor> {
    // Rounding to a 16-bit type must not turn a finite weight into an infinity.
    if dtype != ValueDtype::F32 {
        if let Some(i) = t
            .data
            .iter()
            .position(|&x| x.is_finite() && !dtype.round(x).is_finite())
        {
            return Err(tensor_err(
                label,
                name,
                format!("value {} at flat index {i} overflows {dtype}", t.data[i]),
            ));
        }
    }
    let sparse = is_sparse_candidate(name, &t.shape) && opts.format != Some(Format::Dense);
    if !sparse {
        let values = Values::from_f32(&t.data, dtype);
        let storage = format!("dense/{dtype}");
        return Ok((storage, Format::Dense, None, vec![values_part(&values)]));
    }
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let packed = PackedMatrix::encode(&t.data, rows, cols, opts.format, dtype).map_err(|e| {
        tensor_err(
            label,
            name,
            format!(
                "cannot store as {}: {e}",
                opts.format.map_or("auto".to_string(), |f| f.to_string())
            ),
        )
    })?;
    // Check the round trip bit for bit; the sparse formats drop -0.0, which we record.
    let dense = packed.to_dense();
    let mut negzero = Vec::new();
    for (i, (&src, &got)) in t.data.iter().zip(&dense).enumerate() {
        let want = dtype.round(src);
        if want.to_bits() != got.to_bits() {
            if want.to_bits() == (-0.0f32).to_bits() && got.to_bits() == 0 {
                negzero.push(i as u64);
            } else {
                return Err(tensor_err(
                    label,
                    name,
                    format!(
                        "{} does not store flat index {i} exactly ({want} became {got})",
                        packed.describe()
                    ),
                ));
            }
        }
    }
    let nm = match &packed {
        PackedMatrix::Nm(m) => Some([m.keep() as u64, m.m() as u64]),
        _ => None,
    };
    let mut parts = matrix_parts(&packed);
    if !negzero.is_empty() {
        parts.push(EncodedPart {
            kind: PartKind::NegZero,
            dtype: "U64".into(),
            len: negzero.len(),
            raw: u64_bytes(negzero.into_iter()),
        });
    }
    Ok((packed.describe(), packed.format(), nm, parts))
}

/// Reads the header JSON of a single safetensors file exactly as stored (for
/// [`SOURCE_HEADER_KEY`]). For a compressed checkpoint that is not a plain dense file, returns
/// the source header it recorded instead, so that `decompress` still rebuilds the original.
///
/// # Errors
/// I/O errors or a malformed header, naming the file.
pub fn source_header_of(file: &Path) -> Result<Option<String>> {
    let (_, header) = map_and_parse(file)?;
    if header.metadata.contains_key(MARKER_KEY) {
        let plain = header.metadata.iter().all(|(k, v)| {
            let Some(name) = k.strip_prefix(TENSOR_KEY_PREFIX) else {
                return true;
            };
            serde_json::from_str::<TensorMeta>(v).is_ok_and(|m| {
                m.format == "dense"
                    && m.parts.len() == 1
                    && m.parts
                        .get("values")
                        .is_some_and(|p| p.codec == "none" && p.tensor == name)
            })
        });
        if !plain {
            return Ok(header.metadata.get(SOURCE_HEADER_KEY).cloned());
        }
    }
    Ok(Some(header.text))
}

/// Writes every tensor of `src` into the compressed safetensors file `out`. `source_header`
/// (the source file's header JSON, see [`source_header_of`]) is recorded so that decompression
/// can rebuild the source byte for byte. `progress(done, total)` is called after each tensor.
///
/// # Errors
/// A tensor that cannot be read, does not fit the requested format (`--format nm` on a matrix
/// without an N:M pattern) or overflows the requested dtype, naming it; I/O errors naming `out`.
pub fn compress(
    src: &dyn WeightSource,
    out: &Path,
    opts: &CompressOptions,
    source_header: Option<&str>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<CompressReport> {
    let names = src.names();
    let label = src.label().to_path_buf();
    let mut metadata = BTreeMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    metadata.insert(MARKER_KEY.to_string(), LAYOUT_VERSION.to_string());
    if let Some(h) = source_header {
        metadata.insert(SOURCE_HEADER_KEY.to_string(), h.to_string());
    }
    let mut stored: Vec<RawTensor<'static>> = Vec::new();
    let mut stored_names: BTreeSet<String> = BTreeSet::new();
    let mut reports = Vec::with_capacity(names.len());
    for (done, name) in names.iter().enumerate() {
        let t = src.load(name)?;
        let source_dtype = src
            .storage_dtype(name)
            .and_then(|s| s.split_whitespace().next().map(str::to_string))
            .unwrap_or_else(|| "F32".to_string());
        let dtype = opts.dtype.unwrap_or_else(|| keep_dtype(&source_dtype));
        let (storage, format, nm, parts) = encode_tensor(&label, name, &t, dtype, opts)?;
        let mut meta = TensorMeta {
            format: format.to_string(),
            shape: t.shape.iter().map(|&d| d as u64).collect(),
            dtype: dtype.safetensors_name().to_string(),
            source_dtype: source_dtype.clone(),
            nm,
            parts: BTreeMap::new(),
        };
        let mut report = TensorReport {
            name: name.clone(),
            shape: t.shape.clone(),
            params: t.numel(),
            source_dtype,
            storage,
            stored_bytes: 0,
            raw_bytes: 0,
            codecs: BTreeMap::new(),
        };
        drop(t);
        for part in parts {
            let codec = if opts.compress {
                part.kind.preferred_codec()
            } else {
                Codec::None
            };
            let encoded = encode_part(&part.raw, &part.dtype, codec, opts.level)
                .map_err(|e| tensor_err(&label, name, e))?;
            let (codec, bytes) = match encoded {
                Some(z) => (codec, z),
                None => (Codec::None, part.raw),
            };
            let plain_dense = format == Format::Dense && codec == Codec::None;
            let tensor_name = if plain_dense {
                name.clone()
            } else {
                format!("{name}.{}", part.kind.name())
            };
            if !stored_names.insert(tensor_name.clone()) {
                return Err(tensor_err(
                    &label,
                    name,
                    format!("stored tensor name '{tensor_name}' collides with another tensor"),
                ));
            }
            let (st_dtype, st_shape) = match codec {
                Codec::None if plain_dense => (part.dtype.clone(), report.shape.clone()),
                Codec::None => (part.dtype.clone(), vec![part.len]),
                _ => ("U8".to_string(), vec![bytes.len()]),
            };
            report.raw_bytes += part.len * crate::safetensors::dtype_size(&part.dtype).unwrap_or(1);
            report.stored_bytes += bytes.len();
            report
                .codecs
                .insert(part.kind.name().to_string(), codec.name().to_string());
            meta.parts.insert(
                part.kind.name().to_string(),
                PartMeta {
                    tensor: tensor_name.clone(),
                    dtype: part.dtype,
                    len: part.len as u64,
                    codec: codec.name().to_string(),
                },
            );
            stored.push(RawTensor {
                name: tensor_name,
                dtype: st_dtype,
                shape: st_shape,
                data: bytes.into(),
            });
        }
        let json =
            serde_json::to_string(&meta).map_err(|e| tensor_err(&label, name, e.to_string()))?;
        metadata.insert(format!("{TENSOR_KEY_PREFIX}{name}"), json);
        reports.push(report);
        progress(done + 1, names.len());
    }
    // Larger elements first, so that every tensor starts aligned to its element size.
    stored
        .sort_by_key(|t| std::cmp::Reverse(crate::safetensors::dtype_size(&t.dtype).unwrap_or(1)));
    write_safetensors(out, &stored, &metadata)?;
    let file_bytes = std::fs::metadata(out)
        .map_err(|source| ModelError::Io {
            path: out.to_path_buf(),
            source,
        })?
        .len();
    Ok(CompressReport {
        tensors: reports,
        file_bytes,
    })
}

// ---------------------------------------------------------------------------------------------
// Reading

/// A validated part: where its bytes are and what they decode to.
#[derive(Debug, Clone)]
struct Part {
    stored: String,
    dtype: String,
    len: usize,
    codec: Codec,
    begin: usize,
    end: usize,
}

/// A validated logical tensor.
#[derive(Debug, Clone)]
struct Entry {
    format: Format,
    dtype: ValueDtype,
    source_dtype: String,
    shape: Vec<usize>,
    nm: Option<(usize, usize)>,
    parts: BTreeMap<PartKind, Part>,
}

impl Entry {
    fn rows_cols(&self) -> (usize, usize) {
        match self.shape.as_slice() {
            [r, c] => (*r, *c),
            _ => (1, self.shape.iter().product()),
        }
    }

    fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// How a tensor is stored, decoded but not densified.
#[derive(Debug, Clone)]
pub enum Stored {
    /// Dense values of any rank, row-major.
    Dense {
        /// Shape.
        shape: Vec<usize>,
        /// Values.
        values: Values,
    },
    /// A matrix in a sparse format, with the flat indices of its `-0.0` weights.
    Packed {
        /// The matrix.
        matrix: PackedMatrix,
        /// Flat indices whose weight is `-0.0` (the format stores `+0.0` there).
        negzero: Vec<u64>,
    },
}

/// Description of one stored tensor (for reports).
#[derive(Debug, Clone, Serialize)]
pub struct StoredInfo {
    /// `dense`, `bitmask`, ...
    pub format: String,
    /// Stored value dtype.
    pub dtype: String,
    /// The source's dtype.
    pub source_dtype: String,
    /// `[N, M]` for N:M.
    pub nm: Option<[usize; 2]>,
    /// Bytes of the parts in the file.
    pub stored_bytes: usize,
}

enum Backing {
    Mmap(Mmap),
    Bytes(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mmap(m) => m,
            Backing::Bytes(b) => b,
        }
    }
}

/// A compressed checkpoint opened for reading: [`WeightSource::load`] densifies,
/// [`WeightSource::load_packed`] gives decoder weights in their stored sparse format.
pub struct CompressedSource {
    path: PathBuf,
    data: Backing,
    entries: BTreeMap<String, Entry>,
    source_header: Option<String>,
}

fn map_and_parse(path: &Path) -> Result<(Mmap, RawHeader)> {
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    // SAFETY: the map is read-only; as for every safetensors file we open, the user must not
    // truncate it while it is open (documented in the README).
    let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
    let header = parse_raw_header(path, &mmap)?;
    Ok((mmap, header))
}

/// Whether `dir` holds a compressed checkpoint (`model.safetensors` whose `__metadata__` carries
/// [`MARKER_KEY`]). Any error reading it answers `false`, leaving the plain loader to report it.
pub fn is_compressed_dir(dir: &Path) -> bool {
    let file = dir.join(FILE_NAME);
    file.is_file() && map_and_parse(&file).is_ok_and(|(_, h)| h.metadata.contains_key(MARKER_KEY))
}

fn checked_usize(path: &Path, tensor: &str, what: &str, v: u64) -> Result<usize> {
    if v > MAX_NUMEL {
        return Err(tensor_err(
            path,
            tensor,
            format!("{what} {v} exceeds the limit of {MAX_NUMEL}"),
        ));
    }
    usize::try_from(v).map_err(|_| tensor_err(path, tensor, format!("{what} {v} does not fit")))
}

impl CompressedSource {
    /// Opens `dir/model.safetensors`.
    ///
    /// # Errors
    /// As [`CompressedSource::open_file`].
    pub fn open_dir(dir: &Path) -> Result<Self> {
        Self::open_file(&dir.join(FILE_NAME))
    }

    /// Opens (memory-maps) a compressed safetensors file and validates its header and metadata.
    ///
    /// # Errors
    /// I/O errors; a malformed header; a missing or unknown layout version; metadata that is not
    /// valid JSON, names an unknown format, dtype, codec or part, disagrees with the shape or
    /// with the stored tensors (each naming the file and tensor).
    pub fn open_file(path: &Path) -> Result<Self> {
        let (mmap, header) = map_and_parse(path)?;
        Self::build(path, Backing::Mmap(mmap), header)
    }

    /// Reads a compressed checkpoint from bytes in memory (`label` names it in errors); what
    /// the fuzz target uses.
    ///
    /// # Errors
    /// As [`CompressedSource::open_file`].
    pub fn from_bytes(label: &Path, bytes: Vec<u8>) -> Result<Self> {
        let header = parse_raw_header(label, &bytes)?;
        Self::build(label, Backing::Bytes(bytes), header)
    }

    fn build(path: &Path, data: Backing, header: RawHeader) -> Result<Self> {
        let version = header
            .metadata
            .get(MARKER_KEY)
            .ok_or_else(|| ModelError::Safetensors {
                path: path.to_path_buf(),
                field: format!("__metadata__.{MARKER_KEY}"),
                reason: "missing: not a secateurs compressed checkpoint".into(),
            })?;
        if version != LAYOUT_VERSION {
            return Err(ModelError::Safetensors {
                path: path.to_path_buf(),
                field: format!("__metadata__.{MARKER_KEY}"),
                reason: format!(
                    "layout version '{version}' is not supported (this build reads {LAYOUT_VERSION})"
                ),
            });
        }
        let mut entries = BTreeMap::new();
        let mut used: BTreeMap<String, String> = BTreeMap::new();
        for (key, json) in &header.metadata {
            let Some(name) = key.strip_prefix(TENSOR_KEY_PREFIX) else {
                continue;
            };
            let meta: TensorMeta = serde_json::from_str(json)
                .map_err(|e| tensor_err(path, name, format!("invalid metadata {key}: {e}")))?;
            let entry = Self::validate(path, name, &meta, &header)?;
            for part in entry.parts.values() {
                if let Some(other) = used.insert(part.stored.clone(), name.to_string()) {
                    return Err(tensor_err(
                        path,
                        name,
                        format!(
                            "stored tensor '{}' is also a part of '{other}'",
                            part.stored
                        ),
                    ));
                }
            }
            entries.insert(name.to_string(), entry);
        }
        if let Some(orphan) = header.tensors.keys().find(|k| !used.contains_key(*k)) {
            return Err(tensor_err(
                path,
                orphan,
                "stored tensor has no compressed-checkpoint metadata referring to it",
            ));
        }
        Ok(CompressedSource {
            path: path.to_path_buf(),
            data,
            entries,
            source_header: header.metadata.get(SOURCE_HEADER_KEY).cloned(),
        })
    }

    /// Validates one tensor's metadata against the header (no data is read).
    fn validate(path: &Path, name: &str, meta: &TensorMeta, header: &RawHeader) -> Result<Entry> {
        let bad = |reason: String| tensor_err(path, name, reason);
        let format: Format = meta
            .format
            .parse()
            .map_err(|e: String| bad(format!("metadata field 'format': {e}")))?;
        let dtype = ValueDtype::from_safetensors_name(&meta.dtype).ok_or_else(|| {
            bad(format!(
                "metadata field 'dtype': '{}' is not F32, F16 or BF16",
                meta.dtype
            ))
        })?;
        if meta.shape.len() > 8 {
            return Err(bad(format!(
                "shape {:?} has more than 8 dimensions",
                meta.shape
            )));
        }
        let numel64 = meta
            .shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= MAX_NUMEL)
            .ok_or_else(|| bad(format!("shape {:?} is too large", meta.shape)))?;
        let numel = checked_usize(path, name, "element count", numel64)?;
        let shape: Vec<usize> = meta
            .shape
            .iter()
            .map(|&d| checked_usize(path, name, "dimension", d))
            .collect::<Result<_>>()?;
        if format != Format::Dense && shape.len() != 2 {
            return Err(bad(format!(
                "format {format} needs a 2-D shape, metadata says {shape:?}"
            )));
        }
        let (rows, cols) = match shape.as_slice() {
            [r, c] => (*r, *c),
            _ => (1, numel),
        };
        let nm = match (format, meta.nm) {
            (Format::Nm, Some([n, m])) => {
                if n == 0 || n >= m || m > 256 || !(cols as u64).is_multiple_of(m) {
                    return Err(bad(format!(
                        "N:M pattern {n}:{m} is invalid for {cols} columns (need 0 < N < M <= 256, M dividing the columns)"
                    )));
                }
                Some((n as usize, m as usize))
            }
            (Format::Nm, None) => return Err(bad("format nm without an 'nm' pattern".into())),
            (_, Some(_)) => return Err(bad(format!("format {format} has an 'nm' pattern"))),
            (_, None) => None,
        };
        // Parts: exactly the required ones, plus an optional negzero for sparse formats.
        let mut parts = BTreeMap::new();
        for (kind_name, pm) in &meta.parts {
            let kind = PartKind::parse(kind_name)
                .ok_or_else(|| bad(format!("unknown part '{kind_name}'")))?;
            let allowed = PartKind::required(format).contains(&kind)
                || (kind == PartKind::NegZero && format != Format::Dense);
            if !allowed {
                return Err(bad(format!("format {format} has no part '{kind_name}'")));
            }
            let codec = Codec::parse(&pm.codec)
                .ok_or_else(|| bad(format!("part '{kind_name}': unknown codec '{}'", pm.codec)))?;
            let ok_dtype = match kind {
                PartKind::Values => pm.dtype == meta.dtype,
                PartKind::Mask | PartKind::NegZero => pm.dtype == "U64",
                PartKind::RowPtr => pm.dtype == "U32",
                PartKind::RowIdx | PartKind::ColIdx => pm.dtype == "U16" || pm.dtype == "U32",
                PartKind::Indices => pm.dtype == "U8",
            };
            if !ok_dtype {
                return Err(bad(format!(
                    "part '{kind_name}': element dtype '{}' is not allowed here",
                    pm.dtype
                )));
            }
            let len = checked_usize(path, name, &format!("part '{kind_name}' length"), pm.len)?;
            let size = crate::safetensors::dtype_size(&pm.dtype).unwrap_or(1);
            let st = header.tensors.get(&pm.tensor).ok_or_else(|| {
                bad(format!(
                    "part '{kind_name}': stored tensor '{}' is not in the file",
                    pm.tensor
                ))
            })?;
            let st_numel: usize = st.shape.iter().product();
            match codec {
                Codec::None => {
                    let shape_ok = st.shape == [len]
                        || (format == Format::Dense && st.shape == shape && pm.tensor == name);
                    if st.dtype != pm.dtype || !shape_ok || st_numel != len {
                        return Err(bad(format!(
                            "part '{kind_name}': stored tensor '{}' is {} {:?}, metadata says {len} elements of {}",
                            pm.tensor, st.dtype, st.shape, pm.dtype
                        )));
                    }
                }
                Codec::Zstd | Codec::ZstdPlanes => {
                    if st.dtype != "U8" || st.shape.len() != 1 {
                        return Err(bad(format!(
                            "part '{kind_name}': stored tensor '{}' is {} {:?}, a {} stream must be a 1-D U8 tensor",
                            pm.tensor, st.dtype, st.shape, codec.name()
                        )));
                    }
                }
            }
            len.checked_mul(size)
                .ok_or_else(|| bad(format!("part '{kind_name}' is too large")))?;
            parts.insert(
                kind,
                Part {
                    stored: pm.tensor.clone(),
                    dtype: pm.dtype.clone(),
                    len,
                    codec,
                    begin: st.begin,
                    end: st.end,
                },
            );
        }
        for kind in PartKind::required(format) {
            if !parts.contains_key(kind) {
                return Err(bad(format!(
                    "format {format} needs a part '{}', metadata has none",
                    kind.name()
                )));
            }
        }
        // Lengths the shape implies (counts that disagree with the shape are rejected here).
        let len = |k: PartKind| parts.get(&k).map_or(0, |p| p.len);
        let nvals = len(PartKind::Values);
        let check = |what: &str, expected: Option<usize>, found: usize| -> Result<()> {
            match expected {
                Some(e) if e == found => Ok(()),
                Some(e) => Err(bad(format!(
                    "part '{what}' has {found} elements, the {shape:?} {format} matrix needs {e}"
                ))),
                None => Err(bad(format!("shape {shape:?} overflows part '{what}'"))),
            }
        };
        if nvals > numel {
            return Err(bad(format!(
                "part 'values' has {nvals} elements, more than the {numel} of shape {shape:?}"
            )));
        }
        match format {
            Format::Dense => check("values", Some(numel), nvals)?,
            Format::Bitmask => check(
                "mask",
                rows.checked_mul(words_per_row(cols)),
                len(PartKind::Mask),
            )?,
            Format::Csr => {
                check("row_ptr", rows.checked_add(1), len(PartKind::RowPtr))?;
                check("col_idx", Some(nvals), len(PartKind::ColIdx))?;
            }
            Format::Coo => {
                check("row_idx", Some(nvals), len(PartKind::RowIdx))?;
                check("col_idx", Some(nvals), len(PartKind::ColIdx))?;
            }
            Format::Nm => {
                let (n, m) = nm.unwrap_or((1, 2));
                let stored = rows.checked_mul(cols / m).and_then(|g| g.checked_mul(n));
                check("values", stored, nvals)?;
                let bytes = stored
                    .and_then(|s| s.checked_mul(index_bits(m)))
                    .map(|b| b.div_ceil(8));
                check("indices", bytes, len(PartKind::Indices))?;
            }
        }
        if len(PartKind::NegZero) > numel {
            return Err(bad(format!(
                "part 'negzero' has {} elements, more than the {numel} weights",
                len(PartKind::NegZero)
            )));
        }
        Ok(Entry {
            format,
            dtype,
            source_dtype: meta.source_dtype.clone(),
            shape,
            nm,
            parts,
        })
    }

    /// The file (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The source header recorded at compression, if any.
    pub fn source_header(&self) -> Option<&str> {
        self.source_header.as_deref()
    }

    /// How a tensor is stored.
    pub fn info(&self, name: &str) -> Option<StoredInfo> {
        self.entries.get(name).map(|e| StoredInfo {
            format: e.format.to_string(),
            dtype: e.dtype.safetensors_name().to_string(),
            source_dtype: e.source_dtype.clone(),
            nm: e.nm.map(|(n, m)| [n, m]),
            stored_bytes: e.parts.values().map(|p| p.end - p.begin).sum(),
        })
    }

    fn entry(&self, name: &str) -> Result<&Entry> {
        self.entries
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.path.clone(),
                tensor: name.to_string(),
            })
    }

    /// Decodes one part to its little-endian bytes (exactly `len * size`).
    fn part_bytes(&self, name: &str, e: &Entry, kind: PartKind) -> Result<Option<Vec<u8>>> {
        let Some(p) = e.parts.get(&kind) else {
            return Ok(None);
        };
        let data = self.data.bytes().get(p.begin..p.end).ok_or_else(|| {
            tensor_err(
                &self.path,
                name,
                format!(
                    "part '{}' (stored tensor '{}') lies outside the file (truncated while open?)",
                    kind.name(),
                    p.stored
                ),
            )
        })?;
        let size = crate::safetensors::dtype_size(&p.dtype).unwrap_or(1);
        decode_part(data, &p.dtype, p.codec, p.len * size)
            .map(Some)
            .map_err(|reason| {
                tensor_err(
                    &self.path,
                    name,
                    format!(
                        "part '{}' (stored tensor '{}', codec {}): {reason}",
                        kind.name(),
                        p.stored,
                        p.codec.name()
                    ),
                )
            })
    }

    /// Decodes a tensor as stored (sparse matrices stay sparse), validating every part.
    ///
    /// # Errors
    /// A missing tensor; a part that lies outside the file, whose codec stream is corrupt or
    /// decodes to the wrong size; parts that break the format's rules (indices outside the
    /// matrix, a mask population that disagrees with the values, ...), each naming the file and
    /// tensor.
    pub fn load_stored(&self, name: &str) -> Result<Stored> {
        let e = self.entry(name)?;
        let fmt_err =
            |err: FormatError| tensor_err(&self.path, name, format!("{} matrix: {err}", e.format));
        let req = |kind: PartKind| -> Result<Vec<u8>> {
            self.part_bytes(name, e, kind)?.ok_or_else(|| {
                tensor_err(
                    &self.path,
                    name,
                    format!("part '{}' is missing", kind.name()),
                )
            })
        };
        let values = Values::from_le_bytes(e.dtype, &req(PartKind::Values)?).map_err(fmt_err)?;
        let indices = |kind: PartKind| -> Result<Indices> {
            let width = e
                .parts
                .get(&kind)
                .and_then(|p| crate::safetensors::dtype_size(&p.dtype))
                .unwrap_or(0);
            Indices::from_le_bytes(width, &req(kind)?).map_err(fmt_err)
        };
        let (rows, cols) = e.rows_cols();
        let matrix = match e.format {
            Format::Dense => {
                return Ok(Stored::Dense {
                    shape: e.shape.clone(),
                    values,
                })
            }
            Format::Bitmask => {
                let mask: Vec<u64> = req(PartKind::Mask)?
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect();
                PackedMatrix::Bitmask(
                    Bitmask::from_parts(rows, cols, mask, values).map_err(fmt_err)?,
                )
            }
            Format::Csr => {
                let row_ptr: Vec<u32> = req(PartKind::RowPtr)?
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                let col_idx = indices(PartKind::ColIdx)?;
                PackedMatrix::Csr(
                    Csr::from_parts(rows, cols, row_ptr, col_idx, values).map_err(fmt_err)?,
                )
            }
            Format::Coo => {
                let row_idx = indices(PartKind::RowIdx)?;
                let col_idx = indices(PartKind::ColIdx)?;
                PackedMatrix::Coo(
                    Coo::from_parts(rows, cols, row_idx, col_idx, values).map_err(fmt_err)?,
                )
            }
            Format::Nm => {
                let (n, m) = e.nm.unwrap_or((1, 2));
                let idx = req(PartKind::Indices)?;
                PackedMatrix::Nm(
                    NmMatrix::from_parts(rows, cols, n, m, values, idx).map_err(fmt_err)?,
                )
            }
        };
        let negzero: Vec<u64> = match self.part_bytes(name, e, PartKind::NegZero)? {
            Some(b) => b
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
            None => Vec::new(),
        };
        let numel = e.numel() as u64;
        if let Some(w) = negzero.windows(2).position(|w| w[0] >= w[1]) {
            return Err(tensor_err(
                &self.path,
                name,
                format!(
                    "part 'negzero': indices are not strictly increasing at entry {}",
                    w + 1
                ),
            ));
        }
        if let Some(&i) = negzero.iter().find(|&&i| i >= numel) {
            return Err(tensor_err(
                &self.path,
                name,
                format!("part 'negzero': index {i} is outside the {numel} weights"),
            ));
        }
        Ok(Stored::Packed { matrix, negzero })
    }

    /// Rebuilds the source file (`model.safetensors`) into `out`: every tensor dense, in its
    /// source dtype when the stored values convert to it exactly (otherwise in the stored
    /// dtype). When a source header was recorded and every tensor matches it, the header is
    /// written verbatim, so a lossless compression gives back a byte-identical file. Returns
    /// whether it was. `progress(done, total)` is called after each tensor.
    ///
    /// # Errors
    /// Any error of [`WeightSource::load`]; I/O errors naming `out`.
    pub fn decompress(&self, out: &Path, progress: &mut dyn FnMut(usize, usize)) -> Result<bool> {
        let names: Vec<String> = self.entries.keys().cloned().collect();
        let mut tensors: BTreeMap<String, (String, Vec<usize>, Vec<u8>)> = BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            let e = self.entry(name)?;
            let t = self.load(name)?;
            let source = ValueDtype::from_safetensors_name(&e.source_dtype);
            let (dtype, bytes) = match source
                .and_then(|d| crate::export::encode_exact(&t.data, d).map(|b| (d, b)))
            {
                Some(x) => x,
                None => {
                    let b = crate::export::encode_exact(&t.data, e.dtype).ok_or_else(|| {
                        tensor_err(
                            &self.path,
                            name,
                            "stored values do not convert back to their own dtype",
                        )
                    })?;
                    (e.dtype, b)
                }
            };
            tensors.insert(
                name.clone(),
                (dtype.safetensors_name().to_string(), t.shape, bytes),
            );
            progress(i + 1, names.len());
        }
        if let Some(order) = self
            .source_header
            .as_deref()
            .and_then(|h| verbatim_order(h, &tensors))
        {
            let data: Vec<&[u8]> = order.iter().map(|n| tensors[n].2.as_slice()).collect();
            crate::export::write_safetensors_verbatim(
                out,
                self.source_header.as_deref().unwrap_or_default(),
                &data,
            )?;
            return Ok(true);
        }
        let raw: Vec<RawTensor<'_>> = names
            .iter()
            .map(|n| {
                let (dtype, shape, bytes) = &tensors[n];
                RawTensor {
                    name: n.clone(),
                    dtype: dtype.clone(),
                    shape: shape.clone(),
                    data: bytes.as_slice().into(),
                }
            })
            .collect();
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), "pt".to_string());
        write_safetensors(out, &raw, &meta)?;
        Ok(false)
    }
}

/// The data order of `header` (a source header) when it describes exactly `tensors` (same
/// names, dtypes and shapes, contiguous ranges matching the byte sizes); otherwise `None`.
fn verbatim_order(
    header: &str,
    tensors: &BTreeMap<String, (String, Vec<usize>, Vec<u8>)>,
) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(header).ok()?;
    let obj = v.as_object()?;
    let mut ranges: Vec<(u64, u64, String)> = Vec::new();
    for (name, info) in obj {
        if name == "__metadata__" {
            continue;
        }
        let (dtype, shape, bytes) = tensors.get(name)?;
        if info.get("dtype")?.as_str()? != dtype {
            return None;
        }
        let s: Vec<usize> = info
            .get("shape")?
            .as_array()?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<_>>()?;
        if &s != shape {
            return None;
        }
        let offs = info.get("data_offsets")?.as_array()?;
        let (b, e) = (offs.first()?.as_u64()?, offs.get(1)?.as_u64()?);
        if e.checked_sub(b)? != bytes.len() as u64 {
            return None;
        }
        ranges.push((b, e, name.clone()));
    }
    if ranges.len() != tensors.len() {
        return None;
    }
    ranges.sort();
    let mut at = 0u64;
    for (b, e, _) in &ranges {
        if *b != at {
            return None;
        }
        at = *e;
    }
    Some(ranges.into_iter().map(|r| r.2).collect())
}

impl WeightSource for CompressedSource {
    fn label(&self) -> &Path {
        &self.path
    }

    fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    fn storage_dtype(&self, name: &str) -> Option<String> {
        self.entries.get(name).map(|e| match e.format {
            Format::Dense => e.dtype.safetensors_name().to_string(),
            Format::Nm => {
                let (n, m) = e.nm.unwrap_or((0, 0));
                format!("{} nm {n}:{m}", e.dtype.safetensors_name())
            }
            f => format!("{} {f}", e.dtype.safetensors_name()),
        })
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.entries.get(name).map(|e| e.shape.clone())
    }

    fn load(&self, name: &str) -> Result<TensorF32> {
        match self.load_stored(name)? {
            Stored::Dense { shape, values } => Ok(TensorF32 {
                shape,
                data: values.to_f32(),
            }),
            Stored::Packed { matrix, negzero } => {
                let (rows, cols) = matrix.shape();
                // A sparse matrix may describe a shape far larger than its file: fail cleanly
                // rather than abort when its dense buffer cannot be had.
                let mut probe: Vec<f32> = Vec::new();
                probe.try_reserve_exact(rows * cols).map_err(|_| {
                    tensor_err(
                        &self.path,
                        name,
                        format!("cannot allocate the dense {rows}x{cols} matrix"),
                    )
                })?;
                drop(probe);
                let mut data = matrix.to_dense();
                for &i in &negzero {
                    // In range (checked by load_stored); must be a weight the format left zero.
                    let w = &mut data[i as usize];
                    if w.to_bits() != 0 {
                        return Err(tensor_err(
                            &self.path,
                            name,
                            format!("part 'negzero': flat index {i} holds a stored value"),
                        ));
                    }
                    *w = -0.0;
                }
                Ok(TensorF32 {
                    shape: vec![rows, cols],
                    data,
                })
            }
        }
    }

    fn load_packed(&self, name: &str) -> Result<Option<PackedMatrix>> {
        let Some(e) = self.entries.get(name) else {
            return Ok(None);
        };
        // Dense f32 loads as plain dense weights; everything else stays as stored.
        if e.shape.len() != 2 || (e.format == Format::Dense && e.dtype == ValueDtype::F32) {
            return Ok(None);
        }
        let matrix = match self.load_stored(name)? {
            Stored::Packed { matrix, .. } => matrix,
            Stored::Dense { shape, values } => PackedMatrix::Dense(
                DenseMatrix::from_parts(shape[0], shape[1], values)
                    .map_err(|err| tensor_err(&self.path, name, err.to_string()))?,
            ),
        };
        let values = match &matrix {
            PackedMatrix::Dense(m) => m.values(),
            PackedMatrix::Coo(m) => m.values(),
            PackedMatrix::Csr(m) => m.values(),
            PackedMatrix::Bitmask(m) => m.values(),
            PackedMatrix::Nm(m) => m.values(),
        };
        values
            .check_finite()
            .map_err(|err| tensor_err(&self.path, name, err.to_string()))?;
        Ok(Some(matrix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_round_trip() {
        let bytes: Vec<u8> = (0..96u32).map(|i| (i * 37 % 251) as u8).collect();
        for size in [1, 2, 4, 8] {
            for float in [false, true] {
                let p = to_planes(&bytes, size, float);
                assert_eq!(
                    from_planes(&p, size, float),
                    bytes,
                    "size {size} float {float}"
                );
            }
        }
    }

    #[test]
    fn bf16_exponent_fills_first_plane() {
        // 1.0 in bf16 is 0x3F80: exponent 127, sign 0, mantissa 0.
        let p = to_planes(&0x3F80u16.to_le_bytes(), 2, true);
        assert_eq!(p, vec![127, 0]);
        // -1.0: the sign lands in the low bit of the second plane.
        let p = to_planes(&0xBF80u16.to_le_bytes(), 2, true);
        assert_eq!(p, vec![127, 1]);
    }

    #[test]
    fn decode_rejects_wrong_sizes() {
        let z = encode_part(&[1u8; 100], "U8", Codec::Zstd, 3)
            .unwrap()
            .unwrap();
        assert!(decode_part(&z, "U8", Codec::Zstd, 100).is_ok());
        assert!(decode_part(&z, "U8", Codec::Zstd, 99).is_err());
        assert!(decode_part(&z, "U8", Codec::Zstd, 101).is_err());
        assert!(decode_part(&z[..z.len() - 1], "U8", Codec::Zstd, 100).is_err());
        let mut junk = z.clone();
        junk.extend_from_slice(b"junk");
        assert!(decode_part(&junk, "U8", Codec::Zstd, 100).is_err());
    }
}
