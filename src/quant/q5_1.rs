//! Q5_1: 32 values as 5-bit codes with an f16 scale and an f16 minimum, `x ≈ d * q + m`.
//! 6 bits per value. Bit layout as in Q5_0; the `m` term of the dot as in Q4_1.

use super::q4_1::min_max;
use super::q5_0::{pack5, unpack5};
use super::q8_0::{check_dot, check_row, BlockQ8_0};
use super::{Block, DotWith, GgmlType, Quantize};
use half::f16;

/// ggml `block_q5_1`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5_1 {
    /// Scale: `(max - min) / 31`.
    pub d: f16,
    /// Minimum of the block.
    pub m: f16,
    /// Fifth bits, value `j` at bit `j` of the little-endian u32.
    pub qh: [u8; 4],
    /// Low 4 bits, two per byte.
    pub qs: [u8; 16],
}

const _: () = assert!(std::mem::size_of::<BlockQ5_1>() == 24);

impl Block for BlockQ5_1 {
    const TYPE: GgmlType = GgmlType::Q5_1;
    const VALUES: usize = 32;
}

/// ggml's `quantize_row_q5_1_ref` for one block: `d = (max - min) / 31`,
/// `q = (uint8)((x - min) * id + 0.5f)`, every operation rounded separately. (The cap at 31
/// that gguf-py adds never binds: `(max - min) * id` stays below 31.5.)
pub fn quantize_block(x: &[f32; 32]) -> BlockQ5_1 {
    let (min, max) = min_max(x);
    let d = (max - min) / 31.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let q = x.map(|v| (((v - min) * id + 0.5) as u8).min(31));
    let (qh, qs) = pack5(&q);
    BlockQ5_1 {
        d: f16::from_f32(d),
        m: f16::from_f32(min),
        qh,
        qs,
    }
}

impl Quantize for BlockQ5_1 {
    fn quantize(src: &[f32], out: &mut [Self]) {
        check_row("Q5_1 quantize", src.len(), out.len());
        for (x, b) in src.chunks_exact(32).zip(out) {
            *b = quantize_block(x.try_into().expect("chunks_exact(32)"));
        }
    }

    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        check_row("Q5_1 dequantize", out.len(), blocks.len());
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(32)) {
            let (d, m) = (b.d.to_f32(), b.m.to_f32());
            for (y, q) in y.iter_mut().zip(unpack5(&b.qh, &b.qs)) {
                *y = d * q as f32 + m;
            }
        }
    }
}

impl DotWith for BlockQ5_1 {
    type Act = BlockQ8_0;

    /// `Σ_blocks (Σ_i q_i · qx_i) · (d · dx) + (Σ_i qx_i) · (m · dx)`, integer sums exact.
    fn dot_scalar(w: &[Self], x: &[BlockQ8_0]) -> f32 {
        check_dot("Q5_1", w.len(), x.len());
        let mut sum = 0.0f32;
        for (bw, bx) in w.iter().zip(x) {
            let sumi: i32 = unpack5(&bw.qh, &bw.qs)
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
        // min 0, max 31: d = 1, id = 1, codes trunc(x + 0.5).
        let mut x = [0.0f32; 32];
        x[1] = 31.0;
        x[2] = 16.5;
        x[3] = 16.49;
        let b = quantize_block(&x);
        assert_eq!((b.d.to_f32(), b.m.to_f32()), (1.0, 0.0));
        assert_eq!(&unpack5(&b.qh, &b.qs)[..4], &[0, 31, 17, 16]);
    }
}
