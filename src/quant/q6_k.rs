//! Q6_K: 6-bit symmetric K-quant (ggml `block_q6_K`).
//!
//! 256 values in 16 sub-blocks of 16: `value = d·sc_j·(q − 32)` with `q` in `0..64` and signed
//! 8-bit `sc_j`. Per 128 values (half `h`), for `l` in `0..32`: `ql[64h + l]` holds the low 4 bits
//! of values `128h + l` (low nibble) and `128h + 64 + l` (high nibble), `ql[64h + 32 + l]` those
//! of `128h + 32 + l` and `128h + 96 + l`, and `qh[32h + l]` the top 2 bits of the four values
//! `128h + 32k + l` at bits `2k`.

use super::kquant_lanes::{fit_symmetric_x8, LANES};
use super::kquant_search::{
    fit_symmetric, nearest_int, ScaleSearch, GROUP_MAX_EPS, QK_K, SYMMETRIC_SUB,
};
use super::q8_k::BlockQ8_K;
use super::{Block, DotWith, GgmlType, Quantize};
use half::f16;

/// One Q6_K block: 256 values. 210 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ6_K {
    /// Low 4 bits of the quants.
    pub ql: [u8; QK_K / 2],
    /// High 2 bits of the quants.
    pub qh: [u8; QK_K / 4],
    /// Signed sub-block scales.
    pub scales: [i8; QK_K / 16],
    /// Super-scale.
    pub d: f16,
}

const _: () = assert!(std::mem::size_of::<BlockQ6_K>() == 210);

/// Q6_K quants are stored with this bias.
const BIAS: i32 = 32;

impl BlockQ6_K {
    /// [`Quantize::quantize`] with a choice of scale-search implementation. Both write the same
    /// bytes; the scalar one is the reference that the lanes are tested and benchmarked against.
    pub fn quantize_with(src: &[f32], out: &mut [Self], search: ScaleSearch) {
        assert_eq!(src.len(), out.len() * QK_K, "Q6_K quantize: input length");
        for (x, y) in src.as_chunks::<QK_K>().0.iter().zip(out) {
            quantize_block(x, y, search);
        }
    }

    /// All 256 biased quants (each in `0..64`), in value order.
    fn quants(&self) -> [u8; QK_K] {
        let mut q = [0u8; QK_K];
        let halves = q.as_chunks_mut::<128>().0;
        let ql = self.ql.as_chunks::<32>().0;
        for (h, (out, qh)) in halves
            .iter_mut()
            .zip(self.qh.as_chunks::<32>().0)
            .enumerate()
        {
            let (l0, l1) = (&ql[2 * h], &ql[2 * h + 1]);
            for l in 0..32 {
                out[l] = (l0[l] & 0xF) | ((qh[l] & 3) << 4);
                out[32 + l] = (l1[l] & 0xF) | (((qh[l] >> 2) & 3) << 4);
                out[64 + l] = (l0[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                out[96 + l] = (l1[l] >> 4) | (((qh[l] >> 6) & 3) << 4);
            }
        }
        q
    }
}

impl Block for BlockQ6_K {
    const TYPE: GgmlType = GgmlType::Q6_K;
    const VALUES: usize = QK_K;
}

impl Quantize for BlockQ6_K {
    /// ggml's `quantize_row_q6_K_ref` (no importance matrix).
    fn quantize(src: &[f32], out: &mut [Self]) {
        Self::quantize_with(src, out, ScaleSearch::Lanes);
    }

    fn dequantize(blocks: &[Self], out: &mut [f32]) {
        assert_eq!(
            out.len(),
            blocks.len() * QK_K,
            "Q6_K dequantize: output length"
        );
        for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
            let d = b.d.to_f32();
            let q = b.quants();
            for ((ys, qs), &s) in y
                .chunks_exact_mut(16)
                .zip(q.chunks_exact(16))
                .zip(&b.scales)
            {
                let dj = d * s as f32;
                for (v, &q) in ys.iter_mut().zip(qs) {
                    *v = dj * (q as i32 - BIAS) as f32;
                }
            }
        }
    }
}

fn quantize_block(x: &[f32; QK_K], y: &mut BlockQ6_K, search: ScaleSearch) {
    const SUBS: usize = QK_K / SYMMETRIC_SUB;
    let subs: &[[f32; SYMMETRIC_SUB]; SUBS] = bytemuck::cast_ref(x);
    let mut l = [[0u8; SYMMETRIC_SUB]; SUBS];
    let mut scales = [0.0f32; SUBS];
    match search {
        ScaleSearch::Scalar => {
            for j in 0..SUBS {
                scales[j] = fit_symmetric(&subs[j], BIAS, &mut l[j]);
            }
        }
        ScaleSearch::Lanes => {
            // Two passes of eight sub-blocks.
            let halves: &[[[f32; SYMMETRIC_SUB]; LANES]; 2] = bytemuck::cast_ref(subs);
            let lhalves: &mut [[[u8; SYMMETRIC_SUB]; LANES]; 2] = bytemuck::cast_mut(&mut l);
            let shalves: &mut [[f32; LANES]; 2] = bytemuck::cast_mut(&mut scales);
            for ((xs, ls), sc) in halves.iter().zip(lhalves).zip(shalves) {
                *sc = fit_symmetric_x8(xs, BIAS, ls);
            }
        }
    }
    let mut max_scale = 0.0f32;
    let mut max_abs_scale = 0.0f32;
    for &s in &scales {
        if s.abs() > max_abs_scale {
            max_abs_scale = s.abs();
            max_scale = s;
        }
    }
    if max_abs_scale < GROUP_MAX_EPS {
        *y = bytemuck::Zeroable::zeroed();
        return;
    }

    // The largest scale (with its sign) maps to −128.
    let iscale = -128.0 / max_scale;
    y.d = f16::from_f32(1.0 / iscale);
    for (s, &v) in y.scales.iter_mut().zip(&scales) {
        *s = nearest_int(iscale * v).min(127) as i8;
    }
    // Requantize every value with the scales as stored.
    for (j, (xs, lsub)) in subs.iter().zip(l.iter_mut()).enumerate() {
        let dj = y.d.to_f32() * y.scales[j] as f32;
        if dj == 0.0 {
            continue; // keeps the search's quants, as ggml does
        }
        for (q, &v) in lsub.iter_mut().zip(xs) {
            *q = (nearest_int(v / dj).clamp(-BIAS, BIAS - 1) + BIAS) as u8;
        }
    }

    let l: [u8; QK_K] = bytemuck::cast(l);
    for h in 0..2 {
        for i in 0..32 {
            let q = |k: usize| l[128 * h + 32 * k + i];
            y.ql[64 * h + i] = (q(0) & 0xF) | ((q(2) & 0xF) << 4);
            y.ql[64 * h + 32 + i] = (q(1) & 0xF) | ((q(3) & 0xF) << 4);
            y.qh[32 * h + i] =
                (q(0) >> 4) | ((q(1) >> 4) << 2) | ((q(2) >> 4) << 4) | ((q(3) >> 4) << 6);
        }
    }
}

impl DotWith for BlockQ6_K {
    type Act = BlockQ8_K;

    /// Per block, in exact integers: `Σ_j sc_j·(Σ q·y − 32·Σ y)` (the activation's `bsums` give
    /// `Σ y` per sub-block of 16); then `d·dy·sum`, summed over blocks in f32.
    fn dot_scalar(w: &[Self], x: &[BlockQ8_K]) -> f32 {
        assert_eq!(w.len(), x.len(), "Q6_K dot: rows differ in length");
        let mut sum = 0.0f32;
        for (b, a) in w.iter().zip(x) {
            let q = b.quants();
            let mut isum = 0i32;
            let groups = q.chunks_exact(16).zip(a.qs.chunks_exact(16));
            for ((qs, ys), (&s, &bsum)) in groups.zip(b.scales.iter().zip(&a.bsums)) {
                let dot: i32 = qs.iter().zip(ys).map(|(&q, &y)| q as i32 * y as i32).sum();
                isum += s as i32 * (dot - BIAS * bsum as i32);
            }
            sum += a.d * b.d.to_f32() * isum as f32;
        }
        sum
    }
}
