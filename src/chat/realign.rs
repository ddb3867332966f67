//! Keeping the tokens an answer was generated as when the conversation is tokenized again.
//!
//! Each turn renders the whole conversation as text and tokenizes it. An answer's text does not
//! always tokenize back to the ids the model generated: sampling picks splits the tokenizer would
//! not (`▁On` `ce` for `▁Once`), and stray byte tokens decode to U+FFFD. The ids would then leave
//! the cache at the answer's first such token, and everything after it would be prefilled again
//! (after a Ctrl-C, most of the conversation). [`realign`] puts the generated ids back.

use crate::tokenizer::Tokenizer;
use std::ops::Range;

/// An answer in the cache: the positions of its generated tokens and the text they were shown
/// as (what the conversation stores).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub span: Range<usize>,
    pub text: String,
}

/// `ids` (a freshly tokenized prompt) with each cached answer's re-tokenized text replaced by the
/// tokens it was generated as, as far as the prompt follows the cache. Elsewhere (a control
/// token typed as text, say) the ids are left as they are.
pub fn realign(ids: &[u32], cached: &[u32], answers: &[Answer], tok: &Tokenizer) -> Vec<u32> {
    // `out` always equals `cached[..out.len()]`, and `out` + `ids[i..]` spells the prompt.
    let mut out = Vec::with_capacity(ids.len());
    let mut i = 0;
    while i < ids.len() {
        let at = out.len();
        if cached.get(at) == Some(&ids[i]) {
            out.push(ids[i]);
            i += 1;
            continue;
        }
        // A mismatch inside an answer: its first tokens matched one for one, so it starts at
        // `i - (at - start)` in `ids`.
        let Some(a) = answers.iter().find(|a| a.span.contains(&at)) else {
            break;
        };
        let start = i - (at - a.span.start);
        let Some(end) = text_end(tok, &ids[..start], &ids[start..], &a.text) else {
            break;
        };
        out.truncate(a.span.start);
        out.extend_from_slice(&cached[a.span.clone()]);
        i = start + end;
    }
    out.extend_from_slice(&ids[i..]);
    out
}

/// How many of `ids` decode (after `context`, as the answer was streamed) to exactly `text`.
fn text_end(tok: &Tokenizer, context: &[u32], ids: &[u32], text: &str) -> Option<usize> {
    let mut stream = tok.stream(context);
    let mut shown = String::new();
    for (n, &id) in ids.iter().enumerate() {
        if shown == text {
            return Some(n);
        }
        shown.push_str(&stream.step(id).ok()?.unwrap_or_default());
        if !text.starts_with(&shown) {
            return None;
        }
    }
    (shown == text).then_some(ids.len())
}
