//! Q4_0: 32 values as 4-bit codes with one f16 scale, `x ≈ d * (q - 8)`. 4.5 bits per value.
//!
//! Byte `j` of `qs` holds value `j` in its low nibble and value `j + 16` in its high nibble.

use super::q8_0::{check_dot, check_row, BlockQ8_0};
use super::{Block, DotWith, GgmlType, Quantize};
use half::f16;

/// ggml `block_q4_0`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_0 {
    /// Scale: the value of largest magnitude divided by -8.
    pub d: f16,
    /// Codes `0..16`, two per byte.
    pub qs: [u8; 16],
}

const _: () = assert!(std::mem::size_of::<BlockQ4_0>() == 18);

impl Block for BlockQ4_0 {
    const TYPE: GgmlType = GgmlType::Q4_0;
    const VALUES: usize = 32;
}

/// The 32 nibbles of `qs` in value order (shared by Q4_0 and Q4_1).
pub(crate) fn unpack_nibbles(qs: &[u8; 16]) -> [u8; 32] {
    let mut q = [0u8; 32];
    for (j, &b) in qs.iter().enumerate() {
        q[j] = b & 0x0f;
        q[j + 16] = b >> 4;
    }
    q
}

/// Packs 32 codes below 16 into nibbles (value `j` low, value `j + 16` high).
pub(crate) fn pack_nibbles(q: &[u8; 32]) -> [u8; 16] {
    std::array::from_fn(|j| (q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4))
}

/// The value of largest magnitude, keeping its sign (the first one on a tie, as ggml does).
pub(crate) fn signed_absmax(x: &[f32; 32]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

/// ggml's `quantize_row_q4_0_ref` for one block: `d = max / -8`,
/// `q = min(15, (int8)(x * id + 8.5f))` with the product and the sum rounded separately.
pub fn quantize_block(x: &[f32; 32]) -> BlockQ4_0 {
    let d = signed_absmax(x) / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    // Rust never fuses `a * b + c` into an FMA, so this is the two-rounding reference formula.
    let q = x.map(|v| ((v * id + 8.5) as i8).clamp(0, 15) as u8);
    BlockQ4_0 {
        d: f16::from_f32(d),
        qs: pack_nibbles(&q),
    }
}

impl Quantize for BlockQ4_0 {
    fn quantize(src: &[f32], out: &mut [Self]) {
        check_row("Q4_0 quantize", src.len(), out.len());
        for (x, b) in src.chunks_exact(32).zip(out) {
            *b = quantize_block(x.try_into().expect("chunks_exact(32)"));
        }
    }

    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        check_row("Q4_0 dequantize", out.len(), blocks.len());
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(32)) {
            let d = b.d.to_f32();
            for (y, q) in y.iter_mut().zip(unpack_nibbles(&b.qs)) {
                *y = d * (q as i32 - 8) as f32;
            }
        }
    }
}

impl DotWith for BlockQ4_0 {
    type Act = BlockQ8_0;

    /// `Σ_blocks (Σ_i (q_i - 8) · qx_i) · (d · dx)`: exact integers per block, scaled in f32.
    fn dot_scalar(w: &[Self], x: &[BlockQ8_0]) -> f32 {
        check_dot("Q4_0", w.len(), x.len());
        let mut sum = 0.0f32;
        for (bw, bx) in w.iter().zip(x) {
            let sumi: i32 = unpack_nibbles(&bw.qs)
                .iter()
                .zip(&bx.qs)
                .map(|(&q, &y)| (q as i32 - 8) * y as i32)
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
    fn reference_formula_on_a_hand_made_block() {
        // max = -8 gives d = 1 and id = 1: codes are trunc(x + 8.5), capped at 15.
        let mut x = [0.0f32; 32];
        x[0] = -8.0;
        x[1] = 7.9;
        x[2] = -6.5;
        x[17] = 2.4;
        let b = quantize_block(&x);
        assert_eq!(b.d.to_f32(), 1.0);
        let q = unpack_nibbles(&b.qs);
        assert_eq!(&q[..4], &[0, 15, 2, 8]);
        assert_eq!(q[17], 10);
        let mut y = [0.0; 32];
        BlockQ4_0::dequantize(&[b], &mut y);
        assert_eq!(&y[..3], &[-8.0, 7.0, -6.0]);
    }
}
