//! AVX-512 (F + BW) kernels, and VNNI (`vpdpbusd`) variants for the 4/5-bit formats.
//!
//! The 4/5-bit kernels take two blocks per 512-bit register: lanes 0..8 of every i32/f32
//! vector belong to the first block, lanes 8..16 to the second. An odd last block goes through
//! the AVX2 code (every AVX-512 CPU has AVX2, FMA and F16C; `supported` checks them too).

use super::avx2;
use super::Nibbles;
use crate::quant::q8_0::check_dot;
use crate::quant::BlockQ8_0;
use half::{bf16, f16};
use std::arch::x86_64::*;

/// Whether this CPU runs the non-VNNI kernels of this file.
pub(super) fn supported() -> bool {
    avx2::supported() && is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")
}

/// Whether this CPU also runs the VNNI kernels.
pub(super) fn supported_vnni() -> bool {
    supported() && is_x86_feature_detected!("avx512vnni")
}

// Safe entry points: only handed out by `kernel` after `supported()` / `supported_vnni()`,
// which is what makes the `unsafe` calls below sound.

pub(super) fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    check_dot("F32", w.len(), x.len());
    // SAFETY: the CPU has AVX-512 F/BW, AVX2, FMA and F16C; the lengths are equal.
    unsafe { dot_floats::<f32>(w, x) }
}

pub(super) fn dot_f16(w: &[f16], x: &[f32]) -> f32 {
    check_dot("F16", w.len(), x.len());
    // SAFETY: as in `dot_f32`.
    unsafe { dot_floats::<f16>(w, x) }
}

pub(super) fn dot_bf16(w: &[bf16], x: &[f32]) -> f32 {
    check_dot("BF16", w.len(), x.len());
    // SAFETY: as in `dot_f32`.
    unsafe { dot_floats::<bf16>(w, x) }
}

pub(super) fn dot_q8_0(w: &[BlockQ8_0], x: &[BlockQ8_0]) -> f32 {
    check_dot("Q8_0", w.len(), x.len());
    // SAFETY: as in `dot_f32`.
    unsafe { dot_q8_0_impl(w, x) }
}

pub(super) fn dot_nibbles<B: Nibbles>(w: &[B], x: &[BlockQ8_0]) -> f32 {
    check_dot("4/5-bit", w.len(), x.len());
    // SAFETY: as in `dot_f32`.
    unsafe { dot_nibbles_impl(w, x) }
}

pub(super) fn dot_nibbles_vnni<B: Nibbles>(w: &[B], x: &[BlockQ8_0]) -> f32 {
    check_dot("4/5-bit", w.len(), x.len());
    // SAFETY: as in `dot_f32`, and the CPU has AVX512-VNNI.
    unsafe { dot_nibbles_vnni_impl(w, x) }
}

/// A float format that widens 16 values at a time, or fewer under a mask.
trait Widen16: Copy {
    /// Loads the values of `p` selected by `mask` (bit i: value i of 16) as f32, zeros
    /// elsewhere. Masked-off values are not read.
    unsafe fn load16(p: *const Self, mask: __mmask16) -> __m512;
}

impl Widen16 for f32 {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    unsafe fn load16(p: *const f32, mask: __mmask16) -> __m512 {
        _mm512_maskz_loadu_ps(mask, p)
    }
}

impl Widen16 for f16 {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    unsafe fn load16(p: *const f16, mask: __mmask16) -> __m512 {
        let h = _mm512_maskz_loadu_epi16(mask as __mmask32, p.cast());
        _mm512_cvtph_ps(_mm512_castsi512_si256(h))
    }
}

impl Widen16 for bf16 {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    unsafe fn load16(p: *const bf16, mask: __mmask16) -> __m512 {
        let h = _mm512_maskz_loadu_epi16(mask as __mmask32, p.cast());
        let v = _mm512_cvtepu16_epi32(_mm512_castsi512_si256(h));
        _mm512_castsi512_ps(_mm512_slli_epi32(v, 16))
    }
}

/// Σ w_i x_i with four 16-lane FMA accumulators, then 16 at a time, then one masked step.
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn dot_floats<T: Widen16>(w: &[T], x: &[f32]) -> f32 {
    let n = w.len();
    let (pw, px) = (w.as_ptr(), x.as_ptr());
    let all: __mmask16 = 0xffff;
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 64 <= n {
        for (k, a) in acc.iter_mut().enumerate() {
            let j = i + 16 * k;
            *a = _mm512_fmadd_ps(T::load16(pw.add(j), all), _mm512_loadu_ps(px.add(j)), *a);
        }
        i += 64;
    }
    while i + 16 <= n {
        acc[0] = _mm512_fmadd_ps(
            T::load16(pw.add(i), all),
            _mm512_loadu_ps(px.add(i)),
            acc[0],
        );
        i += 16;
    }
    if i < n {
        let mask: __mmask16 = (1u16 << (n - i)) - 1;
        let xv = _mm512_maskz_loadu_ps(mask, px.add(i));
        acc[1] = _mm512_fmadd_ps(T::load16(pw.add(i), mask), xv, acc[1]);
    }
    let acc = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    _mm512_reduce_add_ps(acc)
}

/// One Q8_0 block per iteration: the 32 bytes of each side sign-extended to i16 (exact for
/// every byte, -128 included), `vpmaddwd` into 16 i32 lanes, scaled into an f32 accumulator.
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn dot_q8_0_impl(w: &[BlockQ8_0], x: &[BlockQ8_0]) -> f32 {
    let mut acc = _mm512_setzero_ps();
    for (bw, bx) in w.iter().zip(x) {
        let d = _mm512_broadcastss_ps(avx2::scale_products(bw.d, f16::ZERO, bx.d));
        let wv = _mm512_cvtepi8_epi16(_mm256_loadu_si256(bw.qs.as_ptr().cast()));
        let xv = _mm512_cvtepi8_epi16(_mm256_loadu_si256(bx.qs.as_ptr().cast()));
        let p = _mm512_cvtepi32_ps(_mm512_madd_epi16(wv, xv));
        acc = _mm512_fmadd_ps(d, p, acc);
    }
    _mm512_reduce_add_ps(acc)
}

/// The 64 codes of two 4/5-bit blocks as unsigned bytes, block `a` first.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn codes2<B: Nibbles>(a: &B, b: &B) -> __m512i {
    _mm512_inserti64x4(_mm512_castsi256_si512(avx2::codes(a)), avx2::codes(b), 1)
}

/// The 64 activation bytes of two Q8_0 blocks.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn acts2(a: &BlockQ8_0, b: &BlockQ8_0) -> __m512i {
    _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(a.qs.as_ptr().cast())),
        _mm256_loadu_si256(b.qs.as_ptr().cast()),
        1,
    )
}

/// Per-block scales of a pair, block `a` in lanes 0..8 and block `b` in lanes 8..16:
/// (`dw·dx`, `m·dx`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn scales2<B: Nibbles>(wa: &B, wb: &B, xa: &BlockQ8_0, xb: &BlockQ8_0) -> (__m512, __m512) {
    let sa = avx2::scale_products(wa.d(), wa.m(), xa.d);
    let sb = avx2::scale_products(wb.d(), wb.m(), xb.d);
    let s = _mm512_castps256_ps512(_mm256_set_m128(sb, sa)); // [a: d m _ _ | b: d m _ _]
    let d = _mm512_permutexvar_ps(
        _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4),
        s,
    );
    let m = _mm512_permutexvar_ps(
        _mm512_setr_epi32(1, 1, 1, 1, 1, 1, 1, 1, 5, 5, 5, 5, 5, 5, 5, 5),
        s,
    );
    (d, m)
}

/// Integer sums with `vpmaddubsw` + `vpmaddwd`; see `avx2::nibble_block` for why they are exact.
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn dot_nibbles_impl<B: Nibbles>(w: &[B], x: &[BlockQ8_0]) -> f32 {
    let ones = _mm512_set1_epi16(1);
    let mut acc = _mm512_setzero_ps();
    let mut pairs_w = w.chunks_exact(2);
    let mut pairs_x = x.chunks_exact(2);
    for (pw, px) in (&mut pairs_w).zip(&mut pairs_x) {
        let u = codes2(&pw[0], &pw[1]);
        let y = acts2(&px[0], &px[1]);
        let (d, m) = scales2(&pw[0], &pw[1], &px[0], &px[1]);
        let uy = _mm512_maddubs_epi16(u, y);
        if B::MIN {
            let s = _mm512_madd_epi16(uy, ones);
            let sy = _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_set1_epi8(1), y), ones);
            acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), acc);
            acc = _mm512_fmadd_ps(m, _mm512_cvtepi32_ps(sy), acc);
        } else {
            let oy = _mm512_maddubs_epi16(_mm512_set1_epi8(B::OFFSET as i8), y);
            let s = _mm512_madd_epi16(_mm512_sub_epi16(uy, oy), ones);
            acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), acc);
        }
    }
    let mut tail = _mm256_setzero_ps();
    for (bw, bx) in pairs_w.remainder().iter().zip(pairs_x.remainder()) {
        tail = avx2::nibble_block(bw, bx, tail);
    }
    _mm512_reduce_add_ps(acc) + avx2::hsum(tail)
}

/// As [`dot_nibbles_impl`] with `vpdpbusd` (unsigned × signed bytes, 4 products summed into
/// each i32 lane without saturation): `Σ u·y` and `Σ o·y` (or `Σ y`) in one instruction each.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
unsafe fn dot_nibbles_vnni_impl<B: Nibbles>(w: &[B], x: &[BlockQ8_0]) -> f32 {
    let zero = _mm512_setzero_si512();
    let mut acc = _mm512_setzero_ps();
    let mut pairs_w = w.chunks_exact(2);
    let mut pairs_x = x.chunks_exact(2);
    for (pw, px) in (&mut pairs_w).zip(&mut pairs_x) {
        let u = codes2(&pw[0], &pw[1]);
        let y = acts2(&px[0], &px[1]);
        let (d, m) = scales2(&pw[0], &pw[1], &px[0], &px[1]);
        let uy = _mm512_dpbusd_epi32(zero, u, y);
        if B::MIN {
            let sy = _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(1), y);
            acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(uy), acc);
            acc = _mm512_fmadd_ps(m, _mm512_cvtepi32_ps(sy), acc);
        } else {
            let oy = _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(B::OFFSET as i8), y);
            let s = _mm512_sub_epi32(uy, oy);
            acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), acc);
        }
    }
    let mut tail = _mm256_setzero_ps();
    for (bw, bx) in pairs_w.remainder().iter().zip(pairs_x.remainder()) {
        tail = avx2::nibble_block(bw, bx, tail);
    }
    _mm512_reduce_add_ps(acc) + avx2::hsum(tail)
}
