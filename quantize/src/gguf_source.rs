//! An existing GGUF file as a source (requantization): each tensor dequantized with the
//! library's block formats.

use crate::encode::decode;
use crate::source::{Source, SourceTensor};
use anyhow::{ensure, Context, Result};
use std::path::Path;
use tandem::gguf::GgufFile;

/// A GGUF file read as f32 rows.
pub struct GgufSource {
    pub file: GgufFile,
    tensors: Vec<SourceTensor>,
}

impl GgufSource {
    /// Opens `path`; every tensor must be of a type this tool can read.
    pub fn open(path: &Path) -> Result<GgufSource> {
        let file = GgufFile::open(path).with_context(|| format!("reading {}", path.display()))?;
        let mut tensors = Vec::new();
        for t in file.tensors() {
            ensure!(
                crate::encode::can_encode(t.ty()),
                "{}: tensor `{}` is {}, which this tool cannot read",
                path.display(),
                t.name(),
                t.ty()
            );
            tensors.push(SourceTensor {
                name: t.name().to_string(),
                shape: t.ne().iter().rev().copied().collect(),
                dtype: t.ty().name().to_string(),
                nbytes: t.nbytes(),
            });
        }
        Ok(GgufSource { file, tensors })
    }
}

impl Source for GgufSource {
    fn tensors(&self) -> &[SourceTensor] {
        &self.tensors
    }

    fn read_rows(&self, index: usize, row0: u64, out: &mut [f32]) -> Result<()> {
        let info = &self.file.tensors()[index];
        let t = &self.tensors[index];
        let row_bytes = info.nbytes() / t.n_rows().max(1);
        let rows = out.len() as u64 / t.row_len().max(1);
        let bytes = self.file.tensor_bytes(info);
        let start = usize::try_from(row0 * row_bytes)?;
        let end = usize::try_from((row0 + rows) * row_bytes)?;
        ensure!(end <= bytes.len(), "rows past the end of `{}`", t.name);
        decode(info.ty(), &bytes[start..end], out)
    }

    fn input_bytes(&self) -> u64 {
        self.file.file_size()
    }
}
