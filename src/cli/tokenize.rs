//! `tandem tokenize`: text to token ids with the model file's tokenizer.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use tandem::tokenizer::Tokenizer;

#[derive(Args, Debug)]
pub struct TokenizeArgs {
    /// The GGUF file (a vocab-only file is enough).
    #[arg(short = 'm', long = "model")]
    pub model: PathBuf,
    /// The text to tokenize.
    #[arg(conflicts_with = "file")]
    pub text: Option<String>,
    /// Tokenize this file's exact bytes (which must be UTF-8).
    #[arg(long = "file")]
    pub file: Option<PathBuf>,
    /// Do not add the BOS token the model asks for.
    #[arg(long = "no-bos")]
    pub no_bos: bool,
    /// Print a JSON array instead of space-separated ids.
    #[arg(long = "json")]
    pub json: bool,
}

pub fn run(args: TokenizeArgs) -> Result<()> {
    let file = super::common::open_gguf(&args.model)?;
    let tok = Tokenizer::from_gguf(&file).with_context(|| args.model.display().to_string())?;
    let text = match (&args.text, &args.file) {
        (Some(t), _) => t.clone(),
        (None, Some(f)) => super::common::read_utf8(f)?,
        (None, None) => bail!("give the text, or --file F"),
    };
    let ids = tok.encode(&text, !args.no_bos)?;
    if args.json {
        println!("{}", serde_json::to_string(&ids)?);
    } else {
        let line: Vec<String> = ids.iter().map(u32::to_string).collect();
        println!("{}", line.join(" "));
    }
    Ok(())
}
