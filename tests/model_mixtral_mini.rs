//! mixtral-mini (random weights, the real Mixtral layout and tokenizer) against transformers and
//! the fixtures' exact numpy references of the llama.cpp-made quantized files.

mod common;

use common::model::*;
use tandem::quant::GgmlType;
use tandem::tensor::kv::KvType;

/// The bf16 checkpoint converted to f32 and f16 GGUF in the test: every bf16 value is exact in
/// f32, and all but 4,668 tiny subnormals are exact in f16, so the weights are transformers' own.
/// What remains is float arithmetic: f32 accumulation in a different order (≈1e-6), and the f16
/// KV cache (2^-12 relative per element, ≈3e-4 measured on stories-moe). The bound is
/// 2e-3 relative L2.
#[test]
fn converted_bf16_weights_match_transformers() {
    let Some(fx) = common::fixtures() else { return };
    let mini = fx.join("mixtral-mini");
    let reference = read_json(&mini.join("reference/transformers.json"));
    let want = read_logits(&mini.join("reference/transformers.logits.f32.bin"));
    let tokens = ids(&reference["logits_tokens"]);
    let dir = tempfile::tempdir().unwrap();
    for ty in [GgmlType::F32, GgmlType::F16] {
        let out = dir.path().join(format!("mini-{}.gguf", ty.name()));
        common::convert::hf_to_gguf(
            &mini.join("mixtral-mini-hf"),
            &mini.join("mixtral-mini-Q4_0.gguf"),
            &out,
            ty,
        );
        let file = open(&out);
        for kv in [KvType::F32, KvType::F16] {
            let (got, routing) = logits(&file, &tokens, kv);
            let err = rel_l2(&got, &want);
            eprintln!(
                "mini {} weights, kv {}: rel L2 {err:.3e}, max abs {:.3e}",
                ty.name(),
                kv.name(),
                max_abs(&got, &want)
            );
            assert!(
                err < 2e-3,
                "{} weights, kv {}: rel L2 {err:.3e}",
                ty.name(),
                kv.name()
            );
            // The smallest router gap is 4.8e-4 (BOS, layer 1): skip gaps under 1e-3.
            let (checked, skipped) = check_routing(&routing, &reference["routing"], 1e-3);
            assert!(checked >= 30, "{checked} checked, {skipped} skipped");
            let argmax = ids(&reference["argmax"]);
            for (t, row) in got.chunks_exact(32000).enumerate() {
                let best =
                    row.iter()
                        .enumerate()
                        .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
                assert_eq!(best.0 as u32, argmax[t], "position {t}: argmax");
            }
        }
        let greedy_want = ids(&reference["greedy_tokens"]);
        assert_eq!(
            greedy(
                &file,
                &ids(&reference["prompt_tokens"]),
                greedy_want.len(),
                KvType::F16
            ),
            greedy_want
        );
    }
}

/// llama.cpp's own quantized files against the exact numpy forward of the same dequantized
/// weights. The difference is our 8-bit activation quantization (Q8_0 for Q4_0/Q8_0 weights, Q8_K
/// for K-quants), as in llama.cpp; the bound is 2e-2 relative L2. Greedy tokens must
/// agree up to the first step whose recorded margin our measured logit error could flip.
#[test]
fn llamacpp_quantized_files_match_their_numpy_references() {
    let Some(fx) = common::fixtures() else { return };
    let mini = fx.join("mixtral-mini");
    for q in ["Q4_0", "Q4_K_M", "Q5_K_M"] {
        let file = open(&mini.join(format!("mixtral-mini-{q}.gguf")));
        let reference = read_json(&mini.join(format!("reference/{q}.numpy.json")));
        let want = read_logits(&mini.join(format!("reference/{q}.numpy.logits.f32.bin")));
        let tokens = ids(&reference["logits_tokens"]);
        let (got, routing) = logits(&file, &tokens, KvType::F16);
        let (err, abs) = (rel_l2(&got, &want), max_abs(&got, &want));
        eprintln!("mini {q}: rel L2 {err:.3e}, max abs {abs:.3e}");
        assert!(err < 2e-2, "{q}: rel L2 {err:.3e}");
        // Activation quantization moves router logits by up to ~1e-2 here, so a pair may flip
        // where the reference's gap is small: report agreement rather than demand it.
        let (same, total) = routing_agreement(&routing, &reference["routing"]);
        eprintln!("  routing: {same}/{total} expert pairs equal");

        let prompt = ids(&reference["prompt_tokens"]);
        let greedy_want = ids(&reference["greedy_tokens"]);
        let margins = floats(&reference["greedy_top1_top2_margin"]);
        let safe = margins.iter().take_while(|&&m| m > 2.0 * abs).count();
        let got = greedy(&file, &prompt, greedy_want.len(), KvType::F16);
        let same = got
            .iter()
            .zip(&greedy_want)
            .take_while(|(a, b)| a == b)
            .count();
        eprintln!(
            "  greedy: {same}/{} equal; {safe} required by the margins",
            greedy_want.len()
        );
        assert!(
            same >= safe,
            "{q}: greedy diverged at step {same}, margins guarantee {safe}"
        );
    }
}
