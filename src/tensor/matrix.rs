//! A borrowed, row-major quantized matrix in ggml layout.

use crate::quant::{Block, GgmlType};

/// A weight matrix `[rows, cols]` stored row-major as blocks of `ty` (ggml `ne = [cols, rows]`).
/// The bytes are usually a zero-copy view into a mmapped GGUF file.
#[derive(Clone, Copy, Debug)]
pub struct QMatrix<'a> {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub data: &'a [u8],
}

/// Why a byte slice cannot be viewed as a quantized matrix.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error("tensor type {0} has no compute kernels in tandem")]
    Unsupported(GgmlType),
    #[error("row length {cols} is not a multiple of the {ty} block size {block}")]
    RowNotBlocks {
        ty: GgmlType,
        cols: usize,
        block: usize,
    },
    #[error("{ty} matrix [{rows}, {cols}] needs {want} bytes, got {got}")]
    Size {
        ty: GgmlType,
        rows: usize,
        cols: usize,
        want: u64,
        got: usize,
    },
    #[error("{ty} data is not aligned to its {align}-byte block alignment")]
    Misaligned { ty: GgmlType, align: usize },
}

impl<'a> QMatrix<'a> {
    /// Views `data` as a `[rows, cols]` matrix of `ty`, checking the size and block geometry.
    pub fn new(
        ty: GgmlType,
        rows: usize,
        cols: usize,
        data: &'a [u8],
    ) -> Result<Self, MatrixError> {
        if !ty.is_supported() || ty == GgmlType::Q8_K {
            return Err(MatrixError::Unsupported(ty));
        }
        let block = ty.block_values();
        if !cols.is_multiple_of(block) {
            return Err(MatrixError::RowNotBlocks { ty, cols, block });
        }
        let want = (rows as u64)
            .checked_mul(cols as u64)
            .and_then(|n| ty.bytes_for(n));
        if want != Some(data.len() as u64) {
            return Err(MatrixError::Size {
                ty,
                rows,
                cols,
                want: want.unwrap_or(u64::MAX),
                got: data.len(),
            });
        }
        Ok(QMatrix {
            ty,
            rows,
            cols,
            data,
        })
    }

    /// The rows as typed blocks. `B::TYPE` must be `self.ty`.
    pub(crate) fn blocks<B: Block>(&self) -> Result<&'a [B], MatrixError> {
        assert_eq!(
            B::TYPE,
            self.ty,
            "QMatrix::blocks called with the wrong block type"
        );
        bytemuck::try_cast_slice(self.data).map_err(|_| MatrixError::Misaligned {
            ty: self.ty,
            align: std::mem::align_of::<B>(),
        })
    }

    /// Bytes read by one pass over the matrix.
    pub fn nbytes(&self) -> usize {
        self.data.len()
    }
}
