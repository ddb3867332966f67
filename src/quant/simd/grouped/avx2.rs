//! AVX2 grouped kernel for Q4_0 (the laptop path: most x86 laptops have AVX2 but no AVX-512).
//!
//! Without VNNI the products go through `vpmaddubsw`: unsigned codes (≤ 15) times signed
//! activations, two products per i16, and the low-nibble and high-nibble halves added in i16
//! (|sum| ≤ 4·15·128), then `vpmaddwd` by ones into the same i32 lanes as the AVX-512 kernel.

use super::super::legacy::hsum;
use super::{by_shape, check_call, entry_point, Prepared, GROUP};
use crate::quant::BlockQ4_0;
use std::arch::x86_64::*;

/// Whether this CPU runs the kernels of this file.
pub(super) fn supported() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

// Safe entry point, handed out only after `supported()`.
entry_point!(dot_q4_0, BlockQ4_0, "Q4_0 grouped", q4_0_impl);

/// The 8 f16 scales of a Q4_0 group (at bytes `18b`) as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_0_scales(p: *const u8) -> __m256 {
    // Each gathered dword holds a scale in its low half (the last one ends at byte 130 < 144).
    let offsets = _mm256_setr_epi32(0, 18, 36, 54, 72, 90, 108, 126);
    let dwords = _mm256_i32gather_epi32::<1>(p.cast(), offsets);
    // Low words of each 128-bit half to its bottom 8 bytes, then the two halves together.
    let words = _mm256_shuffle_epi8(
        dwords,
        _mm256_setr_epi8(
            0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1, //
            0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1,
        ),
    );
    let words = _mm256_permute4x64_epi64::<0b00_00_10_00>(words);
    _mm256_cvtph_ps(_mm256_castsi256_si128(words))
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_0_impl<const R: usize, const N: usize>(
    w: &[BlockQ4_0],
    groups: usize,
    stride: usize,
    xs: &[Prepared],
    out: &mut [f32],
) {
    let low4 = _mm256_set1_epi8(0x0f);
    let ones = _mm256_set1_epi16(1);
    // Pair k (blocks 2k, 2k+1) takes lanes 2k ×4 and 2k+1 ×4 of a group's 8 per-block values.
    let spread: [__m256i; 4] = std::array::from_fn(|k| {
        let (a, b) = (2 * k as i32, 2 * k as i32 + 1);
        _mm256_setr_epi32(a, a, a, a, b, b, b, b)
    });
    // [R, N, 2]: two accumulators per pair (even and odd block pairs).
    let mut acc = [[[_mm256_setzero_ps(); 2]; N]; R];
    let base = w.as_ptr().cast::<u8>();
    for g in 0..groups {
        // Per activation row, shared by the weight rows: [4 pairs] lane initialisers (pair k
        // has lanes 8k..8k+8 of the group's 32) and the 8 scales.
        let mut acts = [([_mm256_setzero_si256(); 4], _mm256_setzero_ps()); N];
        for ((init, dx), x) in acts.iter_mut().zip(xs) {
            let at = x.init.as_ptr().add(g * 32);
            for (k, v) in init.iter_mut().enumerate() {
                *v = _mm256_loadu_si256(at.add(8 * k).cast());
            }
            *dx = _mm256_loadu_ps(x.dx.as_ptr().add(g * GROUP));
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let p = base.add((r * stride + g) * GROUP * 18); // [144] bytes of this group
            let dw = q4_0_scales(p);
            // [4 pairs][low, high nibbles]: 32 codes 0..16 each
            let codes: [[__m256i; 2]; 4] = std::array::from_fn(|k| {
                let q = _mm256_loadu2_m128i(
                    p.add(18 * (2 * k + 1) + 2).cast(),
                    p.add(18 * (2 * k) + 2).cast(),
                );
                [
                    _mm256_and_si256(q, low4),
                    _mm256_and_si256(_mm256_srli_epi16(q, 4), low4),
                ]
            });
            for (t, acc) in acc.iter_mut().enumerate() {
                let (init, dx) = acts[t];
                let ys = xs[t].ys.as_ptr().add(g * 256);
                let sc = _mm256_mul_ps(dw, dx);
                for (k, [low, high]) in codes.iter().enumerate() {
                    // Pair k sits in half k/2, at byte 32·(k%2) of its low and high parts.
                    let y = ys.add(128 * (k / 2) + 32 * (k % 2));
                    let s16 = _mm256_add_epi16(
                        _mm256_maddubs_epi16(*low, _mm256_loadu_si256(y.cast())),
                        _mm256_maddubs_epi16(*high, _mm256_loadu_si256(y.add(64).cast())),
                    );
                    let s = _mm256_add_epi32(_mm256_madd_epi16(s16, ones), init[k]);
                    let scale = _mm256_permutevar8x32_ps(sc, spread[k]);
                    acc[k % 2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), scale, acc[k % 2]);
                }
            }
        }
    }
    for (o, a) in out.iter_mut().zip(acc.iter().flatten()) {
        *o = hsum(_mm256_add_ps(a[0], a[1]));
    }
}
