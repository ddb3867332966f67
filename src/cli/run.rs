//! `tandem run`: generate text from a prompt.

use super::common::{
    check_writable, default_ctx, load_model, n_ctx, open_engine, prefill, read_utf8, write_atomic,
    ModelArgs, SamplingArgs,
};
use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use tandem::engine::Engine;
use tandem::model::forward::Routing;
use tandem::model::Logits;
use tandem::sample::Sampler;
use tandem::session::Stop;

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt text.
    #[arg(short = 'p', long = "prompt", conflicts_with_all = ["prompt_file", "tokens"])]
    pub prompt: Option<String>,
    /// Read the prompt from a file (its exact bytes, as UTF-8).
    #[arg(long = "prompt-file", conflicts_with = "tokens")]
    pub prompt_file: Option<PathBuf>,
    /// The prompt as token ids: `1,415,2936`.
    #[arg(long = "tokens", value_delimiter = ',')]
    pub tokens: Option<Vec<u32>>,
    /// Tokens to generate.
    #[arg(
        short = 'n',
        long = "n-predict",
        default_value_t = 128,
        allow_negative_numbers = true
    )]
    pub n_predict: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Keep going past end-of-sequence tokens.
    #[arg(long = "ignore-eos")]
    pub ignore_eos: bool,
    /// Keep only the last tokens of a prompt longer than the context instead of failing.
    #[arg(long = "truncate")]
    pub truncate: bool,
    /// Write every prompt position's logits here: little-endian f32, [n_prompt_tokens, n_vocab].
    #[arg(long = "logits-out")]
    pub logits_out: Option<PathBuf>,
    /// Write the experts chosen for every prompt position (MoE models) here, as JSON.
    #[arg(long = "routing-out")]
    pub routing_out: Option<PathBuf>,
    /// Print the prompt before the generated text (it is printed, dimmed, whenever stdout is a
    /// terminal).
    #[arg(long = "echo")]
    pub echo: bool,
    /// Print one JSON object (ids, text, seed, timings) instead of streaming text.
    #[arg(long = "json")]
    pub json: bool,
}

pub fn run(args: RunArgs) -> Result<()> {
    // Output paths are checked before the work whose results they would hold.
    if let Some(path) = &args.logits_out {
        check_writable(path, "--logits-out")?;
    }
    if let Some(path) = &args.routing_out {
        check_writable(path, "--routing-out")?;
    }
    let engine = open_engine(&args.model)?;
    engine.install(|| generate(args, &engine))
}

fn generate(args: RunArgs, engine: &Engine) -> Result<()> {
    let threads = engine.threads();
    let tok = &engine.tokenizer;
    let mut prompt = match (&args.prompt, &args.prompt_file, &args.tokens) {
        (_, _, Some(ids)) => ids.clone(),
        (_, Some(f), _) => tok.encode(&read_utf8(f)?, true)?,
        (Some(p), _, _) => tok.encode(p, true)?,
        (None, None, None) => bail!("give a prompt with -p, --prompt-file or --tokens"),
    };
    if prompt.is_empty() {
        bail!("the prompt is empty (and this model adds no BOS token)");
    }
    let n_ctx = n_ctx(engine, &args.model, default_ctx(engine));
    if prompt.len() > n_ctx {
        if !args.truncate {
            bail!(
                "the prompt has {} tokens but the context holds {n_ctx}: raise --ctx or pass --truncate",
                prompt.len()
            );
        }
        let keep = truncated_len(n_ctx, args.n_predict);
        eprintln!(
            "note: the prompt has {} tokens; keeping its last {keep}, leaving room for -n {}",
            prompt.len(),
            args.n_predict
        );
        prompt.drain(..prompt.len() - keep);
    }
    let model = load_model(engine, args.json)?;
    let sampling = args.sampling.config();
    if !args.json {
        eprintln!(
            "{}: {} layers, {}{} | ctx {n_ctx}, kv {}, {threads} threads, {} | seed {}",
            engine.config.name,
            engine.config.n_layer,
            if engine.config.is_moe() {
                format!(
                    "{} experts top-{}, ",
                    engine.config.n_expert, engine.config.n_expert_used
                )
            } else {
                String::new()
            },
            format_args!("d_model {}", engine.config.d_model),
            args.model.kv_type.name(),
            tandem::quant::simd::detected().name(),
            sampling.seed,
        );
    }
    let mut session = engine.session(&model, n_ctx)?;
    let want = if args.logits_out.is_some() {
        Logits::All
    } else {
        Logits::Last
    };
    let mut routing = Routing::new();
    let logits = prefill(
        &mut session,
        &prompt,
        want,
        args.routing_out.is_some().then_some(&mut routing),
        args.json,
    )?;
    let n_vocab = engine.config.n_vocab;
    if let Some(path) = &args.logits_out {
        write_atomic(path, bytemuck::cast_slice(&logits))?;
    }
    if let Some(path) = &args.routing_out {
        write_atomic(path, routing_json(&routing).to_string().as_bytes())?;
    }
    let last = logits[logits.len() - n_vocab..].to_vec();

    let stdout = std::io::stdout();
    let echo = !args.json && (args.echo || stdout.is_terminal());
    if echo {
        let text = tok.decode(&prompt)?;
        let mut out = stdout.lock();
        let _ = if stdout.is_terminal() {
            write!(out, "\x1b[2m{text}\x1b[0m")
        } else {
            write!(out, "{text}")
        };
    }
    let eos: Vec<u32> = if args.ignore_eos {
        vec![]
    } else {
        tok.eos.into_iter().collect()
    };
    let mut sampler = Sampler::new(sampling.clone());
    let mut generated = Vec::new();
    // The text is decoded in the context of the prompt (a first token's leading space is kept),
    // the same for the stream and for `--json`, so that prompt + text reads as the model wrote.
    let mut text = String::new();
    let mut stream = tok.stream(&prompt);
    let mut failed = None;
    let stop = session.generate(last, &mut sampler, args.n_predict, &eos, |id| {
        generated.push(id);
        match stream.step(id) {
            Ok(Some(piece)) => {
                if !args.json {
                    let mut out = stdout.lock();
                    let _ = out.write_all(piece.as_bytes()).and_then(|_| out.flush());
                }
                text.push_str(&piece);
            }
            Ok(None) => {}
            Err(e) => {
                failed = Some(e);
                return false;
            }
        }
        true
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    let t = session.timings;
    if args.json {
        let obj = json!({
            "prompt_ids": prompt,
            "generated_ids": generated,
            "text": text,
            "stop": format!("{stop:?}").to_lowercase(),
            "seed": sampling.seed,
            "timings": {
                "prompt_tokens": t.prompt_tokens, "prompt_ms": t.prompt_time.as_secs_f64() * 1e3,
                "prompt_tps": t.prompt_tps(), "gen_tokens": t.gen_tokens,
                "gen_ms": t.gen_time.as_secs_f64() * 1e3, "gen_tps": t.gen_tps(),
            }
        });
        println!("{obj}");
    } else {
        println!();
        if stop == Stop::ContextFull {
            eprintln!("[context full at {n_ctx} tokens]");
        }
        eprintln!(
            "prompt: {} tokens, {:.1} tok/s | generation: {} tokens, {:.1} tok/s",
            t.prompt_tokens,
            t.prompt_tps(),
            t.gen_tokens,
            t.gen_tps()
        );
    }
    Ok(())
}

/// Prompt tokens `--truncate` keeps: as many as leave room for `n_predict` generated tokens, and
/// at least one.
fn truncated_len(n_ctx: usize, n_predict: usize) -> usize {
    n_ctx.saturating_sub(n_predict).max(1)
}

/// The fixtures' routing format: per layer `{layer, experts: [[e1, e2], …], weights: [[w1, w2], …]}`,
/// largest weight first.
fn routing_json(routing: &Routing) -> serde_json::Value {
    routing
        .iter()
        .enumerate()
        .map(|(layer, routes)| {
            json!({
                "layer": layer,
                "experts": routes.iter().map(|r| r.experts.clone()).collect::<Vec<_>>(),
                "weights": routes.iter().map(|r| r.weights.clone()).collect::<Vec<_>>(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::truncated_len;

    #[test]
    fn truncation_leaves_room_for_the_generation() {
        assert_eq!(truncated_len(64, 10), 54);
        assert_eq!(truncated_len(64, 0), 64);
        assert_eq!(truncated_len(64, 64), 1);
        assert_eq!(truncated_len(64, 1000), 1);
    }
}
