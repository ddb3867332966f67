//! `tandem-quantize synth` on a small size added to the catalog: the per-tensor types follow the
//! conversion rules, the weights have the promised statistics, the output is deterministic,
//! `--vocab` copies a real vocabulary, and tandem runs the result.

mod common;

use clap::Parser;
use std::path::Path;
use tandem::gguf::{GgufFile, Value};
use tandem::quant::GgmlType;
use tandem_quantize::catalog::Catalog;
use tandem_quantize::cli::{Cli, Command};

/// The embedded families plus a 2-layer Mixtral of hidden size 256.
fn catalog() -> Catalog {
    let text = format!(
        "{}\n{}",
        include_str!("../models.toml"),
        r#"
[synth.tiny-mixtral]
family = "mixtral"
display_name = "Tiny Mixtral"
hidden_size = 256
intermediate_size = 512
num_hidden_layers = 2
num_attention_heads = 8
num_key_value_heads = 2
num_local_experts = 8
num_experts_per_tok = 2
vocab_size = 32000
rope_theta = 1000000.0
rms_norm_eps = 1e-5
max_position_embeddings = 4096
"#
    );
    Catalog::parse(&text).unwrap()
}

fn synth(out: &Path, extra: &[&str]) {
    let o = out.to_string_lossy();
    let mut argv = vec![
        "tandem-quantize",
        "synth",
        "--arch",
        "tiny-mixtral",
        "--quiet",
    ];
    argv.extend_from_slice(extra);
    argv.push(&o);
    let cli = Cli::try_parse_from(&argv).unwrap();
    let Some(Command::Synth(args)) = &cli.command else {
        panic!("not a synth command line")
    };
    tandem_quantize::commands::synth(args, &catalog()).unwrap();
}

#[test]
fn q4_k_m_types_follow_the_rules_and_tandem_runs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tiny.gguf");
    synth(&out, &["--type", "q4_k_m"]);
    let g = GgufFile::open(&out).unwrap();
    let ty = |n: &str| g.tensor(n).unwrap_or_else(|| panic!("{n}")).ty();
    // mixtral-mini (same shapes) as llama.cpp quantized it to Q4_K_M (fixtures README).
    assert_eq!(ty("output.weight"), GgmlType::Q6_K);
    assert_eq!(ty("token_embd.weight"), GgmlType::Q4_K);
    for l in 0..2 {
        let t = |s: &str| ty(&format!("blk.{l}.{s}.weight"));
        assert_eq!(t("attn_k"), GgmlType::Q8_0);
        assert_eq!(t("attn_v"), GgmlType::Q8_0);
        assert_eq!(t("attn_q"), GgmlType::Q4_K);
        assert_eq!(t("attn_output"), GgmlType::Q5_K);
        assert_eq!(t("ffn_gate_exps"), GgmlType::Q4_K);
        assert_eq!(t("ffn_up_exps"), GgmlType::Q4_K);
        let down = if l == 1 {
            GgmlType::Q6_K
        } else {
            GgmlType::Q4_K
        };
        assert_eq!(t("ffn_down_exps"), down);
        assert_eq!(t("ffn_gate_inp"), GgmlType::F32);
        assert_eq!(t("attn_norm"), GgmlType::F32);
    }
    assert_eq!(
        g.tensor("blk.0.ffn_down_exps.weight").unwrap().ne(),
        &[512, 256, 8]
    );
    let md = g.metadata();
    assert_eq!(md.u32("llama.block_count").unwrap(), 2);
    assert_eq!(md.u32("llama.expert_count").unwrap(), 8);
    assert_eq!(md.f32("llama.rope.freq_base").unwrap(), 1e6);
    assert_eq!(md.u32("general.file_type").unwrap(), 15);
    // tandem loads the model and its tokenizer and produces finite logits.
    let model = common::model::model(&g);
    let tok = tandem::tokenizer::Tokenizer::from_gguf(&g).unwrap();
    let ids = tok.encode("Hello world", true).unwrap();
    let mut s = tandem::session::Session::new(&model, 8, tandem::tensor::kv::KvType::F16).unwrap();
    let logits = s.prefill(&ids, tandem::model::Logits::Last, None).unwrap();
    assert_eq!(logits.len(), 32000);
    assert!(logits.iter().all(|v| v.is_finite()));
}

#[test]
fn weights_are_deterministic_with_the_promised_statistics() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    synth(&a, &["--type", "f32", "--seed", "5"]);
    // One thread makes the same file as the whole pool.
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    one.install(|| synth(&b, &["--type", "f32", "--seed", "5"]));
    synth(&c, &["--type", "f32", "--seed", "6"]);
    let (a_bytes, b_bytes) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(a_bytes == b_bytes, "same seed, different files");
    let ga = GgufFile::open(&a).unwrap();
    let gc = GgufFile::open(&c).unwrap();
    let values = |g: &GgufFile, n: &str| -> Vec<f32> {
        g.tensor_data::<f32>(g.tensor(n).unwrap()).unwrap().to_vec()
    };
    let w = values(&ga, "blk.0.ffn_up_exps.weight");
    assert_ne!(w[..64], values(&gc, "blk.0.ffn_up_exps.weight")[..64]);
    assert!(w.iter().all(|&v| v != 0.0));
    let n = w.len() as f64;
    let mean = w.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let std = (w
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    // 1M samples: the estimates are within 0.1% of the truth; the bounds are 2.5%.
    assert!((std - 0.02).abs() < 5e-4, "std {std}");
    assert!(mean.abs() < 1e-4, "mean {mean}");
    let norm = values(&ga, "blk.1.attn_norm.weight");
    assert!(norm.iter().all(|&v| (v - 1.0).abs() < 0.1), "norms near 1");
}

#[test]
fn vocab_file_is_copied() {
    let Some(fx) = common::fixtures() else { return };
    let vocab = fx.join("tokenizers/ggml-vocab-mixtral.gguf");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("v.gguf");
    synth(
        &out,
        &["--type", "q8_0", "--vocab", &vocab.to_string_lossy()],
    );
    let ours = GgufFile::open(&out).unwrap();
    let theirs = GgufFile::open(&vocab).unwrap();
    let mut n = 0;
    for e in theirs
        .metadata()
        .entries()
        .iter()
        .filter(|e| e.key.starts_with("tokenizer."))
    {
        let v: &Value = ours.metadata().get(&e.key).unwrap();
        assert!(v == &e.value, "{}", e.key);
        n += 1;
    }
    assert!(n >= 8);
}
