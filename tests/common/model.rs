//! Running fixture models through the library, and comparing with reference outputs.
#![allow(dead_code)]

use std::path::Path;
use tandem::gguf::GgufFile;
use tandem::model::forward::Routing;
use tandem::model::weights::Weights;
use tandem::model::{Logits, Model, ModelConfig};
use tandem::sample::{Sampler, SamplerConfig};
use tandem::session::Session;
use tandem::tensor::kv::KvType;

pub fn open(path: &Path) -> GgufFile {
    GgufFile::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn model(file: &GgufFile) -> Model<'_> {
    let c = ModelConfig::from_gguf(file).unwrap();
    let w = Weights::from_gguf(file, &c).unwrap();
    Model::new(c, w)
}

/// Logits of every position `[n, n_vocab]` for `tokens`, and the routing of every layer.
pub fn logits(file: &GgufFile, tokens: &[u32], kv: KvType) -> (Vec<f32>, Routing) {
    let m = model(file);
    let mut s = Session::new(&m, tokens.len(), kv).unwrap();
    let mut routing = Routing::new();
    let l = s.prefill(tokens, Logits::All, Some(&mut routing)).unwrap();
    (l, routing)
}

/// `n` greedy tokens after `prompt`, never stopping early.
pub fn greedy(file: &GgufFile, prompt: &[u32], n: usize, kv: KvType) -> Vec<u32> {
    let m = model(file);
    let mut s = Session::new(&m, prompt.len() + n, kv).unwrap();
    let logits = s.prefill(prompt, Logits::Last, None).unwrap();
    let mut out = Vec::new();
    let mut sampler = Sampler::new(SamplerConfig::greedy());
    s.generate(logits, &mut sampler, n, &[], |t| {
        out.push(t);
        true
    })
    .unwrap();
    out
}

/// A reference logits file (little-endian f32, no header).
pub fn read_logits(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect()
}

pub fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_f64().unwrap())
        .collect()
}

/// `‖a − b‖₂ / ‖b‖₂` in f64.
pub fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        num += (x as f64 - y as f64).powi(2);
        den += (y as f64).powi(2);
    }
    (num / den).sqrt()
}

/// Largest absolute difference.
pub fn max_abs(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).abs())
        .fold(0.0, f64::max)
}

/// Checks the top-k experts of every (layer, token) against a reference's `routing`, wherever its
/// recorded `kth_gap` is at least `min_gap`. Returns (checked, skipped).
pub fn check_routing(got: &Routing, reference: &serde_json::Value, min_gap: f64) -> (usize, usize) {
    let (mut checked, mut skipped) = (0, 0);
    for entry in reference.as_array().unwrap() {
        let layer = entry["layer"].as_u64().unwrap() as usize;
        let gaps = floats(&entry["kth_gap"]);
        for (t, want) in entry["experts"].as_array().unwrap().iter().enumerate() {
            if gaps[t] < min_gap {
                skipped += 1;
                continue;
            }
            assert_eq!(
                got[layer][t].experts,
                ids(want),
                "layer {layer}, token {t}: experts differ"
            );
            checked += 1;
        }
    }
    (checked, skipped)
}

/// How many (layer, token) expert choices equal a reference's `routing`, out of how many.
pub fn routing_agreement(got: &Routing, reference: &serde_json::Value) -> (usize, usize) {
    let (mut same, mut total) = (0, 0);
    for entry in reference.as_array().unwrap() {
        let layer = entry["layer"].as_u64().unwrap() as usize;
        for (t, want) in entry["experts"].as_array().unwrap().iter().enumerate() {
            total += 1;
            same += usize::from(got[layer][t].experts == ids(want));
        }
    }
    (same, total)
}
