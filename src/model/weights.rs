//! The model's tensors as zero-copy views into the mmapped file.

use crate::tensor::QMatrix;
use std::borrow::Cow;

/// A SwiGLU feed-forward network: `down(silu(gate·x) * up·x)`.
pub struct Mlp<'a> {
    pub gate: QMatrix<'a>, // [n_ff, d_model]
    pub up: QMatrix<'a>,   // [n_ff, d_model]
    pub down: QMatrix<'a>, // [d_model, n_ff]
}

/// A layer's feed-forward part: dense (Llama, Mistral) or a sparse mixture of experts (Mixtral).
pub enum Ffn<'a> {
    Dense(Mlp<'a>),
    Moe {
        router: QMatrix<'a>, // [n_expert, d_model]
        experts: Vec<Mlp<'a>>,
    },
}

pub struct Layer<'a> {
    pub attn_norm: Cow<'a, [f32]>, // [d_model]
    pub wq: QMatrix<'a>,           // [n_head * head_dim, d_model], rows in GGUF (adjacent-pair) order
    pub wk: QMatrix<'a>,           // [n_kv_head * head_dim, d_model]
    pub wv: QMatrix<'a>,           // [n_kv_head * head_dim, d_model]
    pub wo: QMatrix<'a>,           // [d_model, n_head * head_dim]
    pub ffn_norm: Cow<'a, [f32]>,  // [d_model]
    pub ffn: Ffn<'a>,
}

pub struct Weights<'a> {
    pub tok_embd: QMatrix<'a>,       // [n_vocab, d_model]
    pub layers: Vec<Layer<'a>>,
    pub output_norm: Cow<'a, [f32]>, // [d_model]
    pub output: QMatrix<'a>,         // [n_vocab, d_model]
}
