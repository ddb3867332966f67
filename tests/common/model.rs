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
use tandem::tensor::matmul::Activations;

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
    logits_with(file, tokens, kv, Activations::default())
}

/// [`logits`] with activations quantized at `acts` precision.
pub fn logits_with(
    file: &GgufFile,
    tokens: &[u32],
    kv: KvType,
    acts: Activations,
) -> (Vec<f32>, Routing) {
    let m = model(file).with_activations(acts);
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
/// recorded `kth_gap` is at least `min_gap`: the chosen set, and its order too where the
/// reference's top-1/top-2 gap (`ln(w₁/w₂)`) is also at least `min_gap`. Returns (checked,
/// skipped).
pub fn check_routing(got: &Routing, reference: &serde_json::Value, min_gap: f64) -> (usize, usize) {
    let (mut checked, mut skipped) = (0, 0);
    for entry in reference.as_array().unwrap() {
        let layer = entry["layer"].as_u64().unwrap() as usize;
        let gaps = floats(&entry["kth_gap"]);
        let weights = entry["weights"].as_array().unwrap();
        for (t, want) in entry["experts"].as_array().unwrap().iter().enumerate() {
            if gaps[t] < min_gap {
                skipped += 1;
                continue;
            }
            let (mut ours, mut want) = (got[layer][t].experts.clone(), ids(want));
            let w = floats(&weights[t]);
            if (w[0] / w[1]).ln() < min_gap {
                ours.sort_unstable();
                want.sort_unstable();
            }
            assert_eq!(ours, want, "layer {layer}, token {t}: experts differ");
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

/// The largest difference, over the (layer, token) pairs whose experts agree, between our and
/// the reference's `ln(w₁ / w₂)`. With top-2 routing that log ratio is `l₁ − l₂` of the router
/// logits, so this is the measured noise of a difference of two router logits: the same kind of
/// quantity as the reference's `kth_gap` (`l₂ − l₃`), and what may flip a choice whose gap is
/// below about twice it.
pub fn router_noise(got: &Routing, reference: &serde_json::Value) -> f64 {
    let mut noise = 0.0f64;
    for entry in reference.as_array().unwrap() {
        let layer = entry["layer"].as_u64().unwrap() as usize;
        let experts = entry["experts"].as_array().unwrap();
        for (t, w) in entry["weights"].as_array().unwrap().iter().enumerate() {
            let route = &got[layer][t];
            if route.experts != ids(&experts[t]) {
                continue;
            }
            let w = floats(w);
            let ours = (route.weights[0] as f64 / route.weights[1] as f64).ln();
            noise = noise.max((ours - (w[0] / w[1]).ln()).abs());
        }
    }
    noise
}

fn argmax(row: &[f32]) -> u32 {
    row.iter()
        .enumerate()
        .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
        .0 as u32
}

/// Greedy steps compared with a reference's `greedy_tokens`.
#[derive(Debug)]
pub struct GreedySteps {
    /// Steps whose recorded margin exceeds twice their error bound; each was compared.
    pub compared: usize,
    pub skipped: usize,
    /// The free-running greedy run agreed up to the first skipped step, this many steps.
    pub leading: usize,
}

/// Compares greedy decoding on a quantized file (8-bit activations) with the reference's
/// greedy tokens, each step judged against its own error bound.
///
/// Teacher-forced: one prefill of the prompt and the reference's tokens gives our logits at
/// every step as though every earlier step had agreed. Our error at step k is at most
/// `|q8 − q16|` on that row plus `q16_err`, q16's own error against the exact reference
/// (measured by the caller, ~2^-16 relative per activation, so small next to 8-bit rounding).
/// Where the step's recorded top-1/top-2 margin exceeds twice that bound, no logit can overtake
/// the reference's choice, so our argmax must be its token; elsewhere the step is skipped, not
/// ended, because the next steps are judged on the reference's tokens.
///
/// The free-running greedy run (decode through the KV cache) must then agree with the
/// reference up to the first skipped step.
pub fn check_greedy_steps(
    file: &GgufFile,
    reference: &serde_json::Value,
    kv: KvType,
    q16_err: f64,
) -> GreedySteps {
    let prompt = ids(&reference["prompt_tokens"]);
    let want = ids(&reference["greedy_tokens"]);
    let margins = floats(&reference["greedy_top1_top2_margin"]);
    assert_eq!(margins.len(), want.len());
    let mut seq = prompt.clone();
    seq.extend_from_slice(&want[..want.len() - 1]);
    let (l8, _) = logits_with(file, &seq, kv, Activations::Q8);
    let (l16, _) = logits_with(file, &seq, kv, Activations::Q16);
    let n_vocab = l8.len() / seq.len();
    let (mut compared, mut skipped, mut first_skip) = (0, 0, None);
    for (k, (&token, &margin)) in want.iter().zip(&margins).enumerate() {
        let row = (prompt.len() - 1 + k) * n_vocab..(prompt.len() + k) * n_vocab;
        let bound = max_abs(&l8[row.clone()], &l16[row.clone()]) + q16_err;
        if margin > 2.0 * bound {
            assert_eq!(
                argmax(&l8[row]),
                token,
                "greedy step {k}: margin {margin:.3e} exceeds twice the error bound {bound:.3e}"
            );
            compared += 1;
        } else {
            skipped += 1;
            first_skip.get_or_insert(k);
        }
    }
    let leading = first_skip.unwrap_or(want.len());
    let got = greedy(file, &prompt, leading, kv);
    assert_eq!(
        got,
        want[..leading],
        "free-running greedy before step {leading}"
    );
    GreedySteps {
        compared,
        skipped,
        leading,
    }
}

/// The checks of a llama.cpp-style quantized file (8-bit activations) against the exact numpy
/// reference of its own weights: logits within 2e-2 relative L2 (8-bit activation rounding,
/// about 2^-8 per element, through a few layers); q16 activations within 2e-4 (the second pass
/// leaves ~2^-15 of each activation's range: measured 3.0e-5 to 4.8e-5); expert choices where
/// the reference's 2nd/3rd gap exceeds twice the measured router noise, at least
/// `min_routing` of them; and at least `min_steps` greedy steps by [`check_greedy_steps`].
pub fn check_quantized_file(
    name: &str,
    file: &GgufFile,
    reference: &serde_json::Value,
    want: &[f32],
    min_routing: usize,
    min_steps: usize,
) {
    let tokens = ids(&reference["logits_tokens"]);
    let (got, routing) = logits(file, &tokens, KvType::F16);
    let (err, abs) = (rel_l2(&got, want), max_abs(&got, want));
    eprintln!("{name}: rel L2 {err:.3e}, max abs {abs:.3e}");
    assert!(err < 2e-2, "{name}: rel L2 {err:.3e}");
    // q16 (f32 KV) against the same reference: the error budget of `check_greedy_steps`.
    let (got16, _) = logits_with(file, &tokens, KvType::F32, Activations::Q16);
    let (err16, q16_err) = (rel_l2(&got16, want), max_abs(&got16, want));
    eprintln!("  q16: rel L2 {err16:.3e}, max abs {q16_err:.3e}");
    assert!(err16 < 2e-4, "{name}: q16 rel L2 {err16:.3e}");
    // A choice can flip only where the reference's 2nd/3rd gap is within the measured noise of
    // a router-logit difference; compare every other one.
    let noise = router_noise(&routing, &reference["routing"]);
    let (checked, skipped) = check_routing(&routing, &reference["routing"], 2.0 * noise);
    eprintln!(
        "  routing: {checked} (token, layer) pairs equal, {skipped} within 2 × noise \
         {noise:.2e} skipped"
    );
    assert!(
        checked >= min_routing,
        "{name}: only {checked} routing choices compared"
    );
    let steps = check_greedy_steps(file, reference, KvType::F32, q16_err);
    eprintln!("  greedy: {steps:?}");
    assert!(
        steps.compared >= min_steps,
        "{name}: only {} greedy steps compared",
        steps.compared
    );
}
