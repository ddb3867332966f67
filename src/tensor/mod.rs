//! The hand-written tensor runtime.

pub mod matmul;
mod matrix;

pub use matrix::{MatrixError, QMatrix};
