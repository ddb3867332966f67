//! Model hyperparameters and the `general.*` / `llama.*` metadata llama.cpp's converter writes
//! for them, in its order and with its value types.

use crate::ftype::FileType;
use crate::vocab::VocabMeta;
use anyhow::Result;
use tandem::gguf::{keys, Metadata};

/// The hyperparameters of a Llama-family model (dense or MoE).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelParams {
    pub n_layer: u32,
    pub n_ctx: Option<u32>,
    pub n_embd: u32,
    pub n_ff: u32,
    pub n_head: u32,
    pub n_head_kv: Option<u32>,
    pub rope_theta: Option<f32>,
    pub rms_eps: Option<f32>,
    pub n_expert: Option<u32>,
    pub n_expert_used: Option<u32>,
    /// Set only when the source states it (`head_dim`); llama.cpp then writes key/value lengths.
    pub head_dim: Option<u32>,
    pub vocab_size: u32,
    /// Linear RoPE scaling factor, when the source has one.
    pub rope_scaling_linear: Option<f32>,
}

impl ModelParams {
    /// Query heads' width: `head_dim`, or `n_embd / n_head`.
    pub fn head_dim(&self) -> u32 {
        self.head_dim.unwrap_or(self.n_embd / self.n_head.max(1))
    }

    /// KV heads (defaults to the query heads).
    pub fn n_head_kv(&self) -> u32 {
        self.n_head_kv.unwrap_or(self.n_head)
    }

    /// Experts per MoE layer; 0 for a dense model.
    pub fn n_expert(&self) -> u32 {
        self.n_expert.unwrap_or(0)
    }

    /// Checks the shape facts every tensor shape is built from.
    pub fn validate(&self) -> Result<()> {
        let hd = self.head_dim();
        anyhow::ensure!(
            self.n_layer > 0 && self.n_embd > 0 && self.n_ff > 0 && self.vocab_size > 0,
            "model sizes must be positive: {self:?}"
        );
        anyhow::ensure!(
            self.n_head > 0 && self.n_head_kv() > 0 && self.n_head.is_multiple_of(self.n_head_kv()),
            "{} query heads are not a multiple of {} KV heads",
            self.n_head,
            self.n_head_kv()
        );
        anyhow::ensure!(
            hd > 0 && hd.is_multiple_of(2),
            "head width {hd} must be even and positive (RoPE rotates pairs)"
        );
        if let Some(n) = self.n_expert {
            let used = self.n_expert_used.unwrap_or(0);
            anyhow::ensure!(
                n <= 1 || (1..=n).contains(&used),
                "{used} experts used per token out of {n}"
            );
        }
        Ok(())
    }
}

/// `general.*` naming keys (from the model directory's name, see [`crate::naming`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GeneralInfo {
    pub name: String,
    pub version: Option<String>,
    pub finetune: Option<String>,
    pub basename: Option<String>,
    pub size_label: Option<String>,
}

/// The whole metadata as `convert_hf_to_gguf.py` writes it, followed (for a quantized type)
/// by `llama-quantize`'s rewrite, which moves `general.quantization_version` and
/// `general.file_type` to the end.
pub fn build_metadata(
    general: &GeneralInfo,
    params: &ModelParams,
    vocab: &VocabMeta,
    ftype: FileType,
) -> Result<Metadata> {
    let mut md = Metadata::new();
    md.push(keys::GENERAL_ARCHITECTURE, "llama")?;
    md.push(keys::GENERAL_TYPE, "model")?;
    md.push(keys::GENERAL_NAME, general.name.as_str())?;
    if let Some(v) = &general.version {
        md.push(keys::GENERAL_VERSION, v.as_str())?;
    }
    if let Some(v) = &general.finetune {
        md.push(keys::GENERAL_FINETUNE, v.as_str())?;
    }
    if let Some(v) = &general.basename {
        md.push(keys::GENERAL_BASENAME, v.as_str())?;
    }
    if let Some(v) = &general.size_label {
        md.push(keys::GENERAL_SIZE_LABEL, v.as_str())?;
    }
    let p = params;
    md.push(keys::LLAMA_BLOCK_COUNT, p.n_layer)?;
    if let Some(n) = p.n_ctx {
        md.push(keys::LLAMA_CONTEXT_LENGTH, n)?;
    }
    md.push(keys::LLAMA_EMBEDDING_LENGTH, p.n_embd)?;
    md.push(keys::LLAMA_FEED_FORWARD_LENGTH, p.n_ff)?;
    md.push(keys::LLAMA_HEAD_COUNT, p.n_head)?;
    if let Some(n) = p.n_head_kv {
        md.push(keys::LLAMA_HEAD_COUNT_KV, n)?;
    }
    if let Some(t) = p.rope_theta {
        md.push(keys::LLAMA_ROPE_FREQ_BASE, t)?;
    }
    if let Some(e) = p.rms_eps {
        md.push(keys::LLAMA_LAYER_NORM_RMS_EPS, e)?;
    }
    if let Some(n) = p.n_expert {
        md.push(keys::LLAMA_EXPERT_COUNT, n)?;
    }
    if let Some(n) = p.n_expert_used {
        md.push(keys::LLAMA_EXPERT_USED_COUNT, n)?;
    }
    if let Some(hd) = p.head_dim {
        md.push(keys::LLAMA_KEY_LENGTH, hd)?;
        md.push(keys::LLAMA_VALUE_LENGTH, hd)?;
    }
    // The converter writes its own output type here: f32 when a quantizer runs afterwards.
    let convert_ftype = if ftype.is_quantized() {
        FileType::F32
    } else {
        ftype
    };
    md.push(keys::GENERAL_FILE_TYPE, convert_ftype.llama_ftype())?;
    md.push(keys::LLAMA_VOCAB_SIZE, p.vocab_size)?;
    md.push(keys::LLAMA_ROPE_DIMENSION_COUNT, p.head_dim())?;
    if let Some(f) = p.rope_scaling_linear {
        md.push(keys::LLAMA_ROPE_SCALING_TYPE, "linear")?;
        md.push(keys::LLAMA_ROPE_SCALING_FACTOR, f)?;
    }
    vocab.push_to(&mut md)?;
    if ftype.is_quantized() {
        Ok(requantized_metadata(&md, ftype))
    } else {
        md.push(keys::GENERAL_QUANTIZATION_VERSION, QUANTIZATION_VERSION)?;
        Ok(md)
    }
}

/// ggml's `GGML_QNT_VERSION`.
pub const QUANTIZATION_VERSION: u32 = 2;

/// `llama-quantize`'s metadata: the source's keys in order, without `general.quantization_version`
/// and `general.file_type`, which are appended (in that order) with the new values.
pub fn requantized_metadata(src: &Metadata, ftype: FileType) -> Metadata {
    let mut md = Metadata::new();
    for e in src.entries() {
        if e.key == keys::GENERAL_QUANTIZATION_VERSION || e.key == keys::GENERAL_FILE_TYPE {
            continue;
        }
        // Keys of `src` are unique, so pushing cannot fail.
        let _ = md.push(e.key.clone(), e.value.clone());
    }
    let _ = md.push(keys::GENERAL_QUANTIZATION_VERSION, QUANTIZATION_VERSION);
    let _ = md.push(keys::GENERAL_FILE_TYPE, ftype.llama_ftype());
    md
}
