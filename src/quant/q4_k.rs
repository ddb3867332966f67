//! Q4_K: 4-bit affine K-quant (ggml `block_q4_K`).
//!
//! 256 values in 8 sub-blocks of 32. Sub-block j stores `value = d·sc_j·q − dmin·m_j` with
//! `q` in `0..16` and 6-bit `sc_j`, `m_j`. Quants are packed per 64 values: byte `32c + l` holds
//! value `64c + l` in its low nibble and value `64c + 32 + l` in its high nibble.

use super::kquant_search::{
    dequantize_affine, dot_affine, quantize_affine, AffineSearch, ScaleSearch, QK_K,
};
use super::q8_k::BlockQ8_K;
use super::{Block, DotWith, GgmlType, Quantize};
use half::f16;

/// One Q4_K block: 256 values. 144 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_K {
    /// Super-scale of the sub-block scales.
    pub d: f16,
    /// Super-scale of the sub-block mins.
    pub dmin: f16,
    /// 8 scales and 8 mins, 6 bits each (see `kquant_search::pack_scales_mins`).
    pub scales: [u8; 12],
    /// 256 4-bit quants.
    pub qs: [u8; QK_K / 2],
}

const _: () = assert!(std::mem::size_of::<BlockQ4_K>() == 144);

impl BlockQ4_K {
    /// ggml's search parameters for Q4_K (`quantize_row_q4_K_ref`).
    pub const SEARCH: AffineSearch = AffineSearch {
        nmax: 15,
        rmin: -1.0,
        rdelta: 0.1,
        nstep: 20,
    };

    /// [`Quantize::quantize`] with a choice of scale-search implementation. Both write the same
    /// bytes; the scalar one is the reference that the lanes are tested and benchmarked against.
    pub fn quantize_with(src: &[f32], out: &mut [Self], search: ScaleSearch) {
        assert_eq!(src.len(), out.len() * QK_K, "Q4_K quantize: input length");
        for (x, y) in src.as_chunks::<QK_K>().0.iter().zip(out) {
            let b = quantize_affine(x, Self::SEARCH, search);
            y.d = b.d;
            y.dmin = b.dmin;
            y.scales = b.scales;
            for (c, q) in y.qs.chunks_exact_mut(32).enumerate() {
                for (l, byte) in q.iter_mut().enumerate() {
                    *byte = b.l[64 * c + l] | (b.l[64 * c + 32 + l] << 4);
                }
            }
        }
    }

    /// All 256 quants (each in `0..16`), in value order.
    fn quants(&self) -> [u8; QK_K] {
        let mut q = [0u8; QK_K];
        let chunks = q.as_chunks_mut::<64>().0;
        for (bytes, out) in self.qs.as_chunks::<32>().0.iter().zip(chunks) {
            let (lo, hi) = out.split_at_mut(32);
            for ((lo, hi), &b) in lo.iter_mut().zip(hi).zip(bytes) {
                *lo = b & 0xF;
                *hi = b >> 4;
            }
        }
        q
    }
}

impl Block for BlockQ4_K {
    const TYPE: GgmlType = GgmlType::Q4_K;
    const VALUES: usize = QK_K;
}

impl Quantize for BlockQ4_K {
    /// ggml's `quantize_row_q4_K_ref` (no importance matrix).
    fn quantize(src: &[f32], out: &mut [Self]) {
        Self::quantize_with(src, out, ScaleSearch::Lanes);
    }

    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        assert_eq!(
            out.len(),
            blocks.len() * QK_K,
            "Q4_K dequantize: output length"
        );
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
            dequantize_affine(b.d, b.dmin, &b.scales, &b.quants(), y);
        }
    }
}

impl DotWith for BlockQ4_K {
    type Act = BlockQ8_K;

    /// Per block, in exact integers: `Σ_j sc_j·Σ q·y` and `Σ_j m_j·Σ y` (the latter from the
    /// activation's `bsums`); then `d·dy·first − dmin·dy·second`, summed over blocks in f32.
    fn dot_scalar(w: &[Self], x: &[BlockQ8_K]) -> f32 {
        assert_eq!(w.len(), x.len(), "Q4_K dot: rows differ in length");
        w.iter()
            .zip(x)
            .map(|(b, a)| dot_affine(b.d, b.dmin, &b.scales, &b.quants(), a))
            .sum()
    }
}
