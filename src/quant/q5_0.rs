//! Q5_0: 32 values as 5-bit codes with one f16 scale, `x ≈ d * (q - 16)`. 5.5 bits per value.
//!
//! The low 4 bits sit in `qs` in Q4_0's nibble order; bit `j` of the little-endian `qh` word is
//! the fifth bit of value `j`.

use super::q4_0::{pack_nibbles, signed_absmax, unpack_nibbles};
use super::q8_0::{check_dot, check_row, BlockQ8_0};
use super::{Block, DotWith, GgmlType, Quantize};
use half::f16;

/// ggml `block_q5_0`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5_0 {
    /// Scale: the value of largest magnitude divided by -16.
    pub d: f16,
    /// Fifth bits, value `j` at bit `j` of the little-endian u32.
    pub qh: [u8; 4],
    /// Low 4 bits, two per byte.
    pub qs: [u8; 16],
}

const _: () = assert!(std::mem::size_of::<BlockQ5_0>() == 22);

impl Block for BlockQ5_0 {
    const TYPE: GgmlType = GgmlType::Q5_0;
    const VALUES: usize = 32;
}

/// The 32 five-bit codes in value order (shared by Q5_0 and Q5_1).
pub(crate) fn unpack5(qh: &[u8; 4], qs: &[u8; 16]) -> [u8; 32] {
    let high = u32::from_le_bytes(*qh);
    let mut q = unpack_nibbles(qs);
    for (j, q) in q.iter_mut().enumerate() {
        *q |= (((high >> j) & 1) as u8) << 4;
    }
    q
}

/// Packs 32 codes below 32 into (`qh`, `qs`).
pub(crate) fn pack5(q: &[u8; 32]) -> ([u8; 4], [u8; 16]) {
    let high = q
        .iter()
        .enumerate()
        .fold(0u32, |h, (j, &q)| h | (((q >> 4) & 1) as u32) << j);
    (high.to_le_bytes(), pack_nibbles(q))
}

/// ggml's `quantize_row_q5_0_ref` for one block: `d = max / -16`,
/// `q = min(31, (int8)(x * id + 16.5f))` with the product and the sum rounded separately.
pub fn quantize_block(x: &[f32; 32]) -> BlockQ5_0 {
    let d = signed_absmax(x) / -16.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let q = x.map(|v| ((v * id + 16.5) as i8).clamp(0, 31) as u8);
    let (qh, qs) = pack5(&q);
    BlockQ5_0 {
        d: f16::from_f32(d),
        qh,
        qs,
    }
}

impl Quantize for BlockQ5_0 {
    fn quantize(src: &[f32], out: &mut [Self]) {
        check_row("Q5_0 quantize", src.len(), out.len());
        for (x, b) in src.chunks_exact(32).zip(out) {
            *b = quantize_block(x.try_into().expect("chunks_exact(32)"));
        }
    }

    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        check_row("Q5_0 dequantize", out.len(), blocks.len());
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(32)) {
            let d = b.d.to_f32();
            for (y, q) in y.iter_mut().zip(unpack5(&b.qh, &b.qs)) {
                *y = d * (q as i32 - 16) as f32;
            }
        }
    }
}

impl DotWith for BlockQ5_0 {
    type Act = BlockQ8_0;

    /// `Σ_blocks (Σ_i (q_i - 16) · qx_i) · (d · dx)`: exact integers per block, scaled in f32.
    fn dot_scalar(w: &[Self], x: &[BlockQ8_0]) -> f32 {
        check_dot("Q5_0", w.len(), x.len());
        let mut sum = 0.0f32;
        for (bw, bx) in w.iter().zip(x) {
            let sumi: i32 = unpack5(&bw.qh, &bw.qs)
                .iter()
                .zip(&bx.qs)
                .map(|(&q, &y)| (q as i32 - 16) * y as i32)
                .sum();
            sum += sumi as f32 * (bw.d.to_f32() * bx.d.to_f32());
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_the_bit_layout() {
        let q: [u8; 32] = std::array::from_fn(|j| (j as u8 * 7 + 3) % 32);
        let (qh, qs) = pack5(&q);
        assert_eq!(unpack5(&qh, &qs), q);
        // Values 2 (code 17) and 16 (code 19) have their fifth bits at bit 2 and bit 16 of qh.
        assert_eq!(qh[0] & 0b100, 0b100);
        assert_eq!(qh[2] & 1, 1);
        assert_eq!(qs[0], 3 | (19 & 0xf) << 4);
    }

    #[test]
    fn reference_formula_on_a_hand_made_block() {
        // max = -16 gives d = 1 and id = 1: codes are trunc(x + 16.5), capped at 31.
        let mut x = [0.0f32; 32];
        x[0] = -16.0;
        x[1] = 15.9;
        x[2] = 0.49;
        let b = quantize_block(&x);
        assert_eq!(b.d.to_f32(), 1.0);
        assert_eq!(&unpack5(&b.qh, &b.qs)[..4], &[0, 31, 16, 16]);
    }
}
