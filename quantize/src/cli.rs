//! The command line: `tandem-quantize SRC OUT.gguf --type TYPE ...` and
//! `tandem-quantize synth --arch NAME --layers N --type TYPE OUT.gguf`.

use crate::ftype::FileType;
use crate::rules::Keep;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "tandem-quantize",
    version,
    about = "Convert Hugging Face (or GGUF) weights into a quantized GGUF file",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub convert: ConvertArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a model with real dimensions and random weights (for benchmarks).
    Synth(SynthArgs),
}

/// Options shared by every command that writes a GGUF file.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output type: f32, f16, bf16, q8_0, q6_k, q5_k_m, q5_0, q5_1, q4_k_m, q4_0, q4_1.
    #[arg(long = "type", value_name = "TYPE", required = true)]
    pub ftype: Option<FileType>,
    /// One type for every tensor of 2 or more dimensions (no per-tensor mix).
    #[arg(long)]
    pub pure: bool,
    /// Store tensors whose name matches REGEX as TYPE (e.g. 'output\.weight=q8_0'); repeatable.
    #[arg(long, value_name = "REGEX=TYPE")]
    pub keep: Vec<Keep>,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Print the plan (tensor, type, shape, bytes) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// After writing, dequantize a sample of rows and report the RMSE against the source.
    #[arg(long)]
    pub verify: bool,
    /// Worker threads, at most the machine's logical CPUs (default: physical cores).
    #[arg(short = 't', long = "threads", value_name = "N", value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// A Hugging Face model directory (config.json + safetensors), a Mistral directory
    /// (params.json + consolidated.safetensors), or a GGUF file.
    #[arg(value_name = "SRC", required = true)]
    pub src: Option<PathBuf>,
    /// The GGUF file to write.
    #[arg(value_name = "OUT.gguf", required = true)]
    pub out: Option<PathBuf>,
    /// `general.name` (default: derived from the directory name, as llama.cpp does).
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Model size to imitate (from models.toml): mixtral-8x7b, mixtral-8x22b, mistral-7b.
    #[arg(long, default_value = "mixtral-8x7b")]
    pub arch: String,
    /// Number of layers (default: the real model's).
    #[arg(long)]
    pub layers: Option<u32>,
    /// Take the tokenizer.* metadata from this GGUF (e.g. a llama.cpp vocab file) instead of
    /// generating a byte-fallback vocabulary.
    #[arg(long, value_name = "FILE")]
    pub vocab: Option<PathBuf>,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 1234)]
    pub seed: u64,
    /// The GGUF file to write.
    #[arg(value_name = "OUT.gguf")]
    pub out: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_threads(s: &str) -> Result<usize, String> {
    let n = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    tandem::machine::check_threads(n)
}
