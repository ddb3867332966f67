//! What the subcommands share: loading a model, thread setup, sampling flags, output files.

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use tandem::gguf::GgufFile;
use tandem::model::weights::Weights;
use tandem::model::{Model, ModelConfig};
use tandem::sample::SamplerConfig;
use tandem::tensor::kv::KvType;
use tandem::tensor::matmul::Activations;
use tandem::tokenizer::Tokenizer;

#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// The GGUF model file.
    #[arg(short = 'm', long = "model")]
    pub model: PathBuf,
    /// Worker threads (default: the number of physical cores).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Context size in tokens (default: the model's, capped at 4096).
    #[arg(long = "ctx", short = 'c')]
    pub ctx: Option<usize>,
    /// KV cache element type: f16, f32 or q8_0.
    #[arg(long = "kv-type", default_value = "f16", value_parser = parse_kv)]
    pub kv_type: KvType,
    /// Activation precision for quantized weights: q8 (8-bit, fastest, as llama.cpp) or q16
    /// (two 8-bit passes: close to the exact result for the file's weights, slower).
    #[arg(long = "activations", default_value = "q8", value_parser = parse_acts)]
    pub activations: Activations,
}

fn parse_acts(s: &str) -> Result<Activations, String> {
    Activations::parse(s)
        .ok_or_else(|| format!("unknown activation precision `{s}` (expected q8 or q16)"))
}

fn parse_kv(s: &str) -> Result<KvType, String> {
    KvType::parse(s).ok_or_else(|| format!("unknown KV type `{s}` (expected f16, f32 or q8_0)"))
}

#[derive(Args, Clone, Debug)]
pub struct SamplingArgs {
    /// Temperature; 0 is greedy.
    #[arg(long = "temp", default_value_t = 0.8)]
    pub temp: f32,
    /// Top-k cut (0 disables).
    #[arg(long = "top-k", default_value_t = 40)]
    pub top_k: usize,
    /// Top-p (nucleus) cut (1 disables).
    #[arg(long = "top-p", default_value_t = 0.95)]
    pub top_p: f32,
    /// Min-p cut relative to the most likely token (0 disables).
    #[arg(long = "min-p", default_value_t = 0.05)]
    pub min_p: f32,
    /// Repetition penalty (1 disables).
    #[arg(long = "repeat-penalty", default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// How many recent tokens the repetition penalty considers.
    #[arg(long = "repeat-last-n", default_value_t = 64)]
    pub repeat_last_n: usize,
    /// Random seed.
    #[arg(long = "seed", default_value_t = 0x5EED)]
    pub seed: u64,
}

impl SamplingArgs {
    pub fn config(&self) -> SamplerConfig {
        SamplerConfig {
            temperature: self.temp,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: self.repeat_last_n,
            seed: self.seed,
        }
    }
}

/// Sets up the global thread pool once.
pub fn init_threads(threads: Option<usize>) -> Result<usize> {
    let n = threads
        .unwrap_or_else(tandem::machine::physical_cores)
        .max(1);
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .context("starting the thread pool")?;
    Ok(n)
}

/// Runs `work` on a thread of the global pool and waits for it. The forward pass's parallel loops
/// then start on a worker, which takes part in them, instead of being handed over from the main
/// thread and waited on; between them one thread fewer competes for the cores.
pub fn on_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| work())
}

/// An open model file with its parsed configuration and tokenizer.
pub struct Loaded {
    pub file: GgufFile,
    pub config: ModelConfig,
    pub tokenizer: Tokenizer,
}

impl Loaded {
    pub fn open(path: &Path) -> Result<Loaded> {
        let file =
            GgufFile::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let config =
            ModelConfig::from_gguf(&file).with_context(|| format!("{}", path.display()))?;
        let tokenizer =
            Tokenizer::from_gguf(&file).with_context(|| format!("{}", path.display()))?;
        Ok(Loaded {
            file,
            config,
            tokenizer,
        })
    }

    /// Binds the weights and pages the file in behind a progress bar, so that the first tokens
    /// are not slowed by page faults.
    pub fn model(&self, args: &ModelArgs, quiet: bool) -> Result<Model<'_>> {
        let weights = Weights::from_gguf(&self.file, &self.config)?;
        prefault(self.file.bytes(), quiet);
        Ok(Model::new(self.config.clone(), weights).with_activations(args.activations))
    }

    /// The context size to use: `--ctx`, else the trained context capped at 4096.
    pub fn n_ctx(&self, args: &ModelArgs) -> usize {
        args.ctx.unwrap_or(self.config.n_ctx_train.min(4096)).max(1)
    }
}

/// Touches every page of the mapping once.
fn prefault(bytes: &[u8], quiet: bool) {
    use rayon::prelude::*;
    const CHUNK: usize = 64 << 20;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(bytes.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("loading {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
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

/// Writes `bytes` to `path` through a temporary file and a rename, so no half-written file is
/// ever left behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}tmp",
        path.extension()
            .map(|e| format!("{}.", e.to_string_lossy()))
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}
