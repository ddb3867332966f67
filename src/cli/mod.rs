//! Subcommand implementations.

pub mod bench;
pub mod bench_gpu;
pub mod chat;
pub mod common;
pub mod devices;
pub mod info;
pub mod perplexity;
pub mod run;
pub mod tokenize;
