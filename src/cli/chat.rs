//! `tandem chat`: an interactive chat with a model, one answer for piped input, or `--render`
//! to print the prompt a conversation becomes.

use super::common::{default_ctx, load_model, n_ctx, open_engine, ModelArgs, SamplingArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use tandem::chat::{self, Builtin, Chat, Conversation, TemplateChoice};
use tandem::engine::Engine;
use tandem::session::Session;
use tandem::tokenizer::Tokenizer;

#[derive(Args, Debug)]
pub struct ChatArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// System prompt.
    #[arg(long = "system")]
    pub system: Option<String>,
    /// Built-in chat template: mistral, llama2, chatml or zephyr (default: the file's own
    /// `tokenizer.chat_template`, else mistral).
    #[arg(long = "template", value_parser = parse_builtin, conflicts_with = "template_file")]
    pub template: Option<Builtin>,
    /// A Jinja chat template to use instead of the file's.
    #[arg(long = "template-file")]
    pub template_file: Option<PathBuf>,
    /// The most tokens one answer may have.
    #[arg(
        short = 'n',
        long = "n-predict",
        default_value_t = 1024,
        allow_negative_numbers = true
    )]
    pub n_predict: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Keep going past end-of-sequence tokens (answers end at -n, Ctrl-C or a full context).
    #[arg(long = "ignore-eos")]
    pub ignore_eos: bool,
    /// Read a JSON conversation (`[{"role": ..., "content": ...}]`) on stdin, print
    /// `{"prompt": ..., "ids": [...]}` with the generation cue included, and exit.
    #[arg(long = "render")]
    pub render: bool,
}

fn parse_builtin(s: &str) -> Result<Builtin, String> {
    Builtin::parse(s).ok_or_else(|| {
        let names: Vec<_> = Builtin::ALL.iter().map(|b| b.name()).collect();
        format!("unknown template `{s}` (built-in: {})", names.join(", "))
    })
}

impl ChatArgs {
    fn template_choice(&self) -> Result<TemplateChoice> {
        Ok(match (&self.template, &self.template_file) {
            (Some(b), _) => TemplateChoice::Builtin(*b),
            (None, Some(path)) => TemplateChoice::Source(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            ),
            (None, None) => TemplateChoice::Auto,
        })
    }
}

fn read_stdin() -> Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading stdin")?;
    Ok(s)
}

pub fn run(args: ChatArgs) -> Result<()> {
    if args.render {
        return render(&args);
    }
    let engine = open_engine(&args.model)?;
    engine.install(|| converse(args, &engine))
}

fn converse(args: ChatArgs, engine: &Engine) -> Result<()> {
    let threads = engine.threads();
    let tok = &engine.tokenizer;
    let (builder, note) = chat::prompt_builder(&engine.file, tok, &args.template_choice()?)?;
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    let stop_ids = if args.ignore_eos {
        Vec::new()
    } else {
        chat::stop_ids(tok, &builder.encoder)
    };
    let n_ctx = n_ctx(engine, &args.model, default_ctx(engine));
    let model = load_model(engine, false)?;
    let session = engine.session(&model, n_ctx)?;
    let sampling = args.sampling.config();
    eprintln!(
        "{} | seed {}",
        summary(engine, &session, &builder.template.name, threads),
        sampling.seed
    );
    let mut chat = Chat::new(
        session,
        builder,
        tok,
        Conversation::new(args.system.clone()),
        sampling,
        args.n_predict,
        stop_ids,
    );
    if std::io::stdin().is_terminal() {
        chat::repl::interactive(&mut chat)?;
    } else {
        let text = read_stdin()?;
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            bail!("stdin is empty: pipe in a message, or run in a terminal to chat");
        }
        chat::repl::piped(&mut chat, text)?;
    }
    Ok(())
}

/// `--render`: only the tokenizer and the template are needed, so any GGUF with a vocabulary
/// will do (the weights are not read).
fn render(args: &ChatArgs) -> Result<()> {
    let path = &args.model.model;
    let file = super::common::open_gguf(path)?;
    let tok = Tokenizer::from_gguf(&file).with_context(|| format!("{}", path.display()))?;
    let (builder, note) = chat::prompt_builder(&file, &tok, &args.template_choice()?)?;
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    let mut conv = Conversation::from_json_str(&read_stdin()?)?;
    if let Some(system) = &args.system {
        conv.system = Some(system.clone());
    }
    let prompt = builder.build(&conv, true)?;
    if prompt.folded_system {
        eprintln!("note: the chat template has no system role; the system prompt went into the first user message");
    }
    println!("{}", json!({"prompt": prompt.text, "ids": prompt.ids}));
    Ok(())
}

/// One line: model name, parameters, quantization mix, context, threads, memory.
fn summary(engine: &Engine, session: &Session, template: &str, threads: usize) -> String {
    let c = &engine.config;
    let tensors = engine.file.tensors();
    let params: u64 = tensors.iter().map(|t| t.n_elements()).sum();
    let weight_bytes: u64 = tensors.iter().map(|t| t.nbytes()).sum();
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    for t in tensors {
        *by_type.entry(t.ty().to_string()).or_default() += t.nbytes();
    }
    let mut mix: Vec<(String, u64)> = by_type.into_iter().collect();
    mix.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mix: Vec<String> = mix
        .iter()
        .map(|(ty, b)| {
            format!(
                "{ty} {:.0}%",
                100.0 * *b as f64 / weight_bytes.max(1) as f64
            )
        })
        .collect();
    let kv = session.cache.bytes(c.n_kv_head, c.head_dim);
    let experts = if c.is_moe() {
        format!(", {} experts top-{}", c.n_expert, c.n_expert_used)
    } else {
        String::new()
    };
    format!(
        "{}: {} params{experts} | {} | ctx {} | {threads} threads | memory {} weights (mapped) + {} KV {} | template {template}",
        c.name,
        count(params as f64),
        mix.join(" "),
        session.cache.n_ctx,
        bytes(weight_bytes as f64),
        bytes(kv),
        session.cache.ty.name(),
    )
}

fn count(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.1}B", n / 1e9),
        n if n >= 1e6 => format!("{:.1}M", n / 1e6),
        n if n >= 1e3 => format!("{:.1}K", n / 1e3),
        n => format!("{n}"),
    }
}

fn bytes(n: f64) -> String {
    match n {
        n if n >= (1u64 << 30) as f64 => format!("{:.2} GiB", n / (1u64 << 30) as f64),
        n if n >= (1u64 << 20) as f64 => format!("{:.1} MiB", n / (1u64 << 20) as f64),
        n => format!("{:.1} KiB", n / 1024.0),
    }
}
