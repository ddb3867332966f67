//! Chat templates: the GGUF's `tokenizer.chat_template` (Jinja) or a built-in one, rendered in a
//! sandbox.
//!
//! The sandbox: the environment has no loader (no `include`/`import` can reach a file), a fuel
//! budget bounds both the steps and the memory of one render (minijinja charges fuel for
//! instructions and for every byte it allocates), and the output is capped. So a hostile
//! template fails with an error instead of hanging or exhausting memory.
//!
//! One gap remains in minijinja's accounting (a deep chain of list concatenations); the
//! [`super::watchdog`] covers it.
//!
//! Every message's content is rendered twice: as is, and wrapped in markers, so that the
//! caller can tell which bytes of the output came from messages (and must not be parsed for
//! control tokens) and which came from the template.

use super::conversation::Message;
use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Fuel for one render. A unit is roughly one instruction or 64 bytes allocated, so this bounds
/// a render to about a million steps and 64 MiB; a real template over a long conversation uses
/// a few thousand.
const FUEL: u64 = 1_000_000;

/// The longest template source accepted; real ones are a few KiB, and compiling is not fuelled.
pub const MAX_SOURCE: usize = 1 << 20;

/// The most bytes a render may produce; a conversation that fits any context is far smaller.
pub const MAX_OUTPUT: usize = 16 << 20;

/// Wrapped around message content in the marked render. Private-use characters, three each, so
/// no real text contains them; content that does is refused.
const OPEN: &str = "\u{E000}\u{E001}\u{E002}";
const CLOSE: &str = "\u{E002}\u{E001}\u{E000}";

/// The built-in templates, for files without one or to override it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// Mistral/Mixtral Instruct v0.1: `<s>[INST] q [/INST] a</s>`, no system role. This is the
    /// exact text of Mixtral-8x7B-Instruct-v0.1's `tokenizer_config.json`.
    Mistral,
    /// Llama 2 chat: `<s>[INST] <<SYS>>\ns\n<</SYS>>\n\nq [/INST] a </s>`.
    Llama2,
    /// ChatML: `<|im_start|>role\ncontent<|im_end|>\n`, after BOS.
    ChatMl,
    /// Zephyr: `<|role|>\ncontent</s>\n`.
    Zephyr,
}

const MISTRAL: &str = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

const LLAMA2: &str = "\
{%- if messages and messages[0]['role'] == 'system' -%}
  {%- set system = messages[0]['content'] -%}{%- set turns = messages[1:] -%}
{%- else -%}
  {%- set system = none -%}{%- set turns = messages -%}
{%- endif -%}
{%- for m in turns -%}
  {%- if (m['role'] == 'user') != (loop.index0 % 2 == 0) -%}
    {{- raise_exception('llama2: after the system prompt, roles must alternate user/assistant') -}}
  {%- endif -%}
  {%- if m['role'] == 'user' -%}
    {{- bos_token + '[INST] ' -}}
    {%- if loop.first and system is not none -%}{{- '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' -}}{%- endif -%}
    {{- m['content'].strip() + ' [/INST]' -}}
  {%- else -%}
    {{- ' ' + m['content'].strip() + ' ' + eos_token -}}
  {%- endif -%}
{%- endfor -%}";

const CHATML: &str = "\
{{- bos_token -}}
{%- for m in messages -%}
  {{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

const ZEPHYR: &str = "\
{%- for m in messages -%}
  {{- '<|' + m['role'] + '|>\\n' + m['content'] + eos_token + '\\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|assistant|>\\n' -}}{%- endif -%}";

impl Builtin {
    pub const ALL: [Builtin; 4] = [
        Builtin::Mistral,
        Builtin::Llama2,
        Builtin::ChatMl,
        Builtin::Zephyr,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Builtin::Mistral => "mistral",
            Builtin::Llama2 => "llama2",
            Builtin::ChatMl => "chatml",
            Builtin::Zephyr => "zephyr",
        }
    }

    pub fn parse(name: &str) -> Option<Builtin> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    pub fn source(self) -> &'static str {
        match self {
            Builtin::Mistral => MISTRAL,
            Builtin::Llama2 => LLAMA2,
            Builtin::ChatMl => CHATML,
            Builtin::Zephyr => ZEPHYR,
        }
    }
}

/// Why a template could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("chat template `{name}`: {detail}")]
    Render { name: String, detail: String },
    #[error("chat template `{name}`: the output passed {MAX_OUTPUT} bytes")]
    TooLarge { name: String },
    #[error("message {index} contains reserved private-use characters (U+E000..U+E002)")]
    Reserved { index: usize },
    /// The watchdog gave up on the render; its thread may still be running (see
    /// [`super::watchdog`]), so the process should end.
    #[error("chat template `{name}`: {stopped}")]
    Stopped {
        name: String,
        stopped: super::watchdog::Stopped,
    },
}

/// A piece of rendered output: template text, or the content of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub text: String,
    /// True for message content: it is tokenized as plain text, never as control tokens.
    pub content: bool,
}

/// One render of a conversation.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// The template's output for the messages as they are.
    pub text: String,
    /// The same render with message content marked, split into parts; `None` when the template
    /// mangled the markers (it sliced or rebuilt the content).
    pub parts: Option<Vec<Part>>,
}

impl Rendered {
    /// True when the marked render is the plain render with its content located exactly.
    pub fn exact(&self) -> bool {
        self.parts
            .as_ref()
            .is_some_and(|p| p.iter().map(|p| p.text.as_str()).collect::<String>() == self.text)
    }
}

/// Cloning is cheap next to a render (the compiled environment is shared); a render runs on a
/// clone, on the watchdog's thread.
#[derive(Clone)]
pub struct ChatTemplate {
    /// `mistral`, or `gguf` for the file's own.
    pub name: String,
    pub source: String,
    pub bos_token: String,
    pub eos_token: String,
    env: Arc<Environment<'static>>,
}

impl ChatTemplate {
    /// Compiles `source`; `bos_token`/`eos_token` are the strings the template writes for them.
    pub fn new(
        name: &str,
        source: &str,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<Self, TemplateError> {
        if source.len() > MAX_SOURCE {
            return Err(TemplateError::Render {
                name: name.to_string(),
                detail: format!(
                    "the source is {} bytes; templates over {MAX_SOURCE} bytes are refused",
                    source.len()
                ),
            });
        }
        let env = Arc::new(sandbox());
        let t = ChatTemplate {
            name: name.to_string(),
            source: source.to_string(),
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
            env,
        };
        t.env.template_from_str(&t.source).map_err(|e| t.error(e))?;
        Ok(t)
    }

    pub fn builtin(b: Builtin, bos_token: &str, eos_token: &str) -> Self {
        Self::new(b.name(), b.source(), bos_token, eos_token)
            .unwrap_or_else(|e| unreachable!("built-in template {}: {e}", b.name()))
    }

    fn error(&self, e: Error) -> TemplateError {
        if e.kind() == ErrorKind::WriteFailure {
            return TemplateError::TooLarge {
                name: self.name.clone(),
            };
        }
        // The detail without the source listing that minijinja's alternate form adds.
        let mut detail = e.to_string();
        if let Some(line) = e.line() {
            detail.push_str(&format!(" (template line {line})"));
        }
        TemplateError::Render {
            name: self.name.clone(),
            detail,
        }
    }

    /// Renders `messages`, with the assistant's cue when `add_generation_prompt` is set.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<Rendered, TemplateError> {
        for (index, m) in messages.iter().enumerate() {
            if m.content.contains(OPEN) || m.content.contains(CLOSE) {
                return Err(TemplateError::Reserved { index });
            }
        }
        let (this, messages) = (self.clone(), messages.to_vec());
        let (text, marked) = super::watchdog::guarded(move || {
            Ok::<_, TemplateError>((
                this.run(&messages, add_generation_prompt, false)?,
                this.run(&messages, add_generation_prompt, true)?,
            ))
        })
        .map_err(|stopped| TemplateError::Stopped {
            name: self.name.clone(),
            stopped,
        })??;
        Ok(Rendered {
            text,
            parts: split_marked(&marked),
        })
    }

    fn run(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        mark: bool,
    ) -> Result<String, TemplateError> {
        let msgs: Vec<Value> = messages
            .iter()
            .map(|m| {
                let content = if mark {
                    format!("{OPEN}{}{CLOSE}", m.content)
                } else {
                    m.content.clone()
                };
                let mut map = BTreeMap::new();
                map.insert("role".to_string(), Value::from(m.role.as_str()));
                map.insert("content".to_string(), Value::from(content));
                Value::from(map)
            })
            .collect();
        let ctx = minijinja::context! {
            messages => msgs,
            bos_token => self.bos_token.as_str(),
            eos_token => self.eos_token.as_str(),
            add_generation_prompt => add_generation_prompt,
        };
        let tmpl = self
            .env
            .template_from_str(&self.source)
            .map_err(|e| self.error(e))?;
        let mut out = Capped(Vec::new());
        tmpl.render_captured_to(ctx, &mut out)
            .map_err(|e| self.error(e))?;
        String::from_utf8(out.0).map_err(|_| TemplateError::Render {
            name: self.name.clone(),
            detail: "the output is not UTF-8".into(),
        })
    }
}

/// A writer that refuses to grow past [`MAX_OUTPUT`].
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_OUTPUT {
            return Err(std::io::Error::other("chat template output too large"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The environment every template renders in: Jinja2's whitespace rules as Hugging Face sets
/// them, no loader, a fuel budget, Hugging Face's `raise_exception` and `strftime_now`, and
/// Python's string methods.
fn sandbox() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(64);
    let mut syntax = minijinja::syntax::SyntaxConfig::builder();
    syntax.trim_blocks(true).lstrip_blocks(true);
    if let Ok(s) = syntax.build() {
        env.set_syntax(s);
    }
    env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
        Err(Error::new(ErrorKind::InvalidOperation, msg))
    });
    env.add_function("strftime_now", |fmt: String| -> Result<Value, Error> {
        super::strftime::now(&fmt)
            .map(Value::from)
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, e))
    });
    // `trim` and `.strip()` must see through the content markers, or the marked render would
    // keep whitespace that the plain render strips.
    env.add_filter("trim", |s: String, chars: Option<String>| match chars {
        None => strip_marked(&s, true, true),
        Some(c) => s.trim_matches(|ch| c.contains(ch)).to_string(),
    });
    env.set_unknown_method_callback(|state: &mut State, value: &Value, method: &str, args| {
        if value.kind() == ValueKind::String && args.is_empty() {
            let s = value.as_str().unwrap_or_default();
            match method {
                "strip" => return Ok(Value::from(strip_marked(s, true, true))),
                "lstrip" => return Ok(Value::from(strip_marked(s, true, false))),
                "rstrip" => return Ok(Value::from(strip_marked(s, false, true))),
                _ => {}
            }
        }
        minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
    });
    env
}

/// Strips whitespace at either end as if the markers were not there, keeping the markers.
fn strip_marked(s: &str, left: bool, right: bool) -> String {
    let (mut head, mut tail) = (String::new(), Vec::new());
    let mut rest = s;
    if left {
        loop {
            rest = rest.trim_start();
            let Some(m) = [OPEN, CLOSE].into_iter().find(|m| rest.starts_with(m)) else {
                break;
            };
            head.push_str(m);
            rest = &rest[m.len()..];
        }
    }
    if right {
        loop {
            rest = rest.trim_end();
            let Some(m) = [OPEN, CLOSE].into_iter().find(|m| rest.ends_with(m)) else {
                break;
            };
            tail.push(m);
            rest = &rest[..rest.len() - m.len()];
        }
    }
    tail.reverse();
    head + rest + &tail.concat()
}

/// Splits a marked render into template and content parts; `None` unless every marker pairs up.
fn split_marked(s: &str) -> Option<Vec<Part>> {
    let mut parts = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let Some(open) = rest.find(OPEN) else {
            if rest.contains(CLOSE) {
                return None;
            }
            parts.push(Part {
                text: rest.to_string(),
                content: false,
            });
            break;
        };
        let (before, after) = (&rest[..open], &rest[open + OPEN.len()..]);
        let close = after.find(CLOSE)?;
        let inner = &after[..close];
        if before.contains(CLOSE) || inner.contains(OPEN) {
            return None;
        }
        for (text, content) in [(before, false), (inner, true)] {
            if !text.is_empty() {
                parts.push(Part {
                    text: text.to_string(),
                    content,
                });
            }
        }
        rest = &after[close + CLOSE.len()..];
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(list: &[(&str, &str)]) -> Vec<Message> {
        list.iter().map(|(r, c)| Message::new(r, c)).collect()
    }

    #[test]
    fn every_builtin_compiles_and_renders() {
        for b in Builtin::ALL {
            assert_eq!(Builtin::parse(b.name()), Some(b));
            let t = ChatTemplate::builtin(b, "<s>", "</s>");
            let r = t
                .render(&msgs(&[("user", "hi"), ("assistant", "yo")]), true)
                .unwrap();
            assert!(r.exact(), "{}: {r:?}", b.name());
            assert!(r.text.contains("hi") && r.text.contains("yo"));
        }
    }

    #[test]
    fn strip_sees_through_markers() {
        let s = format!("  {OPEN}  a b \n{CLOSE} ");
        assert_eq!(strip_marked(&s, true, true), format!("{OPEN}a b{CLOSE}"));
        assert_eq!(
            strip_marked(&s, true, false),
            format!("{OPEN}a b \n{CLOSE} ")
        );
        assert_eq!(
            strip_marked(&s, false, true),
            format!("  {OPEN}  a b{CLOSE}")
        );
        assert_eq!(strip_marked(" x ", true, true), "x");
        let empty = format!("{OPEN} {CLOSE}");
        assert_eq!(strip_marked(&empty, true, true), format!("{OPEN}{CLOSE}"));
    }

    #[test]
    fn llama2_strips_content_and_stays_exact() {
        let t = ChatTemplate::builtin(Builtin::Llama2, "<s>", "</s>");
        let r = t
            .render(
                &msgs(&[("system", "S"), ("user", " q "), ("assistant", " a")]),
                true,
            )
            .unwrap();
        assert_eq!(r.text, "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nq [/INST] a </s>");
        assert!(r.exact());
    }

    #[test]
    fn strftime_now_is_available() {
        let t = ChatTemplate::new("t", "{{ strftime_now('%Y') }}", "", "").unwrap();
        let year: i64 = t.render(&[], false).unwrap().text.parse().unwrap();
        assert!(year >= 2024, "{year}");
    }

    #[test]
    fn trim_filter_keeps_its_chars_argument() {
        let t = ChatTemplate::new(
            "t",
            "{% for m in messages %}[{{ m.content | trim }}|{{ m.content | trim('x') }}]{% endfor %}",
            "",
            "",
        )
        .unwrap();
        let r = t
            .render(&msgs(&[("user", " a "), ("user", "xbx")]), false)
            .unwrap();
        assert_eq!(r.text, "[a| a ][xbx|b]");
    }

    #[test]
    fn split_marked_rejects_unpaired_markers() {
        assert_eq!(split_marked(&format!("a{OPEN}b")), None);
        assert_eq!(split_marked(&format!("a{CLOSE}b")), None);
        assert_eq!(split_marked(&format!("{OPEN}{OPEN}b{CLOSE}")), None);
        let p = split_marked(&format!("a{OPEN}b{CLOSE}{OPEN}{CLOSE}c")).unwrap();
        let got: Vec<_> = p.iter().map(|p| (p.text.as_str(), p.content)).collect();
        assert_eq!(got, [("a", false), ("b", true), ("c", false)]);
    }

    #[test]
    fn content_with_markers_is_refused() {
        let t = ChatTemplate::builtin(Builtin::ChatMl, "", "");
        let e = t
            .render(
                &msgs(&[("user", "ok"), ("user", &format!("x{OPEN}"))]),
                true,
            )
            .unwrap_err();
        assert!(matches!(e, TemplateError::Reserved { index: 1 }), "{e}");
    }

    #[test]
    fn a_template_that_slices_content_is_not_exact() {
        let t = ChatTemplate::new(
            "t",
            "{% for m in messages %}{{ m.content[1:] }}{% endfor %}",
            "",
            "",
        )
        .unwrap();
        let r = t.render(&msgs(&[("user", "abc")]), false).unwrap();
        assert_eq!(r.text, "bc");
        assert!(!r.exact());
    }

    #[test]
    fn raise_exception_and_syntax_errors_are_errors() {
        let t = ChatTemplate::builtin(Builtin::Mistral, "<s>", "</s>");
        let e = t
            .render(&msgs(&[("system", "s"), ("user", "u")]), true)
            .unwrap_err();
        assert!(e.to_string().contains("roles must alternate"), "{e}");
        assert!(ChatTemplate::new("bad", "{% for %}", "", "").is_err());
        let huge = "x".repeat(MAX_SOURCE + 1);
        let e = ChatTemplate::new("huge", &huge, "", "").err().unwrap();
        assert!(e.to_string().contains("refused"), "{e}");
        // No loader and no multi-template support: `include` does not even compile.
        assert!(ChatTemplate::new("inc", "{% include '/etc/passwd' %}", "", "").is_err());
    }
}
