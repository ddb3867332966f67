//! The `tandem` command line.

mod cli;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "tandem",
    version,
    about = "Mixtral-class MoE inference on consumer hardware"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate text from a prompt.
    Run(cli::run::RunArgs),
    /// Chat with a model: an interactive REPL, or one answer to piped input.
    Chat(cli::chat::ChatArgs),
    /// Measure prompt and generation speed against the machine's memory bandwidth.
    Bench(cli::bench::BenchArgs),
    /// Perplexity over a text, and KL divergence against a saved base run.
    Perplexity(cli::perplexity::PerplexityArgs),
    /// Print the token ids of a text.
    Tokenize(cli::tokenize::TokenizeArgs),
    /// Print a GGUF file's header, metadata and tensor table.
    Info {
        /// The GGUF file.
        file: PathBuf,
    },
}

fn main() {
    let result = match Cli::parse().command {
        Command::Run(a) => cli::run::run(a),
        Command::Chat(a) => cli::chat::run(a),
        Command::Bench(a) => cli::bench::run(a),
        Command::Perplexity(a) => cli::perplexity::run(a),
        Command::Tokenize(a) => cli::tokenize::run(a),
        Command::Info { file } => cli::info::run(&file),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
