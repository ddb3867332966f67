//! Model hyper-parameters.

use crate::gguf::keys;

/// The hyper-parameters of a Llama-family model (Mixtral when `n_expert > 0`).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub name: String,
    pub n_layer: usize,
    pub d_model: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    /// Leading values of each head that RoPE rotates (`rope.dimension_count`).
    pub n_rot: usize,
    pub n_ff: usize,
    pub n_vocab: usize,
    /// Context length the model was trained with.
    pub n_ctx_train: usize,
    pub rope_theta: f32,
    pub norm_eps: f32,
    /// Experts per layer; 0 for a dense model.
    pub n_expert: usize,
    /// Experts used per token.
    pub n_expert_used: usize,
    pub sliding_window: Option<usize>,
}

impl ModelConfig {
    /// Refuses hyper-parameters no model has, naming the GGUF key (under `arch.`) and the value:
    /// they would otherwise load and produce garbage (a NaN RoPE base) or size allocations.
    pub fn validate(&self, arch: &str) -> Result<(), String> {
        let bad = |k: &str, what: String| Err(format!("{arch}.{k} {what}"));
        if self.n_kv_head == 0 || !self.n_head.is_multiple_of(self.n_kv_head) {
            return bad(
                keys::HEAD_COUNT_KV_SUFFIX,
                format!(
                    "= {} does not divide {} = {}",
                    self.n_kv_head,
                    keys::HEAD_COUNT_SUFFIX,
                    self.n_head
                ),
            );
        }
        if self.head_dim == 0 {
            return bad(keys::KEY_LENGTH_SUFFIX, "= 0".into());
        }
        if self.n_rot == 0 || self.n_rot > self.head_dim || !self.n_rot.is_multiple_of(2) {
            return bad(
                keys::ROPE_DIMENSION_COUNT_SUFFIX,
                format!(
                    "= {} must be even, above 0 and at most the head size {}",
                    self.n_rot, self.head_dim
                ),
            );
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return bad(
                keys::ROPE_FREQ_BASE_SUFFIX,
                format!("= {} must be a finite number above 0", self.rope_theta),
            );
        }
        // llama.cpp's models use 1e-5 or 1e-6; 1 would already swamp the activations.
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0 && self.norm_eps < 1.0) {
            return bad(
                keys::LAYER_NORM_RMS_EPS_SUFFIX,
                format!("= {} must be a number above 0 and below 1", self.norm_eps),
            );
        }
        if self.n_expert > 0 && (self.n_expert_used == 0 || self.n_expert_used > self.n_expert) {
            return bad(
                keys::EXPERT_USED_COUNT_SUFFIX,
                format!(
                    "= {} must be from 1 to {} = {}",
                    self.n_expert_used,
                    keys::EXPERT_COUNT_SUFFIX,
                    self.n_expert
                ),
            );
        }
        // Caps far above any real model: they stop absurd values from sizing allocations.
        for (k, v, max) in [
            (keys::BLOCK_COUNT_SUFFIX, self.n_layer, 1 << 10),
            (keys::VOCAB_SIZE_SUFFIX, self.n_vocab, 1 << 24),
            (keys::EMBEDDING_LENGTH_SUFFIX, self.d_model, 1 << 20),
            (keys::FEED_FORWARD_LENGTH_SUFFIX, self.n_ff, 1 << 22),
            (keys::EXPERT_COUNT_SUFFIX, self.n_expert, 1 << 10),
        ] {
            if v > max || (v == 0 && k != keys::EXPERT_COUNT_SUFFIX) {
                return bad(k, format!("= {v} must be from 1 to {max}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// stories260K-moe8x's hyper-parameters.
    fn stories() -> ModelConfig {
        ModelConfig {
            name: "stories".into(),
            n_layer: 5,
            d_model: 64,
            n_head: 8,
            n_kv_head: 4,
            head_dim: 8,
            n_rot: 8,
            n_ff: 172,
            n_vocab: 512,
            n_ctx_train: 512,
            rope_theta: 10_000.0,
            norm_eps: 1e-5,
            n_expert: 8,
            n_expert_used: 2,
            sliding_window: None,
        }
    }

    #[test]
    fn impossible_hyper_parameters_are_refused_by_key() {
        assert_eq!(stories().validate("llama"), Ok(()));
        type Edit = fn(&mut ModelConfig);
        let cases: Vec<(Edit, &str)> = vec![
            (|c| c.rope_theta = f32::NAN, "llama.rope.freq_base = NaN"),
            (|c| c.rope_theta = 0.0, "llama.rope.freq_base = 0"),
            (|c| c.rope_theta = -1.0, "llama.rope.freq_base = -1"),
            (
                |c| c.rope_theta = f32::INFINITY,
                "llama.rope.freq_base = inf",
            ),
            (
                |c| c.norm_eps = f32::NAN,
                "llama.attention.layer_norm_rms_epsilon = NaN",
            ),
            (
                |c| c.norm_eps = -1.0,
                "llama.attention.layer_norm_rms_epsilon = -1",
            ),
            (|c| c.n_rot = 0, "llama.rope.dimension_count = 0"),
            (|c| c.n_rot = 16, "llama.rope.dimension_count = 16"),
            (
                |c| c.n_kv_head = 0,
                "llama.attention.head_count_kv = 0 does not divide",
            ),
            (
                |c| c.n_kv_head = 3,
                "llama.attention.head_count_kv = 3 does not divide attention.head_count = 8",
            ),
            (|c| c.n_expert_used = 9, "llama.expert_used_count = 9"),
            (|c| c.n_layer = 0, "llama.block_count = 0"),
        ];
        for (edit, says) in cases {
            let mut c = stories();
            edit(&mut c);
            let e = c.validate("llama").unwrap_err();
            assert!(e.starts_with(says), "{says}: {e}");
        }
    }
}
