//! What the subcommands share: opening the engine from the flags, loading the model, sampling
//! flags, output files.

use anyhow::{anyhow, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use tandem::backend::offload::{human_bytes, parse_bytes, ExpertsOnGpu, GpuSettings, GpuStatus};
use tandem::backend::vulkan::{GpuChoice, GpuOptions};
use tandem::engine::{Engine, EngineOptions};
use tandem::gguf::GgufFile;
use tandem::model::forward::Routing;
use tandem::model::{Logits, Model};
use tandem::progress::DelayedBar;
use tandem::sample::{Param, SamplerConfig};
use tandem::session::{Session, PREFILL_BATCH};
use tandem::tensor::kv::KvType;
use tandem::tensor::matmul::Activations;

#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// The GGUF model file.
    #[arg(short = 'm', long = "model")]
    pub model: PathBuf,
    /// Worker threads, at most the machine's logical CPUs (default: the number of physical
    /// cores).
    #[arg(short = 't', long = "threads", allow_negative_numbers = true, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Context size in tokens (default: the model's, capped at 4096; for perplexity, 512).
    #[arg(long = "ctx", short = 'c', allow_negative_numbers = true, value_parser = parse_ctx)]
    pub ctx: Option<usize>,
    /// KV cache element type: f16, f32 or q8_0.
    #[arg(long = "kv-type", default_value = "f16", value_parser = parse_kv)]
    pub kv_type: KvType,
    /// Activation precision for quantized weights: q8 (8-bit, fastest, as llama.cpp) or q16
    /// (two 8-bit passes: close to the exact result for the file's weights, slower).
    #[arg(long = "activations", default_value = "q8", value_parser = parse_acts)]
    pub activations: Activations,
    /// The Vulkan device for experts: an index from `tandem devices`, `auto` (the first discrete
    /// GPU, else integrated; never a CPU driver) or `none`.
    #[arg(long = "gpu", default_value = "auto", value_parser = parse_gpu)]
    pub gpu: GpuChoice,
    /// How many experts go to the GPU: `all` that fit the VRAM budget, `none`, or a count, taken
    /// in (layer, expert) order.
    #[arg(long = "gpu-experts", default_value = "all", value_parser = parse_gpu_experts)]
    pub gpu_experts: ExpertsOnGpu,
    /// Device memory the experts may take, e.g. `6G` or `512M` (default: what the device reports
    /// free, less 10% and at least 512 MiB).
    #[arg(long = "vram-budget", value_parser = parse_budget)]
    pub vram_budget: Option<u64>,
}

fn parse_gpu(s: &str) -> Result<GpuChoice, String> {
    GpuChoice::parse(s).ok_or_else(|| {
        format!("`{s}` is not a device (expected a number from `tandem devices`, auto or none)")
    })
}

fn parse_gpu_experts(s: &str) -> Result<ExpertsOnGpu, String> {
    ExpertsOnGpu::parse(s)
        .ok_or_else(|| format!("`{s}` is not an expert count (expected all, none or a number)"))
}

fn parse_budget(s: &str) -> Result<u64, String> {
    parse_bytes(s).ok_or_else(|| format!("`{s}` is not a size (expected e.g. 6G, 512M or 4096)"))
}

fn parse_acts(s: &str) -> Result<Activations, String> {
    Activations::parse(s)
        .ok_or_else(|| format!("unknown activation precision `{s}` (expected q8 or q16)"))
}

fn parse_kv(s: &str) -> Result<KvType, String> {
    KvType::parse(s).ok_or_else(|| format!("unknown KV type `{s}` (expected f16, f32 or q8_0)"))
}

fn parse_count(s: &str) -> Result<usize, String> {
    s.parse()
        .map_err(|_| format!("`{s}` is not a whole number from 0 to {}", usize::MAX))
}

fn parse_threads(s: &str) -> Result<usize, String> {
    tandem::machine::check_threads(parse_count(s)?)
}

fn parse_ctx(s: &str) -> Result<usize, String> {
    match parse_count(s)? {
        0 => Err("a context of 0 tokens holds nothing; give at least 1".into()),
        n => Ok(n),
    }
}

/// A float sampling flag, checked by the same rule as the REPL's `/set`.
fn parse_param(s: &str, param: Param) -> Result<f32, String> {
    let v = s
        .parse::<f32>()
        .map_err(|_| format!("`{s}` is not a number"))?;
    param.check(v)
}

#[derive(Args, Clone, Debug)]
pub struct SamplingArgs {
    /// Temperature, 0 to 100; 0 is greedy.
    #[arg(long = "temp", default_value_t = 0.8, allow_negative_numbers = true,
          value_parser = |s: &str| parse_param(s, Param::Temperature))]
    pub temp: f32,
    /// Top-k cut (0 disables).
    #[arg(long = "top-k", default_value_t = 40, allow_negative_numbers = true, value_parser = parse_count)]
    pub top_k: usize,
    /// Top-p (nucleus) cut, 0 to 1 (1 disables).
    #[arg(long = "top-p", default_value_t = 0.95, allow_negative_numbers = true,
          value_parser = |s: &str| parse_param(s, Param::TopP))]
    pub top_p: f32,
    /// Min-p cut relative to the most likely token, 0 to 1 (0 disables).
    #[arg(long = "min-p", default_value_t = 0.05, allow_negative_numbers = true,
          value_parser = |s: &str| parse_param(s, Param::MinP))]
    pub min_p: f32,
    /// Repetition penalty, above 0 and at most 100 (1 disables).
    #[arg(long = "repeat-penalty", default_value_t = 1.0, allow_negative_numbers = true,
          value_parser = |s: &str| parse_param(s, Param::RepeatPenalty))]
    pub repeat_penalty: f32,
    /// How many recent tokens the repetition penalty considers.
    #[arg(long = "repeat-last-n", default_value_t = 64, allow_negative_numbers = true, value_parser = parse_count)]
    pub repeat_last_n: usize,
    /// Random seed (default: a random one, printed so that the run can be repeated).
    #[arg(long = "seed", allow_negative_numbers = true)]
    pub seed: Option<u64>,
}

impl SamplingArgs {
    /// The sampler settings, with `--seed` or else a fresh random seed.
    pub fn config(&self) -> SamplerConfig {
        SamplerConfig {
            temperature: self.temp,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: self.repeat_last_n,
            seed: self.seed.unwrap_or_else(random_seed),
        }
    }
}

/// A seed that differs from run to run: std's hash keys are drawn from the OS's random source.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Opens the model file as an engine with the flags' threads, KV type and activations.
pub fn open_engine(args: &ModelArgs) -> Result<Engine> {
    let options = EngineOptions {
        threads: args.threads,
        kv_type: args.kv_type,
        activations: args.activations,
        gpu: GpuSettings {
            choice: args.gpu,
            experts: args.gpu_experts,
            vram_budget: args.vram_budget,
            options: GpuOptions::default(),
        },
    };
    Ok(Engine::open(&args.model, options)?)
}

/// Opens a GGUF file for the commands that read it without running it.
pub fn open_gguf(path: &Path) -> Result<GgufFile> {
    Ok(tandem::engine::open_file(path)?)
}

/// Binds the weights, uploads the experts the GPU flags ask for, and pages the file in, each
/// behind a progress bar, so that the first tokens are not slowed by page faults. Says on stderr
/// where the experts went (and, always, why a GPU asked for was not used).
pub fn load_model(engine: &Engine, quiet: bool) -> Result<Model<'_>> {
    let bar = byte_bar("uploading experts", quiet);
    let (model, status) = engine.model_with_gpu(&mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    match status {
        GpuStatus::Cpu => {}
        GpuStatus::Fallback(why) => eprintln!("gpu: {why}; running on the CPU"),
        GpuStatus::Gpu {
            device,
            experts,
            of,
            bytes,
        } if !quiet => eprintln!(
            "gpu: {experts} of {of} experts on {device} ({})",
            human_bytes(bytes)
        ),
        GpuStatus::Gpu { .. } => {}
    }
    prefault(engine.file.bytes(), quiet);
    Ok(model)
}

/// The context size to use: `--ctx`, else `default`; with a warning when it is longer than the
/// model was trained on.
pub fn n_ctx(engine: &Engine, args: &ModelArgs, default: usize) -> usize {
    let n_ctx = args.ctx.unwrap_or(default);
    let trained = engine.config.n_ctx_train;
    if n_ctx > trained {
        eprintln!(
            "warning: --ctx {n_ctx} is longer than the {trained} tokens this model was trained on; text past {trained} tokens will likely degrade"
        );
    }
    n_ctx
}

/// The trained context capped at 4096: the default for `run`, `chat` and `bench`.
pub fn default_ctx(engine: &Engine) -> usize {
    engine.config.n_ctx_train.clamp(1, 4096)
}

/// A bar counting bytes, hidden when `quiet`.
fn byte_bar(label: &str, quiet: bool) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    let template = format!("{label} {{bar:30}} {{bytes}}/{{total_bytes}} {{bytes_per_sec}}");
    bar.set_style(
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Touches every page of the mapping once.
fn prefault(bytes: &[u8], quiet: bool) {
    use rayon::prelude::*;
    const CHUNK: usize = 64 << 20;
    let bar = byte_bar("loading", quiet);
    bar.set_length(bytes.len() as u64);
    for chunk in bytes.chunks(CHUNK) {
        let sum: u64 = chunk
            .par_chunks(1 << 20)
            .map(|c| c.iter().step_by(4096).map(|&b| b as u64).sum::<u64>())
            .sum();
        std::hint::black_box(sum);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
}

/// Feeds `ids` in the session's prefill batches, with a progress bar once it takes more than a
/// second (hidden when `quiet`). The batches are those one `prefill` call makes, so the result
/// is the same.
pub fn prefill(
    session: &mut Session,
    ids: &[u32],
    want: Logits,
    mut routing: Option<&mut Routing>,
    quiet: bool,
) -> Result<Vec<f32>> {
    let mut bar = DelayedBar::new("prefill", ids.len() as u64, quiet);
    let mut out = Vec::new();
    for chunk in ids.chunks(PREFILL_BATCH) {
        let logits = session.prefill(chunk, want, routing.as_deref_mut())?;
        match want {
            Logits::All => out.extend_from_slice(&logits),
            Logits::Last => out = logits,
        }
        bar.inc(chunk.len() as u64, None);
    }
    Ok(out)
}

/// Reads a text file, naming the byte where it stops being UTF-8.
pub fn read_utf8(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "{}: not UTF-8 at byte {}",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// Fails now, before any work, if `path` cannot be written (a missing directory, no permission):
/// creates and removes the temporary file [`write_atomic`] will write.
pub fn check_writable(path: &Path, flag: &str) -> Result<()> {
    let tmp = tmp_path(path);
    std::fs::File::create(&tmp)
        .with_context(|| format!("{flag} {}: cannot write {}", path.display(), tmp.display()))?;
    std::fs::remove_file(&tmp).with_context(|| format!("removing {}", tmp.display()))
}

fn tmp_path(path: &Path) -> PathBuf {
    path.with_extension(format!(
        "{}tmp",
        path.extension()
            .map(|e| format!("{}.", e.to_string_lossy()))
            .unwrap_or_default()
    ))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so no half-written file is
/// ever left behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// The error and its causes, `: `-separated, leaving out a cause whose text the message already
/// holds (errors whose own message repeats their source would otherwise print it twice).
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}
