//! AVX2 + FMA (+ F16C for f16 values and scales) kernels.
//!
//! `std::arch` throughout: `wide` picks its code paths from compile-time target features, so it
//! cannot use AVX2 in a stock build where the features are only detected at run time.

use super::Nibbles;
use crate::quant::q8_0::{check_dot, check_row};
use crate::quant::BlockQ8_0;
use half::{bf16, f16};
use std::arch::x86_64::*;

/// Whether this CPU runs the kernels of this file.
pub(super) fn supported() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

// Safe entry points. They are only handed out by `kernel`/`quantize_q8_0_fn` after
// `supported()`, which is what makes the `unsafe` calls below sound.

pub(super) fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    check_dot("F32", w.len(), x.len());
    // SAFETY: the CPU has AVX2, FMA and F16C (see above); the lengths are equal.
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

pub(super) fn quantize_q8_0(src: &[f32], out: &mut [BlockQ8_0]) {
    check_row("Q8_0 quantize", src.len(), out.len());
    // SAFETY: as in `dot_f32`; `src` holds exactly `out.len()` blocks.
    unsafe { quantize_q8_0_impl(src, out) }
}

/// The sum of the 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Three f16 values widened at once (lane 3 is zero).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn widen3(a: f16, b: f16, c: f16) -> __m128 {
    let bits = |h: f16| h.to_bits() as i64;
    _mm_cvtph_ps(_mm_cvtsi64_si128(bits(a) | bits(b) << 16 | bits(c) << 32))
}

/// `[dw·dx, m·dx, dx·dx, 0]` for a weight block (scale `dw`, minimum `m`) and an activation
/// block (scale `dx`): each product one f32 multiply, as in the scalar reference.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn scale_products(dw: f16, m: f16, dx: f16) -> __m128 {
    let v = widen3(dw, m, dx);
    _mm_mul_ps(v, _mm_shuffle_ps(v, v, 0b10_10_10_10))
}

/// A float format that widens 8 values at a time.
trait Widen8: Copy {
    /// Loads 8 values from `p` as f32.
    unsafe fn load8(p: *const Self) -> __m256;
    fn widen(self) -> f32;
}

impl Widen8 for f32 {
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(p: *const f32) -> __m256 {
        _mm256_loadu_ps(p)
    }
    fn widen(self) -> f32 {
        self
    }
}

impl Widen8 for f16 {
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(p: *const f16) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(p.cast()))
    }
    fn widen(self) -> f32 {
        self.to_f32()
    }
}

impl Widen8 for bf16 {
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(p: *const bf16) -> __m256 {
        // bf16 is the top half of an f32: widen to 32 bits and shift up.
        let v = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.cast()));
        _mm256_castsi256_ps(_mm256_slli_epi32(v, 16))
    }
    fn widen(self) -> f32 {
        self.to_f32()
    }
}

/// Σ w_i x_i with four 8-lane FMA accumulators, then 8 at a time, then the last < 8 in scalar.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_floats<T: Widen8>(w: &[T], x: &[f32]) -> f32 {
    let n = w.len();
    let (pw, px) = (w.as_ptr(), x.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (k, a) in acc.iter_mut().enumerate() {
            let j = i + 8 * k;
            *a = _mm256_fmadd_ps(T::load8(pw.add(j)), _mm256_loadu_ps(px.add(j)), *a);
        }
        i += 32;
    }
    while i + 8 <= n {
        acc[0] = _mm256_fmadd_ps(T::load8(pw.add(i)), _mm256_loadu_ps(px.add(i)), acc[0]);
        i += 8;
    }
    let acc = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut sum = hsum(acc);
    for (a, b) in w[i..].iter().zip(&x[i..]) {
        sum += a.widen() * b;
    }
    sum
}

/// Per 32-bit lane, the sum of 4 products of signed bytes; exact for all inputs (the bytes are
/// widened to i16 first: no `maddubs` saturation, no `sign` trick that breaks on -128).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot32_i8(w: &[i8; 32], x: &[i8; 32]) -> __m256i {
    let (w, x) = (w.as_ptr(), x.as_ptr());
    _mm256_add_epi32(
        _mm256_madd_epi16(widen16(w), widen16(x)),
        _mm256_madd_epi16(widen16(w.add(16)), widen16(x.add(16))),
    )
}

/// 16 signed bytes from `p`, sign-extended to i16.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn widen16(p: *const i8) -> __m256i {
    _mm256_cvtepi8_epi16(_mm_loadu_si128(p.cast()))
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q8_0_impl(w: &[BlockQ8_0], x: &[BlockQ8_0]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (bw, bx) in w.iter().zip(x) {
        let d = _mm256_broadcastss_ps(scale_products(bw.d, f16::ZERO, bx.d));
        let p = _mm256_cvtepi32_ps(dot32_i8(&bw.qs, &bx.qs));
        acc = _mm256_fmadd_ps(d, p, acc);
    }
    hsum(acc)
}

/// The 32 codes of a 4/5-bit block as unsigned bytes in value order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn codes<B: Nibbles>(b: &B) -> __m256i {
    let q = _mm_loadu_si128(b.qs().as_ptr().cast());
    let low4 = _mm256_set1_epi8(0x0f);
    let u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low4);
    if B::FIVE_BITS {
        _mm256_or_si256(u, fifth_bits(b.qh()))
    } else {
        u
    }
}

/// 0x10 in byte `j` where bit `j` of `qh` is set, else 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn fifth_bits(qh: u32) -> __m256i {
    // Byte j takes byte j/8 of qh (every 128-bit lane holds all four), then tests bit j%8.
    let spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(qh as i32),
        _mm256_setr_epi8(
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, //
            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
        ),
    );
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    _mm256_and_si256(set, _mm256_set1_epi8(0x10))
}

/// Adds one 4/5-bit block · Q8_0 block to `acc` (8 lanes).
///
/// `maddubs(u, y)` multiplies unsigned codes (≤ 31) by signed activations and adds pairs into
/// i16: at most 2·31·128 in magnitude, so it never saturates. For the offset formats
/// `Σ (u - o)·y` is formed in i16 as `maddubs(u, y) - maddubs(o, y)` (at most 2·16·128).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn nibble_block<B: Nibbles>(bw: &B, bx: &BlockQ8_0, acc: __m256) -> __m256 {
    let ones = _mm256_set1_epi16(1);
    let u = codes(bw);
    let y = _mm256_loadu_si256(bx.qs.as_ptr().cast());
    let uy = _mm256_maddubs_epi16(u, y);
    let scales = scale_products(bw.d(), bw.m(), bx.d);
    let d = _mm256_broadcastss_ps(scales);
    if B::MIN {
        let m = _mm256_broadcastss_ps(_mm_movehdup_ps(scales));
        let sy = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), y), ones);
        let s = _mm256_madd_epi16(uy, ones);
        let acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc);
        _mm256_fmadd_ps(m, _mm256_cvtepi32_ps(sy), acc)
    } else {
        let oy = _mm256_maddubs_epi16(_mm256_set1_epi8(B::OFFSET as i8), y);
        let s = _mm256_madd_epi16(_mm256_sub_epi16(uy, oy), ones);
        _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc)
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_nibbles_impl<B: Nibbles>(w: &[B], x: &[BlockQ8_0]) -> f32 {
    // Two accumulators, so that consecutive blocks do not wait on each other's FMA.
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let (pairs_w, pairs_x) = (w.chunks_exact(2), x.chunks_exact(2));
    let (rest_w, rest_x) = (pairs_w.remainder(), pairs_x.remainder());
    for (pw, px) in pairs_w.zip(pairs_x) {
        acc0 = nibble_block(&pw[0], &px[0], acc0);
        acc1 = nibble_block(&pw[1], &px[1], acc1);
    }
    for (bw, bx) in rest_w.iter().zip(rest_x) {
        acc0 = nibble_block(bw, bx, acc0);
    }
    hsum(_mm256_add_ps(acc0, acc1))
}

/// `roundf(t)` saturated to i8 the way `as i8` does (NaN → 0, ±inf → 127/-128), per i32 lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn round_away_i32(t: __m256) -> __m256i {
    let sign = _mm256_set1_ps(-0.0);
    let t = _mm256_and_ps(t, _mm256_cmp_ps(t, t, _CMP_ORD_Q)); // NaN → +0
    let a = _mm256_andnot_ps(sign, t);
    let whole = _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    // a - trunc(a) is exact; a tie (exactly .5) rounds up, away from zero. For a = inf the
    // difference is NaN, the compare false, and the min below saturates.
    let up = _mm256_cmp_ps(_mm256_sub_ps(a, whole), _mm256_set1_ps(0.5), _CMP_GE_OQ);
    let r = _mm256_add_ps(whole, _mm256_and_ps(up, _mm256_set1_ps(1.0)));
    let r = _mm256_min_ps(r, _mm256_set1_ps(128.0));
    // Sign back on; the i16/i8 packs saturate 128 → 127 and -128 stays.
    _mm256_cvtps_epi32(_mm256_or_ps(r, _mm256_and_ps(t, sign)))
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_q8_0_impl(src: &[f32], out: &mut [BlockQ8_0]) {
    let sign = _mm256_set1_ps(-0.0);
    for (x, b) in src.chunks_exact(32).zip(out) {
        let p = x.as_ptr();
        let v = [
            _mm256_loadu_ps(p),
            _mm256_loadu_ps(p.add(8)),
            _mm256_loadu_ps(p.add(16)),
            _mm256_loadu_ps(p.add(24)),
        ];
        // max(|v|, m) returns m when |v| is NaN: NaN is ignored, as in the scalar fold.
        let mut m = _mm256_setzero_ps();
        for &vi in &v {
            m = _mm256_max_ps(_mm256_andnot_ps(sign, vi), m);
        }
        let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        let amax = _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
        // Scalar from here on, exactly as the reference.
        let d = amax / 127.0;
        let id = _mm256_set1_ps(if d != 0.0 { 1.0 / d } else { 0.0 });
        let mut q = [_mm256_setzero_si256(); 4];
        for (q, &vi) in q.iter_mut().zip(&v) {
            *q = round_away_i32(_mm256_mul_ps(vi, id));
        }
        // packs work per 128-bit lane: the bytes come out as dwords 0 4 1 5 2 6 3 7.
        let q16a = _mm256_packs_epi32(q[0], q[1]);
        let q16b = _mm256_packs_epi32(q[2], q[3]);
        let q8 = _mm256_packs_epi16(q16a, q16b);
        let q8 = _mm256_permutevar8x32_epi32(q8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(b.qs.as_mut_ptr().cast(), q8);
        let dh = _mm_cvtps_ph(_mm_set_ss(d), _MM_FROUND_TO_NEAREST_INT);
        b.d = f16::from_bits(_mm_extract_epi16(dh, 0) as u16);
    }
}
