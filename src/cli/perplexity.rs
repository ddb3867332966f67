//! `tandem perplexity`: perplexity over a text, and KL divergence against a saved base run,
//! chunked the way llama.cpp's perplexity tool does so the numbers compare.
//!
//! Chunk `c` is tokens `[c*n_ctx, (c+1)*n_ctx)` with its first token replaced by BOS; positions
//! `j` in `[n_ctx/2, n_ctx-2]` are scored, each predicting token `j+1`. The base file keeps the
//! base model's log-probabilities in f32 (llama.cpp rounds them to 16 bits), so the KL divergence
//! measured against it carries no storage error.

use super::common::{load_model, n_ctx, open_engine, ModelArgs};
use anyhow::{bail, ensure, Context, Result};
use byteorder::{LittleEndian, ReadBytesExt, WriteBytesExt};
use clap::Args;
use serde_json::json;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use tandem::engine::Engine;
use tandem::model::Logits;
use tandem::progress::DelayedBar;

const MAGIC: &[u8; 4] = b"TKLB";
const VERSION: u32 = 1;

#[derive(Args, Debug)]
pub struct PerplexityArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The text file (its exact bytes, tokenized with BOS first).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// A JSON file with the token ids to use (`{"tokens": [...]}` or a bare array).
    #[arg(long = "tokens-json", conflicts_with = "file")]
    pub tokens_json: Option<PathBuf>,
    /// Use at most this many chunks.
    #[arg(long = "chunks", allow_negative_numbers = true)]
    pub chunks: Option<usize>,
    /// Save this run's log-probabilities as the base for later `--kl-base` runs.
    #[arg(long = "save-kl-base", conflicts_with = "kl_base")]
    pub save_kl_base: Option<PathBuf>,
    /// Compare with a saved base run (its tokens are used; -f is not needed).
    #[arg(long = "kl-base")]
    pub kl_base: Option<PathBuf>,
    /// Print the results as one JSON object.
    #[arg(long = "json")]
    pub json: bool,
}

struct BaseHeader {
    n_ctx: usize,
    n_vocab: usize,
    tokens: Vec<u32>,
}

pub fn run(args: PerplexityArgs) -> Result<()> {
    let engine = open_engine(&args.model)?;
    engine.install(|| measure(args, &engine))
}

fn measure(mut args: PerplexityArgs, engine: &Engine) -> Result<()> {
    let n_vocab = engine.config.n_vocab;
    let mut base = match &args.kl_base {
        Some(p) => {
            let mut r =
                BufReader::new(File::open(p).with_context(|| format!("opening {}", p.display()))?);
            let h = read_header(&mut r, p)?;
            ensure!(
                h.n_vocab == n_vocab,
                "{}: base vocabulary is {}, this model's is {n_vocab}",
                p.display(),
                h.n_vocab
            );
            Some((h, r))
        }
        None => None,
    };
    let (n_ctx, tokens) = match &base {
        Some((h, _)) => (h.n_ctx, h.tokens.clone()),
        None => {
            let n_ctx = n_ctx(engine, &args.model, 512);
            (n_ctx, input_tokens(&args, engine)?)
        }
    };
    args.model.ctx = Some(n_ctx);
    ensure!(n_ctx >= 4, "--ctx {n_ctx} is too small to score anything");
    let mut n_chunk = tokens.len() / n_ctx;
    if let Some(c) = args.chunks {
        n_chunk = n_chunk.min(c);
    }
    ensure!(
        n_chunk > 0,
        "{} tokens are fewer than one {n_ctx}-token chunk",
        tokens.len()
    );
    let bos = engine.tokenizer.bos.unwrap_or(1);
    let model = load_model(engine, args.json)?;
    let first = n_ctx / 2;

    let mut save = match &args.save_kl_base {
        Some(p) => {
            let tmp = p.with_extension("tmp");
            let mut w = BufWriter::new(
                File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
            );
            w.write_all(MAGIC)?;
            for v in [VERSION, n_ctx as u32, n_vocab as u32, n_chunk as u32] {
                w.write_u32::<LittleEndian>(v)?;
            }
            for &t in &tokens[..n_chunk * n_ctx] {
                w.write_u32::<LittleEndian>(t)?;
            }
            Some((w, tmp, p.clone()))
        }
        None => None,
    };

    let mut nll = Vec::new(); // per scored position, this model
    let mut stats = KlStats::default();
    let mut base_row = vec![0f32; n_vocab];
    let mut bar = DelayedBar::new("perplexity: chunk", n_chunk as u64, args.json);
    for c in 0..n_chunk {
        let mut chunk = tokens[c * n_ctx..(c + 1) * n_ctx].to_vec();
        chunk[0] = bos;
        let mut session = engine.session(&model, n_ctx)?;
        let logits = session.prefill(&chunk, Logits::All, None)?; // [n_ctx, n_vocab]
        for j in first..n_ctx - 1 {
            let lp = log_softmax(&logits[j * n_vocab..(j + 1) * n_vocab]);
            let next = chunk[j + 1] as usize;
            nll.push(-lp[next]);
            if let Some((w, _, _)) = &mut save {
                for &v in &lp {
                    w.write_f32::<LittleEndian>(v as f32)?;
                }
            }
            if let Some((_, r)) = &mut base {
                r.read_f32_into::<LittleEndian>(&mut base_row)
                    .context("reading the KL base")?;
                stats.add(&lp, &base_row, next);
            }
        }
        let running = (nll.iter().sum::<f64>() / nll.len() as f64).exp();
        bar.inc(1, Some(format!("ppl {running:.4}")));
    }
    drop(bar);
    if let Some((mut w, tmp, path)) = save {
        w.flush()?;
        w.get_ref().sync_all()?;
        drop(w);
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
    }

    let mean_nll = nll.iter().sum::<f64>() / nll.len() as f64;
    let ppl = mean_nll.exp();
    let mut out = json!({"n_ctx": n_ctx, "n_chunk": n_chunk, "n_scored": nll.len(), "ppl": ppl});
    if base.is_some() {
        out["kl"] = stats.summary();
    }
    if args.json {
        println!("{out}");
    } else {
        println!(
            "chunks {n_chunk} × {n_ctx} tokens, {} scored positions",
            nll.len()
        );
        println!("perplexity: {ppl:.4}");
        if base.is_some() {
            let k = &out["kl"];
            println!(
                "base perplexity:   {:.4}",
                k["ppl_base"].as_f64().unwrap_or(f64::NAN)
            );
            println!(
                "mean ln(PPL/PPL base): {:.6}",
                k["mean_ln_ppl_ratio"].as_f64().unwrap_or(f64::NAN)
            );
            println!(
                "mean KLD: {:.6} ± {:.6}",
                k["mean_kld"].as_f64().unwrap_or(f64::NAN),
                k["mean_kld_pm"].as_f64().unwrap_or(f64::NAN)
            );
            println!(
                "median KLD: {:.6}  99%: {:.6}  max: {:.6}",
                k["median_kld"].as_f64().unwrap_or(f64::NAN),
                k["p99_kld"].as_f64().unwrap_or(f64::NAN),
                k["max_kld"].as_f64().unwrap_or(f64::NAN)
            );
            println!(
                "same top token: {:.3} %",
                k["same_top_pct"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    Ok(())
}

fn input_tokens(args: &PerplexityArgs, engine: &Engine) -> Result<Vec<u32>> {
    if let Some(p) = &args.tokens_json {
        let v: serde_json::Value = serde_json::from_slice(
            &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("{}: not JSON", p.display()))?;
        let arr = v
            .get("tokens")
            .unwrap_or(&v)
            .as_array()
            .with_context(|| format!("{}: no token array", p.display()))?;
        return arr
            .iter()
            .map(|t| {
                t.as_u64()
                    .filter(|&t| t <= u32::MAX as u64)
                    .map(|t| t as u32)
            })
            .collect::<Option<Vec<_>>>()
            .with_context(|| format!("{}: tokens must be non-negative integers", p.display()));
    }
    let Some(p) = &args.file else {
        bail!("give the text with -f FILE (or --tokens-json, or --kl-base)")
    };
    let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 at byte {}",
            p.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok(engine.tokenizer.encode(&text, true)?)
}

fn read_header(r: &mut impl Read, p: &Path) -> Result<BaseHeader> {
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic)
        .with_context(|| format!("{}: too short for a KL base", p.display()))?;
    ensure!(
        &magic == MAGIC,
        "{}: not a tandem KL base file",
        p.display()
    );
    let version = r.read_u32::<LittleEndian>()?;
    ensure!(
        version == VERSION,
        "{}: KL base version {version}, expected {VERSION}",
        p.display()
    );
    let n_ctx = r.read_u32::<LittleEndian>()? as usize;
    let n_vocab = r.read_u32::<LittleEndian>()? as usize;
    let n_chunk = r.read_u32::<LittleEndian>()? as usize;
    let n_tokens = n_ctx.checked_mul(n_chunk).filter(|&n| n > 0);
    let len = std::fs::metadata(p)?.len() as usize;
    // The file holds the tokens and one f32 row per scored position: check before allocating.
    let need = n_tokens.and_then(|n| n.checked_mul(4)).and_then(|t| {
        (n_ctx.checked_sub(1 + n_ctx / 2)?)
            .checked_mul(n_chunk)?
            .checked_mul(n_vocab)?
            .checked_mul(4)?
            .checked_add(t + 20)
    });
    ensure!(need == Some(len), "{}: size {len} does not match its header (n_ctx {n_ctx}, vocab {n_vocab}, chunks {n_chunk})", p.display());
    let mut tokens = vec![0u32; n_ctx * n_chunk];
    r.read_u32_into::<LittleEndian>(&mut tokens)?;
    Ok(BaseHeader {
        n_ctx,
        n_vocab,
        tokens,
    })
}

/// Numerically stable log-softmax in f64.
fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = logits
        .iter()
        .map(|&v| (v as f64 - max).exp())
        .sum::<f64>()
        .ln()
        + max;
    logits.iter().map(|&v| v as f64 - lse).collect()
}

/// Running KL-divergence statistics, as llama.cpp's perplexity tool reports them.
#[derive(Default)]
struct KlStats {
    kld: Vec<f64>,
    nll_q: Vec<f64>,
    nll_b: Vec<f64>,
    same_top: usize,
}

impl KlStats {
    fn add(&mut self, lq: &[f64], lb: &[f32], next: usize) {
        let kld: f64 = lb
            .iter()
            .zip(lq)
            .map(|(&b, &q)| (b as f64).exp() * (b as f64 - q))
            .sum();
        self.kld.push(kld);
        self.nll_q.push(-lq[next]);
        self.nll_b.push(-(lb[next] as f64));
        let argmax = |it: &mut dyn Iterator<Item = f64>| {
            it.enumerate()
                .fold(
                    (0, f64::NEG_INFINITY),
                    |b, (i, v)| if v > b.1 { (i, v) } else { b },
                )
                .0
        };
        if argmax(&mut lq.iter().copied()) == argmax(&mut lb.iter().map(|&v| v as f64)) {
            self.same_top += 1;
        }
    }

    fn summary(&self) -> serde_json::Value {
        let n = self.kld.len() as f64;
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let mean_kld = mean(&self.kld);
        let var = self.kld.iter().map(|k| (k - mean_kld).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        let mut sorted = self.kld.clone();
        sorted.sort_by(f64::total_cmp);
        let pct = |q: f64| {
            // Linear interpolation between closest ranks, as numpy's percentile does.
            let pos = q * (sorted.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        };
        let p = self.same_top as f64 / n;
        json!({
            "ppl_q": mean(&self.nll_q).exp(),
            "ppl_base": mean(&self.nll_b).exp(),
            "mean_ln_ppl_ratio": mean(&self.nll_q) - mean(&self.nll_b),
            "mean_kld": mean_kld,
            "mean_kld_pm": (var / n).sqrt(),
            "median_kld": pct(0.5),
            "p99_kld": pct(0.99),
            "max_kld": sorted.last().copied().unwrap_or(0.0),
            "same_top_pct": 100.0 * p,
            "same_top_pct_pm": 100.0 * (p * (1.0 - p) / (n - 1.0).max(1.0)).sqrt(),
        })
    }
}
