//! Mistral's own layout (`params.json` + `consolidated.safetensors`, Q/K rows already in GGML's
//! interleaved order) converts to the same tensors as the Hugging Face layout of the same model.

mod common;
mod quantize_support;

use quantize_support::{
    convert, safetensors_bytes, tiny_mixtral_tensors, write_tiny_mixtral, StTensor,
};
use tandem::gguf::GgufFile;

/// HF name → Mistral name, and the head count for q/k (whose rows Mistral keeps interleaved).
fn mistral_name(hf: &str) -> (String, Option<usize>) {
    let simple = [
        ("model.embed_tokens.weight", "tok_embeddings.weight"),
        ("lm_head.weight", "output.weight"),
        ("model.norm.weight", "norm.weight"),
    ];
    if let Some((_, m)) = simple.iter().find(|(h, _)| *h == hf) {
        return (m.to_string(), None);
    }
    let rest = hf.strip_prefix("model.").unwrap();
    let pairs: [(&str, &str, Option<usize>); 6] = [
        ("input_layernorm", "attention_norm", None),
        ("post_attention_layernorm", "ffn_norm", None),
        ("self_attn.q_proj", "attention.wq", Some(4)),
        ("self_attn.k_proj", "attention.wk", Some(2)),
        ("self_attn.v_proj", "attention.wv", None),
        ("self_attn.o_proj", "attention.wo", None),
    ];
    for (h, m, heads) in pairs {
        if rest.contains(h) {
            return (rest.replace(h, m), heads);
        }
    }
    (rest.to_string(), None)
}

/// bf16 rows permuted like llama.cpp's converter (exact: bf16 → f32 → bf16).
fn permute_bf16(t: &StTensor, heads: usize) -> Vec<u8> {
    let cols = t.shape[1];
    let f: Vec<f32> = t
        .data
        .chunks_exact(2)
        .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
        .collect();
    common::hf::permute_qk(&f, cols, heads)
        .iter()
        .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
        .collect()
}

#[test]
fn mistral_consolidated_equals_hf_layout() {
    let hf = tempfile::tempdir().unwrap();
    write_tiny_mixtral(hf.path());
    let mistral = tempfile::tempdir().unwrap();
    let tensors: Vec<StTensor> = tiny_mixtral_tensors()
        .into_iter()
        .map(|t| {
            let (name, heads) = mistral_name(&t.name);
            let data = match heads {
                Some(h) => permute_bf16(&t, h),
                None => t.data.clone(),
            };
            StTensor { name, data, ..t }
        })
        .collect();
    std::fs::write(
        mistral.path().join("consolidated.safetensors"),
        safetensors_bytes(&tensors),
    )
    .unwrap();
    std::fs::copy(
        hf.path().join("tokenizer.json"),
        mistral.path().join("tokenizer.json"),
    )
    .unwrap();
    let params = serde_json::json!({
        "dim": 64, "n_layers": 2, "head_dim": 16, "hidden_dim": 64, "n_heads": 4,
        "n_kv_heads": 2, "norm_eps": 1e-5, "vocab_size": 300, "rope_theta": 1e6,
        "moe": {"num_experts": 4, "num_experts_per_tok": 2}
    });
    std::fs::write(mistral.path().join("params.json"), params.to_string()).unwrap();

    let out = tempfile::tempdir().unwrap();
    let (a, b) = (out.path().join("hf.gguf"), out.path().join("mistral.gguf"));
    convert(hf.path(), &a, &["--type", "q8_0"]).unwrap();
    convert(mistral.path(), &b, &["--type", "q8_0"]).unwrap();
    let (a, b) = (GgufFile::open(&a).unwrap(), GgufFile::open(&b).unwrap());
    assert_eq!(a.tensors().len(), b.tensors().len());
    for (x, y) in a.tensors().iter().zip(b.tensors()) {
        assert_eq!((x.name(), x.ty(), x.ne()), (y.name(), y.ty(), y.ne()));
        assert!(a.tensor_bytes(x) == b.tensor_bytes(y), "{}", x.name());
    }
    let md = b.metadata();
    assert_eq!(md.u32("llama.expert_count").unwrap(), 4);
    assert_eq!(md.u32("llama.rope.dimension_count").unwrap(), 16);
    // No explicit key length: head_dim equals dim / n_heads.
    assert!(md.get("llama.attention.key_length").is_none());
}

/// `tokenizer_config.json`'s chat template, special tokens and flags reach the metadata, in
/// gguf-py's order: ids, then flags, then the template.
#[test]
fn chat_template_and_special_tokens() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_mixtral(dir.path());
    let template =
        "{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}";
    let tc = serde_json::json!({
        "add_bos_token": true, "add_eos_token": false, "bos_token": "<s>", "eos_token": "</s>",
        "pad_token": "</s>", "chat_template": template
    });
    std::fs::write(dir.path().join("tokenizer_config.json"), tc.to_string()).unwrap();
    let out = dir.path().join("t.gguf");
    convert(dir.path(), &out, &["--type", "f16"]).unwrap();
    let g = GgufFile::open(&out).unwrap();
    let md = g.metadata();
    assert_eq!(md.string("tokenizer.chat_template").unwrap(), template);
    assert_eq!(md.u32("tokenizer.ggml.bos_token_id").unwrap(), 1);
    assert_eq!(md.u32("tokenizer.ggml.eos_token_id").unwrap(), 2);
    assert_eq!(md.u32("tokenizer.ggml.padding_token_id").unwrap(), 2);
    let keys: Vec<&str> = md
        .entries()
        .iter()
        .map(|e| e.key.as_str())
        .filter(|k| {
            k.starts_with("tokenizer.")
                && !k.starts_with("tokenizer.ggml.t")
                && !k.starts_with("tokenizer.ggml.s")
        })
        .collect();
    assert_eq!(
        keys,
        [
            "tokenizer.ggml.model",
            "tokenizer.ggml.pre",
            "tokenizer.ggml.bos_token_id",
            "tokenizer.ggml.eos_token_id",
            "tokenizer.ggml.padding_token_id",
            "tokenizer.ggml.add_bos_token",
            "tokenizer.ggml.add_eos_token",
            "tokenizer.chat_template",
        ]
    );
    // tokenizer.json only: byte pieces are byte tokens, special added tokens control tokens.
    let types = md
        .array("tokenizer.ggml.token_type")
        .unwrap()
        .as_i32()
        .unwrap()
        .to_vec();
    assert_eq!(&types[..5], &[3, 3, 3, 6, 6]);
    assert_eq!(types[299], 1);
}
