//! The chat turn driver on the stories-moe fixture model: rewinding the cache, reusing the
//! cached prefix across turns, dropping old turns when the context fills, refusing a message
//! that cannot fit, and stopping an answer.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use tandem::chat::{self, Builtin, Chat, ChatError, Conversation, Event, TemplateChoice};
use tandem::gguf::GgufFile;
use tandem::model::weights::Weights;
use tandem::model::{Logits, Model, ModelConfig};
use tandem::sample::SamplerConfig;
use tandem::session::{Session, Stop};
use tandem::tensor::kv::KvType;
use tandem::tokenizer::Tokenizer;

const Q8: &str = "stories-moe/stories260K-moe8x-finetuned-Q8_0.gguf";
const F32: &str = "stories-moe/stories260K-moe8x-finetuned-f32.gguf";

struct Fixture {
    file: GgufFile,
    tok: Tokenizer,
}

fn fixture(rel: &str) -> Option<Fixture> {
    let file = GgufFile::open(common::fixture(rel)?).unwrap();
    let tok = Tokenizer::from_gguf(&file).unwrap();
    Some(Fixture { file, tok })
}

fn model(file: &GgufFile) -> Model<'_> {
    let c = ModelConfig::from_gguf(file).unwrap();
    let w = Weights::from_gguf(file, &c).unwrap();
    Model::new(c, w)
}

fn chat<'m, 'w, 't>(
    fx: &'t Fixture,
    model: &'m Model<'w>,
    n_ctx: usize,
    n_predict: usize,
    system: Option<&str>,
) -> Chat<'m, 'w, 't> {
    let (builder, _) = chat::prompt_builder(
        &fx.file,
        &fx.tok,
        &TemplateChoice::Builtin(Builtin::Mistral),
    )
    .unwrap();
    let session = Session::new(model, n_ctx, KvType::F32).unwrap();
    // No stop tokens: every answer runs to n_predict, so token counts are predictable.
    Chat::new(
        session,
        builder,
        &fx.tok,
        Conversation::new(system.map(str::to_string)),
        SamplerConfig::greedy(),
        n_predict,
        Vec::new(),
    )
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// After a rewind, the cache continues as if the dropped tokens had never been fed: logits
/// match a fresh prefill of the same sequence.
#[test]
fn rewind_then_prefill_matches_a_fresh_prefill() {
    let Some(fx) = fixture(F32) else { return };
    let m = model(&fx.file);
    let ids = fx
        .tok
        .encode(
            "Once upon a time, there was a little girl named Lily.",
            true,
        )
        .unwrap();
    let mut fresh = Session::new(&m, 64, KvType::F32).unwrap();
    let want = fresh.prefill(&ids, Logits::All, None).unwrap();
    let n_vocab = m.config.n_vocab;

    let mut s = Session::new(&m, 64, KvType::F32).unwrap();
    s.prefill(&ids[..8], Logits::Last, None).unwrap();
    s.prefill(&[5, 6, 7, 8, 9], Logits::Last, None).unwrap();
    s.rewind(8);
    assert_eq!((s.tokens.len(), s.cache.len), (8, 8));
    let got = s.prefill(&ids[8..], Logits::All, None).unwrap();
    // Same f32 weights, cache and kernels; only batch shapes differ, which can reorder float
    // sums: differences stay at rounding level (logits are O(10)).
    let d = max_abs_diff(&got, &want[8 * n_vocab..]);
    assert!(d < 1e-3, "max |diff| {d}");
    assert_eq!(s.tokens, ids);
}

/// The second turn feeds only what the cache lacks: the first prompt and the first answer
/// stay cached (the answer is kept with its leading space, so it renders to the same tokens).
#[test]
fn second_turn_prefills_only_new_tokens() {
    let Some(fx) = fixture(Q8) else { return };
    let m = model(&fx.file);
    let mut c = chat(&fx, &m, 512, 24, None);
    let never = AtomicBool::new(false);
    let mut text = String::new();
    let first = c
        .turn("Tell me a story about a cat.", &never, |e| {
            if let Event::Text(t) = e {
                text.push_str(t);
            }
        })
        .unwrap();
    assert_eq!((first.reused, first.generated), (0, 24));
    assert_eq!(first.prefilled, first.prompt_tokens);
    assert_eq!(first.stop, Some(Stop::Length));
    assert_eq!(c.conversation.messages[1].content, text);
    assert!(!text.trim().is_empty());
    let p1 = first.prompt_tokens;
    assert_eq!(c.session.tokens.len(), p1 + 24);
    let cached = c.session.tokens.clone();

    let second = c.turn("And then?", &never, |_| {}).unwrap();
    // What the second prompt is, rendered independently of the turn.
    let mut conv = c.conversation.clone();
    conv.messages.pop();
    let p2 = c.prompt.build(&conv, true).unwrap().ids;
    let common = cached.iter().zip(&p2).take_while(|(a, b)| a == b).count();
    assert_eq!(second.prompt_tokens, p2.len());
    assert_eq!(second.reused, common);
    assert_eq!(second.prefilled, p2.len() - common);
    assert!(
        second.reused > p1,
        "the first answer is reused too: reused {} of a first prompt of {p1}",
        second.reused
    );
    assert!(second.prefilled < p2.len() - p1);
}

/// When the context fills, the oldest turns go (never the system prompt), the driver says so
/// and keeps answering; every prompt fits.
#[test]
fn full_context_drops_oldest_turns() {
    let Some(fx) = fixture(Q8) else { return };
    let m = model(&fx.file);
    let n_ctx = 128;
    let n_predict = 16;
    let mut c = chat(&fx, &m, n_ctx, n_predict, Some("You tell short stories."));
    let never = AtomicBool::new(false);
    let mut dropped = 0;
    let mut folded = 0;
    for i in 0..8 {
        let user = format!("Story number {i}, about a dog and a ball.");
        // The fewest oldest turns whose dropping makes the prompt fit with room for the answer
        // (the driver reserves min(n_predict, n_ctx / 4)), found here by a linear search over
        // prompts rendered independently of the driver's own binary search.
        let mut next = c.conversation.clone();
        next.push("user", &user);
        let limit = n_ctx - n_predict.min(n_ctx / 4);
        let want = (0..next.n_turns())
            .find(|&k| {
                let mut conv = next.clone();
                for _ in 0..k {
                    conv.drop_oldest_turn();
                }
                c.prompt.build(&conv, true).unwrap().ids.len() <= limit
            })
            .unwrap();
        let turns_before = c.conversation.n_turns();
        let mut this_turn = 0;
        let s = c
            .turn(&user, &never, |e| match e {
                Event::Dropped(n) => this_turn += n,
                Event::FoldedSystem => folded += 1,
                Event::Text(_) | Event::Prefill { .. } => {}
            })
            .unwrap();
        assert_eq!(s.dropped_turns, want, "turn {i}: turns dropped");
        assert_eq!(this_turn, want, "turn {i}: turns announced as dropped");
        assert_eq!(
            c.conversation.n_turns(),
            turns_before + 1 - want,
            "turn {i}"
        );
        dropped += this_turn;
        assert!(s.prompt_tokens + n_predict <= n_ctx, "turn {i}: {s:?}");
        assert!(c.session.tokens.len() <= n_ctx);
    }
    assert!(dropped > 0, "8 turns of ~40 tokens cannot fit in 128");
    assert_eq!(
        folded, 8,
        "Mistral's template has no system role: folded every turn"
    );
    assert_eq!(
        c.conversation.system.as_deref(),
        Some("You tell short stories.")
    );
    assert_eq!(c.conversation.messages[0].role, "user");
    assert_eq!(c.conversation.n_turns(), 8 - dropped);
    assert!(!c.conversation.messages.last().unwrap().content.is_empty());
}

/// A message that cannot fit even alone is refused, and the conversation is left as it was.
#[test]
fn a_message_longer_than_the_context_is_refused() {
    let Some(fx) = fixture(Q8) else { return };
    let m = model(&fx.file);
    let mut c = chat(&fx, &m, 64, 8, None);
    let never = AtomicBool::new(false);
    c.turn("Hi.", &never, |_| {}).unwrap();
    let before = c.conversation.clone();
    let long = "the cat sat on the mat and ".repeat(20);
    let e = c.turn(&long, &never, |_| {}).unwrap_err();
    assert!(matches!(e, ChatError::TooLong { n_ctx: 64, .. }), "{e}");
    assert_eq!(c.conversation, before);
    c.turn("Bye.", &never, |_| {}).unwrap();
}

/// Setting the cancel flag stops the answer at the next token; what was shown is kept as the
/// assistant's message, and the next turn works.
#[test]
fn cancel_stops_the_answer_and_keeps_what_was_said() {
    let Some(fx) = fixture(Q8) else { return };
    let m = model(&fx.file);
    let mut c = chat(&fx, &m, 512, 200, None);
    let cancel = AtomicBool::new(false);
    let mut shown = String::new();
    let s = c
        .turn("Tell me a long story.", &cancel, |e| {
            if let Event::Text(t) = e {
                shown.push_str(t);
                cancel.store(true, Ordering::Relaxed);
            }
        })
        .unwrap();
    assert_eq!(s.stop, Some(Stop::Cancelled));
    assert!(s.generated < 200);
    assert_eq!(c.conversation.messages.last().unwrap().content, shown);
    cancel.store(false, Ordering::Relaxed);
    let cached = c.session.tokens.len();
    let next = c.turn("Go on.", &cancel, |_| {}).unwrap();
    assert_eq!(next.stop, Some(Stop::Length));
    // The cut-short answer's tokens stay in the cache and are reused.
    assert_eq!(next.reused, cached, "{s:?} then {next:?}");
}

/// A sampled answer cut short by Ctrl-C is often split into tokens differently from how its text
/// tokenizes; the next turn still reuses every cached token of it (it used to reuse only the
/// first prompt: 29 of 52 cached tokens with this seed).
#[test]
fn a_cut_short_sampled_answer_is_reused_whole() {
    let Some(fx) = fixture(Q8) else { return };
    let m = model(&fx.file);
    let mut c = chat(&fx, &m, 512, 200, None);
    c.set_sampling(SamplerConfig {
        seed: 1,
        ..SamplerConfig::default()
    });
    let cancel = AtomicBool::new(false);
    let mut pieces = 0;
    let first = c
        .turn("Tell me a long story.", &cancel, |e| {
            if let Event::Text(_) = e {
                pieces += 1;
                if pieces == 20 {
                    cancel.store(true, Ordering::Relaxed);
                }
            }
        })
        .unwrap();
    assert_eq!(first.stop, Some(Stop::Cancelled));
    cancel.store(false, Ordering::Relaxed);
    let cached = c.session.tokens.len();
    let next = c.turn("Go on.", &cancel, |_| {}).unwrap();
    assert_eq!(next.reused, cached, "{first:?} then {next:?}");
    // And the turn after, whose prompt holds two answers.
    let cached = c.session.tokens.len();
    let third = c.turn("More.", &cancel, |_| {}).unwrap();
    assert_eq!(third.reused, cached, "{next:?} then {third:?}");
}

/// A turn reports its prefill a batch at a time (what the REPL's progress bar shows), ending at
/// the number of tokens it fed.
#[test]
fn prefill_progress_is_reported_per_batch() {
    let Some(fx) = fixture(Q8) else { return };
    let m = model(&fx.file);
    let mut c = chat(&fx, &m, 2048, 4, None);
    let never = AtomicBool::new(false);
    let long = "The dog ran to the park and played with a ball. ".repeat(60);
    let mut seen = Vec::new();
    let s = c
        .turn(&long, &never, |e| {
            if let Event::Prefill { done, total } = e {
                seen.push((done, total));
            }
        })
        .unwrap();
    assert!(s.prefilled > tandem::session::PREFILL_BATCH, "{s:?}");
    let want: Vec<_> = (1..=s.prefilled.div_ceil(tandem::session::PREFILL_BATCH))
        .map(|i| {
            (
                (i * tandem::session::PREFILL_BATCH).min(s.prefilled),
                s.prefilled,
            )
        })
        .collect();
    assert_eq!(seen, want);
}
