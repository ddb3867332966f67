//! Test-only access to Hugging Face checkpoints: load a tensor by its GGUF name, widened to f32
//! exactly, with llama.cpp's Q/K row permutation applied. Used to re-quantize fixture tensors and
//! compare with the llama.cpp-made GGUF files.
#![allow(dead_code)]

use safetensors::{Dtype, SafeTensors};
use std::path::Path;

/// A mmapped single-file HF checkpoint with its `config.json`.
pub struct HfCheckpoint {
    mmap: memmap2::Mmap,
    pub config: serde_json::Value,
}

impl HfCheckpoint {
    pub fn open(dir: &Path) -> HfCheckpoint {
        let file = std::fs::File::open(dir.join("model.safetensors")).unwrap();
        // SAFETY: fixtures are read-only for the whole test run.
        let mmap = unsafe { memmap2::Mmap::map(&file).unwrap() };
        let config =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        HfCheckpoint { mmap, config }
    }

    fn cfg(&self, key: &str) -> usize {
        self.config[key].as_u64().unwrap() as usize
    }

    /// One HF tensor widened to f32 (bf16 and f16 widen exactly), with its HF shape.
    pub fn hf_tensor(&self, name: &str) -> (Vec<f32>, Vec<usize>) {
        let st = SafeTensors::deserialize(&self.mmap).unwrap();
        let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let data = t.data();
        let values = match t.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => panic!("{name}: dtype {other:?} not handled in tests"),
        };
        (values, t.shape().to_vec())
    }

    /// The f32 values that llama.cpp's converter stores under the GGUF tensor `gguf_name`
    /// (row-major, ggml `ne` reversed), plus the GGUF row length `ne[0]`.
    ///
    /// Handles token_embd, output, output_norm, and per layer attn_{q,k,v,output,norm}, ffn_norm,
    /// ffn_gate_inp and the stacked ffn_{gate,up,down}_exps (experts concatenated along the
    /// outermost axis), and the dense ffn_{gate,up,down}.
    pub fn gguf_tensor(&self, gguf_name: &str) -> (Vec<f32>, usize) {
        let row = |(v, shape): (Vec<f32>, Vec<usize>)| {
            let n = *shape.last().unwrap();
            (v, n)
        };
        let parts: Vec<&str> = gguf_name.split('.').collect();
        match parts.as_slice() {
            ["token_embd", "weight"] => row(self.hf_tensor("model.embed_tokens.weight")),
            ["output", "weight"] => row(self.hf_tensor("lm_head.weight")),
            ["output_norm", "weight"] => row(self.hf_tensor("model.norm.weight")),
            ["blk", n, kind, "weight"] => {
                let p = format!("model.layers.{n}");
                let one = |s: &str| row(self.hf_tensor(&format!("{p}.{s}")));
                match *kind {
                    "attn_q" => {
                        let (v, cols) = one("self_attn.q_proj.weight");
                        (permute_qk(&v, cols, self.cfg("num_attention_heads")), cols)
                    }
                    "attn_k" => {
                        let (v, cols) = one("self_attn.k_proj.weight");
                        (permute_qk(&v, cols, self.cfg("num_key_value_heads")), cols)
                    }
                    "attn_v" => one("self_attn.v_proj.weight"),
                    "attn_output" => one("self_attn.o_proj.weight"),
                    "attn_norm" => one("input_layernorm.weight"),
                    "ffn_norm" => one("post_attention_layernorm.weight"),
                    "ffn_gate_inp" => one("block_sparse_moe.gate.weight"),
                    "ffn_gate" => one("mlp.gate_proj.weight"),
                    "ffn_up" => one("mlp.up_proj.weight"),
                    "ffn_down" => one("mlp.down_proj.weight"),
                    "ffn_gate_exps" | "ffn_up_exps" | "ffn_down_exps" => {
                        let w = match *kind {
                            "ffn_gate_exps" => "w1",
                            "ffn_down_exps" => "w2",
                            _ => "w3",
                        };
                        let mut all = Vec::new();
                        let mut cols = 0;
                        for e in 0..self.cfg("num_local_experts") {
                            let (v, c) = one(&format!("block_sparse_moe.experts.{e}.{w}.weight"));
                            all.extend_from_slice(&v);
                            cols = c;
                        }
                        (all, cols)
                    }
                    _ => panic!("no HF mapping for {gguf_name}"),
                }
            }
            _ => panic!("no HF mapping for {gguf_name}"),
        }
    }
}

/// llama.cpp's converter permutation of Q/K rows: per head, rotate_half order (pairs i, i+hd/2)
/// becomes adjacent pairs (2i, 2i+1). `w` is [n_head * head_dim, cols], row-major.
pub fn permute_qk(w: &[f32], cols: usize, n_head: usize) -> Vec<f32> {
    let rows = w.len() / cols;
    let hd = rows / n_head;
    let mut out = vec![0.0; w.len()];
    for h in 0..n_head {
        for i in 0..hd / 2 {
            for half in 0..2 {
                let src = h * hd + half * (hd / 2) + i;
                let dst = h * hd + 2 * i + half;
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&w[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}
