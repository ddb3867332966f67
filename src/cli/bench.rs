//! `tandem bench`: prompt and generation speed, bytes read per token, and the fraction of the
//! machine's memory read bandwidth (measured in the same run) that decoding achieves.

use super::common::{load_model, open_engine, ModelArgs};
use anyhow::{ensure, Context, Result};
use clap::Args;
use serde_json::json;
use tandem::backend::vulkan::GpuChoice;
use tandem::engine::Engine;
use tandem::model::Logits;
use tandem::sample::{Sampler, SamplerConfig};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt tokens per repetition.
    #[arg(
        short = 'p',
        long = "n-prompt",
        default_value_t = 64,
        allow_negative_numbers = true
    )]
    pub n_prompt: usize,
    /// Generated tokens per repetition.
    #[arg(
        short = 'n',
        long = "n-gen",
        default_value_t = 32,
        allow_negative_numbers = true
    )]
    pub n_gen: usize,
    /// Repetitions.
    #[arg(
        short = 'r',
        long = "reps",
        default_value_t = 3,
        allow_negative_numbers = true
    )]
    pub reps: usize,
    /// Print one JSON object (with `--gpu N`, a second one for the GPU kernels).
    #[arg(long = "json")]
    pub json: bool,
    /// With `--gpu N`: the weight formats whose GPU kernels are timed, e.g. `q4_0,q4_k` (default:
    /// all).
    #[arg(long = "gpu-types", value_delimiter = ',')]
    pub gpu_types: Vec<String>,
    /// With `--gpu N`: time only the GPU kernels, not the model.
    #[arg(long = "kernels-only")]
    pub kernels_only: bool,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let gpu = args.model.gpu;
    let explicit_gpu = matches!(gpu, GpuChoice::Index(_));
    anyhow::ensure!(
        explicit_gpu || (args.gpu_types.is_empty() && !args.kernels_only),
        "--gpu-types and --kernels-only need --gpu N"
    );
    let (json, types) = (args.json, args.gpu_types.clone());
    if !args.kernels_only {
        let engine = open_engine(&args.model)?;
        engine.install(|| bench(args, &engine))?;
    }
    if explicit_gpu {
        super::bench_gpu::run(gpu, &types, json)?;
    }
    Ok(())
}

fn bench(args: BenchArgs, engine: &Engine) -> Result<()> {
    let threads = engine.threads();
    let model = load_model(engine, args.json)?;
    let c = &engine.config;
    ensure!(args.n_prompt > 0, "-p must be at least 1 prompt token");
    let n_ctx = args
        .n_prompt
        .checked_add(args.n_gen)
        .and_then(|n| n.checked_add(1))
        .context("-p + -n does not fit in a context")?;
    // The KV-cache check (it must fit in memory) comes before the prompt is built.
    drop(engine.session(&model, n_ctx)?);
    let bytes_per_token = model.weights.bytes_per_token(c.n_expert_used);

    // Deterministic ids spread over the vocabulary (never the control tokens at the start).
    let prompt: Vec<u32> = (0..args.n_prompt)
        .map(|i| (3 + (i as u64 * 7919) % (c.n_vocab as u64 - 3)) as u32)
        .collect();
    let (mut pp, mut tg) = (Vec::new(), Vec::new());
    // Read bandwidth next to each timed repetition, and each repetition's fraction of it: on a
    // machine whose bandwidth drifts, a probe taken once would be compared with decoding done at
    // another moment.
    let (mut bws, mut fractions) = (Vec::new(), Vec::new());
    let mut probe = None;
    let mut rss = None;
    // One untimed warm-up repetition pages the weights in and settles the thread pool.
    for rep in 0..=args.reps.max(1) {
        let mut s = engine.session(&model, n_ctx)?;
        let logits = s.prefill(&prompt, Logits::Last, None)?;
        let mut sampler = Sampler::new(SamplerConfig::greedy());
        s.generate(logits, &mut sampler, args.n_gen, &[], |_| true)?;
        if rep == 0 {
            // Peak RSS of the model run (mapped weights included), read before the bandwidth
            // probe allocates its own 1 GiB buffer.
            rss = tandem::machine::peak_rss_bytes();
            continue;
        }
        pp.push(s.timings.prompt_tps());
        // The first generated token comes from the prefill logits, so n_gen tokens cost
        // n_gen - 1 forward passes; count passes, not tokens.
        let passes = s.timings.gen_tokens.saturating_sub(1).max(1);
        let tps = passes as f64 / s.timings.gen_time.as_secs_f64();
        tg.push(tps);
        let probe = match &mut probe {
            Some(p) => p,
            None => probe.insert(tandem::machine::ReadProbe::new(
                tandem::machine::DEFAULT_BYTES,
            )?),
        };
        let bw = probe.measure(3);
        bws.push(bw);
        fractions.push(tps * bytes_per_token / bw);
    }
    let (pp_mean, pp_sd) = mean_sd(&pp);
    let (tg_mean, tg_sd) = mean_sd(&tg);
    let achieved = tg_mean * bytes_per_token;
    let (bw, _) = mean_sd(&bws);
    let (fraction, fraction_sd) = mean_sd(&fractions);
    // Page sizes of the weights and of the probe: decoding from 4 KiB pages against a probe in
    // 2 MiB pages (or the reverse) compares two different things.
    let weights_huge = tandem::machine::huge_page_bytes(engine.file.bytes());
    // (huge-page bytes, all bytes) of the probe
    let probe_huge = probe
        .as_ref()
        .and_then(|p| Some((p.huge_page_bytes()?, p.bytes())));
    if args.json {
        println!(
            "{}",
            json!({
                "model": c.name, "threads": threads, "isa": tandem::quant::simd::detected().name(),
                "n_prompt": args.n_prompt, "n_gen": args.n_gen, "reps": args.reps,
                "pp_tps": pp_mean, "pp_tps_sd": pp_sd, "tg_tps": tg_mean, "tg_tps_sd": tg_sd,
                "bytes_per_token": bytes_per_token, "read_bw_bytes_per_s": bw,
                "achieved_bytes_per_s": achieved, "bw_fraction": fraction,
                "bw_fraction_sd": fraction_sd, "read_bw_per_rep": bws,
                "peak_rss_bytes": rss, "weights_bytes": engine.file.bytes().len(),
                "weights_huge_page_bytes": weights_huge, "probe_huge_page_bytes": probe_huge.map(|(h, _)| h),
            })
        );
    } else {
        println!(
            "model: {} ({threads} threads, {})",
            c.name,
            tandem::quant::simd::detected().name()
        );
        println!(
            "prompt     pp{:<5} {pp_mean:>10.2} ± {pp_sd:.2} tok/s",
            args.n_prompt
        );
        println!(
            "generation tg{:<5} {tg_mean:>10.2} ± {tg_sd:.2} tok/s",
            args.n_gen
        );
        println!("bytes read per token: {:.1} MB", bytes_per_token / 1e6);
        println!(
            "decode reads {:.2} GB/s of {:.2} GB/s measured read bandwidth: {:.1} ± {:.1}%",
            achieved / 1e9,
            bw / 1e9,
            100.0 * fraction,
            100.0 * fraction_sd
        );
        if let (Some(w), Some((p, p_all))) = (weights_huge, probe_huge) {
            println!(
                "in huge pages: {:.0}% of the weights, {:.0}% of the bandwidth probe",
                100.0 * w as f64 / engine.file.bytes().len().max(1) as f64,
                100.0 * p as f64 / p_all as f64
            );
        }
        if let Some(r) = rss {
            println!("peak RSS: {:.1} MB", r as f64 / 1e6);
        }
    }
    Ok(())
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}
