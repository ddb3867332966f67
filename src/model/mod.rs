//! The model: configuration and tensor binding from GGUF, the forward pass, the MoE router and
//! the KV cache.

pub mod config;
pub mod experts;
pub mod forward;
pub mod kv_cache;
mod load;
pub mod moe;
pub mod scratch;
pub mod tensors;
pub mod weights;

pub use config::ModelConfig;
pub use forward::{Logits, Model};
pub use kv_cache::KvCache;
pub use load::LoadError;
pub use scratch::Scratch;
