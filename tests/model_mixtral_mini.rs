//! mixtral-mini (random weights, the real Mixtral layout and tokenizer) against transformers and
//! the fixtures' exact numpy references of the llama.cpp-made quantized files.

mod common;

use common::model::*;
use tandem::quant::GgmlType;
use tandem::tensor::kv::KvType;

/// The bf16 checkpoint converted to f32 and f16 GGUF in the test: every bf16 value is exact in
/// f32, and all but 4,668 tiny subnormals are exact in f16, so the weights are transformers' own
/// and the f16 file computes like the f32 one. One bound per KV cache type:
/// - f32 KV: only f32 arithmetic remains (transformers' float32 logits, stored as f32, against
///   ours). Each operation is off by at most u = 2^-24 ≈ 6e-8 relative, and a dot product of
///   length n (≤ 512 here) accumulates ~√n·u ≈ 1.4e-6 for the longest; both sides round, so
///   up to ~3e-6. Measured: 4.6e-7 relative L2. The bound, 5e-6, is 40 times below one stray
///   f16 rounding of the final hidden state (planted: 2.0e-4) and 1,000 times below an RMSNorm
///   epsilon twice too large (planted: 4.9e-3).
/// - f16 KV: every key and value is rounded to an 11-bit mantissa, ≤ 2^-12 ≈ 2.4e-4 relative
///   each, carried to the logits with a gain near one (measured 2.3e-4, gain 0.9). The bound
///   is three times 2^-12, 7.5e-4.
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
            let bound = if kv == KvType::F32 { 5e-6 } else { 7.5e-4 };
            assert!(
                err < bound,
                "{} weights, kv {}: rel L2 {err:.3e} ≥ {bound:e}",
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
    // The least each file must compare of 32 routing choices and 16 greedy steps (measured:
    // Q4_0 30 and 8, Q4_K_M 27 and 13, Q5_K_M 28 and 11); fewer means the bounds have grown.
    for (q, min_routing, min_steps) in [("Q4_0", 26, 7), ("Q4_K_M", 24, 11), ("Q5_K_M", 24, 9)] {
        let file = open(&mini.join(format!("mixtral-mini-{q}.gguf")));
        let reference = read_json(&mini.join(format!("reference/{q}.numpy.json")));
        let want = read_logits(&mini.join(format!("reference/{q}.numpy.logits.f32.bin")));
        check_quantized_file(
            &format!("mini {q}"),
            &file,
            &reference,
            &want,
            min_routing,
            min_steps,
        );
    }
}
