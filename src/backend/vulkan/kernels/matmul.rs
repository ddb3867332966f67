//! `y = x · Wᵀ` for a weight matrix in device buffers: the matrix-vector kernel
//! (`shaders/matvec.comp`) for up to 8 rows of x, the tiled one (`shaders/matmul.comp`) for more.

use super::Kernels;
use crate::backend::vulkan::commands::Commands;
use crate::backend::vulkan::error::VulkanError;
use crate::backend::vulkan::matrix::GpuMatrix;
use crate::backend::vulkan::memory::Buffer;

/// Push constants of both kernels: rows, cols, n, x_off, x_stride, y_off, y_stride, x_cols.
pub(crate) const PUSH_WORDS: usize = 8;
/// Rows of x one matrix-vector workgroup takes (`MAX_COLS` in the shader).
pub const MATVEC_COLS: usize = 8;
/// Weight rows and rows of x in one tile of the tiled kernel (`BM`, `BN`).
const TILE_ROWS: usize = 64;
const TILE_COLS: usize = 32;

/// Rows of f32 in a buffer: row `i` starts at float `offset + i * stride`.
#[derive(Clone, Copy)]
pub struct Rows<'b> {
    pub buffer: &'b Buffer,
    pub offset: usize,
    pub stride: usize,
}

impl Rows<'_> {
    /// Checks that `n` rows of `len` floats fit in the buffer.
    fn check(&self, n: usize, len: usize, what: &str) -> Result<(), VulkanError> {
        let end = (n.max(1) - 1)
            .checked_mul(self.stride)
            .and_then(|v| v.checked_add(self.offset + len));
        match end {
            Some(end)
                if self.stride >= len
                    && (end as u64) * 4 <= self.buffer.size
                    && end <= u32::MAX as usize =>
            {
                Ok(())
            }
            _ => Err(VulkanError::Unsupported(format!(
                "matmul: {n} rows of {len} floats at {} (stride {}) do not fit {what}'s {} bytes",
                self.offset, self.stride, self.buffer.size
            ))),
        }
    }
}

/// Which kernel computes the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Product {
    /// Matrix-vector for up to [`MATVEC_COLS`] rows of x, tiled above.
    Auto,
    Vector,
    Tiled,
}

/// Records `y[i] = W · x[i]` for the `n` rows of `x`.
pub fn record(
    cmds: &mut Commands,
    kernels: &Kernels,
    w: &GpuMatrix,
    x: Rows,
    n: usize,
    y: Rows,
    product: Product,
) -> Result<(), VulkanError> {
    x.check(n, w.cols, "x")?;
    y.check(n, w.rows, "y")?;
    let vector = match product {
        Product::Auto => n <= MATVEC_COLS,
        Product::Vector => true,
        Product::Tiled => false,
    };
    let kernel = if vector {
        kernels.matvec(w.ty)?
    } else {
        kernels.matmul(w.ty)?
    };
    for chunk in &w.chunks {
        let push = [
            chunk.rows,
            w.stored_cols,
            n,
            x.offset,
            x.stride,
            y.offset + chunk.row0,
            y.stride,
            w.cols,
        ]
        .map(|v| v as u32);
        let groups = if vector {
            [chunk.rows, n.div_ceil(MATVEC_COLS), 1]
        } else {
            [chunk.rows.div_ceil(TILE_ROWS), n.div_ceil(TILE_COLS), 1]
        }
        .map(|v| v as u32);
        cmds.dispatch(&kernel, &[&chunk.buffer, x.buffer, y.buffer], &push, groups)?;
    }
    Ok(())
}
