//! GGUF v2/v3: a bounds-checked mmap reader with zero-copy tensor views, and a streaming writer.
//!
//! Layout (all little-endian): magic `GGUF`, version u32, tensor count u64, metadata count u64,
//! the metadata entries (key string, value type u32, value), the tensor infos (name, n_dims u32,
//! ne[n_dims] u64 with the row length first, ggml type u32, data offset u64), padding to the
//! alignment (`general.alignment`, default 32), then the data section, each tensor aligned.
//! Strings are a u64 length and bytes; arrays an element type u32, a u64 length and elements.

mod cursor;
mod encode;
mod error;
mod file;
pub mod keys;
mod metadata;
mod reader;
mod tensor;
mod value;
mod writer;

pub use error::{GgufError, Result};
pub use file::GgufFile;
pub use metadata::{MetaEntry, Metadata};
pub use reader::{GgufHeader, DEFAULT_ALIGNMENT, MAGIC, MAX_ARRAY_DEPTH};
pub use tensor::{tensor_nbytes, TensorInfo, TensorSpec, MAX_DIMS};
pub use value::{Array, FromValue, GgufString, Value, ValueType};
pub use writer::GgufWriter;
