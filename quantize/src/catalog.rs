//! `models.toml`, embedded at build time: model families, their tensor-name maps and the sizes
//! `synth` can generate.

use crate::params::ModelParams;
use anyhow::{anyhow, bail, Context, Result};
use regex::Regex;
use toml::{Table, Value};

const MODELS_TOML: &str = include_str!("../../models.toml");

/// A model family.
#[derive(Clone, Debug)]
pub struct Family {
    pub name: String,
    pub hf_architectures: Vec<String>,
    pub tensor_map: TensorMap,
    pub default_context: u32,
}

/// Which head count a permuted tensor uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heads {
    Query,
    KeyValue,
}

/// Source tensor names → GGUF names.
#[derive(Clone, Debug)]
pub struct TensorMap {
    entries: Vec<MapEntry>,
    ignore: Vec<String>,
    permute: Vec<(String, Heads)>,
}

#[derive(Clone, Debug)]
struct MapEntry {
    source: Regex,
    target: String,
    stacked: bool,
}

/// Where one source tensor goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapped {
    pub target: String,
    pub layer: Option<u32>,
    /// The expert number of a stacked part.
    pub expert: Option<u32>,
    /// The map entry's position (stacked tensors of a layer are emitted in this order).
    pub entry: usize,
}

impl TensorMap {
    /// The GGUF destination of `name`; `Ok(None)` for tensors the converter skips; an error
    /// for a name the map does not know.
    pub fn map(&self, name: &str) -> Result<Option<Mapped>> {
        if self.ignore.iter().any(|s| name.ends_with(s.as_str())) {
            return Ok(None);
        }
        for (entry, e) in self.entries.iter().enumerate() {
            let Some(c) = e.source.captures(name) else {
                continue;
            };
            let num = |k: &str| -> Result<Option<u32>> {
                c.name(k)
                    .map(|m| {
                        m.as_str().parse::<u32>().map_err(|_| {
                            anyhow!("tensor `{name}`: {k} `{}` is too large", m.as_str())
                        })
                    })
                    .transpose()
            };
            let layer = num("bid")?;
            let expert = num("xid")?;
            let target = match layer {
                Some(b) => e.target.replace("{bid}", &b.to_string()),
                None => e.target.clone(),
            };
            debug_assert_eq!(e.stacked, expert.is_some());
            return Ok(Some(Mapped {
                target,
                layer,
                expert,
                entry,
            }));
        }
        bail!("tensor `{name}`: not a tensor of this model family (no mapping in models.toml)")
    }

    /// The head count whose Q/K permutation `gguf_name` gets, if any.
    pub fn permutation(&self, gguf_name: &str) -> Option<Heads> {
        self.permute
            .iter()
            .find(|(suffix, _)| gguf_name.ends_with(suffix.as_str()))
            .map(|&(_, h)| h)
    }
}

/// A model size `synth` can generate.
#[derive(Clone, Debug)]
pub struct SynthPreset {
    pub family: String,
    pub display_name: String,
    pub params: ModelParams,
}

/// The parsed catalog.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub families: Vec<Family>,
    pub synth: Vec<(String, SynthPreset)>,
}

impl Catalog {
    /// The catalog compiled into this binary.
    pub fn embedded() -> Result<Catalog> {
        Catalog::parse(MODELS_TOML).context("models.toml (embedded)")
    }

    /// Parses a catalog.
    pub fn parse(text: &str) -> Result<Catalog> {
        let root: Table = text.parse()?;
        let maps = table(&root, "tensor_maps")?;
        let mut families = Vec::new();
        for (name, v) in table(&root, "families")? {
            let f = v
                .as_table()
                .ok_or_else(|| anyhow!("families.{name}: not a table"))?;
            let map_name = string(f, "tensor_map", name)?;
            let map = maps
                .get(map_name)
                .and_then(Value::as_table)
                .ok_or_else(|| anyhow!("families.{name}: no tensor map `{map_name}`"))?;
            families.push(Family {
                name: name.clone(),
                hf_architectures: strings(f, "hf_architectures", name)?,
                tensor_map: parse_map(map, map_name)?,
                default_context: integer(f, "default_context", name)?,
            });
        }
        let mut synth = Vec::new();
        if let Some(s) = root.get("synth").and_then(Value::as_table) {
            for (name, v) in s {
                let t = v
                    .as_table()
                    .ok_or_else(|| anyhow!("synth.{name}: not a table"))?;
                synth.push((name.clone(), parse_preset(t, name)?));
            }
        }
        Ok(Catalog { families, synth })
    }

    /// The family whose Hugging Face `architectures` entry is `arch`.
    pub fn family_for_architecture(&self, arch: &str) -> Option<&Family> {
        self.families
            .iter()
            .find(|f| f.hf_architectures.iter().any(|a| a == arch))
    }

    /// The family called `name`.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }

    /// The synth preset called `name`.
    pub fn preset(&self, name: &str) -> Option<&SynthPreset> {
        self.synth.iter().find(|(n, _)| n == name).map(|(_, p)| p)
    }
}

fn table<'a>(t: &'a Table, key: &str) -> Result<&'a Table> {
    t.get(key)
        .and_then(Value::as_table)
        .ok_or_else(|| anyhow!("missing table `{key}`"))
}

fn string<'a>(t: &'a Table, key: &str, ctx: &str) -> Result<&'a str> {
    t.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("{ctx}: `{key}` must be a string"))
}

fn strings(t: &Table, key: &str, ctx: &str) -> Result<Vec<String>> {
    let arr = t
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("{ctx}: `{key}` must be an array"))?;
    arr.iter()
        .map(|v| {
            v.as_str()
                .map(String::from)
                .ok_or_else(|| anyhow!("{ctx}: `{key}` must hold strings"))
        })
        .collect()
}

fn integer(t: &Table, key: &str, ctx: &str) -> Result<u32> {
    let v = t
        .get(key)
        .and_then(Value::as_integer)
        .ok_or_else(|| anyhow!("{ctx}: `{key}` must be an integer"))?;
    u32::try_from(v).map_err(|_| anyhow!("{ctx}: `{key}` = {v} is out of range"))
}

fn float(t: &Table, key: &str, ctx: &str) -> Result<f32> {
    match t.get(key) {
        Some(Value::Float(f)) => Ok(*f as f32),
        Some(Value::Integer(i)) => Ok(*i as f32),
        _ => Err(anyhow!("{ctx}: `{key}` must be a number")),
    }
}

fn parse_map(t: &Table, ctx: &str) -> Result<TensorMap> {
    let arr = t
        .get("tensors")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("tensor_maps.{ctx}: `tensors` must be an array"))?;
    let mut entries = Vec::new();
    for pair in arr {
        let pair = pair
            .as_array()
            .filter(|p| p.len() == 2)
            .ok_or_else(|| anyhow!("tensor_maps.{ctx}: each entry is [source, gguf]"))?;
        let (Some(src), Some(dst)) = (pair[0].as_str(), pair[1].as_str()) else {
            bail!("tensor_maps.{ctx}: entries are strings");
        };
        let pattern = regex::escape(src)
            .replace(r"\{bid\}", r"(?P<bid>\d+)")
            .replace(r"\{xid\}", r"(?P<xid>\d+)");
        entries.push(MapEntry {
            source: Regex::new(&format!("^{pattern}$"))?,
            target: dst.to_string(),
            stacked: src.contains("{xid}"),
        });
    }
    let mut permute = Vec::new();
    if let Some(p) = t.get("permute").and_then(Value::as_table) {
        for (suffix, heads) in p {
            let heads = match heads.as_str() {
                Some("n_head") => Heads::Query,
                Some("n_head_kv") => Heads::KeyValue,
                _ => bail!("tensor_maps.{ctx}.permute.{suffix}: n_head or n_head_kv"),
            };
            permute.push((suffix.clone(), heads));
        }
    }
    Ok(TensorMap {
        entries,
        ignore: strings(t, "ignore", ctx)?,
        permute,
    })
}

fn parse_preset(t: &Table, name: &str) -> Result<SynthPreset> {
    let ctx = format!("synth.{name}");
    let opt = |key: &str| -> Result<Option<u32>> {
        t.contains_key(key)
            .then(|| integer(t, key, &ctx))
            .transpose()
    };
    let params = ModelParams {
        n_layer: integer(t, "num_hidden_layers", &ctx)?,
        n_ctx: Some(integer(t, "max_position_embeddings", &ctx)?),
        n_embd: integer(t, "hidden_size", &ctx)?,
        n_ff: integer(t, "intermediate_size", &ctx)?,
        n_head: integer(t, "num_attention_heads", &ctx)?,
        n_head_kv: Some(integer(t, "num_key_value_heads", &ctx)?),
        rope_theta: Some(float(t, "rope_theta", &ctx)?),
        rms_eps: Some(float(t, "rms_norm_eps", &ctx)?),
        n_expert: opt("num_local_experts")?,
        n_expert_used: opt("num_experts_per_tok")?,
        head_dim: None,
        vocab_size: integer(t, "vocab_size", &ctx)?,
        rope_scaling_linear: None,
    };
    params.validate().with_context(|| ctx.clone())?;
    Ok(SynthPreset {
        family: string(t, "family", &ctx)?.to_string(),
        display_name: string(t, "display_name", &ctx)?.to_string(),
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_maps_mixtral_names() {
        let c = Catalog::embedded().unwrap();
        let f = c.family_for_architecture("MixtralForCausalLM").unwrap();
        let m = &f.tensor_map;
        let x = m
            .map("model.layers.12.block_sparse_moe.experts.7.w2.weight")
            .unwrap()
            .unwrap();
        assert_eq!(x.target, "blk.12.ffn_down_exps.weight");
        assert_eq!((x.layer, x.expert), (Some(12), Some(7)));
        let q = m
            .map("model.layers.3.self_attn.q_proj.weight")
            .unwrap()
            .unwrap();
        assert_eq!(q.target, "blk.3.attn_q.weight");
        assert_eq!(m.permutation(&q.target), Some(Heads::Query));
        assert_eq!(m.permutation("blk.3.attn_k.weight"), Some(Heads::KeyValue));
        assert_eq!(m.permutation("blk.3.attn_v.weight"), None);
        assert!(m
            .map("model.layers.0.self_attn.rotary_emb.inv_freq")
            .unwrap()
            .is_none());
        assert!(m.map("model.layers.0.mystery.weight").is_err());
        let p = c.preset("mixtral-8x7b").unwrap();
        assert_eq!((p.params.n_embd, p.params.n_expert), (4096, Some(8)));
        assert!(c
            .family("mistral-consolidated")
            .unwrap()
            .tensor_map
            .permutation("blk.0.attn_q.weight")
            .is_none());
    }
}
