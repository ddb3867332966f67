//! The output types `--type` accepts: a base block type plus, for the K-quant mixes, a name.
//! Each maps to llama.cpp's `llama_ftype`, which is stored as `general.file_type`.

use tandem::quant::GgmlType;

/// One `--type` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    F32,
    F16,
    Bf16,
    Q8_0,
    Q6K,
    Q5KM,
    Q5_0,
    Q5_1,
    Q4KM,
    Q4_0,
    Q4_1,
}

impl FileType {
    /// Every type, in the order `--help` lists them.
    pub const ALL: [FileType; 11] = [
        FileType::F32,
        FileType::F16,
        FileType::Bf16,
        FileType::Q8_0,
        FileType::Q6K,
        FileType::Q5KM,
        FileType::Q5_0,
        FileType::Q5_1,
        FileType::Q4KM,
        FileType::Q4_0,
        FileType::Q4_1,
    ];

    /// The command-line spelling.
    pub fn name(self) -> &'static str {
        match self {
            FileType::F32 => "f32",
            FileType::F16 => "f16",
            FileType::Bf16 => "bf16",
            FileType::Q8_0 => "q8_0",
            FileType::Q6K => "q6_k",
            FileType::Q5KM => "q5_k_m",
            FileType::Q5_0 => "q5_0",
            FileType::Q5_1 => "q5_1",
            FileType::Q4KM => "q4_k_m",
            FileType::Q4_0 => "q4_0",
            FileType::Q4_1 => "q4_1",
        }
    }

    /// Parses the command-line spelling, case-insensitively.
    pub fn from_name(name: &str) -> Option<FileType> {
        FileType::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// The type most tensors get (llama.cpp's `default_type` for this ftype).
    pub fn base(self) -> GgmlType {
        match self {
            FileType::F32 => GgmlType::F32,
            FileType::F16 => GgmlType::F16,
            FileType::Bf16 => GgmlType::BF16,
            FileType::Q8_0 => GgmlType::Q8_0,
            FileType::Q6K => GgmlType::Q6_K,
            FileType::Q5KM => GgmlType::Q5_K,
            FileType::Q5_0 => GgmlType::Q5_0,
            FileType::Q5_1 => GgmlType::Q5_1,
            FileType::Q4KM => GgmlType::Q4_K,
            FileType::Q4_0 => GgmlType::Q4_0,
            FileType::Q4_1 => GgmlType::Q4_1,
        }
    }

    /// `llama_ftype` as stored in `general.file_type`.
    pub fn llama_ftype(self) -> u32 {
        match self {
            FileType::F32 => 0,
            FileType::F16 => 1,
            FileType::Q4_0 => 2,
            FileType::Q4_1 => 3,
            FileType::Q8_0 => 7,
            FileType::Q5_0 => 8,
            FileType::Q5_1 => 9,
            FileType::Q4KM => 15,
            FileType::Q5KM => 17,
            FileType::Q6K => 18,
            FileType::Bf16 => 32,
        }
    }

    /// Whether the base type is a quantized block format. llama.cpp applies its per-tensor
    /// rules only then; float outputs are what `convert_hf_to_gguf.py --outtype` writes.
    pub fn is_quantized(self) -> bool {
        !matches!(self, FileType::F32 | FileType::F16 | FileType::Bf16)
    }
}

impl std::fmt::Display for FileType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for FileType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FileType::from_name(s).ok_or_else(|| {
            let all: Vec<_> = FileType::ALL.iter().map(|t| t.name()).collect();
            format!("unknown type `{s}`; expected one of {}", all.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in FileType::ALL {
            assert_eq!(FileType::from_name(t.name()), Some(t));
            assert_eq!(t.name().parse::<FileType>(), Ok(t));
        }
        assert!("q3_k".parse::<FileType>().is_err());
    }
}
