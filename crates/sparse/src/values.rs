//! Stored value types (f32, f16, bf16) and index widths (u16, u32).
//!
//! 16-bit values are kept as raw bit patterns (`u16`) and widened to f32 inside the kernels;
//! conversion from f32 rounds to nearest even (`half`), so it is exact for values that were already
//! f16/bf16 (a checkpoint stored in bf16 round-trips bit for bit).

use std::fmt;
use std::str::FromStr;

use half::{bf16, f16};
use serde::{Deserialize, Serialize};

use crate::error::{FormatError, Result};

/// The element type of stored values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueDtype {
    /// IEEE single precision (lossless for f32 checkpoints).
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16 (8-bit exponent, 7-bit mantissa).
    Bf16,
}

impl ValueDtype {
    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            ValueDtype::F32 => 4,
            ValueDtype::F16 | ValueDtype::Bf16 => 2,
        }
    }

    /// The safetensors dtype name (`F32`, `F16`, `BF16`).
    pub fn safetensors_name(self) -> &'static str {
        match self {
            ValueDtype::F32 => "F32",
            ValueDtype::F16 => "F16",
            ValueDtype::Bf16 => "BF16",
        }
    }

    /// Parses a safetensors dtype name.
    pub fn from_safetensors_name(s: &str) -> Option<Self> {
        match s {
            "F32" => Some(ValueDtype::F32),
            "F16" => Some(ValueDtype::F16),
            "BF16" => Some(ValueDtype::Bf16),
            _ => None,
        }
    }

    /// Rounds an f32 to this type and back (what storing it would keep).
    pub fn round(self, x: f32) -> f32 {
        match self {
            ValueDtype::F32 => x,
            ValueDtype::F16 => f16::from_f32(x).to_f32(),
            ValueDtype::Bf16 => bf16::from_f32(x).to_f32(),
        }
    }
}

impl fmt::Display for ValueDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueDtype::F32 => "f32",
            ValueDtype::F16 => "f16",
            ValueDtype::Bf16 => "bf16",
        })
    }
}

impl FromStr for ValueDtype {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(ValueDtype::F32),
            "f16" | "float16" | "fp16" => Ok(ValueDtype::F16),
            "bf16" | "bfloat16" => Ok(ValueDtype::Bf16),
            _ => Err(format!(
                "unknown value type '{s}' (expected f32, f16 or bf16)"
            )),
        }
    }
}

/// A packed array of values in one [`ValueDtype`].
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// f32 values.
    F32(Vec<f32>),
    /// f16 bit patterns.
    F16(Vec<u16>),
    /// bf16 bit patterns.
    Bf16(Vec<u16>),
}

impl Values {
    /// Stores `v` as `dtype` (rounding to nearest even for 16-bit types).
    pub fn from_f32(v: &[f32], dtype: ValueDtype) -> Self {
        match dtype {
            ValueDtype::F32 => Values::F32(v.to_vec()),
            ValueDtype::F16 => Values::F16(v.iter().map(|&x| f16::from_f32(x).to_bits()).collect()),
            ValueDtype::Bf16 => {
                Values::Bf16(v.iter().map(|&x| bf16::from_f32(x).to_bits()).collect())
            }
        }
    }

    /// An empty array of `dtype` with room for `n` values.
    pub fn with_capacity(dtype: ValueDtype, n: usize) -> Self {
        match dtype {
            ValueDtype::F32 => Values::F32(Vec::with_capacity(n)),
            ValueDtype::F16 => Values::F16(Vec::with_capacity(n)),
            ValueDtype::Bf16 => Values::Bf16(Vec::with_capacity(n)),
        }
    }

    /// Appends one value (rounded to the array's type).
    pub fn push(&mut self, x: f32) {
        match self {
            Values::F32(v) => v.push(x),
            Values::F16(v) => v.push(f16::from_f32(x).to_bits()),
            Values::Bf16(v) => v.push(bf16::from_f32(x).to_bits()),
        }
    }

    /// The element type.
    pub fn dtype(&self) -> ValueDtype {
        match self {
            Values::F32(_) => ValueDtype::F32,
            Values::F16(_) => ValueDtype::F16,
            Values::Bf16(_) => ValueDtype::Bf16,
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::F16(v) | Values::Bf16(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of storage.
    pub fn nbytes(&self) -> usize {
        self.len() * self.dtype().size()
    }

    /// Value `i` widened to f32.
    ///
    /// # Panics
    /// If `i` is out of range.
    #[inline]
    pub fn get(&self, i: usize) -> f32 {
        match self {
            Values::F32(v) => v[i],
            Values::F16(v) => f16::from_bits(v[i]).to_f32(),
            Values::Bf16(v) => bf16::from_bits(v[i]).to_f32(),
        }
    }

    /// All values widened to f32.
    pub fn to_f32(&self) -> Vec<f32> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }

    /// Little-endian bytes (the safetensors layout).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Values::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Values::F16(v) | Values::Bf16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    /// Reads little-endian bytes of `dtype`.
    ///
    /// # Errors
    /// A byte count that is not a multiple of the element size.
    pub fn from_le_bytes(dtype: ValueDtype, bytes: &[u8]) -> Result<Self> {
        if !bytes.len().is_multiple_of(dtype.size()) {
            return Err(FormatError::Unsupported(format!(
                "{} bytes are not a whole number of {dtype} values",
                bytes.len()
            )));
        }
        Ok(match dtype {
            ValueDtype::F32 => Values::F32(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            ValueDtype::F16 => Values::F16(u16s(bytes)),
            ValueDtype::Bf16 => Values::Bf16(u16s(bytes)),
        })
    }

    /// Fails on the first NaN or infinite value.
    ///
    /// # Errors
    /// [`FormatError::NonFinite`] naming its index.
    pub fn check_finite(&self) -> Result<()> {
        for i in 0..self.len() {
            let x = self.get(i);
            if !x.is_finite() {
                return Err(FormatError::NonFinite { index: i, value: x });
            }
        }
        Ok(())
    }
}

fn u16s(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// Column (or row) indices, narrowed to u16 when every index fits.
#[derive(Debug, Clone, PartialEq)]
pub enum Indices {
    /// Indices below 65,536.
    U16(Vec<u16>),
    /// Any index.
    U32(Vec<u32>),
}

impl Indices {
    /// The narrowest index array able to hold values below `bound`.
    pub fn with_bound(bound: usize, capacity: usize) -> Self {
        if bound <= usize::from(u16::MAX) + 1 {
            Indices::U16(Vec::with_capacity(capacity))
        } else {
            Indices::U32(Vec::with_capacity(capacity))
        }
    }

    /// Appends an index (the caller keeps it below the bound it chose the width for).
    pub fn push(&mut self, i: usize) {
        match self {
            Indices::U16(v) => v.push(i as u16),
            Indices::U32(v) => v.push(i as u32),
        }
    }

    /// Number of indices.
    pub fn len(&self) -> usize {
        match self {
            Indices::U16(v) => v.len(),
            Indices::U32(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index `i`.
    ///
    /// # Panics
    /// If `i` is out of range.
    #[inline]
    pub fn get(&self, i: usize) -> usize {
        match self {
            Indices::U16(v) => usize::from(v[i]),
            Indices::U32(v) => v[i] as usize,
        }
    }

    /// Bytes per index.
    pub fn width(&self) -> usize {
        match self {
            Indices::U16(_) => 2,
            Indices::U32(_) => 4,
        }
    }

    /// Bytes of storage.
    pub fn nbytes(&self) -> usize {
        self.len() * self.width()
    }

    /// Little-endian bytes.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Indices::U16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Indices::U32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    /// Reads little-endian indices of `width` bytes (2 or 4).
    ///
    /// # Errors
    /// Another width, or a byte count that is not a multiple of it.
    pub fn from_le_bytes(width: usize, bytes: &[u8]) -> Result<Self> {
        if (width != 2 && width != 4) || !bytes.len().is_multiple_of(width) {
            return Err(FormatError::Unsupported(format!(
                "{} bytes are not a whole number of {width}-byte indices",
                bytes.len()
            )));
        }
        Ok(if width == 2 {
            Indices::U16(u16s(bytes))
        } else {
            Indices::U32(
                bytes
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )
        })
    }
}
