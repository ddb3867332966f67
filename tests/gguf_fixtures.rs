//! The reader against the fixtures' `*/gguf-manifest.json` files (written by gguf-py): header,
//! every metadata key and value, every tensor's name, type, shape, offset, size and SHA-256.

mod common;

use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use std::path::Path;
use tandem::gguf::{keys, GgufFile, Value};
use tandem::quant::{Block, GgmlType};

/// gguf-py's `GGUFValueType` names.
fn gguf_py_type_name(id: u32) -> &'static str {
    [
        "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL", "STRING",
        "ARRAY", "UINT64", "INT64", "FLOAT64",
    ][id as usize]
}

fn check_value(file: &str, key: &str, got: &Value, want: &Json) {
    let ctx = format!("{file}: `{key}`: got {got:?}, manifest {want}");
    match want {
        Json::Object(o) => {
            let Value::Array(a) = got else {
                panic!("{ctx}: not an array")
            };
            assert_eq!(
                gguf_py_type_name(a.elem_type().id()),
                o["array_of"],
                "{ctx}"
            );
            assert_eq!(a.len() as u64, o["len"].as_u64().unwrap(), "{ctx}");
        }
        Json::String(s) => assert_eq!(got, &Value::from(s.as_str()), "{ctx}"),
        Json::Bool(b) => assert_eq!(got, &Value::Bool(*b), "{ctx}"),
        Json::Number(n) if n.is_f64() => {
            // The manifest holds the f32 widened to f64 by Python: equal exactly.
            assert_eq!(got.as_f64(), n.as_f64(), "{ctx}");
        }
        Json::Number(n) => {
            let want = n.as_i64().map(i128::from).or(n.as_u64().map(i128::from));
            assert_eq!(got.as_i128(), want, "{ctx}");
        }
        _ => panic!("{ctx}: unexpected manifest value"),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks one manifest record against the file; returns the number of tensors checked.
fn check_record(dir: &Path, rec: &Json) -> Option<usize> {
    let name = rec["file"].as_str().unwrap();
    let path = dir.join(name);
    if !path.exists() {
        eprintln!("SKIPPED (not shipped): {name}");
        return None;
    }
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.file_size(), rec["size"].as_u64().unwrap(), "{name}: size");
    assert_eq!(
        u64::from(f.version()),
        rec["gguf_version"].as_u64().unwrap(),
        "{name}: version"
    );
    assert_eq!(
        f.alignment(),
        rec["alignment"].as_u64().unwrap(),
        "{name}: alignment"
    );
    assert_eq!(
        f.data_offset(),
        rec["tensor_data_offset"].as_u64().unwrap(),
        "{name}: tensor data offset"
    );

    let meta = rec["metadata"].as_object().unwrap();
    assert_eq!(f.metadata().len(), meta.len(), "{name}: metadata count");
    for (key, want) in meta {
        let got = f
            .metadata()
            .get(key)
            .unwrap_or_else(|| panic!("{name}: `{key}` missing"));
        check_value(name, key, got, want);
    }

    let tensors = rec["tensors"].as_array().unwrap();
    assert_eq!(f.tensors().len(), tensors.len(), "{name}: tensor count");
    for (t, want) in f.tensors().iter().zip(tensors) {
        let ctx = format!("{name}: tensor `{}`", t.name());
        assert_eq!(t.name(), want["name"], "{ctx}: name/order");
        assert_eq!(t.ty().name(), want["type"], "{ctx}");
        let ne: Vec<u64> = want["ne"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect();
        assert_eq!(t.ne(), ne, "{ctx}: ne");
        assert_eq!(
            t.offset(),
            want["offset"].as_u64().unwrap(),
            "{ctx}: offset"
        );
        assert_eq!(
            t.nbytes(),
            want["nbytes"].as_u64().unwrap(),
            "{ctx}: nbytes"
        );
        assert_eq!(
            sha256_hex(f.tensor_bytes(t)),
            want["sha256"],
            "{ctx}: sha256"
        );
        assert!(
            std::ptr::eq(f.tensor(t.name()).unwrap(), t),
            "{ctx}: lookup by name"
        );
    }
    Some(tensors.len())
}

fn manifest(dir: &Path) -> Vec<Json> {
    let text = std::fs::read(dir.join("gguf-manifest.json")).unwrap();
    serde_json::from_slice::<Json>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn every_manifest_file_agrees() {
    let Some(fx) = common::fixtures() else { return };
    let (mut files, mut tensors) = (0, 0);
    for sub in ["stories260k", "stories-moe", "mixtral-mini"] {
        let dir = fx.join(sub);
        for rec in manifest(&dir) {
            if let Some(n) = check_record(&dir, &rec) {
                files += 1;
                tensors += n;
            }
        }
    }
    println!("checked {files} files, {tensors} tensors against the manifests");
    // 1 + 4 + 3 shipped files.
    assert_eq!(files, 8);
}

/// The vocab-only GGUFs have no manifest; the fixtures README states their contents.
#[test]
fn vocab_only_files() {
    let Some(fx) = common::fixtures() else { return };
    let f = GgufFile::open(fx.join("tokenizers/ggml-vocab-mixtral.gguf")).unwrap();
    let md = f.metadata();
    assert_eq!(f.tensors().len(), 0);
    assert_eq!(md.string(keys::TOKENIZER_MODEL).unwrap(), "llama");
    assert_eq!(md.string(keys::TOKENIZER_PRE).unwrap(), "default");
    assert_eq!(md.u32(keys::TOKENIZER_BOS_ID).unwrap(), 1);
    assert_eq!(md.u64(keys::TOKENIZER_EOS_ID).unwrap(), 2);
    assert!(md.bool(keys::TOKENIZER_ADD_BOS).unwrap());
    assert!(!md.bool(keys::TOKENIZER_ADD_EOS).unwrap());
    let tokens = md
        .array(keys::TOKENIZER_TOKENS)
        .unwrap()
        .as_strings()
        .unwrap();
    assert_eq!(tokens.len(), 32000);
    assert_eq!(tokens[1].as_str(), Some("<s>"));
    assert_eq!(tokens[2].as_str(), Some("</s>"));
    assert_eq!(
        md.array(keys::TOKENIZER_SCORES)
            .unwrap()
            .as_f32()
            .unwrap()
            .len(),
        32000
    );
    assert_eq!(
        md.array(keys::TOKENIZER_TOKEN_TYPE)
            .unwrap()
            .as_i32()
            .unwrap()
            .len(),
        32000
    );
    let err = md.f32(keys::TOKENIZER_TOKENS).unwrap_err().to_string();
    assert!(
        err.contains("tokenizer.ggml.tokens") && err.contains("array of string"),
        "{err}"
    );

    let spm = GgufFile::open(fx.join("tokenizers/ggml-vocab-llama-spm.gguf")).unwrap();
    assert_eq!(spm.version(), 3);
    assert_eq!(
        spm.metadata().array(keys::TOKENIZER_TOKENS).unwrap().len(),
        32000
    );
}

/// Test-local block types, so these tests do not depend on the quant module's implementations.
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct F32Value(f32);
impl Block for F32Value {
    const TYPE: GgmlType = GgmlType::F32;
    const VALUES: usize = 1;
}

#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Q8Block {
    d: u16,
    qs: [i8; 32],
}
impl Block for Q8Block {
    const TYPE: GgmlType = GgmlType::Q8_0;
    const VALUES: usize = 32;
}

fn row0_head(dir: &Path, file: &str, tensor: &str) -> Vec<f32> {
    let rec = manifest(dir)
        .into_iter()
        .find(|r| r["file"] == file)
        .unwrap();
    let t = rec["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == tensor)
        .unwrap();
    t["dequant_row0_head"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

/// Typed views decode to the values gguf-py dequantized (exactly: F32 is a copy, and Q8_0 is
/// one f16→f32 scale times an integer, the same single rounding as numpy's float32 product).
#[test]
fn typed_views_match_gguf_py_values() {
    let Some(fx) = common::fixtures() else { return };
    let dir = fx.join("stories260k");
    let f = GgufFile::open(dir.join("stories260K-f32.gguf")).unwrap();
    let t = f.tensor("token_embd.weight").unwrap();
    let v = f.tensor_data::<F32Value>(t).unwrap();
    assert_eq!(v.len() as u64, t.n_elements());
    let got: Vec<f32> = v[..32].iter().map(|x| x.0).collect();
    assert_eq!(
        got,
        row0_head(&dir, "stories260K-f32.gguf", "token_embd.weight")
    );

    let dir = fx.join("mixtral-mini");
    let f = GgufFile::open(dir.join("mixtral-mini-Q4_0.gguf")).unwrap();
    let t = f.tensor("blk.0.attn_k.weight").unwrap();
    assert_eq!(t.ty(), GgmlType::Q8_0);
    let blocks = f.tensor_data::<Q8Block>(t).unwrap();
    assert_eq!(blocks.len() as u64 * 32, t.n_elements());
    let d = half::f16::from_bits(blocks[0].d).to_f32();
    let got: Vec<f32> = blocks[0].qs.iter().map(|&q| d * f32::from(q)).collect();
    assert_eq!(
        got,
        row0_head(&dir, "mixtral-mini-Q4_0.gguf", "blk.0.attn_k.weight")
    );

    let err = f.tensor_data::<F32Value>(t).unwrap_err().to_string();
    assert!(
        err.contains("blk.0.attn_k.weight") && err.contains("Q8_0") && err.contains("F32"),
        "{err}"
    );
}
