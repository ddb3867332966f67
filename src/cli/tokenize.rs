//! `tandem tokenize`: text to token ids with the model file's tokenizer.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use tandem::gguf::GgufFile;
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
    let file = GgufFile::open(&args.model)
        .with_context(|| format!("cannot read {}", args.model.display()))?;
    let tok = Tokenizer::from_gguf(&file).with_context(|| args.model.display().to_string())?;
    let text = match (&args.text, &args.file) {
        (Some(t), _) => t.clone(),
        (None, Some(f)) => {
            let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
            String::from_utf8(bytes).map_err(|e| {
                anyhow::anyhow!(
                    "{}: not UTF-8 at byte {}",
                    f.display(),
                    e.utf8_error().valid_up_to()
                )
            })?
        }
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
