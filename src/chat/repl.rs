//! The terminal side of `tandem chat`: the interactive loop, and the one-shot answer for piped
//! input.

use super::commands::{self, Command, Setting};
use super::conversation::Conversation;
use super::driver::{Chat, Event, TurnStats};
use super::template::TemplateError;
use super::ChatError;
use crate::progress::DelayedBar;
use crate::session::Stop;
use rustyline::error::ReadlineError;
use rustyline::{
    Cmd, ConditionalEventHandler, DefaultEditor, EventContext, EventHandler, KeyEvent, Movement,
    RepeatCount,
};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const PROMPT: &str = "> ";
const CONTINUE: &str = "... ";
/// A line holding only this starts or ends a multi-line block.
const BLOCK: &str = "\"\"\"";

fn term(e: impl std::fmt::Display) -> ChatError {
    ChatError::Terminal(e.to_string())
}

/// Writes to stderr, dimmed when stderr is a terminal.
fn dim(text: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("\x1b[2m{text}\x1b[0m");
    } else {
        eprintln!("{text}");
    }
}

/// The line after each answer.
fn stats_line(s: &TurnStats) -> String {
    let why = match s.stop {
        Some(Stop::Cancelled) => " | stopped",
        Some(Stop::ContextFull) => " | context full",
        Some(Stop::Length) => " | length limit",
        _ => "",
    };
    format!(
        "[{} tokens | prompt {} new at {:.1} tok/s, {} cached | generation {:.1} tok/s{why}]",
        s.generated,
        s.prefilled,
        s.prefill_tps(),
        s.reused,
        s.gen_tps(),
    )
}

/// Streams one turn's answer to stdout and notices to stderr.
fn answer(
    chat: &mut Chat,
    text: &str,
    cancel: &AtomicBool,
    folded_told: &mut bool,
) -> Result<TurnStats, ChatError> {
    let stdout = std::io::stdout();
    let mut bar = None;
    let stats = chat.turn(text, cancel, |ev| match ev {
        Event::Prefill { done, total } => {
            bar.get_or_insert_with(|| DelayedBar::new("prefill", total as u64, false))
                .set_position(done as u64);
            if done == total {
                bar = None; // cleared before the answer prints
            }
        }
        Event::Dropped(n) => dim(&format!(
            "[context full: dropped the oldest {n} turn{} (the system prompt stays)]",
            if n == 1 { "" } else { "s" }
        )),
        Event::FoldedSystem if !*folded_told => {
            *folded_told = true;
            eprintln!(
                "note: the chat template has no system role; the system prompt goes at the start of the first user message"
            );
        }
        Event::FoldedSystem => {}
        Event::Text(t) => {
            let mut out = stdout.lock();
            let _ = out.write_all(t.as_bytes()).and_then(|()| out.flush());
        }
    });
    println!();
    stats
}

/// Non-interactive use: `text` is one user message; answer it and return.
pub fn piped(chat: &mut Chat, text: &str) -> Result<(), ChatError> {
    let mut folded_told = false;
    let stats = answer(chat, text, &AtomicBool::new(false), &mut folded_told)?;
    dim(&stats_line(&stats));
    Ok(())
}

/// The interactive loop, until `/quit`, Ctrl-D, or Ctrl-C at an empty prompt.
pub fn interactive(chat: &mut Chat) -> Result<(), ChatError> {
    // The editor first: it installs a SIGINT handler of its own for its lifetime, which ours
    // must then replace (ctrlc::set_handler overwrites).
    let mut rl = DefaultEditor::new().map_err(term)?;
    rl.bind_sequence(
        KeyEvent::ctrl('C'),
        EventHandler::Conditional(Box::new(ClearOrQuit)),
    );
    let cancel = Arc::new(AtomicBool::new(false));
    let generating = Arc::new(AtomicBool::new(false));
    {
        let (cancel, generating) = (cancel.clone(), generating.clone());
        // At the prompt the terminal is in raw mode and Ctrl-C reaches rustyline as a key; the
        // signal only arrives while a turn runs (stop the answer) or outside the loop (leave).
        ctrlc::set_handler(move || {
            if generating.load(Ordering::SeqCst) {
                cancel.store(true, Ordering::SeqCst);
            } else {
                std::process::exit(130);
            }
        })
        .map_err(term)?;
    }
    eprintln!("type a message, /help for commands, Ctrl-D to leave");
    let mut folded_told = false;
    while let Some(text) = read_message(&mut rl)? {
        if text.trim().is_empty() {
            continue;
        }
        let _ = rl.add_history_entry(text.as_str());
        if text.starts_with('/') {
            match commands::parse(&text, chat.sampling()) {
                Ok(Command::Quit) => break,
                Ok(c) => command(chat, c),
                Err(msg) => eprintln!("{msg}"),
            }
            continue;
        }
        cancel.store(false, Ordering::SeqCst);
        generating.store(true, Ordering::SeqCst);
        let result = answer(chat, &text, &cancel, &mut folded_told);
        generating.store(false, Ordering::SeqCst);
        match result {
            Ok(stats) => dim(&stats_line(&stats)),
            // The abandoned render may still be allocating: leave.
            Err(e @ ChatError::Template(TemplateError::Stopped { .. })) => return Err(e),
            Err(e) => eprintln!("error: {e}"),
        }
    }
    Ok(())
}

/// Ctrl-C at the prompt: clears a line that has text, and quits (rustyline's interrupt) when
/// the line is empty.
struct ClearOrQuit;

impl ConditionalEventHandler for ClearOrQuit {
    fn handle(
        &self,
        _: &rustyline::Event,
        _: RepeatCount,
        _: bool,
        ctx: &EventContext,
    ) -> Option<Cmd> {
        (!ctx.line().is_empty()).then_some(Cmd::Kill(Movement::WholeLine))
    }
}

/// One message: a line, lines joined by a trailing `\`, or a `"""` block. `None` at the end.
fn read_message(rl: &mut DefaultEditor) -> Result<Option<String>, ChatError> {
    let mut buf = String::new();
    let mut block = false;
    loop {
        let prompt = if buf.is_empty() && !block {
            PROMPT
        } else {
            CONTINUE
        };
        match rl.readline(prompt) {
            Ok(line) if line.trim() == BLOCK => {
                if block {
                    return Ok(Some(buf.trim_end_matches('\n').to_string()));
                }
                block = true;
            }
            Ok(line) if block => {
                buf.push_str(&line);
                buf.push('\n');
            }
            Ok(line) => match line.strip_suffix('\\') {
                Some(head) => {
                    buf.push_str(head);
                    buf.push('\n');
                }
                None => {
                    buf.push_str(&line);
                    return Ok(Some(buf));
                }
            },
            // Ctrl-C in the middle of a multi-line message drops that message only.
            Err(ReadlineError::Interrupted) if block || !buf.is_empty() => {
                eprintln!("(message discarded)");
                buf.clear();
                block = false;
            }
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => return Ok(None),
            Err(e) => return Err(term(e)),
        }
    }
}

fn command(chat: &mut Chat, c: Command) {
    match c {
        Command::Help => eprintln!("{}", commands::HELP),
        Command::Reset => {
            chat.conversation.messages.clear();
            eprintln!("conversation cleared");
        }
        Command::System(s) => {
            eprintln!(
                "{}",
                if s.is_some() {
                    "system prompt set"
                } else {
                    "system prompt removed"
                }
            );
            chat.conversation.system = s;
        }
        Command::Save(path) => match chat.conversation.save(&path) {
            Ok(()) => eprintln!(
                "saved {} messages to {}",
                chat.conversation.to_messages().len(),
                path.display()
            ),
            Err(e) => eprintln!("error: {e}"),
        },
        Command::Load(path) => match Conversation::load(&path) {
            Ok(conv) => {
                eprintln!(
                    "loaded {} messages from {}",
                    conv.to_messages().len(),
                    path.display()
                );
                chat.conversation = conv;
            }
            Err(e) => eprintln!("error: {e}"),
        },
        Command::Stats => eprintln!("{}", stats_report(chat)),
        Command::Set(Setting::Sampling(cfg)) => {
            chat.set_sampling(cfg);
            eprintln!("{}", sampling_line(chat));
        }
        Command::Set(Setting::NPredict(n)) => {
            chat.n_predict = n;
            eprintln!("{}", sampling_line(chat));
        }
        Command::Quit => {}
    }
}

fn sampling_line(chat: &Chat) -> String {
    let c = chat.sampling();
    format!(
        "temp {} | top_k {} | top_p {} | min_p {} | repeat_penalty {} (last {}) | seed {} | n_predict {}",
        c.temperature,
        c.top_k,
        c.top_p,
        c.min_p,
        c.repeat_penalty,
        c.repeat_last_n,
        c.seed,
        chat.n_predict
    )
}

/// `/stats`: the last turn's token counts (what was reused and what was prefilled), speeds,
/// context use and the sampling settings.
fn stats_report(chat: &Chat) -> String {
    let last = match &chat.last {
        Some(s) => format!(
            "last turn: prompt {} tokens, reused {}, prefilled {} ({:.1} tok/s), generated {} ({:.1} tok/s), stop {}",
            s.prompt_tokens,
            s.reused,
            s.prefilled,
            s.prefill_tps(),
            s.generated,
            s.gen_tps(),
            s.stop.map_or("-".to_string(), |s| format!("{s:?}").to_lowercase()),
        ),
        None => "last turn: none yet".to_string(),
    };
    format!(
        "{last}\ncontext: {} of {} tokens | {} turns\n{}",
        chat.session.tokens.len(),
        chat.n_ctx(),
        chat.conversation.n_turns(),
        sampling_line(chat)
    )
}
