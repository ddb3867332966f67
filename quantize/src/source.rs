//! Where tensor values come from: safetensors checkpoints, GGUF files and the synthetic
//! generator all present their tensors this way, and read any run of rows as f32.

use anyhow::Result;

/// One tensor of a source, as the source names and shapes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceTensor {
    pub name: String,
    /// Outermost dimension first (PyTorch order); the last is the row length.
    pub shape: Vec<u64>,
    /// The stored element type, for messages and the plan (`BF16`, `Q4_K`).
    pub dtype: String,
    /// Stored bytes.
    pub nbytes: u64,
}

impl SourceTensor {
    /// Values per row (1 for a scalar).
    pub fn row_len(&self) -> u64 {
        self.shape.last().copied().unwrap_or(1)
    }

    /// Number of rows.
    pub fn n_rows(&self) -> u64 {
        let n: u64 = self.shape.iter().product();
        n / self.row_len().max(1)
    }
}

/// A set of tensors that can be read row by row.
pub trait Source: Sync {
    /// The tensors, in the order the source lists them.
    fn tensors(&self) -> &[SourceTensor];

    /// Reads rows `row0..row0 + out.len() / row_len` of tensor `index` into `out` as f32.
    /// `out.len()` is a whole number of rows within the tensor.
    fn read_rows(&self, index: usize, row0: u64, out: &mut [f32]) -> Result<()>;

    /// The size of the source on disk (for the summary).
    fn input_bytes(&self) -> u64;

    /// Rows `row0..row0 + rows` of tensor `index` will not be read again: a memory-mapped
    /// source drops their pages, so that resident memory does not grow with the model.
    fn release(&self, index: usize, row0: u64, rows: u64) {
        let _ = (index, row0, rows);
    }
}
