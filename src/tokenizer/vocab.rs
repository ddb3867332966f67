//! A SentencePiece-style vocabulary as GGUF stores it (`tokenizer.ggml.*`).

/// `tokenizer.ggml.token_type` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl TokenType {
    pub fn from_id(id: i32) -> Option<TokenType> {
        Some(match id {
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => return None,
        })
    }
}

/// Everything needed to build the tokenizer.
#[derive(Clone, Debug)]
pub struct Vocab {
    /// Pieces by id, with `▁` for spaces and `<0xAB>` byte pieces.
    pub tokens: Vec<String>,
    /// Piece scores by id; for a BPE vocabulary, higher merges first.
    pub scores: Vec<f32>,
    pub types: Vec<TokenType>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
}
