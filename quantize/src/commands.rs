//! The commands: conversion (from a model directory or a GGUF file) and `synth`.

use crate::catalog::Catalog;
use crate::cli::{Cli, Command, ConvertArgs, OutputArgs, SynthArgs};
use crate::ftype::FileType;
use crate::gguf_source::GgufSource;
use crate::hf::config::{read_config, read_params_json};
use crate::hf::safetensors::SafetensorsSource;
use crate::hf::{shard_files, tokenizer::read_vocab};
use crate::naming::{count_params, general_info};
use crate::output::{check_destination, check_written, print_plan, print_summary};
use crate::params::requantized_metadata;
use crate::params::{build_metadata, GeneralInfo, ModelParams};
use crate::plan::{assign_types, map_source, quantize_order, Planned};
use crate::rules::{is_quantizable, ModelShape, TypeRules};
use crate::source::Source;
use crate::synth::{SynthShape, SynthSource};
use crate::verify::{print_report, verify};
use crate::vocab::VocabMeta;
use crate::write::write_gguf;
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;
use std::time::Instant;
use tandem::gguf::{keys, Metadata};

/// Header bytes are not known before the metadata is encoded; this bounds them for the
/// free-space check (a 32000-token vocabulary takes about 0.7 MB).
const HEADER_ESTIMATE: u64 = 16 << 20;

/// The type rules for a model, from the command-line options.
pub fn rules_for(
    out: &OutputArgs,
    ftype: FileType,
    plan: &[Planned],
    params: &ModelParams,
) -> TypeRules {
    TypeRules {
        ftype,
        pure: out.pure,
        keep: out.keep.clone(),
        model: ModelShape {
            n_layer: params.n_layer,
            n_expert: params.n_expert(),
            has_output: plan.iter().any(|p| p.name == "output.weight"),
        },
    }
}

/// Sets the types and the write order of a plan: llama-quantize's order for quantized types,
/// the converter's (source) order for float types.
pub fn finish_plan(plan: &mut [Planned], rules: &TypeRules) -> Result<()> {
    assign_types(plan, rules)?;
    if rules.ftype.is_quantized() {
        quantize_order(plan);
    }
    Ok(())
}

/// Plan printing, the write, the check of the written file, verification and the summary.
pub fn run_plan(
    out: &Path,
    opts: &OutputArgs,
    metadata: &Metadata,
    plan: &[Planned],
    source: &dyn Source,
) -> Result<()> {
    if opts.dry_run {
        let names = |p: &Planned| {
            let ts = source.tensors();
            let first = &ts[p.parts[0]];
            let more = if p.parts.len() > 1 {
                format!(" (+{} more)", p.parts.len() - 1)
            } else {
                String::new()
            };
            format!("{} {}{more}", first.dtype, first.name)
        };
        print_plan(plan, &names);
        return Ok(());
    }
    let data: u64 = plan.iter().map(Planned::nbytes).sum();
    check_destination(out, opts.force, data + HEADER_ESTIMATE)?;
    let start = Instant::now();
    write_gguf(out, metadata, plan, source, !opts.quiet)
        .with_context(|| format!("writing {}", out.display()))?;
    let file = check_written(out, plan)?;
    if opts.verify {
        let report = verify(&file, plan, source)?;
        print_report(plan, &report);
    }
    print_summary(source.input_bytes(), &file, start.elapsed());
    Ok(())
}

/// Runs a parsed command line (the thread pool is the caller's).
pub fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Some(Command::Synth(args)) => synth(args, &Catalog::embedded()?),
        None => convert(&cli.convert),
    }
}

/// `tandem-quantize synth`, with the sizes of `catalog`.
pub fn synth(args: &SynthArgs, catalog: &Catalog) -> Result<()> {
    let preset = catalog.preset(&args.arch).ok_or_else(|| {
        let known: Vec<_> = catalog.synth.iter().map(|(n, _)| n.as_str()).collect();
        anyhow!(
            "unknown --arch `{}`; known: {}",
            args.arch,
            known.join(", ")
        )
    })?;
    let family = catalog
        .family(&preset.family)
        .ok_or_else(|| anyhow!("models.toml: synth.{} names unknown family", args.arch))?;
    let mut params = preset.params.clone();
    if let Some(l) = args.layers {
        anyhow::ensure!(l > 0, "--layers must be at least 1");
        params.n_layer = l;
    }
    let ftype = args
        .output
        .ftype
        .ok_or_else(|| anyhow!("--type is required"))?;
    let vocab = match &args.vocab {
        Some(path) => VocabMeta::from_gguf(path)?,
        None => VocabMeta::generated(params.vocab_size as usize)?,
    };
    anyhow::ensure!(
        vocab.len() == params.vocab_size as usize,
        "the vocabulary has {} tokens, {} has {}",
        vocab.len(),
        args.arch,
        params.vocab_size
    );
    let source = SynthSource::new(
        &SynthShape {
            n_layer: params.n_layer,
            n_embd: params.n_embd.into(),
            n_ff: params.n_ff.into(),
            n_head: params.n_head.into(),
            n_head_kv: params.n_head_kv().into(),
            head_dim: params.head_dim().into(),
            n_expert: params.n_expert(),
            vocab: params.vocab_size.into(),
        },
        args.seed,
    );
    let mut plan = map_source(&source, &family.tensor_map, &params)?;
    let rules = rules_for(&args.output, ftype, &plan, &params);
    finish_plan(&mut plan, &rules)?;
    let general = GeneralInfo {
        name: format!(
            "{} synthetic ({} layers, seed {})",
            preset.display_name, params.n_layer, args.seed
        ),
        ..GeneralInfo::default()
    };
    let metadata = build_metadata(&general, &params, &vocab, ftype)?;
    run_plan(&args.out, &args.output, &metadata, &plan, &source)
}

/// `tandem-quantize SRC OUT.gguf --type TYPE`.
pub fn convert(args: &ConvertArgs) -> Result<()> {
    let (Some(src), Some(out)) = (&args.src, &args.out) else {
        bail!("usage: tandem-quantize SRC OUT.gguf --type TYPE");
    };
    let ftype = args
        .output
        .ftype
        .ok_or_else(|| anyhow!("--type is required"))?;
    if src.is_file() {
        return convert_gguf(src, out, ftype, &args.output);
    }
    if !src.is_dir() {
        bail!("{}: no such file or directory", src.display());
    }
    let catalog = Catalog::embedded()?;
    let dir_name = std::fs::canonicalize(src)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let (params, family, files, index, config_json) = if src.join("config.json").is_file() {
        let cfg = read_config(src)?;
        let family = catalog
            .family_for_architecture(&cfg.architecture)
            .ok_or_else(|| {
                let known: Vec<_> = catalog
                    .families
                    .iter()
                    .flat_map(|f| f.hf_architectures.iter().map(String::as_str))
                    .collect();
                anyhow!(
                    "{}: unknown architecture `{}`; known: {}",
                    src.join("config.json").display(),
                    cfg.architecture,
                    known.join(", ")
                )
            })?;
        let index = src.join("model.safetensors.index.json");
        let files = shard_files(src, "model")?;
        (
            cfg.params,
            family,
            files,
            index.is_file().then_some(index),
            Some(cfg.json),
        )
    } else if src.join("params.json").is_file() {
        let family = catalog
            .family("mistral-consolidated")
            .ok_or_else(|| anyhow!("models.toml: no mistral-consolidated family"))?;
        let params = read_params_json(src, family.default_context)?;
        (
            params,
            family,
            shard_files(src, "consolidated")?,
            None,
            None,
        )
    } else {
        bail!(
            "{}: neither config.json nor params.json found",
            src.display()
        );
    };
    let source = SafetensorsSource::open(&files, index.as_deref())?;
    let mut plan = map_source(&source, &family.tensor_map, &params)?;
    let rules = rules_for(&args.output, ftype, &plan, &params);
    finish_plan(&mut plan, &rules)?;
    // The vocabulary table is sized by the config: it must match the embedding rows, which
    // the checkpoint's bytes back (no allocation sized by an unchecked number).
    let embd_rows = plan
        .iter()
        .find(|p| p.name == "token_embd.weight")
        .and_then(|p| p.ne.get(1).copied())
        .ok_or_else(|| anyhow!("{}: no token embedding tensor", src.display()))?;
    anyhow::ensure!(
        embd_rows == u64::from(params.vocab_size),
        "{}: vocab_size {} but the token embedding has {embd_rows} rows",
        src.display(),
        params.vocab_size
    );
    let general = general_info(&dir_name, args.name.as_deref(), &count_params(&plan));
    let vocab = read_vocab(src, config_json.as_ref(), params.vocab_size)?;
    let metadata = build_metadata(&general, &params, &vocab, ftype)?;
    run_plan(out, &args.output, &metadata, &plan, &source)
}

/// Requantizes a GGUF file: same tensors and metadata, new types (llama-quantize's behaviour).
fn convert_gguf(src: &Path, out: &Path, ftype: FileType, opts: &OutputArgs) -> Result<()> {
    let source = GgufSource::open(src)?;
    let md = source.file.metadata();
    let n_layer = md
        .u32(keys::LLAMA_BLOCK_COUNT)
        .with_context(|| src.display().to_string())?;
    let n_expert = md.get_opt::<u32>(keys::LLAMA_EXPERT_COUNT)?.unwrap_or(0);
    let mut plan: Vec<Planned> = source
        .tensors()
        .iter()
        .enumerate()
        .map(|(i, t)| Planned {
            name: t.name.clone(),
            ne: t.shape.iter().rev().copied().collect(),
            ty: tandem::quant::GgmlType::F32,
            parts: vec![i],
            permute_heads: None,
        })
        .collect();
    let rules = TypeRules {
        ftype,
        pure: opts.pure,
        keep: opts.keep.clone(),
        model: ModelShape {
            n_layer,
            n_expert,
            has_output: plan.iter().any(|p| p.name == "output.weight"),
        },
    };
    assign_types(&mut plan, &rules)?;
    // llama-quantize copies the tensors it does not quantize (norms, router) as they are.
    for p in plan.iter_mut() {
        if !is_quantizable(&p.name, &p.ne) && !rules.kept(&p.name, &p.ne) {
            p.ty = source.file.tensors()[p.parts[0]].ty();
        }
    }
    quantize_order(&mut plan);
    let metadata = requantized_metadata(md, ftype);
    run_plan(out, opts, &metadata, &plan, &source)
}
