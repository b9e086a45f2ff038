//! Calibration sequences: `n` windows of `seqlen` tokens at seeded random offsets of a token
//! stream, as SparseGPT and Wanda draw random C4 excerpts (Frantar & Alistarh 2023, §4
//! "Datasets": 128 segments of 2048 tokens). Deterministic for a given seed.

use crate::error::{PruneError, Result};

/// SplitMix64 (Steele, Lea & Flood 2014): a small, well-mixed generator; we need no more.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform integer in `0..n` (n > 0), by rejection so there is no modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }
}

/// Draws `n` windows of `seqlen` tokens from `tokens`.
///
/// # Errors
/// `n` or `seqlen` of zero, or a stream shorter than one window.
pub fn sample_windows(tokens: &[u32], n: usize, seqlen: usize, seed: u64) -> Result<Vec<Vec<u32>>> {
    if n == 0 || seqlen == 0 {
        return Err(PruneError::Calibration(format!(
            "--nsamples ({n}) and --seqlen ({seqlen}) must both be at least 1"
        )));
    }
    if tokens.len() < seqlen {
        return Err(PruneError::Calibration(format!(
            "{} tokens is shorter than one window of --seqlen {seqlen}",
            tokens.len()
        )));
    }
    let starts = (tokens.len() - seqlen + 1) as u64;
    let mut rng = SplitMix64::new(seed);
    Ok((0..n)
        .map(|_| {
            let s = rng.below(starts) as usize;
            tokens[s..s + seqlen].to_vec()
        })
        .collect())
}

/// FNV-1a, 64 bits (Fowler, Noll & Vo): a small non-cryptographic hash for fingerprints.
pub fn fnv1a64(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// FNV-1a 64-bit hash of the calibration token ids (little-endian bytes), recorded in the
/// pruning report so that two runs can be checked to have used the same calibration data.
pub fn tokens_hash(samples: &[Vec<u32>]) -> String {
    let h = fnv1a64(samples.iter().flatten().flat_map(|t| t.to_le_bytes()));
    format!("fnv1a64:{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        let tokens: Vec<u32> = (0..1000).collect();
        let a = sample_windows(&tokens, 5, 100, 7).unwrap();
        assert_eq!(a, sample_windows(&tokens, 5, 100, 7).unwrap());
        assert_ne!(a, sample_windows(&tokens, 5, 100, 8).unwrap());
        for w in &a {
            assert_eq!(w.len(), 100);
            assert_eq!(w[99], w[0] + 99);
        }
        assert_eq!(tokens_hash(&a), tokens_hash(&a.clone()));
    }

    #[test]
    fn empty_or_short_text_is_an_error() {
        assert!(sample_windows(&[], 1, 8, 0).is_err());
        assert!(sample_windows(&[1, 2, 3], 1, 8, 0).is_err());
        assert!(sample_windows(&[1, 2, 3], 0, 2, 0).is_err());
        assert!(sample_windows(&[1, 2, 3], 1, 3, 0).is_ok());
    }
}
