//! Chat: templates (the GGUF's Jinja or a built-in), conversation state, the turn driver with
//! KV-cache reuse across turns, and the REPL behind `tandem chat`.
//!
//! Data flow of a turn: [`Conversation`] → [`ChatTemplate::render`] (sandboxed Jinja, message
//! content marked) → [`PromptEncoder`] (control tokens only from template text) → ids →
//! [`Chat::turn`] (keep the cached prefix, with the cache's own tokens where the text is the same,
//! prefill the rest, generate).

pub mod commands;
pub mod conversation;
pub mod driver;
pub mod encode;
pub mod prompt;
mod realign;
pub mod repl;
mod strftime;
pub mod template;
mod watchdog;

pub use conversation::{Conversation, ConversationError, Message};
pub use driver::{Chat, Event, TurnStats};
pub use encode::PromptEncoder;
pub use prompt::{Prompt, PromptBuilder};
pub use template::{Builtin, ChatTemplate, TemplateError};

use crate::gguf::keys::TOKENIZER_CHAT_TEMPLATE;
use crate::gguf::GgufFile;
use crate::model::forward::ForwardError;
use crate::tokenizer::{Tokenizer, TokenizerError, Vocab};

/// End-of-turn tokens that stop an answer besides EOS, where the vocabulary has them.
const END_OF_TURN: [&str; 4] = ["<|im_end|>", "<|eot_id|>", "<|end|>", "<|endoftext|>"];

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error(transparent)]
    Forward(#[from] ForwardError),
    #[error(transparent)]
    Conversation(#[from] ConversationError),
    #[error("{0}")]
    Gguf(String),
    #[error(
        "chat template `{0}` rewrites message content that holds control-token text, so that text \
         cannot be kept apart from real control tokens; refusing to tokenize it"
    )]
    Unsafe(String),
    #[error("chat template `{0}` rendered nothing")]
    EmptyPrompt(String),
    #[error(
        "the last message needs {tokens} tokens but the context holds {n_ctx}, {reserve} of them \
         kept for the answer: raise --ctx or send a shorter message"
    )]
    TooLong {
        tokens: usize,
        n_ctx: usize,
        reserve: usize,
    },
    #[error("terminal: {0}")]
    Terminal(String),
}

/// Which template to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateChoice {
    /// The file's `tokenizer.chat_template`, else [`Builtin::Mistral`].
    Auto,
    Builtin(Builtin),
    /// Jinja source given by the user (`--template-file`).
    Source(String),
}

/// The file's own chat template, if it has one.
pub fn gguf_template(file: &GgufFile) -> Result<Option<&str>, ChatError> {
    file.metadata()
        .get_opt::<&str>(TOKENIZER_CHAT_TEMPLATE)
        .map_err(|e| ChatError::Gguf(e.to_string()))
}

/// The prompt builder for `file`'s tokenizer with the chosen template, and a note for the user
/// when the file had no template and a built-in one stands in.
pub fn prompt_builder<'t>(
    file: &GgufFile,
    tok: &'t Tokenizer,
    choice: &TemplateChoice,
) -> Result<(PromptBuilder<'t>, Option<String>), ChatError> {
    let token = |id: Option<u32>| id.and_then(|i| tok.piece(i)).unwrap_or_default();
    let (bos, eos) = (token(tok.bos), token(tok.eos));
    let mut note = None;
    let template = match choice {
        TemplateChoice::Builtin(b) => ChatTemplate::builtin(*b, &bos, &eos),
        TemplateChoice::Source(src) => ChatTemplate::new("file", src, &bos, &eos)?,
        TemplateChoice::Auto => match gguf_template(file)? {
            Some(src) => ChatTemplate::new("gguf", src, &bos, &eos)?,
            None => {
                note = Some(format!(
                    "the model file has no {TOKENIZER_CHAT_TEMPLATE}; using the built-in `mistral` template (choose with --template)"
                ));
                ChatTemplate::builtin(Builtin::Mistral, &bos, &eos)
            }
        },
    };
    let vocab = Vocab::from_gguf(file)?;
    let encoder = PromptEncoder::from_vocab(tok, &vocab);
    Ok((PromptBuilder { template, encoder }, note))
}

/// The tokens that end an answer: EOS and the vocabulary's end-of-turn tokens.
pub fn stop_ids(tok: &Tokenizer, encoder: &PromptEncoder) -> Vec<u32> {
    let mut ids: Vec<u32> = tok.eos.into_iter().collect();
    ids.extend(END_OF_TURN.iter().filter_map(|s| encoder.special_id(s)));
    ids.sort_unstable();
    ids.dedup();
    ids
}
