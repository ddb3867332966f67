//! Rendered chat → token ids, with control tokens taken only from template text.
//!
//! Hugging Face tokenizes a rendered chat by splitting it at control-token strings (`<s>`,
//! `</s>`) and tokenizing each piece between them as text. We do the same, except that a
//! control-token string inside message content is not a split point: it stays text. So a user
//! who types `</s>[INST]` gets the characters, not a turn boundary.

use super::template::Part;
use crate::tokenizer::{TokenType, Tokenizer, TokenizerError, Vocab};

pub struct PromptEncoder<'t> {
    tok: &'t Tokenizer,
    /// Control-token strings and ids, longest first so that matching is leftmost-longest.
    specials: Vec<(String, u32)>,
}

impl<'t> PromptEncoder<'t> {
    /// `specials` are the control tokens a template may write.
    pub fn new(tok: &'t Tokenizer, mut specials: Vec<(String, u32)>) -> Self {
        specials.retain(|(s, _)| !s.is_empty());
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        PromptEncoder { tok, specials }
    }

    /// The vocabulary's control and unknown tokens that the tokenizer really treats as control
    /// tokens (it encodes their text to their id when asked to parse specials).
    pub fn from_vocab(tok: &'t Tokenizer, vocab: &Vocab) -> Self {
        let specials = vocab
            .types
            .iter()
            .zip(&vocab.tokens)
            .enumerate()
            .filter(|(_, (t, _))| matches!(t, TokenType::Control | TokenType::Unknown))
            .filter(|(id, (_, s))| {
                tok.encode_template(s, false)
                    .is_ok_and(|ids| ids == [*id as u32])
            })
            .map(|(id, (_, s))| (s.clone(), id as u32))
            .collect();
        Self::new(tok, specials)
    }

    pub fn specials(&self) -> &[(String, u32)] {
        &self.specials
    }

    /// The id of a control token written as `text`, if there is one.
    pub fn special_id(&self, text: &str) -> Option<u32> {
        self.specials.iter().find(|(s, _)| s == text).map(|p| p.1)
    }

    /// Whether `text` contains a control-token string.
    pub fn has_special(&self, text: &str) -> bool {
        self.specials.iter().any(|(s, _)| text.contains(s.as_str()))
    }

    /// Tokenizes the parts of a render: control tokens are split out of template parts; the
    /// text between them (template and content alike) is tokenized as one piece of plain text.
    pub fn encode(&self, parts: &[Part]) -> Result<Vec<u32>, TokenizerError> {
        let mut ids = Vec::new();
        let mut text = String::new();
        for part in parts {
            if part.content {
                text.push_str(&part.text);
                continue;
            }
            let mut rest = part.text.as_str();
            while !rest.is_empty() {
                match self.find(rest) {
                    Some((at, s, id)) => {
                        text.push_str(&rest[..at]);
                        ids.extend(self.tok.encode(&text, false)?);
                        text.clear();
                        ids.push(id);
                        rest = &rest[at + s..];
                    }
                    None => {
                        text.push_str(rest);
                        rest = "";
                    }
                }
            }
        }
        ids.extend(self.tok.encode(&text, false)?);
        Ok(ids)
    }

    /// The first control-token string in `s`: (byte offset, length, id).
    fn find(&self, s: &str) -> Option<(usize, usize, u32)> {
        let mut best: Option<(usize, usize, u32)> = None;
        for (sp, id) in &self.specials {
            if let Some(at) = s.find(sp.as_str()) {
                // Longest first, so an equal offset keeps the longer match.
                if best.is_none_or(|b| at < b.0) {
                    best = Some((at, sp.len(), *id));
                }
            }
        }
        best
    }
}
