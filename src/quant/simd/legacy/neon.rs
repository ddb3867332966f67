//! NEON kernels (aarch64), with `sdot` variants for CPUs that have the dot-product extension.
//!
//! Two instructions come through inline asm because their intrinsics are not stable Rust:
//! `sdot` (`vdotq_s32`) and `fcvtl` (`vcvt_f32_f16`, which needs the unstable `float16x4_t`).
//! NEON itself is part of the aarch64 baseline, so these functions need no `target_feature`.

use super::Nibbles;
use crate::quant::q8_0::{check_dot, check_row};
use crate::quant::BlockQ8_0;
use half::{bf16, f16};
use std::arch::aarch64::*;
use std::arch::asm;
use wide::f32x4;

/// Whether this CPU runs the kernels of this file.
pub(super) fn supported() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
}

/// Whether this CPU also runs the `sdot` kernels.
pub(super) fn supported_dotprod() -> bool {
    supported() && std::arch::is_aarch64_feature_detected!("dotprod")
}

/// Σ w_i x_i over f32 with `wide` (NEON lanes, portable code): four 4-lane accumulators, then
/// the last < 16 values in scalar.
pub(super) fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    check_dot("F32", w.len(), x.len());
    let load = |s: &[f32]| f32x4::new([s[0], s[1], s[2], s[3]]);
    let mut acc = [f32x4::ZERO; 4];
    let (wc, xc) = (w.chunks_exact(16), x.chunks_exact(16));
    let (wr, xr) = (wc.remainder(), xc.remainder());
    for (a, b) in wc.zip(xc) {
        for (k, acc) in acc.iter_mut().enumerate() {
            let r = 4 * k..4 * k + 4;
            *acc = load(&a[r.clone()]).mul_add(load(&b[r]), *acc);
        }
    }
    let mut sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])).reduce_add();
    for (a, b) in wr.iter().zip(xr) {
        sum += a * b;
    }
    sum
}

pub(super) fn dot_f16(w: &[f16], x: &[f32]) -> f32 {
    check_dot("F16", w.len(), x.len());
    // SAFETY: NEON is baseline on aarch64; the lengths are equal.
    unsafe { dot_halves::<f16>(w, x) }
}

pub(super) fn dot_bf16(w: &[bf16], x: &[f32]) -> f32 {
    check_dot("BF16", w.len(), x.len());
    // SAFETY: as in `dot_f16`.
    unsafe { dot_halves::<bf16>(w, x) }
}

pub(super) fn dot_q8_0(w: &[BlockQ8_0], x: &[BlockQ8_0]) -> f32 {
    check_dot("Q8_0", w.len(), x.len());
    // SAFETY: as in `dot_f16`.
    unsafe { dot_q8_0_impl::<false>(w, x) }
}

pub(super) fn dot_q8_0_dotprod(w: &[BlockQ8_0], x: &[BlockQ8_0]) -> f32 {
    check_dot("Q8_0", w.len(), x.len());
    // SAFETY: as in `dot_f16`; handed out only when the CPU has `dotprod`.
    unsafe { dot_q8_0_impl::<true>(w, x) }
}

pub(super) fn dot_nibbles<B: Nibbles>(w: &[B], x: &[BlockQ8_0]) -> f32 {
    check_dot("4/5-bit", w.len(), x.len());
    // SAFETY: as in `dot_f16`.
    unsafe { dot_nibbles_impl::<B, false>(w, x) }
}

pub(super) fn dot_nibbles_dotprod<B: Nibbles>(w: &[B], x: &[BlockQ8_0]) -> f32 {
    check_dot("4/5-bit", w.len(), x.len());
    // SAFETY: as in `dot_q8_0_dotprod`.
    unsafe { dot_nibbles_impl::<B, true>(w, x) }
}

pub(super) fn quantize_q8_0(src: &[f32], out: &mut [BlockQ8_0]) {
    check_row("Q8_0 quantize", src.len(), out.len());
    // SAFETY: NEON is baseline; `src` holds exactly `out.len()` blocks.
    unsafe { quantize_q8_0_impl(src, out) }
}

/// A 16-bit float format that widens 8 values at a time.
trait Widen8: Copy {
    unsafe fn load8(p: *const Self) -> (float32x4_t, float32x4_t);
    fn widen(self) -> f32;
}

impl Widen8 for f16 {
    #[inline]
    unsafe fn load8(p: *const f16) -> (float32x4_t, float32x4_t) {
        let h = vld1q_u16(p.cast());
        let (lo, hi): (float32x4_t, float32x4_t);
        // `out` registers never share an input's register, so `h` survives the first line.
        asm!(
            "fcvtl {lo:v}.4s, {h:v}.4h",
            "fcvtl2 {hi:v}.4s, {h:v}.8h",
            h = in(vreg) h,
            lo = out(vreg) lo,
            hi = out(vreg) hi,
            options(pure, nomem, nostack),
        );
        (lo, hi)
    }
    fn widen(self) -> f32 {
        self.to_f32()
    }
}

impl Widen8 for bf16 {
    #[inline]
    unsafe fn load8(p: *const bf16) -> (float32x4_t, float32x4_t) {
        // bf16 is the top half of an f32: widen to 32 bits and shift up.
        let h = vld1q_u16(p.cast());
        let lo = vshlq_n_u32::<16>(vmovl_u16(vget_low_u16(h)));
        let hi = vshlq_n_u32::<16>(vmovl_high_u16(h));
        (vreinterpretq_f32_u32(lo), vreinterpretq_f32_u32(hi))
    }
    fn widen(self) -> f32 {
        self.to_f32()
    }
}

/// Σ w_i x_i, 8 values per step in two FMA accumulators, the last < 8 in scalar.
unsafe fn dot_halves<T: Widen8>(w: &[T], x: &[f32]) -> f32 {
    let n = w.len();
    let (pw, px) = (w.as_ptr(), x.as_ptr());
    let (mut a0, mut a1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
    let mut i = 0;
    while i + 8 <= n {
        let (lo, hi) = T::load8(pw.add(i));
        a0 = vfmaq_f32(a0, lo, vld1q_f32(px.add(i)));
        a1 = vfmaq_f32(a1, hi, vld1q_f32(px.add(i + 4)));
        i += 8;
    }
    let mut sum = vaddvq_f32(vaddq_f32(a0, a1));
    for (a, b) in w[i..].iter().zip(&x[i..]) {
        sum += a.widen() * b;
    }
    sum
}

/// `acc + Σ a_i·b_i` per group of 4 bytes, exact for all inputs.
#[inline(always)]
unsafe fn dot16<const SDOT: bool>(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    if SDOT {
        let mut acc = acc;
        asm!(
            ".arch_extension dotprod",
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack),
        );
        acc
    } else {
        // i8 × i8 fits i16 (|p| ≤ 2^14); pairwise add-accumulate into i32.
        let lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
        let hi = vmull_high_s8(a, b);
        vpadalq_s16(vpadalq_s16(acc, lo), hi)
    }
}

unsafe fn dot_q8_0_impl<const SDOT: bool>(w: &[BlockQ8_0], x: &[BlockQ8_0]) -> f32 {
    let mut acc = vdupq_n_f32(0.0);
    for (bw, bx) in w.iter().zip(x) {
        let (pw, px) = (bw.qs.as_ptr(), bx.qs.as_ptr());
        let s = dot16::<SDOT>(vdupq_n_s32(0), vld1q_s8(pw), vld1q_s8(px));
        let s = dot16::<SDOT>(s, vld1q_s8(pw.add(16)), vld1q_s8(px.add(16)));
        let d = bw.d.to_f32() * bx.d.to_f32();
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), d);
    }
    vaddvq_f32(acc)
}

/// The 32 codes of a 4/5-bit block as signed bytes: `q - OFFSET` for the offset formats
/// (wrapping u8 arithmetic gives the right two's complement), `q` itself (≤ 31) otherwise.
#[inline(always)]
unsafe fn codes<B: Nibbles>(b: &B) -> (int8x16_t, int8x16_t) {
    let q = vld1q_u8(b.qs().as_ptr());
    let mut lo = vandq_u8(q, vdupq_n_u8(0x0f));
    let mut hi = vshrq_n_u8::<4>(q);
    if B::FIVE_BITS {
        let h = b.qh().to_le_bytes();
        const BIT: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
        let bit = vld1q_u8(BIT.as_ptr());
        let fifth = vdupq_n_u8(0x10);
        let spread_lo = vcombine_u8(vdup_n_u8(h[0]), vdup_n_u8(h[1]));
        let spread_hi = vcombine_u8(vdup_n_u8(h[2]), vdup_n_u8(h[3]));
        lo = vorrq_u8(lo, vandq_u8(vtstq_u8(spread_lo, bit), fifth));
        hi = vorrq_u8(hi, vandq_u8(vtstq_u8(spread_hi, bit), fifth));
    }
    if !B::MIN {
        let off = vdupq_n_u8(B::OFFSET);
        lo = vsubq_u8(lo, off);
        hi = vsubq_u8(hi, off);
    }
    (vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi))
}

unsafe fn dot_nibbles_impl<B: Nibbles, const SDOT: bool>(w: &[B], x: &[BlockQ8_0]) -> f32 {
    let mut acc = vdupq_n_f32(0.0);
    let mut acc_min = 0.0f32;
    for (bw, bx) in w.iter().zip(x) {
        let (lo, hi) = codes(bw);
        let (y0, y1) = (vld1q_s8(bx.qs.as_ptr()), vld1q_s8(bx.qs.as_ptr().add(16)));
        let s = dot16::<SDOT>(dot16::<SDOT>(vdupq_n_s32(0), lo, y0), hi, y1);
        let dx = bx.d.to_f32();
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), bw.d().to_f32() * dx);
        if B::MIN {
            let sy = vaddlvq_s8(y0) as i32 + vaddlvq_s8(y1) as i32;
            acc_min += sy as f32 * (bw.m().to_f32() * dx);
        }
    }
    vaddvq_f32(acc) + acc_min
}

unsafe fn quantize_q8_0_impl(src: &[f32], out: &mut [BlockQ8_0]) {
    for (x, b) in src.chunks_exact(32).zip(out) {
        let p = x.as_ptr();
        let mut v = [vdupq_n_f32(0.0); 8];
        for (k, v) in v.iter_mut().enumerate() {
            *v = vld1q_f32(p.add(4 * k));
        }
        // maxnm returns the number when one side is NaN: NaN is ignored, as in the scalar fold.
        let mut m = vdupq_n_f32(0.0);
        for &vi in &v {
            m = vmaxnmq_f32(m, vabsq_f32(vi));
        }
        let amax = vmaxnmvq_f32(m);
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        // fcvtas: round to nearest, ties away from zero (C's roundf), saturating, NaN → 0;
        // the narrowing moves saturate too, so the result is exactly `roundf(x * id) as i8`.
        let mut q = [vdup_n_s8(0); 4];
        for (k, q) in q.iter_mut().enumerate() {
            let lo = vcvtaq_s32_f32(vmulq_n_f32(v[2 * k], id));
            let hi = vcvtaq_s32_f32(vmulq_n_f32(v[2 * k + 1], id));
            *q = vqmovn_s16(vcombine_s16(vqmovn_s32(lo), vqmovn_s32(hi)));
        }
        vst1q_s8(b.qs.as_mut_ptr(), vcombine_s8(q[0], q[1]));
        vst1q_s8(b.qs.as_mut_ptr().add(16), vcombine_s8(q[2], q[3]));
        b.d = f16::from_f32(d);
    }
}
