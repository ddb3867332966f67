//! `tandem-quantize`: Hugging Face weights or GGUF in, quantized GGUF out.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("tandem-quantize: conversion is not implemented yet")
}
