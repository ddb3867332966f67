//! A weight matrix in device memory: its rows split over as many buffers as the device's storage
//! range and allocation limits require (128 MiB and 2 GiB on lavapipe), each holding whole rows.
//! Float rows whose length is not a multiple of 16 (the shaders' float "block") are stored
//! zero-padded to one.

use super::device::Gpu;
use super::error::VulkanError;
use super::memory::{Buffer, Place};
use super::shaders::{format_slot, shader_block_values};
use super::upload::Uploader;
use crate::quant::GgmlType;
use crate::tensor::QMatrix;
use std::sync::Arc;

/// Rows per buffer at most: the matrix-vector kernel runs one workgroup per row, and 65535
/// workgroups along x is what every device allows.
const MAX_CHUNK_ROWS: usize = 65535;

/// Rows `row0 .. row0 + rows` of a matrix in one buffer.
pub struct Chunk {
    pub buffer: Buffer,
    pub row0: usize,
    pub rows: usize,
}

pub struct GpuMatrix {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    /// Values per stored row: `cols`, rounded up to 16 for the float formats.
    pub stored_cols: usize,
    pub chunks: Vec<Chunk>,
}

/// How a matrix is stored on a device.
struct Layout {
    /// Rows per buffer.
    per_buffer: usize,
    /// Bytes per row in the file, and as stored (padded).
    row_bytes: usize,
    stored_row_bytes: usize,
    stored_cols: usize,
}

impl GpuMatrix {
    /// How `m` splits into buffers on `gpu`, or why it cannot go to the device.
    fn layout(gpu: &Gpu, m: &QMatrix) -> Result<Layout, VulkanError> {
        if format_slot(m.ty).is_none() {
            return Err(VulkanError::Unsupported(format!(
                "no GPU kernels for {} weights",
                m.ty
            )));
        }
        let row_bytes = m.data.len() / m.rows.max(1);
        let stored_cols = m.cols.next_multiple_of(shader_block_values(m.ty));
        // Only float rows are padded: a quantized row is whole blocks already.
        let stored_row_bytes = if stored_cols == m.cols {
            row_bytes
        } else {
            row_bytes / m.cols * stored_cols
        };
        let per_buffer = (gpu.max_buffer_bytes() / stored_row_bytes.max(1) as u64) as usize;
        if per_buffer == 0 {
            return Err(VulkanError::Unsupported(format!(
                "one row of {stored_row_bytes} bytes exceeds the device's {}-byte buffer limit",
                gpu.max_buffer_bytes()
            )));
        }
        Ok(Layout {
            per_buffer: per_buffer.min(MAX_CHUNK_ROWS),
            row_bytes,
            stored_row_bytes,
            stored_cols,
        })
    }

    /// Device bytes `m` would take (rounded up per buffer).
    pub fn device_bytes(gpu: &Gpu, m: &QMatrix) -> Result<u64, VulkanError> {
        let l = Self::layout(gpu, m)?;
        let full = (m.rows / l.per_buffer) as u64
            * ((l.per_buffer * l.stored_row_bytes) as u64).next_multiple_of(4);
        let rest = ((m.rows % l.per_buffer) * l.stored_row_bytes) as u64;
        Ok(full + rest.next_multiple_of(4))
    }

    /// Copies `m` into device-local buffers.
    pub fn upload(
        gpu: &Arc<Gpu>,
        m: &QMatrix,
        uploader: &mut Uploader,
        name: &str,
    ) -> Result<GpuMatrix, VulkanError> {
        let l = Self::layout(gpu, m)?;
        let mut chunks = Vec::new();
        let mut row0 = 0;
        while row0 < m.rows {
            let rows = l.per_buffer.min(m.rows - row0);
            let bytes = &m.data[row0 * l.row_bytes..(row0 + rows) * l.row_bytes];
            let mut buffer =
                Buffer::new(gpu, (rows * l.stored_row_bytes) as u64, Place::Device, name)?;
            if l.stored_row_bytes == l.row_bytes {
                uploader.upload(&mut buffer, bytes)?;
            } else {
                let mut padded = vec![0u8; rows * l.stored_row_bytes];
                for (dst, src) in padded
                    .chunks_exact_mut(l.stored_row_bytes)
                    .zip(bytes.chunks_exact(l.row_bytes))
                {
                    dst[..l.row_bytes].copy_from_slice(src);
                }
                uploader.upload(&mut buffer, &padded)?;
            }
            chunks.push(Chunk { buffer, row0, rows });
            row0 += rows;
        }
        Ok(GpuMatrix {
            ty: m.ty,
            rows: m.rows,
            cols: m.cols,
            stored_cols: l.stored_cols,
            chunks,
        })
    }
}
