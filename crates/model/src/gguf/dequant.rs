//! Conversion of ggml tensor data to `f32`.
//!
//! GGUF stores tensor data in ggml's block formats (see ggml's
//! `docs/gguf.md` and the block structs in `ggml-common.h`). All multi-byte
//! fields are little-endian. Supported layouts:
//!
//! * `F32`, `F16`, `BF16`: one element per "block".
//! * `Q4_0` (32 weights, 18 bytes): `f16 d`, then 16 bytes of nibbles.
//!   Byte `j` holds element `j` in its low nibble and element `j + 16` in
//!   its high nibble; value = `(q - 8) * d`.
//! * `Q4_1` (32 weights, 20 bytes): `f16 d`, `f16 m`, 16 bytes of nibbles
//!   (same order as `Q4_0`); value = `q * d + m`.
//! * `Q8_0` (32 weights, 34 bytes): `f16 d`, 32 × `i8 q`; value = `q * d`.
//! * `Q4_K` (256 weights, 144 bytes): `f16 d`, `f16 dmin`, 12 bytes of
//!   packed 6-bit (scale, min) pairs for 8 sub-blocks of 32, 128 bytes of
//!   nibbles. Each group of 64 weights uses 32 bytes: low nibbles are the
//!   first 32 weights (sub-block `2g`), high nibbles the next 32
//!   (sub-block `2g + 1`); value = `d * scale * q - dmin * min`.
//! * `Q6_K` (256 weights, 210 bytes): 128 bytes `ql` (low 4 bits), 64 bytes
//!   `qh` (high 2 bits), 16 × `i8` scales (one per 16 weights), `f16 d`;
//!   value = `d * scale * (q - 32)`. Each half of 128 weights uses 64 bytes
//!   of `ql` and 32 bytes of `qh` (see `q6_k_block`).
//!
//! Work is split over blocks with rayon. Output is in storage order, which
//! is row-major for the reversed (HF-style) shape.

use half::{bf16, f16};
use rayon::prelude::*;

use super::types::GgmlType;

/// Why a buffer could not be dequantized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DequantError {
    /// The type has no dequantization routine here.
    #[error("tensor type {0} is not supported for dequantization")]
    Unsupported(GgmlType),
    /// The element count is not a whole number of blocks.
    #[error("{n_elements} elements is not a multiple of the {block}-element block size of {ty}")]
    NotBlockMultiple {
        /// The tensor type.
        ty: GgmlType,
        /// Elements requested.
        n_elements: usize,
        /// Elements per block.
        block: usize,
    },
    /// The buffer length does not match the element count.
    #[error("{ty} data for {n_elements} elements must be {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The tensor type.
        ty: GgmlType,
        /// Elements requested.
        n_elements: usize,
        /// Bytes needed.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
}

/// Blocks handed to one rayon task.
const BLOCKS_PER_TASK: usize = 1024;

/// Dequantizes `n_elements` values of type `ty` from `data`.
///
/// # Errors
/// [`DequantError::Unsupported`] for types other than F32, F16, BF16, Q4_0,
/// Q4_1, Q8_0, Q4_K and Q6_K; [`DequantError::NotBlockMultiple`] or
/// [`DequantError::SizeMismatch`] when `data` does not hold exactly
/// `n_elements` values.
pub fn dequantize(ty: GgmlType, data: &[u8], n_elements: usize) -> Result<Vec<f32>, DequantError> {
    if !ty.is_dequantizable() {
        return Err(DequantError::Unsupported(ty));
    }
    let (block, type_size) = ty.block_layout();
    // Both are small constants (≤ 256), so the casts are lossless.
    let (block, type_size) = (block as usize, type_size as usize);
    if !n_elements.is_multiple_of(block) {
        return Err(DequantError::NotBlockMultiple {
            ty,
            n_elements,
            block,
        });
    }
    let expected = (n_elements / block).checked_mul(type_size);
    if expected != Some(data.len()) {
        return Err(DequantError::SizeMismatch {
            ty,
            n_elements,
            expected: expected.unwrap_or(usize::MAX),
            actual: data.len(),
        });
    }
    // out: [n_elements] in storage order.
    let mut out = vec![0f32; n_elements];
    match ty {
        GgmlType::F32 => run_blocks::<1, 4>(data, &mut out, |b, o| o[0] = f32::from_le_bytes(*b)),
        GgmlType::F16 => run_blocks::<1, 2>(data, &mut out, |b, o| {
            o[0] = f16::from_le_bytes(*b).to_f32();
        }),
        GgmlType::BF16 => run_blocks::<1, 2>(data, &mut out, |b, o| {
            o[0] = bf16::from_le_bytes(*b).to_f32();
        }),
        GgmlType::Q4_0 => run_blocks::<32, 18>(data, &mut out, q4_0_block),
        GgmlType::Q4_1 => run_blocks::<32, 20>(data, &mut out, q4_1_block),
        GgmlType::Q8_0 => run_blocks::<32, 34>(data, &mut out, q8_0_block),
        GgmlType::Q4_K => run_blocks::<256, 144>(data, &mut out, q4_k_block),
        GgmlType::Q6_K => run_blocks::<256, 210>(data, &mut out, q6_k_block),
        other => return Err(DequantError::Unsupported(other)),
    }
    Ok(out)
}

/// Applies `block_fn` to every `BS`-byte block of `data`, writing `QK`
/// outputs per block. The caller guarantees `data.len() / BS == out.len() / QK`.
fn run_blocks<const QK: usize, const BS: usize>(
    data: &[u8],
    out: &mut [f32],
    block_fn: fn(&[u8; BS], &mut [f32; QK]),
) {
    out.par_chunks_mut(QK * BLOCKS_PER_TASK)
        .zip(data.par_chunks(BS * BLOCKS_PER_TASK))
        .for_each(|(out_chunk, data_chunk)| {
            for (o, b) in out_chunk
                .chunks_exact_mut(QK)
                .zip(data_chunk.chunks_exact(BS))
            {
                // chunks_exact guarantees the lengths; the conversions cannot fail.
                if let (Ok(o), Ok(b)) = (<&mut [f32; QK]>::try_from(o), <&[u8; BS]>::try_from(b)) {
                    block_fn(b, o);
                }
            }
        });
}

/// Reads a little-endian f16 at byte `at` of a block.
#[inline(always)]
fn half_at<const BS: usize>(b: &[u8; BS], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// Q4_0: `[f16 d][16 B nibbles]`.
fn q4_0_block(b: &[u8; 18], out: &mut [f32; 32]) {
    let d = half_at(b, 0);
    for j in 0..16 {
        let q = b[2 + j];
        out[j] = ((q & 0x0F) as i32 - 8) as f32 * d;
        out[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
    }
}

/// Q4_1: `[f16 d][f16 m][16 B nibbles]`.
fn q4_1_block(b: &[u8; 20], out: &mut [f32; 32]) {
    let d = half_at(b, 0);
    let m = half_at(b, 2);
    for j in 0..16 {
        let q = b[4 + j];
        out[j] = (q & 0x0F) as f32 * d + m;
        out[j + 16] = (q >> 4) as f32 * d + m;
    }
}

/// Q8_0: `[f16 d][32 × i8]`.
fn q8_0_block(b: &[u8; 34], out: &mut [f32; 32]) {
    let d = half_at(b, 0);
    for j in 0..32 {
        out[j] = (b[2 + j] as i8) as f32 * d;
    }
}

/// Unpacks the 6-bit (scale, min) pair `j` (0..8) of a K-quant block from
/// its 12-byte `scales` field (ggml's `get_scale_min_k4`): pairs 0..4 are
/// the low 6 bits of bytes `j` and `j + 4`; pairs 4..8 take their low 4
/// bits from byte `j + 4` and their top 2 bits from the spare high bits of
/// bytes `j - 4` and `j`.
#[inline(always)]
fn scale_min_k4(j: usize, s: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// Q4_K: `[f16 d][f16 dmin][12 B scales][128 B nibbles]`.
fn q4_k_block(b: &[u8; 144], out: &mut [f32; 256]) {
    let d = half_at(b, 0);
    let dmin = half_at(b, 2);
    let mut scales = [0u8; 12];
    scales.copy_from_slice(&b[4..16]);
    for g in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * g, &scales);
        let (sc2, m2) = scale_min_k4(2 * g + 1, &scales);
        let (d1, min1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, min2) = (d * sc2 as f32, dmin * m2 as f32);
        for l in 0..32 {
            let q = b[16 + 32 * g + l];
            out[64 * g + l] = d1 * (q & 0x0F) as f32 - min1;
            out[64 * g + 32 + l] = d2 * (q >> 4) as f32 - min2;
        }
    }
}

/// Q6_K: `[128 B ql][64 B qh][16 × i8 scales][f16 d]`.
///
/// For half `n` (128 weights), with `ql = ql[64n..]`, `qh = qh[32n..]`,
/// `sc = scales[8n..]` and `l` in 0..32 (`is = l / 16`):
/// weight `l`      = low nibble of `ql[l]`       | bits 0-1 of `qh[l]` << 4, scale `sc[is]`;
/// weight `l + 32` = low nibble of `ql[l + 32]`  | bits 2-3 of `qh[l]` << 4, scale `sc[is + 2]`;
/// weight `l + 64` = high nibble of `ql[l]`      | bits 4-5 of `qh[l]` << 4, scale `sc[is + 4]`;
/// weight `l + 96` = high nibble of `ql[l + 32]` | bits 6-7 of `qh[l]` << 4, scale `sc[is + 6]`.
fn q6_k_block(b: &[u8; 210], out: &mut [f32; 256]) {
    const QH: usize = 128;
    const SC: usize = 192;
    let d = half_at(b, 208);
    for n in 0..2 {
        let (ql, qh, sc, y) = (64 * n, QH + 32 * n, SC + 8 * n, 128 * n);
        for l in 0..32 {
            let is = l / 16;
            let h = b[qh + l];
            let lo = b[ql + l];
            let hi = b[ql + l + 32];
            let q1 = ((lo & 0x0F) | ((h & 3) << 4)) as i32 - 32;
            let q2 = ((hi & 0x0F) | (((h >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((lo >> 4) | (((h >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((hi >> 4) | (((h >> 6) & 3) << 4)) as i32 - 32;
            let s = |k: usize| d * (b[sc + is + k] as i8) as f32;
            out[y + l] = s(0) * q1 as f32;
            out[y + l + 32] = s(2) * q2 as f32;
            out[y + l + 64] = s(4) * q3 as f32;
            out[y + l + 96] = s(6) * q4 as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_0_known_block() {
        // d = 1.0 (f16 0x3C00), nibbles: low = j % 16, high = 15 - j.
        let mut b = vec![0x00, 0x3C];
        for j in 0..16u8 {
            b.push(j | ((15 - j) << 4));
        }
        let v = dequantize(GgmlType::Q4_0, &b, 32).unwrap_or_default();
        assert_eq!(v.len(), 32);
        for j in 0..16 {
            assert_eq!(v[j], j as f32 - 8.0);
            assert_eq!(v[j + 16], (15 - j) as f32 - 8.0);
        }
    }

    #[test]
    fn size_checks() {
        assert!(matches!(
            dequantize(GgmlType::Q8_0, &[0; 33], 32),
            Err(DequantError::SizeMismatch { .. })
        ));
        assert!(matches!(
            dequantize(GgmlType::Q8_0, &[0; 34], 31),
            Err(DequantError::NotBlockMultiple { .. })
        ));
        assert!(matches!(
            dequantize(GgmlType::Q5_K, &[0; 176], 256),
            Err(DequantError::Unsupported(GgmlType::Q5_K))
        ));
    }
}
