//! The one error type of the GGUF reader and writer. Every variant that comes from file contents
//! names the field (header field, metadata key or tensor name) and the byte offset it was read at.

use std::path::PathBuf;

/// Result alias for this module.
pub type Result<T, E = GgufError> = std::result::Result<T, E>;

/// Everything that can go wrong reading or writing a GGUF file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// An operating-system error on `path`.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The first four bytes are not `GGUF`.
    #[error("not a GGUF file: magic at byte 0 is {found:?}, expected \"GGUF\"")]
    BadMagic { found: String },

    /// A little-endian version tandem does not read (only 2 and 3 are read).
    #[error("unsupported GGUF version {version} (field `version` at byte 4); tandem reads versions 2 and 3")]
    UnsupportedVersion { version: u32 },

    /// The version field only makes sense byte-swapped: the file was written big-endian.
    #[error("big-endian GGUF is not supported (field `version` at byte 4 reads as {swapped} when byte-swapped)")]
    BigEndian { swapped: u32 },

    /// The file ends inside `field`.
    #[error("truncated GGUF: {field} at byte {offset} needs {need} bytes but only {left} remain")]
    Truncated {
        field: String,
        offset: u64,
        need: u64,
        left: u64,
    },

    /// `field` holds a value that is out of range, inconsistent or unknown.
    #[error("invalid GGUF: {field} at byte {offset}: {reason}")]
    Invalid {
        field: String,
        offset: u64,
        reason: String,
    },

    /// A required metadata key is absent.
    #[error("metadata key `{key}` is missing")]
    MissingKey { key: String },

    /// A metadata value does not have the type (or range) the caller asked for.
    #[error("metadata key `{key}`{}: expected {expected}, found {found}", at_byte(*offset))]
    KeyType {
        key: String,
        offset: Option<u64>,
        expected: &'static str,
        found: String,
    },

    /// A typed view of tensor data was asked for with the wrong block type, or the bytes do not
    /// fit the block's size or alignment.
    #[error("tensor `{name}`: {reason}")]
    TensorView { name: String, reason: String },

    /// The writer was given inconsistent input or called out of order.
    #[error("GGUF writer: {field}: {reason}")]
    Write { field: String, reason: String },
}

fn at_byte(offset: Option<u64>) -> String {
    offset
        .map(|o| format!(" (at byte {o})"))
        .unwrap_or_default()
}

impl GgufError {
    pub(crate) fn invalid(
        field: impl Into<String>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        GgufError::Invalid {
            field: field.into(),
            offset,
            reason: reason.into(),
        }
    }

    pub(crate) fn write(field: impl Into<String>, reason: impl Into<String>) -> Self {
        GgufError::Write {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        GgufError::Io {
            path: path.into(),
            source,
        }
    }
}
