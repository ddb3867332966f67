//! `tandem-quantize`: Hugging Face weights or GGUF in, quantized GGUF out.

use anyhow::{Context, Result};
use clap::Parser;
use tandem_quantize::cli::{Cli, Command};
use tandem_quantize::commands;

fn main() -> Result<()> {
    let cli = Cli::parse();
    let threads = match &cli.command {
        Some(Command::Synth(a)) => a.output.threads,
        None => cli.convert.output.threads,
    };
    let n = threads.unwrap_or_else(tandem::machine::physical_cores);
    rayon::ThreadPoolBuilder::new()
        .num_threads(n.max(1))
        .build_global()
        .context("starting the thread pool")?;
    commands::run(&cli)
}
