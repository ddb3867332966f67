//! One chat turn: fit the conversation in the context, prefill only what the cache lacks,
//! generate and stream the answer.

use super::conversation::Conversation;
use super::prompt::{Prompt, PromptBuilder};
use super::realign::{realign, Answer};
use super::ChatError;
use crate::model::Logits;
use crate::sample::{Sampler, SamplerConfig};
use crate::session::{Session, Stop, PREFILL_BATCH};
use crate::tokenizer::Tokenizer;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What one turn cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TurnStats {
    /// Tokens of the whole rendered conversation, generation cue included.
    pub prompt_tokens: usize,
    /// Of those, tokens whose keys and values were already in the cache.
    pub reused: usize,
    /// Tokens fed this turn: `prompt_tokens - reused`.
    pub prefilled: usize,
    pub prefill_time: Duration,
    pub generated: usize,
    pub gen_time: Duration,
    /// Oldest turns dropped to make room.
    pub dropped_turns: usize,
    /// Whether the system prompt was folded into the first user message.
    pub folded_system: bool,
    pub stop: Option<Stop>,
}

impl TurnStats {
    pub fn prefill_tps(&self) -> f64 {
        self.prefilled as f64 / self.prefill_time.as_secs_f64().max(1e-9)
    }

    pub fn gen_tps(&self) -> f64 {
        self.generated as f64 / self.gen_time.as_secs_f64().max(1e-9)
    }
}

/// What a turn reports while it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The oldest turns were dropped to fit the context.
    Dropped(usize),
    /// The template refused the system role; the system prompt went into the first message.
    FoldedSystem,
    /// Prompt tokens fed so far this turn, of `total` (after each prefill batch).
    Prefill { done: usize, total: usize },
    /// The next piece of the answer (whole UTF-8 characters).
    Text(&'a str),
}

pub struct Chat<'m, 'w, 't> {
    pub session: Session<'m, 'w>,
    pub prompt: PromptBuilder<'t>,
    tok: &'t Tokenizer,
    pub conversation: Conversation,
    sampling: SamplerConfig,
    sampler: Sampler,
    /// The most tokens one answer may have.
    pub n_predict: usize,
    /// Tokens that end an answer (EOS, end-of-turn tokens).
    pub stop_ids: Vec<u32>,
    pub last: Option<TurnStats>,
    /// The answers the cache holds, to feed back as generated (see [`realign`]).
    answers: Vec<Answer>,
}

impl<'m, 'w, 't> Chat<'m, 'w, 't> {
    pub fn new(
        session: Session<'m, 'w>,
        prompt: PromptBuilder<'t>,
        tok: &'t Tokenizer,
        conversation: Conversation,
        sampling: SamplerConfig,
        n_predict: usize,
        stop_ids: Vec<u32>,
    ) -> Self {
        Chat {
            session,
            prompt,
            tok,
            conversation,
            sampler: Sampler::new(sampling.clone()),
            sampling,
            n_predict,
            stop_ids,
            last: None,
            answers: Vec::new(),
        }
    }

    pub fn sampling(&self) -> &SamplerConfig {
        &self.sampling
    }

    /// New sampling parameters; the random stream restarts from the seed.
    pub fn set_sampling(&mut self, cfg: SamplerConfig) {
        self.sampler = Sampler::new(cfg.clone());
        self.sampling = cfg;
    }

    pub fn n_ctx(&self) -> usize {
        self.session.cache.n_ctx
    }

    /// Room kept free for the answer when fitting the conversation in the context.
    fn reserve(&self) -> usize {
        self.n_predict.min(self.n_ctx() / 4).max(1)
    }

    /// The conversation's prompt, after dropping the fewest oldest turns that make it fit with
    /// room for an answer (the system prompt is never dropped). Returns the prompt and the
    /// number of turns dropped; the conversation is left as it was.
    pub fn fit(&self, conv: &Conversation) -> Result<(Prompt, usize), ChatError> {
        let limit = self.n_ctx().saturating_sub(self.reserve());
        let build = |k: usize| -> Result<Prompt, ChatError> {
            let mut c = conv.clone();
            for _ in 0..k {
                c.drop_oldest_turn();
            }
            self.prompt.build(&c, true)
        };
        let p = build(0)?;
        if p.ids.len() <= limit {
            return Ok((p, 0));
        }
        // The prompt shrinks as turns are dropped: binary search for the fewest drops, keeping
        // at least the last turn.
        let max = conv.n_turns().saturating_sub(1);
        let last = build(max)?;
        if last.ids.len() > limit {
            return Err(ChatError::TooLong {
                tokens: last.ids.len(),
                n_ctx: self.n_ctx(),
                reserve: self.reserve(),
            });
        }
        let (mut lo, mut hi, mut best) = (0, max, last);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            let p = build(mid)?;
            if p.ids.len() <= limit {
                (hi, best) = (mid, p);
            } else {
                lo = mid;
            }
        }
        Ok((best, hi))
    }

    /// Adds the user's message, answers it and adds the answer (also when cut short); on an
    /// error the conversation is left as it was. `on_event` hears about dropped turns first,
    /// then gets the answer as it is decoded; setting `cancel` stops the answer at the next
    /// token.
    pub fn turn(
        &mut self,
        user: &str,
        cancel: &AtomicBool,
        mut on_event: impl FnMut(Event),
    ) -> Result<TurnStats, ChatError> {
        let mut conv = self.conversation.clone();
        conv.push("user", user);
        let (prompt, dropped_turns) = self.fit(&conv)?;
        for _ in 0..dropped_turns {
            conv.drop_oldest_turn();
        }
        // Earlier answers as the tokens they were generated as, unless that would not fit.
        let realigned = realign(&prompt.ids, &self.session.tokens, &self.answers, self.tok);
        let limit = self.n_ctx().saturating_sub(self.reserve());
        let ids = if realigned.len() <= limit.max(prompt.ids.len()) {
            &realigned
        } else {
            &prompt.ids
        };
        if ids.is_empty() {
            return Err(ChatError::EmptyPrompt(self.prompt.template.name.clone()));
        }
        if dropped_turns > 0 {
            on_event(Event::Dropped(dropped_turns));
        }
        if prompt.folded_system {
            on_event(Event::FoldedSystem);
        }

        // Keep what the cache shares with the new prompt; the last prompt token is always fed
        // again, since its logits start the answer.
        let common = self
            .session
            .tokens
            .iter()
            .zip(ids)
            .take_while(|(a, b)| a == b)
            .count()
            .min(ids.len() - 1);
        self.session.rewind(common);
        self.answers.retain(|a| a.span.end <= common);
        let start = Instant::now();
        // Fed a batch at a time (the batches one call would make) so a long prompt can show
        // progress.
        let new = &ids[common..];
        let mut logits = Vec::new();
        for (i, chunk) in new.chunks(PREFILL_BATCH).enumerate() {
            logits = self.session.prefill(chunk, Logits::Last, None)?;
            on_event(Event::Prefill {
                done: (i * PREFILL_BATCH + chunk.len()),
                total: new.len(),
            });
        }
        let prefill_time = start.elapsed();

        let mut answer = String::new();
        let mut generated = 0;
        let mut stream = self.tok.stream(ids);
        let mut failed = None;
        let start = Instant::now();
        let stop = if cancel.load(Ordering::Relaxed) {
            Stop::Cancelled
        } else {
            self.session.generate(
                logits,
                &mut self.sampler,
                self.n_predict,
                &self.stop_ids,
                |id| {
                    if cancel.load(Ordering::Relaxed) {
                        return false;
                    }
                    generated += 1;
                    match stream.step(id) {
                        Ok(Some(text)) => {
                            on_event(Event::Text(&text));
                            answer.push_str(&text);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            failed = Some(e);
                            return false;
                        }
                    }
                    true
                },
            )?
        };
        let gen_time = start.elapsed();
        if let Some(e) = failed {
            return Err(e.into());
        }
        // The conversation changes only when the turn succeeds (a cut-short answer included).
        // The answer is kept as generated, leading space included, so that rendering it again
        // reproduces the generated tokens and the next turn can reuse their cache entries.
        self.answers.push(Answer {
            span: ids.len()..self.session.tokens.len(),
            text: answer.clone(),
        });
        conv.push("assistant", &answer);
        self.conversation = conv;
        let stats = TurnStats {
            prompt_tokens: ids.len(),
            reused: common,
            prefilled: ids.len() - common,
            prefill_time,
            generated,
            gen_time,
            dropped_turns,
            folded_system: prompt.folded_system,
            stop: Some(stop),
        };
        self.last = Some(stats);
        Ok(stats)
    }
}
