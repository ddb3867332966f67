//! The forward pass: tokens in, logits out, the KV cache updated.
//!
//! A batch of `n` tokens (the prompt in prefill, one token in decode) goes through each layer
//! together, so every weight matrix is read once per batch. In MoE layers the tokens routed to
//! each expert are gathered and multiplied as one matrix, so each expert is read once per batch.

use super::config::ModelConfig;
use super::kv_cache::KvCache;
use super::moe::{route, Route};
use super::weights::{Ffn, Mlp, Weights};
use crate::quant::simd::{self, Isa};
use crate::tensor::attention::{attention, AttnShape};
use crate::tensor::kv::KvKernels;
use crate::tensor::matmul::{dequantize_row, matmul_with, Activations};
use crate::tensor::ops::{add_scaled, rms_norm, rope, rope_cos_sin, swiglu};
use crate::tensor::MatrixError;
use crate::tensor::QMatrix;
use rayon::prelude::*;

/// Which positions' logits a forward pass returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    /// Only the last token's (generation).
    Last,
    /// Every token's (perplexity, `--logits-out`).
    All,
}

/// Why a forward pass could not run.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("token id {id} at batch position {index} is outside the vocabulary of {n_vocab}")]
    TokenOutOfRange {
        id: u32,
        index: usize,
        n_vocab: usize,
    },
    #[error("the context is full: {have} positions used + {add} new > --ctx {n_ctx}")]
    ContextFull {
        have: usize,
        add: usize,
        n_ctx: usize,
    },
    #[error(transparent)]
    Matrix(#[from] MatrixError),
}

pub struct Model<'a> {
    pub config: ModelConfig,
    pub weights: Weights<'a>,
    kv_kernels: KvKernels,
    isa: Isa,
    acts: Activations,
}

/// Per layer, the route of every token of the batch.
pub type Routing = Vec<Vec<Route>>;

impl<'a> Model<'a> {
    pub fn new(config: ModelConfig, weights: Weights<'a>) -> Self {
        let isa = simd::detected();
        Model {
            config,
            weights,
            kv_kernels: KvKernels::new(isa),
            isa,
            acts: Activations::default(),
        }
    }

    /// The same model with activations quantized at `acts` precision.
    pub fn with_activations(mut self, acts: Activations) -> Self {
        self.acts = acts;
        self
    }

    /// `y = x · wᵀ` with this model's kernels and activation precision.
    fn mm(&self, w: &QMatrix, x: &[f32], n: usize, y: &mut [f32]) -> Result<(), MatrixError> {
        matmul_with(w, x, n, y, self.isa, self.acts)
    }

    /// Runs `tokens` at positions `cache.len ..`, appends their keys and values to the cache and
    /// returns logits (`[n_vocab]` for [`Logits::Last`], `[n, n_vocab]` for [`Logits::All`]).
    /// When `routing` is given, the expert choices of every layer and token are appended to it.
    pub fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        want: Logits,
        mut routing: Option<&mut Routing>,
    ) -> Result<Vec<f32>, ForwardError> {
        let c = &self.config;
        let w = &self.weights;
        let (n, d) = (tokens.len(), c.d_model);
        let pos0 = cache.len;
        if pos0 + n > cache.n_ctx {
            return Err(ForwardError::ContextFull {
                have: pos0,
                add: n,
                n_ctx: cache.n_ctx,
            });
        }
        let mut x = vec![0.0f32; n * d]; // [n, d_model], the residual stream
        for (i, (&id, row)) in tokens.iter().zip(x.chunks_exact_mut(d)).enumerate() {
            if id as usize >= c.n_vocab {
                return Err(ForwardError::TokenOutOfRange {
                    id,
                    index: i,
                    n_vocab: c.n_vocab,
                });
            }
            dequantize_row(&w.tok_embd, id as usize, row)?;
        }
        let rope_tables: Vec<_> = (0..n)
            .map(|t| rope_cos_sin(pos0 + t, c.n_rot, c.rope_theta))
            .collect();
        let shape = AttnShape {
            n_head: c.n_head,
            n_kv_head: c.n_kv_head,
            head_dim: c.head_dim,
            window: c.sliding_window,
        };
        let (q_len, kv_len) = (c.n_head * c.head_dim, c.n_kv_head * c.head_dim);
        let mut xn = vec![0.0f32; n * d]; // [n, d_model], normalised input of each block
        let mut q = vec![0.0f32; n * q_len]; // [n, n_head * head_dim]
        let mut k = vec![0.0f32; n * kv_len]; // [n, n_kv_head * head_dim]
        let mut v = vec![0.0f32; n * kv_len];
        let mut attn = vec![0.0f32; n * q_len];
        let mut proj = vec![0.0f32; n * d];

        for (li, layer) in w.layers.iter().enumerate() {
            norm_rows(&x, &layer.attn_norm, c.norm_eps, &mut xn);
            self.mm(&layer.wq, &xn, n, &mut q)?;
            self.mm(&layer.wk, &xn, n, &mut k)?;
            self.mm(&layer.wv, &xn, n, &mut v)?;
            let (kc, vc) = &mut cache.layers[li];
            for t in 0..n {
                rope(
                    &mut q[t * q_len..(t + 1) * q_len],
                    c.head_dim,
                    &rope_tables[t],
                );
                let kr = &mut k[t * kv_len..(t + 1) * kv_len];
                rope(kr, c.head_dim, &rope_tables[t]);
                kc.write(pos0 + t, kr);
                vc.write(pos0 + t, &v[t * kv_len..(t + 1) * kv_len]);
            }
            attention(&q, shape, kc, vc, pos0, &self.kv_kernels, &mut attn);
            self.mm(&layer.wo, &attn, n, &mut proj)?;
            add_rows(&mut x, &proj);

            norm_rows(&x, &layer.ffn_norm, c.norm_eps, &mut xn);
            match &layer.ffn {
                Ffn::Dense(mlp) => {
                    self.mlp_forward(mlp, &xn, n, &mut proj)?;
                    add_rows(&mut x, &proj);
                }
                Ffn::Moe { router, experts } => {
                    let routes = self.moe_forward(router, experts, &xn, n, &mut x)?;
                    if let Some(r) = routing.as_deref_mut() {
                        if r.len() <= li {
                            r.resize(li + 1, Vec::new());
                        }
                        r[li].extend(routes);
                    }
                }
            }
        }
        cache.len = pos0 + n;

        let rows: Vec<usize> = match want {
            Logits::Last => vec![n - 1],
            Logits::All => (0..n).collect(),
        };
        let mut h = vec![0.0f32; rows.len() * d];
        for (&t, out) in rows.iter().zip(h.chunks_exact_mut(d)) {
            rms_norm(&x[t * d..(t + 1) * d], &w.output_norm, c.norm_eps, out);
        }
        let mut logits = vec![0.0f32; rows.len() * c.n_vocab];
        self.mm(&w.output, &h, rows.len(), &mut logits)?;
        Ok(logits)
    }

    /// Routes each token, runs every chosen expert on the tokens routed to it (one matmul per
    /// expert), and adds the weighted outputs to the residual `x` in each token's route order, so
    /// the sum does not depend on how the work was grouped.
    fn moe_forward(
        &self,
        router: &QMatrix,
        experts: &[Mlp],
        xn: &[f32],
        n: usize,
        x: &mut [f32],
    ) -> Result<Vec<Route>, ForwardError> {
        let (d, k, n_exp) = (
            self.config.d_model,
            self.config.n_expert_used,
            experts.len(),
        );
        let mut logits = vec![0.0f32; n * n_exp]; // [n, n_expert]
        self.mm(router, xn, n, &mut logits)?;
        let routes: Vec<Route> = logits.chunks_exact(n_exp).map(|l| route(l, k)).collect();

        // (token, slot) pairs per expert.
        let mut assigned: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n_exp];
        for (t, r) in routes.iter().enumerate() {
            for (slot, &e) in r.experts.iter().enumerate() {
                assigned[e as usize].push((t, slot));
            }
        }
        let mut slots = vec![0.0f32; n * k * d]; // [n, k, d_model]: each expert's output per slot
        for (e, pairs) in assigned.iter().enumerate().filter(|(_, p)| !p.is_empty()) {
            let m = pairs.len();
            let mut xe = vec![0.0f32; m * d]; // [m, d_model], the tokens routed to e
            for (row, &(t, _)) in xe.chunks_exact_mut(d).zip(pairs) {
                row.copy_from_slice(&xn[t * d..(t + 1) * d]);
            }
            let mut ye = vec![0.0f32; m * d];
            self.mlp_forward(&experts[e], &xe, m, &mut ye)?;
            for (row, &(t, slot)) in ye.chunks_exact(d).zip(pairs) {
                slots[(t * k + slot) * d..(t * k + slot + 1) * d].copy_from_slice(row);
            }
        }
        x.par_chunks_mut(d).enumerate().for_each(|(t, xr)| {
            for (slot, &wgt) in routes[t].weights.iter().enumerate() {
                add_scaled(xr, &slots[(t * k + slot) * d..(t * k + slot + 1) * d], wgt);
            }
        });
        Ok(routes)
    }

    /// `out = down(silu(gate · x) * (up · x))` for `n` rows.
    fn mlp_forward(
        &self,
        mlp: &Mlp,
        x: &[f32],
        n: usize,
        out: &mut [f32],
    ) -> Result<(), ForwardError> {
        let n_ff = mlp.gate.rows;
        let mut g = vec![0.0f32; n * n_ff]; // [n, n_ff]
        let mut u = vec![0.0f32; n * n_ff];
        self.mm(&mlp.gate, x, n, &mut g)?;
        self.mm(&mlp.up, x, n, &mut u)?;
        swiglu(&mut g, &u);
        self.mm(&mlp.down, &g, n, out)?;
        Ok(())
    }
}

fn norm_rows(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let d = weight.len();
    out.par_chunks_mut(d)
        .zip(x.par_chunks(d))
        .for_each(|(o, r)| rms_norm(r, weight, eps, o));
}

fn add_rows(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}
