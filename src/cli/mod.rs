//! Subcommand implementations.

pub mod bench;
pub mod chat;
pub mod common;
pub mod info;
pub mod perplexity;
pub mod run;
pub mod tokenize;
