//! Builds a `tokenizers` BPE tokenizer equivalent to a SentencePiece BPE model with byte fallback
//! (Llama, Mistral, Mixtral), from its pieces and scores.

use super::vocab::{TokenType, Vocab};
use serde_json::{json, Value};
use std::collections::HashMap;

/// BPE merges implied by a SentencePiece vocabulary: every split of a piece into two pieces that
/// are both in the vocabulary, ranked by the merged piece's score (higher first), then by the
/// longer left part, then the longer right part; remaining ties keep the order of the merged
/// piece's id and then of the parts' ids. This is the rule Hugging Face's converter uses, so the
/// result matches the `tokenizer.json` that `transformers` makes from a `tokenizer.model`.
pub fn merges(vocab: &Vocab) -> Vec<(String, String)> {
    let ids: HashMap<&str, usize> = vocab
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    // (score of the merged piece, left id, right id)
    let mut all: Vec<(f32, usize, usize)> = Vec::new();
    let chars = |id: usize| vocab.tokens[id].chars().count();
    for (id, piece) in vocab.tokens.iter().enumerate() {
        let mut local: Vec<(usize, usize)> = piece
            .char_indices()
            .skip(1)
            .filter_map(|(i, _)| Some((*ids.get(&piece[..i])?, *ids.get(&piece[i..])?)))
            .collect();
        local.sort_unstable();
        all.extend(local.into_iter().map(|(l, r)| (vocab.scores[id], l, r)));
    }
    // A stable sort, so full ties keep the id order they were collected in.
    all.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| chars(b.1).cmp(&chars(a.1)))
            .then_with(|| chars(b.2).cmp(&chars(a.2)))
    });
    all.into_iter()
        .map(|(_, l, r)| (vocab.tokens[l].clone(), vocab.tokens[r].clone()))
        .collect()
}

/// The `tokenizer.json` document of the equivalent Hugging Face fast tokenizer (no post
/// processor: BOS/EOS are added by [`super::Tokenizer`] according to the GGUF flags).
pub fn tokenizer_json(vocab: &Vocab) -> Value {
    let unk = vocab.unk.map(|i| vocab.tokens[i as usize].clone());
    let added: Vec<Value> = vocab
        .types
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            matches!(
                t,
                TokenType::Control | TokenType::UserDefined | TokenType::Unknown
            )
        })
        .map(|(id, t)| {
            json!({
                "id": id, "content": vocab.tokens[id], "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": *t == TokenType::UserDefined,
                "special": *t != TokenType::UserDefined,
            })
        })
        .collect();
    let vocab_map: serde_json::Map<String, Value> = vocab
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let merges: Vec<Value> = merges(vocab)
        .into_iter()
        .map(|(l, r)| json!([l, r]))
        .collect();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u{2581}"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"}
        ]},
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}
        ]},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true,
            "ignore_merges": false, "vocab": vocab_map, "merges": merges
        }
    })
}
