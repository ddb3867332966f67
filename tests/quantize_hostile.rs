//! `tandem-quantize` on broken checkpoints: each case is a clear error naming the file (and the
//! tensor where there is one), and the output directory is left exactly as it was.

mod quantize_support;

use quantize_support::{
    convert, listing, safetensors_bytes, tiny_mixtral_tensors, write_tiny_mixtral, StTensor,
    TINY_CONFIG,
};
use std::path::Path;
use tandem::gguf::GgufFile;

/// Converts `src` into an empty `out` directory; returns the error text after checking that
/// nothing (no GGUF, no temp file) was left in `out`.
fn convert_fails(src: &Path) -> String {
    let out = tempfile::tempdir().unwrap();
    let err = convert(src, &out.path().join("m.gguf"), &["--type", "q8_0"])
        .expect_err("conversion should fail");
    assert!(
        listing(out.path()).is_empty(),
        "left behind: {:?}",
        listing(out.path())
    );
    format!("{err:#}")
}

fn assert_mentions(err: &str, parts: &[&str]) {
    for p in parts {
        assert!(err.contains(p), "`{p}` not in error: {err}");
    }
}

#[test]
fn the_tiny_checkpoint_converts() {
    // The baseline the hostile cases break: it converts, Q/K permuted and experts stacked.
    let dir = tempfile::tempdir().unwrap();
    write_tiny_mixtral(dir.path());
    let out = dir.path().join("tiny.gguf");
    convert(dir.path(), &out, &["--type", "q8_0"]).unwrap();
    let g = GgufFile::open(&out).unwrap();
    let exps = g.tensor("blk.1.ffn_down_exps.weight").unwrap();
    assert_eq!(exps.ne(), &[64, 64, 4]);
    assert_eq!(g.metadata().u32("llama.expert_count").unwrap(), 4);
}

#[test]
fn truncated_shard() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_mixtral(dir.path());
    let f = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() - 1000]).unwrap();
    let err = convert_fails(dir.path());
    assert_mentions(&err, &["model.safetensors", "truncated"]);
}

#[test]
fn header_length_past_eof() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_mixtral(dir.path());
    let f = dir.path().join("model.safetensors");
    let mut bytes = std::fs::read(&f).unwrap();
    let past_eof = bytes.len() as u64;
    bytes[..8].copy_from_slice(&past_eof.to_le_bytes());
    std::fs::write(&f, &bytes).unwrap();
    let err = convert_fails(dir.path());
    assert_mentions(
        &err,
        &["model.safetensors", "header length", "past the end"],
    );
}

#[test]
fn overlapping_tensor_offsets() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_mixtral(dir.path());
    // Two tensors claiming overlapping bytes: the second starts 64 bytes into the first.
    let a = "x.weight";
    let b = "y.weight";
    let json = format!(
        r#"{{"{a}":{{"dtype":"F32","shape":[32],"data_offsets":[0,128]}},"{b}":{{"dtype":"F32","shape":[32],"data_offsets":[64,192]}}}}"#
    );
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    bytes.extend_from_slice(&[0u8; 192]);
    std::fs::write(dir.path().join("model.safetensors"), &bytes).unwrap();
    let err = convert_fails(dir.path());
    assert_mentions(&err, &["model.safetensors", "`y.weight`", "overlap"]);
}

#[test]
fn unknown_dtype() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_mixtral(dir.path());
    let mut tensors = tiny_mixtral_tensors();
    tensors[5].dtype = "Q7_WEIRD".into();
    let name = tensors[5].name.clone();
    std::fs::write(
        dir.path().join("model.safetensors"),
        safetensors_bytes(&tensors),
    )
    .unwrap();
    let err = convert_fails(dir.path());
    assert_mentions(
        &err,
        &["model.safetensors", &format!("`{name}`"), "Q7_WEIRD"],
    );
    // A known dtype that is not a float weight type is refused by name too.
    let mut tensors = tiny_mixtral_tensors();
    tensors[5].dtype = "I16".into();
    std::fs::write(
        dir.path().join("model.safetensors"),
        safetensors_bytes(&tensors),
    )
    .unwrap();
    let err = convert_fails(dir.path());
    assert_mentions(&err, &["model.safetensors", &format!("`{name}`"), "I16"]);
}

/// Writes the tiny checkpoint as two shards with an index; returns the index's JSON.
fn write_sharded(dir: &Path) -> serde_json::Value {
    std::fs::create_dir_all(dir).unwrap();
    write_tiny_mixtral(dir);
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let (mut first, mut second): (Vec<StTensor>, Vec<StTensor>) = (Vec::new(), Vec::new());
    for (i, t) in tiny_mixtral_tensors().into_iter().enumerate() {
        if i % 2 == 0 {
            first.push(t);
        } else {
            second.push(t);
        }
    }
    let names = [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ];
    let mut map = serde_json::Map::new();
    for (shard, name) in [&first, &second].into_iter().zip(names) {
        for t in shard {
            map.insert(t.name.clone(), name.into());
        }
        std::fs::write(dir.join(name), safetensors_bytes(shard)).unwrap();
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    index
}

#[test]
fn sharded_checkpoint_equals_single_file() {
    let single = tempfile::tempdir().unwrap();
    write_tiny_mixtral(single.path());
    let sharded = tempfile::tempdir().unwrap();
    write_sharded(sharded.path());
    let out = tempfile::tempdir().unwrap();
    let (a, b) = (out.path().join("a.gguf"), out.path().join("b.gguf"));
    convert(single.path(), &a, &["--type", "q4_k_m"]).unwrap();
    convert(sharded.path(), &b, &["--type", "q4_k_m"]).unwrap();
    let (a, b) = (GgufFile::open(&a).unwrap(), GgufFile::open(&b).unwrap());
    assert_eq!(a.tensors().len(), b.tensors().len());
    for (x, y) in a.tensors().iter().zip(b.tensors()) {
        assert_eq!((x.name(), x.ty(), x.ne()), (y.name(), y.ty(), y.ne()));
        assert!(a.tensor_bytes(x) == b.tensor_bytes(y), "{}", x.name());
    }
}

#[test]
fn index_naming_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    write_sharded(dir.path());
    std::fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
    let err = convert_fails(dir.path());
    assert_mentions(
        &err,
        &[
            "model.safetensors.index.json",
            "model-00002-of-00002.safetensors",
            "missing",
        ],
    );
}

#[test]
fn index_disagreeing_with_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = write_sharded(dir.path());
    let name = "model.layers.0.self_attn.q_proj.weight";
    let wrong = if index["weight_map"][name] == "model-00001-of-00002.safetensors" {
        "model-00002-of-00002.safetensors"
    } else {
        "model-00001-of-00002.safetensors"
    };
    index["weight_map"][name] = wrong.into();
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let err = convert_fails(dir.path());
    assert_mentions(
        &err,
        &["model.safetensors.index.json", &format!("`{name}`")],
    );
}

#[test]
fn unknown_architecture_and_tensor() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_mixtral(dir.path());
    let config = TINY_CONFIG.replace("MixtralForCausalLM", "GPT2LMHeadModel");
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let err = convert_fails(dir.path());
    assert_mentions(
        &err,
        &["config.json", "GPT2LMHeadModel", "MixtralForCausalLM"],
    );

    std::fs::write(dir.path().join("config.json"), TINY_CONFIG).unwrap();
    let mut tensors = tiny_mixtral_tensors();
    tensors[4].name = "model.layers.0.mystery.weight".into();
    std::fs::write(
        dir.path().join("model.safetensors"),
        safetensors_bytes(&tensors),
    )
    .unwrap();
    let err = convert_fails(dir.path());
    assert_mentions(&err, &["`model.layers.0.mystery.weight`"]);
}

#[test]
fn missing_expert_and_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_mixtral(dir.path());
    let mut tensors = tiny_mixtral_tensors();
    tensors.retain(|t| t.name != "model.layers.1.block_sparse_moe.experts.3.w2.weight");
    std::fs::write(
        dir.path().join("model.safetensors"),
        safetensors_bytes(&tensors),
    )
    .unwrap();
    let err = convert_fails(dir.path());
    assert_mentions(&err, &["layer 1", "incomplete"]);

    write_tiny_mixtral(dir.path());
    let config = TINY_CONFIG.replace(r#""num_attention_heads": 4"#, r#""num_attention_heads": 3"#);
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let err = convert_fails(dir.path());
    assert_mentions(&err, &["config.json"]);

    // A vocabulary size that the embedding does not back is refused before anything is sized
    // by it.
    let config = TINY_CONFIG.replace(r#""vocab_size": 300"#, r#""vocab_size": 4000000000"#);
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let err = convert_fails(dir.path());
    assert_mentions(&err, &["vocab_size 4000000000", "300 rows"]);

    let config = TINY_CONFIG.replace(r#""num_hidden_layers": 2"#, r#""num_hidden_layers": 1"#);
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let err = convert_fails(dir.path());
    assert_mentions(&err, &["layer 1", "1 layers"]);

    std::fs::write(dir.path().join("config.json"), "{ not json").unwrap();
    let err = convert_fails(dir.path());
    assert_mentions(&err, &["config.json", "JSON"]);
}

#[test]
fn corrupt_tokenizer_model() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_mixtral(dir.path());
    std::fs::write(dir.path().join("tokenizer.model"), [0x0a, 0xff, 0xff, 0x01]).unwrap();
    let err = convert_fails(dir.path());
    assert_mentions(&err, &["tokenizer.model"]);
}
