//! Matrix-vector throughput on the device (`tandem bench --gpu N`, `benches/gpu_matvec.rs`): weight
//! bytes per second of `y = W·x` for one row of x, cycling over enough copies of the matrix that
//! no call finds its weights in the device's caches, as decoding does.

use super::commands::{Commands, QueueKind};
use super::error::VulkanError;
use super::instance::DeviceKind;
use super::kernels::matmul::{self, Product, Rows};
use super::kernels::Kernels;
use super::matrix::GpuMatrix;
use super::memory::{Buffer, Place};
use super::upload::Uploader;
use crate::quant::{GgmlType, Quantize};
use crate::tensor::QMatrix;
use std::time::{Duration, Instant};

/// The Mixtral 8x7B expert shapes: ffn_gate/up `[14336, 4096]` and ffn_down `[4096, 14336]`.
pub const MIXTRAL_EXPERT_SHAPES: [(usize, usize); 2] = [(14336, 4096), (4096, 14336)];

/// Weight bytes cycled through on a GPU: several times any GPU's last-level cache (H200: 60 MB).
const WORKING_SET: u64 = 768 << 20;
/// How long each shape is timed for.
const MIN_TIME: Duration = Duration::from_millis(500);

/// One format and shape, timed.
#[derive(Clone, Debug)]
pub struct MatvecTiming {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    /// Weight bytes one product reads.
    pub bytes: u64,
    pub seconds: f64,
}

impl MatvecTiming {
    pub fn bytes_per_second(&self) -> f64 {
        self.bytes as f64 / self.seconds
    }
}

/// Times `y = W·x` for a `[rows, cols]` matrix of `ty` (random weights of a trained model's
/// spread), seconds per product averaged over one submission of many.
pub fn matvec(
    kernels: &Kernels,
    ty: GgmlType,
    rows: usize,
    cols: usize,
) -> Result<MatvecTiming, VulkanError> {
    let gpu = kernels.gpu();
    let bytes = random_rows(ty, rows, cols)?;
    let m = QMatrix::new(ty, rows, cols, &bytes)
        .map_err(|e| VulkanError::Unsupported(e.to_string()))?;
    // A CPU driver's "device memory" is RAM and its caches are the CPU's: two copies do.
    let copies = if gpu.info.kind == DeviceKind::Cpu {
        2
    } else {
        (WORKING_SET / bytes.len() as u64).clamp(2, 64) as usize
    };
    let mut uploader = Uploader::new(gpu);
    let mats = (0..copies)
        .map(|_| GpuMatrix::upload(gpu, &m, &mut uploader, "bench matrix"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut x = Buffer::new(gpu, cols as u64 * 4, Place::Upload, "bench x")?;
    let xs: Vec<f32> = (0..cols)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    x.write(0, &xs)?;
    let y = Buffer::new(gpu, rows as u64 * 4, Place::Device, "bench y")?;
    let mut cmds = Commands::new(gpu, QueueKind::Compute)?;
    let mut time = |calls: usize| -> Result<f64, VulkanError> {
        cmds.begin()?;
        for i in 0..calls {
            let xr = Rows {
                buffer: &x,
                offset: 0,
                stride: cols,
            };
            let yr = Rows {
                buffer: &y,
                offset: 0,
                stride: rows,
            };
            matmul::record(
                &mut cmds,
                kernels,
                &mats[i % copies],
                xr,
                1,
                yr,
                Product::Vector,
            )?;
            cmds.barrier();
        }
        let start = Instant::now();
        cmds.run()?;
        Ok(start.elapsed().as_secs_f64())
    };
    // Warm-up (pipeline build, first touch), then a pass sized from it.
    let one = time(copies)? / copies as f64;
    let calls = ((MIN_TIME.as_secs_f64() / one.max(1e-7)) as usize).clamp(copies, 20_000);
    let seconds = time(calls)? / calls as f64;
    Ok(MatvecTiming {
        ty,
        rows,
        cols,
        bytes: bytes.len() as u64,
        seconds,
    })
}

/// A `[rows, cols]` matrix of `ty`: 64 rows quantized from values drawn like a trained model's
/// (std ≈ 0.02), repeated (speed does not depend on the values, and quantizing 58M values for
/// every format would take longer than the timing).
fn random_rows(ty: GgmlType, rows: usize, cols: usize) -> Result<Vec<u8>, VulkanError> {
    let distinct = rows.min(64);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let src: Vec<f32> = (0..distinct * cols)
        .map(|_| {
            let mut s = 0.0f32;
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s += (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            }
            s * 0.035
        })
        .collect();
    let block = crate::dispatch_weight_type!(ty, W => quantize::<W>(&src),
        else t => return Err(VulkanError::Unsupported(format!("{t} is not a weight type"))));
    let row_bytes = block.len() / distinct;
    let mut out = Vec::with_capacity(rows * row_bytes);
    for r in 0..rows {
        out.extend_from_slice(&block[(r % distinct) * row_bytes..][..row_bytes]);
    }
    Ok(out)
}

fn quantize<W: Quantize>(src: &[f32]) -> Vec<u8> {
    let mut blocks = vec![<W as bytemuck::Zeroable>::zeroed(); src.len() / W::VALUES];
    W::quantize(src, &mut blocks);
    bytemuck::cast_slice(&blocks).to_vec()
}
