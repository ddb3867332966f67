//! Builds a full-width synthetic Hugging Face checkpoint for the conversion benchmark
//! (`quantize/scripts/bench_full_width.sh`): real Mixtral 8x7B shapes with fewer layers, bf16,
//! sharded with `model.safetensors.index.json`, the Mistral tokenizer from the fixtures.
//!
//! Ignored (it writes gigabytes): `TANDEM_BENCH_DIR=/tmp/ckpt TANDEM_BENCH_LAYERS=2 cargo test
//! --release --test quantize_bench -- --ignored`.

mod common;

use std::io::{BufWriter, Write};
use std::path::Path;
use tandem_quantize::catalog::Catalog;
use tandem_quantize::source::Source;
use tandem_quantize::synth::{SynthShape, SynthSource};

/// Bytes per shard (Hugging Face's default shard size is 5 GB; smaller gives several shards).
const SHARD_BYTES: u64 = 2 << 30;

#[test]
#[ignore]
fn build_full_width_checkpoint() {
    let Some(fx) = common::fixtures() else { return };
    let dir =
        std::env::var("TANDEM_BENCH_DIR").unwrap_or_else(|_| "/tmp/tandem-bench-mixtral".into());
    let layers: u32 = std::env::var("TANDEM_BENCH_LAYERS").map_or(2, |v| v.parse().unwrap());
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    let p = Catalog::embedded()
        .unwrap()
        .preset("mixtral-8x7b")
        .unwrap()
        .params
        .clone();
    let source = SynthSource::new(
        &SynthShape {
            n_layer: layers,
            n_embd: p.n_embd.into(),
            n_ff: p.n_ff.into(),
            n_head: p.n_head.into(),
            n_head_kv: p.n_head_kv().into(),
            head_dim: p.head_dim().into(),
            n_expert: p.n_expert(),
            vocab: p.vocab_size.into(),
        },
        42,
    );
    // Greedy shards of about SHARD_BYTES, in name order.
    let mut shards: Vec<Vec<usize>> = vec![vec![]];
    let mut size = 0;
    for (i, t) in source.tensors().iter().enumerate() {
        let bytes = t.nbytes / 2;
        if size + bytes > SHARD_BYTES && !shards.last().unwrap().is_empty() {
            shards.push(vec![]);
            size = 0;
        }
        shards.last_mut().unwrap().push(i);
        size += bytes;
    }
    let n = shards.len();
    let mut weight_map = serde_json::Map::new();
    for (k, shard) in shards.iter().enumerate() {
        let name = format!("model-{:05}-of-{n:05}.safetensors", k + 1);
        let mut header = serde_json::Map::new();
        let mut offset = 0u64;
        for &i in shard {
            let t = &source.tensors()[i];
            let len = t.nbytes / 2;
            header.insert(
                t.name.clone(),
                serde_json::json!({"dtype": "BF16", "shape": t.shape, "data_offsets": [offset, offset + len]}),
            );
            weight_map.insert(t.name.clone(), name.clone().into());
            offset += len;
        }
        let json = serde_json::to_vec(&header).unwrap();
        let mut w =
            BufWriter::with_capacity(1 << 22, std::fs::File::create(dir.join(&name)).unwrap());
        w.write_all(&(json.len() as u64).to_le_bytes()).unwrap();
        w.write_all(&json).unwrap();
        let mut values = vec![0.0f32; 1 << 22];
        let mut bytes = Vec::with_capacity(2 << 22);
        for &i in shard {
            let t = &source.tensors()[i];
            let (row_len, rows) = (t.row_len(), t.n_rows());
            let chunk = ((1 << 22) / row_len).max(1);
            let mut r = 0;
            while r < rows {
                let m = chunk.min(rows - r);
                let v = &mut values[..(m * row_len) as usize];
                source.read_rows(i, r, v).unwrap();
                bytes.clear();
                bytes.extend(
                    v.iter()
                        .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()),
                );
                w.write_all(&bytes).unwrap();
                r += m;
            }
        }
        w.flush().unwrap();
        eprintln!("wrote {name}");
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::to_vec_pretty(&index).unwrap(),
    )
    .unwrap();
    let config = serde_json::json!({
        "architectures": ["MixtralForCausalLM"], "model_type": "mixtral",
        "hidden_size": p.n_embd, "intermediate_size": p.n_ff, "num_hidden_layers": layers,
        "num_attention_heads": p.n_head, "num_key_value_heads": p.n_head_kv(),
        "num_local_experts": p.n_expert(), "num_experts_per_tok": p.n_expert_used,
        "vocab_size": p.vocab_size, "max_position_embeddings": p.n_ctx,
        "rope_theta": 1e6, "rms_norm_eps": 1e-5, "bos_token_id": 1, "eos_token_id": 2,
        "torch_dtype": "bfloat16", "tie_word_embeddings": false
    });
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        fx.join("tokenizers/mistral-v1.tokenizer.model"),
        dir.join("tokenizer.model"),
    )
    .unwrap();
    std::fs::copy(
        fx.join("mixtral-mini/mixtral-mini-hf/tokenizer_config.json"),
        dir.join("tokenizer_config.json"),
    )
    .unwrap();
    eprintln!("checkpoint with {layers} layers in {}", dir.display());
}
