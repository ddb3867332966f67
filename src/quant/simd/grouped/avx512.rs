//! AVX-512 (F + BW + VNNI) grouped kernels.
//!
//! A group of 8 weight blocks is read with a few unaligned 512-bit loads that stay inside the
//! group (never past the end of the row, which may be the end of the mapping). `vpermt2w` then
//! gathers the `qs` bytes and the f16 scales into registers: every field of both formats starts
//! at an even byte. For Q4_0 each register takes 8 bytes of all 8 blocks, so that the four
//! `vpdpbusd` of a group land in the same 16 lanes (2 per block) and one conversion and one FMA
//! scale them; for Q8_0 a register takes 2 whole blocks, and the four registers' lane sums are
//! folded into one vector (in-lane unpacks and adds) before the one conversion and FMA.

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

/// Q4_0 group = 144 bytes = 72 words; block `b` has `d` at byte `18b` and `qs` at
/// `18b + 2..+18`. Each code vector holds 8 bytes of every block (lane `l` = block `l / 2`),
/// gathered from two loads 72 bytes apart: `qs[0..8]` of blocks 0..4 from bytes 0..64 and of
/// blocks 4..8 from bytes 72..136; `qs[8..16]` from the same tables 8 bytes further on (bytes
/// 8..72 and 80..144). Either way block `b` < 4 is at word `9b + 1 + j` of the first table and
/// block `b` ≥ 4 at word `9b + 1 + j - 36` of the second (index `+ 32`).
const Q4_QS: [u16; 32] = {
    let mut f = [0u16; 32];
    let mut i = 0;
    while i < 32 {
        let (b, j) = (i / 4, i % 4);
        f[i] = if b < 4 { 9 * b + 1 + j } else { 9 * b + j - 3 } as u16;
        i += 1;
    }
    f
};
/// The scales from the first pair of tables (bytes 0..64, 72..136), each into two words:
/// `d` of block `b` into words `2b`, `2b + 1`, so that converted they meet lanes `2b`, `2b + 1`.
const Q4_SCALES: [u16; 32] = {
    let mut f = [0u16; 32];
    let mut i = 0;
    while i < 16 {
        let b = i / 2;
        f[i] = if b < 4 { 9 * b } else { 9 * b - 4 } as u16;
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

/// Lane `4c + j` of the folded sums (see `fold_pairs`) takes the scale of block `2j + c / 2`.
const Q8_SPREAD: [u32; 16] = {
    let mut f = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let (c, j) = (i / 4, i % 4);
        f[i] = (2 * j + c / 2) as u32;
        i += 1;
    }
    f
};

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
unsafe fn load_idx<T>(t: &T) -> __m512i {
    _mm512_loadu_si512((t as *const T).cast())
}

/// The activation side of one Q8_0 group, shared by all weight rows: the i32 lane initialisers
/// of its 4 block pairs and the 8 scales.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
unsafe fn q8_0_acts(x: &Prepared, g: usize) -> ([__m512i; 4], __m256) {
    let at = x.init.as_ptr().add(g * 64);
    let init = [0, 16, 32, 48].map(|o| _mm512_loadu_si512(at.add(o).cast()));
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
    let (qs_idx, scale_idx) = (load_idx(&Q4_QS), load_idx(&Q4_SCALES));
    let low4 = _mm512_set1_epi8(0x0f);
    // [R, N]: lane `l` sums block `l / 2`'s share, scaled; one accumulator per pair.
    let mut acc = [[_mm512_setzero_ps(); N]; R];
    let base = w.as_ptr().cast::<u8>();
    for g in 0..groups {
        // Per activation row: lane initialisers, [16] scales (each block's twice), [4] code
        // vectors in the order of `codes` below.
        let mut acts = [(
            _mm512_setzero_si512(),
            _mm512_setzero_ps(),
            [_mm512_setzero_si512(); 4],
        ); N];
        for (a, x) in acts.iter_mut().zip(xs) {
            let ys = x.ys.as_ptr().add(g * 256);
            *a = (
                _mm512_loadu_si512(x.init.as_ptr().add(g * 16).cast()),
                _mm512_loadu_ps(x.dx.as_ptr().add(g * 16)),
                [0, 64, 128, 192].map(|o| _mm512_loadu_si512(ys.add(o).cast())),
            );
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let p = base.add((r * stride + g) * GROUP * 18); // [144] bytes of this group
            let [t0, t8, t72, t80] = [0, 8, 72, 80].map(|o| _mm512_loadu_si512(p.add(o).cast()));
            // [64]: qs[0..8] of each block, then qs[8..16] of each block
            let first = _mm512_permutex2var_epi16(t0, qs_idx, t72);
            let second = _mm512_permutex2var_epi16(t8, qs_idx, t80);
            // [16] weight scales, each block's twice
            let dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(
                t0, scale_idx, t72,
            )));
            // values 0..8, 16..24, 8..16, 24..32 of each block, as codes 0..16
            let codes = [
                _mm512_and_si512(first, low4),
                _mm512_and_si512(_mm512_srli_epi16(first, 4), low4),
                _mm512_and_si512(second, low4),
                _mm512_and_si512(_mm512_srli_epi16(second, 4), low4),
            ];
            for (acc, (init, dx, ys)) in acc.iter_mut().zip(&acts) {
                let mut s = *init;
                for (c, y) in codes.iter().zip(ys) {
                    s = _mm512_dpbusd_epi32(s, *c, *y);
                }
                *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, *dx), *acc);
            }
        }
    }
    for (o, a) in out.iter_mut().zip(acc.iter().flatten()) {
        *o = _mm512_reduce_add_ps(*a);
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
    let spread = load_idx(&Q8_SPREAD);
    let flip = _mm512_set1_epi8(-128);
    // [R, N]: lane `4c + j` sums block `2j + c / 2`'s share, scaled (see `fold_pairs`).
    let mut acc = [[_mm512_setzero_ps(); N]; R];
    let base = w.as_ptr().cast::<u8>();
    for g in 0..groups {
        let mut acts = [([_mm512_setzero_si512(); 4], _mm256_setzero_ps()); N];
        for (a, x) in acts.iter_mut().zip(xs) {
            *a = q8_0_acts(x, g);
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
                let sums: [__m512i; 4] = std::array::from_fn(|k| {
                    let y = _mm512_loadu_si512(ys.add(64 * k).cast());
                    _mm512_dpbusd_epi32(init[k], pairs[k], y)
                });
                let scale =
                    _mm512_permutexvar_ps(spread, _mm512_castps256_ps512(_mm256_mul_ps(dw, dx)));
                *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(fold_pairs(sums)), scale, *acc);
            }
        }
    }
    for (o, a) in out.iter_mut().zip(acc.iter().flatten()) {
        *o = _mm512_reduce_add_ps(*a);
    }
}

/// Four vectors of per-pair lanes (vector `k`: 8 lanes of block `2k`, then 8 of block `2k + 1`)
/// added into one, with in-lane unpacks only: lane `4c + j` of the result is the sum of 4 lanes
/// of block `2j + c / 2`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
unsafe fn fold_pairs(s: [__m512i; 4]) -> __m512i {
    // Chunk c (lanes 4c..4c+4) of vector k is all block 2k + c/2. Per chunk, u0 = [s0, s1, s0,
    // s1] with each lane the sum of two: blocks c/2 and 2 + c/2, twice.
    let u0 = _mm512_add_epi32(
        _mm512_unpacklo_epi32(s[0], s[1]),
        _mm512_unpackhi_epi32(s[0], s[1]),
    );
    // [s2, s3, s2, s3]: blocks 4 + c/2 and 6 + c/2, twice
    let u1 = _mm512_add_epi32(
        _mm512_unpacklo_epi32(s[2], s[3]),
        _mm512_unpackhi_epi32(s[2], s[3]),
    );
    // [u0 lanes 0 + 2, 1 + 3, u1 lanes 0 + 2, 1 + 3]
    _mm512_add_epi32(_mm512_unpacklo_epi64(u0, u1), _mm512_unpackhi_epi64(u0, u1))
}
