//! Every GPU kernel against the CPU's scalar reference, for every weight format: the dequantized
//! values (through an identity matrix), then products of random matrices with random activations,
//! at sizes that are not multiples of the workgroup or tile.

mod common;

use std::sync::Arc;
use tandem::backend::vulkan::commands::{Commands, QueueKind};
use tandem::backend::vulkan::kernels::matmul::{self, Product, Rows};
use tandem::backend::vulkan::kernels::Kernels;
use tandem::backend::vulkan::matrix::GpuMatrix;
use tandem::backend::vulkan::memory::{Buffer, Place};
use tandem::backend::vulkan::shaders::GPU_FORMATS;
use tandem::backend::vulkan::upload::Uploader;
use tandem::backend::vulkan::{Gpu, GpuOptions};
use tandem::dispatch_weight_type;
use tandem::quant::{GgmlType, Quantize};
use tandem::tensor::QMatrix;

/// f32's unit roundoff.
const U: f64 = 1.0 / (1u64 << 24) as f64;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        // xorshift64*; 53 random bits in [0, 1).
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal, with occasional large values so that block scales vary.
    fn value(&mut self) -> f32 {
        let s: f64 = (0..4).map(|_| self.next()).sum::<f64>() - 2.0;
        let big = if self.next() < 0.05 { 8.0 } else { 1.0 };
        (s * big) as f32
    }
}

/// A random `[rows, cols]` matrix of `ty`: its bytes, and its values as the CPU's scalar
/// dequantization gives them (the reference).
fn random_matrix(ty: GgmlType, rows: usize, cols: usize, rng: &mut Rng) -> (Vec<u8>, Vec<f32>) {
    let src: Vec<f32> = (0..rows * cols)
        .map(|i| rng.value() + if i % cols < cols / 3 { 0.5 } else { 0.0 })
        .collect();
    dispatch_weight_type!(ty, W => {
        let mut blocks = vec![<W as bytemuck::Zeroable>::zeroed(); rows * cols / <W as tandem::quant::Block>::VALUES];
        W::quantize(&src, &mut blocks);
        let mut deq = vec![0.0f32; rows * cols];
        W::dequantize(&blocks, &mut deq);
        (bytemuck::cast_slice(&blocks).to_vec(), deq)
    }, else t => panic!("no format {t}"))
}

/// Values per block as the shaders see them (the float formats work in 16s).
fn block_values(ty: GgmlType) -> usize {
    ty.block_values().max(16)
}

/// Per value, the largest magnitude in its block: the scale that the dequantization's rounding
/// is relative to.
fn block_max(deq: &[f32], block: usize) -> Vec<f64> {
    deq.chunks(block)
        .flat_map(|b| {
            let m = b.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
            std::iter::repeat_n(m, b.len())
        })
        .collect()
}

struct Case {
    gpu: Arc<Gpu>,
    kernels: Kernels,
    uploader: Uploader,
    cmds: Commands,
}

impl Case {
    fn new(gpu: Arc<Gpu>) -> Case {
        Case {
            kernels: Kernels::new(&gpu),
            uploader: Uploader::new(&gpu),
            cmds: Commands::new(&gpu, QueueKind::Compute).unwrap(),
            gpu,
        }
    }

    /// `y[i] = W · x[i]` on the device; `y: [n, m.rows]`.
    fn product(&mut self, m: &QMatrix, x: &[f32], n: usize, how: Product) -> Vec<f32> {
        let (rows, cols) = (m.rows, m.cols);
        let w = GpuMatrix::upload(&self.gpu, m, &mut self.uploader, "test matrix").unwrap();
        // Offsets and strides that are not the packed ones, to check the kernels use them.
        let (x_off, x_stride, y_off, y_stride) = (3, cols + 5, 7, rows + 2);
        let mut xb = Buffer::new(
            &self.gpu,
            ((x_off + n * x_stride) * 4) as u64,
            Place::Upload,
            "x",
        )
        .unwrap();
        for i in 0..n {
            xb.write((x_off + i * x_stride) * 4, &x[i * cols..(i + 1) * cols])
                .unwrap();
        }
        let yb = Buffer::new(
            &self.gpu,
            ((y_off + n * y_stride) * 4) as u64,
            Place::Readback,
            "y",
        )
        .unwrap();
        self.cmds.begin().unwrap();
        let xs = Rows {
            buffer: &xb,
            offset: x_off,
            stride: x_stride,
        };
        let ys = Rows {
            buffer: &yb,
            offset: y_off,
            stride: y_stride,
        };
        matmul::record(&mut self.cmds, &self.kernels, &w, xs, n, ys, how).unwrap();
        self.cmds.barrier();
        self.cmds.run().unwrap();
        let mut y = vec![0.0f32; n * rows];
        for i in 0..n {
            yb.read_f32((y_off + i * y_stride) * 4, &mut y[i * rows..(i + 1) * rows])
                .unwrap();
        }
        y
    }
}

fn variants() -> Vec<(Arc<Gpu>, &'static str)> {
    let Some(gpu) = common::gpu::open(GpuOptions::default()) else {
        return Vec::new();
    };
    let mut v = vec![];
    // The same device with the shared-memory reductions, and buffers capped at 4 KiB so that
    // each matrix is split over many buffers of a few rows each (as a tensor larger than a
    // device's storage-buffer range is).
    let split = common::gpu::open(GpuOptions {
        subgroups: false,
        buffer_limit: Some(4096),
        ..GpuOptions::default()
    })
    .unwrap();
    v.push((split, "shared-memory, 4 KiB buffers"));
    if gpu.subgroups {
        v.push((gpu, "subgroup"));
    } else {
        eprintln!(
            "the device has no subgroup arithmetic: the subgroup kernels are not tested here"
        );
    }
    v
}

/// Through an identity matrix, each kernel returns the weights as it dequantizes them: compared
/// value by value with the CPU's scalar dequantization. The two may round differently (the
/// kernels compute `d·sc` then `·q − m`, possibly fused), by at most 2 roundings of terms whose
/// magnitudes are at most 3× the block's largest value (|d·q| ≤ |w| + |m|, |m| ≤ max|w|):
/// tolerance 16u · max|block|.
#[test]
fn dequantized_values_match_the_scalar_reference() {
    for (gpu, reduction) in variants() {
        let mut case = Case::new(gpu);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for ty in GPU_FORMATS {
            let (rows, cols) = (7, 2 * block_values(ty));
            let (bytes, deq) = random_matrix(ty, rows, cols, &mut rng);
            let bm = block_max(&deq, ty.block_values());
            let m = QMatrix::new(ty, rows, cols, &bytes).unwrap();
            let eye: Vec<f32> = (0..cols * cols)
                .map(|i| (i / cols == i % cols) as u32 as f32)
                .collect();
            for how in [Product::Vector, Product::Tiled] {
                let y = case.product(&m, &eye, cols, how);
                for r in 0..rows {
                    for j in 0..cols {
                        let (g, c) = (y[j * rows + r] as f64, deq[r * cols + j] as f64);
                        let tol = 16.0 * U * bm[r * cols + j];
                        assert!(
                            (g - c).abs() <= tol,
                            "{ty} {how:?} ({reduction}): weight [{r}, {j}] is {g} on the GPU, {c} on the CPU"
                        );
                    }
                }
            }
        }
    }
}

/// Random products at awkward sizes: rows 1, 7, 33, 257 (not multiples of the 64-row tile or of
/// any workgroup), 1, 2, 5 and 17 rows of x (17 spans three matrix-vector column groups and is not
/// a multiple of the 32-row tile), K of one block and of eleven, and for the float formats also
/// K = 172 (stories260K's n_ff), which they store padded to 176.
///
/// Reference: Σ w·x in f64 with the CPU's dequantized w. The kernel's error is its dequantization
/// error (≤ 16u·max|block| per weight, above) times |x|, plus f32 accumulation of K products in
/// any order (≤ (K + 2)·u·Σ|w·x|, the standard bound for a sum of K rounded products):
/// tolerance u · ((K + 2)·Σ|w·x| + 16·Σ max|block|·|x|).
#[test]
fn products_match_the_scalar_reference() {
    for (gpu, reduction) in variants() {
        let mut case = Case::new(gpu);
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        for ty in GPU_FORMATS {
            let mut lengths = vec![block_values(ty), 11 * block_values(ty)];
            if ty.block_values() == 1 {
                lengths.push(172);
            }
            for cols in lengths {
                for rows in [1, 7, 33, 257] {
                    let (bytes, deq) = random_matrix(ty, rows, cols, &mut rng);
                    let bm = block_max(&deq, ty.block_values());
                    let m = QMatrix::new(ty, rows, cols, &bytes).unwrap();
                    for n in [1, 2, 5, 17] {
                        let x: Vec<f32> = (0..n * cols).map(|_| rng.value()).collect();
                        for how in [Product::Vector, Product::Tiled] {
                            let y = case.product(&m, &x, n, how);
                            for i in 0..n {
                                for r in 0..rows {
                                    let (mut exact, mut abs, mut scale) = (0.0f64, 0.0f64, 0.0f64);
                                    for j in 0..cols {
                                        let (w, v) =
                                            (deq[r * cols + j] as f64, x[i * cols + j] as f64);
                                        exact += w * v;
                                        abs += (w * v).abs();
                                        scale += bm[r * cols + j] * v.abs();
                                    }
                                    let tol = U * ((cols + 2) as f64 * abs + 16.0 * scale);
                                    let got = y[i * rows + r] as f64;
                                    assert!(
                                        (got - exact).abs() <= tol,
                                        "{ty} {how:?} ({reduction}) rows {rows} K {cols} n {n}: y[{i}, {r}] = {got}, exact {exact}, tolerance {tol:.3e}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
            eprintln!("{ty}: matvec and tiled products match ({reduction} reductions)");
        }
    }
}
