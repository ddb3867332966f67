//! tandem: Mixtral-class mixture-of-experts inference on consumer hardware.
//!
//! The data path runs one way: [`gguf`] (mmap) → [`quant`] block views → [`tensor`] kernels.

pub mod backend;
pub mod chat;
pub mod engine;
pub mod gguf;
pub mod machine;
pub mod model;
pub mod progress;
pub mod quant;
pub mod sample;
pub mod session;
pub mod tensor;
pub mod tokenizer;
pub mod usage;
