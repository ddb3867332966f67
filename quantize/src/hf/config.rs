//! Hyperparameters from Hugging Face `config.json` or Mistral's `params.json`.

use crate::params::ModelParams;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{Map, Value};
use std::path::Path;

/// A parsed `config.json`.
#[derive(Clone, Debug)]
pub struct HfConfig {
    /// `architectures[0]`, e.g. `MixtralForCausalLM`.
    pub architecture: String,
    pub params: ModelParams,
    /// The raw JSON (special token ids live here too).
    pub json: Map<String, Value>,
}

/// Reads a JSON object file.
pub fn read_json(path: &Path) -> Result<Map<String, Value>> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    match serde_json::from_slice(&text)
        .with_context(|| format!("{}: not valid JSON", path.display()))?
    {
        Value::Object(m) => Ok(m),
        _ => bail!("{}: not a JSON object", path.display()),
    }
}

/// A present, non-null field.
fn field<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

fn u32_of(m: &Map<String, Value>, key: &str, file: &Path) -> Result<Option<u32>> {
    field(m, key)
        .map(|v| {
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| anyhow!("{}: `{key}` = {v} is not a u32", file.display()))
        })
        .transpose()
}

fn req_u32(m: &Map<String, Value>, key: &str, file: &Path) -> Result<u32> {
    u32_of(m, key, file)?.ok_or_else(|| anyhow!("{}: `{key}` is missing", file.display()))
}

fn f32_of(m: &Map<String, Value>, key: &str, file: &Path) -> Result<Option<f32>> {
    field(m, key)
        .map(|v| {
            v.as_f64()
                .map(|f| f as f32)
                .ok_or_else(|| anyhow!("{}: `{key}` = {v} is not a number", file.display()))
        })
        .transpose()
}

/// `dir/config.json`.
pub fn read_config(dir: &Path) -> Result<HfConfig> {
    let path = dir.join("config.json");
    let m = read_json(&path)?;
    let architecture = field(&m, "architectures")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("{}: no `architectures` entry", path.display()))?
        .to_string();
    let p = &path;
    let rope_scaling_linear = match field(&m, "rope_scaling").and_then(Value::as_object) {
        Some(rs) if rs.get("type").and_then(Value::as_str) == Some("linear") => {
            f32_of(rs, "factor", p)?
        }
        _ => None,
    };
    let params = ModelParams {
        n_layer: req_u32(&m, "num_hidden_layers", p)?,
        n_ctx: u32_of(&m, "max_position_embeddings", p)?,
        n_embd: req_u32(&m, "hidden_size", p)?,
        n_ff: req_u32(&m, "intermediate_size", p)?,
        n_head: req_u32(&m, "num_attention_heads", p)?,
        n_head_kv: u32_of(&m, "num_key_value_heads", p)?,
        rope_theta: f32_of(&m, "rope_theta", p)?,
        rms_eps: f32_of(&m, "rms_norm_eps", p)?,
        n_expert: u32_of(&m, "num_local_experts", p)?,
        n_expert_used: u32_of(&m, "num_experts_per_tok", p)?,
        head_dim: u32_of(&m, "head_dim", p)?,
        vocab_size: req_u32(&m, "vocab_size", p)?,
        rope_scaling_linear,
    };
    params
        .validate()
        .with_context(|| format!("{}", path.display()))?;
    Ok(HfConfig {
        architecture,
        params,
        json: m,
    })
}

/// Mistral's `dir/params.json` (the consolidated layout), which has no context length: the
/// family's default is used.
pub fn read_params_json(dir: &Path, default_context: u32) -> Result<ModelParams> {
    let path = dir.join("params.json");
    let m = read_json(&path)?;
    let p = &path;
    let n_embd = req_u32(&m, "dim", p)?;
    let n_head = req_u32(&m, "n_heads", p)?;
    // llama.cpp writes key/value lengths only for a head width that differs from dim / heads.
    let head_dim = u32_of(&m, "head_dim", p)?.filter(|&hd| hd != n_embd / n_head.max(1));
    let moe = field(&m, "moe").and_then(Value::as_object);
    let (n_expert, n_expert_used) = match moe {
        Some(moe) => (
            Some(req_u32(moe, "num_experts", p)?),
            Some(req_u32(moe, "num_experts_per_tok", p)?),
        ),
        None => (None, None),
    };
    let params = ModelParams {
        n_layer: req_u32(&m, "n_layers", p)?,
        n_ctx: Some(default_context),
        n_embd,
        n_ff: req_u32(&m, "hidden_dim", p)?,
        n_head,
        n_head_kv: u32_of(&m, "n_kv_heads", p)?,
        rope_theta: Some(f32_of(&m, "rope_theta", p)?.unwrap_or(10000.0)),
        rms_eps: f32_of(&m, "norm_eps", p)?,
        n_expert,
        n_expert_used,
        head_dim,
        vocab_size: req_u32(&m, "vocab_size", p)?,
        rope_scaling_linear: None,
    };
    params
        .validate()
        .with_context(|| format!("{}", path.display()))?;
    Ok(params)
}
