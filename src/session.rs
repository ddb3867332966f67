//! One conversation with a model: prefill, decode, stop conditions and timings. Shared by
//! `run`, `bench`, `perplexity` and (later) `chat` and `serve`.

use crate::model::forward::{ForwardError, Routing, SeqStep};
use crate::model::{KvCache, Logits, Model, Scratch};
use crate::sample::Sampler;
use crate::tensor::kv::KvType;
use std::time::{Duration, Instant};

/// Tokens per prefill batch: large enough that each expert sees many tokens per weight read,
/// small enough that activations stay in cache-friendly sizes.
pub const PREFILL_BATCH: usize = 256;

/// Prompt and generation timings.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timings {
    pub prompt_tokens: usize,
    pub prompt_time: Duration,
    pub gen_tokens: usize,
    pub gen_time: Duration,
}

impl Timings {
    pub fn prompt_tps(&self) -> f64 {
        self.prompt_tokens as f64 / self.prompt_time.as_secs_f64().max(1e-9)
    }

    pub fn gen_tps(&self) -> f64 {
        self.gen_tokens as f64 / self.gen_time.as_secs_f64().max(1e-9)
    }
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The model produced an end-of-generation token.
    Eos,
    /// The requested number of tokens was generated.
    Length,
    /// The context window is full.
    ContextFull,
    /// The caller's callback asked to stop.
    Cancelled,
}

pub struct Session<'m, 'w> {
    pub model: &'m Model<'w>,
    pub cache: KvCache,
    /// Every token in the cache, in order.
    pub tokens: Vec<u32>,
    pub timings: Timings,
    /// The forward pass's buffers, kept from step to step.
    scratch: Scratch,
}

impl<'m, 'w> Session<'m, 'w> {
    pub fn new(model: &'m Model<'w>, n_ctx: usize, kv: KvType) -> Result<Self, String> {
        let c = &model.config;
        let cache = KvCache::new(kv, c.n_layer, n_ctx, c.n_kv_head, c.head_dim)?;
        Ok(Session {
            model,
            cache,
            tokens: Vec::new(),
            timings: Timings::default(),
            scratch: Scratch::new(c, PREFILL_BATCH.min(n_ctx)),
        })
    }

    /// Forgets every token from `len` on, so that the next prefill continues there (a chat turn
    /// that shares a prefix with what the cache holds).
    pub fn rewind(&mut self, len: usize) {
        self.tokens.truncate(len);
        self.cache.truncate(len);
    }

    /// Feeds `ids` in batches and returns the logits of the last one (`[n_vocab]`), or of every
    /// one (`[ids.len(), n_vocab]`) with [`Logits::All`].
    pub fn prefill(
        &mut self,
        ids: &[u32],
        want: Logits,
        mut routing: Option<&mut Routing>,
    ) -> Result<Vec<f32>, ForwardError> {
        let start = Instant::now();
        let mut out = Vec::new();
        for chunk in ids.chunks(PREFILL_BATCH) {
            let logits = self.step(chunk, want, routing.as_deref_mut())?;
            self.tokens.extend_from_slice(chunk);
            match want {
                Logits::All => out.extend_from_slice(&logits),
                Logits::Last => out = logits,
            }
        }
        self.timings.prompt_tokens += ids.len();
        self.timings.prompt_time += start.elapsed();
        Ok(out)
    }

    /// Samples up to `max_tokens` tokens after `logits` (those of the last token fed), calling
    /// `on_token` with each; it returns `false` to stop. Stops at an end-of-generation token in
    /// `eos` (which is not passed to `on_token`) or when the context is full.
    pub fn generate(
        &mut self,
        mut logits: Vec<f32>,
        sampler: &mut Sampler,
        max_tokens: usize,
        eos: &[u32],
        mut on_token: impl FnMut(u32) -> bool,
    ) -> Result<Stop, ForwardError> {
        let start = Instant::now();
        let mut stop = Stop::Length;
        for _ in 0..max_tokens {
            let id = sampler.sample(&logits, &self.tokens);
            if eos.contains(&id) {
                stop = Stop::Eos;
                break;
            }
            self.timings.gen_tokens += 1;
            if !on_token(id) {
                stop = Stop::Cancelled;
                break;
            }
            if self.cache.len >= self.cache.n_ctx {
                stop = Stop::ContextFull;
                break;
            }
            logits = self.step(&[id], Logits::Last, None)?;
            self.tokens.push(id);
        }
        self.timings.gen_time += start.elapsed();
        Ok(stop)
    }

    /// One forward step of this conversation alone.
    fn step(
        &mut self,
        tokens: &[u32],
        want: Logits,
        routing: Option<&mut Routing>,
    ) -> Result<Vec<f32>, ForwardError> {
        let mut seq = [SeqStep {
            tokens,
            cache: &mut self.cache,
            logits: want,
            routing,
        }];
        let mut out = self.model.forward_batch(&mut seq, &mut self.scratch)?;
        Ok(out.pop().unwrap_or_default())
    }
}
