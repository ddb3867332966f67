//! Q8_K: the 8-bit activation format that the K-quants are dotted with (ggml `block_q8_K`).
//!
//! 256 values share one f32 scale: `value = d · q`, `q` in `-127..=127`. `bsums` holds the sum
//! of each group of 16 quants, which lets a dot product apply a weight format's per-sub-block
//! offsets (Q4_K/Q5_K mins, Q6_K's bias of 32) with 16 multiplies instead of 256.

use super::kquant_search::{nearest_int, QK_K};
use super::{Block, GgmlType, Quantize};

/// One Q8_K block: 256 values. 292 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_K {
    /// Scale: `value = d · q`.
    pub d: f32,
    /// The quants.
    pub qs: [i8; QK_K],
    /// `bsums[g] = Σ qs[16g .. 16g + 16]`.
    pub bsums: [i16; QK_K / 16],
}

const _: () = assert!(std::mem::size_of::<BlockQ8_K>() == 292);

impl Block for BlockQ8_K {
    const TYPE: GgmlType = GgmlType::Q8_K;
    const VALUES: usize = QK_K;
}

impl Quantize for BlockQ8_K {
    /// The reference, [`quantize_q8_k_scalar`]; activation rows go through the SIMD kernels
    /// (`simd::kquant::q8_k_quantizer`), which write the same bytes (tested).
    fn quantize(src: &[f32], out: &mut [Self]) {
        quantize_q8_k_scalar(src, out);
    }

    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        assert_eq!(
            out.len(),
            blocks.len() * QK_K,
            "Q8_K dequantize: output length"
        );
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
            for (v, &q) in y.iter_mut().zip(&b.qs) {
                *v = b.d * q as f32;
            }
        }
    }
}

/// The scalar reference Q8_K quantizer: ggml's `quantize_row_q8_K_ref`. `src.len()` must be
/// `out.len() * 256`.
///
/// Per block, the value with the largest magnitude (the first one, on ties) maps to −127, so
/// `d = max / −127` carries its sign. A block of zeros gets `d = 0`.
pub fn quantize_q8_k_scalar(src: &[f32], out: &mut [BlockQ8_K]) {
    assert_eq!(src.len(), out.len() * QK_K, "Q8_K quantize: input length");
    for (x, y) in src.as_chunks::<QK_K>().0.iter().zip(out) {
        quantize_block(x, y);
    }
}

fn quantize_block(x: &[f32; QK_K], y: &mut BlockQ8_K) {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax == 0.0 {
        *y = bytemuck::Zeroable::zeroed();
        return;
    }
    let iscale = -127.0 / max;
    for (q, &v) in y.qs.iter_mut().zip(x) {
        // In range for finite input; the clamp only matters for inf/NaN garbage, which then
        // saturates (ggml stores MIN(127, v) and wraps below −128).
        *q = nearest_int(iscale * v).clamp(-128, 127) as i8;
    }
    for (s, g) in y.bsums.iter_mut().zip(y.qs.as_chunks::<16>().0) {
        *s = g.iter().map(|&q| q as i16).sum();
    }
    y.d = 1.0 / iscale;
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytemuck::Zeroable;

    #[test]
    fn scale_sign_and_bsums() {
        let mut x = [0.0f32; QK_K];
        x[3] = 2.0;
        x[100] = -2.0; // same magnitude later: the first one sets the sign
        x[17] = 1.0;
        x[18] = -0.5;
        let mut b = [BlockQ8_K::zeroed()];
        quantize_q8_k_scalar(&x, &mut b);
        assert_eq!(b[0].d, 2.0 / -127.0);
        assert_eq!(
            (b[0].qs[3], b[0].qs[100], b[0].qs[17], b[0].qs[18]),
            (-127, 127, -64, 32)
        );
        assert_eq!(b[0].bsums[0], -127);
        assert_eq!(b[0].bsums[1], -64 + 32);
        assert_eq!(b[0].bsums[6], 127);
        let mut y = [0.0f32; QK_K];
        BlockQ8_K::dequantize(&b, &mut y);
        assert_eq!(y[3], 2.0 / -127.0 * -127.0);
    }

    #[test]
    fn zero_block() {
        let mut b = [BlockQ8_K {
            d: 1.0,
            qs: [1; QK_K],
            bsums: [1; 16],
        }];
        quantize_q8_k_scalar(&[-0.0; QK_K], &mut b);
        assert_eq!(b[0].d, 0.0);
        assert!(b[0].qs.iter().all(|&q| q == 0) && b[0].bsums.iter().all(|&s| s == 0));
    }
}
