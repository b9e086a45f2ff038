//! Sparsity patterns (seed 003 "k:n"; Sun et al. 2023 "Wanda" §3 "prune_n:prune_m"; Frantar &
//! Alistarh 2023 "SparseGPT" §3.3 "n:m sparsity"): either an unstructured ratio of zeros per
//! matrix, or N:M, meaning **N zeros in every group of M consecutive weights along the input
//! dimension of each row** (so 2:4 and 4:8 are both 50% sparse).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::PruneError;

/// A sparsity pattern for one weight matrix `(out, in)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pattern {
    /// A fraction `ratio` in [0, 1) of the weights become zero, with no constraint on where.
    Unstructured {
        /// Fraction of weights to zero.
        ratio: f64,
    },
    /// N zeros in every group of M consecutive weights along the input dimension of a row.
    NOfM {
        /// Zeros per group.
        n: usize,
        /// Group size.
        m: usize,
    },
}

impl Pattern {
    /// Parses `"2:4"` (N:M) or a float such as `"0.5"` (unstructured), and validates it.
    ///
    /// # Errors
    /// [`PruneError::BadPattern`] when the text is neither form, or when N:M is not 0 < N < M;
    /// [`PruneError::BadSparsity`] when the ratio is outside [0, 1).
    pub fn parse(text: &str) -> Result<Pattern, PruneError> {
        let t = text.trim();
        let bad = |reason: &str| PruneError::BadPattern {
            pattern: text.to_string(),
            reason: reason.to_string(),
        };
        let pattern = if let Some((n, m)) = t.split_once(':') {
            let n: usize = n
                .trim()
                .parse()
                .map_err(|_| bad("N in N:M is not a non-negative integer"))?;
            let m: usize = m
                .trim()
                .parse()
                .map_err(|_| bad("M in N:M is not a non-negative integer"))?;
            Pattern::NOfM { n, m }
        } else {
            let ratio: f64 = t
                .parse()
                .map_err(|_| bad("expected N:M (e.g. 2:4) or a sparsity ratio (e.g. 0.5)"))?;
            Pattern::Unstructured { ratio }
        };
        pattern.validate()?;
        Ok(pattern)
    }

    /// Checks the pattern on its own: ratio in [0, 1), or 0 < N < M.
    ///
    /// # Errors
    /// [`PruneError::BadSparsity`] or [`PruneError::BadPattern`].
    pub fn validate(&self) -> Result<(), PruneError> {
        match *self {
            Pattern::Unstructured { ratio } => {
                // `contains` is false for NaN.
                if (0.0..1.0).contains(&ratio) {
                    Ok(())
                } else {
                    Err(PruneError::BadSparsity { value: ratio })
                }
            }
            Pattern::NOfM { n, m } => {
                if n == 0 || n >= m {
                    Err(PruneError::BadPattern {
                        pattern: self.to_string(),
                        reason: "N:M needs 0 < N < M".to_string(),
                    })
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Checks that the pattern fits a matrix with `cols` input features.
    ///
    /// # Errors
    /// [`PruneError::PatternDoesNotDivide`] when M does not divide `cols`.
    pub fn check_cols(&self, tensor: &str, cols: usize) -> Result<(), PruneError> {
        match *self {
            Pattern::NOfM { m, .. } if m == 0 || !cols.is_multiple_of(m) => {
                Err(PruneError::PatternDoesNotDivide {
                    tensor: tensor.to_string(),
                    m,
                    cols,
                })
            }
            _ => Ok(()),
        }
    }

    /// The fraction of zeros the pattern asks for: `ratio`, or N/M.
    pub fn target_sparsity(&self) -> f64 {
        match *self {
            Pattern::Unstructured { ratio } => ratio,
            Pattern::NOfM { n, m } => n as f64 / m as f64,
        }
    }

    /// True when the pattern prunes nothing (unstructured ratio 0).
    pub fn is_noop(&self) -> bool {
        matches!(*self, Pattern::Unstructured { ratio } if ratio == 0.0)
    }
}

impl FromStr for Pattern {
    type Err = PruneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pattern::parse(s)
    }
}

/// Writes the form [`Pattern::parse`] reads back: `"0.5"` or `"2:4"`.
impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Pattern::Unstructured { ratio } => write!(f, "{ratio}"),
            Pattern::NOfM { n, m } => write!(f, "{n}:{m}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trip() {
        for text in ["2:4", "4:8", "0.5", "0.3", "0"] {
            let p = Pattern::parse(text).unwrap();
            assert_eq!(Pattern::parse(&p.to_string()).unwrap(), p);
        }
        assert_eq!(Pattern::parse("2:4").unwrap().target_sparsity(), 0.5);
        assert_eq!(Pattern::parse("4:8").unwrap().target_sparsity(), 0.5);
        for bad in [
            "", "x", "2:", "4:2", "0:4", "4:4", "1.0", "-0.1", "NaN", "2:4:8",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&Pattern::NOfM { n: 2, m: 4 }).unwrap();
        assert_eq!(json, r#"{"kind":"n_of_m","n":2,"m":4}"#);
    }
}
