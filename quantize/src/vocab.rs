//! The `tokenizer.*` metadata: taken from a GGUF file, read from a Hugging Face directory (see
//! [`crate::hf::tokenizer`]), or generated for synthetic models.

use anyhow::{ensure, Context, Result};
use std::path::Path;
use tandem::gguf::{keys, Array, GgufFile, GgufString, Metadata, Value};

/// `tokenizer.ggml.token_type` values (SentencePiece's piece types, as gguf-py numbers them).
pub mod token_type {
    pub const NORMAL: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const CONTROL: i32 = 3;
    pub const USER_DEFINED: i32 = 4;
    pub const UNUSED: i32 = 5;
    pub const BYTE: i32 = 6;
}

/// The tokenizer keys of a GGUF file, in the order they are written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VocabMeta {
    /// Every `tokenizer.*` entry in order.
    pub entries: Vec<(String, Value)>,
}

impl VocabMeta {
    /// Appends the entries to `md`.
    pub fn push_to(&self, md: &mut Metadata) -> Result<()> {
        for (k, v) in &self.entries {
            md.push(k.clone(), v.clone())?;
        }
        Ok(())
    }

    /// The number of tokens.
    pub fn len(&self) -> usize {
        self.entries
            .iter()
            .find(|(k, _)| k == keys::TOKENIZER_TOKENS)
            .and_then(|(_, v)| match v {
                Value::Array(a) => Some(a.len()),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every `tokenizer.*` key of a GGUF file (a vocab-only file such as llama.cpp's
    /// `ggml-vocab-*.gguf`, or a model).
    pub fn from_gguf(path: &Path) -> Result<VocabMeta> {
        let file = GgufFile::open(path).with_context(|| format!("reading {}", path.display()))?;
        let entries: Vec<_> = file
            .metadata()
            .entries()
            .iter()
            .filter(|e| e.key.starts_with("tokenizer."))
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect();
        let vocab = VocabMeta { entries };
        ensure!(
            !vocab.is_empty(),
            "{}: no `{}` array",
            path.display(),
            keys::TOKENIZER_TOKENS
        );
        Ok(vocab)
    }

    /// A SentencePiece-style vocabulary as the converter writes one.
    pub fn sentencepiece(p: SpmVocab) -> VocabMeta {
        let mut entries: Vec<(String, Value)> = vec![
            (keys::TOKENIZER_MODEL.into(), "llama".into()),
            (keys::TOKENIZER_PRE.into(), "default".into()),
            (keys::TOKENIZER_TOKENS.into(), Array::from(p.tokens).into()),
            (keys::TOKENIZER_SCORES.into(), Array::from(p.scores).into()),
            (
                keys::TOKENIZER_TOKEN_TYPE.into(),
                Array::from(p.types).into(),
            ),
        ];
        for (k, id) in p.special_ids {
            entries.push((k, Value::U32(id)));
        }
        for (k, b) in p.add_flags {
            entries.push((k, Value::Bool(b)));
        }
        if let Some(t) = p.chat_template {
            entries.push((keys::TOKENIZER_CHAT_TEMPLATE.into(), t.into()));
        }
        if let Some(b) = p.add_space_prefix {
            entries.push((keys::TOKENIZER_ADD_SPACE_PREFIX.into(), Value::Bool(b)));
        }
        VocabMeta { entries }
    }

    /// A valid byte-fallback SentencePiece vocabulary of `n` pieces (at least 259 + 1): `<unk>`,
    /// `<s>`, `</s>`, the 256 byte pieces, then made-up pieces with falling scores, so that
    /// llama.cpp and tandem load and tokenize with it.
    pub fn generated(n: usize) -> Result<VocabMeta> {
        ensure!(
            n > 259,
            "a byte-fallback vocabulary needs more than 259 pieces, not {n}"
        );
        let mut tokens: Vec<GgufString> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
        let mut types = vec![
            token_type::UNKNOWN,
            token_type::CONTROL,
            token_type::CONTROL,
        ];
        for b in 0..=255u8 {
            tokens.push(format!("<0x{b:02X}>").into());
            types.push(token_type::BYTE);
        }
        let mut scores = vec![0.0f32; tokens.len()];
        for (i, piece) in made_up_pieces().take(n - tokens.len()).enumerate() {
            tokens.push(piece.into());
            types.push(token_type::NORMAL);
            scores.push(-(i as f32));
        }
        ensure!(tokens.len() == n, "could not make {n} distinct pieces");
        Ok(VocabMeta::sentencepiece(SpmVocab {
            tokens,
            scores,
            types,
            special_ids: vec![
                (keys::TOKENIZER_BOS_ID.into(), 1),
                (keys::TOKENIZER_EOS_ID.into(), 2),
                (keys::TOKENIZER_UNK_ID.into(), 0),
            ],
            add_flags: vec![
                (keys::TOKENIZER_ADD_BOS.into(), true),
                (keys::TOKENIZER_ADD_EOS.into(), false),
            ],
            chat_template: None,
            add_space_prefix: None,
        }))
    }
}

/// The parts of a SentencePiece vocabulary, before they become metadata entries.
#[derive(Clone, Debug, Default)]
pub struct SpmVocab {
    pub tokens: Vec<GgufString>,
    pub scores: Vec<f32>,
    pub types: Vec<i32>,
    /// `(key, id)` in write order.
    pub special_ids: Vec<(String, u32)>,
    /// `(key, flag)` in write order.
    pub add_flags: Vec<(String, bool)>,
    pub chat_template: Option<String>,
    pub add_space_prefix: Option<bool>,
}

/// Distinct pieces: single characters, then `▁`-prefixed and bare letter pairs and triples.
fn made_up_pieces() -> impl Iterator<Item = String> {
    const LETTERS: &str = "etaoinshrdlucmfwypvbgkjqxz";
    let singles = "▁abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"-()"
        .chars()
        .map(String::from)
        .collect::<Vec<_>>();
    let letters: Vec<char> = LETTERS.chars().collect();
    let pairs = {
        let letters = letters.clone();
        letters
            .clone()
            .into_iter()
            .flat_map(move |a| letters.clone().into_iter().map(move |b| format!("{a}{b}")))
    };
    let word_pairs = pairs.clone().map(|p| format!("▁{p}"));
    let triples = pairs.clone().flat_map(move |p| {
        let letters = letters.clone();
        letters.into_iter().map(move |c| format!("{p}{c}"))
    });
    let word_triples = triples.clone().map(|t| format!("▁{t}"));
    singles
        .into_iter()
        .chain(word_pairs)
        .chain(pairs)
        .chain(word_triples)
        .chain(triples)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_vocab_is_distinct_and_typed() {
        let v = VocabMeta::generated(32000).unwrap();
        assert_eq!(v.len(), 32000);
        let get = |k: &str| &v.entries.iter().find(|(key, _)| key == k).unwrap().1;
        let Value::Array(Array::String(tokens)) = get(keys::TOKENIZER_TOKENS) else {
            panic!("tokens")
        };
        let distinct: HashSet<_> = tokens.iter().collect();
        assert_eq!(distinct.len(), 32000);
        assert_eq!(tokens[3].as_str(), Some("<0x00>"));
        assert_eq!(tokens[258].as_str(), Some("<0xFF>"));
        let Value::Array(Array::F32(scores)) = get(keys::TOKENIZER_SCORES) else {
            panic!("scores")
        };
        assert!(scores[259..].windows(2).all(|w| w[0] > w[1]));
        assert!(VocabMeta::generated(200).is_err());
    }
}
