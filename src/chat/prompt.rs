//! Conversation → prompt text and ids: the one path that both chat turns and `--render` take.

use super::conversation::{Conversation, Message};
use super::encode::PromptEncoder;
use super::template::{ChatTemplate, Part};
use super::ChatError;

/// A rendered, tokenized conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub text: String,
    pub ids: Vec<u32>,
    /// The template refused the system role, so the system prompt was folded into the first
    /// user message.
    pub folded_system: bool,
}

pub struct PromptBuilder<'t> {
    pub template: ChatTemplate,
    pub encoder: PromptEncoder<'t>,
}

impl PromptBuilder<'_> {
    /// Renders and tokenizes `conv`, ending with the assistant's cue when
    /// `add_generation_prompt` is set. A template that rejects the system role (Mixtral's
    /// raises an exception) gets the system prompt folded into the first user message.
    pub fn build(
        &self,
        conv: &Conversation,
        add_generation_prompt: bool,
    ) -> Result<Prompt, ChatError> {
        let messages = conv.to_messages();
        let (rendered, folded_system, messages) =
            match self.template.render(&messages, add_generation_prompt) {
                Ok(r) => (r, false, messages),
                Err(e) => {
                    let folded = fold_system(conv).ok_or(e)?;
                    let r = self.template.render(&folded, add_generation_prompt)?;
                    (r, true, folded)
                }
            };
        let (text, parts) = if rendered.exact() {
            let parts = rendered.parts.unwrap_or_default();
            (rendered.text, parts)
        } else if !messages
            .iter()
            .any(|m| self.encoder.has_special(&m.content))
        {
            // The template rewrote content (say `| upper`), so the markers cannot say where it
            // is; no content holds a control-token string, so parsing them everywhere is safe.
            let part = Part {
                text: rendered.text.clone(),
                content: false,
            };
            (rendered.text, vec![part])
        } else if let Some(parts) = rendered.parts {
            // Keep the marked render: the content stays unparsed even if its whitespace
            // differs a little from the plain render.
            let text = parts.iter().map(|p| p.text.as_str()).collect();
            (text, parts)
        } else {
            return Err(ChatError::Unsafe(self.template.name.clone()));
        };
        let ids = self.encoder.encode(&parts)?;
        Ok(Prompt {
            text,
            ids,
            folded_system,
        })
    }
}

/// The messages with the system prompt prepended to the first user message, or `None` when
/// there is no system prompt or no user message right after it.
fn fold_system(conv: &Conversation) -> Option<Vec<Message>> {
    let system = conv.system.as_ref()?;
    let first = conv.messages.first().filter(|m| m.role == "user")?;
    let mut out = conv.messages.clone();
    out[0] = Message::new("user", &format!("{system}\n\n{}", first.content));
    Some(out)
}
