//! The tokenizer of a Hugging Face (or Mistral) directory as `tokenizer.ggml.*` metadata, the way
//! llama.cpp's converter builds it for Llama-family models:
//!
//! - pieces, scores and types from `tokenizer.model` (SentencePiece), padded to the config's
//!   `vocab_size` with `[PADn]`; `added_tokens.json` entries become user-defined tokens, and
//!   `tokenizer_config.json`'s `added_tokens_decoder` entries control (special) or user-defined
//!   tokens, all with score -1000;
//! - without `tokenizer.model`, from `tokenizer.json` (a byte-fallback BPE): `<0xNN>` pieces are
//!   byte tokens, special added tokens control tokens. llama.cpp scores every such piece -1000,
//!   which loses the merge order; here a piece made by merge number `r` scores `-r`, so an SPM
//!   tokenizer that merges the best-scoring pair first follows the BPE merge order;
//! - special token ids: `tokenizer_config.json`'s `{bos,eos,unk,...}_token` looked up among
//!   `tokenizer.json`'s added tokens, then `config.json`'s `*_token_id` for the ones still unset;
//!   `add_{bos,eos,sep}_token` flags and `chat_template` from `tokenizer_config.json`;
//!   `add_prefix_space` as `tokenizer.ggml.add_space_prefix`.

use super::config::read_json;
use super::spm;
use crate::vocab::{token_type, SpmVocab, VocabMeta};
use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::{Map, Value};
use std::path::Path;
use tandem::gguf::{keys, GgufString};

/// Special token kinds in gguf-py's order, with their id keys and, for the kinds that have one,
/// their `add_*_token` key.
const SPECIAL: [(&str, &str, Option<&str>); 7] = [
    ("bos", keys::TOKENIZER_BOS_ID, Some(keys::TOKENIZER_ADD_BOS)),
    ("eos", keys::TOKENIZER_EOS_ID, Some(keys::TOKENIZER_ADD_EOS)),
    ("unk", keys::TOKENIZER_UNK_ID, None),
    ("sep", keys::TOKENIZER_SEP_ID, Some(keys::TOKENIZER_ADD_SEP)),
    ("pad", keys::TOKENIZER_PAD_ID, None),
    ("cls", keys::TOKENIZER_CLS_ID, None),
    ("mask", keys::TOKENIZER_MASK_ID, None),
];

/// Score llama.cpp gives added and special tokens.
const ADDED_SCORE: f32 = -1000.0;

/// Builds the tokenizer metadata of `dir`. `config` is `config.json` (for special ids), if any;
/// `vocab_size` is the model's embedding rows.
pub fn read_vocab(
    dir: &Path,
    config: Option<&Map<String, Value>>,
    vocab_size: u32,
) -> Result<VocabMeta> {
    let n = vocab_size as usize;
    let tokenizer_json = optional_json(&dir.join("tokenizer.json"))?;
    let tokenizer_config = optional_json(&dir.join("tokenizer_config.json"))?;
    let model = [
        "tokenizer.model",
        "tokenizer.model.v1",
        "tokenizer.model.v3",
    ]
    .into_iter()
    .map(|f| dir.join(f))
    .find(|p| p.is_file());
    let (mut tokens, mut scores, mut types) = match (&model, &tokenizer_json) {
        (Some(path), _) => from_sentencepiece(path, n)?,
        (None, Some(json)) => from_tokenizer_json(json, n)
            .with_context(|| format!("{}", dir.join("tokenizer.json").display()))?,
        (None, None) => bail!("{}: no tokenizer.model or tokenizer.json", dir.display()),
    };
    if model.is_some() {
        apply_added_tokens(
            dir,
            tokenizer_config.as_ref(),
            &mut tokens,
            &mut scores,
            &mut types,
        )?;
    }

    // Special ids: tokenizer_config names resolved through tokenizer.json's added tokens first,
    // then config.json's ids.
    let added: Vec<(String, u64)> = tokenizer_json
        .as_ref()
        .and_then(|j| j.get("added_tokens"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| {
                    Some((
                        t.get("content")?.as_str()?.to_string(),
                        t.get("id")?.as_u64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut special_ids: Vec<(String, u32)> = Vec::new();
    let set = |kind: &str, id: Option<u64>, ids: &mut Vec<(String, u32)>| {
        let key = SPECIAL
            .iter()
            .find(|(k, _, _)| *k == kind)
            .map(|(_, key, _)| *key);
        if let (Some(key), Some(id)) = (key, id) {
            if id < n as u64 && !ids.iter().any(|(k, _)| k == key) {
                ids.push((key.to_string(), id as u32));
            }
        }
    };
    let mut add_flags = Vec::new();
    let mut chat_template = None;
    let mut add_space_prefix = None;
    if let Some(tc) = &tokenizer_config {
        chat_template = match tc.get("chat_template") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(list)) => list
                .iter()
                .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                .and_then(|t| t.get("template")?.as_str().map(String::from)),
            _ => std::fs::read_to_string(dir.join("chat_template.jinja")).ok(),
        };
        for (kind, _, add_key) in SPECIAL {
            if let (Some(Value::Bool(b)), Some(add_key)) =
                (tc.get(&format!("add_{kind}_token")), add_key)
            {
                add_flags.push((add_key.to_string(), *b));
            }
            let content = match tc.get(&format!("{kind}_token")) {
                Some(Value::String(s)) => Some(s.as_str()),
                Some(Value::Object(o)) => o.get("content").and_then(Value::as_str),
                _ => None,
            };
            if let Some(content) = content {
                let id = added.iter().find(|(c, _)| c == content).map(|&(_, id)| id);
                set(kind, id, &mut special_ids);
            }
        }
        if let Some(Value::Bool(b)) = tc.get("add_prefix_space") {
            add_space_prefix = Some(*b);
        }
    }
    if let Some(cfg) = config {
        for (kind, _, _) in SPECIAL {
            let id = cfg.get(&format!("{kind}_token_id")).and_then(Value::as_u64);
            set(kind, id, &mut special_ids);
        }
    }
    Ok(VocabMeta::sentencepiece(SpmVocab {
        tokens,
        scores,
        types,
        special_ids,
        add_flags,
        chat_template,
        add_space_prefix,
    }))
}

type Lists = (Vec<GgufString>, Vec<f32>, Vec<i32>);

fn optional_json(path: &Path) -> Result<Option<Map<String, Value>>> {
    if path.is_file() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

/// Pieces of a SentencePiece model, placed in a `vocab_size` table of `[PADn]` entries.
fn from_sentencepiece(path: &Path, n: usize) -> Result<Lists> {
    let buf = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let pieces = spm::parse_model(&buf).with_context(|| format!("{}", path.display()))?;
    ensure!(
        pieces.len() <= n,
        "{}: {} pieces, but the model has {n} token embeddings",
        path.display(),
        pieces.len()
    );
    let mut tokens: Vec<GgufString> = (0..n).map(|i| format!("[PAD{i}]").into()).collect();
    let mut scores = vec![-10000.0f32; n];
    let mut types = vec![token_type::UNUSED; n];
    for (i, p) in pieces.into_iter().enumerate() {
        // The converter maps SentencePiece's types this way; user-defined pieces become normal.
        types[i] = match p.kind {
            2 => token_type::UNKNOWN,
            3 => token_type::CONTROL,
            5 => token_type::UNUSED,
            6 => token_type::BYTE,
            _ => token_type::NORMAL,
        };
        tokens[i] = p.piece.into();
        scores[i] = p.score;
    }
    Ok((tokens, scores, types))
}

/// `added_tokens.json` and `tokenizer_config.json`'s `added_tokens_decoder`.
fn apply_added_tokens(
    dir: &Path,
    tokenizer_config: Option<&Map<String, Value>>,
    tokens: &mut [GgufString],
    scores: &mut [f32],
    types: &mut [i32],
) -> Result<()> {
    let n = tokens.len();
    if let Some(added) = optional_json(&dir.join("added_tokens.json"))? {
        for (text, id) in added {
            let id = id
                .as_u64()
                .ok_or_else(|| anyhow!("added_tokens.json: `{text}` has no id"))?;
            // The converter skips ids past the vocabulary with a warning.
            if let Some(i) = usize::try_from(id).ok().filter(|&i| i < n) {
                tokens[i] = text.into();
                scores[i] = ADDED_SCORE;
                types[i] = token_type::USER_DEFINED;
            }
        }
    }
    let Some(decoder) = tokenizer_config
        .and_then(|tc| tc.get("added_tokens_decoder"))
        .and_then(Value::as_object)
    else {
        return Ok(());
    };
    for (id, data) in decoder {
        let i: usize = id.parse().ok().filter(|&i| i < n).ok_or_else(|| {
            anyhow!("tokenizer_config.json: added token id `{id}` is not below {n}")
        })?;
        let content = data
            .get("content")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("tokenizer_config.json: added token {id} has no content"))?;
        let special = data
            .get("special")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if special || looks_special(content) {
            types[i] = token_type::CONTROL;
            tokens[i] = content.into();
        } else {
            types[i] = token_type::USER_DEFINED;
            tokens[i] = content.replace('\u{2581}', " ").into();
        }
        scores[i] = ADDED_SCORE;
    }
    Ok(())
}

/// The converter's `does_token_look_special`.
fn looks_special(t: &str) -> bool {
    matches!(t, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (t.starts_with("<|") && t.ends_with("|>"))
        || (t.starts_with("<\u{ff5c}") && t.ends_with("\u{ff5c}>"))
        || (t.starts_with("<unused") && t.ends_with('>'))
}

/// A byte-fallback BPE `tokenizer.json` as pieces with scores from the merge order.
fn from_tokenizer_json(json: &Map<String, Value>, n: usize) -> Result<Lists> {
    let model = json
        .get("model")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("no `model` object"))?;
    ensure!(
        model.get("type").and_then(Value::as_str) == Some("BPE"),
        "only BPE tokenizer.json files can be converted without tokenizer.model"
    );
    let vocab = model
        .get("vocab")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("no `model.vocab`"))?;
    let mut tokens: Vec<GgufString> = (0..n).map(|i| format!("[PAD{i}]").into()).collect();
    let mut scores = vec![ADDED_SCORE; n];
    let mut types = vec![token_type::UNUSED; n];
    let mut index = std::collections::HashMap::new();
    for (piece, id) in vocab {
        let i = id
            .as_u64()
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < n)
            .ok_or_else(|| anyhow!("piece `{piece}` has id {id}, not below {n}"))?;
        let is_byte = piece.len() == 6 && piece.starts_with("<0x") && piece.ends_with('>');
        types[i] = if is_byte {
            token_type::BYTE
        } else {
            token_type::NORMAL
        };
        scores[i] = 0.0;
        tokens[i] = piece.as_str().into();
        index.insert(piece.clone(), i);
    }
    if let Some(merges) = model.get("merges").and_then(Value::as_array) {
        for (rank, m) in merges.iter().enumerate() {
            let merged = match m {
                Value::String(s) => s.split_once(' ').map(|(a, b)| format!("{a}{b}")),
                Value::Array(p) if p.len() == 2 => Some(format!(
                    "{}{}",
                    p[0].as_str().unwrap_or(""),
                    p[1].as_str().unwrap_or("")
                )),
                _ => None,
            };
            if let Some(&i) = merged.as_ref().and_then(|m| index.get(m)) {
                if scores[i] == 0.0 {
                    scores[i] = -((rank + 1) as f32);
                }
            }
        }
    }
    for t in json
        .get("added_tokens")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(content), Some(id)) = (
            t.get("content").and_then(Value::as_str),
            t.get("id").and_then(Value::as_u64),
        ) else {
            continue;
        };
        let Some(i) = usize::try_from(id).ok().filter(|&i| i < n) else {
            bail!("added token `{content}` has id {id}, not below {n}");
        };
        let special = t.get("special").and_then(Value::as_bool).unwrap_or(false);
        types[i] = if special {
            token_type::CONTROL
        } else {
            token_type::USER_DEFINED
        };
        scores[i] = ADDED_SCORE;
        tokens[i] = content.into();
    }
    Ok((tokens, scores, types))
}
