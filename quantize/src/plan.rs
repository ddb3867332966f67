//! The conversion plan: every output tensor with its GGUF name, shape, type and the source
//! tensors it is made of, in the order it is written.

use crate::catalog::{Heads, TensorMap};
use crate::params::ModelParams;
use crate::rules::TypeRules;
use crate::source::{Source, SourceTensor};
use anyhow::{bail, ensure, Result};
use std::collections::BTreeMap;
use tandem::gguf::{tensor_nbytes, TensorSpec};
use tandem::quant::GgmlType;

/// One output tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub name: String,
    /// GGML shape, row length first.
    pub ne: Vec<u64>,
    pub ty: GgmlType,
    /// Source tensor indices, concatenated along the outermost axis (one per expert when
    /// stacked, otherwise one).
    pub parts: Vec<usize>,
    /// Apply llama.cpp's Q/K row permutation with this many heads to each part.
    pub permute_heads: Option<u32>,
}

impl Planned {
    /// The spec the GGUF writer needs.
    pub fn spec(&self) -> TensorSpec {
        TensorSpec::new(self.name.clone(), self.ty, &self.ne)
    }

    /// Output bytes.
    pub fn nbytes(&self) -> u64 {
        // Checked when the plan was made.
        tensor_nbytes(self.ty, &self.ne).unwrap_or(0)
    }

    /// The layer of a `blk.N.*` tensor.
    pub fn layer(&self) -> Option<u32> {
        let rest = self.name.strip_prefix("blk.")?;
        rest.split_once('.')?.0.parse().ok()
    }
}

/// A stacked tensor being collected: expert number → source index.
struct Stack {
    name: String,
    entry: usize,
    parts: BTreeMap<u32, usize>,
}

/// Maps a checkpoint's tensors to GGUF tensors in the order llama.cpp's converter writes them:
/// source order, with each layer's stacked expert tensors written (in map order) as soon as
/// every part of every stacked tensor of that layer has been seen. Types are F32 until
/// [`assign_types`].
pub fn map_source(
    source: &dyn Source,
    map: &TensorMap,
    params: &ModelParams,
) -> Result<Vec<Planned>> {
    let tensors = source.tensors();
    let n_expert = params.n_expert();
    let mut out = Vec::new();
    // Per layer, the stacked tensors being collected (by map entry).
    let mut stacks: BTreeMap<u32, Vec<Stack>> = BTreeMap::new();
    for (i, t) in tensors.iter().enumerate() {
        let Some(m) = map.map(&t.name)? else {
            continue;
        };
        if let Some(l) = m.layer {
            ensure!(
                l < params.n_layer,
                "tensor `{}`: layer {l}, but the config has {} layers",
                t.name,
                params.n_layer
            );
        }
        let permute_heads = map.permutation(&m.target).map(|h| match h {
            Heads::Query => params.n_head,
            Heads::KeyValue => params.n_head_kv(),
        });
        let Some(expert) = m.expert else {
            out.push(Planned {
                ne: t.shape.iter().rev().copied().collect(),
                name: m.target,
                ty: GgmlType::F32,
                parts: vec![i],
                permute_heads,
            });
            continue;
        };
        let layer = m.layer.unwrap_or(0);
        ensure!(
            expert < n_expert,
            "tensor `{}`: expert {expert}, but the config has {n_expert} experts",
            t.name
        );
        let layer_stacks = stacks.entry(layer).or_default();
        let idx = match layer_stacks.iter().position(|s| s.name == m.target) {
            Some(idx) => idx,
            None => {
                layer_stacks.push(Stack {
                    name: m.target.clone(),
                    entry: m.entry,
                    parts: BTreeMap::new(),
                });
                layer_stacks.len() - 1
            }
        };
        if layer_stacks[idx].parts.insert(expert, i).is_some() {
            bail!("tensor `{}` appears twice", t.name);
        }
        // A layer is complete when all three (gate, down, up) stacks hold every expert: the
        // converter counts 3 × n_expert tensors per layer.
        let complete = layer_stacks.len() == 3
            && layer_stacks
                .iter()
                .all(|s| s.parts.len() == n_expert as usize);
        if complete {
            let mut done = stacks.remove(&layer).unwrap_or_default();
            done.sort_by_key(|s| s.entry);
            for s in done {
                let heads = map.permutation(&s.name).map(|h| match h {
                    Heads::Query => params.n_head,
                    Heads::KeyValue => params.n_head_kv(),
                });
                out.push(stacked(tensors, s, heads)?);
            }
        }
    }
    if let Some((layer, s)) = stacks.iter().next() {
        let names: Vec<_> = s
            .iter()
            .map(|s| format!("{} ({} experts)", s.name, s.parts.len()))
            .collect();
        bail!(
            "layer {layer}: expert tensors incomplete (need {n_expert} experts of gate, down and up): {}",
            names.join(", ")
        );
    }
    Ok(out)
}

fn stacked(tensors: &[SourceTensor], s: Stack, permute_heads: Option<u32>) -> Result<Planned> {
    let parts: Vec<usize> = s.parts.values().copied().collect();
    let first = &tensors[parts[0]];
    for &p in &parts {
        ensure!(
            tensors[p].shape == first.shape && first.shape.len() == 2,
            "tensor `{}`: shape {:?}, but `{}` is {:?} (experts must be equal 2-D matrices)",
            tensors[p].name,
            tensors[p].shape,
            first.name,
            first.shape
        );
    }
    Ok(Planned {
        name: s.name,
        ne: vec![first.shape[1], first.shape[0], parts.len() as u64],
        ty: GgmlType::F32,
        parts,
        permute_heads,
    })
}

/// Sets each tensor's type by `rules` and checks that the shapes fit (and, for permuted
/// tensors, that the rows split into heads of an even width).
pub fn assign_types(plan: &mut [Planned], rules: &TypeRules) -> Result<()> {
    for p in plan.iter_mut() {
        p.ty = rules
            .choose(&p.name, &p.ne)
            .map_err(|e| anyhow::anyhow!("tensor `{}`: {e}", p.name))?;
        tensor_nbytes(p.ty, &p.ne).map_err(|e| anyhow::anyhow!("tensor `{}`: {e}", p.name))?;
        if let Some(h) = p.permute_heads {
            let rows = p.ne.get(1).copied().unwrap_or(1);
            ensure!(
                h > 0 && rows.is_multiple_of(2 * h as u64),
                "tensor `{}`: {rows} rows do not split into {h} heads of even width",
                p.name
            );
        }
    }
    Ok(())
}

/// llama-quantize's output order: tensors outside the layers first, then layer by layer
/// (by number), each group sorted by name.
pub fn quantize_order(plan: &mut [Planned]) {
    plan.sort_by(|a, b| {
        let key = |p: &Planned| p.layer().map_or(-1, i64::from);
        key(a).cmp(&key(b)).then_with(|| a.name.cmp(&b.name))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_order_sorts_layers_numerically() {
        let p = |n: &str| Planned {
            name: n.into(),
            ne: vec![32],
            ty: GgmlType::F32,
            parts: vec![],
            permute_heads: None,
        };
        let mut plan = vec![
            p("blk.10.attn_q.weight"),
            p("token_embd.weight"),
            p("blk.2.ffn_norm.weight"),
            p("blk.2.attn_k.weight"),
            p("output_norm.weight"),
            p("output.weight"),
        ];
        quantize_order(&mut plan);
        let names: Vec<_> = plan.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "output.weight",
                "output_norm.weight",
                "token_embd.weight",
                "blk.2.attn_k.weight",
                "blk.2.ffn_norm.weight",
                "blk.10.attn_q.weight"
            ]
        );
    }
}
