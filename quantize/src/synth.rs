//! `synth`: a model with real dimensions and random weights, written like a real conversion.
//!
//! The generator presents itself as a Hugging Face checkpoint (HF tensor names and shapes, in
//! safetensors' sorted order), so the same plan, type rules, Q/K permutation and streaming
//! writer as a real conversion produce the file. Values are a pure function of (seed, tensor
//! name, element index): a counter-based hash, so any chunk can be made on any thread and the
//! output is the same for any thread count.

use crate::source::{Source, SourceTensor};
use anyhow::Result;
use rayon::prelude::*;

/// Standard deviation of the linear and embedding weights (the usual initialiser's).
pub const WEIGHT_STD: f32 = 0.02;

/// Random weights for a Llama-family model.
pub struct SynthSource {
    tensors: Vec<SourceTensor>,
    /// Per tensor: the hash key and whether it is a norm (values around 1).
    keys: Vec<(u64, bool)>,
}

/// The shapes of a Llama/Mixtral HF checkpoint.
pub struct SynthShape {
    pub n_layer: u32,
    pub n_embd: u64,
    pub n_ff: u64,
    pub n_head: u64,
    pub n_head_kv: u64,
    pub head_dim: u64,
    pub n_expert: u32,
    pub vocab: u64,
}

impl SynthSource {
    /// The tensors of an HF checkpoint with these shapes, sorted by name as safetensors lists
    /// them, with values derived from `seed`.
    pub fn new(s: &SynthShape, seed: u64) -> SynthSource {
        let mut t: Vec<(String, Vec<u64>)> = vec![
            ("model.embed_tokens.weight".into(), vec![s.vocab, s.n_embd]),
            ("lm_head.weight".into(), vec![s.vocab, s.n_embd]),
            ("model.norm.weight".into(), vec![s.n_embd]),
        ];
        let (q, kv) = (s.n_head * s.head_dim, s.n_head_kv * s.head_dim);
        for l in 0..s.n_layer {
            let p = format!("model.layers.{l}");
            t.push((format!("{p}.input_layernorm.weight"), vec![s.n_embd]));
            t.push((
                format!("{p}.post_attention_layernorm.weight"),
                vec![s.n_embd],
            ));
            t.push((format!("{p}.self_attn.q_proj.weight"), vec![q, s.n_embd]));
            t.push((format!("{p}.self_attn.k_proj.weight"), vec![kv, s.n_embd]));
            t.push((format!("{p}.self_attn.v_proj.weight"), vec![kv, s.n_embd]));
            t.push((format!("{p}.self_attn.o_proj.weight"), vec![s.n_embd, q]));
            if s.n_expert > 1 {
                let m = format!("{p}.block_sparse_moe");
                t.push((
                    format!("{m}.gate.weight"),
                    vec![s.n_expert.into(), s.n_embd],
                ));
                for e in 0..s.n_expert {
                    t.push((format!("{m}.experts.{e}.w1.weight"), vec![s.n_ff, s.n_embd]));
                    t.push((format!("{m}.experts.{e}.w2.weight"), vec![s.n_embd, s.n_ff]));
                    t.push((format!("{m}.experts.{e}.w3.weight"), vec![s.n_ff, s.n_embd]));
                }
            } else {
                t.push((format!("{p}.mlp.gate_proj.weight"), vec![s.n_ff, s.n_embd]));
                t.push((format!("{p}.mlp.down_proj.weight"), vec![s.n_embd, s.n_ff]));
                t.push((format!("{p}.mlp.up_proj.weight"), vec![s.n_ff, s.n_embd]));
            }
        }
        t.sort_by(|a, b| a.0.cmp(&b.0));
        let keys = t
            .iter()
            .map(|(name, _)| {
                (
                    mix(seed ^ fnv1a(name.as_bytes())),
                    name.ends_with("norm.weight"),
                )
            })
            .collect();
        let tensors = t
            .into_iter()
            .map(|(name, shape)| {
                let n: u64 = shape.iter().product();
                SourceTensor {
                    name,
                    shape,
                    dtype: "F32".into(),
                    nbytes: n * 4,
                }
            })
            .collect();
        SynthSource { tensors, keys }
    }
}

impl Source for SynthSource {
    fn tensors(&self) -> &[SourceTensor] {
        &self.tensors
    }

    fn read_rows(&self, index: usize, row0: u64, out: &mut [f32]) -> Result<()> {
        let (key, norm) = self.keys[index];
        let first = row0 * self.tensors[index].row_len();
        const TASK: usize = 1 << 14;
        out.par_chunks_mut(TASK).enumerate().for_each(|(c, chunk)| {
            let base = first + (c * TASK) as u64;
            for (j, v) in chunk.iter_mut().enumerate() {
                let z = normalish(mix(key ^ (base + j as u64).wrapping_mul(GOLDEN)));
                *v = if norm {
                    1.0 + WEIGHT_STD * z
                } else {
                    WEIGHT_STD * z
                };
            }
        });
        Ok(())
    }

    fn input_bytes(&self) -> u64 {
        0
    }
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64's finaliser: a bijective mix of all 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A roughly standard normal value from 64 random bits: the sum of four 16-bit uniforms
/// (Irwin–Hall, variance 4/12), centred and scaled to unit variance. Never exactly zero: the
/// sum is offset by half a step, so it is never the centre.
fn normalish(bits: u64) -> f32 {
    let s: u32 = (0..4).map(|k| ((bits >> (16 * k)) & 0xffff) as u32).sum();
    // s is in 0..=4·65535; its mean is 2·65535.
    let centred = s as f32 + 0.5 - 2.0 * 65535.0;
    centred / 65536.0 * 3.0f32.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_deterministic_nonzero_and_scaled() {
        let shape = SynthShape {
            n_layer: 1,
            n_embd: 64,
            n_ff: 96,
            n_head: 4,
            n_head_kv: 2,
            head_dim: 16,
            n_expert: 2,
            vocab: 300,
        };
        let s = SynthSource::new(&shape, 7);
        let names: Vec<_> = s.tensors().iter().map(|t| t.name.clone()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let i = names.iter().position(|n| n == "lm_head.weight").unwrap();
        let mut all = vec![0.0; 300 * 64];
        s.read_rows(i, 0, &mut all).unwrap();
        // Reading rows 10.. separately gives the same values.
        let mut part = vec![0.0; 5 * 64];
        s.read_rows(i, 10, &mut part).unwrap();
        assert_eq!(&all[640..960], &part[..]);
        assert!(all.iter().all(|&v| v != 0.0));
        let n = all.len() as f64;
        let mean = all.iter().map(|&v| v as f64).sum::<f64>() / n;
        let std = (all.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        // 19200 samples: the standard error of the std estimate is about 0.5%; 5% is loose.
        assert!((std - 0.02).abs() < 0.001, "std {std}");
        assert!(mean.abs() < 0.001, "mean {mean}");
        let other = SynthSource::new(&shape, 8);
        let mut b = vec![0.0; 64];
        other.read_rows(i, 0, &mut b).unwrap();
        assert_ne!(&all[..64], &b[..]);
        let norm = names.iter().position(|n| n == "model.norm.weight").unwrap();
        let mut w = vec![0.0; 64];
        s.read_rows(norm, 0, &mut w).unwrap();
        assert!(w.iter().all(|&v| (v - 1.0).abs() < 0.2));
    }
}
