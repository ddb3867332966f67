//! The float and 32-value formats against the fixture GGUFs made by llama.cpp and described by
//! gguf-py (`*/gguf-manifest.json`): dequantization bit for bit, and quantization byte for byte.
//!
//! Tensors are read straight from the files at `tensor_data_offset + offset` (`nbytes` long):
//! the manifests are the independent reference here, not a GGUF parser.

mod common;

use common::hf::HfCheckpoint;
use half::f16;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use tandem::quant::{BlockQ4_0, BlockQ8_0, Quantize};

/// One manifest record per GGUF file.
fn manifest(dir: &Path) -> Vec<Value> {
    let text = std::fs::read(dir.join("gguf-manifest.json")).unwrap();
    match serde_json::from_slice(&text).unwrap() {
        Value::Array(files) => files,
        other => panic!("{}: not a list: {other}", dir.display()),
    }
}

fn record<'a>(files: &'a [Value], name: &str) -> &'a Value {
    files
        .iter()
        .find(|r| r["file"] == name)
        .unwrap_or_else(|| panic!("{name} not in manifest"))
}

fn tensors(rec: &Value) -> &[Value] {
    rec["tensors"].as_array().unwrap()
}

fn tensor<'a>(rec: &'a Value, name: &str) -> &'a Value {
    tensors(rec).iter().find(|t| t["name"] == name).unwrap()
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The raw bytes of tensor `t` in the file `bytes` described by `rec`.
fn raw<'a>(bytes: &'a [u8], rec: &Value, t: &Value) -> &'a [u8] {
    let start = (num(&rec["tensor_data_offset"]) + num(&t["offset"])) as usize;
    let end = start + num(&t["nbytes"]) as usize;
    bytes
        .get(start..end)
        .unwrap_or_else(|| panic!("{}: bytes {start}..{end} outside the file", t["name"]))
}

/// Copies raw bytes into a (properly aligned) vector of blocks.
fn pod_vec<B: bytemuck::Pod>(bytes: &[u8]) -> Vec<B> {
    assert_eq!(bytes.len() % std::mem::size_of::<B>(), 0);
    let mut v = vec![B::zeroed(); bytes.len() / std::mem::size_of::<B>()];
    bytemuck::cast_slice_mut::<B, u8>(&mut v).copy_from_slice(bytes);
    v
}

fn dequantize_as<B: Quantize + bytemuck::Pod>(bytes: &[u8]) -> Vec<f32> {
    let blocks: Vec<B> = pod_vec(bytes);
    let mut out = vec![0.0; blocks.len() * B::VALUES];
    B::dequantize(&blocks, &mut out);
    out
}

/// Dequantizes a tensor of one of the types this test covers.
fn dequantize(ty: &str, bytes: &[u8]) -> Option<Vec<f32>> {
    Some(match ty {
        "F32" => dequantize_as::<f32>(bytes),
        "F16" => dequantize_as::<f16>(bytes),
        "Q8_0" => dequantize_as::<BlockQ8_0>(bytes),
        "Q4_0" => dequantize_as::<BlockQ4_0>(bytes),
        _ => return None,
    })
}

fn quantize_as<B: Quantize + bytemuck::Pod>(src: &[f32]) -> Vec<u8> {
    let mut out = vec![B::zeroed(); src.len() / B::VALUES];
    B::quantize(src, &mut out);
    bytemuck::cast_slice(&out).to_vec()
}

/// Quantizes `src` to one of the types this test covers.
fn quantize(ty: &str, src: &[f32]) -> Vec<u8> {
    match ty {
        "F32" => quantize_as::<f32>(src),
        "F16" => quantize_as::<f16>(src),
        "Q8_0" => quantize_as::<BlockQ8_0>(src),
        "Q4_0" => quantize_as::<BlockQ4_0>(src),
        other => panic!("no quantizer for {other} in this test"),
    }
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Manifest entries for files left out of the fixtures for size (fixtures README).
const UNSHIPPED: [&str; 2] = ["mixtral-mini-f16.gguf", "mixtral-mini-Q8_0.gguf"];

/// Reads a fixture GGUF, or `None` for one of the [`UNSHIPPED`] files. Any other missing file
/// is a failure.
fn read_gguf(dir: &Path, name: &str) -> Option<Vec<u8>> {
    let path = dir.join(name);
    if UNSHIPPED.contains(&name) && !path.exists() {
        eprintln!("skipping {name}: listed in the manifest but not shipped");
        return None;
    }
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// Every F32, F16, Q8_0 and Q4_0 tensor in every fixture GGUF, dequantized and compared with
/// gguf-py's numbers in the manifest: the first 32 values of row 0 bit for bit, and the float64
/// sum and sum of squares of all values.
///
/// Sum tolerance: both sides add the same exactly-representable f64 terms (an f32 value, or its
/// square, which needs at most 48 bits) in different orders. Any order of n terms is within
/// (n−1)·2^-53·Σ|terms| of the exact sum, so the two agree within 2n·2^-53·Σ|terms|. That is
/// below what a single wrong level changes: one step of one weight moves `dequant_sum` by its
/// scale (~6e-3 for mixtral-mini's N(0, 0.02) weights in Q4_0), while the tolerance on the
/// largest tensor (token_embd, 8.2 M values, Σ|x| ≈ 1.3e5) is ≈ 2.4e-4.
#[test]
fn dequantize_matches_gguf_py_manifests() {
    let Some(fx) = common::fixtures() else { return };
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    for dir in ["stories260k", "stories-moe", "mixtral-mini"] {
        let dir = fx.join(dir);
        let files = manifest(&dir);
        // Every GGUF on disk is described by the manifest, so none escapes the check.
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".gguf") {
                record(&files, &name);
            }
        }
        for rec in files {
            let file = rec["file"].as_str().unwrap();
            let Some(bytes) = read_gguf(&dir, file) else {
                continue;
            };
            for t in tensors(&rec) {
                let (name, ty) = (t["name"].as_str().unwrap(), t["type"].as_str().unwrap());
                let Some(values) = dequantize(ty, raw(&bytes, &rec, t)) else {
                    continue;
                };
                let what = format!("{file} {name} ({ty})");
                let count: u64 = t["ne"].as_array().unwrap().iter().map(num).product();
                assert_eq!(values.len() as u64, count, "{what}: value count");

                let head = t["dequant_row0_head"].as_array().unwrap();
                for (i, (v, want)) in values.iter().zip(head).enumerate() {
                    let want = want.as_f64().unwrap() as f32; // exact: the manifest stores f32 values
                    assert_eq!(
                        v.to_bits(),
                        want.to_bits(),
                        "{what}: row 0 value {i}: {v} vs {want}"
                    );
                }

                let n = values.len() as f64;
                let (mut sum, mut abs, mut sumsq) = (0.0f64, 0.0f64, 0.0f64);
                for &v in &values {
                    let v = v as f64;
                    sum += v;
                    abs += v.abs();
                    sumsq += v * v;
                }
                let eps = 2.0 * n * 2f64.powi(-53);
                let want_sum = t["dequant_sum"].as_f64().unwrap();
                let want_sq = t["dequant_sumsq"].as_f64().unwrap();
                assert!(
                    (sum - want_sum).abs() <= eps * abs,
                    "{what}: sum {sum} vs {want_sum}"
                );
                assert!(
                    (sumsq - want_sq).abs() <= eps * sumsq,
                    "{what}: sumsq {sumsq} vs {want_sq}"
                );
                *checked.entry(ty.to_string()).or_default() += 1;
            }
        }
    }
    eprintln!("dequantized and checked, per type: {checked:?}");
    for ty in ["F32", "F16", "Q8_0", "Q4_0"] {
        assert!(
            checked.get(ty).copied().unwrap_or(0) > 0,
            "no {ty} tensor was checked"
        );
    }
}

/// stories-moe: llama-quantize made the Q8_0 and Q4_0 files from the f32 file. Quantizing the
/// f32 tensors must give every Q8_0, Q4_0 and F16 tensor byte for byte (the fixtures README:
/// with f32 sources no FMA rounding ties occur), and the F32 ones are copies.
#[test]
fn stories_moe_quantize_matches_llamacpp() {
    let Some(fx) = common::fixtures() else { return };
    let dir = fx.join("stories-moe");
    let files = manifest(&dir);
    let src_name = "stories260K-moe8x-finetuned-f32.gguf";
    let src_rec = record(&files, src_name);
    let src_bytes = std::fs::read(dir.join(src_name)).unwrap();
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    for name in [
        "stories260K-moe8x-finetuned-Q8_0.gguf",
        "stories260K-moe8x-finetuned-Q4_0.gguf",
    ] {
        let rec = record(&files, name);
        let bytes = std::fs::read(dir.join(name)).unwrap();
        for t in tensors(rec) {
            let (tname, ty) = (t["name"].as_str().unwrap(), t["type"].as_str().unwrap());
            let s = tensor(src_rec, tname);
            assert_eq!(s["ne"], t["ne"], "{tname}: shape");
            let src = f32s(raw(&src_bytes, src_rec, s));
            let got = quantize(ty, &src);
            let want = raw(&bytes, rec, t);
            assert!(
                got == want,
                "{name} {tname} ({ty}): bytes differ from llama-quantize's"
            );
            *checked.entry(ty.to_string()).or_default() += 1;
        }
    }
    eprintln!("re-quantized byte for byte, per type: {checked:?}");
    assert!(checked["Q8_0"] > 40 && checked["Q4_0"] > 20 && checked["F16"] == 10);
}

/// mixtral-mini: the Q8_0 tensors quantized from the HF bf16 weights (widened exactly, Q/K
/// permuted) must equal those in the shipped Q4_0 / Q4_K_M / Q5_K_M files byte for byte, and
/// hash to the SHA-256 the manifest lists for every tensor of the unshipped Q8_0 and F16 files.
#[test]
fn mixtral_mini_q8_0_and_f16_match_llamacpp() {
    let Some(fx) = common::fixtures() else { return };
    let dir = fx.join("mixtral-mini");
    let files = manifest(&dir);
    let hf = HfCheckpoint::open(&dir.join("mixtral-mini-hf"));
    let mut cache: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    let mut source = |name: &str, row: u64| -> Vec<f32> {
        cache
            .entry(name.to_string())
            .or_insert_with(|| {
                let (v, cols) = hf.gguf_tensor(name);
                assert_eq!(cols as u64, row, "{name}: row length");
                v
            })
            .clone()
    };

    let mut identical = 0;
    for name in [
        "mixtral-mini-Q4_0.gguf",
        "mixtral-mini-Q4_K_M.gguf",
        "mixtral-mini-Q5_K_M.gguf",
    ] {
        let rec = record(&files, name);
        let bytes = std::fs::read(dir.join(name)).unwrap();
        for t in tensors(rec).iter().filter(|t| t["type"] == "Q8_0") {
            let tname = t["name"].as_str().unwrap();
            let got = quantize("Q8_0", &source(tname, num(&t["ne"][0])));
            assert!(
                got == raw(&bytes, rec, t),
                "{name} {tname}: Q8_0 bytes differ"
            );
            identical += 1;
        }
    }
    assert_eq!(identical, 12, "attn_k and attn_v of 2 layers in 3 files");

    let mut hashed: BTreeMap<String, usize> = BTreeMap::new();
    for name in ["mixtral-mini-Q8_0.gguf", "mixtral-mini-f16.gguf"] {
        for t in tensors(record(&files, name)) {
            let (tname, ty) = (t["name"].as_str().unwrap(), t["type"].as_str().unwrap());
            let got = quantize(ty, &source(tname, num(&t["ne"][0])));
            assert_eq!(got.len() as u64, num(&t["nbytes"]), "{name} {tname}: size");
            assert_eq!(
                sha256_hex(&got),
                t["sha256"].as_str().unwrap(),
                "{name} {tname} ({ty}): sha256"
            );
            *hashed.entry(format!("{name} {ty}")).or_default() += 1;
        }
    }
    eprintln!("mixtral-mini: {identical} Q8_0 tensors identical, sha256 matched: {hashed:?}");
}

/// mixtral-mini-Q4_0.gguf, quantized from the bf16 weights with the two-rounding reference
/// formula, must equal the file byte for byte.
///
/// The manifest lists 1,996 weights as `weights_differing_from_unfused_reference`, and the
/// fixtures README blames an FMA in llama.cpp. Measured here, it is the other way round: the file
/// is exactly the two-rounding formula, and the count is that of the weights where the fused
/// formula `trunc(fma(x, id, 8.5))` differs from it. gguf-py 0.15, which made the manifest,
/// computes `x*id + 8.5` in float64 (no rounding of the product: the fused result), while the
/// installed gguf-py 0.19 rounds the product to f32 like ggml. So this test checks, per tensor,
/// that (a) our bytes equal the file's, (b) every weight where the fused formula differs is an
/// exact tie (`x*id` rounds to exactly k − 0.5 in f32) that the fused formula puts one level
/// lower, and (c) those ties number what the manifest lists.
#[test]
fn mixtral_mini_q4_0_matches_llamacpp_and_counts_fma_ties() {
    let Some(fx) = common::fixtures() else { return };
    let dir = fx.join("mixtral-mini");
    let files = manifest(&dir);
    let name = "mixtral-mini-Q4_0.gguf";
    let rec = record(&files, name);
    let bytes = std::fs::read(dir.join(name)).unwrap();
    let hf = HfCheckpoint::open(&dir.join("mixtral-mini-hf"));
    let (mut ties, mut weights) = (0u64, 0u64);
    for t in tensors(rec).iter().filter(|t| t["type"] == "Q4_0") {
        let tname = t["name"].as_str().unwrap();
        let (src, cols) = hf.gguf_tensor(tname);
        assert_eq!(cols as u64, num(&t["ne"][0]));
        let ours = quantize("Q4_0", &src);
        assert!(
            ours == raw(&bytes, rec, t),
            "{tname}: bytes differ from llama-quantize's"
        );

        let mut tensor_ties = 0u64;
        for (i, x) in src.chunks_exact(32).enumerate() {
            // The reference formula's inputs, computed here from the fixtures README.
            let max = x
                .iter()
                .fold(0.0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
            let d = max / -8.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            for (j, &v) in x.iter().enumerate() {
                let unfused = ((v * id + 8.5) as i8).min(15);
                let fused = (v.mul_add(id, 8.5) as i8).min(15);
                if fused != unfused {
                    let p = v * id;
                    assert!(
                        p.fract().abs() == 0.5,
                        "{tname} block {i} value {j}: x*id = {p} is no tie"
                    );
                    assert_eq!(
                        fused + 1,
                        unfused,
                        "{tname} block {i} value {j}: not one level"
                    );
                    tensor_ties += 1;
                }
            }
        }
        let listed = num(&t["weights_differing_from_unfused_reference"]);
        assert_eq!(
            tensor_ties, listed,
            "{tname}: tie count against the manifest"
        );
        ties += tensor_ties;
        weights += src.len() as u64;
    }
    eprintln!(
        "mixtral-mini-Q4_0: all Q4_0 bytes identical; the fused formula would differ at {ties} of \
         {weights} weights, every one an exact rounding tie"
    );
    assert_eq!(ties, 1996, "the fixtures README counts 1,996");
}
