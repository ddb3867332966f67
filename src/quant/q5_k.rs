//! Q5_K: 5-bit affine K-quant (ggml `block_q5_K`).
//!
//! Like Q4_K (same 6-bit scales and mins, same nibble order), with `q` in `0..32`: the fifth bit
//! of value `64c + l` is bit `2c` of `qh[l]`, and of value `64c + 32 + l` bit `2c + 1`.

use super::kquant_search::{
    dequantize_affine, dot_affine, quantize_affine, AffineSearch, ScaleSearch, QK_K,
};
use super::q8_k::BlockQ8_K;
use super::{Block, DotWith, GgmlType, Quantize};
use half::f16;

/// One Q5_K block: 256 values. 176 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5_K {
    /// Super-scale of the sub-block scales.
    pub d: f16,
    /// Super-scale of the sub-block mins.
    pub dmin: f16,
    /// 8 scales and 8 mins, 6 bits each (the Q4_K layout).
    pub scales: [u8; 12],
    /// The fifth bits.
    pub qh: [u8; QK_K / 8],
    /// The low 4 bits, packed as in Q4_K.
    pub qs: [u8; QK_K / 2],
}

const _: () = assert!(std::mem::size_of::<BlockQ5_K>() == 176);

impl BlockQ5_K {
    /// ggml's search parameters for Q5_K (`quantize_row_q5_K_ref`).
    pub const SEARCH: AffineSearch = AffineSearch {
        nmax: 31,
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
    };

    /// [`Quantize::quantize`] with a choice of scale-search implementation. Both write the same
    /// bytes; the scalar one is the reference that the lanes are tested and benchmarked against.
    pub fn quantize_with(src: &[f32], out: &mut [Self], search: ScaleSearch) {
        assert_eq!(src.len(), out.len() * QK_K, "Q5_K quantize: input length");
        for (x, y) in src.as_chunks::<QK_K>().0.iter().zip(out) {
            let b = quantize_affine(x, Self::SEARCH, search);
            y.d = b.d;
            y.dmin = b.dmin;
            y.scales = b.scales;
            y.qh = [0; QK_K / 8];
            for (c, q) in y.qs.chunks_exact_mut(32).enumerate() {
                for (l, byte) in q.iter_mut().enumerate() {
                    let (lo, hi) = (b.l[64 * c + l], b.l[64 * c + 32 + l]);
                    *byte = (lo & 0xF) | ((hi & 0xF) << 4);
                    y.qh[l] |= ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1));
                }
            }
        }
    }

    /// All 256 quants (each in `0..32`), in value order.
    fn quants(&self) -> [u8; QK_K] {
        let mut q = [0u8; QK_K];
        let chunks = q.as_chunks_mut::<64>().0;
        for (c, (bytes, out)) in self.qs.as_chunks::<32>().0.iter().zip(chunks).enumerate() {
            let (lo, hi) = out.split_at_mut(32);
            for (((lo, hi), &b), &h) in lo.iter_mut().zip(hi).zip(bytes).zip(&self.qh) {
                *lo = (b & 0xF) | (((h >> (2 * c)) & 1) << 4);
                *hi = (b >> 4) | (((h >> (2 * c + 1)) & 1) << 4);
            }
        }
        q
    }
}

impl Block for BlockQ5_K {
    const TYPE: GgmlType = GgmlType::Q5_K;
    const VALUES: usize = QK_K;
}

impl Quantize for BlockQ5_K {
    /// ggml's `quantize_row_q5_K_ref` (no importance matrix).
    fn quantize(src: &[f32], out: &mut [Self]) {
        Self::quantize_with(src, out, ScaleSearch::Lanes);
    }

    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        assert_eq!(
            out.len(),
            blocks.len() * QK_K,
            "Q5_K dequantize: output length"
        );
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
            dequantize_affine(b.d, b.dmin, &b.scales, &b.quants(), y);
        }
    }
}

impl DotWith for BlockQ5_K {
    type Act = BlockQ8_K;

    /// As Q4_K's: exact integer sums per block, then `d·dy·Σ sc·q·y − dmin·dy·Σ m·y` in f32.
    fn dot_scalar(w: &[Self], x: &[BlockQ8_K]) -> f32 {
        assert_eq!(w.len(), x.len(), "Q5_K dot: rows differ in length");
        w.iter()
            .zip(x)
            .map(|(b, a)| dot_affine(b.d, b.dmin, &b.scales, &b.quants(), a))
            .sum()
    }
}
