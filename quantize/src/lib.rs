//! `tandem-quantize`: Hugging Face safetensors (or GGUF) in, GGUF out, with llama.cpp's tensor
//! names, metadata and per-tensor quantization rules.
//!
//! The data path: a [`source::Source`] lists tensors and reads rows as f32 → [`plan`] maps them
//! to GGUF tensors (names from `models.toml` via [`catalog`], types from [`rules`]) → [`write`]
//! streams them through [`encode`] into tandem's GGUF writer.

pub mod catalog;
pub mod cli;
pub mod commands;
pub mod encode;
pub mod ftype;
pub mod gguf_source;
pub mod hf;
pub mod naming;
pub mod output;
pub mod params;
pub mod plan;
pub mod rules;
pub mod source;
pub mod synth;
pub mod verify;
pub mod vocab;
pub mod write;
