//! NEON kernels for the K-quants (AArch64, where NEON is always present).
//!
//! Dots: `vmull_s8`/`vmlal_s8` multiply 8 weight quants with 8 activation quants into i16 lanes
//! (at most four products of ≤ 32·128 or 31·128 per lane, far from overflow), `vpaddlq_s16`
//! widens each sub-block's sums to i32, and its scale multiplies them in i32. Blocks are summed
//! in f32 as in the scalar reference.

use crate::quant::kquant_search::unpack_scales_mins;
use crate::quant::{BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_K, QK_K};
use std::arch::aarch64::*;

pub(super) fn dot_q4_k(w: &[BlockQ4_K], x: &[BlockQ8_K]) -> f32 {
    assert_eq!(w.len(), x.len(), "Q4_K dot: rows differ in length");
    // SAFETY: NEON is part of the AArch64 baseline.
    unsafe { q4_k(w, x) }
}

pub(super) fn dot_q5_k(w: &[BlockQ5_K], x: &[BlockQ8_K]) -> f32 {
    assert_eq!(w.len(), x.len(), "Q5_K dot: rows differ in length");
    // SAFETY: as above.
    unsafe { q5_k(w, x) }
}

pub(super) fn dot_q6_k(w: &[BlockQ6_K], x: &[BlockQ8_K]) -> f32 {
    assert_eq!(w.len(), x.len(), "Q6_K dot: rows differ in length");
    // SAFETY: as above.
    unsafe { q6_k(w, x) }
}

pub(super) fn quantize_q8_k(src: &[f32], out: &mut [BlockQ8_K]) {
    assert_eq!(src.len(), out.len() * QK_K, "Q8_K quantize: input length");
    // SAFETY: as above.
    unsafe { q8_k(src, out) }
}

#[inline]
#[target_feature(enable = "neon")]
fn load_u8x16(v: &[u8; 16]) -> uint8x16_t {
    // SAFETY: `v` covers 16 readable bytes.
    unsafe { vld1q_u8(v.as_ptr()) }
}

#[inline]
#[target_feature(enable = "neon")]
fn load_i8x16(v: &[i8; 16]) -> int8x16_t {
    // SAFETY: `v` covers 16 readable bytes.
    unsafe { vld1q_s8(v.as_ptr()) }
}

/// `acc + a·b` over 16 lanes, folded into 8 i16 lanes (lane i gets products i and 8 + i).
#[inline]
#[target_feature(enable = "neon")]
fn mla16(acc: int16x8_t, a: int8x16_t, b: int8x16_t) -> int16x8_t {
    vmlal_high_s8(vmlal_s8(acc, vget_low_s8(a), vget_low_s8(b)), a, b)
}

/// `Σ_j mn_j·(bsums[2j] + bsums[2j+1])`.
#[inline]
#[target_feature(enable = "neon")]
fn mins_dot(mn: [u8; 8], bsums: &[i16; 16]) -> i32 {
    let bs = bsums.as_chunks::<8>().0;
    // SAFETY: each chunk covers 16 readable bytes.
    let (b0, b1) = unsafe { (vld1q_s16(bs[0].as_ptr()), vld1q_s16(bs[1].as_ptr())) };
    let pairs = vpaddq_s16(b0, b1); // bsums[2j] + bsums[2j+1], at most 2·16·128
    let m = vreinterpretq_s16_u16(vmovl_u8(vcreate_u8(u64::from_le_bytes(mn))));
    vaddvq_s32(vmlal_high_s16(
        vmull_s16(vget_low_s16(pairs), vget_low_s16(m)),
        pairs,
        m,
    ))
}

/// One Q4_K / Q5_K block: `quants(c)` gives the 64 quants of chunk `c` as four vectors of 16
/// (sub-block 2c, then 2c+1).
#[inline]
#[target_feature(enable = "neon")]
fn affine_block(
    scales: &[u8; 12],
    d: f32,
    dmin: f32,
    a: &BlockQ8_K,
    mut quants: impl FnMut(usize) -> [int8x16_t; 4],
) -> f32 {
    let (sc, mn) = unpack_scales_mins(scales);
    let ys = a.qs.as_chunks::<16>().0;
    let mut isum = vdupq_n_s32(0);
    for c in 0..4 {
        let q = quants(c);
        for s in 0..2 {
            // Sub-block 2c + s: values 64c + 32s + (0..32).
            let p = mla16(vdupq_n_s16(0), q[2 * s], load_i8x16(&ys[4 * c + 2 * s]));
            let p = mla16(p, q[2 * s + 1], load_i8x16(&ys[4 * c + 2 * s + 1]));
            isum = vmlaq_n_s32(isum, vpaddlq_s16(p), sc[2 * c + s] as i32);
        }
    }
    d * vaddvq_s32(isum) as f32 - dmin * mins_dot(mn, &a.bsums) as f32
}

#[target_feature(enable = "neon")]
fn q4_k(w: &[BlockQ4_K], x: &[BlockQ8_K]) -> f32 {
    let low4 = vdupq_n_u8(0x0F);
    let mut sum = 0.0f32;
    for (b, a) in w.iter().zip(x) {
        let qs = b.qs.as_chunks::<16>().0;
        let quants = |c: usize| {
            let (q0, q1) = (load_u8x16(&qs[2 * c]), load_u8x16(&qs[2 * c + 1]));
            [
                vandq_u8(q0, low4),
                vandq_u8(q1, low4),
                vshrq_n_u8::<4>(q0),
                vshrq_n_u8::<4>(q1),
            ]
            .map(|v| vreinterpretq_s8_u8(v))
        };
        let d = a.d * b.d.to_f32();
        let dmin = a.d * b.dmin.to_f32();
        sum += affine_block(&b.scales, d, dmin, a, quants);
    }
    sum
}

#[target_feature(enable = "neon")]
fn q5_k(w: &[BlockQ5_K], x: &[BlockQ8_K]) -> f32 {
    let low4 = vdupq_n_u8(0x0F);
    let bit4 = vdupq_n_u8(0x10);
    let mut sum = 0.0f32;
    for (b, a) in w.iter().zip(x) {
        let qs = b.qs.as_chunks::<16>().0;
        let qh = b.qh.as_chunks::<16>().0;
        let (h0, h1) = (load_u8x16(&qh[0]), load_u8x16(&qh[1]));
        let quants = |c: usize| {
            let (q0, q1) = (load_u8x16(&qs[2 * c]), load_u8x16(&qs[2 * c + 1]));
            // Bit 2c (low nibbles) and 2c+1 (high nibbles) of qh, moved to bit 4.
            let shift = vdupq_n_s8(4 - 2 * c as i8);
            let (l0, l1) = (vshlq_u8(h0, shift), vshlq_u8(h1, shift));
            let shift = vdupq_n_s8(3 - 2 * c as i8);
            let (u0, u1) = (vshlq_u8(h0, shift), vshlq_u8(h1, shift));
            [
                vorrq_u8(vandq_u8(q0, low4), vandq_u8(l0, bit4)),
                vorrq_u8(vandq_u8(q1, low4), vandq_u8(l1, bit4)),
                vorrq_u8(vshrq_n_u8::<4>(q0), vandq_u8(u0, bit4)),
                vorrq_u8(vshrq_n_u8::<4>(q1), vandq_u8(u1, bit4)),
            ]
            .map(|v| vreinterpretq_s8_u8(v))
        };
        let d = a.d * b.d.to_f32();
        let dmin = a.d * b.dmin.to_f32();
        sum += affine_block(&b.scales, d, dmin, a, quants);
    }
    sum
}

#[target_feature(enable = "neon")]
fn q6_k(w: &[BlockQ6_K], x: &[BlockQ8_K]) -> f32 {
    let low4 = vdupq_n_u8(0x0F);
    let top2 = vdupq_n_u8(0x30);
    let bias = vdupq_n_s8(32);
    let mut sum = 0.0f32;
    for (b, a) in w.iter().zip(x) {
        let ql = b.ql.as_chunks::<16>().0;
        let qh = b.qh.as_chunks::<16>().0;
        let ys = a.qs.as_chunks::<16>().0;
        let mut isum = vdupq_n_s32(0);
        for h in 0..2 {
            for half in 0..2 {
                // 16 lanes l = 16·half + (0..16) of values 128h + 32k + l, k = 0..4.
                let l0 = load_u8x16(&ql[4 * h + half]);
                let l1 = load_u8x16(&ql[4 * h + 2 + half]);
                let hb = load_u8x16(&qh[2 * h + half]);
                let q = [
                    vorrq_u8(vandq_u8(l0, low4), vandq_u8(vshlq_n_u8::<4>(hb), top2)),
                    vorrq_u8(vandq_u8(l1, low4), vandq_u8(vshlq_n_u8::<2>(hb), top2)),
                    vorrq_u8(vshrq_n_u8::<4>(l0), vandq_u8(hb, top2)),
                    vorrq_u8(vshrq_n_u8::<4>(l1), vandq_u8(vshrq_n_u8::<2>(hb), top2)),
                ];
                for (k, &qk) in q.iter().enumerate() {
                    let j = 8 * h + 2 * k + half; // sub-block of 16 values
                    let v = vsubq_s8(vreinterpretq_s8_u8(qk), bias);
                    let p = mla16(vdupq_n_s16(0), v, load_i8x16(&ys[j]));
                    isum = vmlaq_n_s32(isum, vpaddlq_s16(p), b.scales[j] as i32);
                }
            }
        }
        sum += a.d * b.d.to_f32() * vaddvq_s32(isum) as f32;
    }
    sum
}

/// Quantizes to Q8_K exactly as `quantize_q8_k_scalar` does, 4 values per instruction.
#[target_feature(enable = "neon")]
fn q8_k(src: &[f32], out: &mut [BlockQ8_K]) {
    for (x, y) in src.as_chunks::<QK_K>().0.iter().zip(out) {
        let max = signed_absmax(x);
        if max == 0.0 {
            *y = bytemuck::Zeroable::zeroed();
            continue;
        }
        let iscale = -127.0 / max;
        let qs = y.qs.as_chunks_mut::<16>().0;
        for ((q, s), g) in qs
            .iter_mut()
            .zip(y.bsums.iter_mut())
            .zip(x.as_chunks::<16>().0)
        {
            let g = g.as_chunks::<4>().0;
            let i = [
                round4(&g[0], iscale),
                round4(&g[1], iscale),
                round4(&g[2], iscale),
                round4(&g[3], iscale),
            ];
            let w0 = vcombine_s16(vmovn_s32(i[0]), vmovn_s32(i[1]));
            let w1 = vcombine_s16(vmovn_s32(i[2]), vmovn_s32(i[3]));
            // SAFETY: `q` covers 16 writable bytes.
            unsafe { vst1q_s8(q.as_mut_ptr(), vcombine_s8(vmovn_s16(w0), vmovn_s16(w1))) };
            *s = vaddvq_s32(vaddq_s32(vaddq_s32(i[0], i[1]), vaddq_s32(i[2], i[3]))) as i16;
        }
        y.d = 1.0 / iscale;
    }
}

#[inline]
#[target_feature(enable = "neon")]
fn load_f32x4(v: &[f32; 4]) -> float32x4_t {
    // SAFETY: `v` covers 16 readable bytes.
    unsafe { vld1q_f32(v.as_ptr()) }
}

/// The value of largest magnitude (the first one on ties; NaNs never win), or 0 if all are 0.
#[inline]
#[target_feature(enable = "neon")]
fn signed_absmax(x: &[f32; QK_K]) -> f32 {
    // maxnm returns the number when the other operand is NaN: NaNs are skipped, as by the
    // scalar `>` comparison.
    let mut m = vdupq_n_f32(0.0);
    for v in x.as_chunks::<4>().0 {
        m = vmaxnmq_f32(m, vabsq_f32(load_f32x4(v)));
    }
    let amax = vmaxnmvq_f32(m);
    for &v in x {
        if v.abs() == amax {
            return v;
        }
    }
    0.0 // all zero (or NaN)
}

/// `clamp(nearest_int(v·scale), −128, 127)` for 4 values: adding 1.5·2^23 leaves the rounded
/// integer in the low mantissa bits, exactly as the scalar `nearest_int`.
#[inline]
#[target_feature(enable = "neon")]
fn round4(v: &[f32; 4], scale: f32) -> int32x4_t {
    let r = vaddq_f32(vmulq_n_f32(load_f32x4(v), scale), vdupq_n_f32(12_582_912.0));
    let bits = vandq_s32(vreinterpretq_s32_f32(r), vdupq_n_s32(0x007f_ffff));
    let i = vsubq_s32(bits, vdupq_n_s32(0x0040_0000));
    vmaxq_s32(vminq_s32(i, vdupq_n_s32(127)), vdupq_n_s32(-128))
}
