//! `tandem-quantize` against the llama.cpp-made fixture files: per-tensor types and bytes, whole
//! files, and metadata.

mod common;
mod quantize_support;

use quantize_support::{
    assert_tensors_match_manifest, convert, manifest_entry, mirror_dir, sha256,
};
use tandem::gguf::GgufFile;
use tandem::quant::GgmlType;
use tandem_quantize::gguf_source::GgufSource;
use tandem_quantize::plan::Planned;
use tandem_quantize::source::Source;
use tandem_quantize::verify::verify;
use tandem_quantize::write::write_gguf;

/// f16 and Q8_0 from the bf16 checkpoint: every tensor's bytes equal the unshipped llama.cpp
/// files, whose SHA-256 sums the manifest keeps.
#[test]
fn mixtral_mini_f16_and_q8_0_tensors_equal_llama_cpp() {
    let Some(fx) = common::fixtures() else { return };
    let hf = fx.join("mixtral-mini/mixtral-mini-hf");
    let manifest = fx.join("mixtral-mini/gguf-manifest.json");
    let tmp = tempfile::tempdir().unwrap();
    for (ty, file) in [
        ("f16", "mixtral-mini-f16.gguf"),
        ("q8_0", "mixtral-mini-Q8_0.gguf"),
    ] {
        let out = tmp.path().join(file);
        convert(&hf, &out, &["--type", ty]).unwrap();
        assert_tensors_match_manifest(&out, &manifest, file);
    }
}

/// Share of identical blocks between two tensors of the same type.
fn identical_blocks(a: &[u8], b: &[u8], block_bytes: usize) -> (usize, usize) {
    assert_eq!(a.len(), b.len());
    let same = a
        .chunks(block_bytes)
        .zip(b.chunks(block_bytes))
        .filter(|(x, y)| x == y)
        .count();
    (same, a.len() / block_bytes)
}

/// Q4_0, Q4_K_M and Q5_K_M choose llama.cpp's type for every tensor; the bytes may differ only
/// where the fixtures README allows (an FMA in llama.cpp's Q4_0 rounding, the K-quant search in
/// f32), so at least 99.9% of the blocks must be identical. (Measured: 100% in all three.)
#[test]
fn mixtral_mini_mixes_choose_llama_cpp_types_and_blocks() {
    let Some(fx) = common::fixtures() else { return };
    let hf = fx.join("mixtral-mini/mixtral-mini-hf");
    let tmp = tempfile::tempdir().unwrap();
    for (ty, file) in [
        ("q4_0", "mixtral-mini-Q4_0.gguf"),
        ("q4_k_m", "mixtral-mini-Q4_K_M.gguf"),
        ("q5_k_m", "mixtral-mini-Q5_K_M.gguf"),
    ] {
        let out = tmp.path().join(file);
        convert(&hf, &out, &["--type", ty]).unwrap();
        let ours = GgufFile::open(&out).unwrap();
        let theirs = GgufFile::open(fx.join("mixtral-mini").join(file)).unwrap();
        let (mut same, mut total) = (0, 0);
        assert_eq!(ours.tensors().len(), theirs.tensors().len());
        for (a, b) in ours.tensors().iter().zip(theirs.tensors()) {
            assert_eq!(
                (a.name(), a.ty(), a.ne()),
                (b.name(), b.ty(), b.ne()),
                "{file}"
            );
            let (s, n) = identical_blocks(
                ours.tensor_bytes(a),
                theirs.tensor_bytes(b),
                a.ty().block_bytes(),
            );
            same += s;
            total += n;
        }
        let share = same as f64 / total as f64;
        eprintln!(
            "{file}: {same} of {total} blocks identical ({:.4}%)",
            100.0 * share
        );
        assert!(
            share >= 0.999,
            "{file}: only {:.4}% of blocks identical",
            100.0 * share
        );
    }
}

/// With the checkpoint as llama.cpp converted it (before `tokenizer.json` was added to the
/// fixture directory; see the fixtures README), every output file is byte-identical to
/// llama.cpp's: metadata, order, alignment and data.
#[test]
fn mixtral_mini_whole_files_equal_llama_cpp() {
    let Some(fx) = common::fixtures() else { return };
    let manifest = fx.join("mixtral-mini/gguf-manifest.json");
    let tmp = tempfile::tempdir().unwrap();
    let hf = mirror_dir(
        &fx.join("mixtral-mini/mixtral-mini-hf"),
        tmp.path(),
        "mixtral-mini-hf",
        &["tokenizer.json"],
    );
    for (ty, file) in [
        ("f16", "mixtral-mini-f16.gguf"),
        ("q8_0", "mixtral-mini-Q8_0.gguf"),
        ("q4_0", "mixtral-mini-Q4_0.gguf"),
        ("q4_k_m", "mixtral-mini-Q4_K_M.gguf"),
        ("q5_k_m", "mixtral-mini-Q5_K_M.gguf"),
    ] {
        let out = tmp.path().join(file);
        convert(&hf, &out, &["--type", ty]).unwrap();
        let want = manifest_entry(&manifest, file);
        assert_eq!(
            sha256(&std::fs::read(&out).unwrap()),
            want["sha256"].as_str().unwrap(),
            "{file}"
        );
    }
}

/// Converting the fixture directory as it is now: the metadata has llama.cpp's keys, values
/// and value types. The one difference is `tokenizer.ggml.unknown_token_id` = 0, which gguf-py
/// also writes once `tokenizer.json` (present now, absent at llama.cpp's conversion) names
/// `<unk>` among its added tokens.
#[test]
fn mixtral_mini_metadata_matches_llama_cpp() {
    let Some(fx) = common::fixtures() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("q4km.gguf");
    convert(
        &fx.join("mixtral-mini/mixtral-mini-hf"),
        &out,
        &["--type", "q4_k_m"],
    )
    .unwrap();
    let ours = GgufFile::open(&out).unwrap();
    let theirs = GgufFile::open(fx.join("mixtral-mini/mixtral-mini-Q4_K_M.gguf")).unwrap();
    let ours_keys: Vec<&str> = ours
        .metadata()
        .entries()
        .iter()
        .map(|e| e.key.as_str())
        .filter(|k| *k != "tokenizer.ggml.unknown_token_id")
        .collect();
    let their_keys: Vec<&str> = theirs
        .metadata()
        .entries()
        .iter()
        .map(|e| e.key.as_str())
        .collect();
    assert_eq!(ours_keys, their_keys);
    for e in theirs.metadata().entries() {
        let v = ours.metadata().get(&e.key).unwrap();
        // Same value and same type (Value's equality compares both, arrays element by element).
        assert!(v == &e.value, "{}: {v:?} vs {:?}", e.key, e.value);
    }
    assert_eq!(
        ours.metadata()
            .u32("tokenizer.ggml.unknown_token_id")
            .unwrap(),
        0
    );
}

/// stories-moe: the f32 conversions are bit-identical files (so the model generates the
/// reference text); the Q8_0 file and the Q4_0 file (llama.cpp made that one with
/// `--output-tensor-type q4_0`, hence `--keep`) are identical too, including their F16
/// fallback for the 172-wide `ffn_down_exps`.
#[test]
fn stories_moe_files_equal_llama_cpp() {
    let Some(fx) = common::fixtures() else { return };
    let dir = fx.join("stories-moe");
    let manifest = dir.join("gguf-manifest.json");
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "stories260K-moe8x-finetuned",
            "stories260K-moe8x-finetuned-f32.gguf",
            &["--type", "f32"],
        ),
        (
            "stories260K-moe4x-exact",
            "stories260K-moe4x-exact-f32.gguf",
            &["--type", "f32"],
        ),
        (
            "stories260K-moe8x-finetuned",
            "stories260K-moe8x-finetuned-Q8_0.gguf",
            &["--type", "q8_0"],
        ),
        (
            "stories260K-moe8x-finetuned",
            "stories260K-moe8x-finetuned-Q4_0.gguf",
            &["--type", "q4_0", "--keep", r"output\.weight=q4_0"],
        ),
    ];
    for (model, file, extra) in cases {
        let out = tmp.path().join(file);
        let mut args = vec!["--name", model];
        args.extend_from_slice(extra);
        convert(&dir.join(model), &out, &args).unwrap();
        assert_tensors_match_manifest(&out, &manifest, file);
        let want = manifest_entry(&manifest, file);
        assert_eq!(
            sha256(&std::fs::read(&out).unwrap()),
            want["sha256"].as_str().unwrap(),
            "{file}: whole file"
        );
    }
}

/// Requantizing llama.cpp's f32 GGUF gives llama-quantize's Q8_0 file, metadata included.
#[test]
fn requantize_gguf_equals_llama_quantize() {
    let Some(fx) = common::fixtures() else { return };
    let dir = fx.join("stories-moe");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("q8.gguf");
    convert(
        &dir.join("stories260K-moe8x-finetuned-f32.gguf"),
        &out,
        &["--type", "q8_0"],
    )
    .unwrap();
    let want = std::fs::read(dir.join("stories260K-moe8x-finetuned-Q8_0.gguf")).unwrap();
    assert!(
        std::fs::read(&out).unwrap() == want,
        "requantized file differs"
    );
}

/// `--verify` runs (sampled rows dequantized against the source) and `--dry-run` writes
/// nothing.
#[test]
fn verify_and_dry_run() {
    let Some(fx) = common::fixtures() else { return };
    let hf = fx.join("mixtral-mini/mixtral-mini-hf");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.gguf");
    convert(&hf, &out, &["--type", "q4_k_m", "--dry-run"]).unwrap();
    assert!(!out.exists() && quantize_support::listing(tmp.path()).is_empty());
    convert(&hf, &out, &["--type", "q4_k_m", "--verify"]).unwrap();
    assert!(out.exists());
    // The second write needs --force.
    let err = convert(&hf, &out, &["--type", "q8_0"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("--force"), "{err}");
    convert(&hf, &out, &["--type", "q8_0", "--force"]).unwrap();
    assert_eq!(quantize_support::listing(tmp.path()), ["x.gguf"]);
}

/// The `--verify` measure itself: zero error for a lossless F32 rewrite, and Q8_0's error
/// (half a step of 1/127 of each block's largest value, about 0.3% RMS of a normal block) for
/// Q8_0.
#[test]
fn verify_measures_the_quantization_error() {
    let Some(fx) = common::fixtures() else { return };
    let src = fx.join("stories-moe/stories260K-moe8x-finetuned-f32.gguf");
    let source = GgufSource::open(&src).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for (ty, max_rel) in [(GgmlType::F32, 0.0), (GgmlType::Q8_0, 0.01)] {
        let plan: Vec<Planned> = source
            .tensors()
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let ne: Vec<u64> = t.shape.iter().rev().copied().collect();
                let fits = ne.len() > 1 && ne[0].is_multiple_of(32);
                Planned {
                    name: t.name.clone(),
                    ne,
                    ty: if fits { ty } else { GgmlType::F32 },
                    parts: vec![i],
                    permute_heads: None,
                }
            })
            .collect();
        let out = tmp.path().join(format!("{ty}.gguf"));
        write_gguf(&out, source.file.metadata(), &plan, &source, false).unwrap();
        let file = GgufFile::open(&out).unwrap();
        let report = verify(&file, &plan, &source).unwrap();
        assert_eq!(report.len(), plan.len());
        for (p, e) in plan.iter().zip(&report) {
            if p.ty == GgmlType::F32 {
                assert_eq!(e.rmse, 0.0, "{}", e.name);
            } else {
                assert!(
                    e.relative > 0.0 && e.relative <= max_rel,
                    "{}: {}",
                    e.name,
                    e.relative
                );
            }
        }
    }
}
