//! An existing GGUF file as a source (requantization): each tensor dequantized with the
//! library's block formats.

use crate::encode::decode;
use crate::source::{Source, SourceTensor};
use anyhow::{ensure, Context, Result};
use memmap2::Mmap;
use std::path::Path;
use tandem::gguf::GgufFile;

/// A GGUF file read as f32 rows.
pub struct GgufSource {
    /// The parsed file (header, metadata, tensor table; its checks bound every range below).
    pub file: GgufFile,
    /// A second read-only map of the same file for the tensor data, whose pages are dropped
    /// after each tensor (the library's map is private to `GgufFile`).
    data: Mmap,
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
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: read-only map; like the library's reader, it assumes the file is not
        // truncated while it is being converted.
        let data =
            unsafe { Mmap::map(&f) }.with_context(|| format!("mapping {}", path.display()))?;
        ensure!(
            data.len() as u64 == file.file_size(),
            "{}: changed size while being opened",
            path.display()
        );
        Ok(GgufSource {
            file,
            data,
            tensors,
        })
    }

    /// The absolute byte range of tensor `index` (checked by the GGUF reader to lie in the file).
    fn range(&self, index: usize) -> (usize, usize) {
        let info = &self.file.tensors()[index];
        let start = (self.file.data_offset() + info.offset()) as usize;
        (start, info.nbytes() as usize)
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
        let (start, len) = self.range(index);
        let bytes = &self.data[start..start + len];
        let first = usize::try_from(row0 * row_bytes)?;
        let end = usize::try_from((row0 + rows) * row_bytes)?;
        ensure!(end <= bytes.len(), "rows past the end of `{}`", t.name);
        decode(info.ty(), &bytes[first..end], out)
    }

    fn input_bytes(&self) -> u64 {
        self.file.file_size()
    }

    #[cfg(unix)]
    fn release(&self, index: usize, row0: u64, rows: u64) {
        let (start, len) = self.range(index);
        let row_bytes = len as u64 / self.tensors[index].n_rows().max(1);
        let first = (row0 * row_bytes).min(len as u64) as usize;
        let end = ((row0 + rows) * row_bytes).min(len as u64) as usize;
        let (start, len) = (start + first, end - first);
        // SAFETY: as for safetensors sources: a read-only file mapping with no live slice of
        // this range; the pages are re-read from the file if touched again. Best effort.
        let _ = unsafe {
            self.data
                .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, len)
        };
    }
}
