//! Helpers for the `tandem-quantize` tests: running the command line in-process, reading the
//! fixture manifests, and writing small safetensors checkpoints by hand.
#![allow(dead_code)]

use clap::Parser;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tandem::gguf::GgufFile;
use tandem_quantize::cli::Cli;

/// Runs `tandem-quantize ARGS...` in this process (no progress bar).
pub fn run(args: &[&str]) -> anyhow::Result<()> {
    let mut argv = vec!["tandem-quantize"];
    argv.extend_from_slice(args);
    argv.push("--quiet");
    let cli = Cli::try_parse_from(&argv)?;
    tandem_quantize::commands::run(&cli)
}

/// Like [`run`], with paths.
pub fn convert(src: &Path, out: &Path, extra: &[&str]) -> anyhow::Result<()> {
    let (s, o) = (src.to_string_lossy(), out.to_string_lossy());
    let mut args = vec![s.as_ref(), o.as_ref()];
    args.extend_from_slice(extra);
    run(&args)
}

pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The record of `file` in a fixture manifest.
pub fn manifest_entry(manifest: &Path, file: &str) -> serde_json::Value {
    let all: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == file)
        .unwrap_or_else(|| panic!("{file} not in {}", manifest.display()))
        .clone()
}

/// Asserts that every tensor of `ours` has the type and SHA-256 the manifest lists for `file`,
/// in the same order.
pub fn assert_tensors_match_manifest(ours: &Path, manifest: &Path, file: &str) {
    let m = manifest_entry(manifest, file);
    let g = GgufFile::open(ours).unwrap();
    let want = m["tensors"].as_array().unwrap();
    assert_eq!(g.tensors().len(), want.len(), "{file}: tensor count");
    for (t, w) in g.tensors().iter().zip(want) {
        assert_eq!(t.name(), w["name"].as_str().unwrap(), "{file}: order");
        assert_eq!(
            t.ty().name(),
            w["type"].as_str().unwrap(),
            "{file}: {}",
            t.name()
        );
        let ne: Vec<u64> = w["ne"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(t.ne(), ne.as_slice(), "{file}: {} shape", t.name());
        assert_eq!(
            sha256(g.tensor_bytes(t)),
            w["sha256"].as_str().unwrap(),
            "{file}: {} bytes",
            t.name()
        );
    }
}

/// A directory that mirrors `src` through symlinks, without the files named in `skip`, under
/// `parent/name` (the name matters: llama.cpp derives `general.name` from it).
pub fn mirror_dir(src: &Path, parent: &Path, name: &str, skip: &[&str]) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let n = e.file_name();
        if skip.iter().any(|s| n == *s) {
            continue;
        }
        std::os::unix::fs::symlink(e.path(), dir.join(&n)).unwrap();
    }
    dir
}

/// The entries of a directory, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// One tensor of a hand-made safetensors file.
pub struct StTensor {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// A safetensors file: the JSON header (with these offsets, contiguous) and the data.
pub fn safetensors_bytes(tensors: &[StTensor]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0;
    for t in tensors {
        header.insert(
            t.name.clone(),
            serde_json::json!({"dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, offset + t.data.len()]}),
        );
        offset += t.data.len();
    }
    let json = serde_json::to_vec(&header).unwrap();
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    for t in tensors {
        out.extend_from_slice(&t.data);
    }
    out
}

/// A tiny Mixtral-format checkpoint: hidden 64, 2 layers, 4 heads / 2 KV heads, 4 experts of
/// width 64, vocab 300, bf16 weights from a fixed formula. Returns its tensors.
pub fn tiny_mixtral_tensors() -> Vec<StTensor> {
    let (d, ff, kv, e, vocab) = (64usize, 64usize, 32usize, 4usize, 300usize);
    let mut specs: Vec<(String, Vec<usize>)> = vec![
        ("model.embed_tokens.weight".into(), vec![vocab, d]),
        ("lm_head.weight".into(), vec![vocab, d]),
        ("model.norm.weight".into(), vec![d]),
    ];
    for l in 0..2 {
        let p = format!("model.layers.{l}");
        specs.push((format!("{p}.input_layernorm.weight"), vec![d]));
        specs.push((format!("{p}.post_attention_layernorm.weight"), vec![d]));
        specs.push((format!("{p}.self_attn.q_proj.weight"), vec![d, d]));
        specs.push((format!("{p}.self_attn.k_proj.weight"), vec![kv, d]));
        specs.push((format!("{p}.self_attn.v_proj.weight"), vec![kv, d]));
        specs.push((format!("{p}.self_attn.o_proj.weight"), vec![d, d]));
        specs.push((format!("{p}.block_sparse_moe.gate.weight"), vec![e, d]));
        for x in 0..e {
            specs.push((
                format!("{p}.block_sparse_moe.experts.{x}.w1.weight"),
                vec![ff, d],
            ));
            specs.push((
                format!("{p}.block_sparse_moe.experts.{x}.w2.weight"),
                vec![d, ff],
            ));
            specs.push((
                format!("{p}.block_sparse_moe.experts.{x}.w3.weight"),
                vec![ff, d],
            ));
        }
    }
    specs
        .into_iter()
        .enumerate()
        .map(|(k, (name, shape))| {
            let n: usize = shape.iter().product();
            let data = (0..n)
                .flat_map(|i| {
                    let v = (((i * 7 + k * 13) % 97) as f32 - 48.0) / 1000.0;
                    half::bf16::from_f32(v).to_le_bytes()
                })
                .collect();
            StTensor {
                name,
                dtype: "BF16".into(),
                shape,
                data,
            }
        })
        .collect()
}

pub const TINY_CONFIG: &str = r#"{
  "architectures": ["MixtralForCausalLM"], "hidden_size": 64, "intermediate_size": 64,
  "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
  "num_local_experts": 4, "num_experts_per_tok": 2, "vocab_size": 300,
  "max_position_embeddings": 512, "rope_theta": 1000000.0, "rms_norm_eps": 1e-05,
  "bos_token_id": 1, "eos_token_id": 2
}"#;

/// Writes a tiny Mixtral HF directory (single `model.safetensors`, config, a generated-vocab
/// `tokenizer.json`) under `dir` and returns the tensors.
pub fn write_tiny_mixtral(dir: &Path) -> Vec<StTensor> {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), TINY_CONFIG).unwrap();
    let mut vocab = serde_json::Map::new();
    for (i, p) in ["<unk>", "<s>", "</s>"].iter().enumerate() {
        vocab.insert(p.to_string(), i.into());
    }
    for b in 0..256 {
        vocab.insert(format!("<0x{b:02X}>"), (3 + b).into());
    }
    for i in 259..300 {
        vocab.insert(format!("▁w{i}"), i.into());
    }
    let tok = serde_json::json!({
        "added_tokens": [
            {"id": 0, "content": "<unk>", "special": true},
            {"id": 1, "content": "<s>", "special": true},
            {"id": 2, "content": "</s>", "special": true}
        ],
        "model": {"type": "BPE", "vocab": vocab, "merges": []}
    });
    std::fs::write(
        dir.join("tokenizer.json"),
        serde_json::to_vec(&tok).unwrap(),
    )
    .unwrap();
    let tensors = tiny_mixtral_tensors();
    std::fs::write(dir.join("model.safetensors"), safetensors_bytes(&tensors)).unwrap();
    tensors
}
