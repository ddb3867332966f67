//! The forward pass: tokens in, logits out, the KV cache updated.
//!
//! A batch of rows (the tokens of one or several sequences: a prompt chunk in prefill, one token
//! each in decode) goes through each layer together, so every weight matrix is read once per
//! step. In MoE layers the rows routed to each expert are gathered and handed to the expert's
//! executor as one matrix, so each expert is read once per step.

use super::config::ModelConfig;
use super::experts::{CpuExperts, CpuKernels, ExpertExecutor, ExpertWork, Placement};
use super::kv_cache::KvCache;
use super::moe::{route, Route};
use super::scratch::Scratch;
use super::weights::{Ffn, Weights};
use crate::quant::simd;
use crate::tensor::attention::{attention, AttnShape};
use crate::tensor::kv::KvKernels;
use crate::tensor::matmul::{dequantize_row, Activations, MatmulScratch};
use crate::tensor::ops::{rms_norm, rope, rope_cos_sin};
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
    #[error("sequence {index} of the batch has no tokens")]
    EmptySequence { index: usize },
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    /// The GPU executor failed (a lost device, an allocation); the message names what.
    #[error("GPU: {0}")]
    Gpu(String),
}

pub struct Model<'a> {
    pub config: ModelConfig,
    pub weights: Weights<'a>,
    kv_kernels: KvKernels,
    kernels: CpuKernels,
    cpu_experts: CpuExperts<'a>,
    /// Another executor and the experts it runs (the rest stay on the CPU).
    offload: Option<(Box<dyn ExpertExecutor + 'a>, Placement)>,
}

/// Per layer, the route of every token of the batch.
pub type Routing = Vec<Vec<Route>>;

/// One sequence's share of a batched forward step.
pub struct SeqStep<'s> {
    /// The tokens to feed: one in decode, a chunk of the prompt in prefill. Not empty.
    pub tokens: &'s [u32],
    /// The sequence's own cache; the tokens go at positions `cache.len ..`.
    pub cache: &'s mut KvCache,
    pub logits: Logits,
    /// Receives the expert choices of every layer and token, when given.
    pub routing: Option<&'s mut Routing>,
}

impl<'a> Model<'a> {
    pub fn new(config: ModelConfig, weights: Weights<'a>) -> Self {
        let isa = simd::detected();
        let kernels = CpuKernels {
            isa,
            acts: Activations::default(),
        };
        Model {
            cpu_experts: CpuExperts::new(&weights, kernels),
            config,
            weights,
            kv_kernels: KvKernels::new(isa),
            kernels,
            offload: None,
        }
    }

    /// The same model with activations quantized at `acts` precision.
    pub fn with_activations(mut self, acts: Activations) -> Self {
        self.kernels.acts = acts;
        self.cpu_experts = CpuExperts::new(&self.weights, self.kernels);
        self
    }

    /// The same model with the experts `placement` marks computed by `executor`.
    pub fn with_expert_executor(
        mut self,
        executor: Box<dyn ExpertExecutor + 'a>,
        placement: Placement,
    ) -> Self {
        self.offload = Some((executor, placement));
        self
    }

    /// The kernels this model's CPU products use.
    pub fn kernels(&self) -> CpuKernels {
        self.kernels
    }

    /// Runs `tokens` at positions `cache.len ..`, appends their keys and values to the cache and
    /// returns logits (`[n_vocab]` for [`Logits::Last`], `[n, n_vocab]` for [`Logits::All`]).
    /// When `routing` is given, the expert choices of every layer and token are appended to it.
    /// The one-sequence case of [`Model::forward_batch`], with buffers of its own; a caller
    /// that steps repeatedly keeps a [`Scratch`] and calls `forward_batch`.
    pub fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        want: Logits,
        routing: Option<&mut Routing>,
    ) -> Result<Vec<f32>, ForwardError> {
        let mut seqs = [SeqStep {
            tokens,
            cache,
            logits: want,
            routing,
        }];
        let mut scratch = Scratch::new(&self.config, tokens.len());
        Ok(self
            .forward_batch(&mut seqs, &mut scratch)?
            .pop()
            .unwrap_or_default())
    }

    /// Runs several sequences through the model in one pass and returns each one's logits (as
    /// [`Model::forward`] would). Their rows go through every matrix together, so each weight,
    /// and each expert, is read once per step for the tokens of all of them; RoPE, the KV write
    /// and attention are per sequence, at its own positions and in its own cache. Nothing is
    /// written to any cache unless every sequence fits its context and every token id is valid.
    /// The step's buffers come from `scratch`, which grows if the step has more rows than it
    /// was made for.
    pub fn forward_batch(
        &self,
        seqs: &mut [SeqStep<'_>],
        scratch: &mut Scratch,
    ) -> Result<Vec<Vec<f32>>, ForwardError> {
        let c = &self.config;
        let w = &self.weights;
        let d = c.d_model;
        // Row ranges of each sequence in the batch.
        let mut spans = Vec::with_capacity(seqs.len());
        let mut n = 0;
        for (index, s) in seqs.iter().enumerate() {
            if s.tokens.is_empty() {
                return Err(ForwardError::EmptySequence { index });
            }
            if s.cache.len + s.tokens.len() > s.cache.n_ctx {
                return Err(ForwardError::ContextFull {
                    have: s.cache.len,
                    add: s.tokens.len(),
                    n_ctx: s.cache.n_ctx,
                });
            }
            spans.push(n..n + s.tokens.len());
            n += s.tokens.len();
        }
        scratch.reserve(c, n);
        let Scratch {
            x,
            xn,
            q,
            k,
            v,
            attn,
            proj,
            rope: rope_t,
            router,
            gathered,
            expert_out,
            kernels: ks,
            ..
        } = scratch;
        let (q_len, kv_len, half) = (c.n_head * c.head_dim, c.n_kv_head * c.head_dim, c.n_rot / 2);
        let x = &mut x[..n * d]; // [n, d_model], the residual stream
        let xn = &mut xn[..n * d]; // [n, d_model], normalised input of each block
        let q = &mut q[..n * q_len]; // [n, n_head * head_dim]
        let k = &mut k[..n * kv_len]; // [n, n_kv_head * head_dim]
        let v = &mut v[..n * kv_len];
        let attn = &mut attn[..n * q_len];
        let proj = &mut proj[..n * d];
        let rope_t = &mut rope_t[..n * half]; // [n, n_rot / 2]
        let mut moe = MoeBuffers {
            router: &mut router[..],
            gathered: &mut gathered[..],
            outputs: &mut expert_out[..],
        };
        let tokens = seqs.iter().flat_map(|s| s.tokens.iter());
        for (i, (&id, row)) in tokens.zip(x.chunks_exact_mut(d)).enumerate() {
            if id as usize >= c.n_vocab {
                return Err(ForwardError::TokenOutOfRange {
                    id,
                    index: i,
                    n_vocab: c.n_vocab,
                });
            }
            dequantize_row(&w.tok_embd, id as usize, row)?;
        }
        // Per row, RoPE's rotations at that token's position in its sequence.
        let positions = seqs
            .iter()
            .flat_map(|s| (0..s.tokens.len()).map(|t| s.cache.len + t));
        for (pos, cs) in positions.zip(rope_t.chunks_exact_mut(half.max(1))) {
            rope_cos_sin(pos, c.n_rot, c.rope_theta, &mut cs[..half]);
        }
        let shape = AttnShape {
            n_head: c.n_head,
            n_kv_head: c.n_kv_head,
            head_dim: c.head_dim,
            window: c.sliding_window,
        };

        for (li, layer) in w.layers.iter().enumerate() {
            norm_rows(x, &layer.attn_norm, c.norm_eps, xn);
            self.kernels.mm(&layer.wq, xn, n, q, &mut ks.mm)?;
            self.kernels.mm(&layer.wk, xn, n, k, &mut ks.mm)?;
            self.kernels.mm(&layer.wv, xn, n, v, &mut ks.mm)?;
            for t in 0..n {
                let cs = &rope_t[t * half..(t + 1) * half];
                rope(&mut q[t * q_len..(t + 1) * q_len], c.head_dim, cs);
                rope(&mut k[t * kv_len..(t + 1) * kv_len], c.head_dim, cs);
            }
            for (s, span) in seqs.iter_mut().zip(&spans) {
                let pos0 = s.cache.len;
                let (kc, vc) = &mut s.cache.layers[li];
                for (i, t) in span.clone().enumerate() {
                    kc.write(pos0 + i, &k[t * kv_len..(t + 1) * kv_len]);
                    vc.write(pos0 + i, &v[t * kv_len..(t + 1) * kv_len]);
                }
                let rows = span.start * q_len..span.end * q_len;
                let kern = &self.kv_kernels;
                attention(&q[rows.clone()], shape, kc, vc, pos0, kern, &mut attn[rows]);
            }
            self.kernels.mm(&layer.wo, attn, n, proj, &mut ks.mm)?;
            add_rows(x, proj);

            norm_rows(x, &layer.ffn_norm, c.norm_eps, xn);
            match &layer.ffn {
                Ffn::Dense(mlp) => {
                    self.kernels.mlp(mlp, xn, n, proj, ks)?;
                    add_rows(x, proj);
                }
                Ffn::Moe { router, .. } => {
                    let routes = self.moe_forward(li, router, xn, x, &mut moe, &mut ks.mm)?;
                    for (s, span) in seqs.iter_mut().zip(&spans) {
                        if let Some(r) = s.routing.as_deref_mut() {
                            if r.len() <= li {
                                r.resize(li + 1, Vec::new());
                            }
                            r[li].extend_from_slice(&routes[span.clone()]);
                        }
                    }
                }
            }
        }
        for (s, span) in seqs.iter_mut().zip(&spans) {
            s.cache.len += span.len();
        }

        // The rows whose logits are wanted, of every sequence, through the head at once.
        let rows: Vec<usize> = seqs
            .iter()
            .zip(&spans)
            .flat_map(|(s, span)| match s.logits {
                Logits::Last => span.end - 1..span.end,
                Logits::All => span.clone(),
            })
            .collect();
        let h = &mut xn[..rows.len() * d]; // [rows, d_model], free after the last layer
        for (&t, out) in rows.iter().zip(h.chunks_exact_mut(d)) {
            rms_norm(&x[t * d..(t + 1) * d], &w.output_norm, c.norm_eps, out);
        }
        let mut logits = vec![0.0f32; rows.len() * c.n_vocab];
        self.kernels
            .mm(&w.output, h, rows.len(), &mut logits, &mut ks.mm)?;
        let mut rest = &logits[..];
        Ok(seqs
            .iter()
            .zip(&spans)
            .map(|(s, span)| {
                let count = match s.logits {
                    Logits::Last => 1,
                    Logits::All => span.len(),
                };
                let (mine, tail) = rest.split_at(count * c.n_vocab);
                rest = tail;
                mine.to_vec()
            })
            .collect())
    }

    /// Routes each of the `n` rows of `xn` (`[n, d_model]`) to its top-k experts, has each
    /// expert's executor compute it for the rows routed to it, and adds the weighted outputs to
    /// `x`. Each token's expert outputs are added in order of expert id, so the sum does not
    /// depend on how the work was grouped or where an expert ran.
    fn moe_forward(
        &self,
        layer: usize,
        router: &QMatrix,
        xn: &[f32],
        x: &mut [f32],
        buf: &mut MoeBuffers,
        mm: &mut MatmulScratch,
    ) -> Result<Vec<Route>, ForwardError> {
        let (d, k, n_exp) = (self.config.d_model, self.config.n_expert_used, router.rows);
        let n = xn.len() / d;
        let logits = &mut buf.router[..n * n_exp]; // [n, n_expert]
        self.kernels.mm(router, xn, n, logits, mm)?;
        let routes: Vec<Route> = logits.chunks_exact(n_exp).map(|l| route(l, k)).collect();

        // (token, slot) pairs per expert, in token order.
        let mut assigned: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n_exp];
        for (t, r) in routes.iter().enumerate() {
            for (slot, &e) in r.experts.iter().enumerate() {
                assigned[e as usize].push((t, slot));
            }
        }
        // Every expert's input rows, router weights and output rows, expert by expert:
        // `[n * k, d_model]`, `[n * k]`, `[n * k, d_model]`.
        let gathered = &mut buf.gathered[..n * k * d];
        let outputs = &mut buf.outputs[..n * k * d];
        let mut row_weights = Vec::with_capacity(n * k);
        let mut start = 0;
        for pairs in &assigned {
            for (row, &(t, slot)) in gathered[start * d..].chunks_exact_mut(d).zip(pairs) {
                row.copy_from_slice(&xn[t * d..(t + 1) * d]);
                row_weights.push(routes[t].weights[slot]);
            }
            start += pairs.len();
        }
        let (mut on_cpu, mut offloaded) = (Vec::new(), Vec::new());
        let mut inputs = &gathered[..];
        let mut weights = &row_weights[..];
        let mut outs = &mut outputs[..];
        for (e, pairs) in assigned.iter().enumerate() {
            let (input, rest_in) = inputs.split_at(pairs.len() * d);
            let (wts, rest_w) = weights.split_at(pairs.len());
            let (output, rest_out) = std::mem::take(&mut outs).split_at_mut(pairs.len() * d);
            (inputs, weights, outs) = (rest_in, rest_w, rest_out);
            if pairs.is_empty() {
                continue;
            }
            let work = ExpertWork {
                expert: e,
                input,
                weights: wts,
                output,
            };
            match &self.offload {
                Some((_, placement)) if placement.is_offloaded(layer, e) => offloaded.push(work),
                _ => on_cpu.push(work),
            }
        }
        // The other executor's work goes first and is collected last, so that a device computes
        // while the CPU runs its own experts.
        let other = self
            .offload
            .as_ref()
            .map(|(e, _)| e)
            .filter(|_| !offloaded.is_empty());
        if let Some(executor) = other {
            executor.start(layer, &mut offloaded)?;
        }
        let on_cpu_result = self.cpu_experts.run(layer, &mut on_cpu);
        if let Some(executor) = other {
            executor.finish(layer, &mut offloaded)?;
        }
        on_cpu_result?;
        drop((on_cpu, offloaded));

        // `[n, k]`: each token's (already weighted) output rows in expert-id order, which is the
        // order the rows were laid out in (expert by expert).
        let mut by_id = vec![0usize; n * k];
        let mut filled = vec![0usize; n];
        let mut row = 0;
        for pairs in &assigned {
            for &(t, _) in pairs {
                by_id[t * k + filled[t]] = row;
                filled[t] += 1;
                row += 1;
            }
        }
        x.par_chunks_mut(d)
            .zip(by_id.par_chunks(k))
            .for_each(|(xr, rows)| {
                for &o in rows {
                    add_rows(xr, &outputs[o * d..(o + 1) * d]);
                }
            });
        Ok(routes)
    }
}

/// The MoE block's slices of the step's [`Scratch`].
struct MoeBuffers<'s> {
    router: &'s mut [f32],
    gathered: &'s mut [f32],
    outputs: &'s mut [f32],
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
