//! Subcommand implementations.

pub mod info;
