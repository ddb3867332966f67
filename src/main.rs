//! The `tandem` command line.

mod cli;

use clap::{Parser, Subcommand};

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
    Info(cli::info::InfoArgs),
    /// List the Vulkan devices and what each offers.
    Devices(cli::devices::DevicesArgs),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => tandem::usage::exit_on_parse_error(e),
    };
    let result = match cli.command {
        Command::Run(a) => cli::run::run(a),
        Command::Chat(a) => cli::chat::run(a),
        Command::Bench(a) => cli::bench::run(a),
        Command::Perplexity(a) => cli::perplexity::run(a),
        Command::Tokenize(a) => cli::tokenize::run(a),
        Command::Info(a) => cli::info::run(&a),
        Command::Devices(a) => cli::devices::run(&a),
    };
    if let Err(e) = result {
        eprintln!("error: {}", cli::common::error_chain(&e));
        std::process::exit(1);
    }
}
