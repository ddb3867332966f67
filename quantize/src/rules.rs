//! Which type each tensor is stored as: llama.cpp's rules (`llama_tensor_get_type` and the loop
//! around it in `llama_model_quantize_impl`, commit c392e509), restricted to the types this tool
//! writes, plus `--pure` and `--keep`.
//!
//! In order:
//! 1. 1-D tensors, `*_norm.weight` and `ffn_gate_inp.weight` stay F32, whatever the type.
//! 2. For float outputs (f32/f16/bf16) every other tensor gets that type, as
//!    `convert_hf_to_gguf.py --outtype` does.
//! 3. For quantized outputs, unless `--pure`:
//!    - `output.weight` (or `token_embd.weight` when there is no output tensor) becomes Q6_K,
//!      unless the base type is Q8_0; Q8_0 when its rows are not a multiple of 256;
//!    - with 8 experts, `attn_k` and `attn_v` become Q8_0;
//!    - q4_k_m/q5_k_m: `attn_v` (when not 8 experts) and `ffn_down` become Q6_K on layers where
//!      `use_more_bits(i, n)`;
//!    - q4_k_m with 8 experts: `attn_output` becomes Q5_K.
//! 4. `--keep REGEX=TYPE` overrides the type of every matching tensor of 2 or more dimensions.
//! 5. A rows length that is not a multiple of the chosen block size falls back like llama.cpp:
//!    Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, then F16 if still not a multiple. Where llama.cpp
//!    aborts (a legacy type such as Q4_0 on 172-value rows) the tensor goes straight to F16, as
//!    llama.cpp's own fallback chain ends. A `--keep` type that does not fit is an error.

use crate::ftype::FileType;
use regex::Regex;
use tandem::quant::GgmlType;

/// The facts about the model that the rules depend on.
#[derive(Clone, Copy, Debug)]
pub struct ModelShape {
    pub n_layer: u32,
    /// 0 or 1 for a dense model.
    pub n_expert: u32,
    /// Whether the model has its own `output.weight` (not tied to the embeddings).
    pub has_output: bool,
}

/// One `--keep REGEX=TYPE` override.
#[derive(Clone, Debug)]
pub struct Keep {
    pub pattern: Regex,
    pub ty: GgmlType,
}

impl std::str::FromStr for Keep {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (re, ty) = s
            .rsplit_once('=')
            .ok_or_else(|| format!("`{s}`: expected REGEX=TYPE"))?;
        let pattern = Regex::new(re).map_err(|e| format!("`{re}`: {e}"))?;
        let ty = GgmlType::from_name(ty)
            .filter(|t| crate::encode::can_encode(*t))
            .ok_or_else(|| format!("`{ty}`: not a type this tool can write"))?;
        Ok(Keep { pattern, ty })
    }
}

/// The type rules of one conversion.
#[derive(Clone, Debug)]
pub struct TypeRules {
    pub ftype: FileType,
    pub pure: bool,
    pub keep: Vec<Keep>,
    pub model: ModelShape,
}

/// llama.cpp's layers that get more bits in the K-quant mixes: the first and last eighth, and
/// every third layer in between.
pub fn use_more_bits(i_layer: i64, n_layer: i64) -> bool {
    i_layer < n_layer / 8 || i_layer >= 7 * n_layer / 8 || (i_layer - n_layer / 8) % 3 == 2
}

/// The layer number of a `blk.N.*` tensor.
fn layer_of(name: &str) -> Option<i64> {
    let rest = name.strip_prefix("blk.")?;
    let (n, _) = rest.split_once('.')?;
    n.parse().ok()
}

/// Whether llama.cpp would quantize this tensor at all (otherwise it stays F32, or keeps its
/// type when requantizing a GGUF file).
pub fn is_quantizable(name: &str, ne: &[u64]) -> bool {
    ne.len() >= 2
        && name.ends_with("weight")
        && !name.contains("_norm.weight")
        && !name.contains("ffn_gate_inp.weight")
}

impl TypeRules {
    /// Whether a `--keep` pattern names this tensor (and applies to its shape).
    pub fn kept(&self, name: &str, ne: &[u64]) -> bool {
        ne.len() >= 2 && self.keep.iter().any(|k| k.pattern.is_match(name))
    }

    /// The type for tensor `name` of shape `ne` (row length first).
    pub fn choose(&self, name: &str, ne: &[u64]) -> Result<GgmlType, String> {
        let row = ne.first().copied().unwrap_or(1);
        if let Some(keep) = self.keep.iter().find(|k| k.pattern.is_match(name)) {
            if ne.len() >= 2 {
                if !row.is_multiple_of(keep.ty.block_values() as u64) {
                    return Err(format!(
                        "--keep {}={}: rows of {row} values are not a multiple of the {}-value block",
                        keep.pattern,
                        keep.ty,
                        keep.ty.block_values()
                    ));
                }
                return Ok(keep.ty);
            }
        }
        if !is_quantizable(name, ne) {
            return Ok(GgmlType::F32);
        }
        let base = self.ftype.base();
        let ty = if self.ftype.is_quantized() && !self.pure {
            self.mix_rule(name, row, base)?
        } else {
            base
        };
        Ok(fallback(ty, row))
    }

    /// The K-quant-mix adjustments of `llama_tensor_get_type` for the types this tool writes.
    fn mix_rule(&self, name: &str, row: u64, base: GgmlType) -> Result<GgmlType, String> {
        let ft = self.ftype;
        let k_mix = matches!(ft, FileType::Q4KM | FileType::Q5KM);
        let eight_experts = self.model.n_expert == 8;
        let n_layer = self.model.n_layer as i64;
        let layer = || {
            layer_of(name)
                .filter(|&i| (0..n_layer).contains(&i))
                .ok_or_else(|| format!("cannot tell the layer (of {n_layer}) of `{name}`"))
        };
        let is_output =
            name == "output.weight" || (!self.model.has_output && name == "token_embd.weight");
        let ty = if is_output {
            if !row.is_multiple_of(256) {
                GgmlType::Q8_0
            } else if base != GgmlType::Q8_0 {
                GgmlType::Q6_K
            } else {
                base
            }
        } else if name.contains("attn_v.weight") {
            let mut ty = base;
            if k_mix && use_more_bits(layer()?, n_layer) {
                ty = GgmlType::Q6_K;
            }
            if eight_experts {
                ty = GgmlType::Q8_0;
            }
            ty
        } else if name.contains("attn_k.weight") && eight_experts {
            GgmlType::Q8_0
        } else if name.contains("ffn_down") && k_mix && use_more_bits(layer()?, n_layer) {
            GgmlType::Q6_K
        } else if name.contains("attn_output.weight") && eight_experts && ft == FileType::Q4KM {
            GgmlType::Q5_K
        } else {
            base
        };
        Ok(ty)
    }
}

/// llama.cpp's fallback for rows that are not a whole number of blocks.
fn fallback(ty: GgmlType, row: u64) -> GgmlType {
    let fits = |t: GgmlType| row.is_multiple_of(t.block_values() as u64);
    if fits(ty) {
        return ty;
    }
    let next = match ty {
        GgmlType::Q4_K => GgmlType::Q5_0,
        GgmlType::Q5_K => GgmlType::Q5_1,
        GgmlType::Q6_K => GgmlType::Q8_0,
        _ => GgmlType::F16,
    };
    if fits(next) {
        next
    } else {
        GgmlType::F16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(ftype: FileType, n_layer: u32, n_expert: u32) -> TypeRules {
        TypeRules {
            ftype,
            pure: false,
            keep: vec![],
            model: ModelShape {
                n_layer,
                n_expert,
                has_output: true,
            },
        }
    }

    #[test]
    fn use_more_bits_matches_the_formula_for_32_layers() {
        // Worked by hand from i < 4 || i >= 28 || (i - 4) % 3 == 2.
        let more: Vec<i64> = (0..32).filter(|&i| use_more_bits(i, 32)).collect();
        assert_eq!(
            more,
            [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]
        );
        // Two layers: n/8 = 0 and 7n/8 = 1, so only layer 1.
        assert!(!use_more_bits(0, 2) && use_more_bits(1, 2));
    }

    #[test]
    fn mixtral_q4_k_m_rules() {
        let r = rules(FileType::Q4KM, 32, 8);
        let t = |n: &str, ne: &[u64]| r.choose(n, ne).unwrap();
        assert_eq!(t("output.weight", &[4096, 32000]), GgmlType::Q6_K);
        assert_eq!(t("token_embd.weight", &[4096, 32000]), GgmlType::Q4_K);
        assert_eq!(t("blk.5.attn_k.weight", &[4096, 1024]), GgmlType::Q8_0);
        assert_eq!(t("blk.5.attn_v.weight", &[4096, 1024]), GgmlType::Q8_0);
        assert_eq!(t("blk.5.attn_output.weight", &[4096, 4096]), GgmlType::Q5_K);
        assert_eq!(
            t("blk.6.ffn_down_exps.weight", &[14336, 4096, 8]),
            GgmlType::Q6_K
        );
        assert_eq!(
            t("blk.5.ffn_down_exps.weight", &[14336, 4096, 8]),
            GgmlType::Q4_K
        );
        assert_eq!(t("blk.5.ffn_gate_inp.weight", &[4096, 8]), GgmlType::F32);
        assert_eq!(t("blk.5.attn_norm.weight", &[4096]), GgmlType::F32);
    }

    #[test]
    fn dense_q5_k_m_bumps_attn_v_and_float_types_skip_rules() {
        let r = rules(FileType::Q5KM, 32, 0);
        assert_eq!(
            r.choose("blk.0.attn_v.weight", &[4096, 1024]).unwrap(),
            GgmlType::Q6_K
        );
        assert_eq!(
            r.choose("blk.4.attn_v.weight", &[4096, 1024]).unwrap(),
            GgmlType::Q5_K
        );
        let f = rules(FileType::F16, 32, 8);
        assert_eq!(
            f.choose("output.weight", &[4096, 32000]).unwrap(),
            GgmlType::F16
        );
        assert_eq!(
            f.choose("blk.0.attn_k.weight", &[4096, 1024]).unwrap(),
            GgmlType::F16
        );
    }

    #[test]
    fn fallbacks_for_odd_rows_and_tied_output() {
        let mut r = rules(FileType::Q4KM, 5, 8);
        // 64-wide output: Q8_0; 172-wide ffn_down: Q4_K → Q5_0 does not fit 32 either → F16.
        assert_eq!(
            r.choose("output.weight", &[64, 512]).unwrap(),
            GgmlType::Q8_0
        );
        assert_eq!(
            r.choose("blk.1.ffn_down_exps.weight", &[172, 64, 8])
                .unwrap(),
            GgmlType::F16
        );
        // 64-wide attn_q as Q4_K falls back to Q5_0.
        assert_eq!(
            r.choose("blk.1.attn_q.weight", &[64, 64]).unwrap(),
            GgmlType::Q5_0
        );
        r.model.has_output = false;
        assert_eq!(
            r.choose("token_embd.weight", &[256, 512]).unwrap(),
            GgmlType::Q6_K
        );
        r.ftype = FileType::Q8_0;
        assert_eq!(
            r.choose("blk.0.ffn_down_exps.weight", &[172, 64, 8])
                .unwrap(),
            GgmlType::F16
        );
    }

    #[test]
    fn pure_and_keep() {
        let mut r = rules(FileType::Q4_0, 2, 8);
        r.pure = true;
        assert_eq!(
            r.choose("output.weight", &[256, 32000]).unwrap(),
            GgmlType::Q4_0
        );
        assert_eq!(
            r.choose("blk.0.attn_k.weight", &[256, 64]).unwrap(),
            GgmlType::Q4_0
        );
        assert_eq!(
            r.choose("blk.0.ffn_norm.weight", &[256]).unwrap(),
            GgmlType::F32
        );
        r.keep = vec!["attn_k=q8_0".parse().unwrap()];
        assert_eq!(
            r.choose("blk.0.attn_k.weight", &[256, 64]).unwrap(),
            GgmlType::Q8_0
        );
        r.keep = vec!["ffn_down=q4_k".parse().unwrap()];
        assert!(r
            .choose("blk.0.ffn_down_exps.weight", &[172, 64, 8])
            .is_err());
        assert!("nothing".parse::<Keep>().is_err());
        assert!("x=q3_k".parse::<Keep>().is_err());
        assert!("(=q4_0".parse::<Keep>().is_err());
    }
}
