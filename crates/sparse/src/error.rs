//! Errors of the sparse formats.

use thiserror::Error;

/// Why a matrix could not be built, converted or validated. The checkpoint loader wraps it with
/// the tensor name.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum FormatError {
    /// A buffer length or shape disagrees with the matrix shape.
    #[error("{what}: expected {expected}, found {found}")]
    Length {
        /// Which buffer or field.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        found: usize,
    },
    /// An index points outside the matrix or breaks the format's ordering rules.
    #[error("{0}")]
    Index(String),
    /// The matrix does not fit the requested format (an N:M pattern that is not N:M, ...).
    #[error("{0}")]
    Unsupported(String),
    /// A value that is NaN or infinite.
    #[error("non-finite value {value} at flat index {index}")]
    NonFinite {
        /// Flat row-major index.
        index: usize,
        /// The value.
        value: f32,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, FormatError>;

/// Checks that a buffer has the expected length.
pub(crate) fn check_len(what: &'static str, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(FormatError::Length {
            what,
            expected,
            found,
        })
    }
}
