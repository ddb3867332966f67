//! The quantized matmul (`Y = X · Wᵀ`) on every weight type and instruction set against the
//! scalar reference (dequantized weights, f32 activations, f64 sums), for a single vector and a
//! batch, with row counts that leave a partial rayon task.
//!
//! Tolerance, per output element: the reference uses the exact activations, the kernels use
//! activations quantized to the paired format, whose codes are off by at most half a step,
//! `amax(block)/254` (Q8_0 and Q8_K both use 127 levels either side), plus the rounding of the
//! stored f16 scale (Q8_0), ≤ 2^-11 relative to each value. So
//! `|y − y_ref| ≤ Σ_i |w_i| · (amax(block(i))/254 + |x_i|·2^-11) + 1e-5·Σ_i |w_i x_i|`,
//! the last term covering f32 summation (≤ 14336 terms in ≤ 16 lanes). A wrong row, block or
//! scale is off by far more than this.
//!
//! With `Activations::Q16` the second pass quantizes the residual `r` (|r| ≤ amax·(1/254 +
//! 2^-11) = amax·0.00443), scaled by 256 and back, so what is left is ≤ amax(r)/254 + |r|·2^-11
//! ≤ amax·2e-5 per value.

mod common;

use tandem::quant::simd::{available, Isa};
use tandem::quant::{GgmlType, Quantize};
use tandem::tensor::matmul::{
    dequantize, matmul_in, matmul_reference, matmul_with, Activations, MatmulScratch,
};
use tandem::tensor::QMatrix;

struct Rng(u64);

impl Rng {
    fn normal(&mut self) -> f32 {
        // Sum of four uniforms, centred: close enough to normal for test data, and deterministic.
        let mut s = 0.0;
        for _ in 0..4 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s += (self.0 >> 40) as f32 / (1u64 << 24) as f32;
        }
        (s - 2.0) * 1.7
    }
}

fn quantize(ty: GgmlType, values: &[f32]) -> Vec<u8> {
    tandem::dispatch_weight_type!(ty, W => {
        let mut blocks = vec![<W as bytemuck::Zeroable>::zeroed(); values.len() / <W as tandem::quant::Block>::VALUES];
        <W as Quantize>::quantize(values, &mut blocks);
        bytemuck::cast_slice(&blocks).to_vec()
    }, else t => panic!("no quantizer for {t}"))
}

/// The activation format's block size, or `None` for f32 activations.
fn act_block(ty: GgmlType) -> Option<usize> {
    match ty {
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => None,
        GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => Some(256),
        _ => Some(32),
    }
}

const TYPES: [GgmlType; 11] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

fn check(
    ty: GgmlType,
    rows: usize,
    cols: usize,
    n: usize,
    isa: Isa,
    acts: Activations,
    rng: &mut Rng,
) {
    let w: Vec<f32> = (0..rows * cols).map(|_| rng.normal() * 0.02).collect(); // [rows, cols]
    let x: Vec<f32> = (0..n * cols).map(|_| rng.normal()).collect(); // [n, cols]
    let bytes = quantize(ty, &w);
    let m = QMatrix::new(ty, rows, cols, &bytes).unwrap();
    let wq = dequantize(&m).unwrap(); // [rows, cols]
    let want = matmul_reference(&m, &x, n).unwrap(); // [n, rows]
    let mut got = vec![f32::NAN; n * rows];
    matmul_with(&m, &x, n, &mut got, isa, acts).unwrap();
    for t in 0..n {
        let xr = &x[t * cols..(t + 1) * cols];
        // Per-value activation error bound.
        let err: Vec<f64> = match act_block(ty) {
            None => vec![0.0; cols],
            Some(b) => xr
                .chunks(b)
                .flat_map(|blk| {
                    let amax = blk.iter().fold(0.0f32, |a, v| a.max(v.abs())) as f64;
                    blk.iter().map(move |v| match acts {
                        Activations::Q8 => amax / 254.0 + v.abs() as f64 / 2048.0,
                        Activations::Q16 => amax * 2e-5,
                    })
                })
                .collect(),
        };
        for r in 0..rows {
            let wr = &wq[r * cols..(r + 1) * cols];
            let bound: f64 = wr
                .iter()
                .zip(&err)
                .zip(xr)
                .map(|((&a, &e), &v)| a.abs() as f64 * e + 1e-5 * (a * v).abs() as f64)
                .sum();
            let (g, h) = (got[t * rows + r] as f64, want[t * rows + r] as f64);
            assert!(
                (g - h).abs() <= bound,
                "{ty} {isa:?} {acts:?} [{rows}x{cols}] n={n} t={t} r={r}: {g} vs {h} (bound {bound:.3e})"
            );
        }
    }
}

#[test]
fn matmul_matches_reference_on_every_type_and_isa() {
    common::isa::tested("matmul_matches_reference_on_every_type_and_isa");
    let mut rng = Rng(7);
    for isa in available() {
        for ty in TYPES {
            for acts in [Activations::Q8, Activations::Q16] {
                // 37 rows: two full 16-row tasks and a partial one. 512 columns: two K blocks.
                check(ty, 37, 512, 1, isa, acts, &mut rng);
                check(ty, 37, 512, 5, isa, acts, &mut rng);
                // Grouped kernels cut the matrix into parts: 37 rows are 4 parts of 9 and a
                // 1-row tail in decode; 11 rows are 4 parts of 2 and a 3-row tail, or (batches
                // of 5: tiles of 4 activation rows) 2 parts of 5 and a 1-row tail.
                check(ty, 11, 8448, 1, isa, acts, &mut rng);
                check(ty, 11, 8448, 5, isa, acts, &mut rng);
            }
        }
    }
}

/// Small activations (the FFN's SwiGLU output can be ~1e-3): the second pass must keep its
/// precision even though Q8_0 stores scales in f16.
#[test]
fn q16_keeps_precision_on_small_activations() {
    let mut rng = Rng(5);
    let (rows, cols) = (16, 256);
    let w: Vec<f32> = (0..rows * cols).map(|_| rng.normal() * 0.02).collect();
    let x: Vec<f32> = (0..cols).map(|_| rng.normal() * 1e-3).collect();
    for ty in [GgmlType::Q4_0, GgmlType::Q8_0] {
        let bytes = quantize(ty, &w);
        let m = QMatrix::new(ty, rows, cols, &bytes).unwrap();
        let want = matmul_reference(&m, &x, 1).unwrap();
        let err = |acts| {
            let mut got = vec![0.0f32; rows];
            matmul_with(&m, &x, 1, &mut got, tandem::quant::simd::detected(), acts).unwrap();
            got.iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs() as f64)
                .fold(0.0, f64::max)
        };
        let (e8, e16) = (err(Activations::Q8), err(Activations::Q16));
        // The second pass removes at least 97% of the 8-bit error (ideally ~99.5%).
        assert!(
            e16 < e8 * 0.03,
            "{ty}: q8 error {e8:.3e}, q16 error {e16:.3e}"
        );
    }
}

/// Mixtral's real widths: the FFN's 14336 columns (56 K blocks, 448 Q8_0 blocks).
#[test]
fn matmul_at_mixtral_width() {
    let mut rng = Rng(11);
    let isa = tandem::quant::simd::detected();
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
        GgmlType::F16,
    ] {
        check(ty, 18, 14336, 3, isa, Activations::Q8, &mut rng);
        check(ty, 18, 14336, 3, isa, Activations::Q16, &mut rng);
    }
}

/// One `MatmulScratch` carried through products of every type, shape and activation precision,
/// large ones before small ones (its buffers then hold stale values from bigger calls), gives
/// each product exactly what a fresh one gives: every call overwrites what it reads.
#[test]
fn a_reused_scratch_gives_the_fresh_results() {
    common::isa::tested("a_reused_scratch_gives_the_fresh_results");
    let mut rng = Rng(13);
    for isa in available() {
        let mut scratch = MatmulScratch::default();
        for ty in TYPES {
            for (rows, cols, n) in [(11, 8448, 5), (37, 512, 9), (11, 8448, 1), (37, 512, 2)] {
                for acts in [Activations::Q16, Activations::Q8] {
                    let wv: Vec<f32> = (0..rows * cols).map(|_| rng.normal() * 0.02).collect();
                    let bytes = quantize(ty, &wv);
                    let w = QMatrix::new(ty, rows, cols, &bytes).unwrap();
                    let x: Vec<f32> = (0..n * cols).map(|_| rng.normal()).collect();
                    let mut fresh = vec![0.0f32; n * rows];
                    matmul_with(&w, &x, n, &mut fresh, isa, acts).unwrap();
                    let mut reused = vec![f32::NAN; n * rows];
                    matmul_in(&w, &x, n, &mut reused, isa, acts, &mut scratch).unwrap();
                    assert!(
                        fresh
                            .iter()
                            .zip(&reused)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{ty} {isa:?} {acts:?} [{rows}x{cols}] n={n}"
                    );
                }
            }
        }
    }
}
