//! Text ↔ token ids, built with the `tokenizers` crate from the model file's vocabulary.

mod from_gguf;
mod spm;
mod vocab;

pub use spm::{merges, tokenizer_json};
pub use vocab::{TokenType, Vocab};

use std::str::FromStr;

/// Why a tokenizer could not be built or used.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("tokenizer: {0}")]
    Build(String),
    #[error("tokenizer: {0}")]
    Run(String),
}

fn build_err(e: impl std::fmt::Display) -> TokenizerError {
    TokenizerError::Build(e.to_string())
}

fn run_err(e: impl std::fmt::Display) -> TokenizerError {
    TokenizerError::Run(e.to_string())
}

pub struct Tokenizer {
    /// Matches control tokens written in the text (`<s>`): for chat templates.
    with_special: tokenizers::Tokenizer,
    /// Treats every character as text: for what a user typed, so no one can forge a control token.
    plain: tokenizers::Tokenizer,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    pub n_vocab: usize,
}

impl Tokenizer {
    /// A SentencePiece BPE tokenizer with byte fallback, from a GGUF-style vocabulary.
    pub fn from_vocab(vocab: &Vocab) -> Result<Self, TokenizerError> {
        let n = vocab.tokens.len();
        if vocab.scores.len() != n || vocab.types.len() != n {
            return Err(build_err(format!(
                "{n} tokens but {} scores and {} token types",
                vocab.scores.len(),
                vocab.types.len()
            )));
        }
        for (what, id) in [("bos", vocab.bos), ("eos", vocab.eos), ("unk", vocab.unk)] {
            if let Some(id) = id.filter(|&i| i as usize >= n) {
                return Err(build_err(format!(
                    "{what} token id {id} is outside the {n}-token vocabulary"
                )));
            }
        }
        let json = tokenizer_json(vocab).to_string();
        let mut t = Self::from_hf_json(&json)?;
        t.bos = vocab.bos;
        t.eos = vocab.eos;
        t.add_bos = vocab.add_bos;
        t.add_eos = vocab.add_eos;
        Ok(t)
    }

    /// From a Hugging Face `tokenizer.json` document. BOS/EOS ids and flags start unset.
    pub fn from_hf_json(json: &str) -> Result<Self, TokenizerError> {
        let with_special = tokenizers::Tokenizer::from_str(json).map_err(build_err)?;
        let mut plain = with_special.clone();
        plain.set_encode_special_tokens(true);
        let n_vocab = with_special.get_vocab_size(true);
        Ok(Tokenizer {
            with_special,
            plain,
            bos: None,
            eos: None,
            add_bos: false,
            add_eos: false,
            n_vocab,
        })
    }

    /// Encodes user text: control-token text such as `<s>` stays text. Adds BOS/EOS when the
    /// model asks for them and `add_special` is set.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>, TokenizerError> {
        self.encode_with(&self.plain, text, add_special)
    }

    /// Encodes template output: control-token text becomes the control id.
    pub fn encode_template(
        &self,
        text: &str,
        add_special: bool,
    ) -> Result<Vec<u32>, TokenizerError> {
        self.encode_with(&self.with_special, text, add_special)
    }

    fn encode_with(
        &self,
        t: &tokenizers::Tokenizer,
        text: &str,
        add_special: bool,
    ) -> Result<Vec<u32>, TokenizerError> {
        let mut ids = Vec::new();
        if add_special && self.add_bos {
            ids.extend(self.bos);
        }
        if !text.is_empty() {
            ids.extend_from_slice(t.encode_fast(text, false).map_err(run_err)?.get_ids());
        }
        if add_special && self.add_eos {
            ids.extend(self.eos);
        }
        Ok(ids)
    }

    /// Decodes ids to text, skipping control tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.with_special.decode(ids, true).map_err(run_err)
    }

    /// The piece of one id, as stored (`▁the`, `<0x0A>`).
    pub fn piece(&self, id: u32) -> Option<String> {
        self.with_special.id_to_token(id)
    }

    /// A decoder for a generation that follows `context` (the prompt): it prints each token's text
    /// as soon as it is complete UTF-8, with the spaces a continuation needs.
    pub fn stream<'a>(&'a self, context: &[u32]) -> StreamDecoder<'a> {
        let mut inner = self.with_special.decode_stream(true);
        // Feed the last few prompt ids so the first generated token keeps its leading space
        // (decoding a sequence strips the space of its first piece).
        for &id in &context[context.len().saturating_sub(4)..] {
            let _ = inner.step(id);
        }
        StreamDecoder { inner }
    }
}

/// Incremental detokenizer; see [`Tokenizer::stream`].
pub struct StreamDecoder<'a> {
    inner: tokenizers::DecodeStream<
        'a,
        tokenizers::ModelWrapper,
        tokenizers::NormalizerWrapper,
        tokenizers::PreTokenizerWrapper,
        tokenizers::PostProcessorWrapper,
        tokenizers::DecoderWrapper,
    >,
}

impl StreamDecoder<'_> {
    /// The text that `id` completes, if any (a byte-fallback token in the middle of a multi-byte
    /// character yields nothing until the character is whole).
    pub fn step(&mut self, id: u32) -> Result<Option<String>, TokenizerError> {
        self.inner.step(id).map_err(run_err)
    }
}
