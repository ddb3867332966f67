//! The model's tensors by role, named once (as llama.cpp's tensor-info table does): each role's
//! GGUF name, whether it repeats per layer, and which part of the model it belongs to. Loading
//! binds tensors through this table, and expert placement reasons over it: the
//! [`Part::Expert`] tensors are the ones that can live on another device, one expert at a time.

/// What a tensor is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    TokenEmbedding,
    AttnNorm,
    AttnQ,
    AttnK,
    AttnV,
    AttnOutput,
    FfnNorm,
    /// A dense layer's feed-forward matrices.
    FfnGate,
    FfnUp,
    FfnDown,
    /// The MoE router, `[n_expert, d_model]`.
    Router,
    /// Every expert's matrices of a layer, stacked along a third axis.
    ExpertGate,
    ExpertUp,
    ExpertDown,
    OutputNorm,
    Output,
}

/// The part of the model a tensor belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// Embedding, final norm and output head: read once per token, outside the layers.
    Io,
    /// Attention and its norm: every token reads all of it.
    Attention,
    /// A dense feed-forward network, the FFN norm and the router: every token reads all of it.
    Ffn,
    /// One slice per expert: a token reads only the slices of the experts routed to it.
    Expert,
}

pub struct TensorInfo {
    pub role: Role,
    /// The GGUF name without `blk.{layer}.` and `.weight`.
    pub stem: &'static str,
    pub per_layer: bool,
    pub part: Part,
    /// For stacked expert tensors: the stem of the older one-tensor-per-expert layout
    /// (`blk.{layer}.{stem}.{expert}.weight`).
    pub per_expert_stem: Option<&'static str>,
}

const fn info(role: Role, stem: &'static str, per_layer: bool, part: Part) -> TensorInfo {
    TensorInfo {
        role,
        stem,
        per_layer,
        part,
        per_expert_stem: None,
    }
}

const fn expert(role: Role, stem: &'static str, per_expert_stem: &'static str) -> TensorInfo {
    TensorInfo {
        role,
        stem,
        per_layer: true,
        part: Part::Expert,
        per_expert_stem: Some(per_expert_stem),
    }
}

/// Every role, once.
pub static TENSORS: [TensorInfo; 16] = [
    info(Role::TokenEmbedding, "token_embd", false, Part::Io),
    info(Role::AttnNorm, "attn_norm", true, Part::Attention),
    info(Role::AttnQ, "attn_q", true, Part::Attention),
    info(Role::AttnK, "attn_k", true, Part::Attention),
    info(Role::AttnV, "attn_v", true, Part::Attention),
    info(Role::AttnOutput, "attn_output", true, Part::Attention),
    info(Role::FfnNorm, "ffn_norm", true, Part::Ffn),
    info(Role::FfnGate, "ffn_gate", true, Part::Ffn),
    info(Role::FfnUp, "ffn_up", true, Part::Ffn),
    info(Role::FfnDown, "ffn_down", true, Part::Ffn),
    info(Role::Router, "ffn_gate_inp", true, Part::Ffn),
    expert(Role::ExpertGate, "ffn_gate_exps", "ffn_gate"),
    expert(Role::ExpertUp, "ffn_up_exps", "ffn_up"),
    expert(Role::ExpertDown, "ffn_down_exps", "ffn_down"),
    info(Role::OutputNorm, "output_norm", false, Part::Io),
    info(Role::Output, "output", false, Part::Io),
];

impl Role {
    pub fn info(self) -> &'static TensorInfo {
        TENSORS
            .iter()
            .find(|t| t.role == self)
            .expect("every role is in TENSORS")
    }

    /// The GGUF name: `{stem}.weight`, or `blk.{layer}.{stem}.weight` for per-layer roles.
    pub fn name(self, layer: usize) -> String {
        let t = self.info();
        if t.per_layer {
            format!("blk.{layer}.{}.weight", t.stem)
        } else {
            format!("{}.weight", t.stem)
        }
    }

    /// The name of one expert's tensor in the older one-tensor-per-expert layout; `None` for
    /// roles that are not per expert.
    pub fn per_expert_name(self, layer: usize, expert: usize) -> Option<String> {
        let stem = self.info().per_expert_stem?;
        Some(format!("blk.{layer}.{stem}.{expert}.weight"))
    }

    pub fn part(self) -> Part {
        self.info().part
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_once_with_its_gguf_names() {
        for (i, t) in TENSORS.iter().enumerate() {
            assert!(TENSORS[..i]
                .iter()
                .all(|u| u.role != t.role && u.stem != t.stem));
            assert!(std::ptr::eq(t.role.info(), t));
        }
        // As llama.cpp's converter writes them (the fixtures' files use every one of these).
        assert_eq!(Role::TokenEmbedding.name(3), "token_embd.weight");
        assert_eq!(Role::AttnQ.name(3), "blk.3.attn_q.weight");
        assert_eq!(Role::Router.name(0), "blk.0.ffn_gate_inp.weight");
        assert_eq!(Role::ExpertUp.name(1), "blk.1.ffn_up_exps.weight");
        assert_eq!(
            Role::ExpertDown.per_expert_name(0, 5).as_deref(),
            Some("blk.0.ffn_down.5.weight")
        );
        assert_eq!(Role::FfnDown.per_expert_name(0, 5), None);
        assert_eq!(Role::Output.name(9), "output.weight");
    }

    #[test]
    fn only_expert_tensors_are_per_expert() {
        for t in &TENSORS {
            assert_eq!(
                t.part == Part::Expert,
                t.per_expert_stem.is_some(),
                "{}",
                t.stem
            );
        }
    }
}
