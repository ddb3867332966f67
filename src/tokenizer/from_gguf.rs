//! The tokenizer stored in a GGUF file's `tokenizer.*` metadata.

use super::{TokenType, Tokenizer, TokenizerError, Vocab};
use crate::gguf::{keys, Array, GgufFile};

fn err(s: String) -> TokenizerError {
    TokenizerError::Build(s)
}

impl Vocab {
    /// Reads `tokenizer.ggml.{tokens, scores, token_type, *_token_id, add_*_token}`.
    pub fn from_gguf(file: &GgufFile) -> Result<Vocab, TokenizerError> {
        let m = file.metadata();
        let gguf = |e: crate::gguf::GgufError| err(e.to_string());
        let model = m
            .get_opt::<&str>(keys::TOKENIZER_MODEL)
            .map_err(gguf)?
            .unwrap_or("none");
        if model != "llama" {
            return Err(err(format!(
                "{} is `{model}`; tandem reads SentencePiece (`llama`) vocabularies",
                keys::TOKENIZER_MODEL
            )));
        }
        let tokens = match m.array(keys::TOKENIZER_TOKENS).map_err(gguf)? {
            Array::String(v) => v
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    s.as_str().map(str::to_string).ok_or_else(|| {
                        err(format!(
                            "{}[{i}] is not valid UTF-8",
                            keys::TOKENIZER_TOKENS
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => {
                return Err(err(format!(
                    "{} is an array of {}, expected strings",
                    keys::TOKENIZER_TOKENS,
                    other.elem_type()
                )))
            }
        };
        let n = tokens.len();
        let scores = match m.get_opt::<&Array>(keys::TOKENIZER_SCORES).map_err(gguf)? {
            Some(Array::F32(v)) => v.clone(),
            Some(other) => {
                return Err(err(format!(
                    "{} is an array of {}, expected f32",
                    keys::TOKENIZER_SCORES,
                    other.elem_type()
                )))
            }
            None => vec![0.0; n],
        };
        let types = match m
            .get_opt::<&Array>(keys::TOKENIZER_TOKEN_TYPE)
            .map_err(gguf)?
        {
            Some(Array::I32(v)) => v
                .iter()
                .enumerate()
                .map(|(i, &t)| {
                    TokenType::from_id(t).ok_or_else(|| {
                        err(format!(
                            "{}[{i}] = {t} is not a token type",
                            keys::TOKENIZER_TOKEN_TYPE
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => {
                return Err(err(format!(
                    "{} is an array of {}, expected i32",
                    keys::TOKENIZER_TOKEN_TYPE,
                    other.elem_type()
                )))
            }
            None => vec![TokenType::Normal; n],
        };
        let id = |k: &str| m.get_opt::<u32>(k).map_err(gguf);
        Ok(Vocab {
            tokens,
            scores,
            types,
            bos: id(keys::TOKENIZER_BOS_ID)?,
            eos: id(keys::TOKENIZER_EOS_ID)?,
            unk: id(keys::TOKENIZER_UNK_ID)?,
            add_bos: m
                .get_opt::<bool>(keys::TOKENIZER_ADD_BOS)
                .map_err(gguf)?
                .unwrap_or(true),
            add_eos: m
                .get_opt::<bool>(keys::TOKENIZER_ADD_EOS)
                .map_err(gguf)?
                .unwrap_or(false),
        })
    }
}

impl Tokenizer {
    /// The model file's tokenizer: its `tokenizer.huggingface.json` when present, else one built
    /// from the `tokenizer.ggml.*` vocabulary.
    pub fn from_gguf(file: &GgufFile) -> Result<Tokenizer, TokenizerError> {
        let vocab = Vocab::from_gguf(file)?;
        let hf = file
            .metadata()
            .get_opt::<&str>(keys::TOKENIZER_HF_JSON)
            .map_err(|e| err(e.to_string()))?;
        let mut t = match hf {
            Some(json) => Tokenizer::from_hf_json(json)?,
            None => return Tokenizer::from_vocab(&vocab),
        };
        t.bos = vocab.bos;
        t.eos = vocab.eos;
        t.add_bos = vocab.add_bos;
        t.add_eos = vocab.add_eos;
        Ok(t)
    }
}
