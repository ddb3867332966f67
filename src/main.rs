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
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
    let result = match cli.command {
        Command::Run(a) => cli::run::run(a),
        Command::Chat(a) => cli::chat::run(a),
        Command::Bench(a) => cli::bench::run(a),
        Command::Perplexity(a) => cli::perplexity::run(a),
        Command::Tokenize(a) => cli::tokenize::run(a),
        Command::Info(a) => cli::info::run(&a),
    };
    if let Err(e) = result {
        eprintln!("error: {}", cli::common::error_chain(&e));
        std::process::exit(1);
    }
}

/// `--help`, `--version` and a bare `tandem` print as clap writes them; a usage error prints its first line
/// (`error: …`, one line like every other error) and exits with 2, failures with 1.
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    eprintln!("{}", text.lines().next().unwrap_or("error: bad arguments"));
    std::process::exit(2);
}
