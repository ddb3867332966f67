//! Q8_0: 32 values as signed 8-bit codes with one f16 scale, `x ≈ d * q`. 8.5 bits per value.
//!
//! It is also the activation format of every 32-value weight format: an f32 activation row is
//! quantized once (by the fastest kernel in `simd`, which writes this file's bytes) and dotted
//! with each weight row.

use super::{Block, DotWith, GgmlType, Quantize};
use half::f16;

/// ggml `block_q8_0`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_0 {
    /// Scale: `amax / 127`.
    pub d: f16,
    /// Codes in `-127..=127` as quantized (a file may hold -128; every path handles it).
    pub qs: [i8; 32],
}

const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == 34);

impl Block for BlockQ8_0 {
    const TYPE: GgmlType = GgmlType::Q8_0;
    const VALUES: usize = 32;
}

/// ggml's `quantize_row_q8_0_ref` for one block: `d = amax / 127`, `q = roundf(x / d)`.
///
/// The largest magnitude ignores NaN (a NaN value then becomes code 0). `id` is `1/d` computed
/// from the f32 `d`, not from its f16 rounding, exactly as ggml and gguf-py do.
pub fn quantize_block(x: &[f32; 32]) -> BlockQ8_0 {
    let amax = x
        .iter()
        .fold(0.0f32, |m, v| if v.abs() > m { v.abs() } else { m });
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    // `round` is C's roundf (half away from zero); `as` saturates and maps NaN to 0.
    let qs = x.map(|v| (v * id).round() as i8);
    BlockQ8_0 {
        d: f16::from_f32(d),
        qs,
    }
}

/// [`Quantize::quantize`] as a plain function, for the SIMD quantizers' dispatch table.
pub(crate) fn quantize_row_scalar(src: &[f32], out: &mut [BlockQ8_0]) {
    BlockQ8_0::quantize(src, out)
}

/// Panics unless `values` fill `blocks` blocks of 32 exactly.
pub(crate) fn check_row(what: &str, values: usize, blocks: usize) {
    assert_eq!(
        Some(values),
        blocks.checked_mul(32),
        "{what}: {values} values do not fill {blocks} blocks of 32"
    );
}

/// Panics unless a weight row and an activation row have the same number of blocks.
pub(crate) fn check_dot(what: &str, w: usize, x: usize) {
    assert_eq!(
        w, x,
        "{what} dot: weight row has {w} blocks, activation row {x}"
    );
}

impl Quantize for BlockQ8_0 {
    fn quantize(src: &[f32], out: &mut [Self]) {
        check_row("Q8_0 quantize", src.len(), out.len());
        for (x, b) in src.chunks_exact(32).zip(out) {
            *b = quantize_block(x.try_into().expect("chunks_exact(32)"));
        }
    }

    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        check_row("Q8_0 dequantize", out.len(), blocks.len());
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(32)) {
            let d = b.d.to_f32();
            for (y, &q) in y.iter_mut().zip(&b.qs) {
                *y = q as f32 * d;
            }
        }
    }
}

impl DotWith for BlockQ8_0 {
    type Act = BlockQ8_0;

    /// `Σ_blocks (Σ_i qw_i · qx_i) · (dw · dx)`: an exact integer sum per block, scaled in f32.
    fn dot_scalar(w: &[Self], x: &[BlockQ8_0]) -> f32 {
        check_dot("Q8_0", w.len(), x.len());
        let mut sum = 0.0f32;
        for (bw, bx) in w.iter().zip(x) {
            let sumi: i32 = bw
                .qs
                .iter()
                .zip(&bx.qs)
                .map(|(&a, &b)| a as i32 * b as i32)
                .sum();
            sum += sumi as f32 * (bw.d.to_f32() * bx.d.to_f32());
        }
        sum
    }
}

impl BlockQ8_0 {
    /// The exact integer sum of the codes (the min term of Q4_1/Q5_1 dots uses it).
    pub fn code_sum(&self) -> i32 {
        self.qs.iter().map(|&q| q as i32).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_away_from_zero() {
        // amax 127 gives d = 1 and id = 1, so codes are roundf(x) exactly.
        let mut x = [0.0f32; 32];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -2.5;
        x[3] = 0.5;
        x[4] = -0.49999997;
        let b = quantize_block(&x);
        assert_eq!(b.d.to_f32(), 1.0);
        assert_eq!(&b.qs[..5], &[127, 3, -3, 1, 0]);
    }

    #[test]
    fn zero_block_has_zero_scale() {
        let b = quantize_block(&[0.0; 32]);
        assert_eq!(b.d.to_bits(), 0);
        assert_eq!(b.qs, [0; 32]);
    }
}
