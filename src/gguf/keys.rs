//! Metadata key names, as llama.cpp and gguf-py write them. Keys under the architecture prefix
//! (`llama.`) have a constant for the `llama` spelling and a suffix for building the key of
//! another architecture with [`arch_key`].

/// `{arch}.{suffix}`, e.g. `arch_key("llama", EXPERT_COUNT_SUFFIX)` = `llama.expert_count`.
pub fn arch_key(arch: &str, suffix: &str) -> String {
    format!("{arch}.{suffix}")
}

// general.*
pub const GENERAL_ARCHITECTURE: &str = "general.architecture";
pub const GENERAL_QUANTIZATION_VERSION: &str = "general.quantization_version";
pub const GENERAL_ALIGNMENT: &str = "general.alignment";
pub const GENERAL_NAME: &str = "general.name";
pub const GENERAL_VERSION: &str = "general.version";
pub const GENERAL_TYPE: &str = "general.type";
pub const GENERAL_BASENAME: &str = "general.basename";
pub const GENERAL_FINETUNE: &str = "general.finetune";
pub const GENERAL_SIZE_LABEL: &str = "general.size_label";
pub const GENERAL_FILE_TYPE: &str = "general.file_type";

// {arch}.* suffixes.
pub const CONTEXT_LENGTH_SUFFIX: &str = "context_length";
pub const EMBEDDING_LENGTH_SUFFIX: &str = "embedding_length";
pub const BLOCK_COUNT_SUFFIX: &str = "block_count";
pub const FEED_FORWARD_LENGTH_SUFFIX: &str = "feed_forward_length";
pub const VOCAB_SIZE_SUFFIX: &str = "vocab_size";
pub const EXPERT_COUNT_SUFFIX: &str = "expert_count";
pub const EXPERT_USED_COUNT_SUFFIX: &str = "expert_used_count";
pub const HEAD_COUNT_SUFFIX: &str = "attention.head_count";
pub const HEAD_COUNT_KV_SUFFIX: &str = "attention.head_count_kv";
pub const KEY_LENGTH_SUFFIX: &str = "attention.key_length";
pub const VALUE_LENGTH_SUFFIX: &str = "attention.value_length";
pub const LAYER_NORM_RMS_EPS_SUFFIX: &str = "attention.layer_norm_rms_epsilon";
pub const SLIDING_WINDOW_SUFFIX: &str = "attention.sliding_window";
pub const ROPE_DIMENSION_COUNT_SUFFIX: &str = "rope.dimension_count";
pub const ROPE_FREQ_BASE_SUFFIX: &str = "rope.freq_base";
pub const ROPE_SCALING_TYPE_SUFFIX: &str = "rope.scaling.type";

// llama.* (Llama, Mistral and Mixtral all use the `llama` architecture).
pub const LLAMA_CONTEXT_LENGTH: &str = "llama.context_length";
pub const LLAMA_EMBEDDING_LENGTH: &str = "llama.embedding_length";
pub const LLAMA_BLOCK_COUNT: &str = "llama.block_count";
pub const LLAMA_FEED_FORWARD_LENGTH: &str = "llama.feed_forward_length";
pub const LLAMA_VOCAB_SIZE: &str = "llama.vocab_size";
pub const LLAMA_EXPERT_COUNT: &str = "llama.expert_count";
pub const LLAMA_EXPERT_USED_COUNT: &str = "llama.expert_used_count";
pub const LLAMA_HEAD_COUNT: &str = "llama.attention.head_count";
pub const LLAMA_HEAD_COUNT_KV: &str = "llama.attention.head_count_kv";
pub const LLAMA_KEY_LENGTH: &str = "llama.attention.key_length";
pub const LLAMA_VALUE_LENGTH: &str = "llama.attention.value_length";
pub const LLAMA_LAYER_NORM_RMS_EPS: &str = "llama.attention.layer_norm_rms_epsilon";
pub const LLAMA_ROPE_DIMENSION_COUNT: &str = "llama.rope.dimension_count";
pub const LLAMA_ROPE_FREQ_BASE: &str = "llama.rope.freq_base";
pub const LLAMA_ROPE_SCALING_TYPE: &str = "llama.rope.scaling.type";
pub const LLAMA_ROPE_SCALING_FACTOR: &str = "llama.rope.scaling.factor";

// tokenizer.*
pub const TOKENIZER_MODEL: &str = "tokenizer.ggml.model";
pub const TOKENIZER_PRE: &str = "tokenizer.ggml.pre";
pub const TOKENIZER_TOKENS: &str = "tokenizer.ggml.tokens";
pub const TOKENIZER_SCORES: &str = "tokenizer.ggml.scores";
pub const TOKENIZER_TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
pub const TOKENIZER_BOS_ID: &str = "tokenizer.ggml.bos_token_id";
pub const TOKENIZER_EOS_ID: &str = "tokenizer.ggml.eos_token_id";
pub const TOKENIZER_UNK_ID: &str = "tokenizer.ggml.unknown_token_id";
pub const TOKENIZER_PAD_ID: &str = "tokenizer.ggml.padding_token_id";
/// gguf-py's spelling.
pub const TOKENIZER_SEP_ID: &str = "tokenizer.ggml.seperator_token_id";
pub const TOKENIZER_CLS_ID: &str = "tokenizer.ggml.cls_token_id";
pub const TOKENIZER_MASK_ID: &str = "tokenizer.ggml.mask_token_id";
pub const TOKENIZER_ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
pub const TOKENIZER_ADD_EOS: &str = "tokenizer.ggml.add_eos_token";
pub const TOKENIZER_ADD_SEP: &str = "tokenizer.ggml.add_sep_token";
pub const TOKENIZER_ADD_SPACE_PREFIX: &str = "tokenizer.ggml.add_space_prefix";
pub const TOKENIZER_CHAT_TEMPLATE: &str = "tokenizer.chat_template";
pub const TOKENIZER_HF_JSON: &str = "tokenizer.huggingface.json";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_keys_are_arch_keys() {
        for (full, suffix) in [
            (LLAMA_EXPERT_COUNT, EXPERT_COUNT_SUFFIX),
            (LLAMA_HEAD_COUNT_KV, HEAD_COUNT_KV_SUFFIX),
            (LLAMA_ROPE_FREQ_BASE, ROPE_FREQ_BASE_SUFFIX),
            (LLAMA_LAYER_NORM_RMS_EPS, LAYER_NORM_RMS_EPS_SUFFIX),
        ] {
            assert_eq!(arch_key("llama", suffix), full);
        }
    }
}
