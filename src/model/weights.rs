//! The model's tensors as zero-copy views into the mmapped file.

use crate::tensor::QMatrix;
use std::borrow::Cow;

/// A SwiGLU feed-forward network: `down(silu(gate·x) * up·x)`.
#[derive(Clone, Copy)]
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
    pub wq: QMatrix<'a>, // [n_head * head_dim, d_model], rows in GGUF (adjacent-pair) order
    pub wk: QMatrix<'a>, // [n_kv_head * head_dim, d_model]
    pub wv: QMatrix<'a>, // [n_kv_head * head_dim, d_model]
    pub wo: QMatrix<'a>, // [d_model, n_head * head_dim]
    pub ffn_norm: Cow<'a, [f32]>, // [d_model]
    pub ffn: Ffn<'a>,
}

pub struct Weights<'a> {
    pub tok_embd: QMatrix<'a>, // [n_vocab, d_model]
    pub layers: Vec<Layer<'a>>,
    pub output_norm: Cow<'a, [f32]>, // [d_model]
    pub output: QMatrix<'a>,         // [n_vocab, d_model]
}

impl Mlp<'_> {
    fn nbytes(&self) -> usize {
        self.gate.nbytes() + self.up.nbytes() + self.down.nbytes()
    }
}

impl Weights<'_> {
    /// Weight bytes one decoded token reads: attention, the router and `n_expert_used` experts
    /// (of average size) per layer, the output head, and one embedding row. Norms are left out
    /// (under 0.01%).
    pub fn bytes_per_token(&self, n_expert_used: usize) -> f64 {
        let layers: f64 = self
            .layers
            .iter()
            .map(|l| {
                let attn = l.wq.nbytes() + l.wk.nbytes() + l.wv.nbytes() + l.wo.nbytes();
                let ffn = match &l.ffn {
                    Ffn::Dense(m) => m.nbytes() as f64,
                    Ffn::Moe { router, experts } => {
                        let mean = experts.iter().map(Mlp::nbytes).sum::<usize>() as f64
                            / experts.len().max(1) as f64;
                        router.nbytes() as f64 + mean * n_expert_used as f64
                    }
                };
                attn as f64 + ffn
            })
            .sum();
        layers + self.output.nbytes() as f64 + (self.tok_embd.nbytes() / self.tok_embd.rows) as f64
    }
}
