//! Q4_1: 32 values as 4-bit codes with an f16 scale and an f16 minimum, `x ≈ d * q + m`.
//! 5 bits per value. Nibble order as in Q4_0.
//!
//! ggml dots Q4_1 with Q8_1 activations, which carry a precomputed (and f16-rounded) `d * Σq`.
//! tandem dots with Q8_0 and uses the exact integer sum of the activation codes for the `m` term.

use super::q4_0::{pack_nibbles, unpack_nibbles};
use super::q8_0::{check_dot, check_row, BlockQ8_0};
use super::{Block, DotWith, GgmlType, Quantize};
use half::f16;

/// ggml `block_q4_1`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_1 {
    /// Scale: `(max - min) / 15`.
    pub d: f16,
    /// Minimum of the block.
    pub m: f16,
    /// Codes `0..16`, two per byte.
    pub qs: [u8; 16],
}

const _: () = assert!(std::mem::size_of::<BlockQ4_1>() == 20);

impl Block for BlockQ4_1 {
    const TYPE: GgmlType = GgmlType::Q4_1;
    const VALUES: usize = 32;
}

/// The smallest and largest value of a block, as ggml's loop finds them.
pub(crate) fn min_max(x: &[f32; 32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

/// ggml's `quantize_row_q4_1_ref` for one block: `d = (max - min) / 15`,
/// `q = min(15, (int8)((x - min) * id + 0.5f))`, every operation rounded separately.
pub fn quantize_block(x: &[f32; 32]) -> BlockQ4_1 {
    let (min, max) = min_max(x);
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let q = x.map(|v| (((v - min) * id + 0.5) as i8).clamp(0, 15) as u8);
    BlockQ4_1 {
        d: f16::from_f32(d),
        m: f16::from_f32(min),
        qs: pack_nibbles(&q),
    }
}

impl Quantize for BlockQ4_1 {
    fn quantize(src: &[f32], out: &mut [Self]) {
        check_row("Q4_1 quantize", src.len(), out.len());
        for (x, b) in src.chunks_exact(32).zip(out) {
            *b = quantize_block(x.try_into().expect("chunks_exact(32)"));
        }
    }

    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        check_row("Q4_1 dequantize", out.len(), blocks.len());
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(32)) {
            let (d, m) = (b.d.to_f32(), b.m.to_f32());
            for (y, q) in y.iter_mut().zip(unpack_nibbles(&b.qs)) {
                *y = d * q as f32 + m;
            }
        }
    }
}

impl DotWith for BlockQ4_1 {
    type Act = BlockQ8_0;

    /// `Σ_blocks (Σ_i q_i · qx_i) · (d · dx) + (Σ_i qx_i) · (m · dx)`, integer sums exact.
    fn dot_scalar(w: &[Self], x: &[BlockQ8_0]) -> f32 {
        check_dot("Q4_1", w.len(), x.len());
        let mut sum = 0.0f32;
        for (bw, bx) in w.iter().zip(x) {
            let sumi: i32 = unpack_nibbles(&bw.qs)
                .iter()
                .zip(&bx.qs)
                .map(|(&q, &y)| q as i32 * y as i32)
                .sum();
            let dx = bx.d.to_f32();
            sum += sumi as f32 * (bw.d.to_f32() * dx) + bx.code_sum() as f32 * (bw.m.to_f32() * dx);
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_formula_on_a_hand_made_block() {
        // min -1, max 14: d = 1, id = 1, codes trunc(x + 1 + 0.5).
        let mut x = [0.0f32; 32];
        x[0] = -1.0;
        x[1] = 14.0;
        x[2] = 2.5;
        x[3] = 2.49;
        let b = quantize_block(&x);
        assert_eq!((b.d.to_f32(), b.m.to_f32()), (1.0, -1.0));
        assert_eq!(&unpack_nibbles(&b.qs)[..5], &[0, 15, 4, 3, 1]);
    }
}
