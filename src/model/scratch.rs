//! The forward pass's per-step buffers, allocated once and reused (as llama2.c's `RunState`):
//! the residual stream, the normalised block input, Q/K/V, attention output and projections,
//! RoPE's rotations, the router's logits, the expert gathers, the FFN intermediates and the
//! matmuls' quantized activation rows (the last two grow at first use).
//!
//! Sized at creation for a number of rows (tokens per step, over all sequences); a step with
//! more rows grows it once. The owner (a session, or a scheduler stepping many sequences) keeps
//! it across steps, so decode allocates nothing here per token.

use super::config::ModelConfig;
use super::experts::KernelScratch;

#[derive(Default)]
pub struct Scratch {
    rows: usize,
    /// `[rows, d_model]`: the residual stream.
    pub(super) x: Vec<f32>,
    /// `[rows, d_model]`: each block's normalised input.
    pub(super) xn: Vec<f32>,
    /// `[rows, n_head * head_dim]`
    pub(super) q: Vec<f32>,
    /// `[rows, n_kv_head * head_dim]`
    pub(super) k: Vec<f32>,
    pub(super) v: Vec<f32>,
    /// `[rows, n_head * head_dim]`: attention output.
    pub(super) attn: Vec<f32>,
    /// `[rows, d_model]`: the attention and dense FFN outputs.
    pub(super) proj: Vec<f32>,
    /// `[rows, n_rot / 2]`: RoPE's `(cos, sin)` at each row's position.
    pub(super) rope: Vec<(f32, f32)>,
    /// `[rows, n_expert]`: router logits.
    pub(super) router: Vec<f32>,
    /// `[rows * n_expert_used, d_model]` each: the rows gathered per expert, and the experts'
    /// outputs in the same order.
    pub(super) gathered: Vec<f32>,
    pub(super) expert_out: Vec<f32>,
    /// A dense FFN's intermediates and every matmul's working buffers.
    pub(super) kernels: KernelScratch,
}

impl Scratch {
    /// Buffers for steps of up to `rows` rows.
    pub fn new(c: &ModelConfig, rows: usize) -> Self {
        let mut s = Scratch::default();
        s.reserve(c, rows);
        s
    }

    /// Makes room for a step of `rows` rows (a no-op when there is room already).
    pub(super) fn reserve(&mut self, c: &ModelConfig, rows: usize) {
        if rows <= self.rows {
            return;
        }
        let (q_len, kv_len) = (c.n_head * c.head_dim, c.n_kv_head * c.head_dim);
        let routed = rows * c.n_expert_used.max(1);
        // Fresh zeroed allocations, not `resize`: the old contents are scratch, and the OS hands
        // out large zeroed blocks without writing them, so rows a step never uses cost nothing.
        let grow = |b: &mut Vec<f32>, len: usize| *b = vec![0.0; len];
        grow(&mut self.x, rows * c.d_model);
        grow(&mut self.xn, rows * c.d_model);
        grow(&mut self.q, rows * q_len);
        grow(&mut self.k, rows * kv_len);
        grow(&mut self.v, rows * kv_len);
        grow(&mut self.attn, rows * q_len);
        grow(&mut self.proj, rows * c.d_model);
        self.rope = vec![(1.0, 0.0); rows * (c.n_rot / 2)];
        grow(&mut self.router, rows * c.n_expert);
        grow(&mut self.gathered, routed * c.d_model);
        grow(&mut self.expert_out, routed * c.d_model);
        self.rows = rows;
    }

    /// Rows the buffers hold now.
    pub fn rows(&self) -> usize {
        self.rows
    }
}
