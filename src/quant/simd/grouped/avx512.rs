//! AVX-512 (F + BW + VNNI) grouped kernels.
//!
//! A group of 8 weight blocks is read with a few unaligned 512-bit loads that stay inside the
//! group (never past the end of the row, which may be the end of the mapping). `vpermt2w` then
//! gathers the `qs` bytes of 4 (Q4_0) or 2 (Q8_0) blocks into one register and the 8 f16 scales
//! into another: every field of both formats starts at an even byte.

use super::{by_shape, check_call, entry_point, Prepared, GROUP};
use crate::quant::{BlockQ4_0, BlockQ8_0};
use std::arch::x86_64::*;

/// Whether this CPU runs the kernels of this file.
pub(super) fn supported() -> bool {
    super::avx2::supported()
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vnni")
}

// Safe entry points, handed out only after `supported()`.

entry_point!(dot_q4_0, BlockQ4_0, "Q4_0 grouped", q4_0_impl);
entry_point!(dot_q8_0, BlockQ8_0, "Q8_0 grouped", q8_0_impl);

// `vpermt2w` indices: output word `i` takes word `f[i]` of the 64-word pair of tables.

/// Q4_0 group = 144 bytes = 72 words; block `b` has `d` at word `9b` and `qs` at `9b + 1..+9`.
/// Tables: `r0` = words 0..32, `r1` = words 32..64, `r2` = words 40..72.
const Q4_QS_LOW: [u16; 32] = {
    // blocks 0..4 from (r0, r1): table index = word.
    let mut f = [0u16; 32];
    let mut i = 0;
    while i < 32 {
        f[i] = (9 * (i / 8) + 1 + i % 8) as u16;
        i += 1;
    }
    f
};
const Q4_QS_HIGH: [u16; 32] = {
    // blocks 4..8 from (r1, r2): words below 64 from r1 (index word - 32), the rest from r2
    // (index 32 + word - 40).
    let mut f = [0u16; 32];
    let mut i = 0;
    while i < 32 {
        let word = 9 * (4 + i / 8) + 1 + i % 8;
        f[i] = if word < 64 { word - 32 } else { word - 8 } as u16;
        i += 1;
    }
    f
};
const Q4_SCALES: [u16; 32] = {
    // the 8 scales (words 0, 9, .., 63) from (r0, r1) into words 0..8.
    let mut f = [0u16; 32];
    let mut i = 0;
    while i < 8 {
        f[i] = (9 * i) as u16;
        i += 1;
    }
    f
};

/// Q8_0 group = 272 bytes = 136 words; block `b` has `d` at word `17b` and `qs` at
/// `17b + 1..+17`. Tables: `r0..r3` = words 0..128 in fours of 32, `r4` = words 104..136.
/// Pair `k` (blocks `2k`, `2k+1`) is read from `(r_k, r_k+1)`, the last one from `(r3, r4)`.
const Q8_QS: [[u16; 32]; 4] = {
    let mut f = [[0u16; 32]; 4];
    let mut k = 0;
    while k < 4 {
        let mut i = 0;
        while i < 32 {
            let word = 17 * (2 * k + i / 16) + 1 + i % 16;
            f[k][i] = if k < 3 {
                word - 32 * k
            } else if word < 128 {
                word - 96
            } else {
                32 + word - 104
            } as u16;
            i += 1;
        }
        k += 1;
    }
    f
};
const Q8_SCALES: [[u16; 32]; 2] = {
    // blocks 0..4 from (r0, r1) into words 0..4; blocks 4..8 from (r2, r3) into words 4..8.
    let mut f = [[0u16; 32]; 2];
    let mut b = 0;
    while b < 4 {
        f[0][b] = (17 * b) as u16;
        f[1][4 + b] = (17 * (4 + b) - 64) as u16;
        b += 1;
    }
    f
};

/// Lane → block within a 16-lane vector: 4 lanes per block (Q4_0) starting at `first`.
const fn spread(first: u32, lanes_per_block: u32) -> [u32; 16] {
    let mut f = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        f[i] = first + i as u32 / lanes_per_block;
        i += 1;
    }
    f
}
const Q4_SPREAD: [[u32; 16]; 2] = [spread(0, 4), spread(4, 4)];
const Q8_SPREAD: [[u32; 16]; 4] = [spread(0, 8), spread(2, 8), spread(4, 8), spread(6, 8)];

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
unsafe fn load_idx<T>(t: &T) -> __m512i {
    _mm512_loadu_si512((t as *const T).cast())
}

/// The activation side of one group, shared by all weight rows: `V` vectors of i32 lane
/// initialisers and the 8 scales.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
unsafe fn act_group<const V: usize>(x: &Prepared, g: usize) -> ([__m512i; V], __m256) {
    let at = x.init.as_ptr().add(g * 16 * V);
    let mut init = [_mm512_setzero_si512(); V];
    for (i, v) in init.iter_mut().enumerate() {
        *v = _mm512_loadu_si512(at.add(16 * i).cast());
    }
    (init, _mm256_loadu_ps(x.dx.as_ptr().add(g * GROUP)))
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
unsafe fn q4_0_impl<const R: usize, const N: usize>(
    w: &[BlockQ4_0],
    groups: usize,
    stride: usize,
    xs: &[Prepared],
    out: &mut [f32],
) {
    let (qs_low, qs_high, scales) = (
        load_idx(&Q4_QS_LOW),
        load_idx(&Q4_QS_HIGH),
        load_idx(&Q4_SCALES),
    );
    let spread = [load_idx(&Q4_SPREAD[0]), load_idx(&Q4_SPREAD[1])];
    let low4 = _mm512_set1_epi8(0x0f);
    // [R, N, half]: two accumulators per pair (one per half-group), so no FMA waits on the last.
    let mut acc = [[[_mm512_setzero_ps(); 2]; N]; R];
    let base = w.as_ptr().cast::<u8>();
    for g in 0..groups {
        let mut acts = [([_mm512_setzero_si512(); 2], _mm256_setzero_ps()); N];
        for (a, x) in acts.iter_mut().zip(xs) {
            *a = act_group::<2>(x, g);
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let p = base.add((r * stride + g) * GROUP * 18); // [144] bytes of this group
            let r0 = _mm512_loadu_si512(p.cast());
            let r1 = _mm512_loadu_si512(p.add(64).cast());
            let r2 = _mm512_loadu_si512(p.add(80).cast());
            let halves = [
                _mm512_permutex2var_epi16(r0, qs_low, r1),
                _mm512_permutex2var_epi16(r1, qs_high, r2),
            ];
            // [8] weight scales
            let dw = _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi16(
                r0, scales, r1,
            )));
            // [2 halves][low, high nibbles]: 64 codes 0..16 each
            let codes = halves.map(|q| {
                let high = _mm512_srli_epi16(q, 4);
                [_mm512_and_si512(q, low4), _mm512_and_si512(high, low4)]
            });
            for (t, acc) in acc.iter_mut().enumerate() {
                let (init, dx) = acts[t];
                let ys = xs[t].ys.as_ptr().add(g * 256);
                let sc = _mm512_castps256_ps512(_mm256_mul_ps(dw, dx));
                for h in 0..2 {
                    let y = ys.add(128 * h);
                    let s = _mm512_dpbusd_epi32(init[h], codes[h][0], _mm512_loadu_si512(y.cast()));
                    let s =
                        _mm512_dpbusd_epi32(s, codes[h][1], _mm512_loadu_si512(y.add(64).cast()));
                    let scale = _mm512_permutexvar_ps(spread[h], sc);
                    acc[h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, acc[h]);
                }
            }
        }
    }
    for (o, a) in out.iter_mut().zip(acc.iter().flatten()) {
        *o = _mm512_reduce_add_ps(_mm512_add_ps(a[0], a[1]));
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
unsafe fn q8_0_impl<const R: usize, const N: usize>(
    w: &[BlockQ8_0],
    groups: usize,
    stride: usize,
    xs: &[Prepared],
    out: &mut [f32],
) {
    let qs_idx = Q8_QS.each_ref().map(|t| load_idx(t));
    let scale_idx = [load_idx(&Q8_SCALES[0]), load_idx(&Q8_SCALES[1])];
    let spread = Q8_SPREAD.each_ref().map(|t| load_idx(t));
    let flip = _mm512_set1_epi8(-128);
    let mut acc = [[[_mm512_setzero_ps(); 2]; N]; R];
    let base = w.as_ptr().cast::<u8>();
    for g in 0..groups {
        let mut acts = [([_mm512_setzero_si512(); 4], _mm256_setzero_ps()); N];
        for (a, x) in acts.iter_mut().zip(xs) {
            *a = act_group::<4>(x, g);
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let p = base.add((r * stride + g) * GROUP * 34); // [272] bytes of this group
            let v = [0, 64, 128, 192, 208].map(|o| _mm512_loadu_si512(p.add(o).cast()));
            // [4 pairs of blocks]: 64 codes each, sign bit flipped: q + 128 as unsigned bytes
            let pairs = [
                _mm512_permutex2var_epi16(v[0], qs_idx[0], v[1]),
                _mm512_permutex2var_epi16(v[1], qs_idx[1], v[2]),
                _mm512_permutex2var_epi16(v[2], qs_idx[2], v[3]),
                _mm512_permutex2var_epi16(v[3], qs_idx[3], v[4]),
            ]
            .map(|q| _mm512_xor_si512(q, flip));
            let d_low = _mm512_permutex2var_epi16(v[0], scale_idx[0], v[1]);
            let d_high = _mm512_permutex2var_epi16(v[2], scale_idx[1], v[3]);
            // [8] weight scales
            let dw = _mm256_cvtph_ps(_mm_blend_epi16(
                _mm512_castsi512_si128(d_low),
                _mm512_castsi512_si128(d_high),
                0xf0,
            ));
            for (t, acc) in acc.iter_mut().enumerate() {
                let (init, dx) = acts[t];
                let ys = xs[t].ys.as_ptr().add(g * 256);
                let sc = _mm512_castps256_ps512(_mm256_mul_ps(dw, dx));
                for (k, &q) in pairs.iter().enumerate() {
                    let y = _mm512_loadu_si512(ys.add(64 * k).cast());
                    let s = _mm512_dpbusd_epi32(init[k], q, y);
                    let scale = _mm512_permutexvar_ps(spread[k], sc);
                    acc[k % 2] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, acc[k % 2]);
                }
            }
        }
    }
    for (o, a) in out.iter_mut().zip(acc.iter().flatten()) {
        *o = _mm512_reduce_add_ps(_mm512_add_ps(a[0], a[1]));
    }
}
