//! The forward pass on the real trained stories260K models (dense, and the Mixtral-format MoE
//! derived from it) against llama2.c and the fixtures' numpy float64 references.

mod common;

use common::model::*;
use tandem::tensor::kv::KvType;

#[test]
fn dense_greedy_from_bos_equals_llama2c() {
    let Some(fx) = common::fixtures() else { return };
    let file = open(&fx.join("stories260k/stories260K-f32.gguf"));
    let reference = read_json(&fx.join("stories260k/reference/llama2c-greedy-bos.json"));
    let want = ids(&reference["tokens"]);
    let got = greedy(&file, &want[..1], 256, KvType::F16);
    assert_eq!(got, want[1..], "256 greedy tokens from BOS");
}

#[test]
fn dense_greedy_from_prompt_equals_llama2c() {
    let Some(fx) = common::fixtures() else { return };
    let file = open(&fx.join("stories260k/stories260K-f32.gguf"));
    let reference = read_json(&fx.join("stories260k/reference/llama2c-greedy-prompt.json"));
    let all = ids(&reference["tokens"]);
    let prompt = ids(&reference["prompt_tokens"]);
    assert_eq!(prompt, all[..prompt.len()]);
    let got = greedy(&file, &prompt, 64, KvType::F16);
    assert_eq!(got, all[prompt.len()..]);
}

/// moe4x-exact's experts are all the dense FFN and its top-2 weights sum to 1, so it is the
/// dense model: its greedy output must equal llama2.c's on the dense weights.
#[test]
fn moe4x_exact_greedy_equals_dense_model() {
    let Some(fx) = common::fixtures() else { return };
    let file = open(&fx.join("stories-moe/stories260K-moe4x-exact-f32.gguf"));
    let reference = read_json(&fx.join("stories260k/reference/llama2c-greedy-prompt.json"));
    let all = ids(&reference["tokens"]);
    let prompt = ids(&reference["prompt_tokens"]);
    assert_eq!(greedy(&file, &prompt, 64, KvType::F16), all[prompt.len()..]);
}

fn moe8x_reference(fx: &std::path::Path, name: &str) -> (serde_json::Value, Vec<f32>) {
    let dir = fx.join("stories-moe/reference");
    let j = read_json(&dir.join(format!("{name}.numpy.json")));
    let l = read_logits(&dir.join(j["logits_file"].as_str().unwrap()));
    (j, l)
}

/// f32 weights are dotted with f32 activations (nothing is quantized at run time), so the only
/// difference from the float64 numpy reference is f32 rounding: the fixtures README expects about
/// 1e-5 relative L2 from an f32 engine. The bounds: 1e-4 with an f32 KV cache, 1e-3 with
/// f16 (f16 keys/values carry 11-bit mantissas, a relative error of 2^-12 per element).
#[test]
fn moe8x_f32_logits_routing_and_greedy_match_numpy() {
    let Some(fx) = common::fixtures() else { return };
    let file = open(&fx.join("stories-moe/stories260K-moe8x-finetuned-f32.gguf"));
    let (reference, want) = moe8x_reference(&fx, "moe8x-finetuned-f32");
    let tokens = ids(&reference["logits_tokens"]);
    for (kv, bound) in [(KvType::F32, 1e-4), (KvType::F16, 1e-3)] {
        let (got, routing) = logits(&file, &tokens, kv);
        let err = rel_l2(&got, &want);
        eprintln!(
            "stories-moe 8x f32, kv {}: rel L2 {err:.3e}, max abs {:.3e}",
            kv.name(),
            max_abs(&got, &want)
        );
        assert!(
            err < bound,
            "kv {}: rel L2 {err:.3e} ≥ {bound:e}",
            kv.name()
        );
        // Below a router gap of 1e-3 numeric noise may flip the choice (fixtures README).
        let (checked, skipped) = check_routing(&routing, &reference["routing"], 1e-3);
        eprintln!("  routing: {checked} (token, layer) pairs equal, {skipped} near-ties skipped");
        assert!(checked >= 360, "only {checked} routing decisions checked");
    }
    let prompt = ids(&reference["prompt_tokens"]);
    let greedy_want = ids(&reference["greedy_tokens"]);
    assert_eq!(
        greedy(&file, &prompt, greedy_want.len(), KvType::F16),
        greedy_want
    );
}

/// Quantized files: weights are exact (the numpy reference dequantizes the same blocks), but
/// like llama.cpp we quantize activations to Q8_0 for Q8_0/Q4_0 weights. On this 64-wide model
/// that rounding is of the same order as the Q8_0 weights' own error (the fixtures README: it
/// doubles llama.cpp's KLD for Q8_0). Q8_0 activations carry a relative rounding error of about
/// 2^-8 per element; over 5 layers with residual growth that stays well under 2e-2 relative L2.
#[test]
fn moe8x_quantized_files_match_their_numpy_references() {
    let Some(fx) = common::fixtures() else { return };
    for (file_name, name) in [
        (
            "stories260K-moe8x-finetuned-Q8_0.gguf",
            "moe8x-finetuned-Q8_0",
        ),
        (
            "stories260K-moe8x-finetuned-Q4_0.gguf",
            "moe8x-finetuned-Q4_0",
        ),
    ] {
        let file = open(&fx.join("stories-moe").join(file_name));
        let (reference, want) = moe8x_reference(&fx, name);
        let tokens = ids(&reference["logits_tokens"]);
        let (got, _) = logits(&file, &tokens, KvType::F16);
        let (err, abs) = (rel_l2(&got, &want), max_abs(&got, &want));
        eprintln!("{name}: rel L2 {err:.3e}, max abs {abs:.3e}");
        assert!(err < 2e-2, "{name}: rel L2 {err:.3e}");
        // Greedy: equal up to the first step whose recorded top1-top2 margin could be flipped by
        // our logit error (two logits each off by up to `abs`).
        let prompt = ids(&reference["prompt_tokens"]);
        let greedy_want = ids(&reference["greedy_tokens"]);
        let margins = floats(&reference["greedy_top1_top2_margin"]);
        let safe = margins.iter().take_while(|&&m| m > 2.0 * abs).count();
        let got = greedy(&file, &prompt, greedy_want.len(), KvType::F16);
        eprintln!("  greedy: first {safe} steps have margins above 2 × {abs:.2e}; checked equal");
        assert_eq!(
            got[..safe],
            greedy_want[..safe],
            "{name}: greedy diverged early"
        );
    }
}
