//! AVX2 + FMA kernels for the K-quants.
//!
//! Dots: per block, `_mm256_maddubs_epi16` multiplies 32 unsigned weight quants with 32 signed
//! activation quants into 16 pair sums (never saturating: at most 2·63·128), `_mm256_madd_epi16`
//! applies the sub-block scales, and the block's exact i32 sums are scaled into 8 f32 lanes.

use super::{check_multi, hsum256, load_i16x16, load_i8x32, load_u8x32, Features};
use crate::quant::kquant_search::unpack_scales_mins;
use crate::quant::{BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_K, QK_K};
use std::arch::x86_64::*;

static FEATURES: Features = Features::new(&["avx2", "fma"]);

macro_rules! entry_points {
    ($block:ty, $what:literal, $dot:ident, $multi:ident, $body:ident) => {
        /// A weight row against 1..=4 activation rows, sharing the weight unpacking; each row's
        /// arithmetic is exactly the one-row dot's.
        pub(super) fn $multi(w: &[$block], xs: &[&[BlockQ8_K]], out: &mut [f32]) {
            check_multi($what, w.len(), xs, out);
            FEATURES.require();
            // SAFETY: `require` checked that this CPU has AVX2 and FMA.
            unsafe { by_acts!($body, [], w, xs, out) }
        }

        pub(super) fn $dot(w: &[$block], x: &[BlockQ8_K]) -> f32 {
            let mut out = [0.0];
            $multi(w, &[x], &mut out);
            out[0]
        }
    };
}

entry_points!(BlockQ4_K, "Q4_K", dot_q4_k, multi_q4_k, q4_k);
entry_points!(BlockQ5_K, "Q5_K", dot_q5_k, multi_q5_k, q5_k);
entry_points!(BlockQ6_K, "Q6_K", dot_q6_k, multi_q6_k, q6_k);

pub(super) fn quantize_q8_k(src: &[f32], out: &mut [BlockQ8_K]) {
    assert_eq!(src.len(), out.len() * QK_K, "Q8_K quantize: input length");
    FEATURES.require();
    // SAFETY: as above.
    unsafe { q8_k(src, out) }
}

/// `v` with every 16-bit lane set to lane `j` (in `0..8`) of the 128-bit half it sits in.
#[inline]
#[target_feature(enable = "avx2")]
fn broadcast_i16(v: __m256i, j: i16) -> __m256i {
    let pick = ((2 * j + 1) << 8) | (2 * j); // byte indices of lane j, little-endian
    _mm256_shuffle_epi8(v, _mm256_set1_epi16(pick))
}

/// The 8 sub-block scales of Q4_K / Q5_K as i16, in both 128-bit halves (for [`broadcast_i16`]).
#[inline]
#[target_feature(enable = "avx2")]
fn scales_i16(sc: [u8; 8]) -> __m256i {
    _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(i64::from_le_bytes(sc))))
}

/// The 8 mins as i16 pairs: each min twice, as the two i16 halves of its i32 lane, so that
/// `vpmaddwd` with the 16 bsums gives `mn_j·(bsums[2j] + bsums[2j+1])` in lane `j`.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn mins_pairs(mn: [u8; 8]) -> __m256i {
    let m32 = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(i64::from_le_bytes(mn)));
    _mm256_or_si256(m32, _mm256_slli_epi32::<16>(m32))
}

/// `Σ_j mn_j·(bsums[2j] + bsums[2j+1])` in 8 i32 lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn mins_dot(mn: [u8; 8], bsums: &[i16; 16]) -> __m256i {
    _mm256_madd_epi16(load_i16x16(bsums), mins_pairs(mn))
}

/// One Q4_K / Q5_K block times one activation block, added into `acc`. Q4_K and Q5_K share
/// everything but how the quants are unpacked: `quants[c]` holds the low-nibble (sub-block 2c)
/// and high-nibble (sub-block 2c+1) quants of 64-value chunk `c`; `sc16` the sub-block scales
/// (see [`scales_i16`]) and `mn` the mins.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn affine_dot(
    sc16: __m256i,
    mn: [u8; 8],
    d: f32,
    dmin: f32,
    a: &BlockQ8_K,
    quants: &[(__m256i, __m256i); 4],
    acc: __m256,
) -> __m256 {
    let ys = a.qs.as_chunks::<32>().0;
    let mut isum = _mm256_setzero_si256();
    for (c, &(lo, hi)) in quants.iter().enumerate() {
        let plo = _mm256_maddubs_epi16(lo, load_i8x32(&ys[2 * c]));
        let phi = _mm256_maddubs_epi16(hi, load_i8x32(&ys[2 * c + 1]));
        let plo = _mm256_madd_epi16(plo, broadcast_i16(sc16, 2 * c as i16));
        let phi = _mm256_madd_epi16(phi, broadcast_i16(sc16, 2 * c as i16 + 1));
        isum = _mm256_add_epi32(isum, _mm256_add_epi32(plo, phi));
    }
    let msum = mins_dot(mn, &a.bsums);
    let acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum), acc);
    _mm256_fnmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(msum), acc)
}

/// The horizontal sums of `N` accumulators.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn reduce<const N: usize>(acc: [__m256; N]) -> [f32; N] {
    let mut out = [0.0f32; N];
    for (o, a) in out.iter_mut().zip(acc) {
        *o = hsum256(a);
    }
    out
}

/// Block `i` of `w` (Q4_K or Q5_K, unpacked into `quants`) against block `i` of every row of `xs`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn affine_rows<const N: usize>(
    scales: &[u8; 12],
    (bd, bmin): (f32, f32),
    quants: &[(__m256i, __m256i); 4],
    xs: &[&[BlockQ8_K]; N],
    i: usize,
    acc: &mut [__m256; N],
) {
    let (sc, mn) = unpack_scales_mins(scales);
    let sc16 = scales_i16(sc);
    for (acc, x) in acc.iter_mut().zip(xs) {
        let a = &x[i];
        *acc = affine_dot(sc16, mn, a.d * bd, a.d * bmin, a, quants, *acc);
    }
}

#[target_feature(enable = "avx2,fma")]
fn q4_k<const N: usize>(w: &[BlockQ4_K], xs: &[&[BlockQ8_K]; N]) -> [f32; N] {
    let low4 = _mm256_set1_epi8(0x0F);
    let mut acc = [_mm256_setzero_ps(); N];
    for (i, b) in w.iter().enumerate() {
        let qs = b.qs.as_chunks::<32>().0;
        let mut quants = [(_mm256_setzero_si256(), _mm256_setzero_si256()); 4];
        for (q, bytes) in quants.iter_mut().zip(qs) {
            let v = load_u8x32(bytes);
            *q = (
                _mm256_and_si256(v, low4),
                _mm256_and_si256(_mm256_srli_epi16::<4>(v), low4),
            );
        }
        let d = (b.d.to_f32_const(), b.dmin.to_f32_const());
        affine_rows(&b.scales, d, &quants, xs, i, &mut acc);
    }
    reduce(acc)
}

#[target_feature(enable = "avx2,fma")]
fn q5_k<const N: usize>(w: &[BlockQ5_K], xs: &[&[BlockQ8_K]; N]) -> [f32; N] {
    let low4 = _mm256_set1_epi8(0x0F);
    let bit0 = _mm256_set1_epi8(1);
    let bit1 = _mm256_set1_epi8(2);
    let mut acc = [_mm256_setzero_ps(); N];
    for (i, b) in w.iter().enumerate() {
        let qs = b.qs.as_chunks::<32>().0;
        // Chunk c needs bits 2c and 2c+1 of qh; shifting 16-bit lanes by 2 per chunk moves them
        // to bits 0 and 1 of each byte (what spills in from the neighbour byte lands above).
        let mut qh = load_u8x32(&b.qh);
        let mut quants = [(_mm256_setzero_si256(), _mm256_setzero_si256()); 4];
        for (q, bytes) in quants.iter_mut().zip(qs) {
            let v = load_u8x32(bytes);
            let lo = _mm256_and_si256(v, low4);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), low4);
            let lo = _mm256_or_si256(lo, _mm256_slli_epi16::<4>(_mm256_and_si256(qh, bit0)));
            let hi = _mm256_or_si256(hi, _mm256_slli_epi16::<3>(_mm256_and_si256(qh, bit1)));
            qh = _mm256_srli_epi16::<2>(qh);
            *q = (lo, hi);
        }
        let d = (b.d.to_f32_const(), b.dmin.to_f32_const());
        affine_rows(&b.scales, d, &quants, xs, i, &mut acc);
    }
    reduce(acc)
}

#[target_feature(enable = "avx2,fma")]
fn q6_k<const N: usize>(w: &[BlockQ6_K], xs: &[&[BlockQ8_K]; N]) -> [f32; N] {
    let low4 = _mm256_set1_epi8(0x0F);
    let top2 = _mm256_set1_epi8(0x30);
    let mut acc = [_mm256_setzero_ps(); N];
    for (i, b) in w.iter().enumerate() {
        let ql = b.ql.as_chunks::<32>().0;
        let qh = b.qh.as_chunks::<32>().0;
        let sc8 = b.scales.as_chunks::<8>().0;
        // [2 halves][4 chunks of 32 values] quants, and per half the scales as i16.
        let mut quants = [[_mm256_setzero_si256(); 4]; 2];
        let mut scales = [_mm256_setzero_si256(); 2];
        for h in 0..2 {
            let l0 = load_u8x32(&ql[2 * h]);
            let l1 = load_u8x32(&ql[2 * h + 1]);
            let hb = load_u8x32(&qh[h]);
            // Values 128h + 32k + (0..32), k = 0..4: low 4 bits from l0/l1, top 2 from bits 2k
            // of hb moved to bits 4–5 (16-bit shifts; the masks drop what crosses bytes).
            quants[h] = [
                _mm256_or_si256(
                    _mm256_and_si256(l0, low4),
                    _mm256_and_si256(_mm256_slli_epi16::<4>(hb), top2),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(l1, low4),
                    _mm256_and_si256(_mm256_slli_epi16::<2>(hb), top2),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16::<4>(l0), low4),
                    _mm256_and_si256(hb, top2),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16::<4>(l1), low4),
                    _mm256_and_si256(_mm256_srli_epi16::<2>(hb), top2),
                ),
            ];
            // Scales 8h..8h+8 as i16 in both halves; 32 values span sub-blocks 2k and 2k+1.
            scales[h] = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_cvtsi64_si128(
                i64::from_le_bytes(sc8[h].map(|s| s as u8)),
            )));
        }
        let sc_all = _mm256_cvtepi8_epi16(_mm_set_epi64x(
            i64::from_le_bytes(sc8[1].map(|s| s as u8)),
            i64::from_le_bytes(sc8[0].map(|s| s as u8)),
        ));
        let bd = b.d.to_f32_const();
        for (acc, x) in acc.iter_mut().zip(xs) {
            let a = &x[i];
            let ys = a.qs.as_chunks::<32>().0;
            let mut isum = _mm256_setzero_si256();
            for h in 0..2 {
                for (k, &qk) in quants[h].iter().enumerate() {
                    let p = _mm256_maddubs_epi16(qk, load_i8x32(&ys[4 * h + k]));
                    let lo = 4 * k as i16; // byte index of scale 2k in the half
                    let pick = _mm256_set_m128i(
                        _mm_set1_epi16(((lo + 3) << 8) | (lo + 2)),
                        _mm_set1_epi16(((lo + 1) << 8) | lo),
                    );
                    let s = _mm256_shuffle_epi8(scales[h], pick);
                    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, s));
                }
            }
            // The stored quants are biased by 32: subtract 32·Σ_j sc_j·bsums_j.
            let bias = _mm256_madd_epi16(load_i16x16(&a.bsums), sc_all);
            isum = _mm256_sub_epi32(isum, _mm256_slli_epi32::<5>(bias));
            *acc = _mm256_fmadd_ps(_mm256_set1_ps(a.d * bd), _mm256_cvtepi32_ps(isum), *acc);
        }
    }
    reduce(acc)
}

/// Quantizes to Q8_K exactly as `quantize_q8_k_scalar` does, 8 values per instruction.
#[target_feature(enable = "avx2,fma")]
fn q8_k(src: &[f32], out: &mut [BlockQ8_K]) {
    for (x, y) in src.as_chunks::<QK_K>().0.iter().zip(out) {
        let max = signed_absmax(x);
        if max == 0.0 {
            *y = bytemuck::Zeroable::zeroed();
            continue;
        }
        let iscale = -127.0 / max;
        let vscale = _mm256_set1_ps(iscale);
        let ones8 = _mm256_set1_epi8(1);
        let ones16 = _mm256_set1_epi16(1);
        // After the two in-lane packs, 32-bit lane i holds values 4·order[i]..: restore order.
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        let mut sums = [_mm256_setzero_si256(); 8];
        let qs = y.qs.as_chunks_mut::<32>().0;
        for (k, v) in x.as_chunks::<32>().0.iter().enumerate() {
            let v = v.as_chunks::<8>().0;
            let p01 = _mm256_packs_epi32(round8(&v[0], vscale), round8(&v[1], vscale));
            let p23 = _mm256_packs_epi32(round8(&v[2], vscale), round8(&v[3], vscale));
            let bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), order);
            super::store_i8x32(&mut qs[k], bytes);
            // Four 4-value sums per group of 16: the low half is group 2k, the high half 2k+1.
            sums[k] = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, bytes), ones16);
        }
        // Two rounds of pairwise adds leave groups [0 2 4 6 | 1 3 5 7] and [8 .. 14 | 9 .. 15].
        let h01 = _mm256_hadd_epi32(sums[0], sums[1]);
        let h23 = _mm256_hadd_epi32(sums[2], sums[3]);
        let h45 = _mm256_hadd_epi32(sums[4], sums[5]);
        let h67 = _mm256_hadd_epi32(sums[6], sums[7]);
        let g = _mm256_packs_epi32(_mm256_hadd_epi32(h01, h23), _mm256_hadd_epi32(h45, h67));
        let (even, odd) = (_mm256_castsi256_si128(g), _mm256_extracti128_si256::<1>(g));
        let bs = y.bsums.as_chunks_mut::<8>().0;
        super::store_i16x8(&mut bs[0], _mm_unpacklo_epi16(even, odd));
        super::store_i16x8(&mut bs[1], _mm_unpackhi_epi16(even, odd));
        y.d = 1.0 / iscale;
    }
}

/// The value of largest magnitude (the first one on ties; NaNs never win), or 0 if all are 0.
#[inline]
#[target_feature(enable = "avx2")]
fn signed_absmax(x: &[f32; QK_K]) -> f32 {
    let sign = _mm256_set1_ps(-0.0);
    // max_ps returns its second operand when the first is NaN: NaNs are skipped, as by the
    // scalar `>` comparison.
    let mut m = [_mm256_setzero_ps(); 4];
    for v in x.as_chunks::<32>().0 {
        for (m, v) in m.iter_mut().zip(v.as_chunks::<8>().0) {
            *m = _mm256_max_ps(_mm256_andnot_ps(sign, super::load_f32x8(v)), *m);
        }
    }
    let amax = super::hmax256(_mm256_max_ps(
        _mm256_max_ps(m[0], m[1]),
        _mm256_max_ps(m[2], m[3]),
    ));
    if amax == 0.0 {
        return 0.0;
    }
    let target = _mm256_set1_ps(amax);
    for v in x.as_chunks::<8>().0 {
        let hit = _mm256_cmp_ps::<_CMP_EQ_OQ>(_mm256_andnot_ps(sign, super::load_f32x8(v)), target);
        let bits = _mm256_movemask_ps(hit);
        if bits != 0 {
            return v[bits.trailing_zeros() as usize];
        }
    }
    amax // not reached: amax is one of the magnitudes
}

/// `clamp(nearest_int(v·scale), −128, 127)` for 8 values: adding 1.5·2^23 leaves the rounded
/// integer in the low mantissa bits, exactly as the scalar `nearest_int`.
#[inline]
#[target_feature(enable = "avx2")]
fn round8(v: &[f32; 8], scale: __m256) -> __m256i {
    let r = _mm256_add_ps(
        _mm256_mul_ps(super::load_f32x8(v), scale),
        _mm256_set1_ps(12_582_912.0),
    );
    let bits = _mm256_and_si256(_mm256_castps_si256(r), _mm256_set1_epi32(0x007f_ffff));
    let i = _mm256_sub_epi32(bits, _mm256_set1_epi32(0x0040_0000));
    _mm256_max_epi32(
        _mm256_min_epi32(i, _mm256_set1_epi32(127)),
        _mm256_set1_epi32(-128),
    )
}
