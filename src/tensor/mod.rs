//! The hand-written tensor runtime: quantized matmul, row ops, KV storage and attention.

pub mod attention;
pub mod kv;
pub mod matmul;
mod matrix;
pub mod ops;

pub use matrix::{MatrixError, QMatrix};
