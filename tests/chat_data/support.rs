//! Helpers shared by the chat tests: GGUF copies with edited metadata, and the expected-ids files.
#![allow(dead_code)]

use serde_json::Value as Json;
use std::path::Path;
use tandem::chat::Conversation;
use tandem::gguf::{Array, GgufFile, GgufString, GgufWriter, Metadata, Value};

/// Copies `src` to `dest` with the metadata keys in `set` replaced (or appended), tensors as they
/// are.
pub fn copy_with(src: &Path, dest: &Path, mut set: Vec<(&str, Value)>) {
    let f = GgufFile::open(src).unwrap();
    let mut md = Metadata::new();
    for e in f.metadata().entries() {
        let value = match set.iter().position(|(k, _)| *k == e.key) {
            Some(i) => set.remove(i).1,
            None => e.value.clone(),
        };
        md.push(e.key.clone(), value).unwrap();
    }
    for (k, v) in set {
        md.push(k, v).unwrap();
    }
    let specs: Vec<_> = f.tensors().iter().map(|t| t.spec()).collect();
    let mut w = GgufWriter::create(dest, &md, &specs).unwrap();
    for t in f.tensors() {
        w.write_tensor(t.name(), f.tensor_bytes(t)).unwrap();
    }
    w.finish().unwrap();
}

/// Copies a vocabulary GGUF with `extra` tokens appended as control tokens (type 3).
pub fn copy_with_control_tokens(src: &Path, dest: &Path, extra: &[&str]) {
    let f = GgufFile::open(src).unwrap();
    let m = f.metadata();
    let Ok(Array::String(mut tokens)) = m.array("tokenizer.ggml.tokens").cloned() else {
        panic!("tokens")
    };
    let Ok(Array::F32(mut scores)) = m.array("tokenizer.ggml.scores").cloned() else {
        panic!("scores")
    };
    let Ok(Array::I32(mut types)) = m.array("tokenizer.ggml.token_type").cloned() else {
        panic!("token types")
    };
    for t in extra {
        tokens.push(GgufString::from(*t));
        scores.push(0.0);
        types.push(3);
    }
    drop(f);
    copy_with(
        src,
        dest,
        vec![
            ("tokenizer.ggml.tokens", Value::Array(Array::String(tokens))),
            ("tokenizer.ggml.scores", Value::Array(Array::F32(scores))),
            ("tokenizer.ggml.token_type", Value::Array(Array::I32(types))),
        ],
    );
}

/// One case of an expected-ids file made by make_expected.py.
pub struct Case {
    pub name: String,
    pub conversation: Conversation,
    pub messages_json: Json,
    pub prompt: String,
    pub ids: Vec<u32>,
}

pub fn cases(file: &str) -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/chat_data")
        .join(file);
    let doc: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            conversation: Conversation::from_json(&c["messages"]).unwrap(),
            messages_json: c["messages"].clone(),
            prompt: c["prompt"].as_str().unwrap().to_string(),
            ids: c["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect(),
        })
        .collect()
}
