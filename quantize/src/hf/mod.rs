//! Hugging Face (and Mistral) model directories: the config, the safetensors shards and the
//! tokenizer files.

pub mod config;
pub mod safetensors;
pub mod spm;
pub mod tokenizer;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The files of `dir` whose names start with `prefix` and end with `.safetensors`, sorted (the
/// converter's `get_model_part_names`).
pub fn shard_files(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) && name.ends_with(".safetensors") {
            files.push(entry.path());
        }
    }
    files.sort();
    if files.is_empty() {
        let index = dir.join(format!("{prefix}.safetensors.index.json"));
        if index.is_file() {
            bail!(
                "{}: the index names shards, but no {prefix}*.safetensors file is present",
                index.display()
            );
        }
        bail!("{}: no {prefix}*.safetensors files", dir.display());
    }
    Ok(files)
}
