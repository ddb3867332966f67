//! `tandem-quantize`: Hugging Face weights or GGUF in, quantized GGUF out.
//!
//! Errors print as one `error: …` line, as `tandem`'s do: exit status 2 for a usage error (bad
//! flags), 1 for a conversion that failed.

use anyhow::{Context, Result};
use clap::Parser;
use tandem_quantize::cli::{Cli, Command};
use tandem_quantize::commands;

fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|e| tandem::usage::exit_on_parse_error(e));
    if let Err(e) = run(&cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: &Cli) -> Result<()> {
    let threads = match &cli.command {
        Some(Command::Synth(a)) => a.output.threads,
        None => cli.convert.output.threads,
    };
    let n = threads.unwrap_or_else(tandem::machine::physical_cores);
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .context("starting the thread pool")?;
    commands::run(cli)
}
