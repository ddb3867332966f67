//! Model hyper-parameters.

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
