//! `tandem run`: generate text from a prompt.

use super::common::{init_threads, on_pool, write_atomic, Loaded, ModelArgs, SamplingArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use tandem::model::forward::Routing;
use tandem::model::Logits;
use tandem::sample::Sampler;
use tandem::session::{Session, Stop};

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
    #[arg(short = 'n', long = "n-predict", default_value_t = 128)]
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
    /// Print one JSON object (ids, text, timings) instead of streaming text.
    #[arg(long = "json")]
    pub json: bool,
}

pub fn run(args: RunArgs) -> Result<()> {
    let threads = init_threads(args.model.threads)?;
    on_pool(|| generate(args, threads))
}

fn generate(args: RunArgs, threads: usize) -> Result<()> {
    let loaded = Loaded::open(&args.model.model)?;
    let tok = &loaded.tokenizer;
    let mut prompt = match (&args.prompt, &args.prompt_file, &args.tokens) {
        (_, _, Some(ids)) => ids.clone(),
        (_, Some(f), _) => {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            tok.encode(&text, true)?
        }
        (Some(p), _, _) => tok.encode(p, true)?,
        (None, None, None) => bail!("give a prompt with -p, --prompt-file or --tokens"),
    };
    if prompt.is_empty() {
        bail!("the prompt is empty (and this model adds no BOS token)");
    }
    let n_ctx = loaded.n_ctx(&args.model);
    if prompt.len() > n_ctx {
        if !args.truncate {
            bail!(
                "the prompt has {} tokens but the context holds {n_ctx}: raise --ctx or pass --truncate",
                prompt.len()
            );
        }
        prompt.drain(..prompt.len() - n_ctx);
    }
    let model = loaded.model(&args.model, args.json)?;
    if !args.json {
        eprintln!(
            "{}: {} layers, {}{} | ctx {n_ctx}, kv {}, {threads} threads, {}",
            loaded.config.name,
            loaded.config.n_layer,
            if loaded.config.is_moe() {
                format!(
                    "{} experts top-{}, ",
                    loaded.config.n_expert, loaded.config.n_expert_used
                )
            } else {
                String::new()
            },
            format_args!("d_model {}", loaded.config.d_model),
            args.model.kv_type.name(),
            tandem::quant::simd::detected().name(),
        );
    }
    let mut session =
        Session::new(&model, n_ctx, args.model.kv_type).map_err(anyhow::Error::msg)?;
    let want = if args.logits_out.is_some() {
        Logits::All
    } else {
        Logits::Last
    };
    let mut routing = Routing::new();
    let logits = session.prefill(
        &prompt,
        want,
        args.routing_out.is_some().then_some(&mut routing),
    )?;
    let n_vocab = loaded.config.n_vocab;
    if let Some(path) = &args.logits_out {
        write_atomic(path, bytemuck::cast_slice(&logits))?;
    }
    if let Some(path) = &args.routing_out {
        write_atomic(path, routing_json(&routing).to_string().as_bytes())?;
    }
    let last = logits[logits.len() - n_vocab..].to_vec();

    let eos: Vec<u32> = if args.ignore_eos {
        vec![]
    } else {
        tok.eos.into_iter().collect()
    };
    let mut sampler = Sampler::new(args.sampling.config());
    let mut generated = Vec::new();
    let mut stream = tok.stream(&prompt);
    let stdout = std::io::stdout();
    let mut failed = None;
    let stop = session.generate(last, &mut sampler, args.n_predict, &eos, |id| {
        generated.push(id);
        if !args.json {
            match stream.step(id) {
                Ok(Some(text)) => {
                    let mut out = stdout.lock();
                    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
                }
                Ok(None) => {}
                Err(e) => {
                    failed = Some(e);
                    return false;
                }
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
            "text": tok.decode(&generated)?,
            "stop": format!("{stop:?}").to_lowercase(),
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
